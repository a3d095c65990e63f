#!/usr/bin/env bash
# Point-in-time join: Sluice's ASOF JOIN against DuckDB's ASOF JOIN on the
# same Parquet files, in one run, the two sides interleaved per repetition.
#
#   labels   LABELS rows   (entity_id, ts, label)
#   features FEATURES rows (entity_id, ts, f1, f2) over ENTITIES entities
#
#   SELECT count(*), count(f.f1), sum(f.f2)
#   FROM labels l ASOF LEFT JOIN features f ON l.entity_id = f.entity_id AND l.ts >= f.ts
#
# Also, once per side, the window-function rewrite feature stores commonly
# use instead (labels and features unioned, the last feature value carried
# forward per entity), for scale.
#
# Target (issue "Feature store in SQL"): Sluice <= 1.0x DuckDB's time at
# 1M labels x 10M features over 100k entities; peak memory reported for
# both (Sluice: the server's peak resident set; DuckDB: its process's).
# Timings are reported, never asserted; the answers must agree.
#
#   benchmarks/asof/run.sh                                       # 1M x 10M, 3 repetitions
#   LABELS=10000 FEATURES=100000 ENTITIES=1000 RUNS=1 benchmarks/asof/run.sh   # smoke
#
# Environment: LABELS, FEATURES, ENTITIES, RUNS (default 3), WINDOW (1: also
# the window rewrite; default 1), SLUICE_BIN (default
# $HOME/.cache/sluice-target/release/sluice), SLUICE_BENCH_PYTHON, PSQL.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${SLUICE_BENCH_PYTHON:-$HOME/.cache/sluice-venv/bin/python}"
SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target/release/sluice}"
PSQL="${PSQL:-psql}"
LABELS="${LABELS:-1000000}"
FEATURES="${FEATURES:-10000000}"
ENTITIES="${ENTITIES:-100000}"
RUNS="${RUNS:-3}"
WINDOW="${WINDOW:-1}"

BENCH=asof-bench
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

DATA="$ROOT/benchmarks/data/asof-$LABELS-$FEATURES-$ENTITIES"
if [ ! -s "$DATA/features.parquet" ]; then
    log "generating $LABELS labels and $FEATURES features over $ENTITIES entities"
    mkdir -p "$DATA"
    "$PYTHON" - "$DATA" "$LABELS" "$FEATURES" "$ENTITIES" <<'EOF'
import sys, duckdb
out, labels, features, entities = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
con = duckdb.connect()
con.execute("SELECT setseed(0.42)")
# 90 days in microseconds (no ties: a tie may join either row); features and labels spread over the same span.
con.execute(f"""COPY (SELECT (random() * {entities})::BIGINT AS entity_id,
    TIMESTAMP '2026-01-01' + to_microseconds((random() * 7776000000000)::BIGINT) AS ts,
    random() AS f1, (random() * 1000)::BIGINT AS f2
  FROM range({features})) TO '{out}/features.parquet' (FORMAT parquet)""")
con.execute(f"""COPY (SELECT (random() * {entities})::BIGINT AS entity_id,
    TIMESTAMP '2026-01-01' + to_microseconds((random() * 7776000000000)::BIGINT) AS ts,
    (random() < 0.1)::INT AS label
  FROM range({labels})) TO '{out}/labels.parquet' (FORMAT parquet)""")
EOF
fi
L="$DATA/labels.parquet"
F="$DATA/features.parquet"

ASOF_SLUICE="SELECT count(*), count(f.f1), sum(f.f2) FROM read_parquet('$L') l ASOF LEFT JOIN read_parquet('$F') f ON l.entity_id = f.entity_id AND l.ts >= f.ts"
ASOF_DUCKDB="SELECT count(*), count(f.f1), sum(f.f2) FROM read_parquet('$L') l ASOF LEFT JOIN read_parquet('$F') f ON l.entity_id = f.entity_id AND l.ts >= f.ts"
# The rewrite: one stream of labels and features per entity in time order;
# each label takes the last feature value before it (features first on ties).
# $1 is how the engine spells it: `last_value(f2) IGNORE NULLS` (DataFusion)
# or `last_value(f2 IGNORE NULLS)` (DuckDB).
window_query() {
    cat <<EOF
SELECT count(*), count(f2), sum(f2) FROM (
  SELECT is_label, $1 OVER (PARTITION BY entity_id ORDER BY ts, is_label ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS f2
  FROM (SELECT entity_id, ts, 1 AS is_label, CAST(NULL AS BIGINT) AS f2 FROM read_parquet('$L')
        UNION ALL SELECT entity_id, ts, 0 AS is_label, f2 FROM read_parquet('$F')) u
) w WHERE is_label = 1
EOF
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-asof-bench.XXXXXX")"
start_sluice
timed_sluice() {
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -A -t -d "$URL" -c '\timing on' -c "$1" >"$WORK/sluice.out"
    awk '/^Time: / { printf "%.6f", $2 / 1000 }' "$WORK/sluice.out"
}
answer_sluice() { grep -v '^Time: ' "$WORK/sluice.out" | head -1; }
# DuckDB in its own process: seconds, answer and peak resident set (KiB).
timed_duckdb() {
    "$PYTHON" - "$1" <<'EOF'
import sys, time, resource, duckdb
con = duckdb.connect()
t = time.perf_counter()
row = con.execute(sys.argv[1]).fetchone()
t = time.perf_counter() - t
print("%.6f %s %d" % (t, "|".join(str(v) for v in row), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
EOF
}

log "ASOF LEFT JOIN, $LABELS labels x $FEATURES features, $RUNS repetitions"
S=() D=() DMEM=0
for ((r = 1; r <= RUNS; r++)); do
    read -r dt dans dmem <<<"$(timed_duckdb "$ASOF_DUCKDB")"
    st="$(timed_sluice "$ASOF_SLUICE")"
    sans="$(answer_sluice)"
    [ "$sans" = "$dans" ] || die "answers differ: sluice $sans, duckdb $dans"
    S+=("$st") D+=("$dt")
    [ "$dmem" -gt "$DMEM" ] && DMEM="$dmem"
    log "  repetition $r: sluice ${st}s, duckdb ${dt}s ($sans)"
done
SMEM="$(awk '/^VmHWM/ { print $2 }' "/proc/$SLUICE_PID/status")"
SM="$(median "${S[@]}")" DM="$(median "${D[@]}")"
echo "asof_join labels=$LABELS features=$FEATURES entities=$ENTITIES sluice_s=$SM duckdb_s=$DM ratio=$(calc 'a / b' "$SM" "$DM") sluice_peak_mib=$((SMEM / 1024)) duckdb_peak_mib=$((DMEM / 1024))"

if [ "$WINDOW" = 1 ]; then
    read -r dt dans _ <<<"$(timed_duckdb "$(window_query 'last_value(f2 IGNORE NULLS)')")"
    st="$(timed_sluice "$(window_query 'last_value(f2) IGNORE NULLS')")"
    echo "window_rewrite sluice_s=$st duckdb_s=$dt sluice_answer=$(answer_sluice) duckdb_answer=$dans"
fi
