#!/usr/bin/env bash
# Builds the plugin component dist/{{name}}.wasm with componentize-py, from
# app.py and the kubewasm Python SDK in {{sdk}}/guest-sdk/python.
#
#   ./build.sh        # dist/{{name}}.wasm (about 18 MB, 10-20 s)
#   ./build.sh test   # the unit tests and fixtures, natively (no component)
#
# componentize-py is installed once into a virtualenv cached under
# ${XDG_CACHE_HOME:-~/.cache}/kubewasm/python/, by the kubewasm checkout's
# plugins/python/tools/venv.sh. The component imports only the kubewasm host
# interface (--stub-wasi): the host refuses sockets and files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
kubewasm_checkout="{{sdk}}"
venv="$("$kubewasm_checkout/plugins/python/tools/venv.sh")"

if [[ "${1:-}" == "test" ]]; then
    PYTHONPATH="$kubewasm_checkout/guest-sdk/python" PYTHONDONTWRITEBYTECODE=1 \
        "$venv/bin/python" -m unittest discover -s . -p 'test_*.py'
    exit
fi

"$venv/bin/python" -m py_compile app.py
mkdir -p dist
tmp="$(mktemp dist/.{{name}}.XXXXXX)"
trap 'rm -f "$tmp"' EXIT
"$venv/bin/componentize-py" -d "$kubewasm_checkout/wit" -w plugin componentize app \
    -p . -p "$kubewasm_checkout/guest-sdk/python" --stub-wasi -o "$tmp"
chmod 644 "$tmp"
mv -f "$tmp" dist/{{name}}.wasm
echo "built dist/{{name}}.wasm ($(wc -c <dist/{{name}}.wasm) bytes)"
