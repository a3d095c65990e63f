"""A small SQL syntax tree: what the generator builds and the reducer shrinks.

Every node renders itself as PostgreSQL text (`sql()`) and proposes smaller
replacements for itself (`shrinks()`). The reducer walks the tree through
`FIELDS` (the attributes holding child nodes, single or in lists), tries each
replacement, and keeps it when the mismatch persists. Replacements need not
be valid SQL: PostgreSQL is asked first and an invalid candidate is dropped,
so a node proposes anything plausible (a same-typed child, a literal, the
clause without one conjunct).
"""

from __future__ import annotations

import copy
from typing import Iterator

from schema import SQL_TYPE

# One simple non-NULL literal per type: what an expression shrinks to.
SIMPLE_LITERAL = {
    "int": "1",
    "bigint": "CAST(1 AS bigint)",
    "numeric": "1.50",
    "float": "CAST(1.5 AS double precision)",
    "text": "'a'",
    "bool": "true",
    "date": "DATE '2024-02-29'",
    "timestamp": "TIMESTAMP '2024-02-29 12:00:00'",
    "timestamptz": "TIMESTAMPTZ '2024-02-29 12:00:00+00'",
}


def null_literal(t: str) -> str:
    return f"CAST(NULL AS {SQL_TYPE[t]})"


class Node:
    FIELDS: tuple[str, ...] = ()

    def sql(self) -> str:
        raise NotImplementedError

    def shrinks(self) -> Iterator["Node"]:
        return iter(())

    def __str__(self) -> str:
        return self.sql()


class Expr(Node):
    """An expression: a format string over its children.

    `fmt` uses {0}, {1}, ... for the children's SQL. `t` is the logical
    PostgreSQL type of the result. `lit` marks literals, `agg` aggregate
    calls, `win` window calls; `nolit` forbids shrinking to a literal (an
    integer literal in GROUP BY or ORDER BY would become a column ordinal).
    """

    FIELDS = ("kids",)

    def __init__(self, fmt: str, kids: list[Node], t: str, *, lit=False, agg=False,
                 win=False, nolit=False):
        self.fmt = fmt
        self.kids = list(kids)
        self.t = t
        self.lit = lit
        self.agg = agg
        self.win = win
        self.nolit = nolit

    def sql(self) -> str:
        return self.fmt.format(*[k.sql() for k in self.kids])

    def shrinks(self):
        for k in self.kids:
            if isinstance(k, Expr) and k.t == self.t and not k.lit:
                yield k
        if not self.lit and not self.nolit:
            yield lit(SIMPLE_LITERAL[self.t], self.t)
            yield lit(null_literal(self.t), self.t)

    def contains(self, pred) -> bool:
        if pred(self):
            return True
        for k in self.kids:
            if isinstance(k, Expr) and k.contains(pred):
                return True
            if not isinstance(k, Expr):
                # a subquery: aggregates inside belong to it
                continue
        return False


def lit(text: str, t: str) -> Expr:
    return Expr(text.replace("{", "{{").replace("}", "}}"), [], t, lit=True)


def col(ref: str, t: str, nolit=False) -> Expr:
    return Expr(ref, [], t, nolit=nolit)


class TableRef(Node):
    def __init__(self, name: str, alias: str):
        self.name = name
        self.alias = alias

    def sql(self):
        return f"{self.name} AS {self.alias}"


class Derived(Node):
    FIELDS = ("query",)

    def __init__(self, query: Node, alias: str):
        self.query = query
        self.alias = alias

    def sql(self):
        return f"({self.query.sql()}) AS {self.alias}"

    def shrinks(self):
        # a derived table nobody reads a column of can be any table
        for name in ("t3", "t0"):
            yield TableRef(name, self.alias)


