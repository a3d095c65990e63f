"""The fixed schema both servers are loaded with.

Four tables, small enough that every join of three of them stays cheap, with
the values that break engines: NULLs in every column, duplicate rows and keys,
an empty table, integer extremes, numerics at the edge of their declared
precision and scale, month ends and leap days, timestamps with and without
fractions of a second, before and after the epoch.

Text holds lower-case ASCII letters and digits (plus the empty string), so
byte order and any collation agree and upper()/lower() make no case ties.

Every table has `id integer NOT NULL`, unique within the table: the
generator uses it as a row key when it needs a total order (window
functions that depend on row order, LIMIT).
"""

from __future__ import annotations

from dataclasses import dataclass

# Logical types the generator tracks. The SQL spelling is in SQL_TYPE.
INT = "int"
BIGINT = "bigint"
NUMERIC = "numeric"
FLOAT = "float"
TEXT = "text"
BOOL = "bool"
DATE = "date"
TS = "timestamp"
TSTZ = "timestamptz"

ALL_TYPES = (INT, BIGINT, NUMERIC, FLOAT, TEXT, BOOL, DATE, TS, TSTZ)
NUMBER_TYPES = (INT, BIGINT, NUMERIC, FLOAT)

SQL_TYPE = {
    INT: "integer",
    BIGINT: "bigint",
    NUMERIC: "numeric(18,6)",
    FLOAT: "double precision",
    TEXT: "text",
    BOOL: "boolean",
    DATE: "date",
    TS: "timestamp",
    TSTZ: "timestamptz",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # logical type
    sql_type: str  # declared type
    # Holds values at the edge of the type's range: arithmetic on it
    # overflows, so the generator uses it in arithmetic only now and then.
    extreme: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    rows: tuple[tuple, ...]  # SQL literals (strings) or None for NULL

    def create_sql(self) -> str:
        cols = ", ".join(
            f"{c.name} {c.sql_type}{' NOT NULL' if c.name == 'id' else ''}"
            for c in self.columns
        )
        return f"CREATE TABLE {self.name} ({cols})"

    def insert_sql(self) -> list[str]:
        """One INSERT per row: a value one server refuses shows up alone."""
        out = []
        names = ", ".join(c.name for c in self.columns)
        for row in self.rows:
            vals = ", ".join("NULL" if v is None else v for v in row)
            out.append(f"INSERT INTO {self.name} ({names}) VALUES ({vals})")
        return out

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _c(name, typ, sql_type=None, extreme=False):
    return Column(name, typ, sql_type or SQL_TYPE[typ], extreme)


def _q(s):
    return None if s is None else "'" + s + "'"


def _d(s):
    return None if s is None else f"DATE '{s}'"


def _ts(s):
    return None if s is None else f"TIMESTAMP '{s}'"


def _tz(s):
    return None if s is None else f"TIMESTAMPTZ '{s}'"


def _n(s):
    return None if s is None else str(s)


def _f(s):
    # Floats go in as strings cast to double precision, so that no server
    # reads them as numeric literals first and rounds differently (Sluice
    # reads the literal 1e15 as 999999999999999.9). t1's are multiples of 1/8, small except ±1e15
    # (whose ulp is 1/8): their sums are exact in any order, so the two
    # servers cannot differ by the order they add rows in. t3.f8 has 1e-5,
    # in a table without large values (a relative error only).
    return None if s is None else f"CAST('{s}' AS double precision)"


def _b(v):
    return None if v is None else ("true" if v else "false")


# Float columns whose values cancel in sums: an aggregate over them may
# differ by the order of addition (see compare.CANCELLING_ABS_TOL).
CANCELLING = ("fx",)

T1_COLS = (
    _c("id", INT),
    _c("k", INT),
    _c("i4", INT, extreme=True),
    _c("i8", BIGINT, extreme=True),
    _c("n2", NUMERIC, "numeric(12,2)"),
    _c("n6", NUMERIC, "numeric(18,6)"),
    _c("f8", FLOAT),
    # ±1e15: a float that prints in exponent form and cancels in sums
    _c("fx", FLOAT, extreme=True),
    _c("s", TEXT),
    _c("b", BOOL),
    _c("d", DATE),
    _c("ts", TS),
)

_T1 = [
    # id, k, i4, i8, n2, n6, f8, fx, s, b, d, ts
    (1, 1, 10, 100, "12.50", "0.000001", "1.5", "0.5", "apple", True, "2024-02-29", "2024-02-29 13:45:00"),
    (2, 2, -5, -50, "-3.75", "-123.456789", "-2.25", None, "banana", False, "2024-01-31", "2024-01-31 23:59:59.999999"),
    (3, None, 0, 0, "0.00", "0.000000", "0", "0", "cherry", None, "2023-12-31", "2023-12-31 00:00:00"),
    (4, 1, 10, 100, "12.50", "0.000001", "1.5", "0.5", "apple", True, "2024-02-29", "2024-02-29 13:45:00"),
    (5, 3, 2147483647, 9223372036854775807, "9999999999.99", "999999999999.999999", "64", "1e15", "zeta9", True, "2000-02-29", "2000-02-29 12:00:00"),
    (6, 3, -2147483648, -9223372036854775808, "-9999999999.99", "-999999999999.999999", "-32", "-1e15", "a1", False, "1970-01-01", "1969-12-31 23:59:59"),
    (7, None, None, None, None, None, None, None, None, None, None, None),
    (8, 4, 7, 7, "0.01", "0.333333", "0.375", "2.5", "", False, "2024-03-01", "2024-03-01 00:00:00.5"),
    (9, 2, 3, 3000000000, "1234.56", "2.718282", "3.125", "-0.125", "b2", True, "2023-02-28", "2023-02-28 08:30:00"),
    (10, 0, -1, -1, "-0.01", "-0.000001", "-0.5", "1e15", "date", None, "2024-12-31", "2024-12-31 23:59:59"),
    (11, 5, 42, 42, "100.00", "100.000000", "100", "12.375", "elder", True, "2024-04-30", "2024-04-30 12:34:56.789"),
    (12, 2, 3, 3, "2.50", "2.500000", "2.5", None, "fig", False, "2024-06-30", "2024-06-30 06:00:00"),
    (13, 1, None, 8, "7.77", None, None, "-4", "grape", True, None, "2024-02-29 00:00:00"),
    (14, 6, 100, -100, "-0.50", "0.500000", "-0.125", "0.25", "b2", None, "2021-02-28", None),
    (15, 4, 9, 9, "5.55", "5.555555", "0.25", "7", "kiwi", True, "1999-12-31", "1999-12-31 23:59:59"),
    (16, 1, -7, 70, "3.33", "-3.333333", "2.5", "-1e15", "lemon", False, "2024-02-01", "2024-02-01 00:00:00"),
    (17, None, 3, 3, "2.50", "2.500000", "2.5", None, "fig", False, "2024-06-30", "2024-06-30 06:00:00"),
    (18, 5, 1, 1, "1.00", "1.000000", "1", "1", "mango", True, "2024-11-30", "2024-11-30 18:00:00.000001"),
]

T1 = Table(
    "t1",
    T1_COLS,
    tuple(
        (str(r[0]), _n(r[1]), _n(r[2]), _n(r[3]), _n(r[4]), _n(r[5]), _f(r[6]), _f(r[7]),
         _q(r[8]), _b(r[9]), _d(r[10]), _ts(r[11]))
        for r in _T1
    ),
)

T2_COLS = (
    _c("id", INT),
    _c("k", INT),
    _c("n2", NUMERIC, "numeric(12,2)"),
    _c("s", TEXT),
    _c("b", BOOL),
    _c("d", DATE),
    _c("tz", TSTZ),
)

_T2 = [
    (1, 1, "12.50", "apple", True, "2024-02-29", "2024-02-29 13:45:00+00"),
    (2, 2, "0.00", "b2", False, "2024-01-31", "2024-01-31 12:00:00+00"),
    (3, 2, "-3.75", None, None, "2023-12-31", None),
    (4, None, "5.55", "kiwi", True, None, "2000-01-01 00:00:00+00"),
    (5, 7, None, "mango", False, "2024-03-31", "2024-03-31 23:00:00+00"),
    (6, 3, "100.00", "zeta9", True, "2000-02-29", "2000-02-29 12:00:00+00"),
    (7, None, None, None, None, None, None),
    (8, 1, "1.00", "apple", None, "2024-02-29", "2024-02-29 23:59:59.5+00"),
    (9, 8, "9999999999.99", "nut", True, "2025-01-01", "1970-01-01 00:00:00+00"),
    (10, 0, "-0.01", "", False, "1999-12-31", "1999-12-31 23:59:59+00"),
    (11, 5, "2.50", "fig", True, "2024-06-30", "2024-06-30 06:00:00+00"),
]

T2 = Table(
    "t2",
    T2_COLS,
    tuple(
        (str(r[0]), _n(r[1]), _n(r[2]), _q(r[3]), _b(r[4]), _d(r[5]), _tz(r[6]))
        for r in _T2
    ),
)

T3_COLS = (
    _c("id", INT),
    _c("k", INT),
    _c("s", TEXT),
    _c("f8", FLOAT),
)

_T3 = [
    (1, 1, "one", "1"),
    (2, 2, "two", "2"),
    (3, 2, "two", None),
    (4, None, "none", "-1"),
    (5, 9, "nine", "9.5"),
    (6, 3, None, "1e-5"),
    (7, 2, "seven", "0.25"),
]

T3 = Table(
    "t3",
    T3_COLS,
    tuple((str(r[0]), _n(r[1]), _q(r[2]), _f(r[3])) for r in _T3),
)

# The empty table: joins, aggregates and subqueries over no rows.
T0 = Table(
    "t0",
    (_c("id", INT), _c("k", INT), _c("s", TEXT), _c("n2", NUMERIC, "numeric(12,2)")),
    (),
)

TABLES = (T1, T2, T3, T0)
# How often the generator picks each table (the empty one less often).
TABLE_WEIGHTS = (5, 4, 3, 1)


def setup_statements() -> list[str]:
    out = []
    for t in TABLES:
        out.append(f"DROP TABLE IF EXISTS {t.name}")
        out.append(t.create_sql())
        out.extend(t.insert_sql())
    return out
