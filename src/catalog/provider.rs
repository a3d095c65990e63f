//! DataFusion's view of the catalog.
//!
//! Each statement resolves table names through these providers, which open
//! the newest Delta snapshot of the table at that moment, so a commit by any
//! connection or process is visible to the next statement.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::prelude::SessionContext;

use super::{Catalog, Def, TableDef};
use crate::error::{Error, ErrorKind};
use crate::lake::TimeTravel;

/// Makes a context for planning view bodies, with `schema` as the default.
pub type ContextFactory = Arc<dyn Fn(&str) -> SessionContext + Send + Sync>;

/// Opens the files of an external table (the engine knows its readers).
pub type ExternalOpener = Arc<
    dyn Fn(
            &super::ExternalDef,
            &datafusion::execution::SessionState,
        ) -> crate::error::Result<Arc<dyn TableProvider>>
        + Send
        + Sync,
>;

/// Prepares a view's stored query for planning as the engine prepares a
/// query (result columns of one name made distinct).
pub type ViewPreparer = fn(&mut datafusion::sql::sqlparser::ast::Statement);

/// Schema under which time-travel references are resolved; the frontend
/// rewrites `t VERSION AS OF 3` to `"__time_travel"."public.t@v3"`.
pub const TIME_TRAVEL_SCHEMA: &str = "__time_travel";

#[derive(Clone)]
pub struct SluiceCatalogProvider {
    catalog: Arc<Catalog>,
    factory: ContextFactory,
    external: ExternalOpener,
    prepare: ViewPreparer,
    extra: Arc<RwLock<HashMap<String, Arc<dyn SchemaProvider>>>>,
}

impl std::fmt::Debug for SluiceCatalogProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SluiceCatalogProvider").finish()
    }
}

impl SluiceCatalogProvider {
    pub fn new(
        catalog: Arc<Catalog>,
        factory: ContextFactory,
        external: ExternalOpener,
        prepare: ViewPreparer,
    ) -> Self {
        SluiceCatalogProvider {
            external,
            prepare,
            catalog,
            factory,
            extra: Arc::new(RwLock::new(HashMap::new())),
        }
    }
}

impl CatalogProvider for SluiceCatalogProvider {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.catalog.snapshot().schemas();
        names.extend(self.extra.read().unwrap().keys().cloned());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(s) = self.extra.read().unwrap().get(name) {
            return Some(s.clone());
        }
        if name == TIME_TRAVEL_SCHEMA {
            return Some(Arc::new(TimeTravelSchema {
                catalog: self.catalog.clone(),
            }));
        }
        if name == super::SLUICE_SCHEMA {
            return Some(Arc::new(SystemTables {
                catalog: self.catalog.clone(),
            }));
        }
        if self.catalog.snapshot().schema_exists(name) {
            return Some(Arc::new(SluiceSchemaProvider {
                catalog: self.catalog.clone(),
                schema: name.to_string(),
                factory: self.factory.clone(),
                external: self.external.clone(),
                prepare: self.prepare,
            }));
        }
        None
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        Ok(self.extra.write().unwrap().insert(name.to_string(), schema))
    }
}

#[derive(Clone)]
pub struct SluiceSchemaProvider {
    catalog: Arc<Catalog>,
    schema: String,
    factory: ContextFactory,
    external: ExternalOpener,
    prepare: ViewPreparer,
}

impl std::fmt::Debug for SluiceSchemaProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SluiceSchemaProvider")
            .field("schema", &self.schema)
            .finish()
    }
}

fn ext(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The plan of a view's stored query, prepared by `prepare` when it parses
/// as one statement.
pub async fn plan_view(
    state: &datafusion::execution::SessionState,
    sql: &str,
    prepare: ViewPreparer,
) -> DfResult<datafusion::logical_expr::LogicalPlan> {
    use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
    match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(mut stmts) if stmts.len() == 1 => {
            let mut stmt = stmts.remove(0);
            prepare(&mut stmt);
            state
                .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
                    stmt,
                )))
                .await
        }
        _ => state.create_logical_plan(sql).await,
    }
}

