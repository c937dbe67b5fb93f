#!/usr/bin/env bash
# Builds one Go plugin (a module whose package main registers a plugin with
# kubewasm.Register) into a WebAssembly component.
#
#   plugins/go/tools/build-plugin.sh PLUGIN_DIR OUT.wasm
#
# 1. `go build` for GOOS=wasip1 GOARCH=wasm with -buildmode=c-shared (a
#    reactor: package init runs, main does not) and
#    -ldflags=-checklinkname=0 (the wit-bindgen Go runtime links to runtime
#    internals), in the workspace of tools/env.sh (which supplies
#    go.bytecodealliance.org/pkg);
# 2. `kubewasm componentize`, which embeds the contract's `plugin` world and
#    adapts the wasi_snapshot_preview1 imports Go's runtime makes with the
#    WASI preview1 reactor adapter. The kubewasm binary is $KUBEWASM_BIN,
#    else `kubewasm` on PATH, else built from this checkout with cargo (in
#    $KUBEWASM_HOST_TARGET_DIR, default ~/.cache/kubewasm/target).
#
# OUT.wasm is replaced atomically.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
[[ $# -eq 2 ]] || { echo "usage: $0 PLUGIN_DIR OUT.wasm" >&2; exit 2; }
plugin="$(cd "$1" && pwd)"
out="$2"
name="$(basename "$plugin")"

# shellcheck source=plugins/tools/lib.sh
source "$repo/plugins/tools/lib.sh"
log_as go-plugins

command -v go >/dev/null || die "go is not installed (https://go.dev/dl/, 1.24 or newer)"
kubewasm="$(kubewasm_bin)"

work="$("$here/env.sh" "$plugin")"
mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d)"
remove_on_exit "$tmp"

(cd "$plugin" && GOWORK="$work" GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local \
    go build -trimpath -buildmode=c-shared -ldflags=-checklinkname=0 -o "$tmp/core.wasm" .) \
    || die "$name: go build failed"
"$kubewasm" componentize "$tmp/core.wasm" -o "$tmp/component.wasm" >&2 \
    || die "$name: kubewasm componentize failed"
chmod 0644 "$tmp/component.wasm"
mv -f "$tmp/component.wasm" "$out"
