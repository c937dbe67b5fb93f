#!/usr/bin/env bash
# Prints the path of the Python virtualenv holding the pinned build tools
# (componentize-py) and the SDK's test dependency (PyYAML), creating it on
# first use under ${XDG_CACHE_HOME:-~/.cache}/kubewasm/python/<version>/venv,
# keyed by the componentize-py version. pip keeps its downloads in its own
# cache, so a fresh clone re-creates the venv offline after the first time.
set -euo pipefail

componentize_py_version="0.25.0"
pyyaml_version="6.0.3"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm/python/$componentize_py_version"
venv="$cache/venv"
stamp="$venv/.kubewasm-ready-pyyaml-$pyyaml_version"

if [[ ! -f "$stamp" ]]; then
  command -v python3 >/dev/null || { echo "python-plugins: error: python3 is not installed" >&2; exit 1; }
  python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
    || { echo "python-plugins: error: Python 3.9 or newer is needed" >&2; exit 1; }
  echo "python-plugins: installing componentize-py $componentize_py_version into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "componentize-py==$componentize_py_version" "pyyaml==$pyyaml_version" >&2
  touch "$stamp"
fi
echo "$venv"
