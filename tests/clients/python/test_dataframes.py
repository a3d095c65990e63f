"""DataFrame readers and writers: Polars over ADBC (libpq, COPY ... TO
STDOUT (FORMAT binary)) and connectorx (binary COPY), Polars write_database
(ADBC bulk ingest: CREATE TABLE + COPY FROM STDIN binary; and SQLAlchemy),
pandas over an ADBC DBAPI connection.

Every test runs against PostgreSQL 15 and Sluice with the same expectations.
"""
from __future__ import annotations

import datetime as dt
import decimal

import adbc_driver_postgresql.dbapi as adbc
import pandas as pd
import polars as pl
import pytest

import clientlib

D = decimal.Decimal

SETUP = """
CREATE TABLE facts (
  id     bigint NOT NULL,
  small  integer,
  name   text,
  code   varchar(10),
  amount numeric(12,2),
  ratio  double precision,
  flag   boolean,
  day    date,
  ts     timestamp,
  tstz   timestamptz
);
INSERT INTO facts (id) VALUES (0);
"""


def facts_rows():
    """INSERT statements for ids 1..1000 (plain VALUES: the reads are under test here)."""
    rows = []
    for g in range(1, 1001):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=g)
        ts = dt.datetime(2026, 1, 1) + dt.timedelta(minutes=g)
        tstz = dt.datetime(2026, 1, 1) + dt.timedelta(hours=g)
        rows.append(
            f"({g}, {g % 7}, 'name {g}', 'c{g % 3}', {D(g) * D('1.25')}, {g / 4.0}, {str(g % 2 == 0).lower()},"
            f" DATE '{day}', TIMESTAMP '{ts}', TIMESTAMPTZ '{tstz}+00')"
        )
    return "".join(
        "INSERT INTO facts VALUES " + ", ".join(rows[i:i + 250]) + ";\n" for i in range(0, 1000, 250)
    )

QUERY = "SELECT id, small, name, code, amount, ratio, flag, day, ts, tstz FROM facts ORDER BY id"

_ready: set[tuple[str, int, str]] = set()


@pytest.fixture
def facts(target):
    clientlib.setup_once(target, SETUP + facts_rows())
    return target


def check_facts_frame(df: pl.DataFrame):
    assert df.height == 1001
    assert df.columns == ["id", "small", "name", "code", "amount", "ratio", "flag", "day", "ts", "tstz"]
    first = df.row(0)
    assert first == (0, None, None, None, None, None, None, None, None, None)
    row = df.row(10)
    assert row[:4] == (10, 3, "name 10", "c1")
    assert D(str(row[4])) == D("12.50")
    assert row[5] == 2.5
    assert row[6] is True
    assert row[7] == dt.date(2026, 1, 11)
    assert row[8] == dt.datetime(2026, 1, 1, 0, 10)
    assert row[9].replace(tzinfo=None) == dt.datetime(2026, 1, 1, 10, 0)
    assert df["id"].sum() == 500500
    assert df.schema["id"] == pl.Int64
    assert df.schema["small"] == pl.Int32
    assert df.schema["flag"] == pl.Boolean
    assert df.schema["day"] == pl.Date
    assert df.schema["ratio"] == pl.Float64
    assert isinstance(df.schema["ts"], pl.Datetime) and df.schema["ts"].time_zone is None
    assert isinstance(df.schema["tstz"], pl.Datetime) and df.schema["tstz"].time_zone is not None


def test_polars_read_adbc(facts):
    df = pl.read_database_uri(QUERY, facts.url, engine="adbc")
    check_facts_frame(df)
    # ADBC hands numeric over as an opaque string extension type; the value is checked above


def test_polars_read_connectorx(facts):
    df = pl.read_database_uri(QUERY, facts.url, engine="connectorx")
    check_facts_frame(df)


def test_polars_read_connectorx_partitioned(facts):
    """connectorx asks min/max of the partition column, then runs one query per range."""
    df = pl.read_database_uri(
        "SELECT id, name FROM facts", facts.url, engine="connectorx",
        partition_on="id", partition_num=3,
    )
    assert df.height == 1001
    assert sorted(df["id"].to_list()) == list(range(1001))


