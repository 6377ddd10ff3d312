#!/usr/bin/env bash
# PostgreSQL: the project's own cluster in .mailstream/postgres on 127.0.0.1:5432, from
# Debian's postgresql package (installed when missing). Skipped entirely when
# MAILSTREAM_DATABASE_URL names an existing server.
source "$(dirname "$0")/lib.sh"

PGHOME="$STATE/postgres"
DATA="$PGHOME/data"
SOCK="$PGHOME/socket"
LOG="$LOGS/postgres.log"
PORT=5432

# PostgreSQL refuses to run as root; as root we run it as the package's postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -n "$d" ] && [ -x "$d/postgres" ] && echo "$d"
}

prepare() {
  uses_external_database && return 0
  if [ -z "$(pg_bin)" ]; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL is missing: run 'sudo apt-get install -y postgresql' once"
    say "installing Debian's postgresql package"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    # The package starts a default cluster on our port; ours runs instead.
    pg_ctlcluster --force "$(ls /etc/postgresql | sort -V | tail -n1)" main stop 2>/dev/null || true
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    local bin; bin=$(pg_bin)
    mkdir -p "$PGHOME"
    [ "$(id -u)" = 0 ] && chown postgres: "$PGHOME"
    as_pg "$bin/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >>"$LOG" 2>&1 || { tail -n 20 "$LOG" >&2; die "initdb failed"; }
    as_pg mkdir -p "$SOCK"
    cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
max_connections = 200
shared_buffers = 128MB
fsync = on
synchronous_commit = on
CONF
    NEEDS_BOOTSTRAP=1
  fi
}

start() {
  uses_external_database && { say "using the PostgreSQL server of MAILSTREAM_DATABASE_URL"; return 0; }
  prepare
  local bin; bin=$(pg_bin)
  if ! as_pg "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    if ss -ltn "sport = :$PORT" | grep -q LISTEN; then
      die "port $PORT is taken by another PostgreSQL (stop it, e.g. 'pg_ctlcluster 15 main stop', or set MAILSTREAM_DATABASE_URL)"
    fi
    as_pg "$bin/pg_ctl" -D "$DATA" -l "$PGHOME/server.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$PGHOME/server.log" >&2; die "postgres did not start"; }
  fi
  head -n1 "$DATA/postmaster.pid" >"$RUN/postgres.pid"
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 30 || die "postgres is not accepting connections"
  if [ "${NEEDS_BOOTSTRAP:-0}" = 1 ] || ! as_pg "$bin/psql" -h "$SOCK" -p "$PORT" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'mailstream'" | grep -q 1; then
    as_pg "$bin/psql" -q -h "$SOCK" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mailstream') THEN
    CREATE ROLE mailstream LOGIN PASSWORD 'mailstream';
  END IF;
END \$\$;
SQL
    as_pg "$bin/psql" -q -h "$SOCK" -p "$PORT" -U postgres -c "CREATE DATABASE mailstream OWNER mailstream"
  fi
}

stop() {
  uses_external_database && return 0
  local bin; bin=$(pg_bin) || true
  if [ -n "$bin" ] && [ -f "$DATA/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
  rm -f "$RUN/postgres.pid"
}

case "${1:-}" in
  prepare) prepare ;;
  start) start ;;
  stop) stop ;;
  *) die "usage: postgres.sh prepare|start|stop" ;;
esac
