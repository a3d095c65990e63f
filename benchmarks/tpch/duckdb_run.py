#!/usr/bin/env python3
"""Run the 22 TPC-H queries on DuckDB over views on the Parquet files that
gen.py wrote, and print the best time of N repetitions per query as JSON on
stdout: {"q1": seconds, ..., "q22": seconds}. A query that fails gets null
(the error goes to stderr).

    python duckdb_run.py --data benchmarks/data/sf1 --reps 3

With --serve it reads one query number per line on stdin, runs that query
once and answers one JSON line: {"seconds": s, "rows": n} or {"error": msg}.
The tpch driver uses it to run DuckDB in turn with the other engines.
"""
import argparse
import json
import os
import sys
import time

import duckdb

TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder with <table>.parquet")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per query; the best is kept")
    ap.add_argument("--queries", default=os.path.join(HERE, "queries"), help="folder with q01.sql .. q22.sql")
    ap.add_argument("--only", help="comma-separated query numbers, e.g. 1,6,22")
    ap.add_argument("--serve", action="store_true", help="answer query numbers read from stdin")
    args = ap.parse_args()

    con = duckdb.connect()
    for t in TABLES:
        path = os.path.abspath(os.path.join(args.data, t + ".parquet"))
        if not os.path.isfile(path):
            sys.exit(f"duckdb_run.py: missing {path} (run gen.py first)")
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{path}')")

    if args.serve:
        serve(con, args.queries)
        return

    numbers = [int(n) for n in args.only.split(",")] if args.only else list(range(1, 23))
    result = {}
    for n in numbers:
        with open(os.path.join(args.queries, f"q{n:02}.sql")) as f:
            sql = f.read()
        best = None
        try:
            for _ in range(max(1, args.reps)):
                start = time.perf_counter()
                rows = con.execute(sql).fetchall()
                elapsed = time.perf_counter() - start
                best = elapsed if best is None else min(best, elapsed)
            print(f"duckdb q{n}: {best:.4f}s, {len(rows)} rows", file=sys.stderr)
        except duckdb.Error as e:
            print(f"duckdb q{n}: failed: {e}", file=sys.stderr)
            best = None
        result[f"q{n}"] = best
    json.dump(result, sys.stdout)
    print()


def serve(con, queries: str) -> None:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            with open(os.path.join(queries, f"q{int(line):02}.sql")) as f:
                sql = f.read()
            start = time.perf_counter()
            rows = con.execute(sql).fetchall()
            reply = {"seconds": time.perf_counter() - start, "rows": len(rows)}
        except (duckdb.Error, OSError, ValueError) as e:
            reply = {"error": str(e)}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
