#!/usr/bin/env python3
"""Differential SQL testing of Sluice against PostgreSQL 15.

Starts a Sluice server on a temporary lake, loads the fixed schema
(schema.py) into it and into a PostgreSQL database of its own, then runs
generated queries (gen.py) on both and compares the outcomes (compare.py),
plus metamorphic checks on Sluice alone (oracles.py). Every mismatch is
reduced to a smaller query when that is cheap (reduce.py) and written as one
JSON line to the report.

    run.py --sluice-bin PATH --pg-url URL --seed 1 --count 200 [--seconds 60]
           [--report FILE] [--known FILE] [--reduce-seconds 20]
    run.py ... --sql "SELECT ..."      # run one query on both, show the outcomes
    run.py --print --seed 3 --count 5  # only print generated queries
    run.py --pg-only --seed 1-5         # generator self-check on PostgreSQL alone
    run.py --ci ...                     # short mode: 40 cases, at most 60 s

--seed takes one number, a list (1,2,5) or a range (1-20); --count is per
seed. The exit status is 1 when a mismatch is not covered by the known
differences file, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

import oracles  # noqa: E402
import schema  # noqa: E402
from client import Client, ConnectionLost, Outcome  # noqa: E402
from compare import (KIND_ORDER, Verdict, classify, group_key, normalise,  # noqa: E402
                     reduce_key, show_row)
from gen import Ctx, Gen  # noqa: E402
from reduce import reduce  # noqa: E402
from sqltree import is_ordered  # noqa: E402


def cancels(sql: str) -> bool:
    """Whether `sql` reads a float column whose values cancel in sums."""
    return any(re.search(rf"\.{c}\b", sql) for c in schema.CANCELLING)

STATEMENT_TIMEOUT = "10s"
CLIENT_TIMEOUT = 30.0


# --- servers -----------------------------------------------------------------

class SluiceServer:
    """`sluice serve` on a temporary lake; restarted on the same lake after a crash."""

    def __init__(self, binary: str, workdir: str):
        self.binary = binary
        self.workdir = workdir
        self.lake = os.path.join(workdir, "lake")
        self.logpath = os.path.join(workdir, "sluice.log")
        self.proc: subprocess.Popen | None = None
        self.addr: tuple[str, int] | None = None
        self.starts = 0

    def start(self, timeout=120):
        os.makedirs(self.lake, exist_ok=True)
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--lake", self.lake, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        self.starts += 1
        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice exited with {self.proc.returncode}; see {self.logpath}")
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if not r:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                continue
            buf += chunk
            log.write(chunk)
            m = re.search(rb"listening on ([0-9.]+):(\d+)", buf)
            if m:
                self.addr = (m.group(1).decode(), int(m.group(2)))
                threading.Thread(target=self._drain, args=(log,), daemon=True).start()
                return
        raise RuntimeError(f"sluice did not print 'listening on' within {timeout}s")

    def _drain(self, log):
        try:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
        except Exception:
            pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def conninfo(self) -> str:
        host, port = self.addr
        return f"host={host} port={port} user=sluice dbname=sluice connect_timeout=10"

    def log_tail(self, n=40) -> str:
        try:
            with open(self.logpath, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def pg_database_url(url: str, dbname: str) -> str:
    """Create dbname on the server at url (if missing); return its URL."""
    admin = Client(url)
    try:
        out = admin.execute(f"SELECT 1 FROM pg_database WHERE datname = '{dbname}'")
        if not out.ok:
            raise RuntimeError(f"PostgreSQL: {out.sqlstate} {out.message}")
        if not out.rows:
            made = admin.execute(f"CREATE DATABASE {dbname}")
            if not made.ok and made.sqlstate != "42P04":
                raise RuntimeError(f"cannot create database {dbname}: {made.message}")
    finally:
        admin.close()
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


def drop_database(url: str, dbname: str):
    try:
        admin = Client(url)
    except ConnectionLost:
        return
    try:
        admin.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    finally:
        admin.close()


SESSION_SETUP = [
    f"SET statement_timeout = '{STATEMENT_TIMEOUT}'",
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, MDY'",
    "SET extra_float_digits = 1",
]


class Peer:
    """One server connection that reconnects, and for Sluice restarts, on loss."""

    def __init__(self, name, conninfo_fn, server: SluiceServer | None = None):
        self.name = name
        self.conninfo_fn = conninfo_fn
        self.server = server
        self.client: Client | None = None
        self.setup_notes: list[str] = []
        self.connect()

    def connect(self):
        self.client = Client(self.conninfo_fn(), timeout=CLIENT_TIMEOUT)
        for s in SESSION_SETUP:
            out = self.client.execute(s)
            if not out.ok:
                self.setup_notes.append(f"{s}: {out.sqlstate} {out.message}")

    def run(self, sql: str) -> Outcome:
        """An Outcome; a lost connection becomes an Outcome with sqlstate CRASH/LOST."""
        try:
            return self.client.execute(sql)
        except ConnectionLost as e:
            crashed = self.server is not None and not self.server.alive()
            state = "CRASH" if crashed else "LOST"
            msg = str(e)
            if crashed:
                msg += f" (exit code {self.server.proc.returncode})\n" + self.server.log_tail()
            self.recover()
            return Outcome(ok=False, sqlstate=state, message=msg)

    def recover(self):
        try:
            self.client.close()
        except Exception:
            pass
        if self.server is not None and not self.server.alive():
            self.server.stop()
            self.server.start()
        for _ in range(10):
            try:
                self.connect()
                return
            except ConnectionLost:
                time.sleep(1)
        raise RuntimeError(f"cannot reconnect to {self.name}")


# --- known differences --------------------------------------------------------

def load_known(path: str | None) -> list[tuple[re.Pattern, str]]:
    """Lines `REGEX :: reason`; blank lines and lines starting with # are skipped."""
    out = []
    if not path or not os.path.exists(path):
        return out
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if " :: " not in line:
                raise SystemExit(f"{path}:{n}: expected 'REGEX :: reason'")
            pat, reason = line.split(" :: ", 1)
            out.append((re.compile(pat.strip()), reason.strip()))
    return out


