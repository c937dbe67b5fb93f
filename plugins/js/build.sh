#!/usr/bin/env bash
# Builds every JavaScript plugin in plugins/js/<name>/ (entry point
# <name>/src/index.js) into a WebAssembly component <out>/<name>.wasm, with
# componentize-js against the `plugin` world of the repository's wit/.
#
#   plugins/js/build.sh [OUT_DIR [NAME...]]
#
# OUT_DIR defaults to $KUBEWASM_PLUGIN_OUT, then to plugins/dist/. With NAMEs,
# only those plugins are built.
#
# Components are built with every WASI feature of the JS engine disabled, so
# they import nothing but kubewasm:plugin/host. Componentizing takes 15 s or
# more and writes a 12 MB file (not byte-for-byte reproducible), so each result
# is cached as ${XDG_CACHE_HOME:-~/.cache}/kubewasm/js/<name>/<inputs hash>.wasm,
# the hash covering the plugin's src/, wit/, package-lock.json and this
# script, and reused while they are unchanged (the three newest builds of a
# plugin are kept); KUBEWASM_JS_REBUILD=1 forces a rebuild. The output file is replaced
# atomically and only when its content changes, so a host watching OUT_DIR
# reloads only what really changed (plugins/tools/lib.sh does the caching).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
wit="$repo/wit"
world="plugin"
# Every feature the engine can drop: no WASI import is left in the component.
disabled_features=(stdio random clocks http fetch-event)
# shellcheck source=plugins/tools/lib.sh
source "$repo/plugins/tools/lib.sh"
log_as js-plugins

find_plugins "$here" src/index.js "${@:2}"
out="$(output_dir "${1:-}")"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/js"

command -v node >/dev/null || die "node is not installed (Node 20 or newer is needed)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || die "Node $(node --version) is too old: Node 20 or newer is needed"

# Hash of everything a plugin's component is built from.
inputs_hash() {
  local plugin_dir="$1"
  {
    echo "features=${disabled_features[*]} world=$world"
    cat "$here/build.sh" "$here/package-lock.json" | digest
    files_sha256 "$wit" . -type f -name '*.wit'
    files_sha256 "$plugin_dir/src" . -type f
  } | digest
}

deps_ready=""
# build_one PLUGIN_DIR OUT: componentizes one plugin into OUT.
build_one() {
  local plugin_dir="$1" dest="$2" name file
  name="$(basename "$plugin_dir")"
  # componentize-js reports syntax errors without a location; Node names it.
  while IFS= read -r -d '' file; do
    node --check "$file" || die "$name: syntax error in $file"
  done < <(find "$plugin_dir/src" -type f -name '*.js' -print0)
  [[ -n "$deps_ready" ]] || bash "$here/tools/deps.sh"
  deps_ready=1
  log "$name: componentizing (takes a few seconds)"
  # componentize-js maps the current directory into the engine while it
  # pre-initializes the module, so run from plugins/js: a plugin's relative
  # imports resolve inside its directory.
  (cd "$here" && "$here/node_modules/.bin/componentize-js" "$name/src/index.js" \
    --wit "$wit" --world-name "$world" --out "$dest" \
    --disable "${disabled_features[@]}") >&2 \
    || die "$name: componentize-js failed"
}

build_plugins "$cache" "${KUBEWASM_JS_REBUILD:-}" "$out"
