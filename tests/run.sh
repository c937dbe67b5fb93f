#!/usr/bin/env bash
# Runs every kubewasm test on a fresh or warm machine:
#
#   1. installs what is missing (rustfmt, clippy, the wasm32-wasip2 target,
#      npm packages, Debian's prometheus package for the metrics tests, its
#      faketime package for the skewed-clock leader test and its buildah
#      package for the container image test, deploy/image.sh) and
#      builds the example plugins (Rust, JavaScript, Python, Go and C:
#      Debian's clang-19 and wasi-libc are installed by
#      plugins/c/tools/toolchain.sh);
#   2. builds the test control plane, the test OCI registry and Helm (for
#      the chart in deploy/helm) from Go modules (once, cached), the
#      benchmark's peer controllers (tests/peers: client-go and kube-rs) and
#      smoke-tests the registry;
#   3. checks formatting and lints (cargo fmt --check, clippy -D warnings);
#   4. scaffolds a plugin in every language with `kubewasm new`, builds it
#      and runs `kubewasm test` and `kubewasm check` on it (tests/templates.sh);
#   5. starts a private control plane on loopback, runs `cargo test` for the
#      whole workspace against it, and stops it however the tests end.
#
# Heavy builds are cached outside the repository, under
# ${XDG_CACHE_HOME:-~/.cache}/kubewasm: cargo's target directories, the
# control-plane binaries, componentized JavaScript and compiled plugins.
# Extra arguments are passed to `cargo test` (e.g. a test name filter).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
# The C plugins' build (plugins/c) runs `kubewasm componentize`, building the
# host there first if needed: the same debug build the tests use below.
export KUBEWASM_HOST_TARGET_DIR="$CARGO_TARGET_DIR"
export KUBEWASM_PLUGIN_DIR="${KUBEWASM_PLUGIN_DIR:-$repo/plugins/dist}"
cd "$repo"

step() { printf '\n==> %s\n' "$*" >&2; }

step "toolchain components"
for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" \
        || rustup component add "$component"
done

step "example plugins"
plugins/build.sh "$KUBEWASM_PLUGIN_DIR"

# Installs Debian package $1 (running apt-get update only if the first try
# fails); if it cannot, warns that $2 will fail and goes on.
apt_install() {
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    apt_get_install() {
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$1"
    }
    apt_get_install "$1" || { $sudo apt-get update && apt_get_install "$1"; } \
        || echo "run.sh: warning: could not install Debian's $1 package; $2 will fail" >&2
}

step "Prometheus (Debian package) for the metrics tests"
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    apt_install prometheus "the Prometheus tests"
fi

step "faketime (Debian package) for the skewed-clock leader test"
if [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] \
    && [ ! -e /usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1 ] \
    && [ ! -e /usr/lib/faketime/libfaketime.so.1 ]; then
    apt_install faketime "the skewed-clock leader test"
fi

step "buildah (Debian package) for the container image test"
# Without its recommends (crun, fuse-overlayfs, ...): deploy/image.sh runs
# nothing with an OCI runtime and uses the vfs storage driver.
if ! command -v buildah >/dev/null; then
    apt_install buildah "the container image test (deploy_image)"
fi

step "test control plane, registry and Helm binaries"
tests/control-plane/cluster.sh build
tests/registry/registry.sh build
# tests/tests/deploy_helm.rs runs this helm.
KUBEWASM_HELM="$(tests/tools/helm.sh)"
export KUBEWASM_HELM

step "the side-by-side benchmark's peer controllers (tests/peers)"
# tests/tests/peers.rs runs them: the client-go peer (Go module, built once
# per source hash) and the kube-rs peer (a workspace member; cargo test does
# not build another package's binary).
KUBEWASM_PEER_GO="$(tests/peers/build.sh)"
export KUBEWASM_PEER_GO
cargo build -p kubewasm-peer-kube-rs --bin kube-rs-labeller --locked
export KUBEWASM_PEER_KUBE_RS="$CARGO_TARGET_DIR/debug/kube-rs-labeller"

step "test registry smoke test (OCI push and pull with curl, TLS, basic auth)"
(cd tests/registry && GOTOOLCHAIN=local go test ./htpasswd)
tests/registry/smoke.sh

step "formatting and lints"
cargo fmt --all --check
cargo fmt --manifest-path plugins/Cargo.toml --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
(
    export CARGO_TARGET_DIR="$cache/plugins-target"
    cargo clippy --manifest-path plugins/Cargo.toml --workspace --all-targets --locked -- -D warnings
    cargo clippy --manifest-path plugins/Cargo.toml --workspace --target wasm32-wasip2 --locked -- -D warnings
    # The label-selector crate the host and the SDK share builds for plugins too.
    cargo clippy -p kubewasm-selector --target wasm32-wasip2 --locked -- -D warnings
)

step "plugin unit tests (Rust natively, JavaScript and TypeScript in Node, Python, Go and C with a fake host)"
CARGO_TARGET_DIR="$cache/plugins-target" cargo test --manifest-path plugins/Cargo.toml --workspace --locked
(cd plugins/js && npm test --silent)
(cd guest-sdk/ts && npm test --silent)
(cd plugins/ts && npm test --silent)
plugins/python/tools/test.sh
plugins/go/tools/test.sh
plugins/c/tools/test.sh
# The committed C bindings (guest-sdk/c/bindings) match wit/.
plugins/c/tools/bindings.sh --check

step "plugin templates: kubewasm new, build, kubewasm test and check, per language"
cargo build -p kubewasm --bin kubewasm --locked
export KUBEWASM_BIN="$CARGO_TARGET_DIR/debug/kubewasm"
tests/templates.sh

step "tests against a private control plane"
data_dir="$(mktemp -d "${TMPDIR:-/tmp}/kubewasm-test-cp.XXXXXX")"
stop() { tests/control-plane/cluster.sh down --dir "$data_dir" >/dev/null 2>&1 || true; }
trap stop EXIT
KUBEWASM_TEST_KUBECONFIG="$(tests/control-plane/cluster.sh up --dir "$data_dir")"
export KUBEWASM_TEST_KUBECONFIG
# Every test binary runs even if one fails, so one run reports every failure.
cargo test --workspace --locked --no-fail-fast "$@"
