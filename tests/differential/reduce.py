"""Greedy test-case reduction over the syntax tree.

Tries every replacement every node proposes (parents first, so whole clauses
go before their parts), keeps the first one that makes the SQL shorter and
still shows the same mismatch, and starts again, until nothing helps or the
time budget is spent.
"""

from __future__ import annotations

import time
from typing import Callable

from sqltree import Node, replace, walk


def reduce(root: Node, still_fails: Callable[[Node], bool], seconds: float,
           render: Callable[[Node], str] = lambda n: n.sql()) -> tuple[Node, int]:
    """The smallest tree found, and how many candidates were tried."""
    deadline = time.monotonic() + seconds
    tried: set[str] = set()
    best_len = len(render(root))
    tries = 0
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for path, node in list(walk(root)):
            for cand in node.shrinks():
                if time.monotonic() >= deadline:
                    return root, tries
                new = replace(root, path, cand)
                try:
                    sql = render(new)
                except Exception:
                    continue
                if len(sql) >= best_len or sql in tried:
                    continue
                tried.add(sql)
                tries += 1
                if still_fails(new):
                    root, best_len = new, len(sql)
                    improved = True
                    break
            if improved:
                break
    return root, tries
