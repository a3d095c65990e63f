"""psql 15 (the real client) against Sluice: the meta-commands people type
run without an ERROR, and `\\d t` looks as it does on PostgreSQL 15.

psql's meta-commands are catalog queries (pg_catalog, regclass casts,
format_type, pg_get_expr, ...), so every command runs on PostgreSQL first.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest

import clientlib

PSQL = shutil.which("psql", path="/usr/lib/postgresql/15/bin") or shutil.which("psql")

SETUP = """
CREATE TABLE parent (id bigint PRIMARY KEY, name text);
CREATE TABLE t (
  id     bigint PRIMARY KEY,
  amount numeric(12,2) NOT NULL DEFAULT 0 CHECK (amount >= 0),
  label  varchar(20) DEFAULT 'none',
  ts     timestamptz,
  parent_id bigint REFERENCES parent (id)
);
CREATE VIEW v AS SELECT id, amount FROM t;
CREATE SEQUENCE counter START 10 INCREMENT 5 MAXVALUE 1000;
CREATE SCHEMA elsewhere;
CREATE TABLE elsewhere.hidden (a integer);
COMMENT ON TABLE t IS 'amounts by id';
COMMENT ON SEQUENCE counter IS 'ticket numbers';
COMMENT ON COLUMN t.amount IS 'in USD';
INSERT INTO parent VALUES (1, 'p');
INSERT INTO t VALUES (1, 2.50, 'a', '2026-11-01 00:00:00+00', 1), (2, 0, 'none', NULL, NULL);
"""

_ready: set[tuple[str, int, str]] = set()


def psql(target, *commands: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    clientlib.setup_once(target, SETUP)
    args = [PSQL, "-X", "-v", "ON_ERROR_STOP=1", "-h", target.host, "-p", str(target.port),
            "-U", target.user, "-d", target.dbname]
    for c in commands:
        args += ["-c", c]
    env = dict(os.environ, PGTZ="UTC", PAGER="cat", PSQL_PAGER="cat", LC_ALL="C")
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60, env=env)


def ok(res: subprocess.CompletedProcess, what: str) -> str:
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "ERROR" not in out, f"{what} failed (exit {res.returncode}):\n{out}"
    return res.stdout


META = [
    r"\l", r"\dn", r"\dt", r"\dv", r"\dm", r"\di", r"\df", r"\dT", r"\d t", r"\d+ t",
    r"\du", r"\dp", r"\d", r"\d v", r"\dt+", r"\conninfo",
    r"\dn+", r"\dv+", r"\l+", r"\dm+", r"\di+", r"\d+ v",
    r"\ds", r"\ds+", r"\d counter",
    # the rest of psql's listings: Sluice has few of these objects (no
    # operators, text search configurations or event triggers of its own),
    # but each command runs without an error
    r"\do", r"\db", r"\dc", r"\dd", r"\dD", r"\dA", r"\dC", r"\dE", r"\dL", r"\dO",
    r"\dP", r"\dX", r"\dx", r"\dy", r"\dF", r"\dFd", r"\dFp", r"\dFt", r"\ddp",
    r"\drds", r"\des", r"\dew", r"\det", r"\deu", r"\dRp", r"\dRs", r"\dg", r"\z",
    r"\da", r"\dl", r"\dconfig",
]


@pytest.mark.parametrize("cmd", META)
def test_meta_command(target, cmd):
    ok(psql(target, cmd), cmd)


def test_expanded_and_timing(target):
    out = ok(psql(target, r"\x", r"\timing", "SELECT id, label FROM t ORDER BY id"), r"\x \timing")
    assert "-[ RECORD 1 ]" in out and "Time:" in out


def test_copy_meta_command(target):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.csv")
        ok(psql(target, rf"\copy (SELECT id, amount, label FROM t ORDER BY id) TO '{path}' WITH (FORMAT csv, HEADER)"), r"\copy to")
        with open(path) as f:
            assert f.read().splitlines() == ["id,amount,label", "1,2.50,a", "2,0.00,none"]
        with open(path, "w") as f:
            f.write("id,amount,label\n10,1.00,x\n11,2.00,\n")
        ok(psql(target, rf"\copy t (id, amount, label) FROM '{path}' WITH (FORMAT csv, HEADER)"), r"\copy from")
        out = ok(psql(target, "SELECT count(*) FROM t WHERE id >= 10"), "count")
        assert " 2" in out
        ok(psql(target, "DELETE FROM t WHERE id >= 10"), "cleanup")


def describe_t(target) -> str:
    out = ok(psql(target, r"\d t"), r"\d t")
    # PRIMARY KEY / UNIQUE are listed with access method `delta` on Sluice by
    # design (DESIGN.md §5); everything else must read as on PostgreSQL.
    return re.sub(r", delta \(", ", btree (", out)


def test_describe_table_matches_postgres(pg, sluice):
    want = describe_t(pg)
    got = describe_t(sluice)
    assert "numeric(12,2)" in got
    assert re.search(r"amount\s*\|\s*numeric\(12,2\)\s*\|\s*\|\s*not null\s*\|\s*0", got), got
    assert re.search(r"label\s*\|\s*character varying\(20\)\s*\|\s*\|\s*\|\s*'none'::character varying", got), got
    assert got == want


def test_describe_sequence_matches_postgres(pg, sluice):
    want = ok(psql(pg, r"\d counter"), r"\d counter")
    got = ok(psql(sluice, r"\d counter"), r"\d counter")
    assert "1000" in got and got == want


@pytest.mark.parametrize("cmd", [r"\dt", r"\dv", r"\dn", r"\di", r"\ds", r"\dp", r"\d+ t"])
def test_listing_matches_postgres(pg, sluice, cmd):
    """Listings over the same objects; owner and size columns differ by server."""
    def norm(out: str) -> list[str]:
        lines = []
        for line in out.splitlines():
            if "|" not in line:
                continue  # titles, separators, row counts, footers
            cells = [c.strip() for c in line.split("|")]
            lines.append(cells)
        return lines

    def pick(rows, cmd):
        # listings: Schema, Name, Type (Owner, sizes differ). \d+ t: Column, Type,
        # Collation, Nullable, Default and Description (Storage, Compression and
        # Stats target are PostgreSQL storage details)
        if cmd == r"\d+ t":
            return [r[:5] + r[8:9] for r in rows]
        if cmd == r"\dn":
            return [r[:1] for r in rows if r[0] != "sluice"]  # Name (Owner differs by server)
        return [r[:3] for r in rows if r and r[0] != "sluice"]

    want = pick(norm(ok(psql(pg, cmd), cmd)), cmd)
    got = pick(norm(ok(psql(sluice, cmd), cmd)), cmd)
    assert got == want


def sizes(target, cmd: str) -> dict[str, str]:
    """Name to the Size column of a `\\d?+` listing."""
    out = ok(psql(target, cmd), cmd)
    rows = [[c.strip() for c in line.split("|")] for line in out.splitlines() if "|" in line]
    header, body = rows[0], rows[1:]
    name, size = header.index("Name"), header.index("Size")
    return {r[name]: r[size] for r in body}


def test_listings_show_sizes(pg, sluice):
    """`\\dt+` shows a table's size (on Sluice, its Delta data files'), a
    view's `0 bytes` and a sequence's one page, as on PostgreSQL; `\\di+`
    a key's index (none on Sluice: `0 bytes`)."""
    for target in (pg, sluice):
        tables = sizes(target, r"\dt+")
        assert re.fullmatch(r"\d+ (bytes|kB)", tables["t"]), tables
        assert tables["t"] != "0 bytes", tables
        assert sizes(target, r"\dv+")["v"] == "0 bytes"
        assert sizes(target, r"\ds+")["counter"] == "8192 bytes"
    # A key's index: PostgreSQL's pages, Sluice's nothing (Delta keeps none).
    assert re.fullmatch(r"\d+ (bytes|kB)", sizes(pg, r"\di+")["t_pkey"])
    assert sizes(sluice, r"\di+")["t_pkey"] == "0 bytes"
    # the size follows the data
    before = ok(psql(sluice, r"SELECT pg_table_size('t'::regclass)"), "size")
    ok(psql(sluice, "INSERT INTO t (id, amount) SELECT g, 1 FROM generate_series(100, 2000) g"), "insert")
    after = ok(psql(sluice, r"SELECT pg_table_size('t'::regclass)"), "size")
    ok(psql(sluice, "DELETE FROM t WHERE id >= 100"), "cleanup")
    assert int(after.split()[2]) > int(before.split()[2])
