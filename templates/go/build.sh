#!/usr/bin/env bash
# Builds this plugin into dist/{{name}}.wasm: Go for wasip1, then
# `kubewasm componentize`, with the kubewasm checkout's build script.
# Set KUBEWASM_BIN to the kubewasm binary to use (default: `kubewasm` on
# PATH, else built from the checkout).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"{{sdk}}/plugins/go/tools/build-plugin.sh" "$here" "$here/dist/{{name}}.wasm"
echo "built $here/dist/{{name}}.wasm ($(wc -c <"$here/dist/{{name}}.wasm") bytes)"
