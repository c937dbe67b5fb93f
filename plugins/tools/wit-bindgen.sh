#!/usr/bin/env bash
# Prints the path of a wit-bindgen CLI (the crate registry's wit-bindgen-cli,
# with the Go and C generators), installing it once under
# ${XDG_CACHE_HOME:-~/.cache}/kubewasm/tools, keyed by version. The first
# install compiles for about five minutes on two cores; later calls are
# instant.
#
#   plugins/tools/wit-bindgen.sh            # the binary's path
#   plugins/tools/wit-bindgen.sh --go-pkg   # the Go runtime package the
#                                           # generated Go bindings import,
#                                           # from the wit-bindgen-go crate
#                                           # (fetched alone, in seconds: it
#                                           # does not need the CLI)
set -euo pipefail

version=0.63.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm"
root="$cache/tools/wit-bindgen-cli-$version"
bin="$root/bin/wit-bindgen"

install() {
    if [ ! -x "$bin" ]; then
        echo "wit-bindgen: installing wit-bindgen-cli $version (once, about five minutes)" >&2
        # Its own target directory: a shared one would be locked by other builds.
        CARGO_TARGET_DIR="$cache/tools/build-wit-bindgen-cli-$version" \
            cargo install wit-bindgen-cli --version "=$version" --locked \
            --no-default-features --features go,c --root "$root" >&2
        rm -rf "$cache/tools/build-wit-bindgen-cli-$version"
    fi
}

case "${1:-}" in
    "") install; echo "$bin" ;;
    --go-pkg)
        # The cargo install above unpacked the wit-bindgen-go crate, whose
        # src/pkg is the Go module go.bytecodealliance.org/pkg (the Go module
        # proxy does not serve it). Its source is used in place, not copied.
        registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
        # The unpacked crate, if any (no registry at all is not an error).
        locate() {
            find "$registry" -maxdepth 2 -type d -name "wit-bindgen-go-$version" 2>/dev/null | head -n 1 || true
        }
        pkg="$(locate)"
        if [ -z "$pkg" ] || [ ! -f "$pkg/src/pkg/go.mod" ]; then
            # Cargo's registry was cleaned since the install: fetch the crate
            # again (cargo unpacks what it fetches).
            fetch="$cache/tools/fetch-wit-bindgen-go-$version"
            mkdir -p "$fetch/src"
            printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nwit-bindgen-go = "=%s"\n' \
                "$version" >"$fetch/Cargo.toml"
            touch "$fetch/src/lib.rs"
            cargo fetch --manifest-path "$fetch/Cargo.toml" >&2
            pkg="$(locate)"
        fi
        [ -f "$pkg/src/pkg/go.mod" ] || { echo "wit-bindgen: no wit-bindgen-go-$version/src/pkg under $registry" >&2; exit 1; }
        echo "$pkg/src/pkg"
        ;;
    *) echo "usage: $0 [--go-pkg]" >&2; exit 2 ;;
esac
