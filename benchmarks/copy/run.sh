#!/usr/bin/env bash
# COPY benchmark: TPC-H lineitem as CSV loaded with COPY FROM STDIN and read
# back with COPY TO STDOUT, through psql, into PostgreSQL 15 and into Sluice
# in the same run. Prints rows/s per side, the ratio Sluice ÷ PostgreSQL and
# Sluice's peak resident memory during the load.
#
# Each repetition runs both sides, one after the other, in alternating
# order, so a slow spell of the machine falls on both alike; the report
# shows the median of the repetitions per side.
#
#   benchmarks/copy/run.sh                  # SF 1, both sides
#   SF=0.01 benchmarks/copy/run.sh          # the smoke size
#   SIDES=postgres benchmarks/copy/run.sh   # one side only
#
# Exits non-zero when a statement fails or a row count differs from the CSV's
# line count. Timings are reported, never asserted.
#
# Environment:
#   SF                   scale factor (default 1)
#   SIDES                which sides to run (default "postgres sluice")
#   REPS                 repetitions, medians reported (default 5)
#   SLUICE_BIN           the server binary (default
#                        $HOME/.cache/sluice-target/release/sluice)
#   SLUICE_BENCH_PYTHON  interpreter with duckdb and duckdb-ext-tpch (default
#                        $HOME/.cache/sluice-venv/bin/python, which
#                        scripts/setup-test-env.sh creates)
#   PSQL                 the psql client (default: psql)
#   SLUICE_PG_*          passed to scripts/pg-test-server.sh (port, folder)
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${SLUICE_BENCH_PYTHON:-$HOME/.cache/sluice-venv/bin/python}"
SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target/release/sluice}"
PSQL="${PSQL:-psql}"
SF="${SF:-1}"
SIDES="${SIDES:-postgres sluice}"
REPS="${REPS:-5}"
PG_SERVER="$ROOT/scripts/pg-test-server.sh"

# The same DDL on both sides.
# shellcheck source=benchmarks/lineitem.sh
. "$ROOT/benchmarks/lineitem.sh"
DDL="CREATE TABLE lineitem ($LINEITEM_COLUMNS
)"
COPY_FROM="COPY lineitem FROM STDIN WITH (FORMAT csv)"
COPY_TO="COPY (SELECT * FROM lineitem) TO STDOUT WITH (FORMAT csv)"

# Targets for Sluice ÷ PostgreSQL in rows/s, and for Sluice's peak RSS.
TARGET_FROM=2.0
TARGET_TO=1.0
TARGET_RSS_MIB=1024

log() { echo "copy-bench: $*" >&2; }
die() {
    log "$*"
    exit 1
}

now() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        echo "$EPOCHREALTIME"
    else
        date +%s.%N
    fi
}

# awk arithmetic: calc 'EXPR' with a and b bound.
calc() { awk -v a="$2" -v b="${3:-0}" "BEGIN { printf \"%s\", $1 }"; }

# ---------------------------------------------------------------- state --

SLUICE_PID=""
WORK=""
PG_TOUCHED=""
PG_URL=""
declare -A SECS=() ROWS=() RSS=() TIMES=()

stop_sluice() {
    [ -n "$SLUICE_PID" ] || return 0
    if kill -0 "$SLUICE_PID" 2>/dev/null; then
        kill -TERM "$SLUICE_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 300; i++)); do
            kill -0 "$SLUICE_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SLUICE_PID" 2>/dev/null; then
            log "sluice did not stop within 30 s; killing it"
            kill -KILL "$SLUICE_PID" 2>/dev/null || true
        fi
    fi
    wait "$SLUICE_PID" 2>/dev/null || true
    SLUICE_PID=""
}

