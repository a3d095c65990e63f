//! Constraints in `pg_catalog`: `pg_constraint`, `pg_index` and the
//! constraint columns of `pg_class` (`relchecks`, `relhasindex`,
//! `relhastriggers`), filled from Sluice's catalog, so that psql's `\d`
//! and other clients see keys, CHECKs and foreign keys.
//!
//! Tables get their OIDs from datafusion-pg-catalog's `pg_class`; each
//! constraint gets one derived from its table's (`CON_OID_BASE + table
//! oid * PER_TABLE + position`); sequences get theirs from their ids (see
//! [`sequence_oids`]). A PRIMARY KEY or UNIQUE constraint also shows as an
//! index relation (same OID), as psql lists keys under "Indexes".
//! Delta has no index: the access method is shown as `delta`.
//! `pg_get_constraintdef` and `pg_get_indexdef` answer from the
//! definitions the last scan of these tables produced.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;

use super::{Catalog, Def, Kind, SequenceDef, TableDef};

/// OIDs of constraints (and of the index relations of keys) start here,
/// far above the ones datafusion-pg-catalog hands out from 16384.
const CON_OID_BASE: i64 = 1_000_000;
/// Constraints per table that get distinct OIDs (and are listed).
const PER_TABLE: i64 = 1024;

/// The function a reverse `::regclass` cast in a select item becomes: a
/// relation's name from its OID, as PostgreSQL shows a regclass (qualified
/// when the search path does not find it by its bare name).
pub const REGCLASS_NAME: &str = "sluice_regclass_name";

/// The function a type name cast to `regtype` becomes: the type's OID.
pub const REGTYPE_FOUND: &str = "sluice_regtype_found";

/// The function a type OID cast to `regtype` in a select item becomes:
/// the type's name, as `format_type(oid, NULL)` shows it.
pub const REGTYPE_NAME: &str = "sluice_regtype_name";

/// The function a relation name cast to `regclass` becomes: the OID its
/// lookup found, or `42P01` naming the relation.
pub const REGCLASS_FOUND: &str = "sluice_regclass_found";

/// `pg_am` OIDs: tables are `heap`, keys shown as indexes `btree` (as a
/// PostgreSQL key's index would be).
const HEAP: i64 = 2;
const BTREE: i64 = 403;

/// The fixed OIDs PostgreSQL gives its catalogs (pg_description's
/// `classoid`), by name.
const PG_CATALOG_OIDS: &[(i64, &str)] = &[
    (1247, "pg_type"),
    (1249, "pg_attribute"),
    (1255, "pg_proc"),
    (1259, "pg_class"),
    (1262, "pg_database"),
    (2600, "pg_aggregate"),
    (2601, "pg_am"),
    (2605, "pg_cast"),
    (2606, "pg_constraint"),
    (2607, "pg_conversion"),
    (2612, "pg_language"),
    (2615, "pg_namespace"),
    (2616, "pg_opclass"),
    (2617, "pg_operator"),
    (2753, "pg_opfamily"),
    (3079, "pg_extension"),
    (3456, "pg_collation"),
    (3600, "pg_ts_dict"),
    (3601, "pg_ts_parser"),
    (3602, "pg_ts_config"),
    (3764, "pg_ts_template"),
];

/// The catalog PostgreSQL gives the fixed OID `oid`.
fn fixed_catalog_name(oid: i64) -> Option<&'static str> {
    PG_CATALOG_OIDS
        .iter()
        .find(|(fixed, _)| *fixed == oid)
        .map(|(_, name)| *name)
}