class Join(Node):
    """left KIND JOIN right ON (c1) AND (c2) | USING (cols); left-deep."""

    FIELDS = ("left", "right", "on")

    def __init__(self, kind: str, left: Node, right: Node, on: list[Expr] | None = None,
                 using: list[str] | None = None):
        self.kind = kind  # INNER LEFT RIGHT FULL CROSS
        self.left = left
        self.right = right
        self.on = list(on or [])
        self.using = using

    def sql(self):
        if self.kind == "CROSS":
            return f"{self.left.sql()} CROSS JOIN {self.right.sql()}"
        kw = {"INNER": "JOIN", "LEFT": "LEFT JOIN", "RIGHT": "RIGHT JOIN",
              "FULL": "FULL JOIN"}[self.kind]
        head = f"{self.left.sql()} {kw} {self.right.sql()}"
        if self.using is not None:
            return f"{head} USING ({', '.join(self.using)})"
        cond = " AND ".join(f"({c.sql()})" for c in self.on) or "true"
        return f"{head} ON {cond}"

    def shrinks(self):
        yield self.left
        yield self.right
        if self.kind not in ("INNER", "CROSS"):
            j = copy.copy(self)
            j.kind = "INNER"
            yield j
        if len(self.on) > 1:
            for i in range(len(self.on)):
                j = copy.copy(self)
                j.on = self.on[:i] + self.on[i + 1:]
                yield j
        if self.using and len(self.using) > 1:
            for i in range(len(self.using)):
                j = copy.copy(self)
                j.using = self.using[:i] + self.using[i + 1:]
                yield j


class Select(Node):
    """One SELECT block.

    order_mode:
      none     no ORDER BY
      total    ORDER BY every output column by position (order_dirs[i] for
               column i+1): rows that tie are identical, so the order is
               fully defined and LIMIT/OFFSET pick a defined set
      keys     ORDER BY the expressions in order_keys (with order_dirs);
               defined only if the generator made the keys unique
      partial  ORDER BY some output columns by position (order_pos): the
               result is compared as a multiset
    """

    FIELDS = ("items", "from_", "where", "group", "having", "order_keys")

    def __init__(self):
        self.distinct = False
        self.items: list[Expr] = []
        self.aliases: list[str | None] = []
        self.from_: Node | None = None
        self.where: list[Expr] = []
        self.group: list[Expr] = []
        self.group_mode = "plain"  # plain rollup cube sets
        self.grouping_sets: list[tuple[int, ...]] = []
        self.grouped = False  # GROUP BY present (even with no keys left)
        self.having: list[Expr] = []
        self.order_mode = "none"
        self.order_dirs: list[str] = []
        self.order_keys: list[Expr] = []
        self.order_pos: list[tuple[int, str]] = []
        self.limit: int | None = None
        self.offset: int | None = None

    def ncols(self) -> int:
        return len(self.items)

    def types(self) -> list[str]:
        return [e.t for e in self.items]

    def _group_sql(self) -> str:
        keys = [g.sql() for g in self.group]
        if self.group_mode == "rollup":
            return f"ROLLUP ({', '.join(keys)})"
        if self.group_mode == "cube":
            return f"CUBE ({', '.join(keys)})"
        if self.group_mode == "sets":
            sets = []
            for s in self.grouping_sets:
                sets.append("(" + ", ".join(keys[i] for i in s if i < len(keys)) + ")")
            return f"GROUPING SETS ({', '.join(sets)})"
        return ", ".join(keys)

    def order_sql(self) -> str:
        return render_order(self)

    def sql(self):
        parts = ["SELECT"]
        if self.distinct:
            parts.append("DISTINCT")
        items = []
        for e, a in zip(self.items, self.aliases):
            items.append(e.sql() + (f" AS {a}" if a else ""))
        parts.append(", ".join(items))
        if self.from_ is not None:
            parts.append("FROM " + self.from_.sql())
        if self.where:
            parts.append("WHERE " + " AND ".join(f"({w.sql()})" for w in self.where))
        if self.group:
            parts.append("GROUP BY " + self._group_sql())
        if self.having:
            parts.append("HAVING " + " AND ".join(f"({h.sql()})" for h in self.having))
        o = self.order_sql()
        if o:
            parts.append(o)
        if self.limit is not None:
            parts.append(f"LIMIT {self.limit}")
        if self.offset is not None:
            parts.append(f"OFFSET {self.offset}")
        return " ".join(parts)

    def shrinks(self):
        def variant(**kw):
            s = copy.copy(self)
            for k, v in kw.items():
                setattr(s, k, v)
            return s

        if self.limit is not None:
            yield variant(limit=None)
        if self.offset is not None:
            yield variant(offset=None)
        if self.order_mode != "none" and self.limit is None and self.offset is None:
            yield variant(order_mode="none", order_keys=[])
        for i in range(len(self.where)):
            yield variant(where=self.where[:i] + self.where[i + 1:])
        for i in range(len(self.having)):
            yield variant(having=self.having[:i] + self.having[i + 1:])
        if self.distinct:
            yield variant(distinct=False)
        if self.group_mode != "plain":
            yield variant(group_mode="plain")
        if len(self.items) > 1:
            for i in range(len(self.items)):
                dirs = self.order_dirs[:i] + self.order_dirs[i + 1:] if self.order_dirs else []
                yield variant(items=self.items[:i] + self.items[i + 1:],
                              aliases=self.aliases[:i] + self.aliases[i + 1:],
                              order_dirs=dirs)
        for i in range(len(self.group)):
            yield variant(group=self.group[:i] + self.group[i + 1:])


