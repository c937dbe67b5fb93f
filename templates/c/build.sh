#!/usr/bin/env bash
# Builds the plugin component dist/{{name}}.wasm from the *.c files here
# (test_*.c aside) and the kubewasm C SDK in {{sdk}}/guest-sdk/c.
#
#   ./build.sh        # dist/{{name}}.wasm (about 100 KB, a second or two)
#   ./build.sh test   # the native tests (test_*.c) with the SDK's fake host
#
# Debian's clang-19, lld-19 and wasi-libc are installed once if missing
# (apt-get, as root or through sudo). `kubewasm componentize` turns the core
# module into a component: the kubewasm binary is $KUBEWASM_BIN, else
# `kubewasm` on PATH, else the checkout's host built with cargo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
kubewasm_checkout="{{sdk}}"

if [[ "${1:-}" == "test" ]]; then
    exec "$kubewasm_checkout/plugins/c/tools/test.sh" .
fi
exec "$kubewasm_checkout/plugins/c/tools/build-plugin.sh" . dist/{{name}}.wasm
