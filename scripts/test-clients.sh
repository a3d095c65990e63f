#!/usr/bin/env bash
# The client compatibility suites (tests/clients/): psycopg 3, psycopg2,
# SQLAlchemy + pandas, Polars/ADBC/connectorx, dbt-core + dbt-postgres, BI
# tools' catalog queries, psql, pgjdbc and node-postgres, each run against a
# Sluice server it starts and against PostgreSQL 15 as the oracle.
#
#   scripts/test-clients.sh                      every suite
#   scripts/test-clients.sh [pytest args...]     e.g. -k psycopg3, or one file
#
# Environment:
#   SLUICE_BIN          the sluice binary to test (default: the debug build of this checkout,
#                      (scripts/target-dir.sh))
#   SLUICE_VENV         Python virtualenv (default: $HOME/.cache/sluice-venv)
#   SLUICE_TEST_PG_URL  PostgreSQL 15 to compare with (default: scripts/pg-test-server.sh)
#   SLUICE_SKIP_SETUP   set to 1 to skip scripts/setup-test-env.sh
#   SLUICE_KEEP_LAKES   set to 1 to keep lakes, dbt projects and PG databases for inspection
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export SLUICE_VENV="${SLUICE_VENV:-$HOME/.cache/sluice-venv}"
if [ -z "${SLUICE_BIN:-}" ]; then
    SLUICE_BIN="$(scripts/target-dir.sh)/debug/sluice"
fi
export SLUICE_BIN
if [ ! -x "$SLUICE_BIN" ]; then
    echo "test-clients: no sluice binary at $SLUICE_BIN (set SLUICE_BIN)" >&2
    exit 1
fi

if [ "${SLUICE_SKIP_SETUP:-0}" != 1 ]; then
    scripts/setup-test-env.sh
fi
if [ -z "${SLUICE_TEST_PG_URL:-}" ]; then
    scripts/pg-test-server.sh start
    SLUICE_TEST_PG_URL="$(scripts/pg-test-server.sh url)"
fi
export SLUICE_TEST_PG_URL

# dbt: no telemetry or version check (no internet beyond the registries)
export DBT_SEND_ANONYMOUS_USAGE_STATS=false DBT_VERSION_CHECK=false DO_NOT_TRACK=1

echo "test-clients: $SLUICE_BIN against PostgreSQL at $SLUICE_TEST_PG_URL" >&2
# Without arguments: all suites. No -x: one run lists every gap.
if [ "$#" -eq 0 ]; then
    set -- tests/clients/python
fi
exec "$SLUICE_VENV/bin/python" -m pytest -q -rfE -p no:cacheprovider "$@"
