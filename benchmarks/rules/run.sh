#!/usr/bin/env bash
# Cost of a table's rules, measured against the same work without them, in
# one run on one Sluice server:
#
#  1. COPY of TPC-H lineitem (CSV, FROM STDIN through psql) into a table
#     with NOT NULL on 4 columns, 3 CHECKs and 2 expectations (one
#     QUARANTINE), against the same COPY into a table without rules.
#     Target (DESIGN.md section 8): <= 1.15x.
#  2. Appending 1M rows to a 10M-row table with a PRIMARY KEY, against the
#     same append without the key. Reported, no target.
#
#   benchmarks/rules/run.sh               # SF 1, 3 runs each, medians
#   SF=0.01 RUNS=1 benchmarks/rules/run.sh
#
# Timings are reported, never asserted; row counts are checked.
#
# Environment: SF (default 1), RUNS (default 3), BASE_ROWS (default
# 10000000), APPEND_ROWS (default 1000000), SLUICE_BIN (default
# $HOME/.cache/sluice-target/release/sluice), SLUICE_BENCH_PYTHON, PSQL.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${SLUICE_BENCH_PYTHON:-$HOME/.cache/sluice-venv/bin/python}"
SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target/release/sluice}"
PSQL="${PSQL:-psql}"
SF="${SF:-1}"
RUNS="${RUNS:-3}"
BASE_ROWS="${BASE_ROWS:-10000000}"
APPEND_ROWS="${APPEND_ROWS:-1000000}"

# shellcheck source=benchmarks/lineitem.sh
. "$ROOT/benchmarks/lineitem.sh"
PLAIN="CREATE TABLE plain ($LINEITEM_COLUMNS)"
# NOT NULL on 4 columns, 3 CHECKs, 2 expectations: every TPC-H row passes
# the hard rules; l_tax < 0.08 fails for some rows and is only counted.
RULED_COLUMNS="$(sed -E 's/^( *(l_orderkey|l_partkey|l_suppkey|l_linenumber) +[a-z]+)/\1 NOT NULL/' <<<"$LINEITEM_COLUMNS")"
RULES="CREATE TABLE ruled ($RULED_COLUMNS,
    CHECK (l_quantity > 0),
    CHECK (l_discount BETWEEN 0 AND 0.10),
    CHECK (l_shipdate <= l_receiptdate),
    CONSTRAINT known_flag EXPECT (l_returnflag IN ('A', 'N', 'R')) ON VIOLATION QUARANTINE,
    CONSTRAINT low_tax EXPECT (l_tax < 0.08)
)"
[[ "$(grep -o 'NOT NULL' <<<"$RULES" | wc -l)" == 4 ]] || { echo "rules-bench: NOT NULL columns not found" >&2; exit 1; }


BENCH=rules-bench
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
"$PYTHON" "$ROOT/benchmarks/tpch/gen.py" --sf "$SF" >&2
"$PYTHON" "$ROOT/benchmarks/copy/make_csv.py" --sf "$SF"
LABEL="$("$PYTHON" -c "import sys; print('%g' % float(sys.argv[1]))" "$SF")"
CSV="$ROOT/benchmarks/data/sf$LABEL/lineitem.csv"
[ -s "$CSV" ] || die "$CSV is missing or empty"
CSV_ROWS="$(wc -l <"$CSV")"
CSV_ROWS="${CSV_ROWS//[[:space:]]/}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-rules-bench.XXXXXX")"
start_sluice
sql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -t -A -d "$URL" -c "$1"; }

# time_copy TABLE: seconds for one COPY of the CSV into a fresh TABLE.
time_copy() {
    local table="$1" t0 t1 n
    t0="$(now)"
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$URL" -c "COPY $table FROM STDIN WITH (FORMAT csv)" <"$CSV" >/dev/null
    t1="$(now)"
    n="$(sql "SELECT count(*) FROM $table")"
    [ "$n" = "$CSV_ROWS" ] || die "$table has $n rows, the CSV $CSV_ROWS"
    calc 'a - b' "$t1" "$t0"
}

