#!/usr/bin/env python3
"""Write TPC-H lineitem as a CSV file for the COPY benchmark, from the Parquet
that `benchmarks/tpch/gen.py` produced, with DuckDB.

    python make_csv.py --sf 1        # benchmarks/data/sf1/lineitem.parquet -> lineitem.csv

The file is what `COPY lineitem FROM STDIN WITH (FORMAT csv)` reads in
PostgreSQL: no header, `,` between fields, `"` quotes doubled inside quoted
fields, NULL as an empty unquoted field, dates as YYYY-MM-DD and decimals with
their two fraction digits (17.00). Columns come in the order of the table that
`run.sh` creates; the Parquet schema is checked against it first.

Idempotent: an existing CSV is kept. The file is written next to the target
and renamed, so an interrupted run never leaves a truncated CSV behind.
"""
import argparse
import glob
import os
import sys
import tempfile

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_ROOT = os.path.join(os.path.dirname(HERE), "data")

# The columns of the table in run.sh, in order, with the DuckDB types the
# Parquet may carry for them. DuckDB's dbgen writes l_linenumber as BIGINT
# (values 1..7), which the integer column takes as is.
COLUMNS = [
    ("l_orderkey", {"BIGINT", "INTEGER"}),
    ("l_partkey", {"BIGINT", "INTEGER"}),
    ("l_suppkey", {"BIGINT", "INTEGER"}),
    ("l_linenumber", {"BIGINT", "INTEGER"}),
    ("l_quantity", {"DECIMAL(15,2)"}),
    ("l_extendedprice", {"DECIMAL(15,2)"}),
    ("l_discount", {"DECIMAL(15,2)"}),
    ("l_tax", {"DECIMAL(15,2)"}),
    ("l_returnflag", {"VARCHAR"}),
    ("l_linestatus", {"VARCHAR"}),
    ("l_shipdate", {"DATE"}),
    ("l_commitdate", {"DATE"}),
    ("l_receiptdate", {"DATE"}),
    ("l_shipinstruct", {"VARCHAR"}),
    ("l_shipmode", {"VARCHAR"}),
    ("l_comment", {"VARCHAR"}),
]


def sf_label(sf: float) -> str:
    """1 -> "1", 0.01 -> "0.01" (the same folder names as gen.py)."""
    return "%g" % sf


def parquet_source(data_dir: str) -> str:
    """lineitem.parquet as a file, or as a folder of Parquet files."""
    path = os.path.join(data_dir, "lineitem.parquet")
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
        if files:
            return os.path.join(path, "**", "*.parquet")
    sys.exit(f"make_csv.py: no {path}; run benchmarks/tpch/gen.py first")


def sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def check_schema(con, source: str) -> None:
    rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_string(source)})").fetchall()
    got = [(r[0], r[1]) for r in rows]
    want = [c for c, _ in COLUMNS]
    if [c for c, _ in got] != want:
        sys.exit(f"make_csv.py: {source} has columns {[c for c, _ in got]}, expected {want}")
    for (name, typ), (_, allowed) in zip(got, COLUMNS):
        if typ not in allowed:
            sys.exit(f"make_csv.py: {source}: {name} is {typ}, expected one of {sorted(allowed)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sf", type=float, default=1.0, help="scale factor (default 1)")
    ap.add_argument("--data", help="folder with lineitem.parquet (default benchmarks/data/sf<SF>)")
    args = ap.parse_args()

    data_dir = args.data or os.path.join(DATA_ROOT, "sf" + sf_label(args.sf))
    final = os.path.join(data_dir, "lineitem.csv")
    if os.path.isfile(final):
        print(f"make_csv.py: {final} exists; skipping", file=sys.stderr)
        return
    source = parquet_source(data_dir)

    con = duckdb.connect()
    check_schema(con, source)
    fd, tmp = tempfile.mkstemp(prefix=".lineitem.", suffix=".csv", dir=data_dir)
    os.close(fd)
    try:
        select = ", ".join(c for c, _ in COLUMNS)
        con.execute(
            f"COPY (SELECT {select} FROM read_parquet({sql_string(source)})) TO {sql_string(tmp)} "
            "(FORMAT csv, HEADER false, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NULLSTR '', "
            "DATEFORMAT '%Y-%m-%d')"
        )
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    size = os.path.getsize(final)
    print(f"make_csv.py: {source} -> {final} ({size / 2**20:.1f} MiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
