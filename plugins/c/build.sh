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
# shellcheck source=plugins/tools/lib.sh
source "$repo/plugins/tools/lib.sh"
log_as c-plugins

find_plugins "$here" '*.c' "${@:2}"
out="$(output_dir "${1:-}")"
for plugin_dir in "${plugin_dirs[@]}"; do
    "$here/tools/build-plugin.sh" "$plugin_dir" "$out/$(basename "$plugin_dir").wasm"
done
