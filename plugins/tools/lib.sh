# shellcheck shell=bash
# What every plugin build script does the same way, sourced (never run) by
# plugins/build.sh, plugins/<lang>/build.sh and plugins/<lang>/tools/
# build-plugin.sh, so that a language's script keeps only what is its own:
# which files its components are built from (the inputs hash) and how one
# plugin is built.
#
#   source "$repo/plugins/tools/lib.sh"
#   log_as js-plugins
#   out="$(output_dir "${1:-}")"
#   find_plugins "$here" src/index.js "${@:2}"
#   inputs_hash() { ...; }          # PLUGIN_DIR: prints its inputs hash
#   build_one() { ...; }            # PLUGIN_DIR OUT: builds it into OUT
#   build_plugins "$cache" "${KUBEWASM_JS_REBUILD:-}" "$out"
#
# log_as PREFIX           names the script in its messages (default "plugins")
# log MESSAGE...          prints "PREFIX: MESSAGE" on stderr
# die MESSAGE...          prints "PREFIX: error: MESSAGE" on stderr, exits 1
# remove_on_exit PATH...  deletes files or directories when the script exits,
#                         whichever way (the library owns the EXIT trap: a
#                         script registers its temporary paths here instead)
# output_dir [DIR]        creates and prints the absolute output directory:
#                         DIR, else $KUBEWASM_PLUGIN_OUT, else plugins/dist/
# find_plugins DIR MARKER [NAME...]
#                         sets the array plugin_dirs to the plugins in DIR:
#                         its subdirectories holding a file that matches the
#                         glob MARKER (src/index.js, go.mod, *.c), in name
#                         order; with NAMEs only those, each of which must be
#                         a plugin; dies when none is found
# files_sha256 DIR FIND_ARG...
#                         `sha256sum` lines, sorted by path, of the files in
#                         DIR that `find FIND_ARG...` (run in DIR) selects:
#                         one line of an inputs hash
# digest                  the hex SHA-256 of stdin
# cached_build NAME HASH CACHE_DIR REBUILD OUT BUILD_COMMAND...
#                         the inputs-hash cache: see below
# build_plugins CACHE_DIR REBUILD OUT_DIR
#                         cached_build of each of plugin_dirs, its hash and
#                         build from the script's functions inputs_hash
#                         PLUGIN_DIR and build_one PLUGIN_DIR OUT, its cache
#                         CACHE_DIR/<name>, its output OUT_DIR/<name>.wasm
# install_file SRC DEST   copies SRC to DEST atomically, only if they differ
# kubewasm_bin            prints the path of the kubewasm CLI, for
#                         `kubewasm componentize`
#
# Nothing here shapes a component's bytes, so this file is not part of any
# inputs hash: a change here rebuilds nothing.

_lib_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
_lib_prefix="plugins"
_lib_remove=()

