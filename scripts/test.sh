#!/usr/bin/env bash
# make test: lint, then the whole suite against a real PostgreSQL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=.venv/bin
TEST_PG_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

echo "test: ruff" >&2
$BIN/ruff check .
echo "test: mypy" >&2
$BIN/mypy
echo "test: import contracts" >&2
$BIN/lint-imports --no-cache

started_db=0
if [ -z "${DATABASE_URL:-}" ] && [ -z "${POSTGRES_HOST:-}" ]; then
  if [ "$(scripts/localdb.sh status)" != running ]; then started_db=1; fi
  # A cluster started for the tests skips the flushes to disk: every test database is
  # created, truncated and dropped again, and CREATE/DROP DATABASE wait on a checkpoint.
  # (A cluster already running for `make run` keeps its settings; tests/db.py says the same.)
  DATABASE_URL="$(LOCAL_PG_OPTS="${LOCAL_PG_OPTS:-$TEST_PG_OPTS}" scripts/localdb.sh start)"
  export DATABASE_URL
fi
cleanup() { if [ "$started_db" = 1 ]; then scripts/localdb.sh stop || true; fi; }
trap cleanup EXIT

# Two test processes (pytest-xdist), each with a database of its own; TEST_WORKERS=0
# runs in this process. Slow tests are sorted first and `worksteal` balances the rest.
parallel=(-n "${TEST_WORKERS:-2}" --dist worksteal)
if ! $BIN/python -c 'import xdist' 2>/dev/null; then
  echo "test: pytest-xdist is not installed (make install); running in one process" >&2
  parallel=()
fi
echo "test: pytest" >&2
$BIN/pytest "${parallel[@]}" "$@"
