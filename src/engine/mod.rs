//! The engine: one [`Session`] per connection routes each statement either to
//! DataFusion (queries, EXPLAIN) or to Sluice's own executors (DDL, DML,
//! lakehouse maintenance), and keeps per-session settings and transaction
//! state.
//!
//! ```text
//!  Stmt ──▶ Session::execute ──┬─▶ DataFusion plan ──▶ record batch stream
//!                              ├─▶ ddl::*   (catalog + Delta create/drop)
//!                              ├─▶ dml::*, upsert::*, copy::* ──▶ crate::write (the one write path)
//!                              └─▶ lakehouse::* (history, optimize, vacuum, restore)
//! ```

pub mod access;
pub mod activity;
mod added_order;
mod alter_columns;
mod bind;
mod char_semantics;
pub mod copy;
mod correlated_names;
mod cursors;
pub mod ddl;
pub mod dml;
mod empty_subqueries;
pub mod events;
mod generated_columns;
mod global_aggregates;
mod global_having;
mod handlers;
mod indexes;
mod json_sets;
mod key_read;
pub mod lakehouse;
mod late_filter;
mod lateral_top;
pub mod matview;
pub mod names;
mod null_conditions;
mod order_repair;
mod outer_constants;
pub mod params;
mod planner;
pub mod prepared;
mod range_window;
mod repeated_orderings;
pub mod result_types;
mod safe_pushdown;
pub mod sequences;
mod set_comparison_names;
mod set_ops;
pub mod settings;
mod srf_sort;
mod subplan;
mod subquery;
mod top_k_keys;
pub mod upsert;
mod using_joins;
mod whole_rows;
#[cfg(test)]
mod write_tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{ObjectName, Statement, TableFactor};
use futures::StreamExt;
use std::ops::ControlFlow;

use crate::catalog::info_schema::InformationSchema;
use crate::catalog::provider::{ContextFactory, SluiceCatalogProvider};
use crate::catalog::{self, Catalog, DATABASE, Kind, Object, TableDef};
use crate::error::{Error, ErrorKind, Result};
pub use crate::frontend::names::{display_name, last_ident, normalize_ident};
use crate::frontend::{self, Stmt};
use crate::lake::Lake;
pub use settings::Settings;

use crate::ingest::files::{FileKind, ReadFiles};

/// Shared by every session of a server (or one `sluice sql` run).
pub struct Engine {
    lake: Arc<Lake>,
    /// Sluice's table functions (named arguments), by name.
    table_functions: Arc<planner::TableFunctions>,
    catalog: Arc<Catalog>,
    runtime: Arc<RuntimeEnv>,
    /// DataFusion options every session starts from.
    options: Arc<SessionConfig>,
    /// The latest rows of online feature views.
    online: Arc<crate::features::online::OnlineStore>,
    /// LISTEN / NOTIFY on this server.
    notifier: events::Notifier,
    /// Runs `sluice.refresh(...)`; set once by the scheduler.
    orchestrator: std::sync::OnceLock<Arc<dyn events::Orchestrator>>,
    /// The connections of this server (`pg_stat_activity`).
    activity: Arc<activity::Activity>,
    /// The sequence values this server reserved.
    sequences: Arc<crate::write::sequences::Sequences>,
}

crate::send_sync::send_sync_by_fields!(Engine {
    lake,
    table_functions,
    catalog,
    runtime,
    options,
    online,
    notifier,
    orchestrator,
    activity,
    sequences
});

impl Engine {
    pub async fn open(lake_spec: &str) -> Result<Arc<Engine>> {
        Engine::open_with(lake_spec, HashMap::new()).await
    }

    /// Open with the lake's storage options and the HTTP settings of the
    /// config file (see [`crate::config`]).
    pub async fn open_configured(
        lake_spec: &str,
        config: &crate::config::Config,
    ) -> Result<Arc<Engine>> {
        Engine::open_inner(lake_spec, config.lake_options(lake_spec), config).await
    }

    /// Open with storage options for the lake (see [`crate::config`]).
    pub async fn open_with(
        lake_spec: &str,
        storage_options: HashMap<String, String>,
    ) -> Result<Arc<Engine>> {
        Engine::open_inner(lake_spec, storage_options, &Default::default()).await
    }

    async fn open_inner(
        lake_spec: &str,
        storage_options: HashMap<String, String>,
        config: &crate::config::Config,
    ) -> Result<Arc<Engine>> {
        // Named connections are checked now, so a typo stops the start
        // rather than a query; the parser's messages never quote them.
        for (name, url) in config.postgres.iter() {
            crate::ingest::pg_tls::Target::parse(url).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidParameter,
                    format!("config file: [postgres.\"{name}\"] url: {}", e.message),
                )
            })?;
        }
        let lake = Lake::open_with(lake_spec, storage_options)?;
        let roots = crate::ingest::roots::Roots::new(config.roots.as_deref(), lake.root())?;
        let http = crate::ingest::http::HttpClient::new(config.http.clone(), roots)?;
        let catalog = Catalog::open(lake.clone()).await?;
        // Files in the lake change under us (read_csv over a landing
        // folder): list them afresh on every statement.
        let caches = datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
            .with_list_files_cache_limit(0);
        let mut runtime =
            datafusion::execution::runtime_env::RuntimeEnvBuilder::new().with_cache_manager(caches);
        if let Some(bytes) = memory_limit()? {
            use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
            runtime = runtime.with_memory_pool(Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(bytes),
                std::num::NonZeroUsize::new(3).expect("nonzero"),
            )));
        }
        let runtime = runtime.build_arc()?;
        // Table functions find the HTTP client (its settings and header
        // sets) and the named PostgreSQL connections in the session
        // configuration.
        let options = Arc::new(
            engine_options()?
                .with_extension(Arc::new(http))
                .with_extension(Arc::new(config.postgres.clone())),
        );
        let table_functions = Arc::new(
            crate::ingest::table_functions(&lake)
                .into_iter()
                .map(|(n, f)| (n.to_string(), f))
                .collect(),
        );
        Ok(Arc::new(Engine {
            table_functions,
            online: Arc::new(crate::features::online::OnlineStore::new(lake.clone())),
            sequences: crate::write::sequences::Sequences::new(lake.clone()),
            lake,
            catalog,
            runtime,
            options,
            notifier: Default::default(),
            orchestrator: Default::default(),
            activity: Default::default(),
        }))
    }

    /// The sequence values this server reserved.
    pub fn sequences(&self) -> &Arc<crate::write::sequences::Sequences> {
        &self.sequences
    }

    /// The online store of this server.
    pub fn online(&self) -> &Arc<crate::features::online::OnlineStore> {
        &self.online
    }

    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    pub fn notifier(&self) -> &events::Notifier {
        &self.notifier
    }

    /// Install what runs `sluice.refresh(...)`; the first one stays.
    pub fn set_orchestrator(&self, o: Arc<dyn events::Orchestrator>) {
        let _ = self.orchestrator.set(o);
    }

    pub fn orchestrator(&self) -> Option<&Arc<dyn events::Orchestrator>> {
        self.orchestrator.get()
    }

    /// Open every table once: the ones that cannot be read (`schema.name`)
    /// and why. Each failure is the table's own; the rest stay usable.
    pub async fn unreadable_tables(&self) -> Vec<(String, Error)> {
        let snapshot = self.catalog.snapshot();
        let mut bad = Vec::new();
        for (entry, def) in snapshot
            .objects()
            .iter()
            .filter_map(|e| e.stored().map(|def| (e, def)))
        {
            let opened = match self.lake.url_for(&def.location) {
                Ok(url) => self.lake.table(&url).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = opened {
                bad.push((format!("{}.{}", entry.schema, entry.name), e));
            }
        }
        bad
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The connections of this server.
    pub fn activity(&self) -> &Arc<activity::Activity> {
        &self.activity
    }

    pub fn session(self: &Arc<Self>) -> Session {
        let settings = Settings::default();
        let ctx = self.context(&settings.current_schema(), true);
        let caller = activity::install(&ctx, self.activity.clone(), DATABASE);
        if let Some(schema) = ctx.catalog(DATABASE).and_then(|c| c.schema("pg_catalog")) {
            let table = sequences::PgSequences::new(self.catalog.clone(), self.sequences.clone());
            let _ = schema.register_table("pg_sequences".into(), Arc::new(table));
        }
        let prepared = prepared::PreparedStatements::default();
        prepared.install(&ctx, DATABASE);
        let session = Session {
            prepared,
            caller,
            backend: None,
            plans: Default::default(),
            engine: self.clone(),
            ctx,
            settings,
            txn: TxnState::Idle,
            block: Block::default(),
            notices: Vec::new(),
            user: None,
            login: None,
            stream_failed: Default::default(),
            listening: Default::default(),
            cursors: Default::default(),
            pid: 0,
            sequence_values: Default::default(),
            temp_tables: Vec::new(),
        };
        session.install_pg_settings();
        session.install_sequence_functions();
        session.install_schema_functions();
        session
    }

    /// A DataFusion context that sees the Sluice catalog, with pg_catalog
    /// when `for_clients` is set.
    fn context(&self, default_schema: &str, for_clients: bool) -> SessionContext {
        planning_context(
            &self.catalog,
            &self.sequences,
            &self.runtime,
            &self.options,
            default_schema,
            for_clients,
        )
    }
}

/// DataFusion's defaults, then any `DATAFUSION_*` environment variable
/// (`DATAFUSION_EXECUTION_BATCH_SIZE=16384` sets
/// `datafusion.execution.batch_size`), for tuning a deployment.
/// The memory pool's size: `SLUICE_MEMORY_LIMIT` (`512MB`, `2GB`, `1.5GiB`,
/// bytes). Unset: no limit. Within a limit, sorts, aggregates and ASOF
/// joins spill to disk and other operators fail with "resources exhausted"
/// rather than exhaust the machine.
fn memory_limit() -> Result<Option<usize>> {
    match std::env::var("SLUICE_MEMORY_LIMIT") {
        Ok(v) if v.trim().eq_ignore_ascii_case("unlimited") => Ok(None),
        Ok(v) => crate::config::parse_bytes(&v).map(Some).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidParameter,
                format!(
                    "SLUICE_MEMORY_LIMIT must be a size such as 512MB or 2GB, or unlimited, \
                     not \"{v}\""
                ),
            )
        }),
        // Half of the machine's memory (or of the container's limit), so
        // one query cannot take the server down.
        Err(_) => Ok(machine_memory().map(|m| m / 2)),
    }
}

