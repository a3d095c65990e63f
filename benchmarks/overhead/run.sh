#!/usr/bin/env bash
# Statement-overhead benchmark: 10,000 prepared SELECT $1 + 1, one-row SELECTs by key and
# one-row INSERTs through the wire, Sluice and PostgreSQL 15 interleaved in
# one run (benchmarks/overhead.rs). Prints p50/p99 per side, the ratios and
# Sluice's storage requests per statement.
#
#   benchmarks/overhead/run.sh                       # 10,000 repetitions
#   REPS=1000 benchmarks/overhead/run.sh             # shorter
#   SLUICE_FRESHNESS_MS=1000 benchmarks/overhead/run.sh   # an object-store-like window on a local lake
#   LAKE=s3://bucket/prefix benchmarks/overhead/run.sh    # a lake on S3 (AWS_* in the environment)
#
# Environment:
#   REPS, ROWS      repetitions (default 10000) and rows of bench_kv (default 100000)
#   LAKE            the lake to serve (default: a fresh temporary folder)
#   SLUICE_BIN      the server (default $HOME/.cache/sluice-target/release/sluice)
#   PROFILE         cargo profile of the client (default release)
#   SLUICE_PG_*     passed to scripts/pg-test-server.sh
# Timings are reported, never asserted.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target/release/sluice}"
REPS="${REPS:-10000}"
ROWS="${ROWS:-100000}"
PG_SERVER="$ROOT/scripts/pg-test-server.sh"

log() { echo "overhead-bench: $*" >&2; }
die() {
    log "$*"
    exit 1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-overhead.XXXXXX")"
SLUICE_PID=""
cleanup() {
    if [ -n "$SLUICE_PID" ]; then
        kill -TERM "$SLUICE_PID" 2>/dev/null || true
        wait "$SLUICE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$SLUICE_BIN" ] || die "no sluice binary at $SLUICE_BIN (cargo build --release, or set SLUICE_BIN)"
"$PG_SERVER" start
PG_URL="$("$PG_SERVER" url)"

"$SLUICE_BIN" serve --lake "${LAKE:-$WORK/lake}" --listen 127.0.0.1:0 >"$WORK/stdout.log" 2>"$WORK/stderr.log" &
SLUICE_PID=$!
line=""
for ((i = 0; i < 600; i++)); do
    line="$(grep -m1 '^listening on ' "$WORK/stdout.log" 2>/dev/null || true)"
    [ -n "$line" ] && break
    kill -0 "$SLUICE_PID" 2>/dev/null || {
        cat "$WORK/stderr.log" >&2
        die "sluice exited before listening"
    }
    sleep 0.1
done
[ -n "$line" ] || die "sluice did not listen within 60 s"
SLUICE_URL="postgresql://sluice@127.0.0.1:${line##*:}/sluice"
log "sluice at $SLUICE_URL, postgres at $PG_URL"

cd "$ROOT"
cargo run --quiet --profile "${PROFILE:-release}" --example overhead -- \
    --sluice "$SLUICE_URL" --pg "$PG_URL" --reps "$REPS" --rows "$ROWS"
