#!/usr/bin/env bash
# One dbt project (benchmarks/project/tpch_project: staging views, table
# marts with joins and aggregates, an incremental model, 9 tests) built
# from scratch by `sluice build` and by dbt-core + dbt-postgres against
# PostgreSQL 15, alternating per repetition on the same machine. The source
# tables (TPC-H lineitem, orders, customer, nation at scale SF, same column
# types on both sides) are loaded first and not timed.
#
# Reported: wall time of each whole command (what a user waits for, dbt's
# Python start included), medians over RUNS, and the ratio dbt / Sluice
# (target, issue "Transformations in SQL": Sluice faster, ratio > 1).
# Afterwards every mart table is compared between the two (EXCEPT ALL both
# ways through psql on each side's rows).
#
#   benchmarks/project/run.sh                 # SF 1, 3 repetitions
#   SF=0.01 RUNS=1 benchmarks/project/run.sh  # smoke
#
# Environment: SF (default 1), RUNS (default 3), THREADS (default 4),
# SLUICE_BIN (default $HOME/.cache/sluice-target/release/sluice),
# SLUICE_BENCH_PYTHON (a virtualenv python with duckdb and dbt), PSQL,
# KEEP_WORK=1 to keep the scratch folder (lake, both projects, logs).
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${SLUICE_BENCH_PYTHON:-$HOME/.cache/sluice-venv/bin/python}"
DBT="$(dirname "$PYTHON")/dbt"
SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target/release/sluice}"
PSQL="${PSQL:-psql}"
SF="${SF:-1}"
RUNS="${RUNS:-3}"
THREADS="${THREADS:-4}"
PG_SERVER="$ROOT/scripts/pg-test-server.sh"