log_as() { _lib_prefix="$1"; }
log() { echo "$_lib_prefix: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

remove_on_exit() { _lib_remove+=("$@"); }
_lib_on_exit() {
    [[ ${#_lib_remove[@]} -eq 0 ]] || rm -rf -- "${_lib_remove[@]}"
}
trap _lib_on_exit EXIT

output_dir() {
    local dir="${1:-${KUBEWASM_PLUGIN_OUT:-$_lib_repo/plugins/dist}}"
    mkdir -p "$dir"
    (cd "$dir" && pwd)
}

_lib_is_plugin() { compgen -G "$1/$2" >/dev/null; }

find_plugins() {
    local dir="$1" marker="$2" name path
    shift 2
    for name in "$@"; do
        if [[ "$name" == */* ]] || ! _lib_is_plugin "$dir/$name" "$marker"; then
            die "no plugin $name (expected $dir/$name/$marker)"
        fi
    done
    plugin_dirs=()
    for path in "$dir"/*/; do
        path="${path%/}"
        name="$(basename "$path")"
        _lib_is_plugin "$path" "$marker" || continue
        if [[ $# -gt 0 && " $* " != *" $name "* ]]; then
            continue
        fi
        plugin_dirs+=("$path")
    done
    [[ ${#plugin_dirs[@]} -gt 0 ]] || die "no plugin found (expected $dir/<name>/$marker)"
}

files_sha256() {
    local dir="$1"
    shift
    (cd "$dir" && find "$@" | LC_ALL=C sort | xargs -r sha256sum)
}

digest() { sha256sum | cut -d' ' -f1; }

# cached_build NAME HASH CACHE_DIR REBUILD OUT BUILD_COMMAND...
#
# Plugin NAME's component for inputs hash HASH is CACHE_DIR/HASH.wasm. When
# that file exists and REBUILD (the language's KUBEWASM_<LANG>_REBUILD) is
# not 1, it is reused ("unchanged, using cached component"). Otherwise
# `BUILD_COMMAND... TMP` writes the component to TMP, a new file in
# CACHE_DIR, or fails (it runs in this shell, under set -e, so a function
# can keep state from one plugin to the next, such as "dependencies
# installed"; it may set build_note to a few words for the "built" line);
# TMP is then renamed HASH.wasm and only the three newest components of
# CACHE_DIR are kept. Either way the component is installed as OUT.
cached_build() {
    local name="$1" hash="$2" cache="$3" rebuild="$4" out="$5"
    shift 5
    local cached="$cache/$hash.wasm"
    mkdir -p "$cache"
    if [[ "$rebuild" != "1" && -f "$cached" ]]; then
        log "$name: unchanged, using cached component"
        touch "$cached"
    else
        local start tmp ms
        start="$(date +%s%N)"
        tmp="$(mktemp "$cache/.build.XXXXXX")"
        remove_on_exit "$tmp"
        build_note=""
        "$@" "$tmp"
        mv -f "$tmp" "$cached"
        ms=$((($(date +%s%N) - start) / 1000000))
        log "$name: built in $((ms / 1000)).$((ms % 1000 / 100)) s, $(stat -c %s "$cached") bytes${build_note:+ ($build_note)}"
        # Keep the three newest builds of this plugin.
        # shellcheck disable=SC2012 # the names are hashes: ls -t is safe
        ls -t "$cache"/*.wasm | tail -n +4 | xargs -r rm -f
    fi
    mkdir -p "$(dirname "$out")"
    install_file "$cached" "$out"
    log "$name: $out"
}

build_plugins() {
    local cache="$1" rebuild="$2" out="$3" dir name
    for dir in "${plugin_dirs[@]}"; do
        name="$(basename "$dir")"
        cached_build "$name" "$(inputs_hash "$dir")" "$cache/$name" "$rebuild" "$out/$name.wasm" \
            build_one "$dir"
    done
}

install_file() {
    local src="$1" dest="$2" tmp
    if cmp -s "$src" "$dest"; then
        return
    fi
    tmp="$(mktemp "$(dirname "$dest")/.$(basename "$dest").XXXXXX")"
    remove_on_exit "$tmp"
    cp "$src" "$tmp"
    chmod 0644 "$tmp" # mktemp creates 0600
    mv -f "$tmp" "$dest"
}

# $KUBEWASM_BIN, else `kubewasm` on PATH, else this checkout's CLI, built
# (debug) in $KUBEWASM_HOST_TARGET_DIR, by default ~/.cache/kubewasm/target,
# where tests/run.sh builds the host anyway (not in $CARGO_TARGET_DIR:
# plugins/build.sh and tests/templates.sh point that at plugin builds, where
# it would be a second copy of the host).
kubewasm_bin() {
    if [[ -n "${KUBEWASM_BIN:-}" ]]; then
        echo "$KUBEWASM_BIN"
    elif command -v kubewasm >/dev/null; then
        command -v kubewasm
    else
        local target="${KUBEWASM_HOST_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/target}"
        log "building the kubewasm CLI for componentize (once; set KUBEWASM_BIN to use another)"
        CARGO_TARGET_DIR="$target" cargo build -q --locked --manifest-path "$_lib_repo/Cargo.toml" \
            -p kubewasm --bin kubewasm >&2 || return 1
        echo "$target/debug/kubewasm"
    fi
}
