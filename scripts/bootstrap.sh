#!/usr/bin/env bash
# Create the virtualenv and install the project with its test tools.
set -euo pipefail
PYTHON="${1:-python3}"
VENV="${2:-.venv}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: Python 3.11+ is required ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || {
    echo "bootstrap: cannot create a virtualenv; on Debian: apt-get install python3-venv" >&2
    exit 1
  }
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev,redis]'
