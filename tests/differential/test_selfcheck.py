"""Self-checks of the comparison rules, the generator and the reducer.

    python -m unittest discover -s tests/differential -p 'test_*.py'

No server needed.
"""

from __future__ import annotations

import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from client import Outcome  # noqa: E402
from compare import classify  # noqa: E402
from gen import Gen  # noqa: E402
from reduce import reduce  # noqa: E402
from sqltree import is_ordered  # noqa: E402

INT4, INT8, NUM, F8, TEXT, TSTZ, TS = 23, 20, 1700, 701, 25, 1184, 1114


def ok(cols, rows):
    return Outcome(ok=True, columns=[(n, t, -1) for n, t in cols], rows=rows)


def err(state):
    return Outcome(ok=False, sqlstate=state, message="boom")


class CompareTest(unittest.TestCase):
    def test_multiset_ignores_order(self):
        a = ok([("x", INT4)], [("1",), ("2",), (None,)])
        b = ok([("x", INT4)], [(None,), ("2",), ("1",)])
        self.assertEqual(classify(a, b, ordered=False).kind, "agree")
        self.assertEqual(classify(a, b, ordered=True).kind, "wrong_result")

    def test_duplicates_count(self):
        a = ok([("x", INT4)], [("1",), ("1",)])
        b = ok([("x", INT4)], [("1",)])
        self.assertEqual(classify(a, b, ordered=False).kind, "wrong_result")

    def test_float_tolerance(self):
        a = ok([("x", F8)], [("0.30000000000000004",)])
        b = ok([("x", F8)], [("0.3",)])
        self.assertEqual(classify(a, b, False).kind, "agree")
        c = ok([("x", F8)], [("0.31",)])
        self.assertEqual(classify(a, c, False).kind, "wrong_result")
        d = ok([("x", F8)], [("135.48721490625",)])
        e = ok([("x", F8)], [("135.48706175000112",)])
        self.assertEqual(classify(d, e, False).kind, "float_rounding")
        n = ok([("x", NUM)], [("176470599.47058824",)])
        f = ok([("x", F8)], [("176470627.17647058",)])
        self.assertEqual(classify(n, f, False).kind, "wrong_result")

    def test_numeric_scale_and_precision(self):
        a = ok([("x", NUM)], [("1.50",)])
        self.assertEqual(classify(a, ok([("x", NUM)], [("1.5",)]), False).kind, "numeric_scale")
        p = ok([("x", NUM)], [("41.6666666666666667",)])
        s = ok([("x", NUM)], [("41.666666",)])
        self.assertEqual(classify(p, s, False).kind, "numeric_precision")
        self.assertEqual(classify(p, ok([("x", NUM)], [("41.8",)]), False).kind,
                         "wrong_result")

    def test_type_after_rows(self):
        a = ok([("x", INT4)], [("1",)])
        b = ok([("x", INT8)], [("1",)])
        self.assertEqual(classify(a, b, False).kind, "column_type")
        c = ok([("x", F8)], [("1",)])
        self.assertEqual(classify(ok([("x", NUM)], [("1.00",)]), c, False).kind, "column_type")
        tz = ok([("x", TSTZ)], [("2024-02-29 13:45:00+00",)])
        ts = ok([("x", TS)], [("2024-02-29 13:45:00",)])
        self.assertEqual(classify(tz, ts, False).kind, "column_type")

    def test_errors(self):
        self.assertEqual(classify(err("22003"), err("22012"), False).kind, "agree")
        self.assertEqual(classify(err("22003"), err("42883"), False).kind, "sqlstate")
        self.assertEqual(classify(err("22003"), err("XX000"), False).kind, "internal_error")
        self.assertEqual(classify(ok([("x", INT4)], []), err("XX000"), False).kind, "internal_error")
        self.assertEqual(classify(ok([("x", INT4)], []), err("0A000"), False).kind, "sluice_error")
        self.assertEqual(classify(err("22003"), ok([("x", INT4)], []), False).kind, "pg_error_only")

    def test_names_last(self):
        a = ok([("sum", INT8)], [("1",)])
        b = ok([("?column?", INT8)], [("1",)])
        self.assertEqual(classify(a, b, False).kind, "column_name")


class GeneratorTest(unittest.TestCase):
    def test_deterministic(self):
        for i in range(50):
            a = Gen(random.Random(f"7:{i}")).query().sql()
            b = Gen(random.Random(f"7:{i}")).query().sql()
            self.assertEqual(a, b)

    def test_disabled_feature_absent(self):
        for i in range(200):
            sql = Gen(random.Random(f"3:{i}"), ["mod", "window"]).query().sql()
            self.assertNotIn("mod(", sql)
            self.assertNotIn(" OVER (", sql)

    def test_total_order_covers_every_column(self):
        for i in range(200):
            q = Gen(random.Random(f"5:{i}")).query()
            if is_ordered(q):
                body = getattr(q, "body", q)
                order = body.sql().rsplit("ORDER BY", 1)[1]
                for n in range(1, body.ncols() + 1):
                    self.assertIn(f"{n} ", order + " ")


class ReduceTest(unittest.TestCase):
    def test_reduces_to_the_culprit(self):
        for i in range(100):
            q = Gen(random.Random(f"11:{i}")).query()
            if "length(" in q.sql():
                break
        small, _ = reduce(q, lambda n: "length(" in n.sql(), seconds=20)
        self.assertIn("length(", small.sql())
        self.assertLess(len(small.sql()), len(q.sql()))


if __name__ == "__main__":
    unittest.main()
