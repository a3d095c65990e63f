//! `pg_catalog` and PostgreSQL's functions in a client session, as
//! `datafusion_pg_catalog::setup_pg_catalog` installs them, with two
//! differences that matter for a server with many connections:
//!
//! - the static tables (`pg_type`, `pg_proc`, `pg_am`, ...) are decoded
//!   once per process and shared, not once per connection (several MiB
//!   and milliseconds each time);
//! - the `pg_catalog` schema reaches the session's catalogs through a weak
//!   reference. It is itself registered in those catalogs, so a strong one
//!   made a cycle that kept every closed connection's catalogs alive.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::CatalogProviderList;
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::{
    self as pg, PgCatalogSchemaProvider, PgCatalogStaticTables,
};

type DfResult<T> = std::result::Result<T, DataFusionError>;

/// The session's catalogs, held weakly (see the module documentation).
#[derive(Clone)]
struct Catalogs(Weak<dyn CatalogProviderList>);

impl std::fmt::Debug for Catalogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalogs")
    }
}

impl Catalogs {
    fn get(&self) -> DfResult<Arc<dyn CatalogProviderList>> {
        self.0
            .upgrade()
            .ok_or_else(|| DataFusionError::Execution("the session has ended".into()))
    }
}

#[async_trait]
impl CatalogInfo for Catalogs {
    async fn catalog_names(&self) -> DfResult<Vec<String>> {
        CatalogInfo::catalog_names(&self.get()?).await
    }

    async fn schema_names(&self, catalog: &str) -> DfResult<Option<Vec<String>>> {
        CatalogInfo::schema_names(&self.get()?, catalog).await
    }

    async fn table_names(&self, catalog: &str, schema: &str) -> DfResult<Option<Vec<String>>> {
        CatalogInfo::table_names(&self.get()?, catalog, schema).await
    }

    async fn table_schema(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> DfResult<Option<SchemaRef>> {
        CatalogInfo::table_schema(&self.get()?, catalog, schema, table).await
    }

    async fn table_type(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> DfResult<Option<TableType>> {
        CatalogInfo::table_type(&self.get()?, catalog, schema, table).await
    }
}

/// The static tables, decoded on first use.
pub(crate) fn static_tables() -> DfResult<Arc<PgCatalogStaticTables>> {
    static TABLES: OnceLock<std::result::Result<Arc<PgCatalogStaticTables>, String>> =
        OnceLock::new();
    TABLES
        .get_or_init(|| {
            PgCatalogStaticTables::try_new()
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(DataFusionError::Internal)
}

/// Install `pg_catalog` (in catalog `database`) and PostgreSQL's catalog
/// functions in `ctx`.
pub fn install(ctx: &SessionContext, database: &str) -> DfResult<()> {
    let statics = static_tables()?;
    let catalogs = Catalogs(Arc::downgrade(&ctx.state().catalog_list().clone()));
    let schema = PgCatalogSchemaProvider::try_new(catalogs, statics.clone(), EmptyContextProvider)?;
    ctx.catalog(database)
        .ok_or_else(|| DataFusionError::Configuration(format!("no catalog {database}")))?
        .register_schema("pg_catalog", Arc::new(schema))?;

    ctx.register_udf(pg::create_current_database_udf(database));
    ctx.register_udf(pg::create_current_schema_udf());
    ctx.register_udf(pg::create_current_schemas_udf());
    ctx.register_udf(pg::create_pg_get_userbyid_udf());
    for name in [
        "has_table_privilege",
        "has_schema_privilege",
        "has_database_privilege",
        "has_any_column_privilege",
    ] {
        ctx.register_udf(pg::has_privilege_udf::create_has_privilege_udf(name));
    }
    ctx.register_udf(pg::create_pg_table_is_visible());
    // format_type, the function printers and the regproc conversions by
    // PostgreSQL's rules over the static pg_proc and pg_type.
    for udf in super::pg_proc::udfs() {
        ctx.register_udf(udf);
    }
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
        RegtypeName {
            signature: datafusion::logical_expr::Signature::any(
                1,
                datafusion::logical_expr::Volatility::Stable,
            ),
        },
    ));
    ctx.register_udf(pg::create_session_user_udf());
    ctx.register_udtf("pg_get_keywords", statics.pg_get_keywords.clone());
    ctx.register_udf(pg::pg_get_expr_udf::create_pg_get_expr_udf());
    ctx.register_udf(pg::create_pg_get_partkeydef_udf());
    ctx.register_udf(pg::create_pg_relation_is_publishable_udf());
    ctx.register_udf(pg::create_pg_get_statisticsobjdef_columns_udf());
    ctx.register_udf(pg::create_pg_encoding_to_char_udf());
    ctx.register_udf(pg::create_pg_relation_size_udf());
    ctx.register_udf(pg::create_pg_total_relation_size_udf());
    ctx.register_udf(pg::create_pg_stat_get_numscans());
    ctx.register_udf(pg::create_pg_get_constraintdef());
    ctx.register_udf(pg::create_pg_get_partition_ancestors_udf());
    ctx.register_udf(pg::quote_ident_udf::create_quote_ident_udf());
    ctx.register_udf(pg::quote_ident_udf::create_parse_ident_udf());
    ctx.register_udf(pg::array_bounds_udf::create_array_upper_udf());
    ctx.register_udf(pg::array_bounds_udf::create_array_lower_udf());

    // `regclass`, `regtype`, ... parse as type names.
    let state = ctx.state_ref();
    let existing = state.read().clone();
    *state.write() = SessionStateBuilder::new_from_existing(existing)
        .with_type_planner(Arc::new(pg::oid_type_planner::PgOidTypePlanner))
        .build();
    // generate_series / range accept int4 bounds.
    pg::generate_series_arg_coercion::CoerceIntArgsToBigInt::widen(ctx);
    Ok(())
}

/// A type OID shown as a `regtype` shows (a select item `x::regtype`):
/// `format_type(x, NULL)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RegtypeName {
    signature: datafusion::logical_expr::Signature,
}

impl datafusion::logical_expr::ScalarUDFImpl for RegtypeName {
    fn name(&self) -> &str {
        crate::catalog::pg_constraints::REGTYPE_NAME
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(
        &self,
        _: &[datafusion::arrow::datatypes::DataType],
    ) -> DfResult<datafusion::arrow::datatypes::DataType> {
        Ok(datafusion::arrow::datatypes::DataType::Utf8)
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<datafusion::logical_expr::ColumnarValue> {
        use datafusion::logical_expr::ColumnarValue;
        let oids = args.args[0].cast_to(&datafusion::arrow::datatypes::DataType::Int64, None)?;
        let typmod = ColumnarValue::Scalar(datafusion::common::ScalarValue::Int64(None));
        let format = super::pg_proc::format_type_udf();
        format.invoke_with_args(datafusion::logical_expr::ScalarFunctionArgs {
            args: vec![oids, typmod],
            ..args
        })
    }
}
