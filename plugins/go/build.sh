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
# host watching OUT_DIR reloads only what really changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
sdk="$repo/guest-sdk/go"

out="${1:-${KUBEWASM_PLUGIN_OUT:-$repo/plugins/dist}}"
only=("${@:2}")
for name in "${only[@]}"; do
    [[ -f "$here/$name/go.mod" ]] || { echo "go-plugins: error: no plugin $name (expected $here/$name/go.mod)" >&2; exit 1; }
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/go/components"
mkdir -p "$cache"

log() { echo "go-plugins: $*" >&2; }
die() { log "error: $*"; exit 1; }

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
        (cd "$repo/wit" && find . -type f -name '*.wit' | LC_ALL=C sort | xargs -r sha256sum)
        (cd "$plugin_dir" && sources . | xargs -r sha256sum)
        (cd "$sdk" && sources . | xargs -r sha256sum)
    } | sha256sum | cut -d' ' -f1
}

# Copies $1 to $2 atomically, and only if the content differs.
install_file() {
    local src="$1" dest="$2"
    if cmp -s "$src" "$dest"; then
        return
    fi
    local tmp
    tmp="$(mktemp "$(dirname "$dest")/.$(basename "$dest").XXXXXX")"
    cp "$src" "$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$dest"
}

built=0
for plugin_dir in "$here"/*/; do
    plugin_dir="${plugin_dir%/}"
    name="$(basename "$plugin_dir")"
    [[ -f "$plugin_dir/go.mod" ]] || continue
    if [[ ${#only[@]} -gt 0 && " ${only[*]} " != *" $name "* ]]; then
        continue
    fi
    built=$((built + 1))

    hash="$(inputs_hash "$plugin_dir")"
    mkdir -p "$cache/$name"
    cached="$cache/$name/$hash.wasm"
    if [[ "${KUBEWASM_GO_REBUILD:-}" != "1" && -f "$cached" ]]; then
        log "$name: unchanged, using cached component"
        touch "$cached"
    else
        log "$name: building"
        start=$(date +%s)
        "$here/tools/build-plugin.sh" "$plugin_dir" "$cached"
        log "$name: built in $(($(date +%s) - start)) s, $(stat -c %s "$cached") bytes"
        # Keep the three newest builds of this plugin.
        ls -t "$cache/$name"/*.wasm | tail -n +4 | xargs -r rm -f
    fi
    install_file "$cached" "$out/$name.wasm"
    log "$name: $out/$name.wasm"
done

[[ $built -gt 0 ]] || die "no plugin found (expected $here/<name>/go.mod)"
