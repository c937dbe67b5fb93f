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
# so a host watching OUT_DIR reloads only what really changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
wit="$repo/wit"
sdk="$repo/guest-sdk/python"
world="plugin"

out="${1:-${KUBEWASM_PLUGIN_OUT:-$repo/plugins/dist}}"
only=("${@:2}")
for name in "${only[@]}"; do
  [[ -f "$here/$name/app.py" ]] || { echo "python-plugins: error: no plugin $name (expected $here/$name/app.py)" >&2; exit 1; }
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/python/components"
mkdir -p "$cache"

log() { echo "python-plugins: $*" >&2; }
die() { log "error: $*"; exit 1; }

tmp=""
trap 'rm -f "$tmp"' EXIT

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
    (cd "$wit" && find . -type f -name '*.wit' | LC_ALL=C sort | xargs -r sha256sum)
    (cd "$plugin_dir" && sources . | xargs -r sha256sum)
    (cd "$sdk" && find kubewasm -type f -name '*.py' | LC_ALL=C sort | xargs -r sha256sum)
  } | sha256sum | cut -d' ' -f1
}

# Copies $1 to $2 atomically, and only if the content differs.
install_file() {
  local src="$1" dest="$2"
  if cmp -s "$src" "$dest"; then
    return
  fi
  local tmp
  tmp="$(mktemp "$(dirname "$dest")/.$(basename "$dest").XXXXXX")"
  cp "$src" "$tmp"
  chmod 644 "$tmp"
  mv -f "$tmp" "$dest"
}

venv=""
built=0
for plugin_dir in "$here"/*/; do
  plugin_dir="${plugin_dir%/}"
  name="$(basename "$plugin_dir")"
  [[ -f "$plugin_dir/app.py" ]] || continue
  if [[ ${#only[@]} -gt 0 && " ${only[*]} " != *" $name "* ]]; then
    continue
  fi
  built=$((built + 1))

  hash="$(inputs_hash "$plugin_dir")"
  mkdir -p "$cache/$name"
  cached="$cache/$name/$hash.wasm"
  if [[ "${KUBEWASM_PY_REBUILD:-}" != "1" && -f "$cached" ]]; then
    log "$name: unchanged, using cached component"
    touch "$cached"
  else
    [[ -n "$venv" ]] || venv="$("$here/tools/venv.sh")"
    # A syntax error names its file and line here, before a long build.
    while IFS= read -r file; do
      "$venv/bin/python" -m py_compile "$plugin_dir/$file" || die "$name: syntax error in $file"
    done < <(sources "$plugin_dir")
    log "$name: componentizing (takes a few seconds)"
    start=$(date +%s)
    tmp="$(mktemp "$cache/$name/.build.XXXXXX")"
    "$venv/bin/componentize-py" -d "$wit" -w "$world" componentize app \
      -p "$plugin_dir" -p "$sdk" --stub-wasi -o "$tmp" >&2 \
      || die "$name: componentize-py failed"
    mv -f "$tmp" "$cached"
    tmp=""
    log "$name: built in $(($(date +%s) - start)) s, $(stat -c %s "$cached") bytes"
    # Keep the three newest builds of this plugin.
    ls -t "$cache/$name"/*.wasm | tail -n +4 | xargs -r rm -f
  fi
  install_file "$cached" "$out/$name.wasm"
  log "$name: $out/$name.wasm"
done

[[ $built -gt 0 ]] || die "no plugin found (expected $here/<name>/app.py)"
