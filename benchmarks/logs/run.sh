#!/usr/bin/env bash
# Loading web-server access logs (combined format) into a table, three ways
# on the same file, the sides interleaved per repetition:
#
#   sluice  CREATE TABLE hits AS SELECT * FROM read_log('access.log', format => 'combined')
#           (a Delta table: typed columns, time in UTC, `-` as NULL)
#   duckdb  COPY (SELECT <the same columns> FROM read_csv('access.log', delim = ' ',
#           quote = '"', escape = '\')) TO 'hits.parquet'   (the regex-free equivalent)
#   python  a compiled `re` over every line, fields converted, nothing written
#
# Each side runs in a process of its own (Sluice: a fresh server on a fresh
# lake), so the peak resident memory reported is that side's alone (VmHWM of
# the server; ru_maxrss of the DuckDB and Python processes). Reported: median
# seconds, rows per second, peak RSS, and the ratio Sluice / DuckDB. The three
# must agree on the rows, the sum of statuses and the sum of sizes. Timings
# are reported, never asserted.
#
#   benchmarks/logs/run.sh                    # 1 GiB of log, 3 repetitions
#   MB=16 RUNS=1 benchmarks/logs/run.sh       # smoke (in scripts/test.sh)
#
# Environment: MB (default 1024), RUNS (default 3), SLUICE_BIN (default
# $HOME/.cache/sluice-target/release/sluice), SLUICE_BENCH_PYTHON, PSQL.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${SLUICE_BENCH_PYTHON:-$HOME/.cache/sluice-venv/bin/python}"
SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target/release/sluice}"
PSQL="${PSQL:-psql}"
MB="${MB:-1024}"
RUNS="${RUNS:-3}"

BENCH=logs-bench
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

DATA="$ROOT/benchmarks/data/logs-${MB}mb"
LOG="$DATA/access.log"
if [ ! -s "$LOG" ]; then
    log "generating $MB MiB of combined-format access log"
    mkdir -p "$DATA"
    "$PYTHON" - "$LOG.tmp" "$MB" <<'PY'
import random, sys
out, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
paths = ["/", "/index.html", "/api/v1/orders", "/api/v1/orders/%d", "/static/app.%d.js",
         "/img/p%d.png", "/search?q=item+%d&page=2", "/login", "/cart/add/%d"]
agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
          "curl/8.4.0", "python-requests/2.31.0", "Googlebot/2.1 (+http://www.google.com/bot.html)"]
referers = ["-", "https://www.example.com/", "https://shop.example.com/cart", "https://t.co/x1y2z3"]
methods = ["GET"] * 8 + ["POST", "PUT", "DELETE", "HEAD"]
statuses = [200] * 16 + [301, 302, 304, 400, 401, 403, 404, 404, 500, 503]
months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
limit = mb << 20
written = 0
with open(out, "w") as f:
    buf = []
    while written < limit:
        p = rnd.choice(paths)
        if "%d" in p:
            p = p % rnd.randrange(100000)
        status = rnd.choice(statuses)
        size = "-" if status in (304, 301) or rnd.random() < 0.02 else str(rnd.randrange(20, 200000))
        user = "-" if rnd.random() < 0.9 else "user%d" % rnd.randrange(1000)
        line = '%d.%d.%d.%d - %s [%02d/%s/2026:%02d:%02d:%02d %s] "%s %s HTTP/1.1" %d %s "%s" "%s"\n' % (
            rnd.randrange(1, 224), rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255), user,
            rnd.randrange(1, 29), rnd.choice(months), rnd.randrange(24), rnd.randrange(60), rnd.randrange(60),
            rnd.choice(["+0000", "+0100", "-0700"]), rnd.choice(methods), p, status, size,
            rnd.choice(referers), rnd.choice(agents))
        buf.append(line)
        written += len(line)
        if len(buf) >= 10000:
            f.write("".join(buf))
            buf = []
    f.write("".join(buf))
PY
    mv "$LOG.tmp" "$LOG"
fi
SIZE_MB="$(calc 'sprintf("%.0f", a / 1048576)' "$(stat -c %s "$LOG")")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-logs-bench.XXXXXX")"

