#!/usr/bin/env bash
# Regenerates src/catalog/pg_sql_bodies.jsonl: the SQL-standard bodies
# (`RETURN ...`, `BEGIN ATOMIC ... END`) of PostgreSQL 15's built-in
# functions, as PostgreSQL 15 prints them, keyed by `schema.name(argument
# types)` (the OIDs of information_schema's functions differ between
# versions). The static pg_proc keeps these bodies only as parse trees;
# `pg_get_functiondef` and `pg_get_function_sqlbody` print them from here.
#
#   scripts/pg-test-server.sh start && scripts/pg-sql-bodies.sh
set -euo pipefail
cd "$(dirname "$0")/.."
url="${SLUICE_TEST_PG_URL:-postgresql://postgres@127.0.0.1:54329/sluice_compat}"
psql -X -q -A -t "$url" -c "
  SELECT json_build_object('function', p.pronamespace::regnamespace::text || '.' || p.proname
      || '(' || oidvectortypes(p.proargtypes) || ')', 'body', pg_get_function_sqlbody(p.oid))
  FROM pg_proc p
  WHERE p.prosqlbody IS NOT NULL
  ORDER BY p.pronamespace::regnamespace::text, p.proname, p.oid" >src/catalog/pg_sql_bodies.jsonl
wc -l src/catalog/pg_sql_bodies.jsonl
