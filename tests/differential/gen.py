"""Seeded generator of random, well-typed PostgreSQL queries over schema.py.

The generator tracks the PostgreSQL type of every expression it builds, so
what it writes is valid for PostgreSQL (which is the oracle: a query
PostgreSQL rejects for a typing reason is a generator bug, and the runner
counts those separately). It also tracks which results have a defined order:

* a row key (`Scope.keys`): every base table has a unique `id`, and the ids
  of all tables of a join tree (NULL-extended or not) identify a row, so
  window functions that depend on row order (row_number, lag, lead, ROWS
  frames) order by them last;
* the top query compares rows as a list only when it orders by every
  output column (`order_mode = "total"`): rows that tie are then
  identical, and LIMIT/OFFSET pick a defined set. Anything else is compared
  as a multiset.

Expression depth and subquery nesting are bounded (MAX_EXPR_DEPTH,
MAX_QUERY_DEPTH).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field

from schema import (ALL_TYPES, BIGINT, BOOL, DATE, FLOAT, INT, NUMERIC, NUMBER_TYPES, SQL_TYPE,
                    TABLE_WEIGHTS, TABLES, TEXT, TS, TSTZ)
from sqltree import (Derived, Expr, Join, Select, SetOp, TableRef, With, col, lit,
                     null_literal)

MAX_EXPR_DEPTH = 3
MAX_QUERY_DEPTH = 2  # 0 = top query; subqueries at 1; none deeper than 2

LITERALS = {
    INT: ["0", "1", "2", "3", "5", "7", "10", "-1", "-5", "42", "100"],
    BIGINT: ["3000000000", "CAST(-1 AS bigint)", "CAST(100 AS bigint)", "CAST(7 AS bigint)",
             "CAST(0 AS bigint)"],
    NUMERIC: ["0.00", "1.5", "2.50", "-3.75", "12.5", "0.000001", "100.000001", "1234.56",
              "-0.01", "3.0"],
    FLOAT: [f"CAST({v} AS double precision)"
            for v in ("0.5", "1.5", "-2.25", "0.375", "2.5", "100", "0.0625", "0")],
    TEXT: ["'apple'", "'b2'", "''", "'fig'", "'zzz'", "'a'", "'kiwi'", "'mango'", "'a1'"],
    BOOL: ["true", "false"],
    DATE: [f"DATE '{d}'" for d in ("2024-02-29", "2024-01-31", "2000-02-29", "1970-01-01",
                                    "2024-12-31", "2023-02-28", "2024-03-01")],
    TS: [f"TIMESTAMP '{d}'" for d in ("2024-02-29 13:45:00", "2024-01-31 23:59:59.999999",
                                       "2000-02-29 12:00:00", "1969-12-31 23:59:59",
                                       "2024-03-01 00:00:00.5", "2024-06-30 06:00:00")],
    TSTZ: [f"TIMESTAMPTZ '{d}'" for d in ("2024-02-29 13:45:00+00", "2000-01-01 00:00:00+00",
                                           "1970-01-01 00:00:00+00", "2024-03-31 23:00:00+00")],
}
EXTREME_LITERALS = {INT: ["2147483647", "-2147483647"], BIGINT: ["9223372036854775807"],
                    NUMERIC: ["9999999999.99", "-999999999999.999999"]}

INTERVALS = ["1 day", "1 month", "2 hours", "1 year", "30 minutes", "1 day 2 hours", "-1 day",
             "1 month 1 day"]
TRUNC_UNITS = ["year", "quarter", "month", "week", "day", "hour", "minute"]
DATETIME_TEMPLATES = ["YYYY-MM-DD", "DD/MM/YYYY HH24:MI:SS", "FMMonth FMDDth, YYYY", "Dy Mon DD YY",
                      "HH12:MI AM", "IYYY-\"W\"IW ID", "Q DDD WW", "YYYYMMDD", "MS US", "DAY day"]
NUMBER_TEMPLATES = ["FM999,999,990.00", "9999.99", "S9990", "999MI", "FM0000", "9G999D9", "99PL", "FM9.999"]
DATE_FIELDS = ["YEAR", "MONTH", "DAY", "DOW", "DOY", "QUARTER", "EPOCH"]
TS_FIELDS = DATE_FIELDS + ["HOUR", "MINUTE", "SECOND"]
LIKE_PATTERNS = ["'a%'", "'%e'", "'%an%'", "'_i%'", "'b_'", "''", "'%'", "'%2'"]
CMP_OPS = ["=", "<>", "<", "<=", ">", ">="]
NUMERIC_CASTS = ["numeric(12,2)", "numeric(18,6)", "numeric(10,0)", "numeric(20,4)"]
SET_OPS = [(5, "UNION", "union"), (5, "UNION ALL", "union_all"), (3, "INTERSECT", "intersect"),
           (3, "EXCEPT", "except"), (1, "INTERSECT ALL", "intersect_all"), (1, "EXCEPT ALL", "except_all")]
ORDERABLE = (INT, BIGINT, NUMERIC, FLOAT, TEXT, DATE, TS, TSTZ)
TYPE_WEIGHTS = {INT: 6, BIGINT: 3, NUMERIC: 5, FLOAT: 3, TEXT: 5, BOOL: 3, DATE: 3, TS: 2,
                TSTZ: 1}


@dataclass
class SCol:
    ref: str  # how the column is written: "a1.k", or "k" for a USING column
    name: str
    t: str
    extreme: bool = False


@dataclass
class Scope:
    cols: list[SCol]
    unq: list[tuple[str, str]]  # (name, type) visible without qualifier, in order
    keys: list[str] | None  # refs that together identify a row, or None

    def usable(self) -> list[SCol]:
        out = []
        for c in self.cols:
            if "." in c.ref or sum(1 for n, _ in self.unq if n == c.name) == 1:
                out.append(c)
        return out


@dataclass
class Ctx:
    scope: Scope
    outer: Scope | None = None  # columns a correlated subquery may use
    grouped: list[Expr] | None = None  # GROUP BY keys: the only columns allowed
    agg: bool = False  # aggregates allowed here
    win: bool = False  # window functions allowed here
    sub: bool = True  # subqueries allowed here
    qd: int = 0  # subquery nesting depth


class Gen:
    def __init__(self, rng: random.Random, disabled=()):
        self.r = rng
        # features (tags of productions) to leave out: to look past a known
        # failure that would hide everything around it
        self.disabled = set(disabled)
        self.n_alias = 0
        self.ctes: list[tuple[str, list[str]]] = []  # (name, column types)

    # --- helpers ---------------------------------------------------------
    def alias(self, prefix: str) -> str:
        self.n_alias += 1
        return f"{prefix}{self.n_alias}"

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def pick(self, seq):
        return self.r.choice(seq)

    def wpick(self, pairs):
        """A weighted choice among (weight, value[, feature]) entries, leaving
        out disabled features."""
        pairs = [p for p in pairs if len(p) < 3 or p[2] not in self.disabled] or pairs
        total = sum(p[0] for p in pairs)
        x = self.r.random() * total
        for p in pairs:
            x -= p[0]
            if x < 0:
                return p[1]
        return pairs[-1][1]

    def on(self, feature: str) -> bool:
        return feature not in self.disabled

    def rtype(self, types=ALL_TYPES) -> str:
        return self.wpick([(TYPE_WEIGHTS[t], t, "type_" + t) for t in types])

    def literal(self, t: str, null_p=0.08) -> Expr:
        if self.chance(null_p):
            return lit(null_literal(t), t)
        if t in EXTREME_LITERALS and self.chance(0.04):
            return lit(self.pick(EXTREME_LITERALS[t]), t)
        return lit(self.pick(LITERALS[t]), t)

    def columns(self, t: str, ctx: Ctx, arith=False) -> list[Expr]:
        if ctx.grouped is not None:
            return [copy.deepcopy(g) for g in ctx.grouped if g.t == t]
        cols = [c for c in ctx.scope.usable() if c.t == t]
        if ctx.outer is not None and self.chance(0.25):
            # only qualified: an unqualified name would bind to the subquery first
            cols += [c for c in ctx.outer.usable() if c.t == t and "." in c.ref]
        if arith and self.chance(0.85):
            cols = [c for c in cols if not c.extreme]
        return [col(c.ref, t) for c in cols]

    def leaf(self, t: str, ctx: Ctx, arith=False) -> Expr:
        cands = self.columns(t, ctx, arith)
        if cands and not self.chance(0.15):
            return self.pick(cands)
        return self.literal(t)

    def E(self, fmt, kids, t, **kw) -> Expr:
        return Expr(fmt, kids, t, **kw)

    # --- expressions -----------------------------------------------------
    def expr(self, t: str, ctx: Ctx, d: int = 0, arith=False) -> Expr:
        in_agg_only = ctx.grouped is not None and ctx.agg
        if d >= MAX_EXPR_DEPTH or self.chance(0.25 + 0.2 * d):
            if in_agg_only and (not self.columns(t, ctx) or self.chance(0.5)):
                return self.aggregate(t, ctx, d)
            return self.leaf(t, ctx, arith)
        prods = self.productions(t, ctx, d)
        fn = self.wpick(prods)
        return fn()

    def productions(self, t, ctx, d):
        """(weight, builder, feature) for every way to make a value of type t."""
        P = []
        x = lambda tt, a=False: self.expr(tt, ctx, d + 1, arith=a)  # noqa: E731
        a = lambda tt: x(tt, True)  # noqa: E731  (operand of arithmetic)
        E = self.E

        def add(w, feature, fn):
            P.append((w, fn, feature))

        # shared by all types
        add(2, "case", lambda: E("CASE WHEN {0} THEN {1} ELSE {2} END", [x(BOOL), x(t), x(t)], t))
        add(1, "case", lambda: E("CASE WHEN {0} THEN {1} WHEN {2} THEN {3} END",
                                 [x(BOOL), x(t), x(BOOL), x(t)], t))
        add(1, "simple_case", lambda: self.simple_case(t, ctx, d))
        add(2, "coalesce", lambda: E("COALESCE({0}, {1})", [x(t), x(t)], t))
        add(1, "nullif", lambda: E("NULLIF({0}, {1})", [x(t), x(t)], t))
        if t in ORDERABLE:
            add(1, "greatest", lambda: E(self.pick(["greatest", "least"]) + "({0}, {1})",
                                         [x(t), x(t)], t))
        if ctx.sub and ctx.qd < MAX_QUERY_DEPTH:
            add(1, "scalar_subquery", lambda: self.scalar_subquery(t, ctx))
        if ctx.agg:
            add(5, "aggregate", lambda: self.aggregate(t, ctx, d))
        if ctx.win:
            add(4, "window", lambda: self.window(t, ctx))
        if t == INT:
            for op in ("+", "-"):
                add(3, "arith", lambda op=op: E("({0} %s {1})" % op, [a(INT), a(INT)], INT))
            add(1, "arith", lambda: E("({0} * {1})", [a(INT), self.literal(INT, 0)], INT))
            add(1, "division", lambda: E("({0} / NULLIF({1}, 0))", [a(INT), a(INT)], INT))
            add(1, "mod", lambda: E("mod({0}, {1})", [a(INT), lit(self.pick(["2", "3", "-4", "7"]), INT)], INT))
            add(1, "modulo_op", lambda: E("({0} % {1})", [a(INT), lit(self.pick(["2", "5"]), INT)], INT))
            add(1, "abs", lambda: E("abs({0})", [a(INT)], INT))
            add(1, "negate", lambda: E("(- {0})", [a(INT)], INT))
            add(2, "length", lambda: E("length({0})", [x(TEXT)], INT))
            add(1, "position", lambda: E("position({0} IN {1})", [x(TEXT), x(TEXT)], INT))
            add(2, "cast", lambda: E("CAST({0} AS integer)", [x(self.pick([NUMERIC, FLOAT, BIGINT, BOOL]))], INT))
            add(1, "date_minus_date", lambda: E("({0} - {1})", [x(DATE), x(DATE)], INT))
            add(1, "text_to_int", lambda: E("CAST(CAST({0} AS text) AS integer)", [x(INT)], INT))
        elif t == BIGINT:
            for op in ("+", "-"):
                add(2, "arith", lambda op=op: E("({0} %s {1})" % op, [a(BIGINT), a(self.pick([INT, BIGINT]))], BIGINT))
            add(1, "arith", lambda: E("({0} * {1})", [a(BIGINT), self.literal(INT, 0)], BIGINT))
            add(1, "division", lambda: E("({0} / NULLIF({1}, 0))", [a(BIGINT), a(self.pick([INT, BIGINT]))], BIGINT))
            add(1, "mod", lambda: E("mod({0}, {1})", [a(BIGINT), lit("CAST(3 AS bigint)", BIGINT)], BIGINT))
            add(1, "abs", lambda: E("abs({0})", [a(BIGINT)], BIGINT))
            add(3, "cast", lambda: E("CAST({0} AS bigint)", [x(self.pick([INT, NUMERIC, FLOAT]))], BIGINT))
        elif t == NUMERIC:
            for op in ("+", "-"):
                add(2, "arith", lambda op=op: E("({0} %s {1})" % op, [a(NUMERIC), a(self.pick([NUMERIC, INT]))], NUMERIC))
            add(2, "arith", lambda: E("({0} * {1})", [a(NUMERIC), a(self.pick([NUMERIC, INT]))], NUMERIC))
            add(1, "division", lambda: E("({0} / NULLIF({1}, 0))", [a(NUMERIC), a(self.pick([NUMERIC, INT]))], NUMERIC))
            add(2, "round", lambda: E("round({0}, %d)" % self.pick([0, 1, 2, 3]), [a(NUMERIC)], NUMERIC))
            add(1, "round", lambda: E("round({0})", [a(NUMERIC)], NUMERIC))
            add(1, "trunc", lambda: E("trunc({0}, %d)" % self.pick([0, 1, 2]), [a(NUMERIC)], NUMERIC))
            add(1, "trunc", lambda: E("trunc({0})", [a(NUMERIC)], NUMERIC))
            add(1, "abs", lambda: E("abs({0})", [a(NUMERIC)], NUMERIC))
            add(1, "ceil_floor", lambda: E(self.pick(["ceil", "floor"]) + "({0})", [a(NUMERIC)], NUMERIC))
            add(1, "mod", lambda: E("mod({0}, {1})", [a(NUMERIC), lit(self.pick(["2.5", "3.0", "0.7"]), NUMERIC)], NUMERIC))
            add(3, "cast", lambda: E("CAST({0} AS %s)" % self.pick(NUMERIC_CASTS),
                                     [x(self.pick([INT, BIGINT, FLOAT, NUMERIC]))], NUMERIC))
            add(1, "logarithm", lambda: E(self.pick(["ln", "log", "log10"]) + "(abs({0}) + 1)", [a(NUMERIC)], NUMERIC))
            add(1, "logarithm", lambda: E("log(%s, abs({0}) + 1)" % self.pick(["2", "10", "1.5", "3.0"]),
                                          [a(self.pick([NUMERIC, INT]))], NUMERIC))
            add(1, "extract", lambda: E("EXTRACT(%s FROM {0})" % self.pick(DATE_FIELDS), [x(DATE)], NUMERIC))
            add(1, "extract", lambda: E("EXTRACT(%s FROM {0})" % self.pick(TS_FIELDS), [x(TS)], NUMERIC))
        elif t == FLOAT:
            for op in ("+", "-", "*"):
                add(2, "arith", lambda op=op: E("({0} %s {1})" % op, [a(FLOAT), a(self.pick([FLOAT, INT, NUMERIC]))], FLOAT))
            add(1, "division", lambda: E("({0} / NULLIF({1}, 0))", [a(FLOAT), a(self.pick([FLOAT, INT]))], FLOAT))
            add(1, "float_functions", lambda: E(self.pick(["abs", "round", "trunc", "ceil", "floor"]) + "({0})",
                                                [a(FLOAT)], FLOAT))
            add(3, "cast", lambda: E("CAST({0} AS double precision)", [x(self.pick([INT, BIGINT, NUMERIC]))], FLOAT))
            add(1, "logarithm", lambda: E(self.pick(["ln", "log", "log10"]) + "(abs({0}) + 1)", [a(FLOAT)], FLOAT))
            add(1, "date_part", lambda: E("date_part('%s', {0})" % self.pick(["year", "month", "day", "dow"]),
                                          [x(self.pick([DATE, TS]))], FLOAT))
        elif t == TEXT:
            add(2, "upper_lower", lambda: E(self.pick(["upper", "lower"]) + "({0})", [x(TEXT)], TEXT))
            add(2, "substr", lambda: E("substr({0}, %d)" % self.pick([0, 1, 2, 3]), [x(TEXT)], TEXT))
            add(2, "substr", lambda: E("substr({0}, %d, %d)" % (self.pick([1, 2, 3]), self.pick([0, 1, 2, 5])),
                                       [x(TEXT)], TEXT))
            add(3, "concat_op", lambda: E("({0} || {1})", [x(TEXT), x(TEXT)], TEXT))
            add(2, "concat", lambda: E("concat({0}, {1})", [x(TEXT), x(self.rtype((TEXT, INT, NUMERIC, DATE)))], TEXT))
            add(3, "cast", lambda: E("CAST({0} AS text)", [x(self.rtype((INT, BIGINT, NUMERIC, DATE, TS, BOOL)))], TEXT))
            add(1, "float_to_text", lambda: E("CAST({0} AS text)", [x(FLOAT)], TEXT))
            add(2, "to_char", lambda: E("to_char({0}, '%s')" % self.pick(DATETIME_TEMPLATES),
                                        [x(self.pick([DATE, TS]))], TEXT))
            add(2, "to_char", lambda: E("to_char({0}, '%s')" % self.pick(NUMBER_TEMPLATES),
                                        [x(self.pick([INT, NUMERIC]))], TEXT))
        elif t == BOOL:
            add(6, "comparison", lambda: self.comparison(ctx, d))
            add(2, "and_or", lambda: E("({0} AND {1})", [x(BOOL), x(BOOL)], BOOL))
            add(2, "and_or", lambda: E("({0} OR {1})", [x(BOOL), x(BOOL)], BOOL))
            add(2, "not", lambda: E("(NOT {0})", [x(BOOL)], BOOL))
            add(2, "is_null", lambda: E("({0} IS %sNULL)" % self.pick(["", "NOT "]), [x(self.rtype())], BOOL))
            add(1, "is_truth", lambda: E("({0} IS %s)" % self.pick(["TRUE", "NOT TRUE", "FALSE", "NOT FALSE", "UNKNOWN"]),
                                         [x(BOOL)], BOOL))
            add(1, "distinct_from", lambda: self.distinct_from(ctx, d))
            add(2, "between", lambda: self.between(ctx, d))
            add(2, "in_list", lambda: self.in_list(ctx, d))
            add(1, "like", lambda: E("({0} %s {1})" % self.pick(["LIKE", "NOT LIKE"]),
                                     [x(TEXT), lit(self.pick(LIKE_PATTERNS), TEXT)], BOOL))
            add(1, "int_to_bool", lambda: E("CAST({0} AS boolean)", [x(INT)], BOOL))
            if ctx.sub and ctx.qd < MAX_QUERY_DEPTH:
                add(3, "in_subquery", lambda: self.in_subquery(ctx))
                add(3, "exists", lambda: self.exists(ctx))
                add(1, "quantified", lambda: self.quantified(ctx))
        elif t == DATE:
            add(2, "date_arith", lambda: E("({0} + {1})", [x(DATE), lit(self.pick(["1", "30", "-1", "365"]), INT)], DATE))
            add(1, "date_arith", lambda: E("({0} - {1})", [x(DATE), lit(self.pick(["1", "31", "366"]), INT)], DATE))
            add(2, "cast", lambda: E("CAST({0} AS date)", [x(self.pick([TS, TSTZ]))], DATE))
            add(1, "interval", lambda: E("CAST(({0} + INTERVAL '%s') AS date)" % self.pick(INTERVALS), [x(DATE)], DATE))
            add(1, "to_date", lambda: E("to_date(to_char({0}, 'DD/MM/YYYY'), 'DD/MM/YYYY')", [x(DATE)], DATE))
        elif t == TS:
            add(2, "date_trunc", lambda: E("date_trunc('%s', {0})" % self.pick(TRUNC_UNITS), [x(TS)], TS))
            add(2, "interval", lambda: E("({0} %s INTERVAL '%s')" % (self.pick(["+", "-"]), self.pick(INTERVALS)),
                                         [x(self.pick([TS, DATE]))], TS))
            add(2, "cast", lambda: E("CAST({0} AS timestamp)", [x(self.pick([DATE, TSTZ]))], TS))
        elif t == TSTZ:
            add(1, "cast", lambda: E("CAST({0} AS timestamptz)", [x(self.pick([TS, DATE]))], TSTZ))
            add(1, "date_trunc", lambda: E("date_trunc('%s', {0})" % self.pick(TRUNC_UNITS), [x(TSTZ)], TSTZ))
            add(1, "interval", lambda: E("({0} + INTERVAL '%s')" % self.pick(INTERVALS), [x(TSTZ)], TSTZ))
            add(1, "date_trunc", lambda: E("date_trunc('%s', {0})" % self.pick(TRUNC_UNITS), [x(DATE)], TSTZ))
            add(1, "interval_product", lambda: E("({0} + INTERVAL '%s' * {1})" % self.pick(INTERVALS),
                                                 [x(TSTZ), a(self.pick([INT, NUMERIC]))], TSTZ))
        return P

    def simple_case(self, t, ctx, d):
        u = self.pick([INT, TEXT])
        x = lambda tt: self.expr(tt, ctx, d + 1)  # noqa: E731
        return self.E("CASE {0} WHEN {1} THEN {2} WHEN {3} THEN {4} ELSE {5} END",
                      [x(u), self.literal(u, 0), x(t), self.literal(u, 0), x(t), x(t)], t)

    def comparison(self, ctx, d):
        x = lambda tt, a=False: self.expr(tt, ctx, d + 1, arith=a)  # noqa: E731
        op = self.pick(CMP_OPS)
        kind = self.wpick([(6, "same"), (2, "numbers"), (1, "datetime")])
        if kind == "numbers":
            l, r = self.pick(NUMBER_TYPES), self.pick(NUMBER_TYPES)
        elif kind == "datetime":
            l, r = self.pick([(DATE, TS), (TS, DATE), (DATE, TSTZ)])
        else:
            l = r = self.rtype()
            if l == BOOL:
                op = self.pick(["=", "<>"])
        return self.E("({0} %s {1})" % op, [x(l), x(r)], BOOL)

    def distinct_from(self, ctx, d):
        t = self.rtype()
        neg = self.pick(["", "NOT "])
        return self.E("({0} IS %sDISTINCT FROM {1})" % neg,
                      [self.expr(t, ctx, d + 1), self.expr(t, ctx, d + 1)], BOOL)

    def between(self, ctx, d):
        t = self.rtype(ORDERABLE)
        neg = self.pick(["", "", "NOT "])
        return self.E("({0} %sBETWEEN {1} AND {2})" % neg,
                      [self.expr(t, ctx, d + 1), self.literal(t, 0.05), self.literal(t, 0.05)], BOOL)

    def in_list(self, ctx, d):
        t = self.rtype((INT, BIGINT, NUMERIC, TEXT, DATE))
        n = self.pick([1, 2, 3, 4])
        vals = [self.literal(t, 0) for _ in range(n)]
        if self.chance(0.25):
            vals.append(lit("NULL", t))
        neg = self.pick(["", "NOT "])
        slots = ", ".join("{%d}" % (i + 1) for i in range(len(vals)))
        return self.E("({0} %sIN (%s))" % (neg, slots), [self.expr(t, ctx, d + 1)] + vals, BOOL)

    # --- aggregates and windows ------------------------------------------
    def arg_ctx(self, ctx: Ctx) -> Ctx:
        return Ctx(scope=ctx.scope, outer=None, grouped=None, agg=False, win=False, sub=False,
                   qd=ctx.qd)

    def typed(self, e: Expr) -> Expr:
        """A text literal is of type unknown to PostgreSQL: name its type where
        a polymorphic function (min, lag, ...) takes it."""
        if e.lit and e.t == TEXT and not e.fmt.startswith("CAST"):
            return Expr("CAST({0} AS text)", [e], TEXT)
        return e

    def aggregate(self, t, ctx, d=0) -> Expr:
        actx = self.arg_ctx(ctx)
        x = lambda tt: self.typed(self.expr(tt, actx, max(d, 1)))  # noqa: E731
        E = self.E
        opts = []
        if t in ORDERABLE:
            opts.append((2, lambda: E(self.pick(["min", "max"]) + "({0})", [x(t)], t, agg=True), "min_max"))
        if t == BIGINT:
            opts.append((3, lambda: E("count(*)", [], BIGINT, agg=True), "count"))
            opts.append((2, lambda: E("count({0})", [x(self.rtype())], BIGINT, agg=True), "count"))
            opts.append((2, lambda: E("count(DISTINCT {0})", [x(self.rtype())], BIGINT, agg=True), "count_distinct"))
            opts.append((2, lambda: E("sum({0})", [x(INT)], BIGINT, agg=True), "sum"))
        elif t == NUMERIC:
            opts.append((3, lambda: E("sum({0})", [x(self.pick([NUMERIC, BIGINT]))], NUMERIC, agg=True), "sum"))
            opts.append((3, lambda: E("avg({0})", [x(self.pick([INT, BIGINT, NUMERIC]))], NUMERIC, agg=True), "avg"))
            opts.append((1, lambda: E("sum(DISTINCT {0})", [x(NUMERIC)], NUMERIC, agg=True), "sum_distinct"))
            opts.append((1, lambda: E(self.pick(["stddev", "variance", "stddev_pop", "var_pop"]) + "({0})",
                                      [x(self.pick([INT, BIGINT, NUMERIC]))], NUMERIC, agg=True), "stddev"))
        elif t == FLOAT:
            opts.append((3, lambda: E(self.pick(["sum", "avg"]) + "({0})", [x(FLOAT)], FLOAT, agg=True), "sum"))
        elif t == TEXT:
            def sagg():
                a = x(TEXT)
                if self.chance(0.3) and not a.lit:
                    return E("string_agg(DISTINCT {0}, ',' ORDER BY {1})", [a, copy.deepcopy(a)], TEXT, agg=True)
                return E("string_agg({0}, '%s' ORDER BY {1})" % self.pick([",", "", "|"]),
                         [a, copy.deepcopy(a)], TEXT, agg=True)
            opts.append((3, sagg, "string_agg"))
        elif t == BOOL:
            opts.append((3, lambda: E(self.pick(["bool_and", "bool_or"]) + "({0})", [x(BOOL)], BOOL, agg=True), "bool_agg"))
        if not [o for o in opts if o[2] not in self.disabled]:
            opts = [(1, lambda: E("max({0})", [x(t)], t, agg=True))] if t != BOOL else \
                [(1, lambda: E("bool_or({0})", [x(BOOL)], BOOL, agg=True))]
        e = self.wpick(opts)()
        if self.on("agg_filter") and self.chance(0.12) and e.fmt.endswith(")"):
            e = Expr(e.fmt + " FILTER (WHERE {%d})" % len(e.kids), e.kids + [x(BOOL)], t, agg=True)
        return e

    def window(self, t, ctx) -> Expr:
        wctx = self.arg_ctx(ctx)
        keys = ctx.scope.keys
        x = lambda tt: self.typed(self.expr(tt, wctx, 2))  # noqa: E731
        kinds = [(3, "agg", "window_agg")]
        if t == BIGINT:
            kinds += [(3, "rank", "rank")]
            if keys:
                kinds += [(3, "row_number", "row_number")]
        if keys:
            kinds += [(3, "laglead", "lag_lead")]
        if not [k for k in kinds if k[2] not in self.disabled]:
            kinds = [(1, "agg")]
        kind = self.wpick(kinds)
        needs_total = kind in ("row_number", "laglead")
        if kind == "agg":
            if t == BIGINT:
                fn, args = self.pick([("count(*)", []), ("count({0})", [x(self.rtype())]),
                                      ("sum({0})", [x(INT)])])
            elif t == NUMERIC:
                fn, args = self.pick([("sum({0})", [x(NUMERIC)]), ("avg({0})", [x(self.pick([INT, NUMERIC]))]),
                                      (self.pick(["stddev", "var_samp"]) + "({0})", [x(self.pick([INT, NUMERIC]))])])
            elif t == FLOAT:
                fn, args = self.pick([("sum({0})", [x(FLOAT)]), ("avg({0})", [x(FLOAT)])])
            elif t in ORDERABLE:
                fn, args = self.pick(["min", "max"]) + "({0})", [x(t)]
            else:
                fn, args = self.pick(["bool_and", "bool_or"]) + "({0})", [x(BOOL)]
        elif kind == "rank":
            fn, args = self.pick(["row_number()", "rank()", "dense_rank()"]), []
            if fn == "row_number()" and not keys:
                fn = "rank()"
            needs_total = fn == "row_number()"
        else:
            f = self.pick(["lag", "lead"])
            v = x(t)
            form = self.pick([0, 1, 2])
            if form == 0:
                fn, args = f + "({0})", [v]
            elif form == 1:
                fn, args = f + "({0}, %d)" % self.pick([1, 2]), [v]
            else:
                fn, args = f + "({0}, 1, {1})", [v, self.literal(t, 0)]
        kids = list(args)
        parts = []
        nparts = self.pick([0, 1, 1, 2])
        pslots = []
        for _ in range(nparts):
            c = self.leaf(self.rtype(), wctx)
            if c.lit:
                continue
            c.nolit = True
            pslots.append("{%d}" % len(kids))
            kids.append(c)
        if pslots:
            parts.append("PARTITION BY " + ", ".join(pslots))
        oslots = []
        order_exprs = []
        for _ in range(self.pick([0, 1, 1, 2]) if not needs_total else self.pick([0, 1])):
            c = self.leaf(self.rtype(ORDERABLE), wctx)
            if not c.lit:
                order_exprs.append(c)
        if needs_total:
            order_exprs += [col(k, INT) for k in keys]
        for c in order_exprs:
            c.nolit = True
            oslots.append("{%d} %s" % (len(kids), self.pick(["ASC", "DESC", "ASC NULLS FIRST", "DESC NULLS LAST"])))
            kids.append(c)
        if oslots:
            parts.append("ORDER BY " + ", ".join(oslots))
        if kind == "agg" and oslots:
            total = keys is not None and all(any(k == c.sql() for c in order_exprs) for k in keys)
            frames = ["", "RANGE BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"]
            # offsets in units of the one ORDER BY column
            if len(order_exprs) == 1 and order_exprs[0].t in (INT, BIGINT):
                frames += ["RANGE BETWEEN 1 PRECEDING AND CURRENT ROW",
                           "RANGE BETWEEN 3 PRECEDING AND 1 FOLLOWING",
                           "RANGE BETWEEN CURRENT ROW AND 2 FOLLOWING",
                           "RANGE BETWEEN 5 PRECEDING AND 2 PRECEDING"]
            elif len(order_exprs) == 1 and order_exprs[0].t in (DATE, TS, TSTZ):
                frames += ["RANGE BETWEEN INTERVAL '1 day' PRECEDING AND CURRENT ROW",
                           "RANGE BETWEEN INTERVAL '12 hours' PRECEDING AND INTERVAL '1 hour' FOLLOWING",
                           "RANGE BETWEEN CURRENT ROW AND INTERVAL '3 days' FOLLOWING"]
            if total:
                frames += ["ROWS BETWEEN 1 PRECEDING AND CURRENT ROW",
                           "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
                           "ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING",
                           "ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING"]
            fr = self.pick(frames) if self.on("window_frame") else ""
            if fr:
                parts.append(fr)
        elif kind == "agg" and not oslots and keys and self.on("window_frame") and self.chance(0.3):
            # a ROWS frame needs a total order: order by the row key
            for k in keys:
                oslots.append("{%d}" % len(kids))
                kids.append(col(k, INT, nolit=True))
            parts.append("ORDER BY " + ", ".join(oslots))
            parts.append(self.pick(["ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING",
                                    "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"]))
        fmt = fn + " OVER (" + " ".join(parts) + ")"
        return Expr(fmt, kids, t, win=True)

    # --- subqueries in expressions ----------------------------------------
    def sub_ctx_outer(self, ctx: Ctx) -> Scope | None:
        # Correlate only where plain columns are in scope (not in a grouped
        # select list or an aggregate argument).
        if ctx.grouped is None and self.chance(0.5):
            return ctx.scope
        return None

    def subquery(self, ctx: Ctx, t: str | None, mode: str) -> Select:
        """A subquery with one output column of type t (mode: agg, limit1, any, exists)."""
        qd = ctx.qd + 1
        outer = self.sub_ctx_outer(ctx)
        s = Select()
        s.from_, scope = self.from_clause(qd, max_tables=2)
        ictx = Ctx(scope=scope, outer=outer, sub=qd < MAX_QUERY_DEPTH, qd=qd)
        if outer is not None:
            # the usual correlation: an inner column equals an outer one
            pairs = [(i, o) for i in scope.usable() for o in outer.usable()
                     if i.t == o.t and i.t in (INT, TEXT, DATE, NUMERIC) and "." in o.ref]
            if pairs:
                i, o = self.pick(pairs)
                s.where.append(Expr("({0} = {1})", [col(i.ref, i.t), col(o.ref, o.t)], BOOL))
        for _ in range(self.pick([0, 1, 1, 2])):
            s.where.append(self.expr(BOOL, ictx, 1))
        if mode == "exists":
            s.items = [lit("1", INT)]
        elif mode == "limit1" and scope.keys:
            s.items = [self.expr(t, ictx, 1)]
            s.order_mode = "keys"
            first = [] if s.items[0].lit else [copy.deepcopy(s.items[0])]
            s.order_keys = first + [col(k, INT, nolit=True) for k in scope.keys]
            s.order_dirs = [self.pick(["ASC", "DESC"]) for _ in s.order_keys]
            s.limit = 1
        elif mode == "agg" or mode == "limit1":
            gctx = Ctx(scope=scope, outer=outer, grouped=[], agg=True, sub=False, qd=qd)
            s.items = [self.aggregate(t, gctx, 1)]
        else:
            s.items = [self.expr(t, ictx, 1)]
            if self.chance(0.15):
                s.distinct = True
        s.aliases = [None] * len(s.items)
        return s

    def scalar_subquery(self, t, ctx) -> Expr:
        q = self.subquery(ctx, t, "limit1" if self.chance(0.3) else "agg")
        return Expr("({0})", [q], t)

    def in_subquery(self, ctx) -> Expr:
        t = self.rtype((INT, BIGINT, NUMERIC, TEXT, DATE))
        q = self.subquery(ctx, t, "any")
        neg = self.pick(["", "NOT "])
        return Expr("({0} %sIN ({1}))" % neg, [self.expr(t, ctx, 2), q], BOOL)

    def exists(self, ctx) -> Expr:
        q = self.subquery(ctx, None, "exists")
        neg = self.pick(["", "NOT "])
        return Expr("(%sEXISTS ({0}))" % neg, [q], BOOL)

    def quantified(self, ctx) -> Expr:
        t = self.rtype((INT, NUMERIC, TEXT))
        q = self.subquery(ctx, t, "any")
        op = self.pick(CMP_OPS)
        qf = self.pick(["ANY", "ALL"])
        return Expr("({0} %s %s ({1}))" % (op, qf), [self.expr(t, ctx, 2), q], BOOL)

    # --- FROM ------------------------------------------------------------
    def table_item(self):
        cte_w = 3 if self.ctes else 0
        choice = self.wpick([(10, "table"), (cte_w, "cte")])
        if choice == "cte":
            name, types = self.pick(self.ctes)
            alias = self.alias("w")
            cols = [SCol(f"{alias}.c{i + 1}", f"c{i + 1}", t) for i, t in enumerate(types)]
            return TableRef(name, alias), Scope(cols, [(c.name, c.t) for c in cols], None)
        t = self.wpick(list(zip(TABLE_WEIGHTS, TABLES)))
        alias = self.alias("a")
        cols = [SCol(f"{alias}.{c.name}", c.name, c.type, c.extreme) for c in t.columns]
        return TableRef(t.name, alias), Scope(cols, [(c.name, c.type) for c in t.columns],
                                              [f"{alias}.id"])

    def from_item(self, qd):
        if qd < MAX_QUERY_DEPTH and self.on("derived") and self.chance(0.1):
            q = self.select(qd + 1, role="derived")
            alias = self.alias("dq")
            cols = [SCol(f"{alias}.{n}", n, t) for n, t in zip(q.aliases, q.types())]
            return Derived(q, alias), Scope(cols, [(c.name, c.t) for c in cols], None)
        return self.table_item()

    def from_clause(self, qd, max_tables=3):
        n = self.wpick([(5, 1), (4, 2), (2, 3)][:max_tables])
        item, scope = self.from_item(qd)
        for _ in range(n - 1):
            right, rs = self.from_item(qd)
            kind = self.wpick([(4, "INNER", "inner_join"), (3, "LEFT", "left_join"),
                               (2, "RIGHT", "right_join"), (2, "FULL", "full_join"),
                               (1, "CROSS", "cross_join")])
            keys = scope.keys + rs.keys if scope.keys is not None and rs.keys is not None else None
            if kind == "CROSS":
                item = Join("CROSS", item, right)
                scope = Scope(scope.cols + rs.cols, scope.unq + rs.unq, keys)
                continue
            common = []
            for name, t in rs.unq:
                if (sum(1 for n2, _ in scope.unq if n2 == name) == 1
                        and sum(1 for n2, _ in rs.unq if n2 == name) == 1
                        and dict(scope.unq)[name] == t and name != "id"):
                    common.append((name, t))
            if common and self.on("using") and self.chance(0.3):
                use = self.r.sample(common, min(len(common), self.pick([1, 1, 2])))
                names = [u[0] for u in use]
                item = Join(kind, item, right, using=names)
                merged = [SCol(n, n, t) for n, t in use]
                unq = (list(use) + [u for u in scope.unq if u[0] not in names]
                       + [u for u in rs.unq if u[0] not in names])
                scope = Scope(scope.cols + rs.cols + merged, unq, keys)
                continue
            joined_refs = {c.ref for c in Scope(scope.cols + rs.cols, scope.unq + rs.unq, None).usable()}
            pairs = [(lc, rc) for lc in scope.usable() for rc in rs.usable()
                     if lc.t == rc.t and lc.t in (INT, TEXT, DATE, NUMERIC, BOOL)
                     and lc.ref in joined_refs and rc.ref in joined_refs]
            pref = [p for p in pairs if p[0].name == p[1].name and p[0].name != "id"]
            joined = Scope(scope.cols + rs.cols, scope.unq + rs.unq, keys)
            if not pairs:
                kind = "INNER" if kind == "FULL" else kind
                on = [self.expr(BOOL, Ctx(scope=joined, sub=False, qd=qd), 1)]
                item = Join(kind, item, right, on=on)
                scope = joined
                continue
            lc, rc = self.pick(pref) if pref and self.chance(0.7) else self.pick(pairs)
            on = [Expr("({0} = {1})", [col(lc.ref, lc.t), col(rc.ref, rc.t)], BOOL)]
            if kind == "FULL":
                if self.chance(0.2) and len(pairs) > 1:
                    lc2, rc2 = self.pick(pairs)
                    on.append(Expr("({0} = {1})", [col(lc2.ref, lc2.t), col(rc2.ref, rc2.t)], BOOL))
            elif self.on("join_filter") and self.chance(0.35):
                on.append(self.expr(BOOL, Ctx(scope=joined, sub=False, qd=qd), 1))
            item = Join(kind, item, right, on=on)
            scope = joined
        return item, scope

    # --- SELECT ----------------------------------------------------------
    def group_key(self, scope: Scope, qd) -> Expr:
        ctx = Ctx(scope=scope, sub=False, qd=qd)
        t = self.rtype((INT, TEXT, BOOL, DATE, NUMERIC, BIGINT, TS))
        cols = [c for c in scope.usable() if c.t == t]
        # (a boolean key stays a column: PostgreSQL flattens nested AND/OR,
        # so `(k OR true) OR bool_or(x)` no longer contains the key `k OR true`)
        if cols and (t == BOOL or self.chance(0.8)):
            c = self.pick(cols)
            return col(c.ref, t, nolit=True)
        e = self.expr(t, ctx, 1)
        # A key without a column is a constant, and PostgreSQL 15 does not
        # null a constant key in the grouping sets that leave it out
        # (SELECT 1 GROUP BY CUBE (1) gives 1 twice): no oracle there.
        if not e.contains(lambda n: not n.kids and not n.lit):
            c = self.pick(scope.usable())
            return col(c.ref, c.t, nolit=True)
        e.nolit = True
        return e

    def select(self, qd=0, types=None, role="top", outer=None) -> Select:
        """role: top, derived, operand (of a set operation)."""
        s = Select()
        s.from_, scope = self.from_clause(qd)
        base = Ctx(scope=scope, outer=outer, sub=qd < MAX_QUERY_DEPTH, qd=qd)
        for _ in range(self.wpick([(3, 0), (4, 1), (2, 2), (1, 3)])):
            s.where.append(self.expr(BOOL, base))
        if types is None:
            types = [self.rtype() for _ in range(self.wpick([(3, 1), (4, 2), (3, 3), (1, 4)]))]
        mode = self.wpick([(5, "plain"), (3, "grouped", "group_by"), (1, "aggregate", "aggregate"),
                           (2 if role in ("top", "derived") else 0, "window", "window")])
        # subqueries in the select list (not in WHERE or HAVING)
        items_sub = base.sub and self.on("subquery_in_select")
        if mode == "grouped":
            keys = []
            for _ in range(self.wpick([(4, 1), (3, 2), (1, 3)])):
                k = self.group_key(scope, qd)
                if all(k.sql() != o.sql() for o in keys):
                    keys.append(k)
            s.group = keys
            s.grouped = True
            if self.on("grouping_sets") and self.chance(0.25):
                s.group_mode = self.pick(["rollup", "cube", "sets"])
                if s.group_mode == "sets":
                    n = len(keys)
                    s.grouping_sets = [tuple(range(n)), tuple(range(n - 1)) if n > 1 else (0,), ()]
            gctx = Ctx(scope=scope, grouped=keys, agg=True, sub=items_sub, qd=qd)
            hctx = Ctx(scope=scope, grouped=keys, agg=True, sub=base.sub, qd=qd)
            for t in types:
                ks = [k for k in keys if k.t == t]
                if ks and self.chance(0.45):
                    s.items.append(copy.deepcopy(self.pick(ks)))
                elif t == INT and s.group_mode != "plain" and self.on("grouping_func") and self.chance(0.15):
                    s.items.append(Expr("GROUPING({0})", [copy.deepcopy(self.pick(keys))], INT, nolit=True))
                else:
                    s.items.append(self.expr(t, gctx))
            for _ in range(self.wpick([(3, 0), (2, 1), (1, 2)]) if self.on("having") else 0):
                s.having.append(self.expr(BOOL, hctx))
        elif mode == "aggregate":
            gctx = Ctx(scope=scope, grouped=[], agg=True, sub=items_sub, qd=qd)
            for t in types:
                s.items.append(self.aggregate(t, gctx) if self.chance(0.7) else self.expr(t, gctx))
            if self.chance(0.2):
                s.having.append(self.expr(BOOL, Ctx(scope=scope, grouped=[], agg=True, sub=base.sub, qd=qd)))
        else:
            ictx = Ctx(scope=scope, outer=outer, win=(mode == "window"), sub=items_sub, qd=qd)
            for t in types:
                s.items.append(self.expr(t, ictx))
            if mode == "window" and not any(e.contains(lambda n: n.win) for e in s.items):
                i = self.r.randrange(len(s.items))
                s.items[i] = self.window(types[i], ictx)
        if self.on("distinct") and self.chance(0.15):
            s.distinct = True
        if role == "derived":
            s.aliases = [f"c{i + 1}" for i in range(len(s.items))]
        elif role == "top":
            s.aliases = [f"x{i + 1}" if self.chance(0.7) else None for i in range(len(s.items))]
        else:
            s.aliases = [None] * len(s.items)
        if role == "top":
            self.order_and_limit(s)
        elif role == "derived" and self.chance(0.15):
            s.order_mode = "total"
            s.order_dirs = [self.pick(["ASC", "DESC"]) for _ in s.items]
            s.limit = self.pick([1, 3, 5])
        return s

    def order_and_limit(self, q):
        how = self.wpick([(5, "total"), (2, "partial"), (3, "none")])
        if how == "total":
            q.order_mode = "total"
            q.order_dirs = [self.pick(["ASC", "DESC", "ASC NULLS FIRST", "DESC NULLS LAST"])
                            for _ in range(q.ncols())]
            if self.on("limit") and self.chance(0.5):
                q.limit = self.pick([0, 1, 2, 3, 5, 10])
            if self.on("offset") and self.chance(0.25):
                q.offset = self.pick([0, 1, 2, 4])
        elif how == "partial":
            q.order_mode = "partial"
            q.order_pos = [(1, self.pick(["ASC", "DESC"]))]

    def setop(self, qd=0) -> SetOp:
        types = [self.rtype() for _ in range(self.wpick([(3, 1), (3, 2), (2, 3)]))]
        left = self.select(qd, types, role="operand")
        q = SetOp(self.wpick(SET_OPS), left, self.select(qd, types, role="operand"))
        if self.chance(0.15):
            q = SetOp(self.wpick(SET_OPS), q, self.select(qd, types, role="operand"))
        self.order_and_limit(q)
        return q

    def query(self):
        """One top-level query."""
        with_names, with_defs = [], []
        if self.on("cte") and self.chance(0.1):
            cte = self.select(1, role="derived")
            name = self.alias("cte")
            self.ctes.append((name, cte.types()))
            with_names.append(name)
            with_defs.append(cte)
        q = self.setop() if self.on("setop") and self.chance(0.2) else self.select(0, role="top")
        self.ctes = []
        if with_defs:
            return With(with_names, with_defs, q)
        return q

    # --- metamorphic cases -------------------------------------------------
    def plain_select(self, qd=0):
        """SELECT exprs FROM joins [WHERE ...]: no aggregates, windows, order."""
        s = Select()
        s.from_, scope = self.from_clause(qd)
        ctx = Ctx(scope=scope, sub=True, qd=qd)
        if self.chance(0.4):
            s.where.append(self.expr(BOOL, ctx))
        s.items = [self.expr(self.rtype(), ctx) for _ in range(self.pick([1, 2, 3]))]
        s.aliases = [None] * len(s.items)
        return s, ctx

    def predicate(self, ctx):
        return self.expr(BOOL, ctx)


def sql_type(t: str) -> str:
    return SQL_TYPE[t]