# Sluice: a fresh server and lake; prints "seconds peak_rss_kb answer".
run_sluice() {
    rm -rf "$WORK/lake"
    start_sluice
    local sql="CREATE TABLE hits AS SELECT * FROM read_log('$LOG', format => 'combined')"
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -A -t -d "$URL" -c '\timing on' -c "$sql" >"$WORK/sluice.out"
    local secs rss answer
    secs="$(awk '/^Time: / { printf "%.6f", $2 / 1000 }' "$WORK/sluice.out")"
    rss="$(awk '/^VmHWM:/ { print $2 }' "/proc/$SLUICE_PID/status")"
    answer="$("$PSQL" -X -q -v ON_ERROR_STOP=1 -A -t -d "$URL" \
        -c "SELECT count(*) || '|' || sum(status) || '|' || coalesce(sum(bytes), 0) || '|' || count(*) FILTER (WHERE _error IS NOT NULL) FROM hits")"
    stop_sluice
    echo "$secs $rss $answer"
}

# DuckDB in its own process: read_csv split on spaces and quotes, the same
# columns and types, written to one Parquet file.
run_duckdb() {
    "$PYTHON" - "$LOG" "$WORK/hits.parquet" <<'PY'
import resource, sys, time, duckdb
log, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
cols = ", ".join("'c%d': 'VARCHAR'" % i for i in range(10))
t = time.perf_counter()
con.execute(f"""COPY (SELECT c0 AS remote_addr, nullif(c1, '-') AS ident, nullif(c2, '-') AS remote_user,
      strptime(c3 || ' ' || c4, '[%d/%b/%Y:%H:%M:%S %z]') AS time,
      split_part(c5, ' ', 1) AS method, split_part(c5, ' ', 2) AS path, split_part(c5, ' ', 3) AS protocol,
      CAST(c6 AS INTEGER) AS status, CAST(nullif(c7, '-') AS BIGINT) AS bytes,
      nullif(c8, '-') AS referer, nullif(c9, '-') AS user_agent
    FROM read_csv('{log}', delim = ' ', quote = '"', escape = '\\', header = false,
                  columns = {{{cols}}}, auto_detect = false))
  TO '{out}' (FORMAT parquet)""")
t = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n, s, b = con.execute(f"SELECT count(*), sum(status), coalesce(sum(bytes), 0) FROM '{out}'").fetchone()
print("%.6f %d %d|%d|%d|0" % (t, rss, n, s, b))
PY
    rm -f "$WORK/hits.parquet"
}

# Python: one compiled regular expression per line, fields converted.
run_python() {
    "$PYTHON" - "$LOG" <<'PY'
import re, resource, sys, time
from datetime import datetime
pat = re.compile(r'(\S+) (\S+) (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\S+) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"')
t = time.perf_counter()
n = s = b = bad = 0
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        m = pat.match(line)
        if m is None:
            bad += 1
            continue
        datetime.strptime(m.group(4), "%d/%b/%Y:%H:%M:%S %z")
        n += 1
        s += int(m.group(8))
        if m.group(9) != "-":
            b += int(m.group(9))
t = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("%.6f %d %d|%d|%d|%d" % (t, rss, n + bad, s, b, bad))
PY
}

log "loading $SIZE_MB MiB of access log, $RUNS repetitions"
S=() D=() P=() SR=() DR=() PR=()
for ((r = 1; r <= RUNS; r++)); do
    read -r st srss sans <<<"$(run_sluice)"
    read -r dt drss dans <<<"$(run_duckdb)"
    read -r pt prss pans <<<"$(run_python)"
    [ "$sans" = "$dans" ] || die "answers differ: sluice $sans, duckdb $dans"
    [ "$sans" = "$pans" ] || die "answers differ: sluice $sans, python $pans"
    S+=("$st") D+=("$dt") P+=("$pt") SR+=("$srss") DR+=("$drss") PR+=("$prss")
    log "  repetition $r: sluice ${st}s ${srss} kB, duckdb ${dt}s ${drss} kB, python ${pt}s ${prss} kB"
done
ROWS="${sans%%|*}"
SM="$(median "${S[@]}")" DM="$(median "${D[@]}")" PM="$(median "${P[@]}")"
mb() { calc 'sprintf("%.0f", a / 1024)' "$(median "$@")"; }
echo "logs_load mib=$SIZE_MB rows=$ROWS" \
    "sluice_s=$SM duckdb_s=$DM python_s=$PM" \
    "sluice_rows_per_s=$(calc 'int(a / b)' "$ROWS" "$SM")" \
    "duckdb_rows_per_s=$(calc 'int(a / b)' "$ROWS" "$DM")" \
    "python_rows_per_s=$(calc 'int(a / b)' "$ROWS" "$PM")" \
    "ratio_sluice_duckdb=$(calc 'sprintf("%.2f", a / b)' "$SM" "$DM")" \
    "sluice_peak_rss_mib=$(mb "${SR[@]}")" "duckdb_peak_rss_mib=$(mb "${DR[@]}")" \
    "python_peak_rss_mib=$(mb "${PR[@]}")"
