#!/usr/bin/env python3
"""Generate the eight TPC-H tables as Parquet files with DuckDB's tpch
extension, offline (the extension is loaded from the `duckdb_ext` package,
never downloaded).

    python gen.py --sf 1            # -> benchmarks/data/sf1/<table>.parquet
    python gen.py --sf 0.01 --out /some/dir

Idempotent: a scale factor whose eight files already exist is skipped.
"""
import argparse
import importlib.util
import os
import sys
import tempfile

import duckdb

TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
HERE = os.path.dirname(os.path.abspath(__file__))
DATA_ROOT = os.path.join(os.path.dirname(HERE), "data")


def sf_label(sf: float) -> str:
    """1 -> "1", 0.01 -> "0.01", 10.0 -> "10"."""
    return ("%g" % sf)


def extension_path(name: str) -> str:
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("gen.py: the duckdb_ext package is not installed (pip install duckdb-ext-tpch)")
    version = duckdb.__version__
    for root in spec.submodule_search_locations:
        ext_dir = os.path.join(root, "extensions", "v" + version)
        if not os.path.isdir(ext_dir):
            continue
        for platform in sorted(os.listdir(ext_dir)):
            path = os.path.join(ext_dir, platform, name + ".duckdb_extension")
            if os.path.isfile(path):
                return path
    sys.exit(f"gen.py: no {name}.duckdb_extension for DuckDB v{version} under {spec.submodule_search_locations}")


def complete(out_dir: str) -> bool:
    return all(os.path.isfile(os.path.join(out_dir, t + ".parquet")) for t in TABLES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sf", type=float, default=1.0, help="scale factor (default 1)")
    ap.add_argument("--out", help="output folder (default benchmarks/data/sf<SF>)")
    args = ap.parse_args()

    out_dir = args.out or os.path.join(DATA_ROOT, "sf" + sf_label(args.sf))
    if complete(out_dir):
        print(f"gen.py: {out_dir} already has the TPC-H SF {sf_label(args.sf)} tables; skipping")
        return
    os.makedirs(out_dir, exist_ok=True)

    con = duckdb.connect()
    ext = extension_path("tpch")
    con.execute(f"LOAD '{ext}'")
    con.execute(f"CALL dbgen(sf={args.sf})")
    for t in TABLES:
        final = os.path.join(out_dir, t + ".parquet")
        # Write next to the target and rename, so an interrupted run never
        # leaves a truncated file that a later run would take as complete.
        fd, tmp = tempfile.mkstemp(prefix=f".{t}.", suffix=".parquet", dir=out_dir)
        os.close(fd)
        os.unlink(tmp)
        con.execute(f"COPY {t} TO '{tmp}' (FORMAT parquet)")
        os.replace(tmp, final)
        n = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        print(f"gen.py: {t:<9} {n:>10} rows -> {final}")


if __name__ == "__main__":
    main()
