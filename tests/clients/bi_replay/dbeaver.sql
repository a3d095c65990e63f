-- DBeaver's PostgreSQL plugin: what it runs when a connection opens and the
-- navigator expands a schema. From dbeaver/dbeaver
-- plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/
-- (PostgreDatabase.java SchemaCache, PostgreSchema.java TableCache /
-- ConstraintCache / IndexCache). Parameters are bound with setLong, as DBeaver does.
-- OID-valued columns (oid, relnamespace, reltype, relowner, relfilenode, conrelid,
-- confrelid, indexrelid, indrelid, relam, ...) are left out: they are server-local
-- numbers; only builtin type OIDs (atttypid), which are fixed, are compared.

-- query: dbeaver_current_schema
-- source: DBeaver 25.1.5 on connect, as recorded in datafusion-contrib/datafusion-postgres datafusion-postgres/tests/dbeaver.rs
-- ignore: session_user
-- (session_user: the user names differ, sluice vs postgres)
SELECT current_schema(),session_user

-- query: dbeaver_schemas
-- source: dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java (SchemaCache.prepareLookupStatement; this text with the objsubid/classoid condition as DBeaver 25.1.5 sends it, recorded in datafusion-contrib/datafusion-postgres datafusion-postgres/tests/dbeaver.rs)
-- keep: nspname, description
-- filter: row["nspname"] not in ("sluice", "pg_toast")
-- ordered
-- (nspowner/nspacl hold role OIDs and ACLs; `sluice` is Sluice's system
--  schema, pg_toast PostgreSQL's storage detail that DBeaver hides)
SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass ORDER BY nspname

-- query: dbeaver_tables
-- source: dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (TableCache.prepareLookupStatement)
-- params: schema_oid
-- keep: relname, relkind, relnatts, relchecks, relpersistence, relispartition, description
SELECT c.oid,c.*,d.description FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0
WHERE c.relnamespace=? AND c.relkind not in ('i','c')

-- query: dbeaver_columns
-- source: dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (TableCache.prepareChildrenStatement, whole schema)
-- params: schema_oid
-- keep: relname, attname, attnum, atttypid, atttypmod, attnotnull, atthasdef, attndims, def_value, description
-- filter: row["attnum"] > 0
-- (system columns, attnum < 0, are left out: Sluice tables have no ctid/xmin)
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
WHERE NOT a.attisdropped AND c.relnamespace=? AND c.relkind not in ('i','c') ORDER BY a.attnum

-- query: dbeaver_table_columns
-- source: dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (TableCache.prepareChildrenStatement, one table)
-- params: table_oid
-- keep: relname, attname, attnum, atttypid, atttypmod, attnotnull, atthasdef, def_value, description
-- filter: row["attnum"] > 0
-- ordered
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
WHERE NOT a.attisdropped AND c.oid=? ORDER BY a.attnum

-- query: dbeaver_constraints
-- source: dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (ConstraintCache.prepareObjectsStatement)
-- params: schema_oid
-- keep: conname, contype, tabrelname, condeferrable, condeferred, convalidated, conkey, confkey, confupdtype, confdeltype, confmatchtype
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
WHERE t.relnamespace=?
ORDER BY c.oid

-- query: dbeaver_indexes
-- source: dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (IndexCache.prepareObjectsStatement)
-- params: schema_oid
-- keep: relname, tabrelname, indnatts, indisunique, indisprimary, keys, expr, description
-- ordered
-- (relam is the access method's OID: btree on PostgreSQL, `delta` on Sluice by design)
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr
FROM pg_catalog.pg_index i
INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid
INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid
LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid
WHERE  c.relnamespace=? ORDER BY c.relname
