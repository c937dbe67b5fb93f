#!/usr/bin/env bash
# Runs the C SDK's unit tests and every C plugin's native tests
# (plugins/c/<name>/test_*.c), compiled with the host's C compiler against
# the SDK and its fake host (guest-sdk/c/testing): no component, no cluster.
#
#   plugins/c/tools/test.sh [PLUGIN_DIR...]   # default: the SDK and every plugin
#
# Tests build with -fsanitize=address,undefined where the compiler supports
# it, so an out-of-bounds access, a use after free or a leak fails the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
sdk="$repo/guest-sdk/c"
# The host's C compiler: $CC, else cc (gcc), else the clang-19 that
# tools/toolchain.sh installs for the components.
cc="${CC:-$(command -v cc || true)}"
[[ -n "$cc" ]] || cc="$("$here/tools/toolchain.sh")"

flags=(-std=c11 -g -O1 -Wall -Wextra -Werror -Wno-unused-parameter -I"$sdk/include" -I"$sdk/testing")
if echo 'int main(void){return 0;}' | "$cc" -x c - -fsanitize=address,undefined -o /dev/null 2>/dev/null; then
    flags+=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
fi
sdk_sources=("$sdk/src/arena.c" "$sdk/src/json.c" "$sdk/src/json_text.c" "$sdk/src/object.c"
             "$sdk/src/intent.c" "$sdk/src/settings.c" "$sdk/src/host.c" "$sdk/testing/fake_host.c")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# run NAME SOURCE...: compiles the sources with the SDK and runs the result.
run() {
    local name="$1"
    shift
    echo "c-tests: $name" >&2
    "$cc" "${flags[@]}" "$@" "${sdk_sources[@]}" -lm -o "$work/$name"
    "$work/$name"
}

dirs=("$@")
if [[ ${#dirs[@]} -eq 0 ]]; then
    run sdk "$sdk"/tests/test_*.c
    for dir in "$here"/*/; do
        [[ "$(basename "$dir")" != tools ]] && dirs+=("${dir%/}")
    done
fi
for dir in "${dirs[@]}"; do
    dir="$(cd "$dir" && pwd)"
    mapfile -t tests < <(find "$dir" -maxdepth 1 -name 'test_*.c' | LC_ALL=C sort)
    [[ ${#tests[@]} -gt 0 ]] || continue
    mapfile -t sources < <(find "$dir" -maxdepth 1 -name '*.c' ! -name 'test_*.c' | LC_ALL=C sort)
    run "$(basename "$dir")" -I"$dir" "${sources[@]}" "${tests[@]}"
done