def signature(kind, sql, pg: Outcome | None, sl: Outcome | None, detail) -> str:
    """The text known-difference patterns are matched against."""
    parts = [f"kind={kind}"]
    if pg is not None:
        parts.append(f"pg={'ok' if pg.ok else pg.sqlstate}")
    if sl is not None:
        parts.append(f"sluice={'ok' if sl.ok else sl.sqlstate}")
    if kind == "column_type":
        parts.append("types=" + ",".join(detail.get("types", [])))
    if sl is not None and not sl.ok:
        parts.append(f"msg={sl.message}")
    parts.append(f"sql={sql}")
    return " ".join(parts)


# --- the run ----------------------------------------------------------------

def parse_seeds(s: str) -> list[int]:
    out = []
    for part in s.split(","):
        part = part.strip()
        if re.fullmatch(r"-?\d+", part):
            out.append(int(part))
        else:
            m = re.fullmatch(r"(\d+)(?:-|\.\.)(\d+)", part)
            if not m:
                raise SystemExit(f"bad --seed {s!r}")
            out.extend(range(int(m.group(1)), int(m.group(2)) + 1))
    return out


class Runner:
    def __init__(self, args, pg: Peer, sl: Peer):
        self.args = args
        self.pg = pg
        self.sl = sl
        self.known = load_known(args.known)
        self.report = open(args.report, "a") if args.report else None
        self.stats = Counter()
        self.kinds = Counter()
        self.groups: dict[str, list[dict]] = defaultdict(list)
        self.pg_rejects = Counter()
        self.pg_reject_examples: dict[str, str] = {}
        self.unknown_mismatches = 0
        self.xx000 = 0
        # An internal error is a finding whatever the oracle: (sql, message).
        self.xx000_examples: list[tuple[str, str]] = []
        self.query_time = 0.0
        self.reduce_time = 0.0
        self.reduced_per_group = Counter()
        self.deadline = time.monotonic() + args.seconds if args.seconds else None

    def time_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def run_both(self, sql):
        pg = self.pg.run(sql)
        sl = self.sl.run(sql)
        self.query_time += pg.elapsed + sl.elapsed
        return pg, sl

    def may_reduce(self, gk: str) -> bool:
        """Reduce the first few mismatches of each group (more for wrong results)."""
        if self.args.reduce_seconds <= 0:
            return False
        limit = self.args.reduce_per_group
        if gk.split(" ")[0] in ("wrong_result", "tlp", "norec"):
            limit *= 10
        return self.reduced_per_group[gk] < limit

    def crash_verdict(self, pg, sl, v):
        if not sl.ok and sl.sqlstate in ("CRASH", "LOST"):
            # the process died, or dropped the connection (a panic in the
            # session's task)
            return Verdict("crash", {"how": sl.sqlstate, "message": sl.message})
        return v

    # one differential case
    def differential(self, seed, index, gen: Gen):
        q = gen.query()
        sql = q.sql()
        pg, sl = self.run_both(sql)
        if not sl.ok and sl.sqlstate == "XX000":
            self.xx000 += 1
            self.xx000_examples.append((sql, sl.message))
        v = self.crash_verdict(pg, sl, classify(pg, sl, is_ordered(q), cancels(sql)))
        if not pg.ok:
            self.pg_rejects[pg.sqlstate] += 1
            if not pg.sqlstate.startswith("22"):
                # not a runtime error: the generator wrote something invalid
                self.pg_reject_examples.setdefault(pg.sqlstate, f"{pg.message} :: {sql}")
        self.stats["differential"] += 1
        if v.kind == "skipped":
            self.stats["skipped"] += 1
            return
        if v.agree:
            self.stats["agree"] += 1
            return
        if v.kind in ("wrong_result", "numeric_precision", "float_rounding", "pg_error_only"):
            # The same answer twice, or the difference is not reproducible
            # (a race in Sluice, or someone changing the tables under us).
            p2, s2 = self.run_both(sql)
            v2 = classify(p2, s2, is_ordered(q), cancels(sql))
            if v2.kind != v.kind:
                v = Verdict("flaky", {"first": v.kind, "first_detail": v.detail,
                                      "second": v2.kind, "second_pg": p2.summary(),
                                      "second_sluice": s2.summary()})
        reduced, tries = None, 0
        gk = group_key(v, sl, pg)
        if v.kind not in ("crash", "timeout", "flaky") and self.may_reduce(gk) \
                and pg.elapsed + sl.elapsed < 2.0:
            self.reduced_per_group[gk] += 1
            t_red = time.monotonic()
            key = reduce_key(v, sl, pg)
            first_type = v.detail.get("types", [None])[0]

            def still_fails(node):
                s = node.sql()
                p2, s2 = self.run_both(s)
                if p2.ok != pg.ok:
                    return False
                if not p2.ok and p2.sqlstate != pg.sqlstate:
                    return False
                v2 = classify(p2, s2, is_ordered(node), cancels(s))
                if reduce_key(v2, s2, p2) != key:
                    return False
                if v.kind == "column_type" and first_type not in v2.detail.get("types", []):
                    return False
                return True

            budget = min(self.args.reduce_seconds, max(0.0, self.time_left()))
            small, tries = reduce(q, still_fails, budget)
            self.reduce_time += time.monotonic() - t_red
            if small is not q:
                reduced = small.sql()
                rp, rs = self.run_both(reduced)
                rv = classify(rp, rs, is_ordered(small), cancels(reduced))
                self.record(seed, index, v, sql, pg, sl, reduced=(reduced, rp, rs, rv), tries=tries)
                return
        self.record(seed, index, v, sql, pg, sl, tries=tries)

    def metamorphic(self, seed, index, gen: Gen, which: str):
        if which == "tlp":
            base, ctx = gen.plain_select()
            if gen.chance(0.2):
                base.distinct = True
            case = oracles.TLPCase(base, gen.predicate(ctx))
        else:
            from_, scope = gen.from_clause(0)
            case = oracles.NoRECCase(from_, gen.predicate(Ctx(scope=scope, sub=True)))
        self.stats[which] += 1
        status, detail = oracles.check(case, self._sl_run)
        if status == "error" and detail["sqlstate"] == "XX000":
            self.xx000 += 1
            failed = next(
                (q for q, o in zip(case.queries(), detail["outcomes"]) if not o.ok),
                case.sql(),
            )
            self.xx000_examples.append((failed, detail["message"]))
            print(f"[XX000] seed={seed} #{index} {which}: {detail['message']}\n    {failed}",
                  flush=True)
        if status == "error":
            if detail["sqlstate"] in ("CRASH", "LOST"):
                v = Verdict("crash", {})
                self.record(seed, index, v, case.sql(), None, detail["outcomes"][-1])
            else:
                self.stats[f"{which}_error"] += 1
            return
        if status == "ok":
            self.stats[f"{which}_ok"] += 1
            return
        # Does PostgreSQL keep the relation? If not, the case is not valid.
        pstatus, _ = oracles.check(case, self._pg_run)
        if pstatus != "ok":
            self.stats[f"{which}_invalid"] += 1
            return
        v = Verdict(which, {k: d for k, d in detail.items() if k != "outcomes"})

        def still_fails(node):
            s, _ = oracles.check(node, self._sl_run)
            if s != "broken":
                return False
            p, _ = oracles.check(node, self._pg_run)
            return p == "ok"

        reduced = None
        if self.may_reduce(which):
            self.reduced_per_group[which] += 1
            t_red = time.monotonic()
            budget = min(self.args.reduce_seconds, max(0.0, self.time_left()))
            small, _ = reduce(case, still_fails, budget)
            self.reduce_time += time.monotonic() - t_red
            if small is not case:
                _, d2 = oracles.check(small, self._sl_run)
                reduced = small.sql()
                v.detail["reduced_why"] = d2.get("why")
        self.record(seed, index, v, case.sql(), None, None, reduced_meta=reduced)

    def _sl_run(self, sql):
        o = self.sl.run(sql)
        self.query_time += o.elapsed
        return o

    def _pg_run(self, sql):
        o = self.pg.run(sql)
        self.query_time += o.elapsed
        return o

    def record(self, seed, index, v: Verdict, sql, pg, sl, reduced=None, tries=0,
               reduced_meta=None):
        self.kinds[v.kind] += 1
        rec = {"seed": seed, "index": index, "kind": v.kind, "detail": v.detail, "sql": sql}
        if pg is not None:
            rec["pg"] = pg.summary()
        if sl is not None:
            rec["sluice"] = sl.summary()
        gk = group_key(v, sl, pg) if sl is not None else v.kind
        rec["group"] = gk
        show_sql = sql
        if reduced is not None:
            rsql, rp, rs, rv = reduced
            rec["reduced"] = {"sql": rsql, "kind": rv.kind, "detail": rv.detail,
                              "pg": rp.summary(), "sluice": rs.summary(), "tries": tries}
            show_sql = rsql
        if reduced_meta is not None:
            rec["reduced"] = {"sql": reduced_meta}
            show_sql = reduced_meta
        sig = signature(v.kind, show_sql, pg, sl, v.detail)
        rec["known"] = None
        for pat, reason in self.known:
            if pat.search(sig) or pat.search(signature(v.kind, sql, pg, sl, v.detail)):
                rec["known"] = reason
                break
        if rec["known"] is None:
            self.unknown_mismatches += 1
        self.groups[gk].append(rec)
        if self.report:
            self.report.write(json.dumps(rec, default=str) + "\n")
            self.report.flush()
        if not self.args.quiet:
            tag = "known" if rec["known"] else "MISMATCH"
            print(f"[{tag}] seed={seed} #{index} {gk}\n    {show_sql[:400]}", flush=True)

    def run(self, seeds, count, cases=None):
        """Cases 0..count-1 of every seed, or exactly the (seed, index) pairs given."""
        t0 = time.monotonic()
        if cases is None:
            cases = [(seed, i) for seed in seeds for i in range(count)]
        for seed, i in cases:
            if self.time_left() <= 0:
                break
            self.run_case(seed, i)
        self.elapsed = time.monotonic() - t0

    def run_case(self, seed, i):
        mix = [(self.args.tlp, "tlp"), (self.args.norec, "norec"),
               (max(0.0, 1 - self.args.tlp - self.args.norec), "diff")]
        gen = Gen(random.Random(f"{seed}:{i}"), self.args.disable)
        which = gen.wpick(mix)
        self.stats["cases"] += 1
        if which == "diff":
            self.differential(seed, i, gen)
        else:
            self.metamorphic(seed, i, gen, which)

    def summary(self) -> dict:
        s = self.stats
        diff_total = s["differential"] - s["skipped"]
        meta_total = s["tlp"] + s["norec"]
        meta_ok = s["tlp_ok"] + s["norec_ok"]
        return {
            "cases": s["cases"],
            "differential": {"total": diff_total, "agree": s["agree"],
                             "rate": round(s["agree"] / diff_total, 4) if diff_total else None,
                             "skipped_pg_timeout": s["skipped"]},
            "metamorphic": {"total": meta_total, "held": meta_ok,
                            "tlp": s["tlp"], "tlp_broken": self.kinds["tlp"],
                            "tlp_error": s["tlp_error"], "tlp_invalid": s["tlp_invalid"],
                            "norec": s["norec"], "norec_broken": self.kinds["norec"],
                            "norec_error": s["norec_error"], "norec_invalid": s["norec_invalid"]},
            "mismatches": dict(sorted(self.kinds.items(),
                                      key=lambda kv: KIND_ORDER.index(kv[0]) if kv[0] in KIND_ORDER else 99)),
            "unknown_mismatches": self.unknown_mismatches,
            "xx000_errors": self.xx000,
            "xx000_examples": [
                {"sql": q, "message": m} for q, m in self.xx000_examples[:10]
            ],
            "pg_rejected": dict(self.pg_rejects.most_common()),
            "pg_rejected_examples": self.pg_reject_examples,
            "seconds": round(self.elapsed, 1),
            "seconds_reducing": round(self.reduce_time, 1),
            "seconds_per_100_cases": round(100 * (self.elapsed - self.reduce_time) / s["cases"], 1)
            if s["cases"] else None,
            "groups": {k: len(v) for k, v in sorted(self.groups.items(), key=lambda kv: -len(kv[1]))},
            "sluice_restarts": max(0, self.sl.server.starts - 1) if self.sl.server else 0,
        }


