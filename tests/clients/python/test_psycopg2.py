"""psycopg2: client-side interpolation over the simple protocol, implicit
BEGIN, execute_values, copy_expert, named (DECLARE) cursors.

Every test runs against PostgreSQL 15 and Sluice with the same expectations.
"""
from __future__ import annotations

import datetime as dt
import decimal
import io
import uuid

import psycopg2
import psycopg2.errors
import psycopg2.extensions as ext
import psycopg2.extras
import pytest

D = decimal.Decimal
UTC = dt.timezone.utc
psycopg2.extras.register_uuid()


def connect(target, autocommit=False):
    conn = psycopg2.connect(target.conninfo)
    conn.autocommit = autocommit
    return conn


def test_connect_and_version(target):
    conn = connect(target)
    try:
        assert conn.server_version >= 90000
        assert conn.get_parameter_status("server_encoding") == "UTF8"
        assert conn.encoding == "UTF8"
        cur = conn.cursor()
        cur.execute("SELECT version()")
        assert "PostgreSQL" in cur.fetchone()[0]
        # psycopg2 opened a transaction for it
        assert conn.get_transaction_status() == ext.TRANSACTION_STATUS_INTRANS
        conn.rollback()
        assert conn.get_transaction_status() == ext.TRANSACTION_STATUS_IDLE
    finally:
        conn.close()


def test_parameters_roundtrip(target):
    conn = connect(target, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute(
            "CREATE TABLE p2types (id bigint PRIMARY KEY, amount numeric(12,2), code varchar(20),"
            " flag boolean, day date, ts timestamp, tstz timestamptz, uid uuid, doc jsonb, raw bytea)"
        )
        row = (
            1, D("10.50"), "it's", False, dt.date(2026, 2, 3),
            dt.datetime(2026, 2, 3, 4, 5, 6, 789000),
            dt.datetime(2026, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            uuid.UUID("0000000a-0000-0000-0000-00000000000b"),
            psycopg2.extras.Json({"k": [1, None]}),
            psycopg2.Binary(b"\x00\\x'"),
        )
        cur.execute("INSERT INTO p2types VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)
        cur.execute("SELECT * FROM p2types WHERE ts >= %s AND tstz < %s", (row[5], dt.datetime(2027, 1, 1)))
        got = cur.fetchone()
        assert got[:6] == row[:6]
        assert got[6] == row[6]
        assert got[6].utcoffset() == dt.timedelta(0)
        assert got[7] == row[7]
        assert got[8] == {"k": [1, None]}
        assert bytes(got[9]) == b"\x00\\x'"
        assert [d.type_code for d in cur.description] == [20, 1700, 1043, 16, 1082, 1114, 1184, 2950, 3802, 17]
    finally:
        conn.close()


def test_execute_values_and_executemany(target):
    conn = connect(target)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE p2many (id bigint, name text, amount numeric(12,2), ts timestamptz)")
        ts = dt.datetime(2026, 3, 1, tzinfo=UTC)
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO p2many (id, name, amount, ts) VALUES %s",
            [(i, f"n{i}", D(i), ts + dt.timedelta(days=i)) for i in range(250)],
            page_size=100,
        )
        cur.executemany("INSERT INTO p2many (id, name) VALUES (%s, %s)", [(1000, "a"), (1001, "b")])
        psycopg2.extras.execute_batch(cur, "INSERT INTO p2many (id) VALUES (%s)", [(2000 + i,) for i in range(10)])
        conn.commit()
        cur.execute("SELECT count(*), sum(amount), max(ts) FROM p2many")
        assert cur.fetchone() == (262, D("31125.00"), ts + dt.timedelta(days=249))
        got = psycopg2.extras.execute_values(
            cur, "INSERT INTO p2many (id) VALUES %s RETURNING id", [(5000,), (5001,)], fetch=True
        )
        assert sorted(got) == [(5000,), (5001,)]
        conn.commit()
    finally:
        conn.close()


def test_copy_expert_in_and_out(target):
    conn = connect(target)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE p2copy (id bigint, name text, amount numeric(12,2), day date)")
        csv_in = "id,name,amount,day\n1,\"a, b\",1.50,2026-01-01\n2,,2.25,\n3,\"q\"\"uote\",3.00,2026-01-03\n"
        cur.copy_expert("COPY p2copy FROM STDIN WITH (FORMAT csv, HEADER)", io.StringIO(csv_in))
        assert cur.rowcount == 3
        cur.copy_from(io.StringIO("4\tt\t4.00\t2026-01-04\n5\t\\N\t\\N\t\\N\n"), "p2copy")
        conn.commit()
        out = io.StringIO()
        cur.copy_expert("COPY (SELECT * FROM p2copy ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)", out)
        assert out.getvalue().splitlines() == [
            "id,name,amount,day",
            '1,"a, b",1.50,2026-01-01',
            "2,,2.25,",
            '3,"q""uote",3.00,2026-01-03',
            "4,t,4.00,2026-01-04",
            "5,,,",
        ]
        out = io.StringIO()
        cur.copy_to(out, "p2copy", columns=("id", "name"))
        assert sorted(out.getvalue().splitlines()) == ["1\ta, b", "2\t\\N", '3\tq"uote', "4\tt", "5\t\\N"]
        conn.commit()
    finally:
        conn.close()


def test_named_cursor(target):
    conn = connect(target)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE p2seq (n bigint)")
        cur.execute("INSERT INTO p2seq SELECT * FROM generate_series(1, 2000)")
        conn.commit()
        named = conn.cursor(name="p2_scan")
        named.itersize = 500
        named.execute("SELECT n FROM p2seq WHERE n > %s ORDER BY n", (1000,))
        assert named.fetchmany(5) == [(1001,), (1002,), (1003,), (1004,), (1005,)]
        assert sum(1 for _ in named) == 995
        named.close()
        conn.commit()
        held = conn.cursor(name="p2_held", withhold=True)
        held.execute("SELECT n FROM p2seq ORDER BY n LIMIT 3")
        conn.commit()
        assert held.fetchall() == [(1,), (2,), (3,)]
        held.close()
    finally:
        conn.close()


def test_errors_and_transaction_state(target):
    conn = connect(target)
    try:
        cur = conn.cursor()
        with pytest.raises(psycopg2.errors.UndefinedTable) as e:
            cur.execute("SELECT * FROM p2_missing")
        assert e.value.pgcode == "42P01"
        assert conn.get_transaction_status() == ext.TRANSACTION_STATUS_INERROR
        with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
            cur.execute("SELECT 1")
        conn.rollback()
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
        conn.rollback()
        with pytest.raises(psycopg2.errors.DivisionByZero) as e:
            cur.execute("SELECT 1/0")
        assert e.value.pgcode == "22012"
        conn.rollback()
    finally:
        conn.close()


def test_realdict_and_isolation(target):
    conn = connect(target)
    try:
        conn.set_session(isolation_level="READ COMMITTED", readonly=False)
        cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
        cur.execute("SELECT 1 AS a, 'x'::text AS b")
        assert cur.fetchall() == [{"a": 1, "b": "x"}]
        conn.commit()
        cur.execute("SHOW transaction_isolation")
        assert cur.fetchone() == {"transaction_isolation": "read committed"}
        conn.commit()
    finally:
        conn.close()
