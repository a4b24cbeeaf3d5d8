#!/usr/bin/env bash
# A private PostgreSQL cluster under .data/pg for development and tests (SPEC §2).
#
#   scripts/localdb.sh start   -> ensures the cluster runs; prints DATABASE_URL on stdout
#   scripts/localdb.sh stop    -> stops it (data stays)
#   scripts/localdb.sh url     -> prints DATABASE_URL
#
# PostgreSQL refuses to run as root, so as root the cluster is owned by and run as
# the 'postgres' system user (or a dedicated 'chesshelper' user created on demand).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${DATA_DIR:-$ROOT/.data}"
PGDATA="$DATA_DIR/pg"
SOCKDIR="$DATA_DIR/pg-run"
PORTFILE="$DATA_DIR/pg-port"
DBNAME="${LOCAL_PG_DB:-chesshelper}"
DBUSER="chesshelper"
PWFILE="$DATA_DIR/pg-password"
LOG="$PGDATA/server.log"

log() { echo "localdb: $*" >&2; }

# The cluster keeps the port it was given first; a new cluster takes the first free
# port from 55432, so two checkouts on one machine do not collide.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
choose_port() {
  if [ -n "${LOCAL_PG_PORT:-}" ]; then echo "$LOCAL_PG_PORT"; return; fi
  if [ -s "$PORTFILE" ]; then cat "$PORTFILE"; return; fi
  local p=55432
  while port_in_use "$p"; do p=$((p + 1)); done
  mkdir -p "$DATA_DIR"; echo "$p" > "$PORTFILE"; echo "$p"
}
PGPORT="$(choose_port)"

# .data/pg may be a link to where the server's user can reach (see init_cluster).
resolve_links() {
  if [ -L "$PGDATA" ]; then PGDATA="$(readlink -f "$PGDATA")"; fi
  if [ -L "$SOCKDIR" ]; then SOCKDIR="$(readlink -f "$SOCKDIR")"; fi
  LOG="$PGDATA/server.log"
}
resolve_links

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; return; fi
  log "no PostgreSQL server binaries found; install them (Debian: apt-get install postgresql)"
  exit 1
}

BINDIR="$(find_bindir)"

# Who runs the server: ourselves, or an unprivileged user when we are root.
RUNAS=()
OWNER="$(id -un)"
if [ "$(id -u)" = 0 ]; then
  if id postgres >/dev/null 2>&1; then OWNER=postgres
  else
    id chesshelper >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin chesshelper
    OWNER=chesshelper
  fi
  RUNAS=(runuser -u "$OWNER" --)
fi
# From / : the server's user may not be allowed into the current directory.
as_owner() { (cd / && "${RUNAS[@]}" "$@"); }

password() {
  if [ ! -s "$PWFILE" ]; then
    umask 077
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$PWFILE"
  fi
  cat "$PWFILE"
}

url() {
  echo "postgresql+asyncpg://$DBUSER:$(password)@127.0.0.1:$PGPORT/$DBNAME"
}

is_running() { as_owner "$BINDIR/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

init_cluster() {
  log "initialising a new cluster in $PGDATA (owner $OWNER)"
  mkdir -p "$DATA_DIR"
  # When the checkout lives where the server's user cannot reach (e.g. under /root),
  # keep the cluster in a directory it can reach and link it into .data/.
  if [ ${#RUNAS[@]} -gt 0 ] && ! as_owner test -x "$DATA_DIR"; then
    local alt; alt="/var/lib/chesshelper/$(echo "$ROOT" | md5sum | cut -c1-12)"
    rm -rf "$alt"  # left by an earlier checkout at this path whose .data/ is gone
    mkdir -p "$alt/pg" "$alt/pg-run"; chown -R "$OWNER" "$alt"
    ln -sfn "$alt/pg" "$PGDATA"; ln -sfn "$alt/pg-run" "$SOCKDIR"
    log "checkout not reachable by $OWNER; cluster kept in $alt"
    resolve_links
  fi
  local pw; pw="$(password)"
  mkdir -p "$PGDATA" "$SOCKDIR"
  chown "$OWNER" "$PGDATA" "$SOCKDIR"
  chmod 700 "$PGDATA"
  local tmp_pw; tmp_pw="$(mktemp)"; echo "$pw" > "$tmp_pw"; chown "$OWNER" "$tmp_pw"
  as_owner "$BINDIR/initdb" -D "$PGDATA" -U "$DBUSER" --pwfile="$tmp_pw" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null \
    || as_owner "$BINDIR/initdb" -D "$PGDATA" -U "$DBUSER" --pwfile="$tmp_pw" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null
  rm -f "$tmp_pw"
}

start() {
  [ -s "$PGDATA/PG_VERSION" ] || init_cluster
  mkdir -p "$SOCKDIR"; chown "$OWNER" "$SOCKDIR"
  if ! is_running; then
    touch "$LOG"; chown "$OWNER" "$LOG"
    as_owner "$BINDIR/pg_ctl" -D "$PGDATA" -l "$LOG" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $SOCKDIR -c max_connections=200 ${LOCAL_PG_OPTS:-}" >/dev/null \
      || { log "PostgreSQL failed to start; see $LOG"; tail -n 20 "$LOG" >&2; exit 1; }
    log "PostgreSQL running on 127.0.0.1:$PGPORT"
  fi
  # Create the application database once.
  if ! PGPASSWORD="$(password)" "$BINDIR/psql" -h 127.0.0.1 -p "$PGPORT" -U "$DBUSER" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='$DBNAME'" | grep -q 1; then
    PGPASSWORD="$(password)" "$BINDIR/psql" -h 127.0.0.1 -p "$PGPORT" -U "$DBUSER" -d postgres -qc \
      "CREATE DATABASE \"$DBNAME\"" >/dev/null
  fi
  url
}

stop() {
  if [ -s "$PGDATA/PG_VERSION" ] && is_running; then
    as_owner "$BINDIR/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    log "PostgreSQL stopped"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  status) is_running && echo running || echo stopped ;;
  *) echo "usage: $0 start|stop|url|status" >&2; exit 2 ;;
esac