/// The memory this process may use: the cgroup limit when there is one,
/// else the machine's total (Linux; `None` elsewhere).
fn machine_memory() -> Option<usize> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
                .map(|kb| kb * 1024)
        })?;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    Some(cgroup.map_or(total, |c| c.min(total)))
}

fn engine_options() -> Result<SessionConfig> {
    SessionConfig::from_env().map_err(|e| {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("DataFusion setting from the environment: {e}"),
        )
    })
}

fn planning_context(
    catalog: &Arc<Catalog>,
    sequences: &Arc<crate::write::sequences::Sequences>,
    runtime: &Arc<RuntimeEnv>,
    options: &Arc<SessionConfig>,
    default_schema: &str,
    for_clients: bool,
) -> SessionContext {
    let mut config = options
        .as_ref()
        .clone()
        .with_default_catalog_and_schema(DATABASE, default_schema)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(false);
    config.options_mut().sql_parser.enable_ident_normalization = true;
    config.options_mut().sql_parser.parse_float_as_decimal = true;
    // SQL the engine writes for itself (the write path's queries over a
    // table) is read with PostgreSQL's grammar, as the client's statement
    // was: `j ->> 'k' = 'w'` and `j ? 'k'` keep their meaning.
    config.options_mut().sql_parser.dialect = datafusion::common::config::Dialect::PostgreSQL;
    // `timestamptz` (a cast, a literal, `now()`) is an instant in UTC, as
    // the session's TimeZone says: without a zone DataFusion typed it as a
    // plain timestamp.
    config.options_mut().execution.time_zone = Some("UTC".into());
    // DataFusion's logical planner proves more columns never NULL than its
    // physical planner does (the THEN column of `CASE WHEN a <> k THEN k`
    // behind a cast, a UNION branch rewritten after its schema was
    // derived), and an aggregate above stopped with XX000 over the
    // difference alone; the physical side's nullable is the safe one.
    config
        .options_mut()
        .execution
        .skip_physical_aggregate_schema_check = true;
    let mut builder = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime.clone())
        .with_default_features();
    // Ahead of DataFusion's planners (EXTRACT, interval products).
    if let Some(planners) = builder.expr_planners() {
        planners.insert(0, Arc::new(crate::types::datetime::DateTimePlanner));
    }
    let state = builder
        // delta-rs's write nodes and Sluice's ASOF join.
        .with_query_planner(Arc::new(crate::features::asof::SluiceQueryPlanner))
        .with_analyzer_rules({
            // Ours first that must see the plan before DataFusion coerces it.
            let mut rules: Vec<Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>> = vec![
                Arc::new(crate::types::text::TextLiteralComparisons),
                Arc::new(crate::types::date_comparisons::DateTimestampComparisons),
                Arc::new(set_ops::SetOperationsAll),
                Arc::new(crate::types::like::LikeEscapes),
                Arc::new(crate::types::averages::NumericAverages),
                Arc::new(crate::types::numeric::NumericScales),
                Arc::new(crate::types::floats::FloatsOverNumerics),
                Arc::new(crate::types::arrays::ArrayElementTypes),
                Arc::new(crate::types::interval::IntervalWindows),
                Arc::new(crate::types::shift::ShiftDefaults),
                Arc::new(crate::types::boolean_tests::BooleanTests),
                Arc::new(crate::types::grouping_sets::GroupingSetNames),
                Arc::new(result_types::JsonArguments::operators(catalog)),
            ];
            rules.extend(datafusion::optimizer::Analyzer::new().rules);
            rules.push(Arc::new(crate::types::text::TextInputCasts));
            rules.push(Arc::new(crate::types::checked::CheckedIntegers));
            rules.push(Arc::new(crate::types::interval::IntervalComparisons));
            rules.push(Arc::new(crate::types::float_zeros::FloatZeros));
            rules.push(Arc::new(crate::types::zero_products::DecimalZeroProducts));
            rules.push(Arc::new(crate::types::lazy_coalesce::LazyCoalesce));
            rules.push(Arc::new(crate::types::lazy_coalesce::LazyFilteredArguments));
            rules.push(Arc::new(
                crate::types::guarded_conditions::GuardedConditions,
            ));
            rules.push(Arc::new(global_having::GlobalHaving));
            rules.push(Arc::new(crate::types::ordered::OrderedStringAggregates));
            rules.push(Arc::new(result_types::JsonArguments::new(catalog)));
            rules.push(Arc::new(char_semantics::CharSemantics::new(catalog)));
            // After type coercion: the sides of every comparison agree.
            rules.push(Arc::new(crate::features::asof::AsofJoins));
            rules
        })
        .with_optimizer_rules(optimizer_rules())
        .with_physical_optimizer_rules(physical_optimizer_rules())
        .build();
    let ctx = SessionContext::new_with_state(state);
    let cat2 = catalog.clone();
    let seq2 = sequences.clone();
    let rt2 = runtime.clone();
    let options2 = options.clone();
    let factory: ContextFactory = Arc::new(move |schema: &str| {
        planning_context(&cat2, &seq2, &rt2, &options2, schema, false)
    });
    let lake = catalog.lake().clone();
    let external: crate::catalog::provider::ExternalOpener =
        Arc::new(move |def, state| crate::ingest::files::external_table(def, &lake, state));
    let provider = SluiceCatalogProvider::new(
        catalog.clone(),
        factory.clone(),
        external,
        names::alias_repeated_names,
    );
    use datafusion::catalog::CatalogProvider;
    let _ = provider.register_schema(
        "information_schema",
        Arc::new(InformationSchema::new(
            catalog.clone(),
            factory,
            names::alias_repeated_names,
        )),
    );
    ctx.register_catalog(DATABASE, Arc::new(provider));
    let (rows, value) = subquery::functions();
    ctx.register_udaf(rows);
    ctx.register_udf(value);
    ctx.register_udf(crate::features::asof::AsofMatch::udf());
    ctx.register_udtf(
        "postgres_query",
        Arc::new(crate::ingest::postgres::PostgresQuery),
    );
    for kind in [FileKind::Csv, FileKind::Json, FileKind::Parquet] {
        let name = match kind {
            FileKind::Csv => "read_csv",
            FileKind::Json => "read_json",
            FileKind::Parquet => "read_parquet",
        };
        ctx.register_udtf(
            name,
            Arc::new(ReadFiles {
                kind,
                lake: catalog.lake().clone(),
            }),
        );
    }
    if for_clients {
        if let Err(e) = crate::catalog::pg_setup::install(&ctx, DATABASE) {
            tracing::warn!("pg_catalog setup failed: {e}");
        } else if let Err(e) =
            crate::catalog::pg_constraints::install(&ctx, catalog.clone(), DATABASE)
        {
            tracing::warn!("pg_catalog constraints setup failed: {e}");
        }
        settings::register_functions(&ctx);
    }
    crate::types::typed::register(&ctx);
    crate::types::pg_format::register(&ctx);
    crate::types::arrays::register(&ctx);
    crate::types::functions::register(&ctx);
    crate::types::ident::register(&ctx);
    crate::write::sequences::register(
        &ctx,
        sequences,
        catalog,
        relation_names(
            catalog.clone(),
            vec![default_schema.to_string()],
            SystemTables { schemas: vec![] },
        ),
        &Default::default(),
    );
    ctx
}

