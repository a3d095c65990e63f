#!/usr/bin/env bash
# Incremental against full refresh of materialized views over TPC-H
# lineitem, in one run on one Sluice server. Each repetition appends 1% of
# lineitem as new orders, then refreshes every view incrementally and then
# with FULL (same data, same machine moment), so each pair is comparable:
#
#   by_supplier  grouped count/sum/min/max by l_suppkey   (method combine)
#   by_order     avg and count(DISTINCT) by l_orderkey    (method groups)
#   big_lines    a filter and a projection                (method append)
#
# Target (issue "Transformations in SQL"): the grouped aggregate's
# incremental refresh takes <= 5% of its full refresh.
#
#   benchmarks/matview/run.sh                 # SF 1, 3 repetitions, medians
#   SF=0.01 RUNS=1 benchmarks/matview/run.sh  # smoke
#
# Timings are reported, never asserted; after the last repetition every
# view is compared with its query run fresh (EXCEPT ALL both ways).
#
# Environment: SF (default 1), RUNS (default 3), SLUICE_BIN (default
# $HOME/.cache/sluice-target/release/sluice), SLUICE_BENCH_PYTHON, PSQL.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${SLUICE_BENCH_PYTHON:-$HOME/.cache/sluice-venv/bin/python}"
SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target/release/sluice}"
PSQL="${PSQL:-psql}"
SF="${SF:-1}"
RUNS="${RUNS:-3}"

# shellcheck source=benchmarks/lineitem.sh
. "$ROOT/benchmarks/lineitem.sh"


BENCH=matview-bench
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
LABEL="$("$PYTHON" -c "import sys; print('%g' % float(sys.argv[1]))" "$SF")"
PARQUET="$ROOT/benchmarks/data/sf$LABEL/lineitem.parquet"
[ -s "$PARQUET" ] || die "$PARQUET is missing or empty"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-matview-bench.XXXXXX")"
start_sluice
sql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -t -A -d "$URL" -c "$1"; }
# Seconds one statement takes, as psql's \timing measures it (the round
# trip of the statement, without starting psql and connecting).
timed() {
    local t
    t="$("$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$URL" -c '\timing on' -c "$1" | awk '/^Time: / { printf "%.6f", $2 / 1000 }')"
    [ -n "$t" ] || die "no timing for: $1"
    echo "$t"
}

# The columns, with l_orderkey moved past every existing order for an
# appended slice (new orders, as a day of business brings).
NAMES="$(sed -E 's/^ *([a-z_]+) .*/\1/' <<<"$LINEITEM_COLUMNS" | grep . | paste -sd, -)"
shifted() { sed "s/l_orderkey,/l_orderkey + $1 AS l_orderkey,/" <<<"$NAMES"; }

log "loading lineitem SF$LABEL"
sql "CREATE TABLE lineitem ($LINEITEM_COLUMNS)" >/dev/null
sql "INSERT INTO lineitem SELECT $NAMES FROM read_parquet('$PARQUET')" >/dev/null
ROWS="$(sql "SELECT count(*) FROM lineitem")"
MAXKEY="$(sql "SELECT max(l_orderkey) FROM lineitem")"

declare -A QUERY=(
    [by_supplier]="SELECT l_suppkey, count(*) AS n, sum(l_quantity) AS qty, sum(l_extendedprice) AS revenue, min(l_shipdate) AS first_ship, max(l_shipdate) AS last_ship FROM lineitem GROUP BY l_suppkey"
    [by_order]="SELECT l_orderkey, avg(l_discount) AS discount, count(DISTINCT l_suppkey) AS suppliers FROM lineitem GROUP BY l_orderkey"
    [big_lines]="SELECT l_orderkey, l_linenumber, l_extendedprice FROM lineitem WHERE l_quantity > 45"
)
VIEWS=(by_supplier by_order big_lines)
for v in "${VIEWS[@]}"; do
    sql "CREATE MATERIALIZED VIEW $v AS ${QUERY[$v]}" >/dev/null
done

declare -A INC FULL METHOD
for ((r = 0; r < RUNS; r++)); do
    # 1% of lineitem: the orders whose key ends in r (mod 100), renumbered.
    offset=$(((r + 1) * (MAXKEY + 1)))
    sql "INSERT INTO lineitem SELECT $(shifted "$offset") FROM read_parquet('$PARQUET') WHERE l_orderkey % 100 = $r" >/dev/null
    for v in "${VIEWS[@]}"; do
        METHOD[$v]="$(sql "EXPLAIN REFRESH MATERIALIZED VIEW $v" | cut -d'|' -f1)"
        INC[$v]+="$(timed "REFRESH MATERIALIZED VIEW $v") "
        FULL[$v]+="$(timed "REFRESH MATERIALIZED VIEW $v FULL") "
    done
    log "repetition $((r + 1)) of $RUNS done"
done

for v in "${VIEWS[@]}"; do
    diff="$(sql "SELECT count(*) FROM ((SELECT * FROM $v EXCEPT ALL (${QUERY[$v]})) UNION ALL ((${QUERY[$v]}) EXCEPT ALL SELECT * FROM $v)) AS x")"
    [ "$diff" = 0 ] || die "$v differs from its query in $diff rows"
done

printf '\nmaterialized view refresh after a 1%% append, lineitem SF%s (%s rows), medians of %s\n' "$LABEL" "$ROWS" "$RUNS"
printf '%-12s %-8s %12s %12s %10s %8s\n' view method "incr s" "full s" "incr/full" target
for v in "${VIEWS[@]}"; do
    # shellcheck disable=SC2086
    i="$(median ${INC[$v]})"
    # shellcheck disable=SC2086
    f="$(median ${FULL[$v]})"
    target="-"
    [ "$v" = by_supplier ] && target="5%"
    printf '%-12s %-8s %12.3f %12.3f %9.1f%% %8s\n' "$v" "${METHOD[$v]}" "$i" "$f" "$(calc 'a / b * 100' "$i" "$f")" "$target"
done
