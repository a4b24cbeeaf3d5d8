#!/usr/bin/env bash
# make run: database, migrations, then the API and the worker in the foreground.
# Ctrl-C or SIGTERM stops everything this script started, the local cluster included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=.venv/bin

started_db=0
if [ -z "${DATABASE_URL:-}" ] && [ -z "${POSTGRES_HOST:-}" ]; then
  if [ "$(scripts/localdb.sh status)" != running ]; then started_db=1; fi
  DATABASE_URL="$(scripts/localdb.sh start)"
  export DATABASE_URL
fi

pids=()
stop_all() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$started_db" = 1 ]; then scripts/localdb.sh stop || true; fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

echo "run: applying migrations" >&2
$BIN/alembic upgrade head

echo "run: API on http://${HOST:-127.0.0.1}:${PORT:-8000} (docs at /docs), worker polling Chess.com" >&2
$BIN/python -m app &
pids+=($!)
$BIN/python -m worker &
pids+=($!)

# If either process dies, stop the other too.
wait -n "${pids[@]}"
