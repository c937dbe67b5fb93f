#!/usr/bin/env bash
# Regenerates the C bindings of the `plugin` world (wit/plugin.wit) that the
# C SDK compiles with, guest-sdk/c/bindings/plugin.{c,h} and
# plugin_component_type.o (the world's type, a 2 KB custom section that
# makes the core module self-describing), with `wit-bindgen c`
# (plugins/tools/wit-bindgen.sh installs the CLI once, about five minutes).
#
#   plugins/c/tools/bindings.sh          # rewrite the committed bindings
#   plugins/c/tools/bindings.sh --check  # fail if they differ from wit/
#
# The bindings are committed so that building a C plugin needs only clang
# and wasi-libc, not a wit-bindgen install; `--check` (run by tests/run.sh)
# keeps them in step with the contract.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
dest="$repo/guest-sdk/c/bindings"

wit_bindgen="$("$repo/plugins/tools/wit-bindgen.sh")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$wit_bindgen" c "$repo/wit" --world plugin --out-dir "$tmp" >/dev/null 2>&1 \
    || { "$wit_bindgen" c "$repo/wit" --world plugin --out-dir "$tmp"; exit 1; }
files=(plugin.h plugin.c plugin_component_type.o)

case "${1:-}" in
    "")
        mkdir -p "$dest"
        for file in "${files[@]}"; do cp "$tmp/$file" "$dest/$file"; done
        echo "c-bindings: wrote ${files[*]} in $dest" >&2
        ;;
    --check)
        for file in "${files[@]}"; do
            if ! cmp -s "$dest/$file" "$tmp/$file"; then
                diff -u "$dest/$file" "$tmp/$file" >&2 || true
                echo "c-bindings: error: guest-sdk/c/bindings/$file is out of date with wit/; run plugins/c/tools/bindings.sh" >&2
                exit 1
            fi
        done
        echo "c-bindings: guest-sdk/c/bindings matches wit/" >&2
        ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
