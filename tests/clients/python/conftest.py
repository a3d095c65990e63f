"""Fixtures for the client compatibility suites (see clientlib.py).

- `sluice`: one `sluice serve` on a fresh lake per test file (binary from
  SLUICE_BIN, default /tmp/sluice-bin/sluice).
- `pg`: one fresh database per test file in the PostgreSQL 15 test server
  (SLUICE_TEST_PG_URL, else scripts/pg-test-server.sh is started).
- `target`: parametrised over both, so every test runs against PostgreSQL
  (the oracle) and Sluice with the same expectations.
"""
from __future__ import annotations

import re

import pytest

import clientlib


def _module_name(request) -> str:
    name = request.module.__name__.rsplit(".", 1)[-1]
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


@pytest.fixture(scope="module")
def sluice(request):
    server = clientlib.SluiceServer(_module_name(request))
    try:
        target = server.start()
        yield target
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pg(request):
    with clientlib.pg_database(f"clients_{_module_name(request)}") as target:
        yield target


@pytest.fixture(params=["pg", "sluice"])
def target(request):
    return request.getfixturevalue(request.param)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure against Sluice, append the tail of the server's log."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    server = item.funcargs.get("sluice") or (
        item.funcargs.get("target") if getattr(item.funcargs.get("target"), "kind", "") == "sluice" else None
    )
    if server is not None and server.log_tail():
        report.sections.append(("sluice server log (tail)", server.log_tail()))


# What does not work yet, with the reason (docs/compatibility.md says the
# same). Each is an expected failure that must keep failing: one that starts
# to pass fails the run (strict), so this list is kept true.
KNOWN_GAPS = {
    "test_dbt.py::test_docs_catalog_columns_match": "a computed numeric column of CREATE TABLE AS keeps the precision and scale it is stored with (numeric(22,2) where PostgreSQL has an unconstrained numeric)",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        key = item.nodeid.rsplit("/", 1)[-1]
        reason = KNOWN_GAPS.get(key)
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
