#!/usr/bin/env python3
"""Group the mismatches of one or more reports (run.py --report) by likely
root cause and print, for each group, its size and the smallest reproducer
found, with what each server answered (Markdown).

    summarize.py REPORT.jsonl [...] [--known-too] [--max-rows 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compare import KIND_ORDER  # noqa: E402


def outcome_text(o: dict | None, max_rows: int) -> str:
    if o is None:
        return "-"
    if o["status"] == "error":
        return f"ERROR {o['sqlstate']}: {o['message']}"
    cols = ", ".join(f"{n} {t}" for n, t in o["columns"])
    rows = "; ".join("(" + ", ".join("NULL" if v is None else str(v) for v in r) + ")"
                     for r in o["rows"][:max_rows])
    more = f" ... ({o['nrows']} rows)" if o["nrows"] > max_rows else f" ({o['nrows']} rows)"
    return f"[{cols}] {rows}{more}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reports", nargs="+")
    ap.add_argument("--known-too", action="store_true", help="include known differences")
    ap.add_argument("--max-rows", type=int, default=5)
    args = ap.parse_args()
    groups = defaultdict(list)
    summaries = []
    for path in args.reports:
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if "summary" in rec:
                    summaries.append(rec["summary"])
                    continue
                if rec.get("known") and not args.known_too:
                    continue
                groups[rec["group"]].append(rec)

    def order(item):
        kind = item[0].split(" ")[0]
        return (KIND_ORDER.index(kind) if kind in KIND_ORDER else 99, -len(item[1]))

    total = sum(len(v) for v in groups.values())
    print(f"# {total} mismatches in {len(groups)} groups\n")
    for key, recs in sorted(groups.items(), key=order):
        best = min(recs, key=lambda r: len(r.get("reduced", {}).get("sql") or r["sql"]))
        red = best.get("reduced") or {}
        sql = red.get("sql") or best["sql"]
        print(f"## {key}  ({len(recs)}x)\n")
        print(f"seed {best['seed']} case {best['index']}:\n")
        print("```sql\n" + sql + ";\n```\n")
        if "pg" in red or "pg" in best:
            print(f"- PostgreSQL: {outcome_text(red.get('pg', best.get('pg')), args.max_rows)}")
            print(f"- Sluice: {outcome_text(red.get('sluice', best.get('sluice')), args.max_rows)}")
        detail = red.get("detail") or best["detail"]
        if detail:
            print(f"- detail: {json.dumps(detail, default=str)[:600]}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