log "COPY of $CSV_ROWS lineitem rows, $RUNS runs each, alternating"
plain=() ruled=()
for ((r = 1; r <= RUNS; r++)); do
    sql "DROP TABLE IF EXISTS plain" >/dev/null
    sql "DROP TABLE IF EXISTS ruled" >/dev/null
    sql "DROP TABLE IF EXISTS ruled__quarantine" >/dev/null
    sql "$PLAIN" >/dev/null
    sql "$RULES" >/dev/null
    plain+=("$(time_copy plain)")
    ruled+=("$(time_copy ruled)")
    log "run $r: without rules $(printf '%.3f' "${plain[-1]}") s, with rules $(printf '%.3f' "${ruled[-1]}") s"
done
FAILED="$(sql "SELECT max(rows_failed) FROM sluice.expectation_results WHERE table_name = 'ruled' AND expectation = 'low_tax'")"
P="$(median "${plain[@]}")"
R="$(median "${ruled[@]}")"
# Runs alternate, so each pair shares the machine's mood of the moment.
pairs=()
for ((r = 0; r < RUNS; r++)); do
    pairs+=("$(calc 'a / b' "${ruled[r]}" "${plain[r]}")")
done
PAIRED="$(median "${pairs[@]}")"

log "append $APPEND_ROWS rows to $BASE_ROWS, with and without a PRIMARY KEY"
sql "CREATE TABLE base_plain (id bigint, v bigint)" >/dev/null
sql "CREATE TABLE base_pk (id bigint PRIMARY KEY, v bigint)" >/dev/null
sql "INSERT INTO base_plain SELECT x, x % 97 FROM generate_series(1, $BASE_ROWS) AS g(x)" >/dev/null
sql "INSERT INTO base_pk SELECT x, x % 97 FROM generate_series(1, $BASE_ROWS) AS g(x)" >/dev/null
append() {
    local table="$1" from="$2" t0 t1
    t0="$(now)"
    sql "INSERT INTO $table SELECT x, x % 97 FROM generate_series($from, $((from + APPEND_ROWS - 1))) AS g(x)" >/dev/null
    t1="$(now)"
    calc 'a - b' "$t1" "$t0"
}
ap=() ak=()
for ((r = 0; r < RUNS; r++)); do
    from=$((BASE_ROWS + 1 + r * APPEND_ROWS))
    ap+=("$(append base_plain "$from")")
    ak+=("$(append base_pk "$from")")
    log "append $((r + 1)): without key $(printf '%.3f' "${ap[-1]}") s, with key $(printf '%.3f' "${ak[-1]}") s"
done
n="$(sql "SELECT count(*) FROM base_pk")"
[ "$n" = "$((BASE_ROWS + RUNS * APPEND_ROWS))" ] || die "base_pk has $n rows"
AP="$(median "${ap[@]}")"
AK="$(median "${ak[@]}")"

printf '\n%-48s %10s %10s %8s %8s\n' "rules benchmark (medians of $RUNS)" "plain s" "rules s" "ratio" "target"
printf '%-48s %10.3f %10.3f %7.2fx %7s\n' "COPY lineitem SF$LABEL ($CSV_ROWS rows)" "$P" "$R" "$(calc 'a / b' "$R" "$P")" "1.15x"
printf '%-48s %10.3f %10.3f %7.2fx %7s\n' "append $APPEND_ROWS rows to $BASE_ROWS, PRIMARY KEY" "$AP" "$AK" "$(calc 'a / b' "$AK" "$AP")" "-"
printf 'COPY: median of the per-run ratios %.2fx (runs: %s)\n' "$PAIRED" "$(printf '%.2f ' "${pairs[@]}")"
printf 'low_tax rows failed (recorded, kept) in one load: %s\n' "$FAILED"
