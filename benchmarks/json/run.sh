#!/usr/bin/env bash
# Extracting fields from JSON documents: Sluice's `->>` / `#>>` against
# DuckDB's json_extract_string on the same Parquet file of ROWS JSON
# documents (a text column `doc`), in one run, the sides interleaved per
# repetition.
#
#   SELECT doc ->> 'kind', count(*), max(doc #>> '{user,name}'),
#          sum(CAST(doc ->> 'amount' AS double precision))
#   FROM read_parquet('events.parquet') GROUP BY 1
#
# Three fields per row. Target (issue "PostgreSQL fidelity"): Sluice within
# 2x of DuckDB at 10M rows. Timings are reported, never asserted; the
# answers must agree.
#
#   benchmarks/json/run.sh                      # 10M rows, 3 repetitions
#   ROWS=100000 RUNS=1 benchmarks/json/run.sh   # smoke (in scripts/test.sh)
#
# Environment: ROWS, RUNS (default 3), SLUICE_BIN (default
# $HOME/.cache/sluice-target/release/sluice), SLUICE_BENCH_PYTHON, PSQL.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${SLUICE_BENCH_PYTHON:-$HOME/.cache/sluice-venv/bin/python}"
SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target/release/sluice}"
PSQL="${PSQL:-psql}"
ROWS="${ROWS:-10000000}"
RUNS="${RUNS:-3}"

BENCH=json-bench
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
"$PYTHON" -c 'import duckdb' 2>/dev/null || die "$PYTHON has no duckdb; run scripts/setup-test-env.sh first"

DATA="$ROOT/benchmarks/data/json-$ROWS"
if [ ! -s "$DATA/events.parquet" ]; then
    log "generating $ROWS JSON documents"
    mkdir -p "$DATA"
    "$PYTHON" - "$DATA" "$ROWS" <<'EOF'
import sys, duckdb
out, rows = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
# Documents as an API would send them: nested, a list, numbers with
# fractions, the extracted keys neither first nor last.
con.execute(f"""COPY (SELECT '{{"id": ' || i || ', "kind": "' || (['click', 'view', 'buy', 'refund'])[i % 4 + 1]
    || '", "user": {{"id": ' || (i % 100000) || ', "name": "user' || (i % 100000) || '", "country": "'
    || (['NL', 'DE', 'FR'])[i % 3 + 1] || '"}}, "amount": ' || ((i * 7919) % 100000) / 100.0
    || ', "tags": ["t' || (i % 7) || '", "x"], "ok": ' || (i % 5 <> 0) || '}}' AS doc
  FROM range({rows}) t(i)) TO '{out}/events.parquet' (FORMAT parquet)""")
EOF
fi
P="$DATA/events.parquet"

Q_SLUICE="SELECT doc ->> 'kind' AS kind, count(*), max(doc #>> '{user,name}'), round(sum(CAST(doc ->> 'amount' AS double precision))) FROM read_parquet('$P') GROUP BY 1 ORDER BY 1"
Q_DUCKDB="SELECT json_extract_string(doc, '\$.kind') AS kind, count(*), max(json_extract_string(doc, '\$.user.name')), round(sum(CAST(json_extract_string(doc, '\$.amount') AS DOUBLE))) FROM read_parquet('$P') GROUP BY 1 ORDER BY 1"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-json-bench.XXXXXX")"
start_sluice
timed_sluice() {
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -A -t -d "$URL" -c '\timing on' -c "$1" >"$WORK/sluice.out"
    awk '/^Time: / { printf "%.6f", $2 / 1000 }' "$WORK/sluice.out"
}
answer_sluice() { grep -v '^Time: ' "$WORK/sluice.out" | sed 's/\.0$//' | tr '\n' ';'; }
# DuckDB in its own process: seconds and the answer.
timed_duckdb() {
    "$PYTHON" - "$1" <<'EOF'
import sys, time, duckdb
con = duckdb.connect()
t = time.perf_counter()
rows = con.execute(sys.argv[1]).fetchall()
t = time.perf_counter() - t
fmt = lambda v: str(int(v)) if isinstance(v, float) else str(v)
print("%.6f %s" % (t, "".join("|".join(fmt(v) for v in r) + ";" for r in rows)))
EOF
}

log "three fields from each of $ROWS JSON documents, $RUNS repetitions"
S=() D=()
for ((r = 1; r <= RUNS; r++)); do
    read -r dt dans <<<"$(timed_duckdb "$Q_DUCKDB")"
    st="$(timed_sluice "$Q_SLUICE")"
    sans="$(answer_sluice)"
    [ "$sans" = "$dans" ] || die "answers differ: sluice $sans, duckdb $dans"
    S+=("$st") D+=("$dt")
    log "  repetition $r: sluice ${st}s, duckdb ${dt}s"
done
SM="$(median "${S[@]}")" DM="$(median "${D[@]}")"
echo "json_extract rows=$ROWS sluice_s=$SM duckdb_s=$DM ratio=$(calc 'a / b' "$SM" "$DM")"
