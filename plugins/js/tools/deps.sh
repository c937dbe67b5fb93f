#!/usr/bin/env bash
# Installs the pinned npm packages of an npm project (default plugins/js;
# also guest-sdk/ts and plugins/ts) unless its node_modules already matches
# package.json and the lockfile.
#
#   plugins/js/tools/deps.sh [PROJECT_DIR]
#
# npm keeps what it downloads in its own cache (~/.npm), so after the first
# install a fresh clone installs offline.
set -euo pipefail

js="$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)"
stamp="$js/node_modules/.kubewasm-deps"

command -v npm >/dev/null || { echo "npm-deps: ${js#"$PWD/"}: error: npm is not installed" >&2; exit 1; }

if [[ ! -f "$js/package-lock.json" ]]; then
  echo "npm-deps: ${js#"$PWD/"}: no package-lock.json: installing npm packages (npm install)" >&2
  (cd "$js" && npm install --no-audit --no-fund --loglevel=error) >&2
  exit 0
fi
want="$(cat "$js/package.json" "$js/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "npm-deps: ${js#"$PWD/"}: installing npm packages (npm ci)" >&2
  (cd "$js" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) >&2
  echo "$want" >"$stamp"
fi