def test_polars_write_database_adbc(facts):
    df = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["x", None, "z"],
            "score": [1.5, None, -2.0],
            "ok": [True, False, None],
            "day": [dt.date(2026, 1, 1), None, dt.date(2026, 1, 3)],
            "at": [dt.datetime(2026, 1, 1, 1, 2, 3), dt.datetime(2026, 1, 2), None],
        }
    )
    n = df.write_database("pl_adbc", facts.url, engine="adbc", if_table_exists="fail")
    assert n in (3, -1)
    df.write_database("pl_adbc", facts.url, engine="adbc", if_table_exists="append")
    back = pl.read_database_uri("SELECT * FROM pl_adbc ORDER BY id, name", facts.url, engine="adbc")
    assert back.height == 6
    assert back.columns == df.columns
    assert back.sort("id", "name", nulls_last=True).head(1).row(0) == (1, "x", 1.5, True, dt.date(2026, 1, 1), dt.datetime(2026, 1, 1, 1, 2, 3))
    df.write_database("pl_adbc", facts.url, engine="adbc", if_table_exists="replace")
    assert pl.read_database_uri("SELECT count(*) AS n FROM pl_adbc", facts.url, engine="adbc")["n"].to_list() == [3]


def test_polars_write_database_sqlalchemy(facts):
    df = pl.DataFrame({"id": [1, 2], "label": ["a", "b"], "v": [0.1, 0.2]})
    df.write_database("pl_sqla", facts.sqlalchemy_url("psycopg"), engine="sqlalchemy")
    df.write_database("pl_sqla", facts.sqlalchemy_url("psycopg"), engine="sqlalchemy", if_table_exists="append")
    back = pl.read_database_uri("SELECT id, label, v FROM pl_sqla ORDER BY id, label", facts.url, engine="connectorx")
    assert back.rows() == [(1, "a", 0.1), (1, "a", 0.1), (2, "b", 0.2), (2, "b", 0.2)]


def test_pandas_over_adbc(facts):
    with adbc.connect(facts.url) as conn:
        df = pd.read_sql(QUERY, conn)
        assert len(df) == 1001
        assert df["id"].iloc[10] == 10 and df["name"].iloc[10] == "name 10"
        assert df["day"].iloc[10] == dt.date(2026, 1, 11)
        with conn.cursor() as cur:
            cur.execute("SELECT id, name FROM facts WHERE id = $1", parameters=(7,))
            assert cur.fetchall() == [(7, "name 7")]
            cur.execute("SELECT count(*) FROM facts WHERE flag")
            assert cur.fetchone() == (500,)
        out = pd.DataFrame({"k": [1, 2, 3], "v": ["a", "b", None]})
        out.to_sql("pd_adbc", conn, index=False)
        conn.commit()
        back = pd.read_sql("SELECT k, v FROM pd_adbc ORDER BY k", conn)
        assert back["k"].tolist() == [1, 2, 3]
        assert back["v"].isna().tolist() == [False, False, True]


def test_adbc_arrow_stream_and_ingest(facts):
    with adbc.connect(facts.url) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT id, amount, tstz FROM facts WHERE id BETWEEN 1 AND 5 ORDER BY id")
            tbl = cur.fetch_arrow_table()
            assert tbl.num_rows == 5
            assert tbl.column("id").to_pylist() == [1, 2, 3, 4, 5]
            cur.adbc_ingest("adbc_ingested", tbl, mode="create")
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), max(id) FROM adbc_ingested")
            assert cur.fetchone() == (5, 5)
        info = conn.adbc_get_objects(depth="tables", db_schema_filter="public").read_all().to_pylist()
        tables = {t["table_name"] for c in info for s in c["catalog_db_schemas"] for t in (s["db_schema_tables"] or [])}
        assert {"facts", "adbc_ingested"} <= tables
