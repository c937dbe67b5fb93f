#!/usr/bin/env bash
# Generates the Go bindings of the contract (wit/, world `plugin`) into
# guest-sdk/go/internal/wit with `wit-bindgen go` (the CLI that
# plugins/tools/wit-bindgen.sh installs once). The output is committed, so
# building a plugin needs no wit-bindgen; tests run `generate.sh --check`,
# which fails if the committed bindings differ from what the contract
# generates today.
#
#   guest-sdk/go/tools/generate.sh           # rewrite internal/wit
#   guest-sdk/go/tools/generate.sh --check   # compare only
#
# Hand-written files under internal/wit (the export hooks in
# exports/export_kubewasm_plugin_reconciler) are kept.
set -euo pipefail

sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$sdk/../.." && pwd)"
pkg="kubewasm.dev/sdk/go/internal/wit"
dest="$sdk/internal/wit"

bindgen="$("$repo/plugins/tools/wit-bindgen.sh")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# gofmt formats the output when it is on PATH (it is, beside go).
"$bindgen" go --world plugin --pkg-name "$pkg" --out-dir "$tmp" "$repo/wit" >"$tmp/.log" 2>&1 || { cat "$tmp/.log" >&2; exit 1; }

# wit-bindgen 0.63 sizes the exports' return area without rounding it up
# to its alignment: for this world it allocates 17*4 = 68 bytes aligned to
# 8, which the runtime package refuses at initialization ("size 68 is not
# compatible with alignment 8"), so every call traps. Round the size up
# (72 here), the canonical ABI's size of that area.
sed -i -E 's/witRuntime\.Allocate\(&staticPinner, (.+), ([0-9]+)\)\)$/witRuntime.Allocate(\&staticPinner, ((\1)+\2-1)\/\2*\2, \2))/' \
    "$tmp/exports/wit_exports/wit_exports.go"
gofmt -w "$tmp/exports/wit_exports/wit_exports.go"

# The generated files: everything wit-bindgen writes.
generated() { (cd "$1" && find . -type f \( -name 'wit_bindings.go' -o -name 'wit_exports.go' -o -name 'empty.s' \) | LC_ALL=C sort); }

case "${1:-}" in
    --check)
        if ! diff <(generated "$tmp") <(generated "$dest") >/dev/null; then
            echo "go-bindings: the files of $dest differ from what wit-bindgen generates; run $0" >&2
            diff <(generated "$tmp") <(generated "$dest") >&2 || true
            exit 1
        fi
        while IFS= read -r file; do
            if ! cmp -s "$tmp/$file" "$dest/$file"; then
                echo "go-bindings: $dest/$file is stale; run $0" >&2
                diff -u "$dest/$file" "$tmp/$file" | head -40 >&2 || true
                exit 1
            fi
        done < <(generated "$tmp")
        echo "go-bindings: up to date with wit/" >&2
        ;;
    "")
        while IFS= read -r file; do
            rm -f "$dest/$file"
        done < <([ -d "$dest" ] && generated "$dest" || true)
        mkdir -p "$dest"
        (cd "$tmp" && generated . | while IFS= read -r file; do
            mkdir -p "$dest/$(dirname "$file")"
            cp "$file" "$dest/$file"
        done)
        echo "go-bindings: wrote $dest" >&2
        ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