/// Open the newest snapshot of a catalog table as a DataFusion provider.
pub async fn open_table(
    catalog: &Catalog,
    def: &TableDef,
) -> crate::error::Result<Arc<dyn TableProvider>> {
    let lake = catalog.lake();
    let url = lake.url_for(&def.location)?;
    let table = lake.table(&url).await?;
    crate::lake::keyed_provider(&table, def.key_columns()).await
}

impl SchemaProvider for SluiceSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        self.catalog
            .snapshot()
            .relations_in(&self.schema)
            .map(|e| e.name.clone())
            .collect()
    }
    crate::send_sync::schema_table_by!(Self::table_boxed);

    fn table_exist(&self, name: &str) -> bool {
        self.catalog
            .snapshot()
            .relation(&self.schema, name)
            .is_some()
    }
}

impl SluiceSchemaProvider {
    /// `SchemaProvider::table` (see `crate::send_sync::schema_table_by`).
    fn table_boxed<'a>(
        &'a self,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, DfResult<Option<Arc<dyn TableProvider>>>> {
        Box::pin(async move {
            let snap = self.catalog.snapshot();
            let Some(entry) = snap.relation(&self.schema, name) else {
                return Ok(None);
            };
            let sql = match &entry.def {
                Def::Table(def) => {
                    return Ok(Some(open_table(&self.catalog, def).await.map_err(ext)?));
                }
                // Read through the binder, which knows where it stands.
                Def::Schema | Def::FeatureService(_) | Def::Sequence(_) => return Ok(None),
                Def::View(v) => v.clone(),
                Def::External(e) => {
                    let state = (self.factory)(&self.schema).state();
                    return Ok(Some((self.external)(e, &state).map_err(ext)?));
                }
                Def::MaterializedView(m) => {
                    return Ok(Some(
                        open_table(&self.catalog, &m.table).await.map_err(ext)?,
                    ));
                }
            };
            {
                {
                    let ctx = (self.factory)(&self.schema);
                    let plan = plan_view(&ctx.state(), &sql.sql, self.prepare)
                        .await
                        .and_then(|plan| view_columns(plan, &sql))
                        .map_err(|e| {
                            ext(Error::new(
                                ErrorKind::DependentObjects,
                                format!(
                                    "view \"{}.{}\" cannot be read: {}",
                                    self.schema,
                                    name,
                                    Error::from(e)
                                ),
                            ))
                        })?;
                    Ok(Some(Arc::new(ViewTable::new(plan, Some(sql.sql.clone())))))
                }
            }
        })
    }
}

/// A view's query as planned now, with the columns it had when created,
/// as PostgreSQL keeps them: a `*` in it does not take in a column added
/// to its table later. Unchanged when it has no more columns than those,
/// or when one of them is not there exactly once.
pub(crate) fn view_columns(
    plan: datafusion::logical_expr::LogicalPlan,
    view: &super::ViewDef,
) -> DfResult<datafusion::logical_expr::LogicalPlan> {
    use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
    let schema = plan.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if view.columns.is_empty() || names.len() <= view.columns.len() {
        return Ok(plan);
    }
    let mut kept = Vec::with_capacity(view.columns.len());
    for c in &view.columns {
        let mut at = names.iter().enumerate().filter(|(_, n)| **n == c.name);
        match (at.next(), at.next()) {
            (Some((i, _)), None) => {
                kept.push(Expr::Column(datafusion::common::Column::from(
                    schema.qualified_field(i),
                )));
            }
            _ => return Ok(plan),
        }
    }
    LogicalPlanBuilder::from(plan).project(kept)?.build()
}

/// The `sluice` schema: Sluice's own records, kept as Delta tables under
/// `<lake>/_sluice/`.
#[derive(Debug)]
struct SystemTables {
    catalog: Arc<Catalog>,
}

