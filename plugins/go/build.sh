#!/usr/bin/env bash
# Builds every Go plugin in plugins/go/<name>/ (a Go module whose package
# main calls kubewasm.Register, with the SDK in guest-sdk/go) into a
# WebAssembly component <out>/<name>.wasm, with tools/build-plugin.sh
# (go build for wasip1, then `kubewasm componentize`).
#
#   plugins/go/build.sh [OUT_DIR [NAME...]]
#
# OUT_DIR defaults to $KUBEWASM_PLUGIN_OUT, then to plugins/dist/. With NAMEs,
# only those plugins are built.
#
# Each result is cached as ${XDG_CACHE_HOME:-~/.cache}/kubewasm/go/components/
# <name>/<inputs hash>.wasm (the hash covers the plugin's go.mod and *.go but
# its tests, the SDK, wit/, these scripts and the Go version) and reused
# while they are unchanged; KUBEWASM_GO_REBUILD=1 forces a rebuild. The
# output file is replaced atomically and only when its content changes, so a
# host watching OUT_DIR reloads only what really changed (plugins/tools/lib.sh
# does the caching).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
sdk="$repo/guest-sdk/go"

# shellcheck source=plugins/tools/lib.sh
source "$repo/plugins/tools/lib.sh"
log_as go-plugins

find_plugins "$here" go.mod "${@:2}"
out="$(output_dir "${1:-}")"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/go/components"

command -v go >/dev/null || die "go is not installed (https://go.dev/dl/, 1.24 or newer)"

# The Go sources of a module directory, tests excluded.
sources() {
    (cd "$1" && find . -type f \( -name '*.go' -o -name '*.s' -o -name go.mod -o -name go.sum \) \
        ! -name '*_test.go' ! -path './kubewasmtest/*' | LC_ALL=C sort)
}

# Hash of everything a plugin's component is built from.
inputs_hash() {
    local plugin_dir="$1"
    {
        go env GOVERSION
        cat "$here/build.sh" "$here/tools/build-plugin.sh" "$here/tools/env.sh" | sha256sum
        files_sha256 "$repo/wit" . -type f -name '*.wit'
        (cd "$plugin_dir" && sources . | xargs -r sha256sum)
        (cd "$sdk" && sources . | xargs -r sha256sum)
    } | digest
}

# build_one PLUGIN_DIR OUT: builds one plugin into OUT.
build_one() {
    log "$(basename "$1"): building"
    "$here/tools/build-plugin.sh" "$1" "$2"
}

build_plugins "$cache" "${KUBEWASM_GO_REBUILD:-}" "$out"
