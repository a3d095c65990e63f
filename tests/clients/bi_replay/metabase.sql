-- Metabase's PostgreSQL driver: connection setup and database sync.
-- Text as Metabase v0.55.1 sent it over the wire, recorded in
-- datafusion-contrib/datafusion-postgres datafusion-postgres/tests/metabase.rs;
-- the statements come from metabase/metabase src/metabase/driver/postgres.clj
-- (get-tables-sql, db-default-timezone) and, for the schema list, pgjdbc's
-- DatabaseMetaData.getSchemas (pgjdbc/pgjdbc PgDatabaseMetaData.java), with the
-- schema filter set to 'bi' instead of 'public'.

-- query: metabase_set_extra_float_digits
-- source: datafusion-contrib/datafusion-postgres datafusion-postgres/tests/metabase.rs
-- statement
SET extra_float_digits = 2

-- query: metabase_set_application_name
-- source: datafusion-contrib/datafusion-postgres datafusion-postgres/tests/metabase.rs
-- statement
SET application_name = 'Metabase v0.55.1 [f8f63fdf-d8f8-4573-86ea-4fe4a9548041]'

-- query: metabase_show_isolation
-- source: datafusion-contrib/datafusion-postgres datafusion-postgres/tests/metabase.rs (pgjdbc getTransactionIsolation)
SHOW TRANSACTION ISOLATION LEVEL

-- query: metabase_set_read_uncommitted
-- source: datafusion-contrib/datafusion-postgres datafusion-postgres/tests/metabase.rs (pgjdbc setTransactionIsolation)
-- statement
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED

-- query: metabase_get_schemas
-- source: datafusion-contrib/datafusion-postgres datafusion-postgres/tests/metabase.rs (pgjdbc PgDatabaseMetaData.getSchemas)
-- ignore: TABLE_CATALOG
-- filter: row["TABLE_SCHEM"] not in ("sluice", "pg_toast")
-- ordered
-- (TABLE_CATALOG is the database name, which differs between the two servers;
--  `sluice` is Sluice's system schema; pg_toast is PostgreSQL's storage detail)
SELECT nspname AS "TABLE_SCHEM", current_database() AS "TABLE_CATALOG" FROM pg_catalog.pg_namespace  WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_'  OR nspname = (pg_catalog.current_schemas(true))[1]) AND (nspname !~ '^pg_toast_temp_'  OR nspname = replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', 'pg_toast_temp_'))  ORDER BY "TABLE_SCHEM"

-- query: metabase_table_privileges
-- source: datafusion-contrib/datafusion-postgres datafusion-postgres/tests/metabase.rs (Metabase sync: current user's table privileges)
-- filter: row["schema"] != "sluice"
-- (rows of Sluice's system schema `sluice` are left out)
with table_privileges as (
         select
           NULL as role,
           t.schemaname as schema,
           t.objectname as table,
           pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'update') as update,
           pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'select') as select,
           pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'insert') as insert,
           pg_catalog.has_table_privilege(     current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'delete') as delete
         from (
           select schemaname, tablename as objectname from pg_catalog.pg_tables
           union
           select schemaname, viewname as objectname from pg_catalog.pg_views
           union
           select schemaname, matviewname as objectname from pg_catalog.pg_matviews
         ) t
         where t.schemaname !~ '^pg_'
           and t.schemaname <> 'information_schema'
           and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')
        )
        select t.*
        from table_privileges t

-- query: metabase_describe_tables
-- source: metabase/metabase src/metabase/driver/postgres.clj (get-tables-sql), as sent: datafusion-contrib/datafusion-postgres datafusion-postgres/tests/metabase.rs
-- ignore: estimated_row_count
-- ordered
-- (estimated_row_count is pg_stat_user_tables.n_live_tup: statistics that
--  PostgreSQL fills in asynchronously, so not a stable value on either side)
SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS "type", "d"."description" AS "description", "stat"."n_live_tup" AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = '0') AND ("d"."classoid" = 'pg_class'::regclass) LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname") WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ '^pg_') AND ("n"."nspname" <> 'information_schema') AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ('bi')) ORDER BY "type" ASC, "schema" ASC, "name" ASC

-- query: metabase_set_read_committed
-- source: datafusion-contrib/datafusion-postgres datafusion-postgres/tests/metabase.rs
-- statement
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED

-- query: metabase_show_timezone
-- source: metabase/metabase src/metabase/driver/postgres.clj (db-default-timezone: "show timezone;")
show timezone;
