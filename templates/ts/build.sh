#!/usr/bin/env bash
# Builds the plugin component dist/{{name}}.wasm (`npm run build`), installing
# the npm packages first when they are missing or package.json changed.
#
#   ./build.sh        # dist/{{name}}.wasm (componentize-js: about 12 MB, 10-20 s)
#   ./build.sh test   # the unit tests and the fixtures, natively in Node
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ ! -d node_modules || package.json -nt node_modules ]]; then
    npm install --no-audit --no-fund --loglevel=error
    touch node_modules
fi
if [[ "${1:-}" == "test" ]]; then
    npm test --silent
    exit
fi
npm run build --silent
echo "built dist/{{name}}.wasm ($(wc -c <dist/{{name}}.wasm) bytes)"
