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
# replaced atomically and only when its content changes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
sdk="$repo/guest-sdk/c"

[[ $# -eq 2 ]] || { echo "usage: $0 SRC_DIR OUT.wasm" >&2; exit 2; }
src="$(cd "$1" && pwd)"
out="$2"
name="$(basename "$out" .wasm)"

log() { echo "c-plugins: $name: $*" >&2; }
die() { log "error: $*"; exit 1; }

mapfile -t sources < <(cd "$src" && find . -maxdepth 1 -type f -name '*.c' ! -name 'test_*.c' | LC_ALL=C sort)
[[ ${#sources[@]} -gt 0 ]] || die "no C sources in $src (expected *.c besides test_*.c)"

clang="$("$here/toolchain.sh")"

kubewasm_bin() {
    if [[ -n "${KUBEWASM_BIN:-}" ]]; then
        echo "$KUBEWASM_BIN"
    elif command -v kubewasm >/dev/null; then
        command -v kubewasm
    else
        # tests/run.sh's target directory, not $CARGO_TARGET_DIR: plugins/build.sh
        # and tests/templates.sh point that at plugin builds, where a second
        # copy of the host would be built.
        local target="${KUBEWASM_HOST_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/target}"
        log "building the kubewasm host for componentize (once)"
        CARGO_TARGET_DIR="$target" cargo build -q --locked --manifest-path "$repo/Cargo.toml" -p kubewasm --bin kubewasm >&2
        echo "$target/debug/kubewasm"
    fi
}
kubewasm="$(kubewasm_bin)"
[[ -x "$kubewasm" ]] || die "kubewasm binary $kubewasm is not executable"

cflags=(--target=wasm32-wasi -mexec-model=reactor -std=c11 -Os -Wall -Wextra -Wno-unused-parameter)
# shellcheck disable=SC2206 # word splitting of user flags is intended
cflags+=(${KUBEWASM_CFLAGS:-})

inputs_hash() {
    {
        echo "cflags=${cflags[*]}"
        "$clang" --version | head -n 1
        "$kubewasm" --version
        sha256sum "$here/build-plugin.sh"
        (cd "$src" && find . -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \) ! -name 'test_*' \
            | LC_ALL=C sort | xargs -r sha256sum)
        (cd "$sdk" && find include src bindings -type f | LC_ALL=C sort | xargs -r sha256sum)
    } | sha256sum | cut -d' ' -f1
}

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/c/components/$name"
mkdir -p "$cache"
hash="$(inputs_hash)"
cached="$cache/$hash.wasm"
work="$(mktemp -d "$cache/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [[ "${KUBEWASM_C_REBUILD:-}" != "1" && -f "$cached" ]]; then
    log "unchanged, using cached component"
    touch "$cached"
else
    start=$(date +%s%N)
    "$clang" "${cflags[@]}" -I"$src" -I"$sdk/include" -I"$sdk/bindings" -I"$sdk/src" \
        "${sources[@]/#./$src}" "$sdk"/src/*.c "$sdk/bindings/plugin.c" "$sdk/bindings/plugin_component_type.o" \
        -Wl,--strip-all,--keep-section=component-type:plugin -o "$work/core.wasm" \
        || die "clang failed"
    "$kubewasm" componentize "$work/core.wasm" -o "$work/component.wasm" >&2 \
        || die "kubewasm componentize failed"
    mv -f "$work/component.wasm" "$cached"
    log "built in $((($(date +%s%N) - start) / 1000000)) ms: core module $(stat -c %s "$work/core.wasm") B, component $(stat -c %s "$cached") B"
    # Keep the three newest builds of this plugin.
    ls -t "$cache"/*.wasm | tail -n +4 | xargs -r rm -f
fi

mkdir -p "$(dirname "$out")"
if ! cmp -s "$cached" "$out"; then
    tmp="$(mktemp "$(dirname "$out")/.$(basename "$out").XXXXXX")"
    cp "$cached" "$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$out"
fi
log "$out"
