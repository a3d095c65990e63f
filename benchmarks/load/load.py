"""Mixed load on one server: N connections (psycopg 3, one thread each)
reading and writing for a while; throughput, p50/p99 per kind of
statement, the server's RSS over time, and every error by SQLSTATE.

A write that fails with 40001 (serialization failure: another writer
committed first) is retried, as a client should; any other error is
counted and makes the run fail. At the end every acknowledged insert must
be in the table exactly once.

    python load.py --url postgresql://sluice@127.0.0.1:5433/sluice \
        --connections 64 --seconds 600 --pid 1234
"""

import argparse
import json
import random
import sys
import threading
import time
from collections import defaultdict

import psycopg

ACCOUNTS = 1000


def rss_mib(pid):
    """Resident memory in MiB: [total, anonymous (heap, stacks), file-backed
    (the mapped binary and libraries)]; None when the process is gone."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    fields[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        return None
    return [fields.get(k) for k in ("VmRSS", "RssAnon", "RssFile")]


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def setup(url):
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS load_events")
        c.execute("DROP TABLE IF EXISTS load_accounts")
        c.execute("CREATE TABLE load_events (client int, seq int, v double precision, note text)")
        c.execute("CREATE TABLE load_accounts (id int PRIMARY KEY, balance bigint)")
        c.execute(
            f"INSERT INTO load_accounts SELECT g, 0 FROM generate_series(1, {ACCOUNTS}) g"
        )


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)
        self.errors = defaultdict(int)
        self.retries = 0
        self.inserted = 0
        self.increments = 0


def worker(url, client, deadline, stats):
    rng = random.Random(client)
    lat = defaultdict(list)
    errors = defaultdict(int)
    retries = inserted = increments = seq = 0
    with psycopg.connect(url, autocommit=True) as c:
        while time.monotonic() < deadline:
            r = rng.random()
            if r < 0.35:
                kind, sql, params = (
                    "point read",
                    "SELECT balance FROM load_accounts WHERE id = %s",
                    (rng.randint(1, ACCOUNTS),),
                )
            elif r < 0.50:
                kind, sql, params = (
                    "aggregate read",
                    "SELECT count(*), sum(v) FROM load_events WHERE client = %s",
                    (rng.randrange(64),),
                )
            elif r < 0.80:
                rows = ", ".join(
                    f"({client}, {seq + i}, {rng.random()}, 'n{seq + i}')" for i in range(10)
                )
                kind, sql, params = "insert", f"INSERT INTO load_events VALUES {rows}", None
            elif r < 0.92:
                kind, sql, params = (
                    "update",
                    "UPDATE load_accounts SET balance = balance + 1 WHERE id = %s",
                    (rng.randint(1, ACCOUNTS),),
                )
            else:
                kind, sql, params = (
                    "upsert",
                    "INSERT INTO load_accounts VALUES (%s, 1) "
                    "ON CONFLICT (id) DO UPDATE SET balance = load_accounts.balance + 1",
                    (rng.randint(1, ACCOUNTS),),
                )
            t0 = time.monotonic()
            ok = False
            while not ok:
                try:
                    c.execute(sql, params)
                    ok = True
                except psycopg.Error as e:
                    state = e.sqlstate or "none"
                    if state != "40001":
                        errors[f"{state} {kind}: {str(e).splitlines()[0][:120]}"] += 1
                        break
                    # Another writer committed first: retry, as a client should.
                    retries += 1
                    time.sleep(rng.random() * 0.05)
            lat[kind].append(time.monotonic() - t0)
            if kind == "insert":
                seq += 10
                inserted += 10 if ok else 0
            elif kind in ("update", "upsert") and ok:
                increments += 1
    with stats.lock:
        for k, v in lat.items():
            stats.latency[k].extend(v)
        for k, v in errors.items():
            stats.errors[k] += v
        stats.retries += retries
        stats.inserted += inserted
        stats.increments += increments


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--sample", type=float, default=10)
    args = ap.parse_args()

    setup(args.url)
    stats = Stats()
    start = time.monotonic()
    deadline = start + args.seconds
    threads = [
        threading.Thread(target=worker, args=(args.url, i, deadline, stats))
        for i in range(args.connections)
    ]
    for t in threads:
        t.start()
    rss = []
    while any(t.is_alive() for t in threads):
        rss.append((round(time.monotonic() - start), *(rss_mib(args.pid) or [None] * 3)))
        # As it goes, so a run that fails at the end still shows the curve.
        print("rss", *rss[-1], file=sys.stderr, flush=True)
        time.sleep(args.sample)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    rss.append((round(elapsed), *(rss_mib(args.pid) or [None] * 3)))

    with psycopg.connect(args.url, autocommit=True) as c:
        stored = c.execute("SELECT count(*) FROM load_events").fetchone()[0]
        distinct = c.execute(
            "SELECT count(*) FROM (SELECT DISTINCT client, seq FROM load_events) d"
        ).fetchone()[0]
        # sum(bigint) is numeric, as in PostgreSQL.
        balance = int(c.execute("SELECT sum(balance) FROM load_accounts").fetchone()[0] or 0)

    total = sum(len(v) for v in stats.latency.values())
    report = {
        "connections": args.connections,
        "seconds": round(elapsed, 1),
        "statements": total,
        "statements_per_s": round(total / elapsed, 1),
        "by_kind": {
            k: {
                "count": len(v),
                "per_s": round(len(v) / elapsed, 1),
                "p50_ms": round(pct(v, 50) * 1000, 2),
                "p99_ms": round(pct(v, 99) * 1000, 2),
            }
            for k, v in sorted(stats.latency.items())
        },
        "retries_40001": stats.retries,
        "errors": dict(stats.errors),
        "rows_acknowledged": stats.inserted,
        "rows_stored": stored,
        "rows_distinct": distinct,
        "increments_acknowledged": stats.increments,
        "balance_sum": balance,
        "rss_mib": rss,
        "rss_columns": ["seconds", "total", "anonymous", "file-backed"],
    }
    print(json.dumps(report, indent=1))
    ok = (
        not stats.errors
        and stored == stats.inserted
        and distinct == stored
        and balance == stats.increments
    )
    if not ok:
        print("load: FAILED: errors, or stored rows differ from acknowledged ones")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