/// How functions that take a relation's name as text (`nextval('s')`,
/// `pg_get_serial_sequence('t', 'c')`) find it: the binder's rule, over
/// the catalog as it is at the call. `None` for a table of a system
/// schema.
fn relation_names(
    catalog: Arc<Catalog>,
    search_path: Vec<String>,
    system: SystemTables,
) -> crate::write::sequences::Names {
    Arc::new(move |text: &str| {
        let name =
            crate::frontend::names::quoted_name(&crate::types::ident::parse_ident(text, true)?);
        let snapshot = catalog.snapshot();
        match bind::Resolver::new(&snapshot, search_path.clone(), &system).resolve(&name)? {
            bind::Resolved::Object(o) => Ok(Some(o)),
            _ => Ok(None),
        }
    })
}

/// The tables of the system schemas (`pg_catalog`, `information_schema`,
/// `sluice`), for name lookup.
pub struct SystemTables {
    schemas: Vec<(String, Arc<dyn datafusion::catalog::SchemaProvider>)>,
}

impl SystemTables {
    pub fn has(&self, schema: &str, table: &str) -> bool {
        self.schemas
            .iter()
            .any(|(s, p)| s == schema && p.table_exist(table))
    }
}

impl bind::SystemLookup for SystemTables {
    fn has(&self, schema: &str, table: &str) -> bool {
        SystemTables::has(self, schema, table)
    }
}

/// Transaction block state, as PostgreSQL reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Idle,
    InBlock,
    Failed,
}

/// What a transaction block did: every statement commits on its own,
/// so ROLLBACK and ROLLBACK TO SAVEPOINT can only say whether writes they
/// cannot undo ran since the block or the savepoint began.
#[derive(Debug, Default)]
struct Block {
    /// Statements that may have written, since the session began.
    writes: u64,
    /// `writes` when the block began.
    began: u64,
    /// Open savepoints, oldest first, with `writes` when each was set.
    savepoints: Vec<(String, u64)>,
}

/// What a statement produced.
pub enum Output {
    /// Rows, streamed. `tag` is the command tag word (`SELECT`, `SHOW`, ...).
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        tag: &'static str,
    },
    /// A command that returns a tag: `INSERT` with `rows` gives `INSERT 0 n`.
    Command {
        tag: String,
        rows: Option<usize>,
    },
    TransactionStart,
    TransactionEnd(&'static str),
    /// COPY FROM STDIN: the connection now feeds it the data.
    CopyIn(Box<copy::CopyIn>),
    /// COPY TO STDOUT: rows to format as COPY data.
    CopyOut(copy::CopyOut),
}

impl Output {
    fn command(tag: &str) -> Output {
        Output::Command {
            tag: tag.to_string(),
            rows: None,
        }
    }

    fn count(tag: &str, rows: usize) -> Output {
        Output::Command {
            tag: tag.to_string(),
            rows: Some(rows),
        }
    }

    pub fn batches(
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        tag: &'static str,
    ) -> Result<Output> {
        let stream = MemoryStream::try_new(batches, schema.clone(), None)?;
        Ok(Output::Rows {
            schema,
            stream: Box::pin(stream),
            tag,
        })
    }
}

/// A statement prepared by the extended protocol.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub stmt: Stmt,
    /// Parameter types DataFusion inferred ($1 first).
    pub param_types: Vec<Option<datafusion::arrow::datatypes::DataType>>,
    /// Result columns, if the statement returns rows.
    pub result_schema: Option<SchemaRef>,
}

/// A query's plan and what it was planned on.
#[derive(Clone)]
struct CachedPlan {
    catalog_version: Option<u64>,
    tables: Vec<(url::Url, Option<u64>)>,
    plan: LogicalPlan,
}

/// The Delta snapshots (location, version) `plan` reads, views included,
/// when every relation it reads is one (not a system table, external files
/// or a table function): the plan stays valid while the catalog and these
/// versions do. `None` when something else is read.
fn pinned_snapshots(plan: &LogicalPlan) -> Option<Vec<(url::Url, Option<u64>)>> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::datasource::source_as_provider;
    let mut tables = Some(Vec::new());
    let _ = crate::tree::apply_with_subqueries(plan, |node| {
        let LogicalPlan::TableScan(scan) = node else {
            return Ok(TreeNodeRecursion::Continue);
        };
        let found = source_as_provider(&scan.source).ok().and_then(|p| {
            if let Some(s) = crate::lake::snapshot_of(p.as_ref()) {
                return Some(vec![s]);
            }
            p.downcast_ref::<datafusion::catalog::view::ViewTable>()
                .and_then(|view| pinned_snapshots(view.logical_plan()))
        });
        match (found, tables.as_mut()) {
            (Some(found), Some(all)) => {
                all.extend(found);
                Ok(TreeNodeRecursion::Continue)
            }
            _ => {
                tables = None;
                Ok(TreeNodeRecursion::Stop)
            }
        }
    });
    tables
}

/// Plans a session keeps (prepared statements); beyond this, it starts over.
const PLAN_CACHE_ENTRIES: usize = 256;

pub struct Session {
    engine: Arc<Engine>,
    /// Who `pg_stat_activity` and the signal functions serve.
    caller: Arc<activity::Caller>,
    /// This connection in `pg_stat_activity` (`None`: not a connection).
    backend: Option<Arc<activity::Backend>>,
    /// Plans of the queries it prepared, by statement.
    plans: std::sync::Mutex<HashMap<String, CachedPlan>>,
    ctx: SessionContext,
    pub settings: Settings,
    txn: TxnState,
    /// Savepoints and writes of the transaction block.
    block: Block,
    notices: Vec<String>,
    /// The authenticated user and rights; `None` when the server has no users.
    user: Option<access::Grant>,
    /// The user named when the connection started (`session_user`).
    login: Option<String>,
    /// Set by a result stream that failed after the statement returned, so
    /// the transaction block still aborts.
    stream_failed: Arc<std::sync::atomic::AtomicBool>,
    /// The channels it LISTENs on.
    listening: events::Listening,
    /// Its open SQL cursors.
    pub(crate) cursors: cursors::Cursors,
    /// The statements its connection prepared by name.
    pub prepared: prepared::PreparedStatements,
    /// What `currval` and `lastval` answer.
    sequence_values: crate::write::sequences::SessionState,
    /// The process id clients know the session by (0: not a connection).
    pid: i32,
    /// The tables it created `TEMPORARY`, dropped when it ends.
    temp_tables: Vec<datafusion::sql::sqlparser::ast::ObjectName>,
}

crate::send_sync::send_sync_by_fields!(Session {
    engine,
    caller,
    backend,
    plans,
    ctx,
    settings,
    txn,
    block,
    notices,
    user,
    login,
    stream_failed,
    listening,
    cursors,
    prepared,
    sequence_values,
    pid,
    temp_tables
});

