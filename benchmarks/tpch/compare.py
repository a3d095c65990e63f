#!/usr/bin/env python3
"""Compare the answers of the 22 TPC-H queries: a running Sluice server
(its `tpch` schema, as the tpch driver loads it) against DuckDB over the
Parquet files. Numbers are compared to the cent, text without trailing
blanks (char(n)); rows in any order when the values match exactly, else in
order with a tolerance of 0.02 for floating point sums. Exits 1 when a query
differs.

    python compare.py --url "host=127.0.0.1 port=5433 user=sluice dbname=sluice" \\
        --data benchmarks/data/sf1
"""
import argparse
import decimal
import os
import sys

import duckdb
import psycopg

TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
HERE = os.path.dirname(os.path.abspath(__file__))


def norm(v):
    if isinstance(v, (float, decimal.Decimal)):
        return round(float(v), 2)
    if isinstance(v, str):
        return v.rstrip()
    return v


def close(a, b) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, float) and isinstance(y, float):
                if abs(x - y) > 0.02 + 1e-9 * abs(y):
                    return False
            elif x != y:
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="libpq connection string of the Sluice server")
    ap.add_argument("--data", required=True, help="folder with <table>.parquet")
    ap.add_argument("--queries", default=os.path.join(HERE, "queries"))
    args = ap.parse_args()

    sluice = psycopg.connect(args.url, autocommit=True)
    sluice.execute("SET search_path = tpch")
    duck = duckdb.connect()
    for t in TABLES:
        path = os.path.abspath(os.path.join(args.data, t + ".parquet"))
        duck.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{path}')")

    different = []
    for n in range(1, 23):
        with open(os.path.join(args.queries, f"q{n:02}.sql")) as f:
            sql = f.read()
        a = [tuple(norm(x) for x in r) for r in sluice.execute(sql).fetchall()]
        b = [tuple(norm(x) for x in r) for r in duck.execute(sql).fetchall()]
        same = sorted(map(repr, a)) == sorted(map(repr, b)) or close(a, b)
        print(f"q{n}: {'same' if same else 'DIFFERENT'} ({len(a)} rows from Sluice, {len(b)} from DuckDB)")
        if not same:
            different.append(n)
            print(f"  sluice: {a[:3]}\n  duckdb: {b[:3]}")
    if different:
        sys.exit(f"different answers: {', '.join(f'q{n}' for n in different)}")


if __name__ == "__main__":
    main()
