#!/usr/bin/env bash
# Builds one C plugin (every *.c in SRC_DIR except test_*.c, with the C SDK
# in guest-sdk/c) into the WebAssembly component OUT.wasm.
#
#   plugins/c/tools/build-plugin.sh SRC_DIR OUT.wasm
#
# clang-19 compiles for wasm32-wasi as a preview 1 reactor (Debian has no
# wasip2 sysroot; tools/toolchain.sh installs the packages), linking the
# committed bindings of the `plugin` world (guest-sdk/c/bindings); then
# `kubewasm componentize` turns the core module into a component, adapting
# its wasi_snapshot_preview1 imports (libc's stdio, pulled in by
# vsnprintf/strtod) with the preview 1 reactor adapter.
#
# The kubewasm binary is $KUBEWASM_BIN, else `kubewasm` on PATH, else the
# repository's host built with cargo (debug, in $KUBEWASM_HOST_TARGET_DIR,
# default ~/.cache/kubewasm/target, where tests/run.sh builds it). Extra compiler flags: $KUBEWASM_CFLAGS.
# The component is cached as ~/.cache/kubewasm/c/components/<name>/<hash>.wasm
# keyed by every input (sources, SDK, bindings, flags, clang and kubewasm
# versions, this script); KUBEWASM_C_REBUILD=1 forces a rebuild. OUT.wasm is
# replaced atomically and only when its content changes (plugins/tools/lib.sh
# does the caching).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
sdk="$repo/guest-sdk/c"

[[ $# -eq 2 ]] || { echo "usage: $0 SRC_DIR OUT.wasm" >&2; exit 2; }
src="$(cd "$1" && pwd)"
out="$2"
name="$(basename "$out" .wasm)"

# shellcheck source=plugins/tools/lib.sh
source "$repo/plugins/tools/lib.sh"
log_as c-plugins

mapfile -t sources < <(cd "$src" && find . -maxdepth 1 -type f -name '*.c' ! -name 'test_*.c' | LC_ALL=C sort)
[[ ${#sources[@]} -gt 0 ]] || die "$name: no C sources in $src (expected *.c besides test_*.c)"

clang="$("$here/toolchain.sh")"
kubewasm="$(kubewasm_bin)"
[[ -x "$kubewasm" ]] || die "$name: kubewasm binary $kubewasm is not executable"

cflags=(--target=wasm32-wasi -mexec-model=reactor -std=c11 -Os -Wall -Wextra -Wno-unused-parameter)
# shellcheck disable=SC2206 # word splitting of user flags is intended
cflags+=(${KUBEWASM_CFLAGS:-})

inputs_hash() {
    {
        echo "cflags=${cflags[*]}"
        "$clang" --version | head -n 1
        "$kubewasm" --version
        sha256sum "$here/build-plugin.sh"
        files_sha256 "$src" . -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \) ! -name 'test_*'
        files_sha256 "$sdk" include src bindings -type f
    } | digest
}

# build OUT: compiles the plugin and componentizes it into OUT.
build() {
    local work
    work="$(mktemp -d)"
    remove_on_exit "$work"
    "$clang" "${cflags[@]}" -I"$src" -I"$sdk/include" -I"$sdk/bindings" -I"$sdk/src" \
        "${sources[@]/#./$src}" "$sdk"/src/*.c "$sdk/bindings/plugin.c" "$sdk/bindings/plugin_component_type.o" \
        -Wl,--strip-all,--keep-section=component-type:plugin -o "$work/core.wasm" \
        || die "$name: clang failed"
    "$kubewasm" componentize "$work/core.wasm" -o "$1" >&2 \
        || die "$name: kubewasm componentize failed"
    build_note="core module $(stat -c %s "$work/core.wasm") bytes"
}

cached_build "$name" "$(inputs_hash)" "${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/c/components/$name" \
    "${KUBEWASM_C_REBUILD:-}" "$out" build
