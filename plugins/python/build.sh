#!/usr/bin/env bash
# Builds every Python plugin in plugins/python/<name>/ (entry module
# <name>/app.py, which binds `Reconciler = kubewasm.export(...)`) into a
# WebAssembly component <out>/<name>.wasm, with componentize-py against the
# `plugin` world of the repository's wit/ and the SDK in guest-sdk/python.
#
#   plugins/python/build.sh [OUT_DIR [NAME...]]
#
# OUT_DIR defaults to $KUBEWASM_PLUGIN_OUT, then to plugins/dist/. With NAMEs,
# only those plugins are built.
#
# componentize-py is installed by tools/venv.sh into a virtualenv cached
# under ${XDG_CACHE_HOME:-~/.cache}/kubewasm/python/<version>. Components are
# built with --stub-wasi, so they import kubewasm:plugin/host and nothing else
# (without it they would import wasi:sockets, which the host refuses).
# Componentizing takes 12 s or more and writes about 18 MB, so each result is
# cached as ~/.cache/kubewasm/python/components/<name>/<inputs hash>.wasm (the
# hash covers the plugin's *.py but its tests, the SDK, wit/ and this script)
# and reused while they are unchanged; KUBEWASM_PY_REBUILD=1 forces a rebuild.
# The output file is replaced atomically and only when its content changes,
# so a host watching OUT_DIR reloads only what really changed
# (plugins/tools/lib.sh does the caching).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
wit="$repo/wit"
sdk="$repo/guest-sdk/python"
world="plugin"

# shellcheck source=plugins/tools/lib.sh
source "$repo/plugins/tools/lib.sh"
log_as python-plugins

find_plugins "$here" app.py "${@:2}"
out="$(output_dir "${1:-}")"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/python/components"

# The plugin's sources: every *.py except tests.
sources() {
  (cd "$1" && find . -type f -name '*.py' ! -name 'test_*.py' ! -path '*/__pycache__/*' | LC_ALL=C sort)
}

# Hash of everything a plugin's component is built from.
inputs_hash() {
  local plugin_dir="$1"
  {
    echo "world=$world"
    cat "$here/build.sh" "$here/tools/venv.sh" | sha256sum
    files_sha256 "$wit" . -type f -name '*.wit'
    (cd "$plugin_dir" && sources . | xargs -r sha256sum)
    files_sha256 "$sdk" kubewasm -type f -name '*.py'
  } | digest
}

venv=""
# build_one PLUGIN_DIR OUT: componentizes one plugin into OUT.
build_one() {
  local plugin_dir="$1" dest="$2" name file
  name="$(basename "$plugin_dir")"
  [[ -n "$venv" ]] || venv="$("$here/tools/venv.sh")"
  # A syntax error names its file and line here, before a long build.
  while IFS= read -r file; do
    "$venv/bin/python" -m py_compile "$plugin_dir/$file" || die "$name: syntax error in $file"
  done < <(sources "$plugin_dir")
  log "$name: componentizing (takes a few seconds)"
  "$venv/bin/componentize-py" -d "$wit" -w "$world" componentize app \
    -p "$plugin_dir" -p "$sdk" --stub-wasi -o "$dest" >&2 \
    || die "$name: componentize-py failed"
}

build_plugins "$cache" "${KUBEWASM_PY_REBUILD:-}" "$out"