impl Session {
    /// The channels it listens on, for its connection to deliver.
    pub fn listening(&self) -> events::Listening {
        self.listening.clone()
    }

    /// A table this session created `TEMPORARY`: it is dropped when the
    /// session ends ([`Session::end`]).
    pub fn created_temporary(&mut self, name: datafusion::sql::sqlparser::ast::ObjectName) {
        self.temp_tables.push(name);
    }

    /// The end of the session (its connection closed): its temporary
    /// tables are dropped. A table that cannot be is left, with a warning
    /// in the server's log.
    pub async fn end(&mut self) {
        for name in std::mem::take(&mut self.temp_tables) {
            let dropped = ddl::drop(
                self,
                datafusion::sql::sqlparser::ast::ObjectType::Table,
                true,
                vec![name.clone()],
                false,
            )
            .await;
            if let Err(e) = dropped {
                tracing::warn!("temporary table {name} was not dropped: {e}");
            }
        }
    }

    pub fn set_pid(&mut self, pid: i32) {
        self.pid = pid;
        self.caller.set(pid, self.user.clone());
    }

    /// This session is the connection `backend` of `pg_stat_activity`.
    pub fn set_backend(&mut self, backend: Arc<activity::Backend>) {
        self.backend = Some(backend);
    }

    /// A statement (`text` as the client sent it) begins.
    pub fn activity_started(&self, text: &str) {
        if let Some(b) = &self.backend {
            b.started(text);
        }
    }

    pub fn backend_handle(&self) -> Option<Arc<activity::Backend>> {
        self.backend.clone()
    }

    /// The statement returned.
    pub fn activity_finished(&self) {
        if let Some(b) = &self.backend {
            b.finished(match self.txn {
                TxnState::Idle => activity::State::Idle,
                TxnState::InBlock => activity::State::IdleInTransaction,
                TxnState::Failed => activity::State::IdleInTransactionAborted,
            });
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A flag for result streams to raise when they fail mid-way.
    pub fn stream_failure_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.stream_failed.clone()
    }

    /// Statements from now on run with these rights.
    pub fn set_user(&mut self, grant: access::Grant) {
        self.user = Some(grant);
        self.caller.set(self.pid, self.user.clone());
    }

    /// The user the connection started as: what `session_user` and
    /// `current_user` answer.
    pub fn set_login(&mut self, name: &str) {
        if self.login.as_deref() == Some(name) {
            return;
        }
        self.login = Some(name.to_string());
        let value = name.to_string();
        self.ctx.register_udf(datafusion::logical_expr::create_udf(
            "session_user",
            vec![],
            datafusion::arrow::datatypes::DataType::Utf8,
            datafusion::logical_expr::Volatility::Stable,
            Arc::new(move |_: &[datafusion::logical_expr::ColumnarValue]| {
                Ok(datafusion::logical_expr::ColumnarValue::Scalar(
                    datafusion::common::ScalarValue::Utf8(Some(value.clone())),
                ))
            }),
        ));
    }

    pub fn has_user(&self) -> bool {
        self.user.is_some()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn txn_state(&self) -> TxnState {
        self.txn
    }

    /// How long this session may stay idle now: its
    /// `idle_in_transaction_session_timeout` inside a transaction block,
    /// `None` outside one or when the setting is 0.
    pub fn idle_limit(&self) -> Option<Duration> {
        match self.txn {
            TxnState::Idle => None,
            TxnState::InBlock | TxnState::Failed => self.settings.idle_in_transaction_timeout(),
        }
    }

    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// A statement failed before it ran (a parse error): inside a
    /// transaction block that aborts the block.
    pub fn mark_failed(&mut self) {
        if self.txn == TxnState::InBlock {
            self.txn = TxnState::Failed;
        }
    }

    pub fn notice(&mut self, msg: impl Into<String>) {
        self.notices.push(msg.into());
    }

    pub fn statement_timeout(&self) -> Option<Duration> {
        self.settings.statement_timeout()
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// `pg_catalog.pg_settings` shows this session's settings.
    fn install_pg_settings(&self) {
        let table = match settings::pg_settings(&self.settings) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("pg_settings: {e}");
                return;
            }
        };
        if let Some(schema) = self
            .ctx
            .catalog(DATABASE)
            .and_then(|c| c.schema("pg_catalog"))
        {
            let _ = schema.register_table("pg_settings".into(), table);
        }
    }

    /// `nextval` and the other sequence functions, looking names up by
    /// this session's search_path and answering `currval` from its calls.
    fn install_sequence_functions(&self) {
        crate::write::sequences::register(
            &self.ctx,
            &self.engine.sequences,
            &self.engine.catalog,
            relation_names(
                self.engine.catalog.clone(),
                self.settings.search_path(),
                self.system_tables(),
            ),
            &self.sequence_values,
        );
    }

    /// `current_schema()` and `current_schemas()` over the search path.
    fn install_schema_functions(&self) {
        for udf in settings::schema_udfs(self.engine.catalog.clone(), self.settings.search_path()) {
            self.ctx.register_udf(udf);
        }
    }

    /// Unqualified names in queries resolve in the first schema of
    /// search_path; `current_setting` reads the settings as they are now.
    fn sync_default_schema(&mut self) {
        self.ctx
            .register_udf(settings::current_setting_udf(&self.settings));
        self.install_schema_functions();
        self.install_pg_settings();
        self.install_sequence_functions();
        let schema = self.settings.current_schema();
        let state = self.ctx.state_ref();
        let mut state = state.write();
        state.config_mut().options_mut().catalog.default_schema = schema;
    }

    /// Parse a query string.
    pub fn parse(&self, sql: &str) -> Result<Vec<Stmt>> {
        frontend::parse(sql)
    }

    /// In an aborted transaction block only COMMIT and ROLLBACK run.
    fn check_not_aborted(&self, stmt: &Stmt) -> Result<()> {
        // ROLLBACK TO SAVEPOINT is a Rollback with a savepoint name.
        let is_txn_end = matches!(stmt, Stmt::Sql(s) if matches!(**s, Statement::Commit { .. } | Statement::Rollback { .. }));
        if self.txn == TxnState::Failed && !is_txn_end {
            return Err(Error::new(
                ErrorKind::InFailedTransaction,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        Ok(())
    }

    /// Run one statement, keeping transaction state as PostgreSQL does.
    pub async fn execute(&mut self, stmt: Stmt, params: &ParamValues) -> Result<Output> {
        if self
            .stream_failed
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.mark_failed();
        }
        self.check_not_aborted(&stmt)?;
        let handler = handlers::handler(stmt);
        let writes = handler.role() >= access::Role::Writer;
        let allowed = match &self.user {
            Some(grant) => grant.allow(handler.role(), handler.server_files(), &handler.name()),
            None => Ok(()),
        };
        // A refused statement aborts a transaction block like any error.
        let result = match allowed {
            Ok(()) if !handler.fresh_catalog() => handler.execute(self, params).await,
            Ok(()) => match self.engine.catalog.refresh().await {
                Ok(_) => handler.execute(self, params).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if result.is_err() && self.txn == TxnState::InBlock {
            self.txn = TxnState::Failed;
        }
        if writes && result.is_ok() {
            self.block.writes += 1;
        }
        result
    }

    /// BEGIN: a transaction block starts (a notice inside one already).
    pub fn begin(&mut self) {
        if self.txn != TxnState::Idle {
            self.notice("there is already a transaction in progress");
            return;
        }
        self.txn = TxnState::InBlock;
        self.block.began = self.block.writes;
        self.block.savepoints.clear();
    }

    /// COMMIT or ROLLBACK: the block ends. `rollback` warns when statements
    /// that may have written already committed. Returns the command tag.
    pub fn end_block(&mut self, rollback: bool) -> &'static str {
        let tag = match (self.txn, rollback) {
            (TxnState::Idle, _) => {
                self.notice("there is no transaction in progress");
                if rollback { "ROLLBACK" } else { "COMMIT" }
            }
            (TxnState::InBlock, false) => "COMMIT",
            // COMMIT of a failed block rolls it back, as PostgreSQL.
            (TxnState::InBlock, true) | (TxnState::Failed, _) => {
                if self.block.writes > self.block.began {
                    self.notice(
                        "statements in this transaction block were already committed; \
                         ROLLBACK cannot undo them (each statement commits on its own)",
                    );
                }
                "ROLLBACK"
            }
        };
        self.txn = TxnState::Idle;
        self.block.savepoints.clear();
        self.cursors.end_of_block();
        tag
    }

    /// Is a transaction block open (also an aborted one)?
    pub fn in_transaction_block(&self) -> bool {
        self.txn != TxnState::Idle
    }

    /// SAVEPOINT name.
    pub fn savepoint(&mut self, name: &str) -> Result<()> {
        self.in_block("SAVEPOINT")?;
        let mark = self.block.writes;
        self.block.savepoints.push((name.to_string(), mark));
        Ok(())
    }

    /// RELEASE [SAVEPOINT] name: forgets it and every later savepoint.
    pub fn release_savepoint(&mut self, name: &str) -> Result<()> {
        self.in_block("RELEASE SAVEPOINT")?;
        let at = self.find_savepoint(name)?;
        self.block.savepoints.truncate(at);
        Ok(())
    }

    /// ROLLBACK TO [SAVEPOINT] name: the block is usable again after an
    /// error; the savepoint stays, later ones go. Writes since the
    /// savepoint already committed and stay: a warning says so.
    pub fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        self.in_block("ROLLBACK TO SAVEPOINT")?;
        let at = self.find_savepoint(name)?;
        let mark = self.block.savepoints[at].1;
        self.block.savepoints.truncate(at + 1);
        self.txn = TxnState::InBlock;
        if self.block.writes > mark {
            self.notice(format!(
                "statements after savepoint \"{name}\" were already committed; \
                 ROLLBACK TO SAVEPOINT cannot undo them (each statement commits on its own)"
            ));
        }
        Ok(())
    }

    fn in_block(&self, what: &str) -> Result<()> {
        if self.txn == TxnState::Idle {
            return Err(Error::new(
                ErrorKind::NoActiveTransaction,
                format!("{what} can only be used in transaction blocks"),
            ));
        }
        Ok(())
    }

    /// The newest savepoint of that name (names compare as identifiers).
    fn find_savepoint(&self, name: &str) -> Result<usize> {
        self.block
            .savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidSavepoint,
                    format!("savepoint \"{name}\" does not exist"),
                )
            })
    }