/// A description: (objoid, the catalog of the object, objsubid, text).
type Description = (i64, &'static str, i64, String);

/// Descriptions by (objoid, catalog, objsubid), for `obj_description`
/// and `col_description`.
type Described = Arc<RwLock<HashMap<(i64, &'static str, i64), String>>>;

/// Definitions by OID, for `pg_get_constraintdef` / `pg_get_indexdef`.
type Definitions = Arc<RwLock<HashMap<i64, String>>>;

/// Wrap the `pg_catalog` schema of `database` in `ctx` (set up by
/// datafusion-pg-catalog) so the three tables come from `catalog`.
pub fn install(ctx: &SessionContext, catalog: Arc<Catalog>, database: &str) -> Result<()> {
    let Some(cat) = ctx.catalog(database) else {
        return Ok(());
    };
    let Some(inner) = cat.schema("pg_catalog") else {
        return Ok(());
    };
    let constraint_defs: Definitions = Default::default();
    let constraint_pretty: Definitions = Default::default();
    let index_defs: Definitions = Default::default();
    let relation_names: Definitions = Default::default();
    let comments: Described = Default::default();
    ctx.register_udf(ScalarUDF::new_from_impl(Describe {
        name: "obj_description",
        comments: comments.clone(),
        signature: Signature::variadic_any(Volatility::Stable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(Describe {
        name: "col_description",
        comments: comments.clone(),
        signature: Signature::any(2, Volatility::Stable),
    }));
    let view_defs: Definitions = Default::default();
    let placed: Placed = Default::default();
    ctx.register_udf(ScalarUDF::new_from_impl(Visible {
        name: "pg_table_is_visible",
        placed: placed.clone(),
        signature: Signature::variadic_any(Volatility::Stable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(RelationName {
        placed: placed.clone(),
        shown: relation_names.clone(),
        signature: Signature::variadic_any(Volatility::Volatile),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(GetDef {
        name: "pg_get_constraintdef",
        defs: constraint_defs.clone(),
        pretty: Some(constraint_pretty.clone()),
        columns: None,
        signature: Signature::variadic_any(Volatility::Volatile),
    }));
    let index_columns: IndexColumns = Default::default();
    ctx.register_udf(ScalarUDF::new_from_impl(GetDef {
        name: "pg_get_indexdef",
        defs: index_defs.clone(),
        pretty: None,
        columns: Some(index_columns.clone()),
        signature: Signature::variadic_any(Volatility::Volatile),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(GetDef {
        name: "pg_get_viewdef",
        defs: view_defs.clone(),
        pretty: None,
        columns: None,
        signature: Signature::variadic_any(Volatility::Volatile),
    }));
    // Expressions in the catalog (column defaults) are kept as the text
    // PostgreSQL would print: pg_get_expr shows it (the generic one gave
    // an empty string).
    ctx.register_udf(ScalarUDF::new_from_impl(ExprText {
        signature: Signature::variadic_any(Volatility::Stable),
    }));
    // No triggers exist; psql asks when a table has foreign keys.
    ctx.register_udf(ScalarUDF::new_from_impl(GetDef {
        name: "pg_get_triggerdef",
        defs: Default::default(),
        pretty: None,
        columns: None,
        signature: Signature::variadic_any(Volatility::Volatile),
    }));
    // Sluice has no temporary schemas (dbt's catalog query asks).
    ctx.register_udf(ScalarUDF::new_from_impl(RegclassFound {
        signature: Signature::any(2, Volatility::Stable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(NoTempSchema {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udtf("pg_partition_ancestors", Arc::new(PartitionAncestors));
    for name in [
        "pg_table_size",
        "pg_relation_size",
        "pg_total_relation_size",
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(RelationSize {
            name,
            catalog: catalog.clone(),
            indexes: index_defs.clone(),
            signature: Signature::variadic_any(Volatility::Volatile),
        }));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(ExpandArray {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    cat.register_schema(
        "pg_catalog",
        Arc::new(PgCatalog {
            inner,
            catalog,
            constraint_defs,
            constraint_pretty,
            index_defs,
            index_columns,
            relation_names,
            placed,
            comments,
            view_defs,
            extra: Default::default(),
        }),
    )?;
    Ok(())
}

#[derive(Debug)]
struct PgCatalog {
    inner: Arc<dyn SchemaProvider>,
    catalog: Arc<Catalog>,
    constraint_defs: Definitions,
    constraint_pretty: Definitions,
    index_defs: Definitions,
    index_columns: IndexColumns,
    relation_names: Definitions,
    placed: Placed,
    comments: Described,
    /// The queries of views and materialized views, for `pg_get_viewdef`.
    view_defs: Definitions,
    /// Tables a session adds (`pg_stat_activity`).
    extra: RwLock<HashMap<String, Arc<dyn TableProvider>>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Which {
    Class,
    Constraint,
    Index,
    /// pg_attribute with declared types, type modifiers and defaults.
    Attribute,
    /// pg_attrdef: one row per column default.
    AttrDef,
    /// pg_description: PostgreSQL's own descriptions and `COMMENT ON`s.
    Description,
    /// pg_namespace with PostgreSQL 15's columns.
    Namespace,
    /// pg_collation with PostgreSQL 15's columns (`colliculocale`).
    Collation,
    /// pg_sequence: one row per sequence.
    Sequence,
    /// pg_depend: PostgreSQL's own rows and a sequence's owning column.
    Depend,
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.extend(self.extra.read().unwrap().keys().cloned());
        names.push("pg_user_mappings".to_string());
        names
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.extra.write().unwrap().insert(name, table))
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.extra.read().unwrap().get(&name.to_ascii_lowercase()) {
            return Ok(Some(t.clone()));
        }
        let which = match name.to_ascii_lowercase().as_str() {
            "pg_policy" => return Ok(Some(empty_pg_policy()?)),
            "pg_user_mappings" => return Ok(Some(empty_user_mappings()?)),
            // Empty catalogs whose array columns the generic tables type as
            // text (psql's `\dy`, `\drds`, `\ddp`, `\dX` unnest or search them).
            n @ ("pg_event_trigger" | "pg_db_role_setting" | "pg_default_acl"
            | "pg_statistic_ext") => {
                let Some(own) = self.inner.table(n).await? else {
                    return Ok(None);
                };
                let arrays: &[&str] = match n {
                    "pg_event_trigger" => &["evttags"],
                    "pg_db_role_setting" => &["setconfig"],
                    "pg_statistic_ext" => &["stxkind"],
                    _ => &["defaclacl"],
                };
                return Ok(Some(empty_with_arrays(&own.schema(), arrays)?));
            }
            // Tables and views as the catalog has them (the generic ones
            // listed views as tables and had no views: dbt then dropped a
            // view with DROP TABLE).
            n @ ("pg_tables" | "pg_views" | "pg_matviews") => {
                let Some(own) = self.inner.table(n).await? else {
                    return Ok(None);
                };
                let kind = match n {
                    "pg_tables" => Kind::Table,
                    "pg_views" => Kind::View,
                    _ => Kind::MaterializedView,
                };
                return Ok(Some(relations_table(&own.schema(), &self.catalog, kind)?));
            }
            "pg_namespace" => Which::Namespace,
            "pg_collation" => Which::Collation,
            "pg_class" => Which::Class,
            "pg_constraint" => Which::Constraint,
            "pg_index" => Which::Index,
            "pg_attribute" => Which::Attribute,
            "pg_attrdef" => Which::AttrDef,
            "pg_description" => Which::Description,
            "pg_sequence" => Which::Sequence,
            "pg_depend" => Which::Depend,
            _ => return self.inner.table(name).await,
        };
        let (Some(class), Some(namespace), Some(own)) = (
            self.inner.table("pg_class").await?,
            self.inner.table("pg_namespace").await?,
            self.inner.table(name).await?,
        ) else {
            return self.inner.table(name).await;
        };
        Ok(Some(Arc::new(Derived {
            which,
            schema: typed(&own.schema()),
            own,
            class,
            namespace,
            catalog: self.catalog.clone(),
            constraint_defs: self.constraint_defs.clone(),
            constraint_pretty: self.constraint_pretty.clone(),
            index_defs: self.index_defs.clone(),
            index_columns: self.index_columns.clone(),
            relation_names: self.relation_names.clone(),
            placed: self.placed.clone(),
            comments: self.comments.clone(),
            view_defs: self.view_defs.clone(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.extra
            .read()
            .unwrap()
            .contains_key(&name.to_ascii_lowercase())
            || name.eq_ignore_ascii_case("pg_user_mappings")
            || self.inner.table_exist(name)
    }
}

/// `pg_tables` / `pg_views` with the columns `schema` gives them: one row
/// per table (external tables included) or view of the catalog.
fn relations_table(
    schema: &SchemaRef,
    catalog: &Catalog,
    kind: Kind,
) -> Result<Arc<dyn TableProvider>> {
    use datafusion::arrow::array::{ArrayRef, BooleanArray, StringArray, new_null_array};
    let snapshot = catalog.snapshot();
    let objects: Vec<&crate::catalog::Object> = snapshot
        .objects()
        .iter()
        .filter(|o| match kind {
            Kind::Table => matches!(o.kind(), Kind::Table | Kind::External),
            other => o.kind() == other,
        })
        .collect();
    let schema = nullable(schema);
    let text = |f: &dyn Fn(&crate::catalog::Object) -> Option<String>| -> ArrayRef {
        Arc::new(objects.iter().map(|o| f(o)).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| match (field.name().as_str(), field.data_type()) {
            ("schemaname", _) => text(&|o| Some(o.schema.clone())),
            ("tablename" | "viewname" | "matviewname", _) => text(&|o| Some(o.name.clone())),
            ("tableowner" | "viewowner" | "matviewowner", _) => text(&|_| Some("postgres".into())),
            ("definition", _) => text(&|o| match &o.def {
                crate::catalog::Def::View(v) => Some(v.sql.clone()),
                crate::catalog::Def::MaterializedView(m) => Some(m.query.sql.clone()),
                _ => None,
            }),
            // A materialized view always holds its query's result.
            ("ispopulated", DataType::Boolean) => {
                Arc::new(BooleanArray::from(vec![true; objects.len()])) as ArrayRef
            }
            (_, DataType::Boolean) => {
                Arc::new(BooleanArray::from(vec![false; objects.len()])) as ArrayRef
            }
            (_, t) => new_null_array(t, objects.len()),
        })
        .collect();
    // Cast each column to the type the schema declares.
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(a, f)| cast(&a, f.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let batch = datafusion::arrow::array::RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// `pg_get_expr(text, relation [, pretty])`: the expression's text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExprText {
    signature: Signature,
}

impl ScalarUDFImpl for ExprText {
    fn name(&self) -> &str {
        "pg_get_expr"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // `pretty`: PostgreSQL leaves out the parentheses around the
        // whole expression (a generated column's `(a * 2)` is `a * 2`).
        let pretty = matches!(
            args.args.get(2),
            Some(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::Boolean(Some(true))
            ))
        );
        let Some(first) = args.args.into_iter().next() else {
            return Err(DataFusionError::Plan(
                "pg_get_expr needs an expression".into(),
            ));
        };
        let text = match first {
            ColumnarValue::Array(a) => cast(&a, &DataType::Utf8)?,
            ColumnarValue::Scalar(v) => {
                let v = v.cast_to(&DataType::Utf8)?;
                return Ok(ColumnarValue::Scalar(match v {
                    datafusion::common::ScalarValue::Utf8(Some(t)) if pretty => {
                        datafusion::common::ScalarValue::Utf8(Some(unwrapped(&t).to_string()))
                    }
                    other => other,
                }));
            }
        };
        if !pretty {
            return Ok(ColumnarValue::Array(text));
        }
        let out: datafusion::arrow::array::StringArray = text
            .as_string::<i32>()
            .iter()
            .map(|t| t.map(unwrapped))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `text` without the parentheses around all of it, when it has them.
fn unwrapped(text: &str) -> &str {
    let t = text.trim();
    if !t.starts_with('(') || !t.ends_with(')') {
        return text;
    }
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, c) in t.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth.saturating_sub(1);
                if depth == 0 && i != t.len() - 1 {
                    return text;
                }
            }
            _ => {}
        }
    }
    &t[1..t.len() - 1]
}

/// `pg_is_other_temp_schema(oid)`: always false, no schema is temporary.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NoTempSchema {
    signature: Signature,
}

impl ScalarUDFImpl for NoTempSchema {
    fn name(&self) -> &str {
        "pg_is_other_temp_schema"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Array(Arc::new(
            datafusion::arrow::array::BooleanArray::from(vec![false; args.number_rows]),
        )))
    }
}

/// `sluice_regclass_found(oid, name)`: the OID a `'name'::regclass` lookup
/// found, `42P01` naming the relation when it found none.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RegclassFound {
    signature: Signature,
}

impl ScalarUDFImpl for RegclassFound {
    fn name(&self) -> &str {
        crate::catalog::pg_constraints::REGCLASS_FOUND
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(types.first().cloned().unwrap_or(DataType::Int32))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let missing = match &args.args[0] {
            ColumnarValue::Scalar(v) => v.is_null(),
            ColumnarValue::Array(a) => a.null_count() > 0,
        };
        if missing {
            let name = match &args.args[1] {
                ColumnarValue::Scalar(v) => v.to_string(),
                ColumnarValue::Array(a) => {
                    datafusion::common::ScalarValue::try_from_array(a, 0)?.to_string()
                }
            };
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::UndefinedTable,
                format!("relation \"{name}\" does not exist"),
            )
            .into());
        }
        Ok(args.args[0].clone())
    }
}

/// An empty table of `schema`'s columns, those named in `arrays` as text
/// arrays.
fn empty_with_arrays(schema: &SchemaRef, arrays: &[&str]) -> Result<Arc<dyn TableProvider>> {
    let text_array = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if arrays.contains(&f.name().as_str()) {
                Field::new(f.name(), text_array.clone(), true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?))
}

/// `pg_user_mappings` (psql's `\deu`): Sluice has no foreign servers.
fn empty_user_mappings() -> Result<Arc<dyn TableProvider>> {
    let options = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let schema = Arc::new(Schema::new(vec![
        Field::new("umid", DataType::Int32, false),
        Field::new("srvid", DataType::Int32, false),
        Field::new("srvname", DataType::Utf8, false),
        Field::new("umuser", DataType::Int32, false),
        Field::new("usename", DataType::Utf8, false),
        Field::new("umoptions", options, true),
    ]));
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?))
}

/// `pg_policy` as PostgreSQL types it (Sluice has no row-level security),
/// so `oid = ANY (polroles)` in psql's `\d` plans.
fn empty_pg_policy() -> Result<Arc<dyn TableProvider>> {
    let oids = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
    let schema = Arc::new(Schema::new(vec![
        Field::new("oid", DataType::Int32, false),
        Field::new("polname", DataType::Utf8, false),
        Field::new("polrelid", DataType::Int32, false),
        Field::new("polcmd", DataType::Utf8, false),
        Field::new("polpermissive", DataType::Boolean, false),
        Field::new("polroles", oids, false),
        Field::new("polqual", DataType::Utf8, true),
        Field::new("polwithcheck", DataType::Utf8, true),
    ]));
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?))
}

/// The schema of a derived table: `schema` with every field nullable
/// (rows built here may leave columns empty), column positions and
/// operator classes as arrays where the generic tables have text
/// (PostgreSQL's `int2[]` `conkey`, `confkey`; `indkey` and `indoption`
/// are `int2vector`s, `indclass` and `indcollation` `oidvector`s, which
/// SQLAlchemy reads as arrays and pgjdbc subscripts), and pg_class's
/// `reloptions` and `relacl` (always NULL) that psql's `\d+` and `\dp`
/// read.
fn typed(schema: &SchemaRef) -> SchemaRef {
    let positions = DataType::List(Arc::new(Field::new("item", DataType::Int16, true)));
    let oids = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
    let texts = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let mut fields: Vec<Field> = nullable(schema)
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "conkey" | "confkey" => f.as_ref().clone().with_data_type(positions.clone()),
            "indkey" | "indoption" => vector(f, positions.clone(), "22"),
            "indclass" | "indcollation" => vector(f, oids.clone(), "30"),
            // aclitem[] (always NULL): psql's `\dp` and `\dn+` join
            // their items.
            "attacl" | "nspacl" => f.as_ref().clone().with_data_type(texts.clone()),
            _ => f.as_ref().clone(),
        })
        // PostgreSQL 15's pg_namespace has no `options`.
        .filter(|f| !(f.name() == "options" && schema.field_with_name("nspname").is_ok()))
        .collect();
    // PostgreSQL 15's pg_collation has an ICU locale (psql's `\dO`).
    if schema.field_with_name("collctype").is_ok()
        && schema.field_with_name("colliculocale").is_err()
    {
        let at = fields
            .iter()
            .position(|f| f.name() == "collctype")
            .map_or(fields.len(), |i| i + 1);
        fields.insert(at, Field::new("colliculocale", DataType::Utf8, true));
    }
    if schema.field_with_name("relname").is_ok() {
        // In PostgreSQL 15's order, before `relpartbound` (DBeaver reads
        // `c.*` and keys its columns by position).
        let at = fields
            .iter()
            .position(|f| f.name() == "relpartbound")
            .unwrap_or(fields.len());
        for (i, extra) in ["relacl", "reloptions"].into_iter().enumerate() {
            if schema.field_with_name(extra).is_err() {
                fields.insert(at + i, Field::new(extra, texts.clone(), true));
            }
        }
    }
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `f` as a list of `items`, described to clients as the vector type of
/// OID `oid` (`int2vector` 22, `oidvector` 30), whose text is its items
/// separated by spaces: psycopg reads it as text, which SQLAlchemy splits;
/// a subscript (pgjdbc) reads the list.
fn vector(f: &Field, items: DataType, oid: &str) -> Field {
    let mut meta = f.metadata().clone();
    meta.insert(crate::types::PG_TYPE_KEY.to_string(), format!("{oid},-1"));
    f.clone().with_data_type(items).with_metadata(meta)
}

/// `schema` with every field nullable, so rows built here may leave
/// columns empty.
fn nullable(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[derive(Debug)]
struct Derived {
    which: Which,
    schema: SchemaRef,
    /// The generic table this one derives from.
    own: Arc<dyn TableProvider>,
    class: Arc<dyn TableProvider>,
    namespace: Arc<dyn TableProvider>,
    catalog: Arc<Catalog>,
    constraint_defs: Definitions,
    constraint_pretty: Definitions,
    index_defs: Definitions,
    index_columns: IndexColumns,
    relation_names: Definitions,
    placed: Placed,
    comments: Described,
    view_defs: Definitions,
}

impl TableProvider for Derived {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }
    crate::send_sync::scan_by!(Self::scan_boxed);
}

impl Derived {
    /// `TableProvider::scan` (see `crate::send_sync::scan_by`).
    fn scan_boxed<'a>(
        &'a self,
        state: &'a dyn Session,
        projection: Option<&'a Vec<usize>>,
        filters: &'a [Expr],
        limit: Option<usize>,
    ) -> futures::future::BoxFuture<'a, Result<Arc<dyn ExecutionPlan>>> {
        Box::pin(async move {
            let batch = self.build(state).await?;
            MemTable::try_new(self.schema.clone(), vec![vec![batch]])?
                .scan(state, projection, filters, limit)
                .await
        })
    }
}

/// A value of a row built here; the column's type decides its array.
#[derive(Debug, Clone)]
enum V {
    I(i64),
    S(String),
    B(bool),
    /// An `int2[]` (or `int2vector`) of column positions.
    L(Vec<i64>),
}

/// One constraint of one table, as the catalog tables show it.
struct Con {
    oid: i64,
    table_oid: i64,
    namespace: i64,
    name: String,
    /// `p`, `u`, `c` or `f`; `i` for a plain index (no constraint).
    kind: &'static str,
    /// 1-based column positions in the table.
    columns: Vec<i64>,
    parent_oid: i64,
    parent_columns: Vec<i64>,
    on_delete: &'static str,
    def: String,
    /// The pretty form of `def`, where it differs.
    pretty: Option<String>,
    index_def: Option<String>,
    /// The index a key constraint is, or the parent's key a foreign key
    /// references (0: none).
    index_oid: i64,
    /// A key's columns, quoted as `pg_get_indexdef` shows them.
    key_columns: Vec<String>,
    /// A row of `pg_constraint` (a unique index made with `CREATE UNIQUE
    /// INDEX` is enforced as a key but is no constraint; a plain index
    /// neither).
    constraint: bool,
}

impl Derived {
    async fn rows(&self, state: &dyn Session, p: &Arc<dyn TableProvider>) -> Result<RecordBatch> {
        let plan = p.scan(state, None, &[], None).await?;
        let batches = collect(plan, state.task_ctx()).await?;
        Ok(concat_batches(&p.schema(), &batches)?)
    }

    async fn build(&self, state: &dyn Session) -> Result<RecordBatch> {
        let class = self.rows(state, &self.class).await?;
        let namespace = self.rows(state, &self.namespace).await?;
        // `information_schema` keeps the OID the static `pg_proc` and
        // `pg_type` place its functions and types in (psql's `\df
        // information_schema.*` joins them).
        let fixed: HashMap<i64, i64> = pairs(&namespace, "oid", "nspname")?
            .into_iter()
            .filter(|(_, name)| name == "information_schema")
            .map(|(oid, _)| (oid, i64::from(super::pg_proc::INFORMATION_SCHEMA)))
            .collect();
        let namespace = with_mapped(namespace, "oid", &fixed)?;
        let class = with_mapped(class, "relnamespace", &fixed)?;
        let ns_names: HashMap<i64, String> = pairs(&namespace, "oid", "nspname")?;
        // The catalog's relations get OIDs of their own (see
        // `relation_oids`), the same in every session and on every server.
        let snapshot = self.catalog.snapshot();
        let remap: HashMap<i64, i64> = {
            let oids = int_column(&class, "oid")?;
            let rel_ns = int_column(&class, "relnamespace")?;
            let names = text_column(&class, "relname")?;
            (0..class.num_rows())
                .filter_map(|row| {
                    let schema = ns_names.get(&rel_ns[row])?;
                    Some((oids[row], snapshot.relation_oid(schema, &names[row])?))
                })
                .collect()
        };
        let class = with_mapped(class, "oid", &remap)?;
        // (schema, table) -> (oid, namespace oid, row in pg_class)
        let oids = int_column(&class, "oid")?;
        let rel_ns = int_column(&class, "relnamespace")?;
        let names = text_column(&class, "relname")?;
        let mut tables: HashMap<(String, String), (i64, i64, usize)> = HashMap::new();
        for row in 0..class.num_rows() {
            if let Some(schema) = ns_names.get(&rel_ns[row]) {
                tables.insert(
                    (schema.clone(), names[row].clone()),
                    (oids[row], rel_ns[row], row),
                );
            }
        }
        // Schema name -> namespace OID.
        let ns_oids: HashMap<&str, i64> = ns_names.iter().map(|(o, n)| (n.as_str(), *o)).collect();
        let sequences = self.sequences(&ns_oids);
        for (i, q) in sequences.iter().enumerate() {
            tables.insert(
                (q.schema.clone(), q.name.clone()),
                (q.oid, q.namespace, class.num_rows() + i),
            );
        }
        let cons = self.constraints(&tables);
        let described = self.descriptions(&tables, &ns_oids);
        {
            let mut map = self.comments.write().expect("not poisoned");
            map.clear();
            for (objoid, classoid, sub, text) in &described {
                map.insert((*objoid, *classoid, *sub), text.clone());
            }
        }
        {
            let mut placed = self.placed.write().expect("not poisoned");
            placed.clear();
            for ((schema, name), (oid, _, _)) in &tables {
                placed.insert(*oid, (schema.clone(), name.clone()));
            }
            for c in cons.iter().filter(|c| c.index_def.is_some()) {
                if let Some(schema) = ns_names.get(&c.namespace) {
                    placed.insert(c.oid, (schema.clone(), c.name.clone()));
                }
            }
            drop(placed);
            let mut shown = self.relation_names.write().expect("not poisoned");
            shown.clear();
            for ((schema, name), (oid, _, _)) in &tables {
                let text = if schema == "public" || schema == "pg_catalog" {
                    quote(name)
                } else {
                    format!("{}.{}", quote(schema), quote(name))
                };
                shown.insert(*oid, text);
            }
            let mut views = self.view_defs.write().expect("not poisoned");
            views.clear();
            for o in self.catalog.snapshot().objects() {
                let sql = match &o.def {
                    crate::catalog::Def::View(v) => &v.sql,
                    crate::catalog::Def::MaterializedView(m) => &m.query.sql,
                    _ => continue,
                };
                if let Some((oid, _, _)) = tables.get(&(o.schema.clone(), o.name.clone())) {
                    views.insert(*oid, format!(" {};", sql.trim_end_matches(';')));
                }
            }
            let mut defs = self.constraint_defs.write().expect("not poisoned");
            let mut pretty = self.constraint_pretty.write().expect("not poisoned");
            let mut index_defs = self.index_defs.write().expect("not poisoned");
            defs.clear();
            pretty.clear();
            index_defs.clear();
            let mut index_columns = self.index_columns.write().expect("not poisoned");
            index_columns.clear();
            for c in &cons {
                defs.insert(c.oid, c.def.clone());
                if let Some(p) = &c.pretty {
                    pretty.insert(c.oid, p.clone());
                }
                if let Some(d) = &c.index_def {
                    index_defs.insert(c.oid, d.clone());
                    index_columns.insert(c.oid, c.key_columns.clone());
                }
            }
        }
        match self.which {
            Which::Constraint => self.batch(
                cons.iter()
                    .filter(|c| c.constraint)
                    .map(constraint_row)
                    .collect(),
            ),
            Which::Index => self.batch(
                cons.iter()
                    .filter(|c| c.index_def.is_some())
                    .map(index_row)
                    .collect(),
            ),
            Which::Class => {
                let patched = self.class_with(class, &tables, &cons)?;
                let rows = self.batch(sequences.iter().map(sequence_class_row).collect())?;
                Ok(concat_batches(&self.schema, &[patched, rows])?)
            }
            Which::Sequence => self.batch(sequences.iter().map(sequence_row).collect()),
            Which::Depend => {
                let builtin = self.rows(state, &self.own).await?;
                let owned = self.batch(
                    sequences
                        .iter()
                        .filter_map(|q| owner_dependency(q, &tables, &self.catalog))
                        .collect(),
                )?;
                let builtin = RecordBatch::try_new(
                    self.schema.clone(),
                    builtin
                        .columns()
                        .iter()
                        .zip(self.schema.fields())
                        .map(|(c, f)| cast(c, f.data_type()))
                        .collect::<std::result::Result<Vec<_>, _>>()?,
                )?;
                Ok(concat_batches(&self.schema, &[builtin, owned])?)
            }
            Which::Attribute => {
                let attrs = with_mapped(self.rows(state, &self.own).await?, "attrelid", &remap)?;
                self.attributes_with(attrs, &tables)
            }
            Which::AttrDef => self.batch(
                self.table_defs(&tables)
                    .iter()
                    .flat_map(|(oid, def)| attrdef_rows(*oid, def))
                    .collect(),
            ),
            Which::Namespace => self.by_name(&namespace),
            Which::Collation => {
                let rows = self.rows(state, &self.own).await?;
                self.by_name(&rows)
            }
            Which::Description => {
                let builtin = self.rows(state, &self.own).await?;
                self.descriptions_with(builtin, &tables, &described)
            }
        }
    }

    /// `rows` in this table's columns, taken by name; a column `rows` has
    /// not (or of another type) is NULL.
    fn by_name(&self, rows: &RecordBatch) -> Result<RecordBatch> {
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|f| match rows.column_by_name(f.name()) {
                Some(c) if c.data_type() == f.data_type() => c.clone(),
                _ => new_null_array(f.data_type(), rows.num_rows()),
            })
            .collect();
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    /// The descriptions of schemas, relations and their columns: the
    /// `COMMENT ON`s of the catalog and PostgreSQL's own of `pg_catalog`
    /// and `public`.
    fn descriptions(
        &self,
        tables: &HashMap<(String, String), (i64, i64, usize)>,
        ns_oid: &HashMap<&str, i64>,
    ) -> Vec<Description> {
        let (pg_class, pg_namespace) = ("pg_class", "pg_namespace");
        let snap = self.catalog.snapshot();
        let mut out = Vec::new();
        for (schema, text) in [
            ("pg_catalog", "system catalog schema"),
            (super::DEFAULT_SCHEMA, "standard public schema"),
        ] {
            let commented = snap
                .objects()
                .iter()
                .any(|o| o.kind() == Kind::Schema && o.name == schema && o.comment(None).is_some());
            if let (Some(oid), false) = (ns_oid.get(schema), commented) {
                out.push((*oid, pg_namespace, 0, text.to_string()));
            }
        }
        for o in snap.objects().iter().filter(|o| !o.comments.is_empty()) {
            if o.kind() == Kind::Schema {
                if let (Some(oid), Some(text)) = (ns_oid.get(o.name.as_str()), o.comment(None)) {
                    out.push((*oid, pg_namespace, 0, text.to_string()));
                }
                continue;
            }
            let Some(&(oid, _, _)) = tables.get(&(o.schema.clone(), o.name.clone())) else {
                continue;
            };
            let columns = o.declared_columns();
            for (key, text) in &o.comments {
                let sub = if key.is_empty() {
                    0
                } else {
                    match columns.iter().position(|c| &c.name == key) {
                        Some(i) => i as i64 + 1,
                        None => continue,
                    }
                };
                out.push((oid, pg_class, sub, text.clone()));
            }
        }
        out
    }

    /// pg_description: `builtin` (PostgreSQL's descriptions of its types,
    /// functions, ...; its schema rows give way to `described`), with
    /// each catalog's OID as this session's `pg_class` has it (what
    /// `'pg_class'::regclass` gives here), then `described`.
    fn descriptions_with(
        &self,
        builtin: RecordBatch,
        tables: &HashMap<(String, String), (i64, i64, usize)>,
        described: &[Description],
    ) -> Result<RecordBatch> {
        let class_oid = |name: &str| {
            tables
                .get(&("pg_catalog".to_string(), name.to_string()))
                .map(|t| t.0)
                .unwrap_or(0)
        };
        let catalogs: HashMap<i64, i64> = PG_CATALOG_OIDS
            .iter()
            .filter_map(|(fixed, name)| {
                tables
                    .get(&("pg_catalog".to_string(), name.to_string()))
                    .map(|t| (*fixed, t.0))
            })
            .collect();
        let objoids = int_column(&builtin, "objoid")?;
        let classoids = int_column(&builtin, "classoid")?;
        let subids = int_column(&builtin, "objsubid")?;
        let texts = text_column(&builtin, "description")?;
        let mut rows: Vec<Vec<(&'static str, V)>> = Vec::with_capacity(objoids.len());
        for i in 0..objoids.len() {
            // PostgreSQL's fixed pg_namespace OID: the schemas are described
            // below, with their OIDs here.
            if classoids[i] == 2615 {
                continue;
            }
            let classoid = catalogs.get(&classoids[i]).copied().unwrap_or(classoids[i]);
            rows.push(vec![
                ("objoid", V::I(objoids[i])),
                ("classoid", V::I(classoid)),
                ("objsubid", V::I(subids[i])),
                ("description", V::S(texts[i].clone())),
            ]);
        }
        for (objoid, classoid, sub, text) in described {
            rows.push(vec![
                ("objoid", V::I(*objoid)),
                ("classoid", V::I(class_oid(classoid))),
                ("objsubid", V::I(*sub)),
                ("description", V::S(text.clone())),
            ]);
        }
        self.batch(rows)
    }

    /// Every constraint of every table in `tables`, in a stable order.
    fn constraints(&self, tables: &HashMap<(String, String), (i64, i64, usize)>) -> Vec<Con> {
        let snap = self.catalog.snapshot();
        let mut out = Vec::new();
        for e in snap.objects().iter().filter(|e| e.kind() == Kind::Table) {
            let Some(&(oid, ns, _)) = tables.get(&(e.schema.clone(), e.name.clone())) else {
                continue;
            };
            let Ok(def) = e.table_def() else { continue };
            let first = out.len();
            let mut n = 0;
            let mut next = || {
                n += 1;
                CON_OID_BASE + oid * PER_TABLE + n
            };
            let con =
                |con_oid: i64, name: &str, kind: &'static str, cols: &[String], text: String| Con {
                    oid: con_oid,
                    table_oid: oid,
                    namespace: ns,
                    name: name.to_string(),
                    kind,
                    columns: positions(&def, cols),
                    parent_oid: 0,
                    parent_columns: Vec::new(),
                    on_delete: " ",
                    def: text,
                    pretty: None,
                    index_def: None,
                    index_oid: 0,
                    key_columns: Vec::new(),
                    constraint: kind != "i",
                };
            for k in &def.keys {
                let cols = column_list(&k.columns);
                let kind = if k.primary { "p" } else { "u" };
                let word = if k.primary { "PRIMARY KEY" } else { "UNIQUE" };
                let mut c = con(
                    next(),
                    &k.name,
                    kind,
                    &k.columns,
                    format!("{word} ({cols})"),
                );
                c.index_oid = c.oid;
                c.constraint = !def.indexes.iter().any(|i| i.name == k.name);
                c.key_columns = k.columns.iter().map(|n| quote(n)).collect();
                c.index_def = Some(format!(
                    "CREATE UNIQUE INDEX {} ON {}.{} USING delta ({cols})",
                    quote(&k.name),
                    quote(&e.schema),
                    quote(&e.name)
                ));
                out.push(c);
            }
            // A plain index (`i`): an index relation, not a constraint.
            for ix in def.indexes.iter().filter(|i| !i.unique) {
                // An expression index shows its elements as written.
                let cols = if ix.expressions.is_empty() {
                    column_list(&ix.columns)
                } else {
                    ix.expressions.join(", ")
                };
                let mut c = con(next(), &ix.name, "i", &ix.columns, String::new());
                if !ix.expressions.is_empty() {
                    // An expression is column 0 of `indkey`, as in PostgreSQL.
                    c.columns = ix
                        .expressions
                        .iter()
                        .map(|e| {
                            positions(&def, std::slice::from_ref(e))
                                .first()
                                .copied()
                                .unwrap_or(0)
                        })
                        .collect();
                }
                c.index_oid = c.oid;
                c.key_columns = if ix.expressions.is_empty() {
                    ix.columns.iter().map(|n| quote(n)).collect()
                } else {
                    ix.expressions.clone()
                };
                let partial = ix
                    .predicate
                    .as_ref()
                    .map(|p| format!(" WHERE ({p})"))
                    .unwrap_or_default();
                c.index_def = Some(format!(
                    "CREATE INDEX {} ON {}.{} USING delta ({cols}){partial}",
                    quote(&ix.name),
                    quote(&e.schema),
                    quote(&e.name)
                ));
                out.push(c);
            }
            for ch in &def.checks {
                let cols = super::deparse::check_columns(&ch.expr, &def.columns);
                // As PostgreSQL prints it back, with its implicit casts.
                let (plain, pretty) = super::deparse::check_texts(&ch.expr, &def.columns)
                    .unwrap_or_else(|| (ch.expr.clone(), ch.expr.clone()));
                let mut c = con(next(), &ch.name, "c", &cols, format!("CHECK ({plain})"));
                c.pretty = Some(format!("CHECK ({pretty})"));
                out.push(c);
            }
            for fk in &def.foreign_keys {
                let parent = if fk.parent_schema == e.schema {
                    quote(&fk.parent_table)
                } else {
                    format!("{}.{}", quote(&fk.parent_schema), quote(&fk.parent_table))
                };
                let mut text = format!(
                    "FOREIGN KEY ({}) REFERENCES {parent}({})",
                    column_list(&fk.columns),
                    column_list(&fk.parent_columns)
                );
                use super::rules::SetOnDelete;
                let on_delete = match (fk.cascade, fk.on_delete_set) {
                    (true, _) => ("c", " ON DELETE CASCADE"),
                    (_, Some(SetOnDelete::Null)) => ("n", " ON DELETE SET NULL"),
                    (_, Some(SetOnDelete::Default)) => ("d", " ON DELETE SET DEFAULT"),
                    _ => ("a", ""),
                };
                text.push_str(on_delete.1);
                let mut c = con(next(), &fk.name, "f", &fk.columns, text);
                if let Some(&(parent_oid, _, _)) =
                    tables.get(&(fk.parent_schema.clone(), fk.parent_table.clone()))
                {
                    c.parent_oid = parent_oid;
                }
                c.parent_columns = snap
                    .objects()
                    .iter()
                    .find(|p| {
                        p.kind() == Kind::Table
                            && p.schema == fk.parent_schema
                            && p.name == fk.parent_table
                    })
                    .and_then(|p| p.table_def().ok())
                    .map(|p| positions(&p, &fk.parent_columns))
                    .unwrap_or_default();
                c.on_delete = on_delete.0;
                out.push(c);
            }
            // OIDs past the table's range would be its defaults' (the upper
            // half) or the next table's.
            out.truncate(first + PER_TABLE as usize / 2 - 1);
        }
        // A foreign key's index is the key of the parent it references
        // (pgjdbc's getImportedKeys joins `pkic.oid = con.conindid`).
        let mut keys: HashMap<(i64, Vec<i64>), i64> = HashMap::new();
        for c in out.iter().filter(|c| c.index_def.is_some()) {
            let mut cols = c.columns.clone();
            cols.sort_unstable();
            keys.insert((c.table_oid, cols), c.oid);
        }
        for c in out.iter_mut().filter(|c| c.kind == "f") {
            let mut cols = c.parent_columns.clone();
            cols.sort_unstable();
            c.index_oid = keys.get(&(c.parent_oid, cols)).copied().unwrap_or(0);
        }
        out
    }

    /// The definitions of the catalog's tables, by OID.
    fn table_defs(
        &self,
        tables: &HashMap<(String, String), (i64, i64, usize)>,
    ) -> Vec<(i64, Arc<TableDef>)> {
        let snap = self.catalog.snapshot();
        snap.objects()
            .iter()
            .filter(|o| o.kind() == Kind::Table)
            .filter_map(|o| {
                let (oid, _, _) = tables.get(&(o.schema.clone(), o.name.clone()))?;
                Some((*oid, o.table_def().ok()?))
            })
            .collect()
    }

    /// pg_attribute with each column's declared type, its modifier
    /// (`varchar(20)`, `numeric(12,2)`) and whether it has a default:
    /// the generic table knows only the Arrow type.
    fn attributes_with(
        &self,
        attrs: RecordBatch,
        tables: &HashMap<(String, String), (i64, i64, usize)>,
    ) -> Result<RecordBatch> {
        // Every relation's declared columns: a view's and a materialized
        // view's carry the types of the table columns they pass through.
        let snap = self.catalog.snapshot();
        let defs: HashMap<i64, &[super::ColumnDef]> = snap
            .objects()
            .iter()
            .filter_map(|o| {
                let (oid, _, _) = tables.get(&(o.schema.clone(), o.name.clone()))?;
                Some((*oid, o.declared_columns()))
            })
            .collect();
        // A view's columns are never NOT NULL in PostgreSQL, whatever the
        // columns they read.
        let views: std::collections::HashSet<i64> = snap
            .objects()
            .iter()
            .filter(|o| matches!(o.kind(), Kind::View | Kind::MaterializedView))
            .filter_map(|o| tables.get(&(o.schema.clone(), o.name.clone())).map(|t| t.0))
            .collect();
        let relids = int_column(&attrs, "attrelid")?;
        let names = text_column(&attrs, "attname")?;
        let declared: Vec<Option<&super::ColumnDef>> = relids
            .iter()
            .zip(&names)
            .map(|(rel, name)| {
                defs.get(rel)
                    .and_then(|cols| cols.iter().find(|c| &c.name == name))
            })
            .collect();
        let mut columns = Vec::new();
        for f in self.schema.fields() {
            let Some(generic) = attrs.column_by_name(f.name()) else {
                columns.push(new_null_array(f.data_type(), attrs.num_rows()));
                continue;
            };
            let patched: Option<Vec<Option<V>>> = match f.name().as_str() {
                "atttypid" => {
                    let old = int_column(&attrs, "atttypid")?;
                    Some(
                        declared
                            .iter()
                            .zip(old)
                            .map(|(d, o)| {
                                let oid = d.and_then(|c| c.ty.known_oid()).map(i64::from);
                                Some(V::I(oid.unwrap_or(o)))
                            })
                            .collect(),
                    )
                }
                "atttypmod" => {
                    let old = int_column(&attrs, "atttypmod")?;
                    Some(
                        declared
                            .iter()
                            .zip(old)
                            .map(|(d, o)| Some(V::I(d.map_or(o, |c| i64::from(c.ty.typmod())))))
                            .collect(),
                    )
                }
                "attnotnull" => {
                    let old = cast(generic, &DataType::Boolean)?;
                    let old = old.as_boolean();
                    Some(
                        relids
                            .iter()
                            .enumerate()
                            .map(|(i, rel)| {
                                Some(V::B(
                                    !views.contains(rel) && old.is_valid(i) && old.value(i),
                                ))
                            })
                            .collect(),
                    )
                }
                "atthasdef" => {
                    let old = cast(generic, &DataType::Boolean)?;
                    let old = old.as_boolean();
                    Some(
                        declared
                            .iter()
                            .enumerate()
                            .map(|(i, d)| {
                                Some(V::B(match d {
                                    Some(c) => c.default.is_some() || c.generated.is_some(),
                                    None => old.is_valid(i) && old.value(i),
                                }))
                            })
                            .collect(),
                    )
                }
                // `s` for a generated column. (`attidentity` stays empty:
                // SQLAlchemy's inspector then looks an identity's sequence
                // up with a cast of a computed name to regclass, which
                // Sluice does not evaluate.)
                "attgenerated" => {
                    let old = text_column(&attrs, "attgenerated")?;
                    Some(
                        declared
                            .iter()
                            .zip(old)
                            .map(|(d, o)| {
                                Some(V::S(match d {
                                    Some(c) if c.generated.is_some() => "s".to_string(),
                                    Some(_) => String::new(),
                                    None => o,
                                }))
                            })
                            .collect(),
                    )
                }
                _ => None,
            };
            columns.push(match patched {
                Some(values) => array(f.data_type(), &values)?,
                None if generic.data_type() != f.data_type()
                    && generic.null_count() == generic.len() =>
                {
                    new_null_array(f.data_type(), attrs.num_rows())
                }
                None => cast(generic, f.data_type())?,
            });
        }
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    /// The catalog's sequences with their OIDs (see [`numbered_sequences`]).
    fn sequences(&self, ns_oids: &HashMap<&str, i64>) -> Vec<Seq> {
        let snap = self.catalog.snapshot();
        numbered_sequences(&snap)
            .into_iter()
            .filter_map(|(oid, o, def)| {
                Some(Seq {
                    oid,
                    namespace: *ns_oids.get(o.schema.as_str())?,
                    schema: o.schema.clone(),
                    name: o.name.clone(),
                    def: def.clone(),
                })
            })
            .collect()
    }

    /// pg_class with the constraint columns filled and a row per key.
    fn class_with(
        &self,
        class: RecordBatch,
        tables: &HashMap<(String, String), (i64, i64, usize)>,
        cons: &[Con],
    ) -> Result<RecordBatch> {
        let oids = int_column(&class, "oid")?;
        let snap = self.catalog.snapshot();
        let matviews: std::collections::HashSet<i64> = snap
            .of_kind(Kind::MaterializedView)
            .filter_map(|o| tables.get(&(o.schema.clone(), o.name.clone())))
            .map(|(oid, _, _)| *oid)
            .collect();
        let mut checks: HashMap<i64, i64> = HashMap::new();
        let mut keyed: HashMap<i64, bool> = HashMap::new();
        let mut referenced: HashMap<i64, bool> = HashMap::new();
        for c in cons {
            match c.kind {
                "c" => *checks.entry(c.table_oid).or_default() += 1,
                "f" => {
                    referenced.insert(c.table_oid, true);
                    referenced.insert(c.parent_oid, true);
                }
                _ => {
                    keyed.insert(c.table_oid, true);
                }
            }
        }
        // `information_schema`'s relations are views, as in PostgreSQL
        // (`\dv information_schema.*`).
        let info_schema = i64::from(super::pg_proc::INFORMATION_SCHEMA);
        let kinds: Vec<String> = text_column(&class, "relkind")?
            .into_iter()
            .zip(int_column(&class, "relnamespace")?)
            .zip(&oids)
            .map(|((k, ns), o)| {
                if matviews.contains(o) {
                    "m".to_string()
                } else if ns == info_schema {
                    "v".to_string()
                } else {
                    k
                }
            })
            .collect();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for f in self.schema.fields() {
            let patched: Option<Vec<V>> = match f.name().as_str() {
                "relchecks" => Some(
                    oids.iter()
                        .map(|o| V::I(checks.get(o).copied().unwrap_or(0)))
                        .collect(),
                ),
                "relhasindex" => Some(oids.iter().map(|o| V::B(keyed.contains_key(o))).collect()),
                "relkind" => Some(kinds.iter().map(|k| V::S(k.clone())).collect()),
                "relhastriggers" => Some(
                    oids.iter()
                        .map(|o| V::B(referenced.contains_key(o)))
                        .collect(),
                ),
                // Tables and materialized views use PostgreSQL's default
                // table access method (`default_table_access_method`).
                "relam" => Some(
                    kinds
                        .iter()
                        .map(|k| {
                            V::I(if matches!(k.as_str(), "r" | "m") {
                                HEAP
                            } else {
                                0
                            })
                        })
                        .collect(),
                ),
                _ => None,
            };
            let col = match (patched, class.column_by_name(f.name())) {
                (Some(values), _) => array(
                    f.data_type(),
                    &values.into_iter().map(Some).collect::<Vec<_>>(),
                )?,
                (None, Some(c)) => c.clone(),
                (None, None) => new_null_array(f.data_type(), class.num_rows()),
            };
            columns.push(col);
        }
        let patched = RecordBatch::try_new(self.schema.clone(), columns)?;
        // A row per key, as an index relation: its table's row, renamed.
        let mut parts = vec![patched.clone()];
        let rows: HashMap<i64, usize> = tables.values().map(|(o, _, r)| (*o, *r)).collect();
        for c in cons.iter().filter(|c| c.index_def.is_some()) {
            let Some(&row) = rows.get(&c.table_oid) else {
                continue;
            };
            let base = patched.slice(row, 1);
            let mut columns = Vec::new();
            for (i, f) in self.schema.fields().iter().enumerate() {
                let value = match f.name().as_str() {
                    "oid" => Some(V::I(c.oid)),
                    "relname" => Some(V::S(c.name.clone())),
                    "relkind" => Some(V::S("i".into())),
                    "relam" => Some(V::I(BTREE)),
                    "relchecks" => Some(V::I(0)),
                    "relhasindex" | "relhastriggers" => Some(V::B(false)),
                    "relnatts" => Some(V::I(c.columns.len() as i64)),
                    _ => None,
                };
                columns.push(match value {
                    Some(v) => array(f.data_type(), &[Some(v)])?,
                    None => base.column(i).clone(),
                });
            }
            parts.push(RecordBatch::try_new(self.schema.clone(), columns)?);
        }
        Ok(concat_batches(&self.schema, &parts)?)
    }

    /// A batch of this table's schema from rows of named values; columns
    /// a row does not name are NULL.
    fn batch(&self, rows: Vec<Vec<(&'static str, V)>>) -> Result<RecordBatch> {
        let mut columns = Vec::new();
        for f in self.schema.fields() {
            let values: Vec<Option<V>> = rows
                .iter()
                .map(|r| {
                    r.iter()
                        .find(|(n, _)| *n == f.name())
                        .map(|(_, v)| v.clone())
                })
                .collect();
            columns.push(array(f.data_type(), &values)?);
        }
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )?)
    }
}

/// OIDs of sequences: from a hash of the sequence's id, the same in
/// every session and on every server of a lake, between the OIDs
/// datafusion-pg-catalog hands out and [`CON_OID_BASE`]. `ids` come in
/// order; a clash takes the next free OID.
const SEQ_OID_BASE: i64 = 600_000;
const SEQ_OIDS: u64 = 400_000;

/// Every sequence of `snap` with its OID (see [`sequence_oids`]): the one
/// numbering `pg_class` and the size functions share.
fn numbered_sequences(snap: &super::Snapshot) -> Vec<(i64, &super::Object, &Arc<SequenceDef>)> {
    let mut found: Vec<(&super::Object, &Arc<SequenceDef>)> = snap
        .of_kind(Kind::Sequence)
        .filter_map(|o| match &o.def {
            Def::Sequence(d) => Some((o, d)),
            _ => None,
        })
        .collect();
    found.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    let oids = sequence_oids(found.iter().map(|(_, d)| d.id.as_str()));
    oids.into_iter()
        .zip(found)
        .map(|(oid, (o, d))| (oid, o, d))
        .collect()
}

fn sequence_oids<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<i64> {
    let mut taken = std::collections::HashSet::new();
    ids.map(|id| {
        let mut slot = fnv1a(id) % SEQ_OIDS;
        while !taken.insert(slot) {
            slot = (slot + 1) % SEQ_OIDS;
        }
        SEQ_OID_BASE + slot as i64
    })
    .collect()
}

/// OIDs of the catalog's tables, views and materialized views, by
/// (schema, name): from a hash of where a table is stored (of a view's
/// name), so every session and every server of a lake gives a relation the
/// same OID (pgjdbc reads the OID of a result column's table from
/// RowDescription and looks it up in `pg_class` on the same or another
/// connection). Keys are taken in order; a clash takes the next free OID.
/// Between the OIDs datafusion-pg-catalog hands out and the sequences'.
/// Read through [`super::Snapshot::relation_oid`], which keeps the map.
pub(super) fn relation_oids(snapshot: &super::Snapshot) -> HashMap<(String, String), i64> {
    const BASE: i64 = 200_000;
    const SLOTS: u64 = 400_000;
    // A table's identity is where it is stored (a rename keeps its OID);
    // a view's is its name.
    let mut keyed: Vec<(String, &crate::catalog::Object)> = snapshot
        .objects()
        .iter()
        .filter_map(|o| {
            let key = match &o.def {
                Def::Table(t) => t.location.clone(),
                Def::MaterializedView(m) => m.table.location.clone(),
                _ if matches!(o.kind(), Kind::View | Kind::External) => {
                    format!("{}.{}", o.schema, o.name)
                }
                _ => return None,
            };
            Some((key, o))
        })
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut taken = std::collections::HashSet::new();
    keyed
        .into_iter()
        .map(|(key, o)| {
            let mut slot = fnv1a(&key) % SLOTS;
            while !taken.insert(slot) {
                slot = (slot + 1) % SLOTS;
            }
            ((o.schema.clone(), o.name.clone()), BASE + slot as i64)
        })
        .collect()
}

/// FNV-1a: stable across builds and platforms.
fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `batch` with the integer column `name`'s values replaced through `map`
/// (values it does not list kept), in the column's own type.
fn with_mapped(batch: RecordBatch, name: &str, map: &HashMap<i64, i64>) -> Result<RecordBatch> {
    let Some(at) = batch.schema().index_of(name).ok() else {
        return Ok(batch);
    };
    if map.is_empty() {
        return Ok(batch);
    }
    let old = batch.column(at);
    let wide = cast(old, &DataType::Int64)?;
    let mapped: datafusion::arrow::array::Int64Array = wide
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .iter()
        .map(|v| v.map(|v| map.get(&v).copied().unwrap_or(v)))
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[at] = cast(&mapped, old.data_type())?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// A sequence as the catalog tables show it.
struct Seq {
    oid: i64,
    namespace: i64,
    schema: String,
    name: String,
    def: Arc<SequenceDef>,
}

/// PostgreSQL's type OIDs of a sequence's type.
fn sequence_type_oid(def: &SequenceDef) -> i64 {
    match def.ty.name.as_str() {
        "smallint" => 21,
        "integer" => 23,
        _ => 20,
    }
}

fn sequence_class_row(q: &Seq) -> Vec<(&'static str, V)> {
    vec![
        ("oid", V::I(q.oid)),
        ("relname", V::S(q.name.clone())),
        ("relnamespace", V::I(q.namespace)),
        ("reltype", V::I(0)),
        ("reloftype", V::I(0)),
        ("relowner", V::I(0)),
        ("relam", V::I(0)),
        ("relfilenode", V::I(q.oid)),
        ("reltablespace", V::I(0)),
        ("relpages", V::I(1)),
        ("reltuples", V::I(1)),
        ("relallvisible", V::I(0)),
        ("reltoastrelid", V::I(0)),
        ("relhasindex", V::B(false)),
        ("relisshared", V::B(false)),
        ("relpersistence", V::S("p".into())),
        ("relkind", V::S("S".into())),
        ("relnatts", V::I(3)),
        ("relchecks", V::I(0)),
        ("relhasrules", V::B(false)),
        ("relhastriggers", V::B(false)),
        ("relhassubclass", V::B(false)),
        ("relrowsecurity", V::B(false)),
        ("relforcerowsecurity", V::B(false)),
        ("relispopulated", V::B(true)),
        ("relreplident", V::S("n".into())),
        ("relispartition", V::B(false)),
        ("relrewrite", V::I(0)),
        ("relfrozenxid", V::I(0)),
        ("relminmxid", V::I(0)),
    ]
}

fn sequence_row(q: &Seq) -> Vec<(&'static str, V)> {
    let d = &q.def;
    vec![
        ("seqrelid", V::I(q.oid)),
        ("seqtypid", V::I(sequence_type_oid(d))),
        ("seqstart", V::I(d.start)),
        ("seqincrement", V::I(d.increment)),
        ("seqmax", V::I(d.max)),
        ("seqmin", V::I(d.min)),
        ("seqcache", V::I(d.cache)),
        ("seqcycle", V::B(d.cycle)),
    ]
}

/// The pg_depend row that ties a sequence to the column that owns it:
/// `a` (auto) for a serial column or `OWNED BY`, `i` (internal) for an
/// identity column, as psql's `\d` reads them.
fn owner_dependency(
    q: &Seq,
    tables: &HashMap<(String, String), (i64, i64, usize)>,
    catalog: &Catalog,
) -> Option<Vec<(&'static str, V)>> {
    let (table, column) = q.def.owned_by.as_ref()?;
    let &(table_oid, _, _) = tables.get(&(q.schema.clone(), table.clone()))?;
    // `pg_class`'s own OID as this session's catalog gives it (what
    // `'pg_catalog.pg_class'::regclass` is here), as the descriptions do.
    let pg_class = tables
        .get(&("pg_catalog".to_string(), "pg_class".to_string()))
        .map_or(1259, |t| t.0);
    let snap = catalog.snapshot();
    let def = snap.relation(&q.schema, table)?.table_def().ok()?;
    let position = def.columns.iter().position(|c| &c.name == column)?;
    let identity = def.columns[position].identity.is_some();
    Some(vec![
        ("classid", V::I(pg_class)),
        ("objid", V::I(q.oid)),
        ("objsubid", V::I(0)),
        ("refclassid", V::I(pg_class)),
        ("refobjid", V::I(table_oid)),
        ("refobjsubid", V::I(position as i64 + 1)),
        ("deptype", V::S(if identity { "i" } else { "a" }.into())),
    ])
}

fn constraint_row(c: &Con) -> Vec<(&'static str, V)> {
    let mut row = vec![
        ("oid", V::I(c.oid)),
        ("conname", V::S(c.name.clone())),
        ("connamespace", V::I(c.namespace)),
        ("contype", V::S(c.kind.into())),
        ("condeferrable", V::B(false)),
        ("condeferred", V::B(false)),
        ("convalidated", V::B(true)),
        ("conrelid", V::I(c.table_oid)),
        ("contypid", V::I(0)),
        ("conindid", V::I(c.index_oid)),
        ("conparentid", V::I(0)),
        ("confrelid", V::I(c.parent_oid)),
        (
            "confupdtype",
            V::S(if c.kind == "f" { "a" } else { " " }.into()),
        ),
        ("confdeltype", V::S(c.on_delete.into())),
        (
            "confmatchtype",
            V::S(if c.kind == "f" { "s" } else { " " }.into()),
        ),
        ("conislocal", V::B(true)),
        ("coninhcount", V::I(0)),
        ("connoinherit", V::B(c.kind == "c")),
    ];
    if !c.columns.is_empty() {
        row.push(("conkey", V::L(c.columns.clone())));
    }
    if c.kind == "f" {
        row.push(("confkey", V::L(c.parent_columns.clone())));
    }
    row
}

/// The pg_attrdef rows of table `oid`: each default as PostgreSQL prints
/// it (`pg_get_expr`), a string literal with its column's type.
fn attrdef_rows(oid: i64, def: &TableDef) -> Vec<Vec<(&'static str, V)>> {
    def.columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let num = i as i64 + 1;
            let (text, generated) = match &c.generated {
                Some(e) => (format!("({e})"), true),
                None => (c.shown_default()?, false),
            };
            let literal =
                !generated && text.starts_with('\'') && text.ends_with('\'') && text.len() >= 2;
            let shown = if literal {
                format!("{text}::{}", c.ty.name)
            } else {
                text.clone()
            };
            // Past the table's constraint OIDs (see `constraints`).
            (num < PER_TABLE / 2).then(|| {
                vec![
                    (
                        "oid",
                        V::I(CON_OID_BASE + oid * PER_TABLE + PER_TABLE / 2 + num),
                    ),
                    ("adrelid", V::I(oid)),
                    ("adnum", V::I(num)),
                    ("adbin", V::S(shown)),
                ]
            })
        })
        .collect()
}

fn index_row(c: &Con) -> Vec<(&'static str, V)> {
    let n = c.columns.len() as i64;
    vec![
        ("indexrelid", V::I(c.oid)),
        ("indrelid", V::I(c.table_oid)),
        ("indnatts", V::I(n)),
        ("indnkeyatts", V::I(n)),
        ("indisunique", V::B(c.kind != "i")),
        ("indnullsnotdistinct", V::B(false)),
        ("indisprimary", V::B(c.kind == "p")),
        ("indisexclusion", V::B(false)),
        ("indimmediate", V::B(true)),
        ("indisclustered", V::B(false)),
        ("indisvalid", V::B(true)),
        ("indcheckxmin", V::B(false)),
        ("indisready", V::B(true)),
        ("indislive", V::B(true)),
        ("indisreplident", V::B(false)),
        ("indkey", V::L(c.columns.clone())),
        ("indcollation", V::L(vec![0; c.columns.len()])),
        ("indclass", V::L(vec![0; c.columns.len()])),
        ("indoption", V::L(vec![0; c.columns.len()])),
    ]
}

/// An array of type `ty` from `values` (None is NULL).
fn array(ty: &DataType, values: &[Option<V>]) -> Result<ArrayRef> {
    let ints = || -> ArrayRef {
        Arc::new(Int64Array::from_iter(values.iter().map(|v| match v {
            Some(V::I(i)) => Some(*i),
            _ => None,
        })))
    };
    let natural: ArrayRef = match ty {
        DataType::Boolean => Arc::new(BooleanArray::from_iter(values.iter().map(|v| match v {
            Some(V::B(b)) => Some(*b),
            _ => None,
        }))),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
            Arc::new(StringArray::from_iter(values.iter().map(|v| match v {
                Some(V::S(s)) => Some(s.clone()),
                _ => None,
            })))
        }
        DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64 => ints(),
        DataType::List(_) => Arc::new(datafusion::arrow::array::ListArray::from_iter_primitive::<
            datafusion::arrow::datatypes::Int64Type,
            _,
            _,
        >(values.iter().map(|v| match v {
            Some(V::L(items)) => Some(items.iter().map(|i| Some(*i)).collect::<Vec<_>>()),
            _ => None,
        }))),
        other => return Ok(new_null_array(other, values.len())),
    };
    Ok(cast(&natural, ty)?)
}

/// `key -> value` from two columns of `batch`.
fn pairs(batch: &RecordBatch, key: &str, value: &str) -> Result<HashMap<i64, String>> {
    let keys = int_column(batch, key)?;
    let values = text_column(batch, value)?;
    Ok(keys.into_iter().zip(values).collect())
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog table without {name}")))
}

fn int_column(batch: &RecordBatch, name: &str) -> Result<Vec<i64>> {
    let c = cast(column(batch, name)?, &DataType::Int64)?;
    let c = c.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    Ok((0..c.len()).map(|i| c.value(i)).collect())
}

fn text_column(batch: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let c = cast(column(batch, name)?, &DataType::Utf8)?;
    let c = c.as_string::<i32>();
    Ok((0..c.len()).map(|i| c.value(i).to_string()).collect())
}

/// 1-based positions of `cols` in `def`.
fn positions(def: &TableDef, cols: &[String]) -> Vec<i64> {
    cols.iter()
        .filter_map(|c| def.columns.iter().position(|d| &d.name == c))
        .map(|p| p as i64 + 1)
        .collect()
}

/// An identifier as PostgreSQL prints it: quoted only when it must be.
fn quote(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn column_list(cols: &[String]) -> String {
    cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
}

/// `pg_get_constraintdef(oid [, pretty])` / `pg_get_indexdef(oid [, column,
/// pretty])`: the definition of a constraint or key index, NULL when the
/// OID is not one.
#[derive(Debug)]
struct GetDef {
    name: &'static str,
    defs: Definitions,
    /// The definitions' pretty forms (`pretty` true), where they differ.
    pretty: Option<Definitions>,
    /// An index's columns: `pg_get_indexdef(oid, n, pretty)` answers the
    /// n-th (pgjdbc's getIndexInfo).
    columns: Option<IndexColumns>,
    signature: Signature,
}

/// The columns of each key index, by OID, as `pg_get_indexdef` shows them.
type IndexColumns = Arc<RwLock<HashMap<i64, Vec<String>>>>;

/// `PartialEq`, `Eq` and `Hash` of a UDF by its name (its shared maps
/// are the same for every instance of one name).
macro_rules! same_by_name {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.name == other.name
            }
        }
        impl Eq for $t {}
        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.name.hash(state);
            }
        }
    };
}

same_by_name!(GetDef);

/// Where each relation of the last `pg_class` built is: OID to (schema,
/// name), for `pg_table_is_visible`.
type Placed = Arc<RwLock<HashMap<i64, (String, String)>>>;

/// Which relations of `placed` a search path (text, as `SET` takes it)
/// finds by their bare names: `pg_catalog` first unless the path names it,
/// an earlier schema's relation of the same name hiding a later one.
struct Visibility<'a> {
    placed: &'a HashMap<i64, (String, String)>,
    schemas: Vec<&'a str>,
    names: std::collections::HashSet<(&'a str, &'a str)>,
}

impl<'a> Visibility<'a> {
    fn new(placed: &'a HashMap<i64, (String, String)>, path: &'a str) -> Self {
        let mut schemas: Vec<&str> = path
            .split(',')
            .map(|s| s.trim().trim_matches('"'))
            .filter(|s| !s.is_empty() && *s != "$user")
            .collect();
        if !schemas.contains(&"pg_catalog") {
            schemas.insert(0, "pg_catalog");
        }
        let names = placed
            .values()
            .map(|(s, n)| (s.as_str(), n.as_str()))
            .collect();
        Visibility {
            placed,
            schemas,
            names,
        }
    }

    /// Whether relation `oid` is visible; None for an unknown OID.
    fn of(&self, oid: i64) -> Option<bool> {
        let (schema, name) = self.placed.get(&oid)?;
        let at = self.schemas.iter().position(|s| s == schema);
        Some(at.is_some_and(|at| {
            !self.schemas[..at]
                .iter()
                .any(|earlier| self.names.contains(&(*earlier, name.as_str())))
        }))
    }
}

/// A relation OID shown as a `regclass` (`sluice_regclass_name(oid,
/// path)`): the bare name when the search path finds it by that name,
/// else qualified by its schema.
#[derive(Debug)]
struct RelationName {
    placed: Placed,
    /// The names shown without a path: qualified outside `public`.
    shown: Definitions,
    signature: Signature,
}

impl PartialEq for RelationName {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for RelationName {}
impl std::hash::Hash for RelationName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        REGCLASS_NAME.hash(state);
    }
}

impl ScalarUDFImpl for RelationName {
    fn name(&self) -> &str {
        REGCLASS_NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let mut args = args.args.into_iter();
        let (Some(oids), path) = (args.next(), args.next()) else {
            return Err(DataFusionError::Plan(format!(
                "{REGCLASS_NAME} needs an OID"
            )));
        };
        let oids = cast(&oids.into_array(rows)?, &DataType::Int64)?;
        let oids = oids.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let path = match path {
            Some(ColumnarValue::Scalar(v)) => v.cast_to(&DataType::Utf8)?.to_string(),
            _ => String::new(),
        };
        let placed = self.placed.read().expect("not poisoned");
        let shown = self.shown.read().expect("not poisoned");
        let seen = Visibility::new(&placed, &path);
        let out: StringArray = oids
            .iter()
            .map(|oid| {
                let oid = oid?;
                match (path.is_empty(), placed.get(&oid), seen.of(oid)) {
                    (false, Some((_, name)), Some(true)) => Some(quote(name)),
                    (false, Some((schema, name)), _) => {
                        Some(format!("{}.{}", quote(schema), quote(name)))
                    }
                    // PostgreSQL's fixed OID of a catalog shows its name
                    // (`1259::regclass` is pg_class); an OID no relation
                    // has shows as the number.
                    _ => shown
                        .get(&oid)
                        .cloned()
                        .or_else(|| fixed_catalog_name(oid).map(str::to_string))
                        .or_else(|| Some(oid.to_string())),
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `pg_table_is_visible(oid)`: whether the relation is found by its bare
/// name, that is its schema is on the search path (`pg_catalog` first when
/// the path does not name it) and no schema before it there has a relation
/// of that name. The session's search path comes as a second argument the
/// statement is given when it is planned; without it (or before this
/// session built `pg_class`) every relation counts as visible. NULL for an
/// OID that is no relation.
#[derive(Debug)]
struct Visible {
    name: &'static str,
    placed: Placed,
    signature: Signature,
}

same_by_name!(Visible);

impl ScalarUDFImpl for Visible {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let mut args = args.args.into_iter();
        let (Some(oids), path) = (args.next(), args.next()) else {
            return Err(DataFusionError::Plan(
                "pg_table_is_visible needs an OID".into(),
            ));
        };
        let oids = oids.into_array(rows)?;
        let oids = cast(&oids, &DataType::Int64)?;
        let oids = oids.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let path = match path {
            Some(ColumnarValue::Scalar(v)) => v.cast_to(&DataType::Utf8)?.to_string(),
            _ => String::new(),
        };
        let placed = self.placed.read().expect("not poisoned");
        if path.is_empty() || placed.is_empty() {
            return Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(vec![
                true;
                rows
            ]))));
        }
        let seen = Visibility::new(&placed, &path);
        let visible: BooleanArray = oids.iter().map(|oid| seen.of(oid?)).collect();
        Ok(ColumnarValue::Array(Arc::new(visible)))
    }
}

impl ScalarUDFImpl for GetDef {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(first) = args.args.first() else {
            return Err(DataFusionError::Plan(format!("{} needs an OID", self.name)));
        };
        let oids = first.to_array(args.number_rows)?;
        let oids = cast(&oids, &DataType::Int32)?;
        let oids = oids.as_primitive::<Int32Type>();
        // The second argument of pg_get_constraintdef: pretty.
        let flags = match (&self.pretty, args.args.get(1)) {
            (Some(_), Some(a)) => Some(cast(&a.to_array(args.number_rows)?, &DataType::Boolean)?),
            _ => None,
        };
        let flags = flags.as_ref().map(|f| f.as_boolean());
        // The second argument of pg_get_indexdef: a column number.
        let numbers = match (&self.columns, args.args.get(1)) {
            (Some(_), Some(a)) => Some(cast(&a.to_array(args.number_rows)?, &DataType::Int32)?),
            _ => None,
        };
        let numbers = numbers.as_ref().map(|n| n.as_primitive::<Int32Type>());
        let columns = self
            .columns
            .as_ref()
            .map(|c| c.read().expect("not poisoned"));
        let defs = self.defs.read().expect("not poisoned");
        let pretty = self
            .pretty
            .as_ref()
            .map(|p| p.read().expect("not poisoned"));
        let out: StringArray = (0..oids.len())
            .map(|i| {
                if oids.is_null(i) {
                    return None;
                }
                let oid = oids.value(i) as i64;
                if let Some(n) = numbers.filter(|n| n.is_valid(i) && n.value(i) > 0) {
                    let at = n.value(i) as usize - 1;
                    return columns.as_ref()?.get(&oid)?.get(at).cloned();
                }
                let wants_pretty = flags.is_some_and(|f| f.is_valid(i) && f.value(i));
                pretty
                    .as_ref()
                    .filter(|_| wants_pretty)
                    .and_then(|p| p.get(&oid).cloned())
                    .or_else(|| defs.get(&oid).cloned())
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `pg_partition_ancestors(rel)`: the relation itself, as no table here
/// is a partition of another (psql asks when it lists references).
#[derive(Debug)]
struct PartitionAncestors;

impl datafusion::catalog::TableFunctionImpl for PartitionAncestors {
    fn call_with_args(
        &self,
        args: datafusion::catalog::TableFunctionArgs,
    ) -> Result<Arc<dyn TableProvider>> {
        let oid = match args.exprs().first() {
            Some(Expr::Literal(v, _)) => v.cast_to(&DataType::Int32).ok().and_then(|v| match v {
                datafusion::common::ScalarValue::Int32(Some(o)) => Some(o),
                _ => None,
            }),
            _ => None,
        };
        let Some(oid) = oid else {
            return Err(DataFusionError::Plan(
                "pg_partition_ancestors takes a constant relation OID".into(),
            ));
        };
        let schema = Arc::new(Schema::new(vec![Field::new(
            "relid",
            DataType::Int32,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(datafusion::arrow::array::Int32Array::from(vec![
                oid,
            ]))],
        )?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// What `information_schema._pg_expandarray(a)` becomes (unnested, see
/// `frontend::compat::expand_array`): each list of `a` as a list of
/// `(x, n)` records, the element and its 1-based position, which pgjdbc's
/// `getPrimaryKeys` reads as `(_pg_expandarray(i.indkey)).n`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

pub const EXPAND_ARRAY: &str = "sluice_expandarray";

impl ExpandArray {
    fn record(element: &DataType) -> DataType {
        DataType::Struct(
            vec![
                Field::new("x", element.clone(), true),
                Field::new("n", DataType::Int32, false),
            ]
            .into(),
        )
    }
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        EXPAND_ARRAY
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)) => {
                Ok(DataType::List(Arc::new(Field::new(
                    "item",
                    Self::record(f.data_type()),
                    true,
                ))))
            }
            Some(DataType::Null) => Ok(DataType::List(Arc::new(Field::new(
                "item",
                Self::record(&DataType::Null),
                true,
            )))),
            other => Err(DataFusionError::Plan(format!(
                "function _pg_expandarray(anyarray) does not accept {}",
                other.map(|t| t.to_string()).unwrap_or_default()
            ))),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Int32Array, ListArray, StructArray};
        use datafusion::arrow::buffer::OffsetBuffer;
        let Some(first) = args.args.first() else {
            return Err(DataFusionError::Plan(
                "_pg_expandarray needs an array".into(),
            ));
        };
        let input = first.to_array(args.number_rows)?;
        let DataType::List(out_field) = args.return_field.data_type().clone() else {
            return Err(DataFusionError::Internal("_pg_expandarray's type".into()));
        };
        let DataType::Struct(record) = out_field.data_type().clone() else {
            return Err(DataFusionError::Internal("_pg_expandarray's record".into()));
        };
        let element = record[0].data_type().clone();
        let input = cast(
            &input,
            &DataType::List(Arc::new(Field::new("item", element, true))),
        )?;
        let list = input.as_list::<i32>();
        let offsets = list.offsets();
        let start = offsets[0] as usize;
        let end = offsets[offsets.len() - 1] as usize;
        let values = list.values().slice(start, end - start);
        let mut positions = Vec::with_capacity(end - start);
        for w in offsets.windows(2) {
            positions.extend(1..=(w[1] - w[0]));
        }
        let records = StructArray::try_new(
            record,
            vec![values, Arc::new(Int32Array::from(positions)) as ArrayRef],
            None,
        )?;
        let rebased = OffsetBuffer::new(
            offsets
                .iter()
                .map(|o| o - start as i32)
                .collect::<Vec<_>>()
                .into(),
        );
        Ok(ColumnarValue::Array(Arc::new(ListArray::try_new(
            out_field,
            rebased,
            Arc::new(records),
            list.nulls().cloned(),
        )?)))
    }
}

/// `obj_description(oid [, catalog])` and `col_description(table, column)`:
/// a description from `pg_description`'s rows for the catalog's objects
/// (as the last scan of a derived catalog table found them), NULL for an
/// object without one.
#[derive(Debug)]
struct Describe {
    name: &'static str,
    comments: Described,
    signature: Signature,
}

same_by_name!(Describe);

impl ScalarUDFImpl for Describe {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let oids = oid_argument(self.name, &args)?;
        let second = match args.args.get(1) {
            Some(a) => Some(a.to_array(n)?),
            None => None,
        };
        let comments = self.comments.read().expect("not poisoned");
        let out: StringArray = if self.name == "col_description" {
            let columns = match &second {
                Some(c) => cast(c, &DataType::Int64)?,
                None => {
                    return Err(DataFusionError::Plan(
                        "col_description needs a column".into(),
                    ));
                }
            };
            let columns = columns.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            (0..n)
                .map(|i| {
                    if oids.is_null(i) || columns.is_null(i) {
                        return None;
                    }
                    comments
                        .get(&(oids.value(i), "pg_class", columns.value(i)))
                        .cloned()
                })
                .collect()
        } else {
            let catalogs = match &second {
                Some(c) => Some(cast(c, &DataType::Utf8)?),
                None => None,
            };
            let catalogs = catalogs.as_ref().map(|c| c.as_string::<i32>());
            (0..n)
                .map(|i| {
                    if oids.is_null(i) {
                        return None;
                    }
                    let oid = oids.value(i);
                    match catalogs {
                        Some(c) if c.is_null(i) => None,
                        Some(c) => {
                            let name = c.value(i);
                            let name = name.strip_prefix("pg_catalog.").unwrap_or(name);
                            ["pg_class", "pg_namespace"]
                                .into_iter()
                                .find(|k| *k == name)
                                .and_then(|k| comments.get(&(oid, k, 0)).cloned())
                                .or_else(|| {
                                    // PostgreSQL's own functions, types,
                                    // operators, ... (psql's `\df+`, `\dT`).
                                    let class = PG_CATALOG_OIDS.iter().find(|(_, n)| *n == name)?.0;
                                    super::pg_proc::builtin_description(oid, class)
                                })
                        }
                        None => comments
                            .get(&(oid, "pg_class", 0))
                            .or_else(|| comments.get(&(oid, "pg_namespace", 0)))
                            .cloned(),
                    }
                })
                .collect()
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// The first argument of the function `name`, a column of OIDs.
fn oid_argument(name: &str, args: &ScalarFunctionArgs) -> Result<Int64Array> {
    let Some(first) = args.args.first() else {
        return Err(DataFusionError::Plan(format!("{name} needs an OID")));
    };
    let oids = cast(&first.to_array(args.number_rows)?, &DataType::Int64)?;
    Ok(oids
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .clone())
}

/// `pg_table_size(oid)`, `pg_relation_size` and `pg_total_relation_size`:
/// the bytes of the data files of a table's (or materialized view's)
/// current Delta version — what psql's `\dt+` shows as its size. A view,
/// an external table or a key's index stores nothing here (0, as
/// PostgreSQL shows a view),
/// a sequence one page (8192, as PostgreSQL's); NULL for an OID that is
/// no relation.
#[derive(Debug)]
struct RelationSize {
    name: &'static str,
    catalog: Arc<Catalog>,
    /// The keys shown as indexes (by the pg_class scan of the query).
    indexes: Definitions,
    signature: Signature,
}

same_by_name!(RelationSize);

/// The size of a sequence: PostgreSQL's one page.
const SEQUENCE_SIZE: i64 = 8192;

impl RelationSize {
    fn size_of(&self, object: &super::Object) -> Result<Option<i64>> {
        let location = match &object.def {
            Def::Table(t) => &t.location,
            Def::MaterializedView(m) => &m.table.location,
            Def::View(_) | Def::External(_) => return Ok(Some(0)),
            Def::Sequence(_) => return Ok(Some(SEQUENCE_SIZE)),
            Def::Schema | Def::FeatureService(_) => return Ok(None),
        };
        let lake = self.catalog.lake();
        let url = lake.url_for(location)?;
        // A table that cannot be read has no size to show (NULL), as
        // psql's listings show it, rather than failing the whole listing;
        // a cancel or statement_timeout still ends the statement.
        let table = match crate::interrupt::block_on(lake.table(&url)) {
            Ok(t) => t,
            Err(e) if e.kind == crate::error::ErrorKind::QueryCanceled => return Err(e.into()),
            Err(_) => return Ok(None),
        };
        let Ok(state) = table.snapshot() else {
            return Ok(Some(0));
        };
        Ok(state
            .snapshot()
            .try_log_data()
            .ok()
            .map(|files| files.iter().map(|f| f.size()).sum()))
    }
}

impl ScalarUDFImpl for RelationSize {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let oids = oid_argument(self.name, &args)?;
        let snapshot = self.catalog.snapshot();
        // OID to object, for the relations and then the sequences.
        let mut by_oid: HashMap<i64, &super::Object> = snapshot
            .objects()
            .iter()
            .filter_map(|o| Some((snapshot.relation_oid(&o.schema, &o.name)?, o)))
            .collect();
        by_oid.extend(
            numbered_sequences(&snapshot)
                .into_iter()
                .map(|(oid, o, _)| (oid, o)),
        );
        // Each relation once, however many rows name it.
        let mut sizes: HashMap<i64, Option<i64>> = HashMap::new();
        let mut out = datafusion::arrow::array::Int64Builder::with_capacity(oids.len());
        for oid in oids.iter() {
            let size = match oid {
                Some(oid) => match sizes.get(&oid) {
                    Some(size) => *size,
                    None => {
                        let size = match by_oid.get(&oid) {
                            Some(o) => self.size_of(o)?,
                            // A key shown as an index stores nothing of
                            // its own: Delta keeps no index (psql's `\di+`).
                            None if self
                                .indexes
                                .read()
                                .expect("not poisoned")
                                .contains_key(&oid) =>
                            {
                                Some(0)
                            }
                            None => None,
                        };
                        sizes.insert(oid, size);
                        size
                    }
                },
                None => None,
            };
            out.append_option(size);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
