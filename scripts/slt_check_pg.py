#!/usr/bin/env python3
"""Run sqllogictest files against a real PostgreSQL and check every record.

PostgreSQL is the oracle for `tests/slt/pg_compat_*.slt`: these files must pass
against it exactly as they pass against Sluice. This checker speaks the simple
query protocol through libpq (psycopg's low-level `pq` layer) and renders
values the way the Rust test runner does:

  * values in PostgreSQL's text output format, NULL as `NULL`, an empty
    string as `(empty)`;
  * a row is its values joined by one space, whitespace normalised;
  * errors are `<SQLSTATE>: <message>`; `statement error <regex>` and
    `query error <regex>` search that text.

Supported records: `statement ok|error [regex]|count N`, `query <types>
[nosort|rowsort|valuesort] [label]`, `query error [regex]`, `skipif`/`onlyif`
(this engine's label is `postgres`), `connection <name>`, `halt`,
`hash-threshold`, `control sortmode`, comments. As in the Rust crate, a
`connection <name>` line applies to the next record only.

Usage:
  scripts/slt_check_pg.py [--url URL] [--complete] FILE...

`--url` defaults to $SLUICE_TEST_PG_URL. `--complete` rewrites the expected
results of `query` records with what PostgreSQL returned (review the diff!).
Exit status is 0 only when every record of every file matched.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass, field

try:
    from psycopg import pq
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit(
        "psycopg is not installed; run scripts/setup-test-env.sh and use "
        "$SLUICE_VENV/bin/python"
    )

ENGINE_LABELS = {"postgres"}
DELIMITER = "----"
SQLSTATE_ONLY = re.compile(r"^\(([0-9A-Z]{5})\)$")


@dataclass
class Record:
    kind: str  # "statement" | "query"
    line: int  # 1-based line of the record's header
    sql: str
    header: str
    conditions: list[tuple[str, str]] = field(default_factory=list)
    connection: str = "default"
    # statement
    expect: str = "ok"  # ok | error | count
    error_regex: str | None = None
    count: int | None = None
    # query
    types: str = ""
    sort_mode: str | None = None
    results: list[str] = field(default_factory=list)
    # lines (0-based, half-open) holding the expected results, for --complete
    results_span: tuple[int, int] | None = None
    has_delimiter: bool = False


@dataclass
class Control:
    kind: str  # sortmode | hash-threshold | halt
    value: str
    line: int


class ParseError(Exception):
    pass


def parse(path: str) -> list[Record | Control]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    records: list[Record | Control] = []
    conditions: list[tuple[str, str]] = []
    connection = "default"
    i = 0
    n = len(lines)

    def read_block(start: int) -> tuple[list[str], int, bool]:
        """Lines from start up to an empty line or `----`."""
        body = []
        j = start
        while j < n and lines[j].strip() != "":
            if lines[j] == DELIMITER:
                return body, j + 1, True
            body.append(lines[j])
            j += 1
        return body, j, False

    while i < n:
        raw = lines[i]
        stripped = raw.strip()
        if stripped == "" or stripped.startswith("#"):
            i += 1
            continue
        tokens = stripped.split()
        head = tokens[0]
        lineno = i + 1
        if head in ("skipif", "onlyif") and len(tokens) == 2:
            conditions.append((head, tokens[1]))
            i += 1
            continue
        if head == "connection" and len(tokens) == 2:
            connection = tokens[1]
            i += 1
            continue
        if head == "halt":
            records.append(Control("halt", "", lineno))
            i += 1
            continue
        if head == "hash-threshold":
            records.append(Control("hash-threshold", tokens[1], lineno))
            i += 1
            continue
        if head == "control" and len(tokens) >= 3 and tokens[1] == "sortmode":
            records.append(Control("sortmode", tokens[2], lineno))
            i += 1
            continue
        if head == "statement":
            rec = Record("statement", lineno, "", raw, conditions, connection)
            rest = tokens[1:]
            if not rest:
                raise ParseError(f"{path}:{lineno}: bare `statement`")
            if rest[0] == "ok":
                rec.expect = "ok"
            elif rest[0] == "error":
                rec.expect = "error"
                rec.error_regex = " ".join(rest[1:]) or None
            elif rest[0] == "count" and len(rest) >= 2:
                rec.expect = "count"
                rec.count = int(rest[1])
            else:
                raise ParseError(f"{path}:{lineno}: bad statement header: {raw}")
            body, i, delim = read_block(i + 1)
            if delim:
                if rec.expect != "error" or rec.error_regex:
                    raise ParseError(f"{path}:{lineno}: statement with results")
                err, i = read_multiline(lines, i)
                rec.error_regex = "^" + re.escape(err.strip()) + "$"
            rec.sql = "\n".join(body)
            records.append(rec)
            conditions = []
            connection = "default"
            continue
        if head == "query":
            rec = Record("query", lineno, "", raw, conditions, connection)
            rest = tokens[1:]
            if rest and rest[0] == "error":
                rec.expect = "error"
                rec.error_regex = " ".join(rest[1:]) or None
            else:
                if not rest:
                    raise ParseError(f"{path}:{lineno}: query without types")
                rec.types = rest[0]
                if len(rest) > 1 and rest[1] in ("nosort", "rowsort", "valuesort"):
                    rec.sort_mode = rest[1]
            body, i, delim = read_block(i + 1)
            rec.sql = "\n".join(body)
            rec.has_delimiter = delim
            if delim:
                if rec.expect == "error":
                    if rec.error_regex:
                        raise ParseError(f"{path}:{lineno}: duplicated error message")
                    err, i = read_multiline(lines, i)
                    rec.error_regex = "^" + re.escape(err.strip()) + "$"
                else:
                    start = i
                    while i < n and lines[i] != "":
                        rec.results.append(lines[i])
                        i += 1
                    rec.results_span = (start, i)
            records.append(rec)
            conditions = []
            connection = "default"
            continue
        raise ParseError(f"{path}:{lineno}: unknown record: {raw}")
    return records


def read_multiline(lines: list[str], i: int) -> tuple[str, int]:
    out = []
    n = len(lines)
    while i < n:
        if lines[i] == "" and (i + 1 >= n or lines[i + 1] == ""):
            return "\n".join(out), i + 2
        out.append(lines[i])
        i += 1
    return "\n".join(out), i


def normalize(s: str) -> str:
    return " ".join(s.split())


def render(value: bytes | None) -> str:
    if value is None:
        return "NULL"
    text = value.decode("utf-8")
    return "(empty)" if text == "" else text


@dataclass
class Outcome:
    error: str | None = None  # "<SQLSTATE>: <message>"
    rows: list[list[str]] | None = None  # None for a command without tuples
    ncols: int = 0
    command_tuples: int | None = None


def execute(conn: pq.PGconn, sql: str) -> Outcome:
    res = conn.exec_(sql.encode("utf-8"))
    status = res.status
    if status == pq.ExecStatus.TUPLES_OK:
        rows = [
            [render(res.get_value(r, c)) for c in range(res.nfields)]
            for r in range(res.ntuples)
        ]
        return Outcome(rows=rows, ncols=res.nfields)
    if status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.EMPTY_QUERY):
        tuples = res.command_tuples
        return Outcome(command_tuples=tuples)
    state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
    msg = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode()
    if not state:
        msg = (res.error_message or conn.error_message or b"").decode().strip()
    return Outcome(error=f"{state}: {msg}")


def error_matches(regex: str | None, err: str) -> bool:
    if regex is None:
        return True
    m = SQLSTATE_ONLY.match(regex)
    if m:
        return err.split(":", 1)[0] == m.group(1)
    return re.search(regex, err) is not None


def sort_rows(rows: list[list[str]], mode: str | None) -> list[list[str]]:
    if mode == "rowsort":
        return sorted(rows)
    if mode == "valuesort":
        return sorted([[v] for row in rows for v in row])
    return rows


class FileRun:
    def __init__(self, path: str, url: str, complete: bool):
        self.path = path
        self.url = url
        self.complete = complete
        self.conns: dict[str, pq.PGconn] = {}
        self.failures: list[str] = []
        self.passed = 0
        self.skipped = 0
        self.sort_mode: str | None = None
        self.hash_threshold = 0
        self.replacements: list[tuple[tuple[int, int] | None, int, list[str]]] = []

    def conn(self, name: str) -> pq.PGconn:
        if name not in self.conns:
            c = pq.PGconn.connect(self.url.encode())
            if c.status != pq.ConnStatus.OK:
                raise RuntimeError(
                    f"cannot connect to {self.url}: {c.error_message.decode()}"
                )
            self.conns[name] = c
        return self.conns[name]

    def close(self) -> None:
        for c in self.conns.values():
            c.finish()

    def fail(self, rec: Record, why: str) -> None:
        sql = rec.sql if len(rec.sql) < 400 else rec.sql[:400] + "..."
        self.failures.append(f"{self.path}:{rec.line}: {why}\n    sql: {sql}")

    def skip(self, rec: Record) -> bool:
        for kind, label in rec.conditions:
            if kind == "skipif" and label in ENGINE_LABELS:
                return True
            if kind == "onlyif" and label not in ENGINE_LABELS:
                return True
        return False

    def run(self) -> None:
        for rec in parse(self.path):
            if isinstance(rec, Control):
                if rec.kind == "halt":
                    break
                if rec.kind == "sortmode":
                    self.sort_mode = rec.value
                if rec.kind == "hash-threshold":
                    self.hash_threshold = int(rec.value)
                continue
            if self.skip(rec):
                self.skipped += 1
                continue
            out = execute(self.conn(rec.connection), rec.sql)
            if rec.kind == "statement":
                self.check_statement(rec, out)
            else:
                self.check_query(rec, out)

    def check_statement(self, rec: Record, out: Outcome) -> None:
        if rec.expect == "error":
            if out.error is None:
                self.fail(rec, f"expected error {rec.error_regex!r}, statement succeeded")
            elif not error_matches(rec.error_regex, out.error):
                self.fail(rec, f"expected error {rec.error_regex!r}, got {out.error!r}")
            else:
                self.passed += 1
            return
        if out.error is not None:
            self.fail(rec, f"expected ok, got error {out.error!r}")
            return
        if rec.expect == "count":
            got = out.command_tuples if out.rows is None else len(out.rows)
            if got != rec.count:
                self.fail(rec, f"expected count {rec.count}, got {got}")
                return
        self.passed += 1

    def check_query(self, rec: Record, out: Outcome) -> None:
        if rec.expect == "error":
            if out.error is None:
                self.fail(rec, f"expected error {rec.error_regex!r}, query succeeded")
            elif not error_matches(rec.error_regex, out.error):
                self.fail(rec, f"expected error {rec.error_regex!r}, got {out.error!r}")
            else:
                self.passed += 1
            return
        if out.error is not None:
            self.fail(rec, f"query failed: {out.error!r}")
            return
        if out.rows is None:
            # like the Rust runner: a command without a result set matches
            # only a query that expects no rows
            if rec.results:
                self.fail(rec, "query returned no result set")
            else:
                self.passed += 1
            return
        if out.ncols != len(rec.types):
            self.fail(
                rec,
                f"query header has {len(rec.types)} column types, result has {out.ncols} columns",
            )
            return
        rows = sort_rows(out.rows, rec.sort_mode or self.sort_mode)
        nvalues = sum(len(r) for r in rows)
        if self.hash_threshold and nvalues > self.hash_threshold:
            md5 = hashlib.md5()
            for row in rows:
                for v in row:
                    md5.update(v.encode() + b"\n")
            actual = [f"{nvalues} values hashing to {md5.hexdigest()}"]
        else:
            actual = [" ".join(normalize(v) for v in row) for row in rows]
        expected = [normalize(line) for line in rec.results]
        if actual != expected:
            if self.complete:
                self.replacements.append((rec.results_span, rec.line, actual))
                return
            diff = "\n".join(
                ["    expected:"]
                + [f"      {line}" for line in expected]
                + ["    actual:"]
                + [f"      {line}" for line in actual]
            )
            self.fail(rec, "result mismatch\n" + diff)
            return
        self.passed += 1

    def rewrite(self) -> None:
        if not self.replacements:
            return
        with open(self.path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        header_to_span = {}
        for span, header_line, actual in self.replacements:
            header_to_span[header_line] = (span, actual)
        # Apply bottom-up so earlier line numbers stay valid.
        for header_line in sorted(header_to_span, reverse=True):
            span, actual = header_to_span[header_line]
            if span is None:
                # no `----` yet: results go after the SQL block
                j = header_line  # 0-based index of the first SQL line
                while j < len(lines) and lines[j] != "":
                    j += 1
                lines[j:j] = [DELIMITER] + actual
            else:
                lines[span[0] : span[1]] = actual
        with open(self.path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        print(f"{self.path}: rewrote {len(header_to_span)} query results", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--url", default=os.environ.get("SLUICE_TEST_PG_URL"))
    ap.add_argument("--complete", action="store_true")
    args = ap.parse_args()
    if not args.url:
        ap.error("no --url and no SLUICE_TEST_PG_URL")
    total_pass = total_fail = total_skip = 0
    for path in args.files:
        run = FileRun(path, args.url, args.complete)
        try:
            run.run()
        except ParseError as e:
            run.failures.append(str(e))
        finally:
            run.close()
        if args.complete:
            run.rewrite()
        for f in run.failures:
            print(f"FAIL {f}")
        status = "ok" if not run.failures else "FAILED"
        print(
            f"{path}: {status} ({run.passed} records passed, "
            f"{len(run.failures)} failed, {run.skipped} skipped)"
        )
        total_pass += run.passed
        total_fail += len(run.failures)
        total_skip += run.skipped
    print(f"{total_pass} passed, {total_fail} failed, {total_skip} skipped")
    return 0 if total_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