cleanup() {
    stop_sluice
    # The PostgreSQL test server stays up (other tests use it); the table goes.
    if [ -n "$PG_TOUCHED" ]; then
        "$PSQL" -X -q -d "$PG_URL" -c "DROP TABLE IF EXISTS lineitem" >/dev/null 2>&1 || true
    fi
    if [ -n "$WORK" ]; then
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ----------------------------------------------------------------- data --

prepare_data() {
    if ! "$PYTHON" -c 'import duckdb' 2>/dev/null; then
        die "$PYTHON has no duckdb; run scripts/setup-test-env.sh first"
    fi
    "$PYTHON" "$ROOT/benchmarks/tpch/gen.py" --sf "$SF" >&2
    "$PYTHON" "$ROOT/benchmarks/copy/make_csv.py" --sf "$SF"
    local label
    label="$("$PYTHON" -c "import sys; print('%g' % float(sys.argv[1]))" "$SF")"
    CSV="$ROOT/benchmarks/data/sf$label/lineitem.csv"
    [ -s "$CSV" ] || die "$CSV is missing or empty"
    # No field of lineitem holds a line break, so lines are rows.
    CSV_ROWS="$(wc -l <"$CSV")"
    CSV_ROWS="${CSV_ROWS//[[:space:]]/}"
    CSV_MIB="$(calc 'a / 1048576' "$(stat -c %s "$CSV")")"
    log "$CSV: $CSV_ROWS rows, $(printf '%.1f' "$CSV_MIB") MiB"
}

# -------------------------------------------------------------- servers --

start_postgres() {
    "$PG_SERVER" start
    PG_URL="$("$PG_SERVER" url)"
}

start_sluice() {
    [ -x "$SLUICE_BIN" ] || die "no sluice binary at $SLUICE_BIN (cargo build --release, or set SLUICE_BIN)"
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-copy-bench.XXXXXX")"
    "$SLUICE_BIN" serve --lake "$WORK/lake" --listen 127.0.0.1:0 >"$WORK/stdout.log" 2>"$WORK/stderr.log" &
    SLUICE_PID=$!
    local i line=""
    for ((i = 0; i < 600; i++)); do
        line="$(grep -m1 '^listening on ' "$WORK/stdout.log" 2>/dev/null || true)"
        [ -n "$line" ] && break
        if ! kill -0 "$SLUICE_PID" 2>/dev/null; then
            cat "$WORK/stderr.log" >&2 || true
            die "sluice exited before listening"
        fi
        sleep 0.1
    done
    [ -n "$line" ] || die "sluice did not print 'listening on' within 60 s"
    local port="${line##*:}"
    SLUICE_URL="postgresql://sluice@127.0.0.1:$port/sluice"
    log "sluice (pid $SLUICE_PID) listening on 127.0.0.1:$port, lake $WORK/lake"
}

# Peak resident set size of the Sluice process so far, in MiB.
sluice_peak_rss_mib() {
    local kb
    kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$SLUICE_PID/status" 2>/dev/null || true)"
    [ -n "$kb" ] || return 1
    calc 'a / 1024' "$kb"
}

# ------------------------------------------------------------ one side --

# run_side NAME URL: drop and create lineitem, time the load and the read
# back, check the row counts, drop the table. Sets SECS/ROWS/RSS[NAME.*].
# Returns non-zero (after saying why) on the first failure.
run_side() {
    local name="$1" url="$2"
    local psql=("$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$url")
    local t0 t1 out n

    log "$name: creating lineitem"
    "${psql[@]}" -c "DROP TABLE IF EXISTS lineitem" >/dev/null || {
        log "$name: DROP TABLE failed"
        return 1
    }
    "${psql[@]}" -c "$DDL" >/dev/null || {
        log "$name: CREATE TABLE failed"
        return 1
    }

    # Load: psql streams the file from its stdin. Not quiet, so that psql
    # prints the COPY tag.
    log "$name: $COPY_FROM < $(basename "$CSV")"
    t0="$(now)"
    out="$("$PSQL" -X -v ON_ERROR_STOP=1 -d "$url" -c "$COPY_FROM" <"$CSV")" || {
        log "$name: COPY FROM STDIN failed"
        return 1
    }
    t1="$(now)"
    SECS[$name.from]="$(calc 'a - b' "$t1" "$t0")"
    if [ "$name" = sluice ]; then
        RSS[$name.load]="$(sluice_peak_rss_mib)" || RSS[$name.load]=""
    fi
    n="$(sed -n 's/^COPY \([0-9][0-9]*\)$/\1/p' <<<"$out")"
    [ "$n" = "$CSV_ROWS" ] || log "$name: warning: COPY FROM reported '${out}', the CSV has $CSV_ROWS rows"

    n="$("${psql[@]}" -t -A -c "SELECT count(*) FROM lineitem")" || {
        log "$name: SELECT count(*) failed"
        return 1
    }
    if [ "$n" != "$CSV_ROWS" ]; then
        log "$name: lineitem has $n rows after the load, the CSV has $CSV_ROWS"
        return 1
    fi
    ROWS[$name.from]="$n"
    log "$name: loaded $n rows in $(printf '%.3f' "${SECS[$name.from]}") s"

    # Read back: the rows go to /dev/null (\g), psql prints the COPY tag.
    log "$name: $COPY_TO > /dev/null"
    t0="$(now)"
    out="$("$PSQL" -X -v ON_ERROR_STOP=1 -d "$url" <<<"$COPY_TO \\g /dev/null")" || {
        log "$name: COPY TO STDOUT failed"
        return 1
    }
    t1="$(now)"
    SECS[$name.to]="$(calc 'a - b' "$t1" "$t0")"
    if [ "$name" = sluice ]; then
        RSS[$name.all]="$(sluice_peak_rss_mib)" || RSS[$name.all]=""
    fi
    n="$(sed -n 's/^COPY \([0-9][0-9]*\)$/\1/p' <<<"$out")"
    if [ "$n" != "$CSV_ROWS" ]; then
        log "$name: COPY TO reported '${out}', expected COPY $CSV_ROWS"
        return 1
    fi
    ROWS[$name.to]="$n"
    log "$name: read back $n rows in $(printf '%.3f' "${SECS[$name.to]}") s"

    "${psql[@]}" -c "DROP TABLE lineitem" >/dev/null || {
        log "$name: DROP TABLE failed"
        return 1
    }
}

# --------------------------------------------------------------- report --

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

fmt_secs() { if [ -n "${1:-}" ]; then printf '%.3f' "$1"; else printf -- '-'; fi; }
fmt_rate() { if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then printf '%.0f' "$(calc 'a / b' "$1" "$2")"; else printf -- '-'; fi; }

# ratio STMT: Sluice rows/s ÷ PostgreSQL rows/s, empty when a side is missing.
ratio() {
    local s="${SECS[sluice.$1]:-}" p="${SECS[postgres.$1]:-}"
    if [ -z "${ROWS[sluice.$1]:-}" ] || [ -z "${ROWS[postgres.$1]:-}" ]; then
        return 0
    fi
    # Same row count on both sides: the ratio of rates is the inverse ratio of times.
    calc '(a > 0) ? b / a : 0' "$s" "$p"
}

verdict() { # verdict VALUE OP TARGET
    [ -n "$1" ] || {
        printf -- '-'
        return
    }
    if awk -v v="$1" -v t="$3" "BEGIN { exit !(v $2 t) }"; then printf 'met'; else printf 'not met'; fi
}

report() {
    local side stmt label
    echo
    echo "COPY benchmark: TPC-H lineitem SF $SF, $CSV_ROWS rows, $(printf '%.1f' "$CSV_MIB") MiB of CSV, median of $REPS interleaved repetitions"
    echo
    echo "| side | statement | rows | seconds | rows/s |"
    echo "|---|---|---:|---:|---:|"
    for side in $SIDES; do
        for stmt in from to; do
            if [ "$stmt" = from ]; then label="COPY FROM STDIN"; else label="COPY TO STDOUT"; fi
            printf '| %s | %s | %s | %s | %s |\n' "$side" "$label" "${ROWS[$side.$stmt]:--}" \
                "$(fmt_secs "${SECS[$side.$stmt]:-}")" \
                "$(fmt_rate "${ROWS[$side.$stmt]:-}" "${SECS[$side.$stmt]:-}")"
        done
    done

    local r_from r_to rss rss_all from_ok
    r_from="$(ratio from)"
    r_to="$(ratio to)"
    rss="${RSS[sluice.load]:-}"
    rss_all="${RSS[sluice.all]:-}"
    from_ok="$(verdict "$r_from" '>=' "$TARGET_FROM")"
    if [ "$from_ok" = met ] && [ "$(verdict "$rss" '<' "$TARGET_RSS_MIB")" != met ]; then
        from_ok="not met"
    fi
    echo
    echo "| Sluice ÷ PostgreSQL | measured | target | |"
    echo "|---|---:|---|---|"
    printf '| COPY FROM STDIN (rows/s) | %s | ≥ %s× with peak RSS < %s MiB | %s |\n' \
        "$([ -n "$r_from" ] && printf '%.2f×' "$r_from" || printf -- '-')" "$TARGET_FROM" "$TARGET_RSS_MIB" "$from_ok"
    printf '| Sluice peak RSS during the load (VmHWM) | %s | < %s MiB | %s |\n' \
        "$([ -n "$rss" ] && printf '%.0f MiB' "$rss" || printf -- '-')" "$TARGET_RSS_MIB" \
        "$(verdict "$rss" '<' "$TARGET_RSS_MIB")"
    printf '| COPY TO STDOUT (rows/s) | %s | ≥ %s× | %s |\n' \
        "$([ -n "$r_to" ] && printf '%.2f×' "$r_to" || printf -- '-')" "$TARGET_TO" \
        "$(verdict "$r_to" '>=' "$TARGET_TO")"
    if [ -n "$rss_all" ]; then
        echo
        echo "Sluice peak RSS through COPY TO as well: $(printf '%.0f' "$rss_all") MiB"
    fi
}

# ----------------------------------------------------------------- main --

main() {
    local side status=0
    for side in $SIDES; do
        case "$side" in
        postgres | sluice) ;;
        *) die "unknown side '$side' in SIDES (postgres, sluice)" ;;
        esac
    done
    command -v "$PSQL" >/dev/null || die "no $PSQL on PATH (apt-get install postgresql-client-15)"

    prepare_data
    local rep order stmt
    for side in $SIDES; do
        case "$side" in
        postgres)
            start_postgres
            PG_TOUCHED=1
            ;;
        sluice) start_sluice ;;
        esac
    done
    for ((rep = 1; rep <= REPS; rep++)); do
        # Alternate which side goes first.
        order="$SIDES"
        if ((rep % 2 == 0)); then order="$(tr ' ' '\n' <<<"$SIDES" | tac | tr '\n' ' ')"; fi
        for side in $order; do
            local url="$PG_URL"
            [ "$side" = sluice ] && url="$SLUICE_URL"
            log "repetition $rep of $REPS: $side"
            if ! run_side "$side" "$url"; then
                status=1
                if [ "$side" = sluice ]; then
                    log "last lines of the sluice server's stderr:"
                    tail -n 20 "$WORK/stderr.log" >&2 || true
                fi
                break 2
            fi
            for stmt in from to; do
                TIMES[$side.$stmt]+="${SECS[$side.$stmt]} "
            done
        done
    done
    stop_sluice
    for key in "${!TIMES[@]}"; do
        SECS[$key]="$(median <<<"${TIMES[$key]}")"
    done
    report
    if [ "$status" -ne 0 ]; then
        log "FAILED (see the messages above)"
    fi
    return "$status"
}

main "$@"
