"""Real dbt-core + dbt-postgres on the fixture project tests/clients/dbt_project,
against PostgreSQL 15 and against Sluice, then every resulting table compared.

Sequence per target: debug, seed, run, snapshot, (second load of the orders
seed: one row changed, two new), seed, run (incremental: merge,
delete+insert, append), snapshot, test, docs generate. Every step runs even if
an earlier one failed, so one run reports every broken step.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

import psycopg
import pytest

import clientlib

PROJECT = clientlib.ROOT / "tests" / "clients" / "dbt_project"
SCHEMA = "analytics"
SNAPSHOT_SCHEMA = "snapshots"

STEPS = ["debug", "seed", "run", "snapshot", "seed2", "run2", "snapshot2", "test", "docs"]
COMMANDS = {
    "debug": ["debug"],
    "seed": ["seed"],
    "run": ["run"],
    "snapshot": ["snapshot"],
    "seed2": ["seed"],
    "run2": ["run"],
    "snapshot2": ["snapshot"],
    "test": ["test"],
    "docs": ["docs", "generate"],
}
# schema.table -> columns to order by are all columns (rows compared as sorted tuples)
TABLES = [
    f"{SCHEMA}.customers",
    f"{SCHEMA}.orders",
    f"{SCHEMA}.stg_orders",
    f"{SCHEMA}.customer_totals",
    f"{SCHEMA}.orders_merge",
    f"{SCHEMA}.orders_delete_insert",
    f"{SCHEMA}.orders_append",
    f"{SNAPSHOT_SCHEMA}.orders_snapshot",
]

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DBT_VERSION_CHECK", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


class StepResult:
    def __init__(self, ok: bool, detail: str):
        self.ok = ok
        self.detail = detail


def describe(res) -> str:
    """The failing nodes of a dbtRunnerResult, with their messages."""
    lines = []
    if res.exception is not None:
        lines.append(f"exception: {res.exception!r}")
    results = getattr(res.result, "results", None) or []
    for r in results:
        status = str(getattr(r, "status", ""))
        if status.lower() not in ("success", "pass"):
            node = getattr(getattr(r, "node", None), "unique_id", "?")
            lines.append(f"{node}: {status}: {getattr(r, 'message', '')}")
    return "\n".join(lines)


def log_errors(project: pathlib.Path, start: int) -> str:
    """ERROR lines dbt logged since byte `start` of logs/dbt.log (has the SQL that failed)."""
    log = project / "logs" / "dbt.log"
    if not log.exists():
        return ""
    text = log.read_bytes()[start:].decode(errors="replace")
    keep = [ln for ln in text.splitlines() if "Database Error" in ln or "ERROR" in ln or "SQLSTATE" in ln]
    return "\n".join(keep[-30:])


def run_dbt_sequence(target) -> dict[str, StepResult]:
    from dbt.cli.main import dbtRunner

    work = pathlib.Path(tempfile.mkdtemp(prefix=f"dbt-{target.kind}-"))
    project = work / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    profiles = work / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        f"""sluice_compat:
  target: t
  outputs:
    t:
      type: postgres
      host: {target.host}
      port: {target.port}
      user: {target.user}
      password: ""
      dbname: {target.dbname}
      schema: {SCHEMA}
      threads: 1
      connect_timeout: 10