#[async_trait]
impl SchemaProvider for SystemTables {
    fn table_names(&self) -> Vec<String> {
        super::system::SYSTEM_TABLES
            .iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(system) = super::system::find(name) else {
            return Ok(None);
        };
        if let Some(rows) = system.of_catalog {
            let batch = rows(&self.catalog).await.map_err(ext)?;
            let rows =
                datafusion::catalog::MemTable::try_new((system.schema)(), vec![vec![batch]])?;
            return Ok(Some(Arc::new(rows)));
        }
        if let Some(live) = system.live {
            let rows =
                datafusion::catalog::MemTable::try_new((system.schema)(), vec![vec![live()]])?;
            return Ok(Some(Arc::new(rows)));
        }
        let lake = self.catalog.lake();
        let url = lake.url_for(system.location).map_err(ext)?;
        if lake.exists(&url).await.map_err(ext)? {
            let table = lake.table(&url).await.map_err(ext)?;
            return Ok(Some(crate::lake::provider(&table).await.map_err(ext)?));
        }
        // No write has recorded anything yet.
        let empty = datafusion::catalog::MemTable::try_new((system.schema)(), vec![vec![]])?;
        Ok(Some(Arc::new(empty)))
    }

    fn table_exist(&self, name: &str) -> bool {
        super::system::find(name).is_some()
    }
}

/// Resolves `schema.table@v<version>` and `schema.table@t<timestamp>`.
#[derive(Debug)]
struct TimeTravelSchema {
    catalog: Arc<Catalog>,
}

/// Encode a time-travel reference as a table name in [`TIME_TRAVEL_SCHEMA`].
pub fn time_travel_name(schema: &str, table: &str, at: &TimeTravel) -> String {
    match at {
        TimeTravel::Version(v) => format!("{schema}.{table}@v{v}"),
        TimeTravel::Timestamp(t) => format!("{schema}.{table}@t{t}"),
    }
}

fn parse_time_travel_name(name: &str) -> Option<(String, String, TimeTravel)> {
    let (rel, spec) = name.split_once('@')?;
    let (schema, table) = rel.split_once('.')?;
    let at = if let Some(v) = spec.strip_prefix('v') {
        TimeTravel::Version(v.parse().ok()?)
    } else {
        TimeTravel::Timestamp(spec.strip_prefix('t')?.to_string())
    };
    Some((schema.to_string(), table.to_string(), at))
}

#[async_trait]
impl SchemaProvider for TimeTravelSchema {
    fn table_names(&self) -> Vec<String> {
        vec![]
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some((schema, table, at)) = parse_time_travel_name(name) else {
            return Ok(None);
        };
        let snap = self.catalog.snapshot();
        let def = match snap.relation(&schema, &table) {
            Some(e) if e.stored().is_some() => e.stored().expect("checked").clone(),
            Some(_) => {
                return Err(ext(Error::new(
                    ErrorKind::WrongObjectType,
                    format!("\"{schema}.{table}\" is not a table; only tables have versions"),
                )));
            }
            None => {
                return Err(ext(Error::new(
                    ErrorKind::UndefinedTable,
                    format!("relation \"{schema}.{table}\" does not exist"),
                )));
            }
        };
        let lake = self.catalog.lake();
        let url = lake.url_for(&def.location).map_err(ext)?;
        // DML pins the version it just opened: usually the newest, which the
        // cache already holds, so no log replay is needed.
        let latest = lake.table(&url).await.map_err(ext)?;
        let delta = match at {
            TimeTravel::Version(v) if latest.version() == Some(v as u64) => latest,
            _ => lake.table_at(&url, &at).await.map_err(ext)?,
        };
        // The keys only choose how a scan decodes, never what it returns,
        // so today's keys serve an older version too.
        Ok(Some(
            crate::lake::keyed_provider(&delta, def.key_columns())
                .await
                .map_err(ext)?,
        ))
    }

    fn table_exist(&self, name: &str) -> bool {
        parse_time_travel_name(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_travel_names_round_trip() {
        let at = TimeTravel::Version(12);
        let n = time_travel_name("raw", "t", &at);
        assert_eq!(
            parse_time_travel_name(&n),
            Some(("raw".into(), "t".into(), at))
        );
        let at = TimeTravel::Timestamp("2026-11-01 00:00:00".into());
        let n = time_travel_name("raw", "t", &at);
        assert_eq!(
            parse_time_travel_name(&n),
            Some(("raw".into(), "t".into(), at))
        );
    }
}