def load_schema(pg: Peer, sl: Peer) -> list[str]:
    """Create and fill the tables on both; return problems (empty when equal)."""
    problems = []
    for stmt in schema.setup_statements():
        p = pg.run(stmt)
        if not p.ok:
            raise RuntimeError(f"PostgreSQL refused {stmt}: {p.sqlstate} {p.message}")
        s = sl.run(stmt)
        if not s.ok:
            problems.append(f"Sluice refused {stmt}: {s.sqlstate} {s.message}")
    for t in schema.TABLES:
        q = f"SELECT * FROM {t.name} ORDER BY id"
        p, s = pg.run(q), sl.run(q)
        v = classify(p, s, True)
        if not v.agree:
            problems.append(f"{t.name} differs after loading: {v.kind} {v.detail}")
        elif p.ok and s.ok:
            # exactly: the float tolerance of the comparisons must not hide
            # a value stored differently
            for rp, rs in zip(normalise(p), normalise(s)):
                for c, (a, b) in enumerate(zip(rp, rs)):
                    if a != b and not (a and b and a[0] == b[0] == "n" and a[1] == b[1]):
                        problems.append(f"{t.name}.{p.columns[c][0]} differs after loading: "
                                        f"{show_row([a])[0]} vs {show_row([b])[0]}")
    return problems