def render_order(q) -> str:
    if q.order_mode == "total":
        n = q.ncols()
        dirs = list(q.order_dirs) + ["ASC"] * max(0, n - len(q.order_dirs))
        return "ORDER BY " + ", ".join(f"{i + 1} {dirs[i]}" for i in range(n))
    if q.order_mode == "keys" and q.order_keys:
        dirs = list(q.order_dirs) + ["ASC"] * max(0, len(q.order_keys) - len(q.order_dirs))
        return "ORDER BY " + ", ".join(
            f"{k.sql()} {dirs[i]}" for i, k in enumerate(q.order_keys))
    if q.order_mode == "partial" and q.order_pos:
        return "ORDER BY " + ", ".join(f"{p} {d}" for p, d in q.order_pos)
    return ""


class SetOp(Node):
    """left OP right, left-deep; optional ORDER BY (by position) and LIMIT."""

    FIELDS = ("left", "right")

    def __init__(self, op: str, left: Node, right: Node):
        self.op = op
        self.left = left
        self.right = right
        self.order_mode = "none"
        self.order_dirs: list[str] = []
        self.order_pos: list[tuple[int, str]] = []
        self.order_keys: list[Expr] = []
        self.limit: int | None = None
        self.offset: int | None = None

    def ncols(self):
        return self.left.ncols()

    def types(self):
        return self.left.types()

    def _operand(self, q):
        s = q.sql()
        if isinstance(q, SetOp):
            return f"({s})"
        return s

    def sql(self):
        s = f"{self._operand(self.left)} {self.op} {self._operand(self.right)}"
        o = render_order(self)
        if o:
            s += " " + o
        if self.limit is not None:
            s += f" LIMIT {self.limit}"
        if self.offset is not None:
            s += f" OFFSET {self.offset}"
        return s

    def shrinks(self):
        yield self.left
        yield self.right
        if self.limit is not None or self.offset is not None:
            s = copy.copy(self)
            s.limit = None
            s.offset = None
            yield s
        elif self.order_mode != "none":
            s = copy.copy(self)
            s.order_mode = "none"
            yield s
        if self.op.endswith(" ALL"):
            s = copy.copy(self)
            s.op = self.op[:-4]
            yield s


class With(Node):
    """WITH name AS (query) [, ...] body."""

    FIELDS = ("ctes", "body")

    def __init__(self, names: list[str], ctes: list[Node], body: Node):
        self.names = names
        self.ctes = ctes
        self.body = body

    def sql(self):
        defs = ", ".join(f"{n} AS ({q.sql()})" for n, q in zip(self.names, self.ctes))
        return f"WITH {defs} {self.body.sql()}"

    def ncols(self):
        return self.body.ncols()

    def types(self):
        return self.body.types()

    @property
    def order_mode(self):
        return getattr(self.body, "order_mode", "none")


def is_ordered(q: Node) -> bool:
    """The result order is fully defined: compare rows as a list."""
    if isinstance(q, With):
        return is_ordered(q.body)
    return getattr(q, "order_mode", "none") == "total"


# --- generic tree walking for the reducer ---------------------------------

def walk(node: Node, path=()) -> Iterator[tuple[tuple, Node]]:
    """Every node with its path, parents before children."""
    yield path, node
    for f in node.FIELDS:
        v = getattr(node, f)
        if isinstance(v, list):
            for i, x in enumerate(v):
                if isinstance(x, Node):
                    yield from walk(x, path + ((f, i),))
        elif isinstance(v, Node):
            yield from walk(v, path + ((f, None),))


def replace(root: Node, path: tuple, new: Node) -> Node:
    """A copy of root with the node at path replaced (untouched parts shared)."""
    if not path:
        return new
    (f, i), rest = path[0], path[1:]
    top = copy.copy(root)
    v = getattr(root, f)
    if i is None:
        setattr(top, f, replace(v, rest, new))
    else:
        lst = list(v)
        lst[i] = replace(v[i], rest, new)
        setattr(top, f, lst)
    return top
