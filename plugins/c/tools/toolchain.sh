#!/usr/bin/env bash
# Installs the C toolchain for kubewasm plugins if it is missing, and prints
# the path of the clang that builds them.
#
#   plugins/c/tools/toolchain.sh
#
# The toolchain is Debian's (bookworm): clang-19 and lld-19 (wasm-ld), the
# WebAssembly builtins of compiler-rt (libclang-rt-19-dev-wasm32) and
# wasi-libc, the wasm32-wasi (preview 1) C library in /usr/lib/wasm32-wasi and
# /usr/include/wasm32-wasi, where clang-19 finds it without --sysroot.
# There is no wasip2 sysroot in Debian, so plugins are built as preview 1
# reactors and `kubewasm componentize` turns them into components. Missing
# packages are installed with apt-get (as root, or through sudo); apt-get
# update runs only if a first install attempt fails.
set -euo pipefail

packages=(clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc)
clang=/usr/bin/clang-19
libc=/usr/lib/wasm32-wasi/libc.a

installed() {
    local package
    for package in "${packages[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" = "install ok installed" ] || return 1
    done
}

if ! installed; then
    command -v apt-get >/dev/null \
        || { echo "c-toolchain: error: apt-get not found; install ${packages[*]} (Debian bookworm names) by other means" >&2; exit 1; }
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "c-toolchain: installing ${packages[*]} (Debian packages, once)" >&2
    apt_get_install() {
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" >&2
    }
    apt_get_install || { $sudo apt-get update >&2 && apt_get_install; } \
        || { echo "c-toolchain: error: could not install ${packages[*]}" >&2; exit 1; }
fi

[ -x "$clang" ] || { echo "c-toolchain: error: $clang is missing after installing clang-19" >&2; exit 1; }
[ -f "$libc" ] || { echo "c-toolchain: error: $libc is missing after installing wasi-libc" >&2; exit 1; }
echo "$clang"
