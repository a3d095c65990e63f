"""Comparing two outcomes of one query, and naming the difference.

Values are compared after normalising their text form by column type:
integers and numerics exactly (as decimals), floats with a small relative
tolerance (and a float against a numeric the same way, when the two servers
disagree on the type), everything else as text. Numeric scale (`1.50` vs
`1.5`), column types and column names are compared too, but reported as
their own, lesser kinds of difference: the rows are right, their form is not.

Kinds, most important first:
  wrong_result     both answered, with different rows (or a different number
                   of columns)
  tlp, norec       a metamorphic relation broke on Sluice (and holds on
                   PostgreSQL)
  flaky            a difference that a second run of the query did not show
  crash            the Sluice process died or dropped the connection
  numeric_precision  numerics that agree only to the precision of the less
                   precise side (avg giving 1.197777 for 1.19777778)
  float_rounding   floats that differ by more than the tolerance but less
                   than a sum over rows near 1e12 can change with the order
                   of addition (relative 1e-6, absolute 1e-3): most likely
                   not a bug, listed so that it can be checked
  internal_error   Sluice answered XX000 (always a failure)
  sluice_error     PostgreSQL answered, Sluice failed with another SQLSTATE
  timeout          PostgreSQL answered, Sluice ran past the time limit
  pg_error_only    PostgreSQL failed (say 22003 overflow), Sluice answered
  sqlstate         both failed, in different SQLSTATE classes
  column_type      same rows, different column types
  numeric_scale    same values, different numeric scale
  column_name      same rows and types, different column names
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from client import TYPE_NAMES, Outcome

INT_OIDS = {20, 21, 23, 26}
FLOAT_OIDS = {700, 701}
NUMERIC_OID = 1700
TIMESTAMPTZ_OID = 1184
TIMESTAMP_OID = 1114
DATE_OID = 1082
# Floats: relative 1e-9, or absolute 1e-5 (the rounding error of a sum of
# rows near ±1e10, as numeric(12,2) cast to float gives, in another order).
REL_TOL = 1e-9
ABS_TOL = 1e-5

KIND_ORDER = ["wrong_result", "tlp", "norec", "flaky", "crash", "numeric_precision",
              "float_rounding", "internal_error",
              "sluice_error",
              "timeout", "pg_error_only", "sqlstate", "column_type", "numeric_scale",
              "column_name"]


def norm_value(v: str | None, oid: int):
    """('n', Decimal, scale) | ('f', float) | ('s', text) | None"""
    if v is None:
        return None
    if oid in INT_OIDS:
        try:
            return ("n", Decimal(v), 0)
        except InvalidOperation:
            return ("s", v)
    if oid == NUMERIC_OID:
        try:
            d = Decimal(v)
        except InvalidOperation:
            return ("s", v)
        if not d.is_finite():
            return ("f", float(d))
        return ("n", d, max(0, -d.as_tuple().exponent))
    if oid in FLOAT_OIDS:
        try:
            return ("f", float(v))
        except ValueError:
            return ("s", v)
    if oid == TIMESTAMPTZ_OID and v.endswith("+00"):
        # the session is in UTC: the same instant as a timestamp, so that a
        # timestamptz/timestamp mix-up reads as a type difference
        return ("s", v[:-3])
    return ("s", v)


def floats_close(x: float, y: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= max(REL_TOL * max(abs(x), abs(y)), ABS_TOL)


def values_equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a[0] == "n" and b[0] == "n":
        return a[1] == b[1]
    if a[0] in "nf" and b[0] in "nf":
        return floats_close(float(a[1]), float(b[1]))
    return a[0] == b[0] and a[1] == b[1]


def values_close(a, b) -> bool:
    """Equal up to the precision of the less precise numeric (1.197777 vs
    1.19777778): a precision loss, not a different answer."""
    if values_equal(a, b):
        return True
    if a is None or b is None or a[0] != "n" or b[0] != "n":
        return False
    scale = min(a[2], b[2])
    return abs(a[1] - b[1]) < Decimal(1).scaleb(-scale)


def values_float_loose(a, b, absolute=1e-3) -> bool:
    """Equal, or floats within what adding rows in another order can change
    when the rows hold values near 1e12 (numeric(18,6) cast to float), or
    `absolute` when they hold values that cancel (see `classify`)."""
    if values_equal(a, b):
        return True
    # only when PostgreSQL computes in floats too: a float standing in for
    # an exact numeric (avg(bigint) as double precision) is judged strictly
    if a is None or b is None or a[0] != "f" or b[0] != "f":
        return False
    x, y = float(a[1]), float(b[1])
    return abs(x - y) <= max(1e-6 * max(abs(x), abs(y)), absolute)


def rows_equal(r1, r2, eq=values_equal) -> bool:
    return len(r1) == len(r2) and all(eq(a, b) for a, b in zip(r1, r2))


def _sort_key_value(v):
    if v is None:
        return (0, 0, "")
    if v[0] in "nf":
        x = float(v[1])
        if math.isnan(x):
            return (1, float("inf"), "nan")
        return (1, float(f"{x:.6g}"), "")
    return (2, 0, v[1])


def sort_key(row):
    return tuple(_sort_key_value(v) for v in row)


def normalise(out: Outcome):
    oids = [c[1] for c in out.columns]
    return [tuple(norm_value(v, oids[i]) for i, v in enumerate(r)) for r in out.rows]


def multiset_diff(a: list, b: list, eq=values_equal):
    """(rows only in a, rows only in b), matching rows with tolerance."""
    sa, sb = sorted(a, key=sort_key), sorted(b, key=sort_key)
    if len(sa) == len(sb) and all(rows_equal(x, y, eq) for x, y in zip(sa, sb)):
        return [], []
    if len(a) * len(b) > 25_000_000:
        # too big to match one by one: report the sorted difference
        return sa, sb
    remaining = list(sb)
    only_a = []
    for r in sa:
        for j, s in enumerate(remaining):
            if rows_equal(r, s, eq):
                del remaining[j]
                break
        else:
            only_a.append(r)
    return only_a, remaining


def list_diff(a: list, b: list, eq=values_equal):
    """First position where two ordered results differ, or None."""
    for i, (x, y) in enumerate(zip(a, b)):
        if not rows_equal(x, y, eq):
            return i
    if len(a) != len(b):
        return min(len(a), len(b))
    return None


def show_row(r):
    out = []
    for v in r:
        if v is None:
            out.append(None)
        elif v[0] == "n":
            out.append(str(v[1]))
        elif v[0] == "f":
            out.append(repr(v[1]))
        else:
            out.append(v[1])
    return out


@dataclass
class Verdict:
    kind: str  # "agree" or one of KIND_ORDER
    detail: dict = field(default_factory=dict)

    @property
    def agree(self):
        return self.kind == "agree"


def error_class(state: str | None) -> str:
    return (state or "")[:2]


# A sum of floats near ±1e15 that cancel (the `fx` column) changes by about
# 1e15 * 2**-52 = 0.22 for each addition made in another order.
CANCELLING_ABS_TOL = 1.0


def classify(pg: Outcome, sl: Outcome, ordered: bool, cancelling: bool = False) -> Verdict:
    """`cancelling`: the query reads floats that cancel in sums, so that a
    difference up to CANCELLING_ABS_TOL is a float_rounding."""
    loose = functools.partial(values_float_loose,
                              absolute=CANCELLING_ABS_TOL if cancelling else 1e-3)
    if not pg.ok and pg.timeout:
        return Verdict("skipped", {"why": "PostgreSQL timed out"})
    if pg.ok and not sl.ok:
        if sl.sqlstate == "XX000":
            return Verdict("internal_error", {"sqlstate": sl.sqlstate})
        if sl.timeout or sl.sqlstate == "57014":
            return Verdict("timeout", {})
        return Verdict("sluice_error", {"sqlstate": sl.sqlstate})
    if not pg.ok and sl.ok:
        return Verdict("pg_error_only", {"pg_sqlstate": pg.sqlstate})
    if not pg.ok and not sl.ok:
        if sl.sqlstate == "XX000":
            return Verdict("internal_error", {"sqlstate": sl.sqlstate, "pg_sqlstate": pg.sqlstate})
        if error_class(pg.sqlstate) != error_class(sl.sqlstate):
            return Verdict("sqlstate", {"pg_sqlstate": pg.sqlstate, "sqlstate": sl.sqlstate})
        return Verdict("agree")
    # both answered
    if len(pg.columns) != len(sl.columns):
        return Verdict("wrong_result", {"why": f"{len(pg.columns)} columns vs {len(sl.columns)}"})
    a, b = normalise(pg), normalise(sl)
    a, b = _date_vs_timestamp(pg, sl, a, b)
    if ordered:
        i = list_diff(a, b)
        if i is not None:
            kind = ("numeric_precision" if list_diff(a, b, values_close) is None
                    else "float_rounding" if list_diff(a, b, loose) is None
                    else "wrong_result")
            return Verdict(kind, {
                "why": f"ordered results differ at row {i} ({len(a)} vs {len(b)} rows)",
                "pg_row": show_row(a[i]) if i < len(a) else None,
                "sluice_row": show_row(b[i]) if i < len(b) else None,
            })
    else:
        only_pg, only_sl = multiset_diff(a, b)
        if only_pg or only_sl:
            kind = ("numeric_precision" if multiset_diff(a, b, values_close) == ([], [])
                    else "float_rounding"
                    if multiset_diff(a, b, loose) == ([], [])
                    else "wrong_result")
            return Verdict(kind, {
                "why": f"{len(a)} vs {len(b)} rows; {len(only_pg)} only in PostgreSQL, "
                       f"{len(only_sl)} only in Sluice",
                "only_pg": [show_row(r) for r in only_pg[:10]],
                "only_sluice": [show_row(r) for r in only_sl[:10]],
            })
    type_diffs = []
    for (pn, po, pm), (sn, so, sm) in zip(pg.columns, sl.columns):
        if po != so:
            type_diffs.append(f"{TYPE_NAMES.get(po, po)}->{TYPE_NAMES.get(so, so)}")
    if type_diffs:
        return Verdict("column_type", {"types": type_diffs})
    scale_diffs = _scale_diffs(pg, sl, a, b, ordered)
    if scale_diffs:
        return Verdict("numeric_scale", {"examples": scale_diffs[:5]})
    names = [c[0] for c in pg.columns], [c[0] for c in sl.columns]
    if names[0] != names[1]:
        return Verdict("column_name", {"pg": names[0], "sluice": names[1]})
    return Verdict("agree")


def _date_vs_timestamp(pg, sl, a, b):
    """A date on one side and a timestamp at midnight on the other are the
    same value in different types: let the type check report it."""
    cols = [i for i, (p, s) in enumerate(zip(pg.columns, sl.columns))
            if {p[1], s[1]} in ({DATE_OID, TIMESTAMP_OID}, {DATE_OID, TIMESTAMPTZ_OID})]
    if not cols:
        return a, b

    def fix(rows):
        out = []
        for r in rows:
            r = list(r)
            for i in cols:
                v = r[i]
                if v is not None and v[0] == "s" and v[1].endswith(" 00:00:00"):
                    r[i] = ("s", v[1][:-9])
            out.append(tuple(r))
        return out
    return fix(a), fix(b)


def _scale_diffs(pg, sl, a, b, ordered):
    numeric_cols = [i for i, c in enumerate(pg.columns) if c[1] == NUMERIC_OID]
    if not numeric_cols:
        return []
    if not ordered:
        # Pair rows by value, then look at the scales.
        a = sorted(a, key=sort_key)
        b = sorted(b, key=sort_key)
    out = []
    for ra, rb in zip(a, b):
        for i in numeric_cols:
            va, vb = ra[i], rb[i]
            if va and vb and va[0] == "n" and vb[0] == "n" and va[2] != vb[2]:
                out.append({"column": i + 1, "pg": str(va[1]), "sluice": str(vb[1])})
    return out


_ALIAS = re.compile(r"\b(a|dq|w|cte|x|c)\d+\b")
_NUM = re.compile(r"\d+")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def norm_message(msg: str | None, n=160, quoted=True) -> str:
    """The message with what varies from query to query masked: aliases,
    numbers and (unless quoted) quoted strings."""
    m = (msg or "").split("\n")[0]
    if not quoted:
        m = _QUOTED.sub("Q", m)
    m = _ALIAS.sub("A", m)
    m = _NUM.sub("#", m)
    return m[:n]


def group_key(v: Verdict, sl: Outcome | None, pg: Outcome | None) -> str:
    """What a mismatch is filed under: one line per likely root cause."""
    k = v.kind
    if k in ("sluice_error", "internal_error"):
        return f"{k} {sl.sqlstate} {norm_message(sl.message, 72)}"
    if k == "sqlstate":
        return f"{k} pg={pg.sqlstate} sluice={sl.sqlstate} {norm_message(sl.message, 60)}"
    if k == "pg_error_only":
        return f"{k} pg={pg.sqlstate} {norm_message(pg.message, 60)}"
    if k == "column_type":
        return f"{k} {v.detail['types'][0]}"
    if k == "column_name":
        return f"{k} {first_name_diff(v)}"
    return k


def first_name_diff(v: Verdict) -> str:
    for a, b in zip(v.detail["pg"], v.detail["sluice"]):
        if a != b:
            return f"{a}->{b}"
    return ""


def reduce_key(v: Verdict, sl: Outcome | None, pg: Outcome | None) -> str:
    """Coarser than group_key: what must stay the same while reducing."""
    k = v.kind
    if k in ("sluice_error", "internal_error"):
        return f"{k} {sl.sqlstate} {norm_message(sl.message, 50)}"
    if k == "sqlstate":
        return f"{k} {pg.sqlstate} {sl.sqlstate}"
    if k == "pg_error_only":
        return f"{k} {pg.sqlstate}"
    if k == "column_name":
        return f"{k} {first_name_diff(v)}"
    return k
