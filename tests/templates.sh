#!/usr/bin/env bash
# Tests the `kubewasm new` templates as a plugin author uses them: for each
# language, generates a project, builds it with its one command
# (`./build.sh`), runs its fixtures with `kubewasm test` and checks the
# component with `kubewasm check`. Prints the time each step took.
#
#   tests/templates.sh [LANG...]     # default: every language
#
# KUBEWASM_BIN names the kubewasm binary (default: cargo's debug build).
# Builds reuse the caches under ${XDG_CACHE_HOME:-~/.cache}/kubewasm (the
# Rust template's target directory, componentize-py's virtualenv, npm's and
# Go's caches), so a warm run takes seconds per language.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm"
kubewasm="${KUBEWASM_BIN:-${CARGO_TARGET_DIR:-$cache/target}/debug/kubewasm}"
[[ -x "$kubewasm" ]] || { echo "templates: no kubewasm binary at $kubewasm (cargo build -p kubewasm)" >&2; exit 1; }
# Template builds that componentize (Go, C) use this binary too.
export KUBEWASM_BIN="$kubewasm"
langs=("$@")
[[ ${#langs[@]} -gt 0 ]] || langs=(rust go python ts js c)

work="$(mktemp -d "${TMPDIR:-/tmp}/kubewasm-templates.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# The Rust template's dependencies compile once, into the cache.
export CARGO_TARGET_DIR="$cache/templates-target"

failed=()
for lang in "${langs[@]}"; do
    name="hello-$lang"
    echo "==> templates: $lang" >&2
    start=$(date +%s)
    if (
        set -e
        "$kubewasm" new "$name" --lang "$lang" --dir "$work" --sdk "$repo" >&2
        cd "$work/$name"
        t0=$(date +%s); ./build.sh >&2; t1=$(date +%s)
        "$kubewasm" test . >&2; t2=$(date +%s)
        "$kubewasm" check "dist/$name.wasm" >"$work/$name.check"; t3=$(date +%s)
        grep -q "name: $name" "$work/$name.check" \
            || { echo "templates: $lang: kubewasm check does not name the plugin $name" >&2; exit 1; }
        echo "templates: $lang: build $((t1 - t0)) s, test $((t2 - t1)) s, check $((t3 - t2)) s, $(wc -c <"dist/$name.wasm") bytes" >&2
    ); then
        echo "templates: $lang: ok in $(($(date +%s) - start)) s" >&2
    else
        echo "templates: $lang: FAILED" >&2
        failed+=("$lang")
    fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "templates: failed: ${failed[*]}" >&2
    exit 1
fi
