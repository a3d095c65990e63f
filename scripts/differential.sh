#!/usr/bin/env bash
# Long differential run of Sluice against PostgreSQL 15 (tests/differential/).
#
#   scripts/differential.sh [extra run.py arguments]
#
# Runs SEEDS (default 1-20) with COUNT cases each (default 300), reduces
# mismatches, and leaves in OUT (default target/differential/):
#   report.jsonl   one JSON line per mismatch (query, both outcomes, seed,
#                  reduced reproducer), then a summary line
#   summary.json   agreement rate, counts per kind and per group, timings
#   summary.md     the groups, each with its smallest reproducer
# Exits 1 when a mismatch is not listed in tests/differential/known_differences.txt.
#
# Environment:
#   SLUICE_BIN     the server binary (default: $CARGO_TARGET_DIR/release/sluice,
#                  then .../debug/sluice); never built here
#   SLUICE_VENV    Python virtualenv with psycopg (default: $HOME/.cache/sluice-venv)
#   SEEDS, COUNT, OUT, REDUCE_SECONDS (default 20), SECONDS_LIMIT (default: none)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SLUICE_VENV="${SLUICE_VENV:-$HOME/.cache/sluice-venv}"
CARGO_TARGET_DIR="$(scripts/target-dir.sh)"
SEEDS="${SEEDS:-1-20}"
COUNT="${COUNT:-300}"
OUT="${OUT:-$ROOT/target/differential}"
REDUCE_SECONDS="${REDUCE_SECONDS:-20}"

if [ -z "${SLUICE_BIN:-}" ]; then
    for candidate in "$CARGO_TARGET_DIR/release/sluice" "$CARGO_TARGET_DIR/debug/sluice"; do
        if [ -x "$candidate" ]; then
            SLUICE_BIN="$candidate"
            break
        fi
    done
fi
if [ -z "${SLUICE_BIN:-}" ] || [ ! -x "$SLUICE_BIN" ]; then
    echo "differential: no Sluice binary; build one or set SLUICE_BIN" >&2
    exit 2
fi

scripts/pg-test-server.sh start
PG_URL="$(scripts/pg-test-server.sh url)"

mkdir -p "$OUT"
rm -f "$OUT/report.jsonl"
limit=()
if [ -n "${SECONDS_LIMIT:-}" ]; then
    limit=(--seconds "$SECONDS_LIMIT")
fi

status=0
"$SLUICE_VENV/bin/python" tests/differential/run.py \
    --sluice-bin "$SLUICE_BIN" --pg-url "$PG_URL" \
    --seed "$SEEDS" --count "$COUNT" "${limit[@]}" \
    --reduce-seconds "$REDUCE_SECONDS" --quiet \
    --report "$OUT/report.jsonl" --summary "$OUT/summary.json" "$@" || status=$?
"$SLUICE_VENV/bin/python" tests/differential/summarize.py "$OUT/report.jsonl" >"$OUT/summary.md"
echo "differential: report in $OUT (summary.md, summary.json, report.jsonl)" >&2
exit "$status"
