#!/usr/bin/env bash
# Prints the path of a go.work file for building the Go plugin in $1 for
# wasip1 (use it as GOWORK=...). The workspace holds the plugin's module and
# points go.bytecodealliance.org/pkg, which the SDK's generated bindings
# import, at the wit-bindgen Go runtime package:
#
#   - The Go module proxy does not serve go.bytecodealliance.org/pkg; its
#     source ships in the wit-bindgen-go crate, which
#     plugins/tools/wit-bindgen.sh --go-pkg fetches from the crate registry
#     (seconds; the wit-bindgen CLI itself is not needed).
#   - Its go.mod says `go 1.27.1`, newer than the Go toolchains we build
#     with, and a module's go line must not be newer than the toolchain
#     (GOTOOLCHAIN=local: no toolchain download). So the package's wit/
#     directory is copied once, with its go.mod, into
#     ${XDG_CACHE_HOME:-~/.cache}/kubewasm/go/wit-go-pkg-<version>, and the
#     go line of that copy is lowered to 1.24 (the first Go with
#     //go:wasmexport; the package uses nothing newer). Nothing is copied
#     into the repository.
#
#   plugins/go/tools/env.sh PLUGIN_DIR   # prints the go.work path
#   plugins/go/tools/env.sh --pkg        # prints the runtime package copy
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/go"
version=0.63.0 # the wit-bindgen that generated guest-sdk/go/internal/wit
pkg="$cache/wit-go-pkg-$version"

if [[ ! -f "$pkg/go.mod" ]]; then
    src="$("$repo/plugins/tools/wit-bindgen.sh" --go-pkg)"
    [[ "$src" == *"wit-bindgen-go-$version/"* ]] \
        || { echo "go-env: $src is not wit-bindgen-go $version" >&2; exit 1; }
    mkdir -p "$cache"
    tmp="$(mktemp -d "$cache/.wit-go-pkg.XXXXXX")"
    cp -R "$src/wit" "$src/go.mod" "$src/LICENSE" "$tmp/"
    sed -i 's/^go [0-9.]*$/go 1.24/' "$tmp/go.mod"
    rm -rf "$pkg"
    mv "$tmp" "$pkg"
fi

case "${1:-}" in
    --pkg) echo "$pkg" ;;
    "" | -*) echo "usage: $0 PLUGIN_DIR | --pkg" >&2; exit 2 ;;
    *)
        plugin="$(cd "$1" && pwd)"
        [[ -f "$plugin/go.mod" ]] || { echo "go-env: no go.mod in $plugin" >&2; exit 1; }
        # One workspace per plugin directory, keyed by its path.
        work="$cache/work/$(printf '%s' "$plugin" | sha256sum | cut -c1-16)"
        mkdir -p "$work"
        goversion="$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"
        cat >"$work/go.work.tmp" <<WORK
go $goversion

use $plugin

replace go.bytecodealliance.org/pkg => $pkg
WORK
        mv -f "$work/go.work.tmp" "$work/go.work"
        echo "$work/go.work"
        ;;
esac
