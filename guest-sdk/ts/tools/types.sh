#!/usr/bin/env bash
# Generates the TypeScript declarations of the plugin contract, types/, from
# the repository's wit/ (world `plugin`) with jco's `guest-types`.
#
#   tools/types.sh           regenerate types/
#   tools/types.sh --check   fail if types/ differs from what wit/ generates
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wit="$(cd "$here/../../wit" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

"$here/node_modules/.bin/jco" guest-types "$wit" --world-name plugin -o "$out" >/dev/null
if [[ "${1:-}" == "--check" ]]; then
  diff -ru "$here/types" "$out" >&2 \
    || { echo "ts-sdk: types/ is stale: run guest-sdk/ts/tools/types.sh" >&2; exit 1; }
else
  rm -rf "$here/types"
  cp -r "$out" "$here/types"
fi
