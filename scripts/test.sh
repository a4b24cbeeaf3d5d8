#!/usr/bin/env bash
# make test: lint, then the whole suite against a real PostgreSQL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=.venv/bin

echo "test: ruff" >&2
$BIN/ruff check .
echo "test: mypy" >&2
$BIN/mypy
echo "test: import contracts" >&2
$BIN/lint-imports --no-cache

started_db=0
if [ -z "${DATABASE_URL:-}" ] && [ -z "${POSTGRES_HOST:-}" ]; then
  if [ "$(scripts/localdb.sh status)" != running ]; then started_db=1; fi
  DATABASE_URL="$(scripts/localdb.sh start)"
  export DATABASE_URL
fi
cleanup() { if [ "$started_db" = 1 ]; then scripts/localdb.sh stop || true; fi; }
trap cleanup EXIT

echo "test: pytest" >&2
$BIN/pytest "$@"
