#!/usr/bin/env bash
# Builds every JavaScript plugin in plugins/js/<name>/ (entry point
# <name>/src/index.js) into a WebAssembly component <out>/<name>.wasm, with
# componentize-js against the `plugin` world of the repository's wit/.
#
#   plugins/js/build.sh [OUT_DIR]
#
# OUT_DIR defaults to $KUBEWASM_PLUGIN_OUT, then to plugins/dist/.
#
# Components are built with every WASI feature of the JS engine disabled, so
# they import nothing but kubewasm:plugin/host. Componentizing takes 15 s or
# more and writes a 12 MB file (not byte-for-byte reproducible), so each result
# is cached as ${XDG_CACHE_HOME:-~/.cache}/kubewasm/js/<name>/<inputs hash>.wasm,
# the hash covering the plugin's src/, wit/, package-lock.json and this
# script, and reused while they are unchanged (the three newest builds of a
# plugin are kept); KUBEWASM_JS_REBUILD=1 forces a rebuild. The output file is replaced
# atomically and only when its content changes, so a host watching OUT_DIR
# reloads only what really changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
wit="$repo/wit"
world="plugin"
# Every feature the engine can drop: no WASI import is left in the component.
disabled_features=(stdio random clocks http fetch-event)

out="${1:-${KUBEWASM_PLUGIN_OUT:-$repo/plugins/dist}}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/js"
mkdir -p "$cache"

log() { echo "js-plugins: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v node >/dev/null || die "node is not installed (Node 20 or newer is needed)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || die "Node $(node --version) is too old: Node 20 or newer is needed"

tmp=""
trap 'rm -f "$tmp"' EXIT

# Hash of everything a plugin's component is built from.
inputs_hash() {
  local plugin_dir="$1"
  {
    echo "features=${disabled_features[*]} world=$world"
    cat "$here/build.sh" "$here/package-lock.json" | sha256sum | cut -d' ' -f1
    (cd "$wit" && find . -type f -name '*.wit' | LC_ALL=C sort | xargs -r sha256sum)
    (cd "$plugin_dir/src" && find . -type f | LC_ALL=C sort | xargs -r sha256sum)
  } | sha256sum | cut -d' ' -f1
}

deps_ready=""
ensure_deps() {
  [[ -n "$deps_ready" ]] || bash "$here/tools/deps.sh"
  deps_ready=1
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

built=0
for plugin_dir in "$here"/*/; do
  plugin_dir="${plugin_dir%/}"
  name="$(basename "$plugin_dir")"
  [[ -f "$plugin_dir/src/index.js" ]] || continue
  built=$((built + 1))

  hash="$(inputs_hash "$plugin_dir")"
  mkdir -p "$cache/$name"
  cached="$cache/$name/$hash.wasm"
  if [[ "${KUBEWASM_JS_REBUILD:-}" != "1" && -f "$cached" ]]; then
    log "$name: unchanged, using cached component"
    touch "$cached"
  else
    # componentize-js reports syntax errors without a location; Node names it.
    while IFS= read -r -d '' file; do
      node --check "$file" || die "$name: syntax error in $file"
    done < <(find "$plugin_dir/src" -type f -name '*.js' -print0)
    ensure_deps
    log "$name: componentizing (takes a few seconds)"
    start=$(date +%s)
    tmp="$(mktemp "$cache/$name/.build.XXXXXX")"
    # componentize-js maps the current directory into the engine while it
    # pre-initializes the module, so run from plugins/js: a plugin's relative
    # imports resolve inside its directory.
    (cd "$here" && "$here/node_modules/.bin/componentize-js" "$name/src/index.js" \
      --wit "$wit" --world-name "$world" --out "$tmp" \
      --disable "${disabled_features[@]}") >&2 \
      || die "$name: componentize-js failed"
    mv -f "$tmp" "$cached"
    tmp=""
    log "$name: built in $(($(date +%s) - start)) s, $(stat -c %s "$cached") bytes"
    # Keep the three newest builds of this plugin.
    ls -t "$cache/$name"/*.wasm | tail -n +4 | xargs -r rm -f
  fi
  install_file "$cached" "$out/$name.wasm"
  log "$name: $out/$name.wasm"
done

[[ $built -gt 0 ]] || die "no plugin found (expected $here/<name>/src/index.js)"
