#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback, for tests and benchmarks of the collector's PostgreSQL store.
#
#   scripts/postgres.sh start    installs PostgreSQL from Debian packages if missing (root), creates a cluster,
#                                starts it on 127.0.0.1 on a free port and prints its postgresql:// URL
#   scripts/postgres.sh url      prints the URL of the running cluster
#   scripts/postgres.sh stop     stops the cluster and removes it
#
# With AGENTTRACE_PG_OWNER=<pid>, start also leaves a watcher (in its own session) that stops and removes the
# cluster once that process is gone, so a test run killed with kill -9 or a killed process group leaves no server.
#
# The cluster lives in $AGENTTRACE_PG_DIR (default /tmp/agenttrace-pg): data, log, password and URL. It listens
# on 127.0.0.1 only (no Unix socket); the role and database "agenttrace" are reached with a random password
# (scram-sha-256). Run as root, the server runs as the "postgres" user (PostgreSQL refuses root).
# Exit status 3: PostgreSQL is not installed and cannot be (not root, or no apt-get).
set -euo pipefail

DIR="${AGENTTRACE_PG_DIR:-/tmp/agenttrace-pg}"
DATA="$DIR/data"

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then BIN="$d"; fi  # the newest version wins (glob order)
  done
  if [ -z "${BIN:-}" ] && command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    BIN="$(dirname "$(command -v initdb)")"
  fi
  [ -n "${BIN:-}" ]
}

install_postgres() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "postgres.sh: PostgreSQL is not installed, and installing it needs root and apt-get" >&2
    exit 3
  fi
  echo "postgres.sh: installing PostgreSQL (apt-get install postgresql)" >&2
  # No default "main" cluster on port 5432: this script makes its own.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/agenttrace-no-main.conf
  local start=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends postgresql >&2
  echo "postgres.sh: installed in $((SECONDS - start)) s" >&2
}

# Runs a command as the cluster's owner: "postgres" when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running() {
  [ -f "$DIR/url" ] && [ -f "$DATA/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
  find_bin || { install_postgres; find_bin || { echo "postgres.sh: no initdb after install" >&2; exit 3; }; }
  if running; then cat "$DIR/url"; return; fi
  rm -rf "$DATA"
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; fi
  local superpw pw
  superpw="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  pw="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  (umask 077; echo "$superpw" > "$DIR/superpw")
  if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR/superpw"; fi
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --pwfile="$DIR/superpw" --auth-host=scram-sha-256 \
    --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
  local port tries
  for tries in 1 2 3; do
    port="$(free_port)"
    if as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 30 \
         -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=''" start >/dev/null; then
      break
    fi
    [ "$tries" = 3 ] && { tail -20 "$DIR/server.log" >&2; exit 1; }
  done
  as_owner env PGPASSWORD="$superpw" "$BIN/psql" -q -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c "CREATE ROLE agenttrace LOGIN PASSWORD '$pw'" -c "CREATE DATABASE agenttrace OWNER agenttrace" >&2
  echo "postgresql://agenttrace:$pw@127.0.0.1:$port/agenttrace" > "$DIR/url"
  if [ -n "${AGENTTRACE_PG_OWNER:-}" ]; then watch_owner "$AGENTTRACE_PG_OWNER"; fi
  cat "$DIR/url"
}

# Stops the cluster once process $1 has exited: a detached loop, so killing the caller's group does not kill it.
watch_owner() {
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; AGENTTRACE_PG_DIR="$2" "$3" stop' \
    watcher "$1" "$DIR" "$(readlink -f "$0")" </dev/null >/dev/null 2>&1 &
}

stop() {
  find_bin || true
  if [ -n "${BIN:-}" ] && [ -f "$DATA/postmaster.pid" ]; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null || true
  fi
  rm -rf "$DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url)
    find_bin || { echo "postgres.sh: PostgreSQL is not installed" >&2; exit 3; }
    running || { echo "postgres.sh: no cluster running in $DIR" >&2; exit 1; }
    cat "$DIR/url" ;;
  *) echo "usage: $0 start|stop|url   (cluster in \$AGENTTRACE_PG_DIR, default /tmp/agenttrace-pg)" >&2; exit 2 ;;
esac
