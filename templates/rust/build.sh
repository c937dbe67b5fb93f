#!/usr/bin/env bash
# Builds the plugin component dist/{{name}}.wasm (installs the wasm32-wasip2
# target with rustup if it is missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
target=wasm32-wasip2
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    rustup target add "$target"
fi
cargo build --release --target "$target"
mkdir -p dist
cp "${CARGO_TARGET_DIR:-target}/$target/release/{{name_snake}}.wasm" dist/{{name}}.wasm
echo "built dist/{{name}}.wasm ($(wc -c <dist/{{name}}.wasm) bytes)"