"""
    )
    results: dict[str, StepResult] = {}
    for step in STEPS:
        if step == "seed2":
            shutil.copy(project / "seeds_update" / "orders.csv", project / "seeds" / "orders.csv")
        log = project / "logs" / "dbt.log"
        start = log.stat().st_size if log.exists() else 0
        args = COMMANDS[step] + [
            "--project-dir", str(project), "--profiles-dir", str(profiles),
            "--no-use-colors",
        ]
        try:
            res = dbtRunner().invoke(args)
            ok = bool(res.success)
            detail = "" if ok else describe(res) + "\n" + log_errors(project, start)
        except Exception as e:  # dbt itself crashed
            ok, detail = False, f"dbt raised {e!r}"
        results[step] = StepResult(ok, detail)
        if step == "docs" and ok:
            results["catalog"] = StepResult(True, (project / "target" / "catalog.json").read_text())
    if not os.environ.get("SLUICE_KEEP_LAKES"):
        shutil.rmtree(work, ignore_errors=True)
    return results


_runs: dict[str, dict[str, StepResult]] = {}


@pytest.fixture
def runs(request, pg, sluice):
    """Runs the sequence once per target per module (both on first use)."""
    for t in (pg, sluice):
        if t.kind not in _runs:
            _runs[t.kind] = run_dbt_sequence(t)
    return _runs


def fetch(target, table):
    with psycopg.connect(target.conninfo) as conn:
        cur = conn.execute(f"SELECT * FROM {table}")
        return [d.name for d in cur.description], clientlib.sorted_rows(cur.fetchall())


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("kind", ["pg", "sluice"])
def test_dbt_step(runs, kind, step):
    r = runs[kind][step]
    assert r.ok, f"dbt {' '.join(COMMANDS[step])} failed on {kind}:\n{r.detail}"


@pytest.mark.parametrize("table", TABLES)
def test_tables_match_postgres(runs, pg, sluice, table):
    want_cols, want = fetch(pg, table)
    try:
        got_cols, got = fetch(sluice, table)
    except psycopg.Error as e:
        pytest.fail(f"reading {table} from Sluice: SQLSTATE {e.sqlstate}: {e}")
    assert got_cols == want_cols
    assert got == want


@pytest.mark.parametrize("model", ["orders_merge", "orders_delete_insert", "orders_append"])
def test_second_run_was_incremental(runs, pg, sluice, model):
    """The second run must add only changed/new rows (loaded_by = 'incremental')."""
    for t in (pg, sluice):
        with psycopg.connect(t.conninfo) as conn:
            got = conn.execute(
                f"SELECT id, loaded_by FROM {SCHEMA}.{model} WHERE loaded_by = 'incremental' ORDER BY id"
            ).fetchall()
        assert got == [(102, "incremental"), (105, "incremental"), (106, "incremental")], t.kind


def test_docs_catalog_columns_match(runs):
    """catalog.json (dbt's own pg_catalog query) lists the same columns and types."""
    def columns(kind):
        r = runs[kind].get("catalog")
        assert r is not None, f"no catalog.json on {kind}"
        cat = json.loads(r.detail)
        return {
            uid.split(".")[-1]: {c["name"]: c["type"] for c in node["columns"].values()}
            for uid, node in {**cat["nodes"], **cat.get("sources", {})}.items()
        }
    want = columns("pg")
    got = columns("sluice")
    assert got == want


# ---------------------------------------------------------------------------
# The same project built by Sluice itself (`sluice seed/run/snapshot/test`),
# no dbt involved: every table must equal what real dbt made on PostgreSQL.

SLUICE_STEPS = ["seed", "run", "snapshot", "seed2", "run2", "snapshot2", "test"]


def run_sluice_sequence(lake: pathlib.Path) -> dict[str, StepResult]:
    import subprocess

    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-project-"))
    project = work / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    results: dict[str, StepResult] = {}
    for step in SLUICE_STEPS:
        if step == "seed2":
            shutil.copy(project / "seeds_update" / "orders.csv", project / "seeds" / "orders.csv")
        command = COMMANDS[step][0]
        p = subprocess.run(
            [clientlib.sluice_bin(), command, "--lake", str(lake), "--project", str(project),
             "--schema", SCHEMA],
            capture_output=True, text=True, timeout=300,
        )
        results[step] = StepResult(p.returncode == 0, p.stdout + p.stderr)
    if not os.environ.get("SLUICE_KEEP_LAKES"):
        shutil.rmtree(work, ignore_errors=True)
    return results


@pytest.fixture(scope="module")
def built(pg, sluice):
    """A lake built by `sluice` commands, served for reading."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-built-"))
    lake = work / "lake"
    steps = run_sluice_sequence(lake)
    server = clientlib.SluiceServer("dbt_built", lake)
    try:
        yield steps, server.start()
    finally:
        server.stop()
        if not os.environ.get("SLUICE_KEEP_LAKES"):
            shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("step", SLUICE_STEPS)
def test_sluice_command_step(built, step):
    steps, _ = built
    assert steps[step].ok, f"sluice {COMMANDS[step][0]} failed:\n{steps[step].detail}"


@pytest.mark.parametrize("table", TABLES)
def test_sluice_build_matches_dbt_on_postgres(built, pg, table):
    _, target = built
    if "pg" not in _runs:
        _runs["pg"] = run_dbt_sequence(pg)
    want_cols, want = fetch(pg, table)
    got_cols, got = fetch(target, table)
    assert got_cols == want_cols
    assert got == want
