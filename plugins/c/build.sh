#!/usr/bin/env bash
# Builds every C plugin in plugins/c/<name>/ (its *.c besides test_*.c,
# against the C SDK in guest-sdk/c) into a WebAssembly component
# <out>/<name>.wasm, with tools/build-plugin.sh (clang-19 and wasi-libc from
# Debian, then `kubewasm componentize`; each result cached by input hash).
#
#   plugins/c/build.sh [OUT_DIR [NAME...]]
#
# OUT_DIR defaults to $KUBEWASM_PLUGIN_OUT, then to plugins/dist/. With NAMEs,
# only those plugins are built.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

out="${1:-${KUBEWASM_PLUGIN_OUT:-$repo/plugins/dist}}"
only=("${@:2}")
for name in "${only[@]}"; do
    [[ -d "$here/$name" && "$name" != tools ]] || { echo "c-plugins: error: no plugin $name in $here" >&2; exit 1; }
done
mkdir -p "$out"

built=0
for plugin_dir in "$here"/*/; do
    plugin_dir="${plugin_dir%/}"
    name="$(basename "$plugin_dir")"
    [[ "$name" != tools ]] || continue
    if [[ ${#only[@]} -gt 0 && " ${only[*]} " != *" $name "* ]]; then
        continue
    fi
    "$here/tools/build-plugin.sh" "$plugin_dir" "$out/$name.wasm"
    built=$((built + 1))
done
[[ $built -gt 0 ]] || { echo "c-plugins: error: no plugin found (expected $here/<name>/*.c)" >&2; exit 1; }
