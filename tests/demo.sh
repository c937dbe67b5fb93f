#!/usr/bin/env bash
# The README's main job: builds the kubewasm host and the example plugins
# (Rust and JavaScript), validates each component with `kubewasm check`, and
# shows each one reconciling sample objects with `kubewasm eval`, printing
# the intents it returns.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
plugins="${KUBEWASM_PLUGIN_DIR:-$repo/plugins/dist}"
cd "$repo"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

step "building the host"
cargo build --release --locked -p kubewasm
kubewasm="$CARGO_TARGET_DIR/release/kubewasm"

step "building the example plugins"
plugins/build.sh "$plugins"

for plugin in label-propagator website configmap-hasher; do
    step "kubewasm check $plugin.wasm"
    "$kubewasm" check "$plugins/$plugin.wasm"
done

show() {
    local plugin="$1" case="$2"; shift 2
    step "kubewasm eval $plugin.wasm --object $case/object.yaml $*"
    sed 's/^/    /' "$case/object.yaml" >&2
    echo "    ---- intents ----" >&2
    "$kubewasm" eval "$plugins/$plugin.wasm" --object "$case/object.yaml" "$@"
}

lp=plugins/label-propagator/fixtures
show label-propagator "$lp/configmap-gets-labels" --settings "$lp/settings.json" --cache "$lp/cache"
web=plugins/website/fixtures
show website "$web/new-website" --cache "$web/cache"
show website "$web/becomes-ready" --cache "$web/cache"
js=plugins/js/configmap-hasher/fixtures
show configmap-hasher "$js/first-hash"

step "done: every plugin loaded in the sandbox and returned its intents"
