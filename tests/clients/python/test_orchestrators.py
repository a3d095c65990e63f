"""An orchestrator's task calling Sluice: what Airflow's PostgresHook
(psycopg2) and a Prefect task over psycopg 3 do with `sluice.refresh`. The
run's status comes back as a row; a failed run is an error with the cause's
SQLSTATE, and the connection goes on.

Sluice only: PostgreSQL has no `sluice.refresh`.
"""
from __future__ import annotations

import psycopg
import psycopg2
import psycopg2.errors
import pytest


SETUP = """
CREATE TABLE orch_gate (g bigint);
INSERT INTO orch_gate VALUES (1);
CREATE TABLE orch_facts (x bigint);
INSERT INTO orch_facts VALUES (1), (2);
CREATE MATERIALIZED VIEW orch_counts AS
  SELECT count(*) / (SELECT count(*) FROM orch_gate) AS n FROM orch_facts;
"""


@pytest.fixture(scope="module")
def view(sluice):
    with psycopg.connect(sluice.conninfo, autocommit=True) as conn:
        conn.execute(SETUP)
    return sluice


def test_psycopg2_task_gets_the_status_and_the_error(view):
    conn = psycopg2.connect(view.conninfo)
    try:
        cur = conn.cursor()
        cur.execute("INSERT INTO orch_facts VALUES (3)")
        cur.execute("SELECT sluice.refresh(%s)", ("public.orch_counts",))
        assert cur.fetchone() == ("succeeded",)
        conn.commit()
        cur.execute("SELECT n FROM orch_counts")
        assert cur.fetchone() == (3,)
        conn.commit()
        # A run that fails: the task fails with the cause.
        cur.execute("DELETE FROM orch_gate")
        cur.execute("INSERT INTO orch_facts VALUES (4)")
        conn.commit()
        with pytest.raises(psycopg2.errors.DivisionByZero) as e:
            cur.execute("SELECT sluice.refresh('orch_counts')")
        assert "refresh of public.orch_counts failed after 1 attempt" in str(e.value)
        conn.rollback()
        cur.execute("SELECT n FROM orch_counts")
        assert cur.fetchone() == (3,), "the previous version stays"
        cur.execute("INSERT INTO orch_gate VALUES (1)")
        conn.commit()
    finally:
        conn.close()


def test_psycopg3_prepared_call_and_run_history(view):
    with psycopg.connect(view.conninfo, autocommit=True) as conn:
        # Server-side binding: `$1` is described as text.
        row = conn.execute(
            "SELECT sluice.refresh(%s)", ["orch_counts"], prepare=True
        ).fetchone()
        assert row == ("succeeded",)
        conn.execute("CALL sluice.refresh('orch_counts')")
        assert conn.execute("SELECT n FROM orch_counts").fetchone() == (4,)
        statuses = conn.execute(
            "SELECT status, trigger FROM sluice.runs WHERE node = 'public.orch_counts'"
            " ORDER BY started_at"
        ).fetchall()
        assert [s for s, _ in statuses] == ["succeeded", "failed", "succeeded", "succeeded"]
        assert {t for _, t in statuses} == {"manual"}