def pg_only(args, seeds) -> int:
    """Generator self-check: PostgreSQL should accept (nearly) every query."""
    pg = Peer("PostgreSQL", lambda: pg_database_url(args.pg_url, args.pg_db))
    for stmt in schema.setup_statements():
        out = pg.run(stmt)
        if not out.ok:
            raise RuntimeError(f"{stmt}: {out.message}")
    states, examples, n, t0 = Counter(), {}, 0, time.monotonic()
    for seed in seeds:
        for i in range(args.count):
            gen = Gen(random.Random(f"{seed}:{i}"), args.disable)
            sql = gen.query().sql()
            out = pg.run(sql)
            n += 1
            key = "ok" if out.ok else f"{out.sqlstate} {out.message[:70]}"
            states[key] += 1
            examples.setdefault(key, sql)
    for key, c in states.most_common():
        print(f"{c:6d}  {key}")
        if key != "ok" and not args.quiet:
            print(f"        {examples[key][:600]}")
    print(f"{n} queries in {time.monotonic() - t0:.1f}s")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice-bin", default=os.environ.get("SLUICE_BIN"))
    ap.add_argument("--pg-url", default=os.environ.get("SLUICE_TEST_PG_URL"))
    ap.add_argument("--pg-db", default=None,
                    help="PostgreSQL database to create and use (default: diffgen_<pid>, "
                         "dropped at the end, so that runs never share tables)")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--count", type=int, default=100, help="cases per seed")
    ap.add_argument("--seconds", type=float, default=None, help="stop starting cases after this")
    ap.add_argument("--report", default=None, help="append mismatches here (JSON lines)")
    ap.add_argument("--summary", default=None, help="write the summary JSON here")
    ap.add_argument("--known", default=os.path.join(HERE, "known_differences.txt"))
    ap.add_argument("--reduce-seconds", type=float, default=20.0,
                    help="time budget to reduce one mismatch (0: no reduction)")
    ap.add_argument("--reduce-per-group", type=int, default=3,
                    help="reduce this many mismatches per group (ten times more for wrong results)")
    ap.add_argument("--tlp", type=float, default=0.1, help="share of TLP cases")
    ap.add_argument("--norec", type=float, default=0.1, help="share of NoREC cases")
    ap.add_argument("--disable", default="", type=lambda s: [f for f in s.split(",") if f],
                    help="generator features to leave out (comma-separated tags from gen.py, "
                         "e.g. mod,window,type_timestamptz): to look past a known failure")
    ap.add_argument("--cases", default=None,
                    help="run only these cases, SEED:INDEX[,...] (as in a report), "
                         "with the same generator settings (--disable, --tlp, --norec)")
    ap.add_argument("--sql", action="append", default=None,
                    help="run this query on both and show the outcomes (repeatable)")
    ap.add_argument("--print", action="store_true", help="only print the generated queries")
    ap.add_argument("--pg-only", action="store_true",
                    help="check the generator: run on PostgreSQL alone, show what it rejects")
    ap.add_argument("--keep", action="store_true", help="keep the temporary lake and log")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--ci", action="store_true",
                    help="short mode for CI: --count 40 --seconds 60 --reduce-seconds 5 "
                         "--reduce-per-group 1 unless given")
    argv = sys.argv[1:] if argv is None else argv
    if "--ci" in argv:
        ap.set_defaults(count=40, seconds=60.0, reduce_seconds=5.0, reduce_per_group=1)
    args = ap.parse_args(argv)
    seeds = parse_seeds(args.seed)
    own_db = args.pg_db is None
    if own_db:
        args.pg_db = f"diffgen_{os.getpid()}"

    if args.print:
        for seed in seeds:
            for i in range(args.count):
                g = Gen(random.Random(f"{seed}:{i}"), args.disable)
                print(f"-- seed {seed} #{i}\n{g.query().sql()};\n")
        return 0
    if not args.pg_url:
        ap.error("--pg-url (or SLUICE_TEST_PG_URL) is required")
    if args.pg_only:
        try:
            return pg_only(args, seeds)
        finally:
            if own_db:
                drop_database(args.pg_url, args.pg_db)
    if not args.sluice_bin or not os.access(args.sluice_bin, os.X_OK):
        ap.error(f"no Sluice binary at {args.sluice_bin}")

    # Background jobs start with SIGINT ignored; make SIGINT and SIGTERM end
    # the run through the finally below, which stops the server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = tempfile.mkdtemp(prefix="sluice-diff-")
    server = SluiceServer(args.sluice_bin, workdir)
    code = 0
    try:
        server.start()
        pg = Peer("PostgreSQL", lambda: pg_database_url(args.pg_url, args.pg_db))
        sl = Peer("Sluice", server.conninfo, server)
        for note in sl.setup_notes:
            print(f"note: Sluice session setup: {note}", file=sys.stderr)
        problems = load_schema(pg, sl)
        for p in problems:
            print(f"LOAD: {p}", file=sys.stderr)
        if args.sql:
            agree = True
            for q in args.sql:
                pgo, slo = pg.run(q), sl.run(q)
                v = classify(pgo, slo, "ORDER BY" in q.upper())
                agree = agree and v.agree
                print(json.dumps({"sql": q, "verdict": v.kind, "detail": v.detail,
                                  "pg": pgo.summary(100), "sluice": slo.summary(100)},
                                 default=str))
            return 0 if agree else 1
        runner = Runner(args, pg, sl)
        cases = None
        if args.cases:
            cases = [tuple(int(x) for x in c.split(":")) for c in args.cases.split(",")]
        runner.run(seeds, args.count, cases)
        summ = runner.summary()
        summ["load_problems"] = problems
        summ["seeds"] = args.seed
        text = json.dumps(summ, indent=2)
        print(text)
        if args.summary:
            with open(args.summary, "w") as f:
                f.write(text + "\n")
        if runner.report:
            runner.report.write(json.dumps({"summary": summ}) + "\n")
            runner.report.close()
        code = 1 if (runner.unknown_mismatches or problems) else 0
    finally:
        server.stop()
        if own_db and not args.keep:
            drop_database(args.pg_url, args.pg_db)
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
