#!/usr/bin/env bash
# The whole test suite: installs what the tests need, starts a throwaway
# PostgreSQL 15 as the reference peer, then checks formatting, builds and runs
# every Rust test. Exits non-zero on the first failure.
#
# Environment (all optional):
#   SLUICE_VENV       Python virtualenv for client tests (default: $HOME/.cache/sluice-venv)
#   SLUICE_PG_DIR     PostgreSQL test cluster location (default: /tmp/sluice-pg)
#   SLUICE_PG_PORT    its port (default: 54329)
#   CARGO_TARGET_DIR  build output (default: one folder per checkout under
#                     $HOME/.cache/sluice-target-*, so reruns are warm and two
#                     checkouts never share build output: the tests embed the
#                     checkout path at compile time)
#   TEST_THREADS      parallel tests per test binary (default: 2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export SLUICE_VENV="${SLUICE_VENV:-$HOME/.cache/sluice-venv}"
export CARGO_TARGET_DIR="$(scripts/target-dir.sh)"
TEST_THREADS="${TEST_THREADS:-2}"

step() { echo "==> $*" >&2; }

step "setting up the test environment"
scripts/setup-test-env.sh

cleanup() {
    scripts/pg-test-server.sh stop || true
}
trap cleanup EXIT

step "starting PostgreSQL 15 (reference peer)"
scripts/pg-test-server.sh start
SLUICE_TEST_PG_URL="$(scripts/pg-test-server.sh url)"
export SLUICE_TEST_PG_URL
export SLUICE_TEST_PYTHON="$SLUICE_VENV/bin/python"

step "checking tests/slt/pg_compat_*.slt against PostgreSQL"
"$SLUICE_TEST_PYTHON" scripts/slt_check_pg.py --url "$SLUICE_TEST_PG_URL" tests/slt/pg_compat_*.slt

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo build"
cargo build --bins

step "cargo test"
cargo test --all-targets -- --test-threads="$TEST_THREADS"

step "client suites (tests/clients: psql, psycopg 2 and 3, SQLAlchemy, pandas/Polars/ADBC, dbt, pgjdbc, node-postgres, BI catalog queries), each against Sluice and PostgreSQL"
SLUICE_SKIP_SETUP=1 SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice" scripts/test-clients.sh

step "differential SQL tests against PostgreSQL (seed 1, at most 60 s)"
rm -f "$CARGO_TARGET_DIR/differential-ci.jsonl"
"$SLUICE_TEST_PYTHON" tests/differential/run.py --ci \
    --sluice-bin "$CARGO_TARGET_DIR/debug/sluice" --pg-url "$SLUICE_TEST_PG_URL" \
    --report "$CARGO_TARGET_DIR/differential-ci.jsonl"

step "TPC-H smoke benchmark (SF 0.01)"
SLUICE_BENCH_PYTHON="$SLUICE_TEST_PYTHON" benchmarks/run-smoke.sh

step "COPY smoke benchmark (SF 0.01, debug build)"
SF=0.01 REPS=2 SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice" SLUICE_BENCH_PYTHON="$SLUICE_TEST_PYTHON" \
    benchmarks/copy/run.sh >/dev/null

step "rules smoke benchmark (SF 0.01, debug build)"
SF=0.01 RUNS=1 BASE_ROWS=100000 APPEND_ROWS=10000 SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice" \
    SLUICE_BENCH_PYTHON="$SLUICE_TEST_PYTHON" benchmarks/rules/run.sh >/dev/null

step "DataFrame read smoke benchmark (100,000 rows, debug build): Polars over ADBC and connectorx, the frames from both servers equal"
ROWS=100000 REPS=1 SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice" SLUICE_BENCH_PYTHON="$SLUICE_TEST_PYTHON" \
    benchmarks/dataframes/run.sh >/dev/null

step "materialized view smoke benchmark (SF 0.01, debug build)"
SF=0.01 RUNS=1 SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice" SLUICE_BENCH_PYTHON="$SLUICE_TEST_PYTHON" \
    benchmarks/matview/run.sh >/dev/null

step "the demo project builds from an empty lake and its tests pass (10,000 transactions, debug build)"
DEMO_LAKE="$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo-ci.XXXXXX")"
"$CARGO_TARGET_DIR/debug/sluice" build --lake "$DEMO_LAKE/lake" --project sql \
    --vars '{n_transactions: 10000, n_users: 500, n_merchants: 50}' >/dev/null
rm -rf "$DEMO_LAKE" sql/target

step "project build smoke benchmark against dbt + PostgreSQL (SF 0.01, debug build)"
SF=0.01 RUNS=1 SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice" SLUICE_BENCH_PYTHON="$SLUICE_TEST_PYTHON" \
    benchmarks/project/run.sh >/dev/null

step "ASOF join smoke benchmark against DuckDB (10,000 labels, debug build)"
LABELS=10000 FEATURES=100000 ENTITIES=1000 RUNS=1 SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice" \
    SLUICE_BENCH_PYTHON="$SLUICE_TEST_PYTHON" benchmarks/asof/run.sh >/dev/null

step "online lookup smoke benchmark against PostgreSQL (1,000 entities, debug build)"
ENTITIES=1000 ROWS_PER=3 SECS=3 CLIENTS=4 SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice" \
    benchmarks/online/run.sh >/dev/null

step "JSON extraction smoke benchmark against DuckDB (100,000 documents, debug build)"
ROWS=100000 RUNS=1 SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice" SLUICE_BENCH_PYTHON="$SLUICE_TEST_PYTHON" \
    benchmarks/json/run.sh >/dev/null

step "access-log load smoke benchmark against DuckDB and Python (16 MiB, debug build)"
MB=16 RUNS=1 SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice" SLUICE_BENCH_PYTHON="$SLUICE_TEST_PYTHON" \
    benchmarks/logs/run.sh >/dev/null

step "all tests passed"