    /// Plan and run a query through DataFusion, streaming its rows.
    pub async fn query(&mut self, stmt: Statement) -> Result<Output> {
        let tag = match stmt {
            Statement::Explain { .. } => "EXPLAIN",
            _ => "SELECT",
        };
        let plan = self.plan(stmt.clone()).await?;
        self.run_plan(&stmt, plan, tag).await
    }

    /// Run the plan of `stmt`, streaming its rows under PostgreSQL's
    /// column names.
    pub async fn run_plan(
        &mut self,
        stmt: &Statement,
        plan: LogicalPlan,
        tag: &'static str,
    ) -> Result<Output> {
        let typing = plan.clone();
        self.run_plan_typed(stmt, plan, tag, &typing).await
    }

    /// [`Session::run_plan`], with the result columns' PostgreSQL types
    /// traced through `typing` (the plan before its parameters were put in).
    pub async fn run_plan_typed(
        &mut self,
        stmt: &Statement,
        plan: LogicalPlan,
        tag: &'static str,
        typing: &LogicalPlan,
    ) -> Result<Output> {
        let pg = names::pg_result_names(stmt, plan.schema().as_arrow());
        let mut quotients = vec![];
        let stream = match self.rows_by_key(&plan).await? {
            Some(stream) => stream,
            None => {
                // Optimized here, so that the result's numeric quotients
                // can be written at their own places (which the analyzer
                // decides).
                let state = self.ctx.state();
                let optimized = if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_))
                {
                    state.optimize(&plan)?
                } else {
                    let plan = crate::types::places::mark_explicit_casts(plan)?;
                    let analyzed = state.analyzer().execute_and_check(
                        plan,
                        state.config_options(),
                        |_, _| {},
                    )?;
                    let analyzed = crate::types::wide::narrowed_results(analyzed)?;
                    let (analyzed, at) = crate::types::places::display_scales(analyzed)?;
                    quotients = at;
                    state.optimizer().optimize(analyzed, &state, |_, _| {})?
                };
                let physical = state
                    .query_planner()
                    .create_physical_plan(&optimized, &state)
                    .await?;
                added_order::execute(physical, self.ctx.task_ctx())?
            }
        };
        let (schema, stream): (SchemaRef, SendableRecordBatchStream) = match pg {
            // Same columns under PostgreSQL's names (types as each batch has them).
            Some(named) => {
                let names: Vec<String> = named.fields().iter().map(|f| f.name().clone()).collect();
                let schema = names::with_names(&stream.schema(), &names);
                let renamed = stream.map(move |b| {
                    b.and_then(|b| {
                        let s = names::with_names(&b.schema(), &names);
                        RecordBatch::try_new(s, b.columns().to_vec()).map_err(Into::into)
                    })
                });
                (
                    schema.clone(),
                    Box::pin(RecordBatchStreamAdapter::new(schema, renamed)),
                )
            }
            None => (stream.schema(), stream),
        };
        let mut schema = self.result_types(typing, schema);
        if !quotients.is_empty() {
            // Numeric quotients sent as the text of each value's places.
            let fields: Vec<datafusion::arrow::datatypes::Field> = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let f = f.as_ref().clone();
                    if !quotients.contains(&i) {
                        return f;
                    }
                    let mut meta = f.metadata().clone();
                    meta.insert(result_types::PG_TYPE_KEY.into(), "1700,-1".into());
                    f.with_metadata(meta)
                })
                .collect();
            schema = Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(
                fields,
                schema.metadata().clone(),
            ));
        }
        Ok(Output::Rows {
            schema,
            stream,
            tag,
        })
    }

    /// The rows of `plan` when it is a lookup by key the key reader answers
    /// ([`key_read`]), without optimizing or physically planning it.
    async fn rows_by_key(&self, plan: &LogicalPlan) -> Result<Option<SendableRecordBatchStream>> {
        let snapshot = self.engine.catalog.snapshot();
        let Some(k) = key_read::recognize(plan, &snapshot) else {
            return Ok(None);
        };
        let Some(rows) = k.rows(&self.engine.lake).await? else {
            return Ok(None);
        };
        let stream =
            datafusion::physical_plan::memory::MemoryStream::try_new(rows, k.schema(), None)?;
        crate::metrics::key_read();
        Ok(Some(Box::pin(stream)))
    }

    /// `schema`, the result columns of `plan`, with their PostgreSQL types.
    pub fn result_types(&self, plan: &LogicalPlan, schema: SchemaRef) -> SchemaRef {
        let snapshot = self.engine.catalog.snapshot();
        result_types::annotate(plan, schema, &snapshot, &self.engine.lake)
    }

    /// The plan of a query, kept per session and reused while the catalog
    /// and every table it reads are at the versions it was planned on (a
    /// prepared statement executed again plans nothing).
    pub async fn plan_cached(&self, stmt: &Statement) -> Result<LogicalPlan> {
        // Everything planning reads from the session is in the key.
        let key = format!("{:?}\u{0}{stmt}", self.settings);
        let catalog_version = self.engine.catalog.snapshot().version;
        let cached = self.plans.lock().unwrap().get(&key).cloned();
        if let Some(c) = cached
            && c.catalog_version == catalog_version
        {
            let mut unchanged = true;
            for (url, version) in &c.tables {
                // Not readable now: planned again, which reports why.
                let now = self.engine.lake.table(url).await.ok().map(|t| t.version());
                if now != Some(*version) {
                    unchanged = false;
                    break;
                }
            }
            if unchanged {
                return Ok(c.plan);
            }
        }
        let mut binder = bind::Binder::new(self);
        let plan = self.plan_with(&mut binder, stmt.clone()).await?;
        let Some(mut tables) = pinned_snapshots(&plan) else {
            return Ok(plan);
        };
        tables.sort();
        tables.dedup();
        let mut plans = self.plans.lock().unwrap();
        if plans.len() >= PLAN_CACHE_ENTRIES {
            plans.clear();
        }
        plans.insert(
            key,
            CachedPlan {
                catalog_version,
                tables,
                plan: plan.clone(),
            },
        );
        Ok(plan)
    }

    /// Bind and plan a statement DataFusion plans (a query, EXPLAIN).
    pub async fn plan(&self, stmt: Statement) -> Result<LogicalPlan> {
        let mut binder = bind::Binder::new(self);
        self.plan_with(&mut binder, stmt).await
    }

    /// [`Session::plan`] with the binder of the statement it is part of
    /// (so that every read of a table sees one snapshot).
    pub async fn plan_with(
        &self,
        binder: &mut bind::Binder<'_>,
        stmt: Statement,
    ) -> Result<LogicalPlan> {
        let mut stmt = self.rewrite_for_planning(stmt)?;
        let bound = binder.bind(&mut stmt).await?;
        using_joins::rewrite(&mut stmt, &|f| bound.columns(f))?;
        whole_rows::rewrite(&mut stmt, &|f| bound.columns(f));
        // After the USING joins, whose merged columns an expression moved
        // into a subquery could no longer name.
        {
            let state = self.ctx.state_ref();
            let state = state.read();
            let aggregates = state.aggregate_functions();
            subquery::rewrite(&mut stmt, &|n| aggregates.contains_key(n), &|f| {
                bound.columns(f)
            })?;
        }
        self.plan_bound(stmt, &bound)
    }

    /// PostgreSQL spellings DataFusion plans differently, adjusted.
    fn rewrite_for_planning(&self, stmt: Statement) -> Result<Statement> {
        names::refuse_ambiguous_order_keys(&stmt)?;
        let mut stmt = rewrite_for_datafusion(stmt);
        lateral_top::rewrite(&mut stmt);
        crate::frontend::compat::timestamp_casts(&mut stmt);
        settings::inline_current_settings(&mut stmt, &self.settings)?;
        let state = self.ctx.state_ref();
        let state = state.read();
        let aggregates = state.aggregate_functions();
        // A table's columns, for a name the set-returning functions'
        // aliases may shadow.
        let columns_of = |f: &datafusion::sql::sqlparser::ast::TableFactor| {
            let datafusion::sql::sqlparser::ast::TableFactor::Table {
                name, args: None, ..
            } = f
            else {
                return None;
            };
            self.resolve_table(name)
                .ok()
                .map(|(_, _, def)| def.column_names())
        };
        json_sets::rewrite(&mut stmt, &columns_of);
        srf_sort::rewrite(&mut stmt);
        names::distinct_cast_names(&mut stmt, &|n| aggregates.contains_key(n));
        Ok(stmt)
    }

    /// The columns `plan` answers with once analyzed, as its rows come:
    /// the types a table made from it must have (an analyzer rule may
    /// change a type the unanalyzed plan shows, as `avg` of a numeric).
    pub fn output_schema(&self, plan: &LogicalPlan) -> Result<datafusion::common::DFSchemaRef> {
        let state = self.ctx.state();
        let analyzed =
            state
                .analyzer()
                .execute_and_check(plan.clone(), state.config_options(), |_, _| {})?;
        Ok(analyzed.schema().clone())
    }

    /// The declared type of each column of `plan`'s result (`schema`)
    /// that passes a table column or typed cast through (see
    /// [`result_types::declared`]).
    pub fn declared_types(
        &self,
        plan: &LogicalPlan,
        schema: &datafusion::arrow::datatypes::Schema,
    ) -> Vec<Option<crate::types::PgType>> {
        let snapshot = self.engine.catalog.snapshot();
        result_types::declared(plan, schema, &snapshot, self.engine.lake())
    }

    /// Plan a bound statement.
    pub fn plan_bound(&self, stmt: Statement, bound: &bind::Bound) -> Result<LogicalPlan> {
        let state = self.ctx.state();
        planner::Planner::new(&state, bound, &self.engine.table_functions).plan(stmt)
    }

    /// Qualify every relation name of a part of a statement DataFusion
    /// does not plan whole (DML), and spell its table versions the way the
    /// catalog's providers read them, for the SQL the DML builds.
    pub fn qualify_dml<T: datafusion::sql::sqlparser::ast::VisitMut>(
        &self,
        node: &mut T,
    ) -> Result<()> {
        let snapshot = self.engine.catalog().snapshot();
        let system = self.system_tables();
        let resolver = self.resolver(&snapshot, &system);
        bind::qualify_node(&resolver, node)?;
        legacy_names(node);
        Ok(())
    }

    /// Qualify the names a MERGE reads and writes (see [`Session::qualify_dml`]).
    pub fn qualify_merge(&self, m: &mut frontend::MergeStmt) -> Result<()> {
        self.qualify_dml(&mut m.target)?;
        self.qualify_dml(&mut m.source)?;
        self.qualify_dml(&mut m.on)?;
        for c in m.clauses.iter_mut() {
            if let Some(cond) = c.condition.as_mut() {
                self.qualify_dml(cond)?;
            }
            match &mut c.action {
                frontend::merge::MergeAction::Update(assignments) => {
                    for a in assignments.iter_mut() {
                        self.qualify_dml(&mut a.value)?;
                    }
                }
                frontend::merge::MergeAction::Insert {
                    values: Some(values),
                    ..
                } => {
                    for v in values.iter_mut() {
                        self.qualify_dml(v)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// What the write path needs of this session.
    pub fn write_context(&self) -> crate::write::WriteContext {
        crate::write::WriteContext {
            ctx: self.ctx.clone(),
            lake: self.engine.lake.clone(),
            catalog: self.engine.catalog.clone(),
        }
    }

    /// Qualify every relation name a statement reads: the relations.
    pub fn qualify_query(
        &self,
        stmt: &mut Statement,
    ) -> Result<std::collections::BTreeSet<catalog::RelName>> {
        let snapshot = self.engine.catalog().snapshot();
        let system = self.system_tables();
        let resolver = self.resolver(&snapshot, &system);
        bind::qualify_reads(&resolver, stmt)
    }

    /// The system schemas' tables, for name lookup.
    pub fn system_tables(&self) -> SystemTables {
        let cat = self.ctx.catalog(DATABASE);
        let schema = |n: &str| cat.as_ref().and_then(|c| c.schema(n));
        SystemTables {
            schemas: catalog::SYSTEM_SCHEMAS
                .iter()
                .filter_map(|n| schema(n).map(|p| (n.to_string(), p)))
                .collect(),
        }
    }

    /// A resolver with this session's `search_path`.
    pub fn resolver<'a>(
        &self,
        snapshot: &'a catalog::Snapshot,
        system: &'a SystemTables,
    ) -> bind::Resolver<'a> {
        bind::Resolver::new(snapshot, self.settings.search_path(), system)
    }

    /// A table of a system schema.
    pub async fn system_table(
        &self,
        r: &catalog::RelName,
    ) -> Result<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
        let Some(provider) = self.ctx.catalog(DATABASE).and_then(|c| c.schema(&r.schema)) else {
            return Ok(None);
        };
        Ok(provider.table(&r.name).await?)
    }

    /// Prepare a statement for the extended protocol: infer parameter types
    /// and the result columns without running it.
    ///
    /// `declared` names the types the client gave its parameters (by
    /// position, `None` where it left one to the server).
    pub async fn prepare(
        &mut self,
        sql: &str,
        declared: &[Option<&str>],
    ) -> Result<Option<Prepared>> {
        self.engine.catalog.refresh().await?;
        let mut stmts = self.parse(sql)?;
        if let Some(Stmt::Sql(s)) = stmts.first_mut() {
            frontend::compat::declared_parameters(s, declared);
        }
        if stmts.is_empty() {
            return Ok(None);
        }
        if stmts.len() > 1 {
            return Err(Error::syntax(
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let stmt = stmts.remove(0);
        // As PostgreSQL: not even Parse runs in an aborted block.
        self.check_not_aborted(&stmt)?;
        let described = handlers::handler(stmt.clone()).describe(self).await?;
        let (param_types, result_schema) = (described.params, described.columns);
        Ok(Some(Prepared {
            stmt,
            param_types,
            result_schema,
        }))
    }

    /// Find a table in the catalog: `(schema, name, definition)`.
    pub fn resolve_table(&self, name: &ObjectName) -> Result<(String, String, Arc<TableDef>)> {
        let snapshot = self.engine.catalog.snapshot();
        let system = self.system_tables();
        let o = self
            .resolver(&snapshot, &system)
            .object(name, Kind::Table)?;
        let def = o.table_def()?;
        Ok((o.schema, o.name, def))
    }

    /// `(schema, name)` of a possibly qualified name: where it resolves,
    /// else where a new object of that name would go.
    pub fn qualify(&self, name: &ObjectName) -> Result<(String, String)> {
        let snapshot = self.engine.catalog.snapshot();
        let system = self.system_tables();
        let resolver = self.resolver(&snapshot, &system);
        let r = match resolver.lookup(name)? {
            Some(found) => found.rel_name(),
            None => resolver.for_create(name)?,
        };
        Ok((r.schema, r.name))
    }

    pub(crate) fn catalog_entry(&self, schema: &str, name: &str) -> Option<Object> {
        self.engine
            .catalog
            .snapshot()
            .relation(schema, name)
            .cloned()
    }
}

/// `SELECT * FROM schema.name`, as a syntax tree.
pub(crate) fn select_all(
    rel: &catalog::RelName,
) -> Result<Box<datafusion::sql::sqlparser::ast::Query>> {
    use datafusion::sql::sqlparser::ast::{ObjectNamePart, SetExpr, TableFactor};
    let mut q = frontend::template::query("SELECT * FROM t", &[])?;
    if let SetExpr::Select(select) = q.body.as_mut()
        && let Some(from) = select.from.first_mut()
        && let TableFactor::Table { name, .. } = &mut from.relation
    {
        name.0 = vec![
            ObjectNamePart::Identifier(frontend::names::quoted(&rel.schema)),
            ObjectNamePart::Identifier(frontend::names::quoted(&rel.name)),
        ];
    }
    Ok(q)
}

/// Table versions and named table-function arguments in the form the
/// catalog's providers and the table functions read them: `t VERSION AS
/// OF 3` names `"__time_travel"."schema.t@v3"` (aliased `t`), and `name =>
/// value` becomes `'name =>', value`.
fn legacy_names<T: datafusion::sql::sqlparser::ast::VisitMut>(stmt: &mut T) {
    use crate::catalog::provider::{TIME_TRAVEL_SCHEMA, time_travel_name};
    use crate::lake::TimeTravel;
    use datafusion::sql::sqlparser::ast::{
        Expr, Ident, ObjectNamePart, TableAlias, TableVersion, Value, VisitorMut,
    };
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table {
                name,
                alias,
                version,
                ..
            } = f
            else {
                return ControlFlow::Continue(());
            };
            let at = match version.take() {
                None => return ControlFlow::Continue(()),
                Some(TableVersion::VersionAsOf(e)) => match &e {
                    Expr::Value(v) => match &v.value {
                        Value::Number(n, _) => n.parse::<i64>().ok().map(TimeTravel::Version),
                        Value::SingleQuotedString(s) => Some(
                            s.trim()
                                .parse::<i64>()
                                .map(TimeTravel::Version)
                                .unwrap_or_else(|_| TimeTravel::Timestamp(s.clone())),
                        ),
                        _ => None,
                    },
                    _ => None,
                },
                Some(TableVersion::TimestampAsOf(e)) => match &e {
                    Expr::Value(v) => match &v.value {
                        Value::SingleQuotedString(s) => Some(TimeTravel::Timestamp(s.clone())),
                        Value::Number(n, _) => Some(TimeTravel::Timestamp(n.clone())),
                        _ => None,
                    },
                    _ => None,
                },
                Some(_) => None,
            };
            let Some(at) = at else {
                return ControlFlow::Continue(());
            };
            let parts: Vec<String> = crate::frontend::names::name_parts(name);
            let (schema, table) = match parts.as_slice() {
                [s, t] | [_, s, t] => (s.clone(), t.clone()),
                _ => return ControlFlow::Continue(()),
            };
            name.0 = vec![
                ObjectNamePart::Identifier(Ident::with_quote('"', TIME_TRAVEL_SCHEMA)),
                ObjectNamePart::Identifier(Ident::with_quote(
                    '"',
                    time_travel_name(&schema, &table, &at),
                )),
            ];
            if alias.is_none() {
                *alias = Some(TableAlias {
                    explicit: false,
                    name: Ident::with_quote('"', table),
                    columns: vec![],
                    at: None,
                });
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V);
}

/// DataFusion's optimizer rules with Sluice's among them (also what a
/// correlated subquery run per row is optimized with).
pub(crate) fn optimizer_rules() -> Vec<Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>>
{
    // Correlated subqueries DataFusion could not decorrelate become
    // subplans right after it tried, before the rules that do not
    // count a subquery's outer columns as read: filter pushdown
    // (which moves such a filter to one side of a join, or below
    // a table alias), common expressions and column pruning.
    let mut rules = datafusion::optimizer::Optimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "decorrelate_lateral_join")
        .map_or(rules.len(), |i| i + 1);
    rules.insert(at, Arc::new(subplan::CorrelatedSubplans));
    // Correlated columns of one name get names of their own
    // before DataFusion pulls them out of their subqueries.
    let at = rules
        .iter()
        .position(|r| r.name() == "decorrelate_predicate_subquery")
        .unwrap_or(0);
    rules.insert(at, Arc::new(correlated_names::UniqueCorrelatedNames));
    // An IN or EXISTS over a subquery found empty is answered
    // before DataFusion decorrelates it.
    let at = rules
        .iter()
        .position(|r| r.name() == "decorrelate_predicate_subquery")
        .unwrap_or(0);
    rules.insert(at, Arc::new(empty_subqueries::EmptySubqueries));
    // A scalar subquery whose nested subquery reads the query around it
    // is a subplan before DataFusion decorrelates the nested one.
    let at = rules
        .iter()
        .position(|r| r.name() == "decorrelate_predicate_subquery")
        .unwrap_or(0);
    rules.insert(at, Arc::new(subplan::DeepCorrelations));
    // `x op ANY/ALL (subquery)` keeps the name of the select
    // item holding it when DataFusion rewrites it.
    let at = rules
        .iter()
        .position(|r| r.name() == "rewrite_set_comparison")
        .unwrap_or(0);
    rules.insert(at, Arc::new(set_comparison_names::SetComparisonNames));
    // A filter with a NULL condition keeps no row before anything
    // else it tests is evaluated.
    let at = rules
        .iter()
        .position(|r| r.name() == "simplify_expressions")
        .map_or(rules.len(), |i| i + 1);
    rules.insert(at, Arc::new(null_conditions::NullConditions));
    // A union left with one branch keeps the union's names.
    let at = rules
        .iter()
        .position(|r| r.name() == "propagate_empty_relation")
        .map_or(rules.len(), |i| i + 1);
    rules.insert(at, Arc::new(set_ops::OneBranchUnions));
    // An aggregate without GROUP BY is under a limit while filters are
    // pushed down, which none crosses (see `global_aggregates`).
    let at = rules
        .iter()
        .position(|r| r.name() == "push_down_filter")
        .unwrap_or(rules.len());
    rules.insert(
        at + 1,
        Arc::new(global_aggregates::GlobalAggregateBarrier { lift: true }),
    );
    rules.insert(
        at,
        Arc::new(global_aggregates::GlobalAggregateBarrier { lift: false }),
    );
    // Last: after every simplification of a pass.
    rules.push(Arc::new(repeated_orderings::RepeatedOrderings));
    rules
}

/// DataFusion's physical optimizer rules with Sluice's among them (also
/// what a correlated subquery run per row is planned with).
pub(crate) fn physical_optimizer_rules()
-> Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = safe_pushdown::physical_rules();
    // First: join selection and the sort rules read the joins' constants.
    rules.insert(0, Arc::new(outer_constants::OuterJoinConstants));
    let at = rules
        .iter()
        .position(|r| r.name() == "SanityCheckPlan")
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(order_repair::OrderRepair));
    // Before the dynamic filters are placed (their TopK's keys change).
    let at = rules
        .iter()
        .position(|r| r.name() == "FilterPushdown(Post)")
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(top_k_keys::TopKKeys));
    rules.push(Arc::new(late_filter::SelectiveRowFilter));
    rules.push(Arc::new(range_window::RangeWindows));
    rules.push(Arc::new(added_order::AddedOrder));
    rules
}

