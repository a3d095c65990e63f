#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster used as the reference peer by the tests.
#
#   scripts/pg-test-server.sh start    initialise if needed, start, wait, create db
#   scripts/pg-test-server.sh stop     stop it (no error when not running)
#   scripts/pg-test-server.sh status   exit 0 when it is running and accepting
#   scripts/pg-test-server.sh url      print the connection URL of the test db
#
# Environment:
#   SLUICE_PG_DIR   where the cluster lives (default: /tmp/sluice-pg)
#   SLUICE_PG_PORT  TCP port on 127.0.0.1 (default: 54329)
#   SLUICE_PG_BIN   PostgreSQL server binaries (default: /usr/lib/postgresql/15/bin)
#
# The cluster trusts every local connection, listens on loopback only, keeps its
# unix socket inside its data directory, and runs without fsync: it is for
# tests and nothing else. As root, the server runs as the `postgres` user
# (initdb refuses to run as root).
set -euo pipefail

BASE="${SLUICE_PG_DIR:-/tmp/sluice-pg}"
PORT="${SLUICE_PG_PORT:-54329}"
BIN="${SLUICE_PG_BIN:-/usr/lib/postgresql/15/bin}"
DATA="$BASE/data"
LOG="$BASE/postgres.log"
DB=sluice_compat
USER_NAME=postgres
START_TIMEOUT=60

log() { echo "pg-test-server: $*" >&2; }

url() { echo "postgresql://$USER_NAME@127.0.0.1:$PORT/$DB"; }

# Runs a command as the cluster owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_bin() {
    if [ -x "$BIN/$1" ]; then
        echo "$BIN/$1"
    elif command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    else
        log "cannot find $1 (set SLUICE_PG_BIN or run scripts/setup-test-env.sh)"
        exit 1
    fi
}

is_ready() {
    "$(pg_bin pg_isready)" -q -h 127.0.0.1 -p "$PORT" -U "$USER_NAME" -d postgres >/dev/null 2>&1
}

# 0 when pg_ctl sees a live postmaster for our data directory.
is_running() {
    [ -f "$DATA/PG_VERSION" ] || return 1
    as_owner "$(pg_bin pg_ctl)" -D "$DATA" status >/dev/null 2>&1
}

prepare_dirs() {
    mkdir -p "$BASE"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$BASE"
    fi
    chmod 0755 "$BASE"
}

init_cluster() {
    if [ -f "$DATA/PG_VERSION" ]; then
        return 0
    fi
    log "initialising cluster in $DATA"
    # A half-made data directory from an interrupted initdb: start over.
    if [ -e "$DATA" ]; then
        rm -rf "$DATA"
    fi
    # C locale: byte-wise text ordering and English messages, like Sluice.
    as_owner "$(pg_bin initdb)" -D "$DATA" -U "$USER_NAME" --auth=trust \
        --encoding=UTF8 --no-locale >"$BASE/initdb.log" 2>&1 || {
        cat "$BASE/initdb.log" >&2
        log "initdb failed"
        exit 1
    }
}

wait_ready() {
    local i
    for ((i = 0; i < START_TIMEOUT * 5; i++)); do
        if is_ready; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

ensure_database() {
    local psql
    psql="$(pg_bin psql)"
    local exists
    exists="$("$psql" -X -q -t -A -h 127.0.0.1 -p "$PORT" -U "$USER_NAME" -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")"
    if [ "$exists" != "1" ]; then
        log "creating database $DB"
        "$psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$USER_NAME" -d postgres \
            -c "CREATE DATABASE $DB" >/dev/null
    fi
}

start() {
    prepare_dirs
    init_cluster
    if is_running; then
        if wait_ready; then
            ensure_database
            log "already running on 127.0.0.1:$PORT"
            return 0
        fi
        log "a server owns $DATA but does not answer on port $PORT; restarting it"
        as_owner "$(pg_bin pg_ctl)" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    # pg_ctl status said "not running": any postmaster.pid left is stale.
    if [ -f "$DATA/postmaster.pid" ] && ! is_running; then
        log "removing stale postmaster.pid"
        rm -f "$DATA/postmaster.pid"
    fi
    if is_ready; then
        log "port $PORT is already taken by another server; set SLUICE_PG_PORT"
        exit 1
    fi
    local opts="-p $PORT -k $DATA -c listen_addresses=127.0.0.1"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    opts+=" -c TimeZone=UTC -c max_connections=200"
    touch "$LOG"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$LOG"
    fi
    if ! as_owner "$(pg_bin pg_ctl)" -D "$DATA" -l "$LOG" -o "$opts" -w -t "$START_TIMEOUT" start >/dev/null; then
        tail -n 30 "$LOG" >&2 || true
        log "failed to start"
        exit 1
    fi
    if ! wait_ready; then
        tail -n 30 "$LOG" >&2 || true
        log "server started but does not accept connections"
        exit 1
    fi
    ensure_database
    log "running on 127.0.0.1:$PORT (data: $DATA, log: $LOG)"
}

stop() {
    if is_running; then
        as_owner "$(pg_bin pg_ctl)" -D "$DATA" -m fast -w -t "$START_TIMEOUT" stop >/dev/null
        log "stopped"
    else
        log "not running"
    fi
}

status() {
    if is_running && is_ready; then
        echo "running on 127.0.0.1:$PORT"
    else
        echo "not running"
        return 3
    fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
url) url ;;
*)
    echo "usage: $0 start|stop|status|url" >&2
    exit 2
    ;;
esac
