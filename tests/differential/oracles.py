"""Metamorphic oracles: relations a correct engine keeps, checked on Sluice.

Ternary logic partitioning (TLP): for a query q and any predicate p, the rows
of q are, as a multiset, the rows of `q WHERE p`, `q WHERE NOT p` and
`q WHERE p IS NULL` together (with DISTINCT: as a set).

NoREC: `SELECT count(*) FROM f WHERE p` equals
`SELECT sum(CASE WHEN p THEN 1 ELSE 0 END) FROM f`: the optimiser may
rewrite the first (push p into scans and joins) but not the second.

Neither needs a reference; when a relation breaks on Sluice the same queries
run on PostgreSQL, and only a case PostgreSQL keeps counts (otherwise the
generator made something non-deterministic).
"""

from __future__ import annotations

import copy

from compare import multiset_diff, normalise, show_row
from schema import BOOL
from sqltree import Expr, Node, Select


class TLPCase(Node):
    FIELDS = ("base", "pred")

    def __init__(self, base: Select, pred: Expr):
        self.base = base
        self.pred = pred

    def queries(self) -> list[str]:
        out = [self.base.sql()]
        for fmt in ("{0}", "NOT {0}", "({0}) IS NULL"):
            s = copy.copy(self.base)
            s.where = list(self.base.where) + [Expr(fmt, [self.pred], BOOL)]
            out.append(s.sql())
        return out

    def sql(self) -> str:
        return ";\n".join(self.queries())


class NoRECCase(Node):
    FIELDS = ("from_", "pred")

    def __init__(self, from_: Node, pred: Expr):
        self.from_ = from_
        self.pred = pred

    def queries(self) -> list[str]:
        f, p = self.from_.sql(), self.pred.sql()
        return [f"SELECT count(*) FROM {f} WHERE {p}",
                f"SELECT sum(CASE WHEN {p} THEN 1 ELSE 0 END) FROM {f}"]

    def sql(self) -> str:
        return ";\n".join(self.queries())


def check(case: Node, run) -> tuple[str, dict]:
    """Run the case's queries with run(sql) -> Outcome.

    Returns ("ok" | "broken" | "error", detail). "error" means some query
    failed, so the relation says nothing.
    """
    outs = [run(q) for q in case.queries()]
    bad = [o for o in outs if not o.ok]
    if bad:
        return "error", {"sqlstate": bad[0].sqlstate, "message": bad[0].message,
                         "outcomes": outs}
    if isinstance(case, TLPCase):
        whole = normalise(outs[0])
        parts = []
        for o in outs[1:]:
            parts += normalise(o)
        if case.base.distinct:
            # each partition is distinct on its own; together they are a set
            parts = _distinct(parts)
        only_whole, only_parts = multiset_diff(whole, parts)
        if only_whole or only_parts:
            return "broken", {
                "why": f"q has {len(whole)} rows, the partitions {len(parts)} "
                       f"({', '.join(str(len(o.rows)) for o in outs[1:])})",
                "only_q": [show_row(r) for r in only_whole[:10]],
                "only_partitions": [show_row(r) for r in only_parts[:10]],
                "outcomes": outs,
            }
        return "ok", {"outcomes": outs}
    a = outs[0].rows[0][0] if outs[0].rows else None
    b = outs[1].rows[0][0] if outs[1].rows else None
    na = int(a) if a is not None else 0
    nb = int(b) if b is not None else 0
    if na != nb:
        return "broken", {"why": f"count(*) WHERE p = {a}, sum(CASE WHEN p ...) = {b}",
                          "outcomes": outs}
    return "ok", {"outcomes": outs}


def _distinct(rows):
    from compare import rows_equal, sort_key
    out = []
    for r in sorted(rows, key=sort_key):
        if not out or not rows_equal(out[-1], r):
            out.append(r)
    return out
