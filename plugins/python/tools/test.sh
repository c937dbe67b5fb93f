#!/usr/bin/env bash
# Runs the Python SDK's unit tests and every Python plugin's native tests
# (test_*.py in plugins/python/<name>/, with a fake host: no component, no
# cluster), in the cached virtualenv of tools/venv.sh (PyYAML for fixtures).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$("$here/tools/venv.sh")"
export PYTHONPATH="$repo/guest-sdk/python"
export PYTHONDONTWRITEBYTECODE=1

(cd "$repo/guest-sdk/python" && "$venv/bin/python" -m unittest discover -s tests)
for plugin_dir in "$here"/*/; do
  [[ -f "$plugin_dir/app.py" ]] || continue
  echo "python-plugins: testing $(basename "$plugin_dir")" >&2
  "$venv/bin/python" -m unittest discover -s "$plugin_dir"
done