/// Adjust PostgreSQL spellings DataFusion plans differently: an explicit
/// cast to `varchar(n)` / `char(n)` cuts the value to n characters
/// (DataFusion's string type has no length), and a `char(n)` one drops
/// the trailing spaces, which do not count in a `character` value.
fn rewrite_for_datafusion(mut stmt: Statement) -> Statement {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{CharacterLength, DataType as SqlType, Expr};
    use std::ops::ControlFlow;
    // What EXPLAIN plans is its statement, named as when it runs.
    let query = match &mut stmt {
        Statement::Explain { statement, .. } => statement.as_mut(),
        other => other,
    };
    names::drop_constant_order_keys(query);
    names::alias_derived_names(query);
    names::distinct_on_positions(query);
    names::alias_ordinal_order_keys(query);
    names::alias_column_casts(query);
    names::alias_repeated_names(query);
    names::alias_mod_calls(query);
    names::inherit_named_windows(query);
    let _ = visit_expressions_mut(&mut stmt, |e| {
        // mod(a, b) is PostgreSQL's a % b (same sign rules).
        if let Expr::Function(f) = e
            && f.name.0.len() == 1
            && f.name.0[0]
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case("mod"))
            && let datafusion::sql::sqlparser::ast::FunctionArguments::List(list) = &f.args
            && list.args.len() == 2
            && list.duplicate_treatment.is_none()
            && list.clauses.is_empty()
            && let [
                datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                    datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(a),
                ),
                datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                    datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(b),
                ),
            ] = list.args.as_slice()
        {
            *e = Expr::Nested(Box::new(Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(a.clone()))),
                op: datafusion::sql::sqlparser::ast::BinaryOperator::Modulo,
                right: Box::new(Expr::Nested(Box::new(b.clone()))),
            }));
            return ControlFlow::Continue(());
        }
        // A `character(n)` value has no trailing spaces that count (see
        // `types::bpchar`), and `character` alone is `character(1)`.
        let cut = match e {
            Expr::Cast { data_type, .. } => match data_type {
                SqlType::Varchar(Some(CharacterLength::IntegerLength { length, .. }))
                | SqlType::CharacterVarying(Some(CharacterLength::IntegerLength {
                    length, ..
                })) => Some((*length, false)),
                SqlType::Char(Some(CharacterLength::IntegerLength { length, .. }))
                | SqlType::Character(Some(CharacterLength::IntegerLength { length, .. })) => {
                    Some((*length, true))
                }
                SqlType::Char(None) | SqlType::Character(None) => Some((1, true)),
                _ => None,
            },
            _ => None,
        };
        if let (Some((length, blank_padded)), Expr::Cast { expr, .. }) = (cut, &*e) {
            let left = format!("left(CAST(({expr}) AS TEXT), {length})");
            let sql = if blank_padded {
                format!("{}({left}, ' ')", crate::types::bpchar::CAST)
            } else {
                left
            };
            if let Ok(mut parser) = datafusion::sql::sqlparser::parser::Parser::new(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            )
            .try_with_sql(&sql)
                && let Ok(cut) = parser.parse_expr()
            {
                *e = cut;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    stmt
}

#[cfg(test)]
mod session_tests {
    use super::*;

    /// A connection's session owns its catalogs (with `pg_catalog`, which
    /// refers back to them): once the session is dropped nothing may keep
    /// them alive, or every closed connection leaks megabytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_session_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open_with(dir.path().to_str().unwrap(), HashMap::new())
            .await
            .unwrap();
        let session = engine.session();
        let catalogs = Arc::downgrade(&session.ctx.state().catalog_list().clone());
        let rows = session
            .ctx
            .sql("SELECT count(*) FROM pg_catalog.pg_type")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(rows[0].num_rows(), 1);
        drop(session);
        assert!(
            catalogs.upgrade().is_none(),
            "the session's catalogs outlive it"
        );
    }

    async fn run(session: &mut Session, sql: &str) -> Result<Output> {
        let mut stmts = session.parse(sql)?;
        assert_eq!(stmts.len(), 1, "{sql}");
        session
            .execute(stmts.remove(0), &ParamValues::List(vec![]))
            .await
    }

    /// DROP SCHEMA without CASCADE names what is in the schema by its kind,
    /// not the sequence a serial column owns (it goes with its table).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_schema_in_use_names_its_objects_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open_with(dir.path().to_str().unwrap(), HashMap::new())
            .await
            .unwrap();
        let mut s = engine.session();
        for sql in [
            "CREATE SCHEMA shop",
            "CREATE TABLE shop.customers (id serial PRIMARY KEY, email text)",
            "CREATE SEQUENCE shop.seq",
            "CREATE VIEW shop.v AS SELECT id FROM shop.customers",
        ] {
            run(&mut s, sql).await.unwrap();
        }
        let e = run(&mut s, "DROP SCHEMA shop").await.err().unwrap();
        assert_eq!(e.kind, ErrorKind::DependentObjects);
        let mut lines: Vec<&str> = e.detail.as_deref().unwrap().lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "sequence shop.seq depends on schema shop",
                "table shop.customers depends on schema shop",
                "view shop.v depends on schema shop",
            ]
        );
    }

    /// SAVEPOINT, ROLLBACK TO and RELEASE as PostgreSQL keeps them, and
    /// warnings only where a write that cannot be undone ran.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn savepoints_nest_and_warn_only_about_writes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open_with(dir.path().to_str().unwrap(), HashMap::new())
            .await
            .unwrap();
        let mut s = engine.session();
        run(&mut s, "CREATE TABLE t (a integer)").await.unwrap();
        let kind = |r: Result<Output>| r.err().map(|e| e.kind);
        assert_eq!(
            kind(run(&mut s, "SAVEPOINT a").await),
            Some(ErrorKind::NoActiveTransaction)
        );
        run(&mut s, "BEGIN").await.unwrap();
        run(&mut s, "SAVEPOINT a").await.unwrap();
        run(&mut s, "SELECT 1").await.unwrap();
        run(&mut s, "SAVEPOINT b").await.unwrap();
        run(&mut s, "INSERT INTO t VALUES (1)").await.unwrap();
        run(&mut s, "SAVEPOINT c").await.unwrap();
        s.take_notices();
        // Nothing written since c: no warning; the block stays usable.
        assert!(run(&mut s, "SELECT * FROM missing").await.is_err());
        assert_eq!(s.txn_state(), TxnState::Failed);
        run(&mut s, "ROLLBACK TO SAVEPOINT c").await.unwrap();
        assert_eq!(s.txn_state(), TxnState::InBlock);
        assert!(s.take_notices().is_empty());
        // The INSERT after b committed: ROLLBACK TO b says so, and c goes.
        run(&mut s, "ROLLBACK TO b").await.unwrap();
        let notices = s.take_notices();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(notices[0].contains("savepoint \"b\""), "{notices:?}");
        assert_eq!(
            kind(run(&mut s, "RELEASE c").await),
            Some(ErrorKind::InvalidSavepoint)
        );
        run(&mut s, "ROLLBACK TO a").await.unwrap();
        s.take_notices();
        // RELEASE a forgets a and b; the names are case-folded.
        run(&mut s, "RELEASE SAVEPOINT A").await.unwrap();
        assert_eq!(
            kind(run(&mut s, "ROLLBACK TO b").await),
            Some(ErrorKind::InvalidSavepoint)
        );
        run(&mut s, "ROLLBACK").await.unwrap();
        assert_eq!(s.take_notices().len(), 1, "ROLLBACK warns of the INSERT");
        // A block that only read ends without a warning.
        run(&mut s, "BEGIN").await.unwrap();
        run(&mut s, "SELECT count(*) FROM t").await.unwrap();
        run(&mut s, "ROLLBACK").await.unwrap();
        assert!(s.take_notices().is_empty());
    }
}
