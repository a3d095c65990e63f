"""psycopg 3: the paths its users hit (server-side binding, binary format,
COPY, named cursors, pipeline mode, prepared statements, transactions).

Every test runs against PostgreSQL 15 and Sluice with the same expectations.
"""
from __future__ import annotations

import datetime as dt
import decimal
import uuid

import psycopg
import pytest
from psycopg import pq
from psycopg.types.json import Json, Jsonb

D = decimal.Decimal
UTC = dt.timezone.utc
PLUS2 = dt.timezone(dt.timedelta(hours=2))


def connect(target, **kw):
    conn = psycopg.connect(target.conninfo, **kw)
    return conn


# (name, column type, Python value sent, value PostgreSQL returns, result type OID)
TYPE_CASES = [
    ("int8", "bigint", 2**40, 2**40, 20),
    ("int4", "integer", -7, -7, 23),
    ("numeric", "numeric(12,2)", D("12345.67"), D("12345.67"), 1700),
    ("varchar", "varchar(20)", "abc", "abc", 1043),
    ("text", "text", "héllo, wörld", "héllo, wörld", 25),
    ("bool", "boolean", True, True, 16),
    ("date", "date", dt.date(2026, 11, 1), dt.date(2026, 11, 1), 1082),
    ("timestamp", "timestamp", dt.datetime(2026, 11, 1, 12, 30, 45, 123456), dt.datetime(2026, 11, 1, 12, 30, 45, 123456), 1114),
    ("timestamptz", "timestamptz", dt.datetime(2026, 11, 1, 12, 30, 45, 123456, tzinfo=PLUS2),
     dt.datetime(2026, 11, 1, 10, 30, 45, 123456, tzinfo=UTC), 1184),
    ("float8", "double precision", 0.25, 0.25, 701),
    ("uuid", "uuid", uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.UUID("12345678-1234-5678-1234-567812345678"), 2950),
    ("jsonb", "jsonb", Jsonb({"a": 1, "b": [1, 2, "x"]}), {"a": 1, "b": [1, 2, "x"]}, 3802),
    ("json", "json", Json({"k": "v"}), {"k": "v"}, 114),
    ("bytea", "bytea", b"\x00\x01\xfe\xff", b"\x00\x01\xfe\xff", 17),
]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("case", TYPE_CASES, ids=[c[0] for c in TYPE_CASES])
def test_roundtrip(target, case, binary):
    """Server-side binding: the value goes in Bind as text (%t) or binary (%b),
    comes back in text or binary results, with PostgreSQL's type OID."""
    name, sqltype, value, expected, oid = case
    fmt = "b" if binary else "t"
    table = f"rt_{name}_{'bin' if binary else 'txt'}"
    with connect(target, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(f"CREATE TABLE {table} (id bigint, v {sqltype})")
        with conn.cursor(binary=binary) as cur:
            cur.execute(f"INSERT INTO {table} (id, v) VALUES (%{fmt}, %{fmt})", (1, value))
            cur.execute(f"INSERT INTO {table} (id, v) VALUES (%{fmt}, %{fmt})", (2, None))
            cur.execute(f"SELECT v FROM {table} WHERE id = %{fmt}", (1,))
            assert cur.description[0].type_code == oid
            assert cur.fetchall() == [(expected,)]
            cur.execute(f"SELECT v FROM {table} WHERE v IS NULL")
            assert cur.fetchall() == [(None,)]


def test_result_type_modifiers(target):
    """RowDescription carries the type modifier: numeric(12,2), varchar(20)."""
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE typmods (amount numeric(12,2), code varchar(20), ts timestamptz)")
        cur = conn.execute("SELECT amount, code, ts FROM typmods")
        amount, code, ts = cur.description
        assert (amount.type_code, amount.precision, amount.scale) == (1700, 12, 2)
        assert (code.type_code, code.display_size) == (1043, 20)
        assert ts.type_code == 1184


def test_result_columns_name_their_table(target):
    """RowDescription names each plain column's table (pg_class OID, the
    same on every connection) and attribute number; a computed column has
    neither, as in PostgreSQL."""
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE origins (a integer, b text, c numeric(6,2))")
        cur = conn.execute("SELECT c, a, a + 1 AS d FROM origins")
        res = cur.pgresult
        oid = conn.execute("SELECT 'origins'::regclass::oid").fetchone()[0]
        assert [res.ftable(i) for i in range(3)] == [oid, oid, 0]
        assert [res.ftablecol(i) for i in range(3)] == [3, 1, 0]
    with connect(target, autocommit=True) as other:
        assert other.execute("SELECT 'origins'::regclass::oid").fetchone()[0] == oid
        name = other.execute("SELECT relname FROM pg_class WHERE oid = %s", (oid,)).fetchone()[0]
        assert name == "origins"


def test_values_default_and_generate_series_alias(target):
    """Two PostgreSQL forms that client-generated SQL uses: DEFAULT inside a
    multi-row VALUES list, and a set-returning function's alias as column name."""
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE defaults (id bigint, note text DEFAULT 'none', n integer DEFAULT 1)")
        conn.execute("INSERT INTO defaults VALUES (1, 'a', 2), (2, DEFAULT, DEFAULT)")
        assert conn.execute("SELECT id, note, n FROM defaults ORDER BY id").fetchall() == [(1, "a", 2), (2, "none", 1)]
        assert conn.execute("SELECT g FROM generate_series(1, 3) AS g").fetchall() == [(1,), (2,), (3,)]
        assert conn.execute("SELECT g.n FROM generate_series(1, 2) AS g(n)").fetchall() == [(1,), (2,)]


def test_untyped_array_parameters_in_text_form(target):
    """An array parameter the client leaves untyped and sends as text, as
    libpq-based drivers do (ADBC's `relkind = ANY($2)` with `{"r", "v"}`):
    blanks between elements, quoted elements, NULL and the empty string."""
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE kinds (k text, n numeric(12,2))")
        conn.execute("INSERT INTO kinds VALUES ('r', 1.50), ('v', 2.25), ('', 3.00), (NULL, 4.00)")
        pg = conn.pgconn
        sql = b"SELECT n FROM kinds WHERE k = ANY($1) ORDER BY n"
        got = {}
        for text in [b'{"r", "v"}', b"{ r , v }", b'{"",NULL}', b'{"NULL"}']:
            r = pg.exec_params(sql, [text], None, None, 0)
            assert r.status == pq.ExecStatus.TUPLES_OK, r.error_message
            got[text] = [r.get_value(i, 0) for i in range(r.ntuples)]
        assert got == {
            b'{"r", "v"}': [b"1.50", b"2.25"],
            b"{ r , v }": [b"1.50", b"2.25"],
            b'{"",NULL}': [b"3.00"],
            b'{"NULL"}': [],
        }
        # Arrays of other types sent as text with blanks, as ADBC spells them.
        for sql, text, want in [
            (b"SELECT count(*) FROM kinds WHERE n = ANY($1)", b"{1.50, 4}", b"2"),
            (b"SELECT count(*) FROM kinds WHERE length(k) = ANY($1)", b"{ 0 , NULL }", b"1"),
        ]:
            r = pg.exec_params(sql, [text], None, None, 0)
            assert r.status == pq.ExecStatus.TUPLES_OK, r.error_message
            assert r.get_value(0, 0) == want, text
        # Numerics of other scales than the column's compare by value.
        rows = conn.execute("SELECT n FROM kinds WHERE n = ANY(ARRAY[1.5, 2.250]) ORDER BY n").fetchall()
        assert rows == [(D("1.50"),), (D("2.25"),)]


def test_connect_parameter_status(target):
    with connect(target) as conn:
        info = conn.info
        assert info.server_version >= 90000, info.server_version
        assert info.parameter_status("server_encoding") == "UTF8"
        assert info.parameter_status("client_encoding") == "UTF8"
        assert info.parameter_status("integer_datetimes") == "on"
        assert info.parameter_status("standard_conforming_strings") == "on"
        assert (info.parameter_status("DateStyle") or "").startswith("ISO")
        assert info.transaction_status == pq.TransactionStatus.IDLE
        assert conn.execute("SELECT 1").fetchall() == [(1,)]


def test_datetime_parameters(target):
    """Naive and aware datetimes in INSERT, executemany and WHERE ts >= %s."""
    with connect(target, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("CREATE TABLE events (id bigint, ts timestamp, tstz timestamptz)")
        base = dt.datetime(2026, 11, 1, 8, 0, 0)
        conn.execute(
            "INSERT INTO events VALUES (%s, %s, %s)",
            (1, base, base.replace(tzinfo=UTC)),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO events VALUES (%s, %s, %s)",
                [
                    (i, base + dt.timedelta(hours=i), (base + dt.timedelta(hours=i)).replace(tzinfo=PLUS2))
                    for i in range(2, 6)
                ],
            )
            # naive datetime on a timestamptz column is read in the session time zone
            cur.execute("INSERT INTO events VALUES (%s, %s, %s)", (6, base, base))
        cutoff = base + dt.timedelta(hours=3)
        ids = conn.execute("SELECT id FROM events WHERE ts >= %s ORDER BY id", (cutoff,)).fetchall()
        assert ids == [(3,), (4,), (5,)]
        ids = conn.execute(
            "SELECT id FROM events WHERE tstz >= %s ORDER BY id", (cutoff.replace(tzinfo=UTC),)
        ).fetchall()
        # rows 2..5 are base+i hours at +02:00, i.e. 06:00+i UTC: only row 5 reaches 11:00 UTC
        assert ids == [(5,)]
        # a naive parameter (sent as `timestamp`) against timestamptz: session time zone
        ids = conn.execute("SELECT id FROM events WHERE tstz > %s ORDER BY id", (base,)).fetchall()
        assert ids == [(3,), (4,), (5,)]
        rows = conn.execute("SELECT tstz FROM events WHERE id IN (1, 6) ORDER BY id").fetchall()
        assert rows == [(base.replace(tzinfo=UTC),), (base.replace(tzinfo=UTC),)]
        d = conn.execute("SELECT count(*) FROM events WHERE ts::date = %s", (dt.date(2026, 11, 1),)).fetchone()
        assert d == (6,)
        # a timedelta is an interval, also beside a timestamp it is subtracted from
        span = dt.timedelta(days=1, hours=3, minutes=4, seconds=5)
        assert conn.execute("SELECT %s::interval", (span,)).fetchone() == (span,)
        ids = conn.execute(
            "SELECT id FROM events WHERE ts > %s - %s ORDER BY id",
            (base + dt.timedelta(hours=5), dt.timedelta(hours=2)),
        ).fetchall()
        assert ids == [(4,), (5,)]
        row = conn.execute("SELECT %s + %s, now() - %s < now()", (base, span, span)).fetchone()
        assert row == (base + span, True)


def test_scalar_parameters(target):
    """Untyped parameters in SELECT lists get their type from the client's OID."""
    with connect(target) as conn:
        row = conn.execute(
            "SELECT %s, %s, %s, %s, %s, %s, %s",
            (D("1.50"), 42, "x", True, dt.date(2026, 1, 2), uuid.UUID(int=5), None),
        ).fetchone()
        assert row == (D("1.50"), 42, "x", True, dt.date(2026, 1, 2), uuid.UUID(int=5), None)
        row = conn.execute("SELECT %s::jsonb ->> 'k'", (Jsonb({"k": "v"}),)).fetchone()
        assert row == ("v",)
        row = conn.execute("SELECT %s + 1, %s || 'b'", (41, "a")).fetchone()
        assert row == (42, "ab")


def test_executemany(target):
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE many (id bigint, label text, amount numeric(12,2))")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO many (id, label, amount) VALUES (%s, %s, %s)",
                [(i, f"l{i}", D(i) / 4) for i in range(200)],
            )
            assert cur.rowcount == 200
            # returning=True fetches each statement's rows
            cur.executemany(
                "INSERT INTO many (id, label) VALUES (%s, %s) RETURNING id",
                [(1000 + i, "r") for i in range(3)],
                returning=True,
            )
            got = []
            while True:
                got.extend(cur.fetchall())
                if not cur.nextset():
                    break
            assert got == [(1000,), (1001,), (1002,)]
        assert conn.execute("SELECT count(*), sum(amount) FROM many").fetchone() == (203, D("4975.00"))


def test_copy_in_text_and_out(target):
    with connect(target, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("CREATE TABLE copied (id bigint, name text, amount numeric(12,2), ts timestamptz)")
        ts = dt.datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
        with conn.cursor() as cur:
            with cur.copy("COPY copied (id, name, amount, ts) FROM STDIN") as copy:
                for i in range(50):
                    copy.write_row((i, f"n\t{i}" if i == 3 else f"n{i}", D(i) + D("0.5"), ts))
                copy.write_row((99, None, None, None))
            assert cur.rowcount == 51
            with cur.copy("COPY (SELECT id, name, amount, ts FROM copied ORDER BY id) TO STDOUT") as copy:
                copy.set_types(["int8", "text", "numeric", "timestamptz"])
                rows = list(copy.rows())
            assert len(rows) == 51
            assert rows[3] == (3, "n\t3", D("3.50"), ts)
            assert rows[-1] == (99, None, None, None)
            with cur.copy("COPY copied TO STDOUT (FORMAT csv, HEADER)") as copy:
                data = b"".join(bytes(b) for b in copy)
            lines = data.decode().splitlines()
            assert lines[0] == "id,name,amount,ts"
            assert len(lines) == 52


def test_copy_binary_in_and_out(target):
    with connect(target, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("CREATE TABLE copied_bin (id bigint, name text, amount numeric(12,2), day date, ts timestamptz, ok boolean)")
        rows = [
            (i, f"b{i}", D(i) / 8, dt.date(2026, 1, 1) + dt.timedelta(days=i),
             dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=i), i % 2 == 0)
            for i in range(20)
        ]
        types = ["int8", "text", "numeric", "date", "timestamptz", "bool"]
        with conn.cursor() as cur:
            with cur.copy("COPY copied_bin FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for r in rows:
                    copy.write_row(r)
            with cur.copy("COPY (SELECT * FROM copied_bin ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
                copy.set_types(types)
                got = list(copy.rows())
        assert got == [(r[0], r[1], r[2].quantize(D("0.01"), rounding=decimal.ROUND_HALF_UP), *r[3:]) for r in rows]


def test_numeric_zero_keeps_its_scale(target):
    """A numeric zero in binary results and binary COPY carries its
    display scale (`0.00`), as PostgreSQL sends it; readers that print
    the value (ADBC, Polars) show it."""
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE zero_scale (id bigint, amount numeric(12,2))")
        conn.execute("INSERT INTO zero_scale VALUES (1, 0), (2, 1.5), (3, NULL)")
        query = "SELECT amount, 0.0::numeric(4,1) FROM zero_scale ORDER BY id"
        for binary in (False, True):
            rows = conn.cursor(binary=binary).execute(query).fetchall()
            assert [tuple(str(v) for v in r) for r in rows] == [
                ("0.00", "0.0"), ("1.50", "0.0"), ("None", "0.0")], binary
        with conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(["numeric", "numeric"])
            got = [tuple(str(v) for v in r) for r in copy.rows()]
        assert got == [("0.00", "0.0"), ("1.50", "0.0"), ("None", "0.0")]


def test_quotients_and_averages_have_postgres_places(target):
    """A numeric quotient and an average reach the client with the places
    PostgreSQL gives each value, in text and in binary results."""
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE quot (a numeric(10,2), b int)")
        conn.execute("INSERT INTO quot VALUES (95000.50, 12), (1, 3), (120000, 12)")
        query = ("SELECT a / b, avg(a) OVER (), a / 3.0 FROM quot ORDER BY a")
        expected = [
            ("0.33333333333333333333", "71667.166666666667", "0.33333333333333333333"),
            ("7916.7083333333333333", "71667.166666666667", "31666.833333333333"),
            ("10000.0000000000000000", "71667.166666666667", "40000.000000000000"),
        ]
        for binary in (False, True):
            rows = conn.cursor(binary=binary).execute(query).fetchall()
            assert [tuple(str(v) for v in r) for r in rows] == expected, binary


def test_copy_binary_out_sends_declared_types(target):
    """Binary COPY TO sends each value in its declared type's binary form
    (uuid in 16 bytes, jsonb after its version byte, character(n) padded),
    with and without an array column beside them."""
    with connect(target, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("CREATE TABLE copy_types (u uuid, j jsonb, c char(3), t timestamptz, d date, "
                     "s smallint, r real, n numeric(10,3), b bytea, a integer[])")
        conn.execute("INSERT INTO copy_types VALUES ('12345678-1234-5678-1234-567812345678', "
                     "'{\"a\": 1}', 'x', '2024-01-02 03:04:05+00', '1999-12-31', 7, 1.5, -12.5, "
                     "'\\x0102', '{1,2}'), (NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL)")
        types = ["uuid", "jsonb", "bpchar", "timestamptz", "date", "int2", "float4", "numeric", "bytea"]
        expected = [
            (uuid.UUID("12345678-1234-5678-1234-567812345678"), {"a": 1}, "x  ",
             dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), dt.date(1999, 12, 31), 7, 1.5, "-12.500", b"\x01\x02"),
            (None, None, None, None, None, None, None, "0.000", None),
        ]
        for columns in ("u, j, c, t, d, s, r, n, b", "u, j, c, t, d, s, r, n, b, a"):
            with conn.cursor().copy(
                    f"COPY (SELECT {columns} FROM copy_types ORDER BY n) TO STDOUT (FORMAT BINARY)") as copy:
                copy.set_types(types + (["int4[]"] if columns.endswith("a") else []))
                got = [r[:7] + (str(r[7]),) + (None if r[8] is None else bytes(r[8]),) for r in copy.rows()]
            assert got == expected, columns


def test_named_cursor_fetchmany(target):
    """Server-side cursor: DECLARE ... CURSOR, FETCH FORWARD n, CLOSE."""
    with connect(target) as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE seq (n bigint)")
            cur.execute("INSERT INTO seq SELECT * FROM generate_series(1, 1000)")
        conn.commit()
        with conn.cursor(name="big_scan") as cur:
            cur.itersize = 100
            cur.execute("SELECT n FROM seq ORDER BY n")
            assert cur.fetchmany(10) == [(i,) for i in range(1, 11)]
            assert cur.fetchone() == (11,)
            rest = cur.fetchall()
            assert len(rest) == 989 and rest[-1] == (1000,)
        with conn.cursor(name="param_scan") as cur:
            cur.execute("SELECT n FROM seq WHERE n > %s ORDER BY n", (995,))
            assert [r for r in cur] == [(996,), (997,), (998,), (999,), (1000,)]
        conn.commit()
        with conn.cursor(name="held", withhold=True) as cur:
            cur.execute("SELECT n FROM seq WHERE n <= 3 ORDER BY n")
            conn.commit()
            assert cur.fetchall() == [(1,), (2,), (3,)]


def test_stream(target):
    """cursor.stream(): rows arrive one by one (single-row mode)."""
    with connect(target) as conn:
        with conn.cursor() as cur:
            got = [r[0] for r in cur.stream("SELECT n FROM generate_series(1, 500) AS g(n)")]
        assert got == list(range(1, 501))


def test_pipeline_mode(target):
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE piped (id bigint, v text)")
        with conn.pipeline():
            c1 = conn.execute("INSERT INTO piped VALUES (%s, %s)", (1, "a"))
            c2 = conn.execute("INSERT INTO piped VALUES (%s, %s)", (2, "b"))
            c3 = conn.execute("SELECT id, v FROM piped ORDER BY id")
            c4 = conn.execute("SELECT %s::bigint * 2", (21,))
        assert c1.rowcount == 1 and c2.rowcount == 1
        assert c3.fetchall() == [(1, "a"), (2, "b")]
        assert c4.fetchone() == (42,)
        # an error in a pipeline aborts the rest of it, the connection stays usable
        with pytest.raises(psycopg.errors.UndefinedTable):
            with conn.pipeline():
                conn.execute("SELECT 1")
                conn.execute("SELECT * FROM no_such_table")
        assert conn.execute("SELECT count(*) FROM piped").fetchone() == (2,)


def test_prepared_statements_then_ddl(target):
    """prepare=True, then DROP: psycopg then sends DEALLOCATE ALL."""
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE prep (id bigint, v text)")
        conn.execute("INSERT INTO prep VALUES (1, 'one'), (2, 'two')")
        for _ in range(3):
            assert conn.execute("SELECT v FROM prep WHERE id = %s", (2,), prepare=True).fetchone() == ("two",)
        names = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
        assert names >= 1
        # DROP TABLE makes psycopg clear its cache with DEALLOCATE ALL
        conn.execute("DROP TABLE prep")
        conn.execute("CREATE TABLE prep (id bigint, v text, extra int)")
        conn.execute("INSERT INTO prep VALUES (2, 'deux', 0)")
        assert conn.execute("SELECT v FROM prep WHERE id = %s", (2,), prepare=True).fetchone() == ("deux",)
        # automatic preparation after prepare_threshold executions
        conn.prepare_threshold = 2
        for i in range(5):
            assert conn.execute("SELECT %s::bigint + id FROM prep", (i,)).fetchone() == (i + 2,)
        conn.execute("DEALLOCATE ALL")
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


def test_transaction_status(target):
    with connect(target) as conn:
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        conn.execute("SELECT 1")
        assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
        assert conn.info.transaction_status == pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction) as e:
            conn.execute("SELECT 1")
        assert e.value.sqlstate == "25P02"
        conn.rollback()
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        with conn.transaction():
            conn.execute("CREATE TABLE tx_status (id bigint)")
            conn.execute("INSERT INTO tx_status VALUES (1)")
        conn.commit()
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        assert conn.execute("SELECT id FROM tx_status").fetchall() == [(1,)]
        conn.rollback()


def test_command_tags(target):
    """The tag of each statement, as psycopg shows it (statusmessage) and
    counts it (rowcount): what scripts and migration tools log and check."""
    cases = [
        ("CREATE TABLE tags_t (k bigint, v text)", "CREATE TABLE", -1),
        ("INSERT INTO tags_t VALUES (1, 'a'), (2, 'b'), (3, 'c')", "INSERT 0 3", 3),
        ("CREATE TABLE tags_ctas AS SELECT k FROM tags_t WHERE k > 1", "SELECT 2", 2),
        ("CREATE MATERIALIZED VIEW tags_mv AS SELECT k, v FROM tags_t", "SELECT 3", 3),
        ("CREATE MATERIALIZED VIEW IF NOT EXISTS tags_mv AS SELECT k FROM tags_t", "CREATE MATERIALIZED VIEW", -1),
        ("UPDATE tags_t SET v = 'x' WHERE k >= 2", "UPDATE 2", 2),
        ("REFRESH MATERIALIZED VIEW tags_mv", "REFRESH MATERIALIZED VIEW", -1),
        ("DELETE FROM tags_t WHERE k = 1", "DELETE 1", 1),
        ("CREATE VIEW tags_v AS SELECT k FROM tags_t", "CREATE VIEW", -1),
        ("SELECT k FROM tags_mv ORDER BY k", "SELECT 3", 3),
        ("DROP VIEW tags_v", "DROP VIEW", -1),
        ("DROP MATERIALIZED VIEW tags_mv", "DROP MATERIALIZED VIEW", -1),
    ]
    with connect(target, autocommit=True) as conn:
        got = []
        for sql, _, _ in cases:
            cur = conn.execute(sql)
            got.append((sql, cur.statusmessage, cur.rowcount))
        assert got == cases


def test_errors_keep_connection_usable(target):
    with connect(target, autocommit=True) as conn:
        cases = [
            ("SELECT * FROM missing_table", "42P01"),
            ("SELECT missing_column FROM (SELECT 1 AS a) t", "42703"),
            ("SELEC 1", "42601"),
            ("SELECT 1 / 0", "22012"),
            ("SELECT 'abc'::int", "22P02"),
        ]
        for sql, state in cases:
            with pytest.raises(psycopg.Error) as e:
                conn.execute(sql)
            assert e.value.sqlstate == state, (sql, e.value.sqlstate, str(e.value))
            assert conn.execute("SELECT 2").fetchone() == (2,)
        conn.execute("CREATE TABLE uniq (id bigint PRIMARY KEY)")
        conn.execute("INSERT INTO uniq VALUES (1)")
        with pytest.raises(psycopg.errors.UniqueViolation) as e:
            conn.execute("INSERT INTO uniq VALUES (%s)", (1,))
        assert e.value.sqlstate == "23505"
        assert e.value.diag.constraint_name == "uniq_pkey"
