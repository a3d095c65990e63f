"""Reading a whole table into a Polars DataFrame from Sluice and from
PostgreSQL 15, with both of Polars' database engines, the sides interleaved
per repetition. Called by benchmarks/dataframes/run.sh, which starts the
servers; see there for the environment.

    frames.py --rows N --reps R --csv FILE --pg URL --sluice URL

Loads FILE (ROWS lines of CSV) into a table `frames` on both servers with
psql's COPY FROM STDIN, then for each engine and repetition reads
`SELECT * FROM frames` with pl.read_database_uri on each side in turn (the
order alternates) and prints a Markdown report with the median seconds,
rows/s and PostgreSQL's time divided by Sluice's (above 1: Sluice faster).
The same table sent by binary COPY to /dev/null through psql shows the
servers' side of it alone.

Exits non-zero when a read fails, or when the two sides' frames differ in
height, schema or content (compared once per engine). Timings are
reported, never asserted.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time

import polars as pl

DDL = """DROP TABLE IF EXISTS frames;
CREATE TABLE frames (
  id     bigint NOT NULL,
  small  integer,
  name   text,
  code   varchar(10),
  amount numeric(12,2),
  ratio  double precision,
  flag   boolean,
  day    date,
  ts     timestamp
)"""

QUERY = "SELECT * FROM frames"
ENGINES = ("adbc", "connectorx")


def log(msg: str) -> None:
    print(f"frames-bench: {msg}", file=sys.stderr, flush=True)


def psql(url: str, sql: str, stdin=None) -> str:
    out = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        stdin=stdin,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"frames-bench: psql failed on {url}: {out.stderr.strip()}")
    return out.stdout.strip()


def load(name: str, url: str, csv: str, rows: int) -> float:
    for stmt in DDL.split(";\n"):
        psql(url, stmt)
    t0 = time.perf_counter()
    with open(csv, "rb") as f:
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
             "COPY frames FROM STDIN WITH (FORMAT csv)"],
            stdin=f,
            check=True,
        )
    secs = time.perf_counter() - t0
    n = int(psql(url, "SELECT count(*) FROM frames"))
    if n != rows:
        raise SystemExit(f"frames-bench: {name} holds {n} rows after the load, the CSV has {rows}")
    log(f"{name}: loaded {n} rows in {secs:.1f} s")
    return secs


def copy_out(url: str) -> float:
    """Seconds of `COPY frames TO STDOUT (FORMAT binary)` through psql into
    /dev/null: the server's side of what both engines read."""
    t0 = time.perf_counter()
    with open("/dev/null", "wb") as sink:
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
             "COPY frames TO STDOUT (FORMAT binary)"],
            stdout=sink,
            check=True,
        )
    return time.perf_counter() - t0


def read(url: str, engine: str) -> tuple[float, pl.DataFrame]:
    t0 = time.perf_counter()
    df = pl.read_database_uri(QUERY, url, engine=engine)
    return time.perf_counter() - t0, df


def same(a: pl.DataFrame, b: pl.DataFrame) -> str | None:
    """None when the frames hold the same rows (in id order), else why not."""
    if a.height != b.height:
        return f"{a.height} rows against {b.height}"
    if a.schema != b.schema:
        return f"schema {a.schema} against {b.schema}"
    if not a.sort("id").equals(b.sort("id")):
        return "the same shape but different values"
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--pg", required=True)
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--engines", default=",".join(ENGINES))
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    sides = {"postgres": args.pg, "sluice": args.sluice}

    loads = {name: load(name, url, args.csv, args.rows) for name, url in sides.items()}
    times: dict[tuple[str, str], list[float]] = {}
    status = 0
    for rep in range(args.reps):
        order = list(sides) if rep % 2 == 0 else list(reversed(sides))
        for name in order:
            secs = copy_out(sides[name])
            times.setdefault(("binary COPY to /dev/null (psql)", name), []).append(secs)
            log(f"binary COPY repetition {rep + 1} of {args.reps}: {name} {secs:.2f} s")
    for engine in engines:
        for rep in range(args.reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            frames = {}
            for name in order:
                gc.collect()
                try:
                    secs, df = read(sides[name], engine)
                except Exception as e:  # noqa: BLE001 - reported, the run goes on
                    log(f"{engine} on {name} failed: {e}")
                    status = 1
                    continue
                if df.height != args.rows:
                    log(f"{engine} on {name}: {df.height} rows, expected {args.rows}")
                    status = 1
                times.setdefault((engine, name), []).append(secs)
                log(f"{engine} repetition {rep + 1} of {args.reps}: {name} {secs:.2f} s")
                if rep == 0:
                    frames[name] = df
                del df
            if rep == 0 and len(frames) == 2:
                why = same(frames["postgres"], frames["sluice"])
                if why:
                    log(f"{engine}: Sluice's frame differs from PostgreSQL's: {why}")
                    status = 1
            frames.clear()

    print()
    print(f"DataFrame read benchmark: `{QUERY}`, {args.rows:,} rows of 9 columns, "
          f"median of {args.reps} interleaved repetitions per engine")
    print()
    print("| engine | side | seconds | rows/s |")
    print("|---|---|---:|---:|")
    med = {k: statistics.median(v) for k, v in times.items()}
    engines = ["binary COPY to /dev/null (psql)"] + engines
    for engine in engines:
        for name in sides:
            s = med.get((engine, name))
            if s is None:
                print(f"| {engine} | {name} | - | - |")
            else:
                print(f"| {engine} | {name} | {s:.2f} | {args.rows / s:,.0f} |")
    print()
    print("| engine | PostgreSQL seconds ÷ Sluice seconds | target |")
    print("|---|---:|---|")
    for engine in engines:
        p, s = med.get((engine, "postgres")), med.get((engine, "sluice"))
        if p and s:
            r = p / s
            print(f"| {engine} | {r:.2f}× | > 1 (Sluice faster): {'met' if r > 1 else 'not met'} |")
        else:
            print(f"| {engine} | - | > 1 (Sluice faster) |")
    print()
    print("Loading the CSV with COPY FROM STDIN (psql): "
          + ", ".join(f"{n} {s:.1f} s" for n, s in loads.items()))
    for url in sides.values():
        psql(url, "DROP TABLE frames")
    return status


if __name__ == "__main__":
    sys.exit(main())
