#!/usr/bin/env bash
# Builds every example plugin into a WebAssembly component <out>/<name>.wasm.
#
#   plugins/build.sh [OUT_DIR]
#
# OUT_DIR defaults to $KUBEWASM_PLUGIN_OUT, then to plugins/dist/ (gitignored).
#
# Rust plugins (the workspace in plugins/Cargo.toml) are built in release mode
# for wasm32-wasip2, which rustup installs if it is missing. Cargo's target
# directory defaults to ${XDG_CACHE_HOME:-~/.cache}/kubewasm/plugins-target,
# outside the repository, so CI and fresh clones reuse earlier builds; set
# CARGO_TARGET_DIR to override it. Each output is checked to be a component
# (not a core module), and replaced atomically and only when its content
# changes, so a host watching OUT_DIR reloads only what really changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
target="wasm32-wasip2"

# The Rust plugins: crate names in plugins/Cargo.toml, one component each.
rust_plugins=(label-propagator website probe v01-labeler conformance-rust bench-labeller)

# shellcheck source=plugins/tools/lib.sh
source "$here/tools/lib.sh" # log, die, output_dir, install_file
out="$(output_dir "${1:-}")"

# Fails unless $1 is a WebAssembly component: magic "\0asm", then version 13
# with layer 1 (a core module has version 1, layer 0).
check_component() {
    local header
    header="$(od -An -tx1 -N8 "$1" | tr -d ' \n')"
    [[ "$header" == "0061736d0d000100" ]] \
        || die "$1 is not a WebAssembly component (header $header)"
}

# --- Rust plugins ----------------------------------------------------------

command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    log "installing the $target target"
    rustup target add "$target"
fi

# Where the host builds (tests/run.sh's directory): Go and C plugins need
# the kubewasm CLI for `componentize`, built there unless KUBEWASM_BIN names one.
host_target="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/target}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/plugins-target}"
log "building ${rust_plugins[*]} for $target (target dir $CARGO_TARGET_DIR)"
packages=()
for name in "${rust_plugins[@]}"; do
    packages+=(--package "$name")
done
cargo build --manifest-path "$here/Cargo.toml" --release --target "$target" "${packages[@]}"

for name in "${rust_plugins[@]}"; do
    built="$CARGO_TARGET_DIR/$target/release/${name//-/_}.wasm"
    [[ -f "$built" ]] || die "cargo did not produce $built"
    check_component "$built"
    install_file "$built" "$out/$name.wasm"
    log "$out/$name.wasm ($(wc -c <"$out/$name.wasm") bytes)"
done

# --- JavaScript plugins ----------------------------------------------------
# plugins/js/build.sh builds each plugins/js/<name>/ into $out/<name>.wasm
# with componentize-js (npm), caching the result by input hash.
"$here/js/build.sh" "$out"

# --- TypeScript plugins ----------------------------------------------------
# plugins/ts/build.sh type-checks, bundles (esbuild) and componentizes each
# plugins/ts/<name>/ into $out/<name>.wasm, caching the result by input hash.
"$here/ts/build.sh" "$out"


# --- Python plugins --------------------------------------------------------
# plugins/python/build.sh builds each plugins/python/<name>/ into
# $out/<name>.wasm with componentize-py (PyPI, in a cached virtualenv),
# caching the result by input hash.
"$here/python/build.sh" "$out"

# --- Go and C plugins -----------------------------------------------------
# Both make a core module and turn it into a component with `kubewasm
# componentize`: $KUBEWASM_BIN, else this checkout's CLI, built here (in the
# host's target directory, where tests/run.sh builds it anyway).
if [[ -z "${KUBEWASM_BIN:-}" ]]; then
    log "building the kubewasm CLI for componentize (target dir $host_target)"
    CARGO_TARGET_DIR="$host_target" cargo build --manifest-path "$repo/Cargo.toml" \
        -p kubewasm --bin kubewasm --locked
    export KUBEWASM_BIN="$host_target/debug/kubewasm"
fi

# plugins/go/build.sh builds each plugins/go/<name>/ into $out/<name>.wasm
# with Go's wasip1 port, caching the result by input hash.
"$here/go/build.sh" "$out"

# plugins/c/build.sh builds each plugins/c/<name>/ into $out/<name>.wasm with
# Debian's clang-19 and wasi-libc (installed if missing), caching the result
# by input hash.
"$here/c/build.sh" "$out"
