#!/usr/bin/env bash
# Reading a table into a Polars DataFrame: `pl.read_database_uri` with the
# ADBC engine (libpq, binary COPY) and with connectorx (binary COPY), from
# Sluice and from PostgreSQL 15 in the same run, the sides interleaved per
# repetition. Target (issue "The clients people already use"): Sluice
# faster than PostgreSQL at 10M rows. Timings are reported, never
# asserted; the frames read from both sides must be equal.
#
#   benchmarks/dataframes/run.sh                     # 10M rows, 3 repetitions
#   ROWS=100000 REPS=1 benchmarks/dataframes/run.sh  # smoke size
#
# Environment: ROWS (default 10000000), REPS (default 3), ENGINES (default
# adbc,connectorx), SLUICE_BIN (default
# $HOME/.cache/sluice-target/release/sluice), SLUICE_BENCH_PYTHON (default
# $HOME/.cache/sluice-venv/bin/python, made by scripts/setup-test-env.sh),
# SLUICE_PG_* (passed to scripts/pg-test-server.sh).
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${SLUICE_BENCH_PYTHON:-$HOME/.cache/sluice-venv/bin/python}"
SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target/release/sluice}"
ROWS="${ROWS:-10000000}"
REPS="${REPS:-3}"
ENGINES="${ENGINES:-adbc,connectorx}"

BENCH=frames-bench
# shellcheck source=benchmarks/lib.sh
. "$ROOT/benchmarks/lib.sh"
SLUICE_PID=""
WORK=""
cleanup() {
    stop_sluice
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$SLUICE_BIN" ] || die "no sluice binary at $SLUICE_BIN (cargo build --release, or set SLUICE_BIN)"
"$PYTHON" -c 'import duckdb, polars, connectorx, adbc_driver_postgresql' 2>/dev/null ||
    die "$PYTHON lacks duckdb, polars, connectorx or adbc_driver_postgresql; run scripts/setup-test-env.sh first"

# The data: every common type, a tenth of `small` NULL, as CSV.
DATA="$ROOT/benchmarks/data/frames-$ROWS"
if [ ! -s "$DATA/frames.csv" ]; then
    log "generating $ROWS rows"
    mkdir -p "$DATA"
    "$PYTHON" - "$DATA/frames.csv" "$ROWS" <<'PY'
import sys, duckdb
out, rows = sys.argv[1], int(sys.argv[2])
duckdb.connect().execute(f"""COPY (SELECT i AS id,
    CASE WHEN i % 10 = 0 THEN NULL ELSE (i % 1000)::INTEGER END AS small,
    'name ' || i AS name, 'c' || (i % 37) AS code,
    ((i % 100000) * 1.25)::DECIMAL(12,2) AS amount, i / 7.0 AS ratio, i % 2 = 0 AS flag,
    DATE '2020-01-01' + (i % 2000)::INTEGER AS day,
    TIMESTAMP '2020-01-01' + to_seconds(i) AS ts
  FROM range({rows}) t(i)) TO '{out}.tmp' (FORMAT csv, HEADER false)""")
PY
    mv "$DATA/frames.csv.tmp" "$DATA/frames.csv"
fi

"$ROOT/scripts/pg-test-server.sh" start
PG_URL="$("$ROOT/scripts/pg-test-server.sh" url)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-frames-bench.XXXXXX")"
start_sluice
"$PYTHON" "$ROOT/benchmarks/dataframes/frames.py" --rows "$ROWS" --reps "$REPS" \
    --engines "$ENGINES" --csv "$DATA/frames.csv" --pg "$PG_URL" --sluice "$URL"