# shellcheck source=benchmarks/lineitem.sh
. "$ROOT/benchmarks/lineitem.sh"
BENCH=project-bench
# shellcheck source=benchmarks/lib.sh
. "$ROOT/benchmarks/lib.sh"
SLUICE_PID=""
WORK=""
cleanup() {
    stop_sluice
    [ -n "$WORK" ] && [ -z "${KEEP_WORK:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$SLUICE_BIN" ] || die "no sluice binary at $SLUICE_BIN (cargo build --release, or set SLUICE_BIN)"
[ -x "$DBT" ] || die "no dbt next to $PYTHON; run scripts/setup-test-env.sh first"
"$PYTHON" "$ROOT/benchmarks/tpch/gen.py" --sf "$SF" >&2
LABEL="$("$PYTHON" -c "import sys; print('%g' % float(sys.argv[1]))" "$SF")"
DATA="$ROOT/benchmarks/data/sf$LABEL"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-project-bench.XXXXXX")"
"$PG_SERVER" start >&2
PG_ADMIN="$("$PG_SERVER" url)"
DB=sluice_project_bench
"$PSQL" -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
PG_URL="${PG_ADMIN%/*}/$DB"
PG_HOSTPORT="${PG_ADMIN#*@}"
PG_HOSTPORT="${PG_HOSTPORT%%/*}"

DDL="
CREATE SCHEMA tpch;
CREATE TABLE tpch.lineitem ($LINEITEM_COLUMNS);
CREATE TABLE tpch.orders (o_orderkey bigint, o_custkey bigint, o_orderstatus char(1),
  o_totalprice numeric(15,2), o_orderdate date, o_orderpriority char(15), o_clerk char(15),
  o_shippriority integer, o_comment varchar(79));
CREATE TABLE tpch.customer (c_custkey bigint, c_name varchar(25), c_address varchar(40),
  c_nationkey integer, c_phone char(15), c_acctbal numeric(15,2), c_mktsegment char(10),
  c_comment varchar(117));
CREATE TABLE tpch.nation (n_nationkey integer, n_name char(25), n_regionkey integer, n_comment varchar(152));"
TABLES="lineitem orders customer nation"

log "loading TPC-H SF$LABEL into PostgreSQL (not timed)"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$PG_URL" -c "$DDL" >/dev/null
for t in $TABLES; do
    "$PYTHON" -c "import duckdb, sys; duckdb.sql(f\"COPY (SELECT * FROM '{sys.argv[1]}') TO '{sys.argv[2]}' (FORMAT csv, HEADER false)\")" \
        "$DATA/$t.parquet" "$WORK/$t.csv"
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$PG_URL" -c "\\copy tpch.$t FROM '$WORK/$t.csv' CSV" >/dev/null
    rm -f "$WORK/$t.csv"
done
"$PSQL" -X -q -d "$PG_URL" -c "ANALYZE" >/dev/null

log "loading TPC-H SF$LABEL into a Sluice lake (not timed)"
LOAD="$DDL"
for t in $TABLES; do
    LOAD="$LOAD; INSERT INTO tpch.$t SELECT * FROM read_parquet('$DATA/$t.parquet')"
done
"$SLUICE_BIN" sql --lake "$WORK/lake" "$LOAD" >/dev/null

mkdir -p "$WORK/profiles"
cat >"$WORK/profiles/profiles.yml" <<EOF
tpch_bench:
  target: pg
  outputs:
    pg:
      type: postgres
      host: ${PG_HOSTPORT%:*}
      port: ${PG_HOSTPORT##*:}
      user: postgres
      password: ""
      dbname: $DB
      schema: bench
      threads: $THREADS
EOF
cp -r "$ROOT/benchmarks/project/tpch_project" "$WORK/dbt_side"
cp -r "$ROOT/benchmarks/project/tpch_project" "$WORK/sluice_side"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false DO_NOT_TRACK=1 DBT_VERSION_CHECK=false

# Wall seconds of one command (its output kept for a failure).
wall() {
    local out="$1"
    shift
    local t0 t1
    t0="$(now)"
    if ! "$@" >"$out" 2>&1; then
        tail -30 "$out" >&2
        die "failed: $*"
    fi
    t1="$(now)"
    calc 'a - b' "$t1" "$t0"
}

declare -a DBT_T SLUICE_T
for ((r = 1; r <= RUNS; r++)); do
    d="$(wall "$WORK/dbt.log" "$DBT" build --project-dir "$WORK/dbt_side" --profiles-dir "$WORK/profiles" \
        --full-refresh --threads "$THREADS" --no-use-colors)"
    s="$(wall "$WORK/sluice.log" "$SLUICE_BIN" build --lake "$WORK/lake" --project "$WORK/sluice_side" \
        --schema bench --full-refresh --threads "$THREADS")"
    DBT_T+=("$d")
    SLUICE_T+=("$s")
    log "repetition $r: dbt + PostgreSQL $(printf '%.2f' "$d") s, sluice build $(printf '%.2f' "$s") s"
done
MD="$(median "${DBT_T[@]}")"
MS="$(median "${SLUICE_T[@]}")"

log "comparing the marts of both sides"
start_sluice
for m in order_lines customer_revenue daily_revenue ship_modes supplier_stats late_orders; do
    q="SELECT * FROM bench.$m ORDER BY 1, 2, 3"
    # Numbers to 6 places (numeric scales differ: Sluice prints 0.0000 where
    # PostgreSQL prints 0) and char(n) without its padding (PostgreSQL pads
    # on output, Sluice does not yet).
    fmt='{ for (i = 1; i <= NF; i++) { sub(/ +$/, "", $i); if ($i ~ /^-?[0-9]+(\.[0-9]+)?$/) $i = sprintf("%.6f", $i) } print }'
    a="$("$PSQL" -X -q -t -A -F'|' -d "$PG_URL" -c "$q" | awk -F'|' -v OFS='|' "$fmt" | md5sum)"
    b="$("$PSQL" -X -q -t -A -F'|' -d "$URL" -c "$q" | awk -F'|' -v OFS='|' "$fmt" | md5sum)"
    [ "$a" = "$b" ] || die "bench.$m differs between PostgreSQL and Sluice"
done
stop_sluice

echo "project build, TPC-H SF$LABEL, $THREADS threads, median of $RUNS (wall seconds of the whole command):"
printf '  dbt-core + dbt-postgres on PostgreSQL 15  %8.2f s\n' "$MD"
printf '  sluice build                             %8.2f s\n' "$MS"
printf '  ratio dbt / sluice                       %8.2fx  (> 1: Sluice faster)\n' "$(calc 'a / b' "$MD" "$MS")"
