"""Catalog queries that Grafana, Metabase, DBeaver and pgAdmin send at start-up
and schema sync (tests/clients/bi_replay/*.sql, each with its source), replayed
on Sluice and on PostgreSQL 15 over the same schema: Sluice must answer without
error, with PostgreSQL's column names and rows (see bi_replay/README.md for the
header lines that say which columns and rows are compared, and why).
"""
from __future__ import annotations

import dataclasses
import pathlib
import re

import psycopg
import pytest
from psycopg.types.numeric import Int8

import clientlib

REPLAY = clientlib.ROOT / "tests" / "clients" / "bi_replay"


@dataclasses.dataclass
class Query:
    name: str
    file: str
    sql: str
    source: str = ""
    params: list[str] = dataclasses.field(default_factory=list)
    keep: list[str] | None = None
    ignore: list[str] = dataclasses.field(default_factory=list)
    filter: str | None = None
    ordered: bool = False
    statement: bool = False


def load_queries() -> list[Query]:
    out = []
    for path in sorted(REPLAY.glob("*.sql")):
        if path.name == "schema.sql":
            continue
        cur: Query | None = None
        body: list[str] = []

        def flush():
            if cur is not None:
                cur.sql = "\n".join(body).strip().rstrip(";").strip()
                out.append(cur)

        for line in path.read_text().splitlines():
            m = re.match(r"--\s*query:\s*(\S+)", line)
            if m:
                flush()
                cur, body = Query(m.group(1), path.name, ""), []
                continue
            if cur is None:
                continue
            h = re.match(r"--\s*(source|params|keep|ignore|filter):\s*(.*)$", line)
            if h and not body:
                key, val = h.group(1), h.group(2).strip()
                if key in ("params", "keep", "ignore"):
                    setattr(cur, key, [v.strip() for v in val.split(",") if v.strip()])
                else:
                    setattr(cur, key, val)
                continue
            if re.match(r"--\s*ordered\s*$", line) and not body:
                cur.ordered = True
                continue
            if re.match(r"--\s*statement\s*$", line) and not body:
                cur.statement = True
                continue
            if line.startswith("--") and not body:
                continue  # commentary about the query
            body.append(line)
        flush()
    return out


QUERIES = load_queries()
_ready: set[tuple[str, int, str]] = set()


def prepared(target):
    clientlib.setup_once(target, (REPLAY / "schema.sql").read_text())


def oids(conn) -> dict[str, int]:
    schema = conn.execute("SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'bi'").fetchone()
    table = conn.execute(
        "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'bi' AND c.relname = 'orders'"
    ).fetchone()
    assert schema and table, "cannot find the OIDs of bi / bi.orders in pg_namespace / pg_class"
    return {"schema_oid": int(schema[0]), "table_oid": int(table[0])}


def run(target, q: Query):
    """(column names, rows as dicts) of q on target; raises psycopg.Error."""
    with psycopg.connect(target.conninfo, autocommit=True) as conn:
        sql = q.sql
        values: list = []
        if q.params or "{{" in sql:
            ids = oids(conn)
            sql = sql.replace("{{scid}}", str(ids["schema_oid"])).replace("{{tid}}", str(ids["table_oid"]))
            values = [Int8(ids[p]) for p in q.params]
        cur = conn.cursor()
        if values:
            # pgjdbc's `?` markers become $n parameters, bound as int8 (setLong)
            cur.execute(sql.replace("%", "%%").replace("?", "%s"), values)
        else:
            cur.execute(sql)
        if q.statement or cur.description is None:
            return [], []
        cols = [d.name for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        return cols, rows


def project(q: Query, cols, rows):
    if q.filter:
        rows = [r for r in rows if eval(q.filter, {}, {"row": r})]  # noqa: S307 - test data
    keep = q.keep if q.keep is not None else [c for c in cols if c not in q.ignore]
    table = [tuple(norm(r.get(c, "<missing column>")) for c in keep) for r in rows]
    return keep, (table if q.ordered else clientlib.sorted_rows(table))


def norm(v):
    # int2vector / oidvector / arrays come back as text or lists depending on the
    # server's type OID; compare their text form
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return v


@pytest.mark.parametrize("q", QUERIES, ids=[q.name for q in QUERIES])
def test_replay(pg, sluice, q):
    prepared(pg)
    prepared(sluice)
    want_cols, want_rows = run(pg, q)
    try:
        got_cols, got_rows = run(sluice, q)
    except psycopg.Error as e:
        pytest.fail(
            f"{q.name} ({q.source}) failed on Sluice: SQLSTATE {e.sqlstate}: {e}\n--- query ---\n{q.sql}"
        )
    if q.statement:
        return
    assert got_cols == want_cols, f"column names differ for {q.name}"
    keep, want = project(q, want_cols, want_rows)
    _, got = project(q, got_cols, got_rows)
    assert got == want, f"rows of {q.name} differ on columns {keep}"
