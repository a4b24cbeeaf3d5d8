#!/usr/bin/env bash
# Run a command with DATABASE_URL set: the configured database, or the local cluster.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${DATABASE_URL:-}" ] && [ -z "${POSTGRES_HOST:-}" ]; then
  DATABASE_URL="$(scripts/localdb.sh start)"
  export DATABASE_URL
fi
exec "$@"
