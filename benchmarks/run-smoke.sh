#!/usr/bin/env bash
# TPC-H smoke run: SF 0.01, debug build, one repetition. Checks that the 22
# queries run on Sluice (wire and in process) and return the same row counts
# as raw DataFusion; the timings it prints are not meaningful in debug mode.
#
# Exits non-zero when a query fails on Sluice or a row count differs.
#
# Environment:
#   SLUICE_BENCH_PYTHON  interpreter with duckdb and duckdb-ext-tpch
#                        (default: $HOME/.cache/sluice-venv/bin/python, which
#                        scripts/setup-test-env.sh creates)
#   SF                   scale factor (default 0.01)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${SLUICE_BENCH_PYTHON:-$HOME/.cache/sluice-venv/bin/python}"
SF="${SF:-0.01}"
export SLUICE_BENCH_PYTHON="$PYTHON"

if ! "$PYTHON" -c 'import duckdb' 2>/dev/null; then
    echo "run-smoke: $PYTHON has no duckdb; run scripts/setup-test-env.sh first" >&2
    exit 2
fi

"$PYTHON" "$ROOT/benchmarks/tpch/gen.py" --sf "$SF"
DATA="$ROOT/benchmarks/data/sf$("$PYTHON" -c "import sys; print('%g' % float(sys.argv[1]))" "$SF")"

LAKE="$(mktemp -d "${TMPDIR:-/tmp}/sluice-tpch-smoke.XXXXXX")"
trap 'rm -rf "$LAKE"' EXIT

cd "$ROOT"
cargo run --quiet --example tpch -- --data "$DATA" --lake "$LAKE" --reps 1
