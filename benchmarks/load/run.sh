#!/usr/bin/env bash
# Load: CONNECTIONS clients (default 64) of mixed reads and writes on one
# server on a local lake for SECS seconds (default 600): point reads,
# aggregates, 10-row inserts, updates and upserts of a 1,000-row table.
# Reports statements/s, p50/p99 per kind, the server's RSS every 10 s, the
# 40001 retries, and checks that every acknowledged row and increment is
# stored exactly once. Timings are reported, never asserted; any error but
# 40001 fails the run.
#
#   benchmarks/load/run.sh                              # 64 clients, 10 minutes
#   CONNECTIONS=8 SECS=20 benchmarks/load/run.sh        # smoke
#
# Environment: CONNECTIONS, SECS, SLUICE_BIN (default
# $HOME/.cache/sluice-target/release/sluice), SLUICE_BENCH_PYTHON (default
# $HOME/.cache/sluice-venv/bin/python, with psycopg 3).
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target/release/sluice}"
PYTHON="${SLUICE_BENCH_PYTHON:-$HOME/.cache/sluice-venv/bin/python}"
CONNECTIONS="${CONNECTIONS:-64}"
SECS="${SECS:-600}"

BENCH=load-bench
# shellcheck source=benchmarks/lib.sh
. "$ROOT/benchmarks/lib.sh"
SLUICE_PID=""
WORK="$(mktemp -d)"
cleanup() {
    stop_sluice
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$SLUICE_BIN" ] || die "no sluice binary at $SLUICE_BIN (cargo build --release, or set SLUICE_BIN)"
start_sluice
log "sluice (pid $SLUICE_PID) at $URL: $CONNECTIONS connections for $SECS s"
"$PYTHON" "$ROOT/benchmarks/load/load.py" --url "$URL" --connections "$CONNECTIONS" \
    --seconds "$SECS" --pid "$SLUICE_PID"
