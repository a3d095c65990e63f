-- pgAdmin 4's browser tree: the schema and table nodes, rendered from its
-- Jinja templates the way pgAdmin renders them (show_sysobj false, no
-- schema restrictions; {{scid}} / {{tid}} are the OIDs of schema bi / table
-- bi.orders, which pgAdmin inlines). From pgadmin-org/pgadmin4
-- web/pgadmin/browser/server_groups/servers/databases/schemas/...

-- query: pgadmin_schema_nodes
-- source: pgadmin-org/pgadmin4 web/pgadmin/browser/server_groups/servers/databases/schemas/templates/schemas/pg/default/sql/nodes.sql (+ templates/catalog/pg/macros/catalogs.sql LIST('nsp'))
-- ignore: oid
-- filter: row["name"] != "sluice"
-- ordered
-- (oid is server-local; `sluice` is Sluice's system schema)
SELECT
    nsp.oid,
    nsp.nspname as name,
    pg_catalog.has_schema_privilege(nsp.oid, 'CREATE') as can_create,
    pg_catalog.has_schema_privilege(nsp.oid, 'USAGE') as has_usage
FROM
    pg_catalog.pg_namespace nsp
WHERE
    nspname NOT LIKE 'pg!_%' escape '!' AND
    NOT (
    (nsp.nspname = 'pg_catalog' AND EXISTS
        (SELECT 1 FROM pg_catalog.pg_class WHERE relname = 'pg_class' AND
            relnamespace = nsp.oid LIMIT 1)) OR
    (nsp.nspname = 'pgagent' AND EXISTS
        (SELECT 1 FROM pg_catalog.pg_class WHERE relname = 'pga_job' AND
            relnamespace = nsp.oid LIMIT 1)) OR
    (nsp.nspname = 'information_schema' AND EXISTS
        (SELECT 1 FROM pg_catalog.pg_class WHERE relname = 'tables' AND
            relnamespace = nsp.oid LIMIT 1))
    )
ORDER BY nspname;

-- query: pgadmin_table_nodes
-- source: pgadmin-org/pgadmin4 web/pgadmin/browser/server_groups/servers/databases/schemas/tables/templates/tables/sql/default/nodes.sql
-- ignore: oid, triggercount, has_enable_triggers
-- (PostgreSQL implements each foreign key with internal RI triggers, two on
--  each table; Sluice checks foreign keys without triggers, so the counts differ
--  by design. The query must still run: pg_trigger has to exist.)
-- ordered
SELECT rel.oid, rel.relname AS name,
    (SELECT count(*) FROM pg_trigger WHERE tgrelid=rel.oid) AS triggercount,
    (SELECT count(*) FROM pg_trigger WHERE tgrelid=rel.oid AND tgenabled = 'O') AS has_enable_triggers,
    (SELECT count(1) FROM pg_inherits WHERE inhrelid=rel.oid LIMIT 1) as is_inherits,
    (SELECT count(1) FROM pg_inherits WHERE inhparent=rel.oid LIMIT 1) as is_inherited
FROM pg_class rel
    WHERE rel.relkind IN ('r','s','t') AND rel.relnamespace = {{scid}}::oid
    ORDER BY rel.relname;

-- query: pgadmin_table_node
-- source: pgadmin-org/pgadmin4 web/pgadmin/browser/server_groups/servers/databases/schemas/tables/templates/tables/sql/default/nodes.sql (with tid)
-- ignore: oid, triggercount, has_enable_triggers
SELECT rel.oid, rel.relname AS name,
    (SELECT count(*) FROM pg_trigger WHERE tgrelid=rel.oid) AS triggercount,
    (SELECT count(*) FROM pg_trigger WHERE tgrelid=rel.oid AND tgenabled = 'O') AS has_enable_triggers,
    (SELECT count(1) FROM pg_inherits WHERE inhrelid=rel.oid LIMIT 1) as is_inherits,
    (SELECT count(1) FROM pg_inherits WHERE inhparent=rel.oid LIMIT 1) as is_inherited
FROM pg_class rel
    WHERE rel.relkind IN ('r','s','t') AND rel.relnamespace = {{scid}}::oid
     AND rel.oid = {{tid}}::OID 
    ORDER BY rel.relname;
