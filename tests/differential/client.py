"""A minimal PostgreSQL client: simple query protocol, text results, timeouts.

Uses psycopg's libpq layer (`psycopg.pq`) directly so that nothing is
converted: every value arrives as PostgreSQL's text output, with the column's
type OID and type modifier, exactly as psql would see it. A query that runs
longer than its timeout is cancelled; a connection that stops answering is
reported as lost.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass, field

from psycopg import pq


class ConnectionLost(Exception):
    pass


@dataclass
class Outcome:
    ok: bool
    columns: list[tuple[str, int, int]] = field(default_factory=list)  # name, type oid, typmod
    rows: list[tuple[str | None, ...]] = field(default_factory=list)
    sqlstate: str | None = None
    message: str | None = None
    elapsed: float = 0.0
    timeout: bool = False

    def summary(self, max_rows=20) -> dict:
        if self.ok:
            return {
                "status": "ok",
                "columns": [[n, TYPE_NAMES.get(o, str(o))] for n, o, _ in self.columns],
                "nrows": len(self.rows),
                "rows": [list(r) for r in self.rows[:max_rows]],
            }
        return {"status": "error", "sqlstate": self.sqlstate, "message": self.message,
                "timeout": self.timeout}


TYPE_NAMES = {
    16: "boolean", 17: "bytea", 18: "char", 19: "name", 20: "bigint", 21: "smallint",
    23: "integer", 25: "text", 26: "oid", 114: "json", 700: "real", 701: "double precision",
    705: "unknown", 1042: "character", 1043: "character varying", 1082: "date",
    1083: "time", 1114: "timestamp", 1184: "timestamptz", 1186: "interval",
    1700: "numeric", 3802: "jsonb",
}


class Client:
    def __init__(self, conninfo: str, timeout: float = 30.0):
        self.conninfo = conninfo
        self.timeout = timeout
        self.conn = pq.PGconn.connect(conninfo.encode())
        if self.conn.status != pq.ConnStatus.OK:
            msg = self.conn.error_message.decode(errors="replace")
            self.conn.finish()
            raise ConnectionLost(f"cannot connect to {conninfo}: {msg}")

    def close(self):
        try:
            self.conn.finish()
        except Exception:
            pass

    def execute(self, sql: str, timeout: float | None = None) -> Outcome:
        timeout = self.timeout if timeout is None else timeout
        start = time.monotonic()
        conn = self.conn
        try:
            conn.send_query(sql.encode())
        except Exception as e:
            raise ConnectionLost(str(e)) from e
        results = []
        cancelled = False
        deadline = start + timeout
        while True:
            try:
                if conn.is_busy():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        if cancelled:
                            raise ConnectionLost("no answer after cancel")
                        cancelled = True
                        conn.get_cancel().cancel()
                        deadline = time.monotonic() + 10
                        continue
                    r, _, _ = select.select([conn.socket], [], [], remaining)
                    conn.consume_input()
                    continue
                res = conn.get_result()
            except ConnectionLost:
                raise
            except Exception as e:  # psycopg.OperationalError and friends
                raise ConnectionLost(str(e)) from e
            if res is None:
                break
            results.append(res)
        elapsed = time.monotonic() - start
        if conn.status != pq.ConnStatus.OK:
            raise ConnectionLost(conn.error_message.decode(errors="replace"))
        if not results:
            return Outcome(ok=False, sqlstate="?????", message="no result", elapsed=elapsed)
        # The first error wins; otherwise the last result.
        for res in results:
            if res.status == pq.ExecStatus.FATAL_ERROR:
                state = res.error_field(pq.DiagnosticField.SQLSTATE)
                msg = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
                return Outcome(ok=False,
                               sqlstate=state.decode() if state else "?????",
                               message=msg.decode(errors="replace") if msg else "",
                               elapsed=elapsed, timeout=cancelled)
        res = results[-1]
        if res.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
            return Outcome(ok=False, sqlstate="?????",
                           message=f"unexpected result status {res.status}", elapsed=elapsed)
        cols = [(res.fname(i).decode(errors="replace"), res.ftype(i), res.fmod(i))
                for i in range(res.nfields)]
        rows = []
        for r in range(res.ntuples):
            row = []
            for c in range(res.nfields):
                v = res.get_value(r, c)
                row.append(None if v is None else v.decode(errors="replace"))
            rows.append(tuple(row))
        return Outcome(ok=True, columns=cols, rows=rows, elapsed=elapsed)
