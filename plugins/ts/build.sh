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
# OUT_DIR reloads only what really changed (plugins/tools/lib.sh does the
# caching).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
sdk="$repo/guest-sdk/ts"
wit="$repo/wit"
world="plugin"
# Every feature the engine can drop: no WASI import is left in the component.
disabled_features=(stdio random clocks http fetch-event)

# shellcheck source=plugins/tools/lib.sh
source "$repo/plugins/tools/lib.sh"
log_as ts-plugins

find_plugins "$here" src/index.ts "${@:2}"
out="$(output_dir "${1:-}")"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/ts"

command -v node >/dev/null || die "node is not installed (Node 20 or newer is needed)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || die "Node $(node --version) is too old: Node 20 or newer is needed"

work="$(mktemp -d)"
remove_on_exit "$work"

# Hash of everything a plugin's component is built from.
inputs_hash() {
  local plugin_dir="$1"
  {
    echo "features=${disabled_features[*]} world=$world"
    cat "$here/build.sh" "$here/package.json" "$here/package-lock.json" "$here/tsconfig.json" \
      "$sdk/package.json" | digest
    files_sha256 "$wit" . -type f -name '*.wit'
    files_sha256 "$plugin_dir/src" . -type f
    files_sha256 "$sdk" src types -type f
  } | digest
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

# build_one PLUGIN_DIR OUT: bundles and componentizes one plugin into OUT.
build_one() {
  local plugin_dir="$1" dest="$2" name
  name="$(basename "$plugin_dir")"
  prepare
  mkdir -p "$work/$name"
  # One module: the plugin and the SDK; the host interfaces stay imports.
  (cd "$here" && ./node_modules/.bin/esbuild "$name/src/index.ts" --bundle --format=esm \
    --platform=neutral --target=es2022 --conditions=kubewasm-source '--external:kubewasm:*' \
    --log-level=warning --outfile="$work/$name/bundle.js") >&2 || die "$name: esbuild failed"
  log "$name: componentizing (takes a few seconds)"
  # componentize-js maps the current directory into the engine while it
  # pre-initializes the module: run it where the bundle is.
  (cd "$work/$name" && "$here/node_modules/.bin/componentize-js" bundle.js \
    --wit "$wit" --world-name "$world" --out "$dest" \
    --disable "${disabled_features[@]}") >&2 \
    || die "$name: componentize-js failed"
}

build_plugins "$cache" "${KUBEWASM_TS_REBUILD:-}" "$out"
