#!/usr/bin/env bash
# Builds every TypeScript plugin in plugins/ts/<name>/ (entry point
# <name>/src/index.ts, written with @kubewasm/sdk from guest-sdk/ts) into a
# WebAssembly component <out>/<name>.wasm.
#
#   plugins/ts/build.sh [OUT_DIR [NAME...]]
#
# OUT_DIR defaults to $KUBEWASM_PLUGIN_OUT, then to plugins/dist/; without
# names, every plugin is built.
#
# Three steps, with the npm packages pinned in package-lock.json: `tsc
# --noEmit` type-checks every plugin and the SDK (a type error stops the
# build, with its file and line); esbuild bundles a plugin and the SDK into
# one ES module, leaving the host import `kubewasm:plugin/*` to the
# component; componentize-js turns the bundle into a component with every
# WASI feature disabled, so it imports nothing but kubewasm:plugin/host.
# Componentizing takes 15 s or more and writes a 12 MB file (not byte-for-byte
# reproducible), so each result is cached as
# ${XDG_CACHE_HOME:-~/.cache}/kubewasm/ts/<name>/<inputs hash>.wasm, the hash
# covering the plugin's src/, the SDK (guest-sdk/ts: src/, types/,
# package.json), wit/, this directory's package files and tsconfig.json, and
# this script; KUBEWASM_TS_REBUILD=1 forces a rebuild. The output file is
# replaced atomically and only when its content changes, so a host watching
# OUT_DIR reloads only what really changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
sdk="$repo/guest-sdk/ts"
wit="$repo/wit"
world="plugin"
# Every feature the engine can drop: no WASI import is left in the component.
disabled_features=(stdio random clocks http fetch-event)

out="${1:-${KUBEWASM_PLUGIN_OUT:-$repo/plugins/dist}}"
shift || true
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/ts"
mkdir -p "$cache"

log() { echo "ts-plugins: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v node >/dev/null || die "node is not installed (Node 20 or newer is needed)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || die "Node $(node --version) is too old: Node 20 or newer is needed"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Hash of everything a plugin's component is built from.
inputs_hash() {
  local plugin_dir="$1"
  {
    echo "features=${disabled_features[*]} world=$world"
    cat "$here/build.sh" "$here/package.json" "$here/package-lock.json" "$here/tsconfig.json" \
      "$sdk/package.json" | sha256sum | cut -d' ' -f1
    (cd "$wit" && find . -type f -name '*.wit' | LC_ALL=C sort | xargs -r sha256sum)
    (cd "$plugin_dir/src" && find . -type f | LC_ALL=C sort | xargs -r sha256sum)
    (cd "$sdk" && find src types -type f | LC_ALL=C sort | xargs -r sha256sum)
  } | sha256sum | cut -d' ' -f1
}

checked=""
# Installs the npm packages and type-checks every plugin, once per run.
prepare() {
  [[ -z "$checked" ]] || return 0
  bash "$repo/plugins/js/tools/deps.sh" "$here"
  log "type-checking (tsc)"
  (cd "$here" && ./node_modules/.bin/tsc -p tsconfig.json) >&2 || die "type errors (above)"
  checked=1
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

if [[ $# -gt 0 ]]; then
  plugin_dirs=()
  for name in "$@"; do
    [[ -f "$here/$name/src/index.ts" ]] || die "$name: no $here/$name/src/index.ts"
    plugin_dirs+=("$here/$name")
  done
else
  plugin_dirs=()
  for dir in "$here"/*/; do
    [[ -f "$dir/src/index.ts" ]] && plugin_dirs+=("${dir%/}")
  done
  [[ ${#plugin_dirs[@]} -gt 0 ]] || die "no plugin found (expected $here/<name>/src/index.ts)"
fi

for plugin_dir in "${plugin_dirs[@]}"; do
  name="$(basename "$plugin_dir")"
  hash="$(inputs_hash "$plugin_dir")"
  mkdir -p "$cache/$name"
  cached="$cache/$name/$hash.wasm"
  if [[ "${KUBEWASM_TS_REBUILD:-}" != "1" && -f "$cached" ]]; then
    log "$name: unchanged, using cached component"
    touch "$cached"
  else
    prepare
    start=$(date +%s)
    mkdir -p "$work/$name"
    # One module: the plugin and the SDK; the host interfaces stay imports.
    (cd "$here" && ./node_modules/.bin/esbuild "$name/src/index.ts" --bundle --format=esm \
      --platform=neutral --target=es2022 --conditions=kubewasm-source '--external:kubewasm:*' \
      --log-level=warning --outfile="$work/$name/bundle.js") >&2 || die "$name: esbuild failed"
    log "$name: componentizing (takes a few seconds)"
    tmp="$cache/$name/.build.$$.wasm"
    # componentize-js maps the current directory into the engine while it
    # pre-initializes the module: run it where the bundle is.
    (cd "$work/$name" && "$here/node_modules/.bin/componentize-js" bundle.js \
      --wit "$wit" --world-name "$world" --out "$tmp" \
      --disable "${disabled_features[@]}") >&2 \
      || { rm -f "$tmp"; die "$name: componentize-js failed"; }
    mv -f "$tmp" "$cached"
    log "$name: built in $(($(date +%s) - start)) s, $(stat -c %s "$cached") bytes"
    # Keep the three newest builds of this plugin.
    ls -t "$cache/$name"/*.wasm | tail -n +4 | xargs -r rm -f
  fi
  install_file "$cached" "$out/$name.wasm"
  log "$name: $out/$name.wasm"
done
