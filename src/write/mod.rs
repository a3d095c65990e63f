//! The one write path: every statement that changes a table's rows goes
//! through here, and so does everything else that writes (COPY, CTAS,
//! refreshes).
//!
//! ```text
//!  handler (INSERT, UPDATE, DELETE, MERGE, COPY, CTAS, ...)
//!     │  rows as a plan, predicates and assignments as syntax trees
//!     ▼
//!  write::{append, overwrite, update, delete, merge}
//!     │  the table's rules: defaults, casts, NOT NULL, CHECK, keys,
//!     │  foreign keys (and their ON DELETE actions), expectations with
//!     │  quarantine and results
//!     ▼
//!  one Delta commit (optionally an application transaction), an Outcome
//! ```
//!
//! A write reads the table at one snapshot (its [`Target`]) and commits on
//! top of it, so a concurrent commit is detected by Delta instead of
//! silently overwritten.

pub mod append;
mod expectations;
mod references;
mod rules;
mod target;

pub mod delete;
pub mod generated;
pub mod merge;
pub mod sequences;
pub mod update;

use std::sync::Arc;

use datafusion::logical_expr::{Expr as DfExpr, LogicalPlan};
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::lake::Lake;

pub use append::Append;
pub use expectations::{ExpectRecord, Expected, Pending, Run, expectations_before};
pub use merge::{GroupMerge, merge_groups};
pub use references::{delete_references, referencing};
pub use rules::{builder_refuses, conform, has_subquery, new_row, store_expr};
pub use target::{Target, copy_columns};

/// The single table a generated UPDATE or DELETE targets, with its alias.
fn single_target(
    t: &datafusion::sql::sqlparser::ast::TableWithJoins,
) -> Result<(datafusion::sql::sqlparser::ast::ObjectName, Option<String>)> {
    use datafusion::sql::sqlparser::ast::TableFactor;
    match &t.relation {
        TableFactor::Table { name, alias, .. } if t.joins.is_empty() => Ok((
            name.clone(),
            alias
                .as_ref()
                .map(|a| crate::frontend::names::normalize_ident(&a.name)),
        )),
        _ => Err(crate::error::Error::internal(
            "a generated statement targets one table",
        )),
    }
}

/// What a write needs from the engine: a context that plans the queries
/// it runs (it sees the lake's tables), the lake and the catalog.
#[derive(Clone)]
pub struct WriteContext {
    pub ctx: SessionContext,
    pub lake: Arc<Lake>,
    pub catalog: Arc<Catalog>,
}

crate::send_sync::send_sync_by_fields!(WriteContext { ctx, lake, catalog });

/// `e`, planned over the output of `input`, with the operators and
/// comparisons whose meaning depends on a column's declared type (jsonb's
/// `||`, the documents JSON builders embed, character(n) comparisons)
/// settled by the analyzer rules that trace those types through `input`.
/// delta-rs plans the expressions it is given again over rows of its own,
/// where the declared types cannot be traced.
pub fn declared_types(
    state: &datafusion::execution::SessionState,
    e: DfExpr,
    input: &LogicalPlan,
) -> Result<DfExpr> {
    analyzed_with(
        state,
        e,
        input,
        &[
            "sluice_jsonb_operators",
            "sluice_json_arguments",
            "sluice_char_semantics",
        ],
    )
}

/// `e`, planned over the output of `input`, rewritten by the analyzer
/// rules named `rules`.
pub fn analyzed_with(
    state: &datafusion::execution::SessionState,
    e: DfExpr,
    input: &LogicalPlan,
    rules: &[&str],
) -> Result<DfExpr> {
    let mut plan = LogicalPlan::Projection(datafusion::logical_expr::Projection::try_new(
        vec![e.clone()],
        Arc::new(input.clone()),
    )?);
    for rule in state
        .analyzer()
        .rules
        .iter()
        .filter(|r| rules.contains(&r.name()))
    {
        plan = rule.analyze(plan, state.config_options())?;
    }
    match plan {
        LogicalPlan::Projection(p) if p.expr.len() == 1 => {
            Ok(p.expr.into_iter().next().expect("one").unalias())
        }
        _ => Ok(e),
    }
}

/// A Delta application transaction: the writer `app_id` has applied its
/// input up to `version`. A write that carries one commits only if the
/// table has not seen that writer at this version or later already, so a
/// retried or concurrent writer never applies the same input twice.
#[derive(Debug, Clone, PartialEq)]
pub struct AppTransaction {
    pub app_id: String,
    pub version: i64,
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The table after the commit.
    pub table: DeltaTable,
    /// The version the commit produced.
    pub version: i64,
    /// Rows the statement affected (written, updated or deleted).
    pub rows: usize,
    pub files_added: usize,
    pub bytes_added: u64,
}

impl Outcome {
    /// The outcome of the commit that produced `table`, read from that
    /// commit (its operation metrics and added files), with `rows` when
    /// the caller counted them itself.
    pub async fn of(table: DeltaTable, rows: Option<usize>) -> Outcome {
        let commit = Commit::read(&table).await.unwrap_or_default();
        let metric = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| commit.metrics.get(*k).and_then(|v| v.as_u64()))
                .unwrap_or(0)
        };
        let rows = rows.unwrap_or_else(|| metric(&["num_added_rows", "numOutputRows"]) as usize);
        crate::metrics::written(rows as u64, commit.bytes_added);
        Outcome {
            version: table.version().unwrap_or(0) as i64,
            files_added: commit.files_added,
            bytes_added: commit.bytes_added,
            table,
            rows,
        }
    }
}

/// What one commit recorded.
#[derive(Debug, Default)]
pub struct Commit {
    /// Its `commitInfo`: timestamp, operation, metrics, our metadata.
    pub info: serde_json::Map<String, serde_json::Value>,
    metrics: serde_json::Map<String, serde_json::Value>,
    files_added: usize,
    bytes_added: u64,
}

impl Commit {
    /// The commit that produced `table`, read from its one log entry (one
    /// GET, no listing).
    pub async fn read(table: &DeltaTable) -> Option<Commit> {
        let actions = crate::lake::commit_actions(table, table.version()?)
            .await
            .ok()??;
        let mut commit = Commit::default();
        for action in actions {
            if let Some(add) = action.get("add") {
                commit.files_added += 1;
                commit.bytes_added += add.get("size").and_then(|s| s.as_u64()).unwrap_or(0);
            } else if let Some(info) = action.get("commitInfo").and_then(|i| i.as_object()) {
                if let Some(m) = info.get("operationMetrics").and_then(|m| m.as_object()) {
                    commit.metrics = m.clone();
                }
                commit.info = info.clone();
            }
        }
        Some(commit)
    }
}

/// Add `batch` to the Delta table of `table` (created on first use), or
/// replace its rows with it, in one commit. Writers racing on a system
/// table (every server records its runs and expectation results) retry.
pub async fn write_system_table(
    lake: &crate::lake::Lake,
    table: &crate::catalog::system::SystemTable,
    batch: datafusion::arrow::array::RecordBatch,
    overwrite: bool,
) -> crate::error::Result<()> {
    let url = lake.url_for(table.location)?;
    let mode = if overwrite {
        deltalake::protocol::SaveMode::Overwrite
    } else {
        deltalake::protocol::SaveMode::Append
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let delta = if lake.exists(&url).await? {
            lake.table_now(&url).await?
        } else {
            match lake.create(&url, &(table.schema)(), &[], table.name).await {
                Ok(t) => t,
                // Created by another writer meanwhile.
                Err(_) => lake.table_now(&url).await?,
            }
        };
        // A table written by an older Sluice gains the columns added
        // since; only then does the commit change the table's metadata
        // (which concurrent appends would conflict with).
        let has_all = delta.snapshot().is_ok_and(|s| {
            let have = s.snapshot().arrow_schema();
            batch
                .schema()
                .fields()
                .iter()
                .all(|f| have.field_with_name(f.name()).is_ok())
        });
        let mut write = delta
            .write(vec![batch.clone()])
            .with_save_mode(mode)
            .with_commit_properties(commit_properties());
        if !has_all {
            write = write.with_schema_mode(deltalake::operations::write::SchemaMode::Merge);
        }
        match write.await {
            Ok(written) => {
                lake.committed(&written).await;
                return Ok(());
            }
            Err(e) => {
                let e = crate::error::Error::from(e);
                if e.kind == crate::error::ErrorKind::SerializationFailure && attempt < 10 {
                    continue;
                }
                return Err(e);
            }
        }
    }
}

/// Commit settings for writes: a commit that loses the race for a version
/// checks the winners for conflicts and tries again. Appends never
/// conflict, so with many writers they need more attempts than delta-rs'
/// default 15 to get through. Expired log entries are cleaned up when a
/// checkpoint is written ([`Lake::committed`]), not after every commit.
pub fn commit_properties() -> deltalake::kernel::transaction::CommitProperties {
    deltalake::kernel::transaction::CommitProperties::default()
        .with_max_retries(1000)
        .with_cleanup_expired_logs(Some(false))
}

/// Most rows in one Parquet data page of the files Sluice writes. A scan
/// with a selective filter decodes only the pages the file's page index
/// keeps: at Parquet's default of 20,000 rows a lookup by key decoded a
/// fifth of a 100,000-row file.
pub const DATA_PAGE_ROWS: usize = 4096;

/// Largest dictionary page of a column chunk; past it the writer stores
/// the chunk's further values plainly. Every reader of a page loads its
/// chunk's dictionary whole, so a column of mostly distinct values
/// (names, comments, ids) made a lookup of one row decode up to a
/// megabyte, Parquet's default. A column of a few thousand distinct
/// values keeps its dictionary whole.
pub const DICTIONARY_PAGE_BYTES: usize = 128 * 1024;

/// How every writer of Sluice lays out Parquet files: `compression` (what
/// delta-rs chooses: Snappy for writes, ZSTD for compaction), pages of at
/// most [`DATA_PAGE_ROWS`] rows, dictionaries of at most
/// [`DICTIONARY_PAGE_BYTES`], and none for `unique` columns (each a key
/// of its own): values that never repeat gain nothing from one.
pub fn writer_properties(
    compression: deltalake::parquet::basic::Compression,
    unique: &[String],
) -> deltalake::parquet::file::properties::WriterProperties {
    let mut builder = deltalake::parquet::file::properties::WriterProperties::builder()
        .set_compression(compression)
        .set_data_page_row_count_limit(DATA_PAGE_ROWS)
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES);
    for column in unique {
        builder = builder.set_column_dictionary_enabled(
            deltalake::parquet::schema::types::ColumnPath::from(column.as_str()),
            false,
        );
    }
    builder.build()
}

/// [`writer_properties`] of the files a write (not a compaction) adds to a
/// table whose `unique` columns are keys of their own.
pub fn data_file_properties(
    unique: &[String],
) -> deltalake::parquet::file::properties::WriterProperties {
    writer_properties(deltalake::parquet::basic::Compression::SNAPPY, unique)
}

/// [`commit_properties`] recording `txns` (none, one per writer, or one
/// per file a COPY loaded).
pub fn commit_properties_with(
    txns: &[AppTransaction],
) -> deltalake::kernel::transaction::CommitProperties {
    commit_properties().with_application_transactions(
        txns.iter()
            .map(|t| deltalake::kernel::Transaction::new(&t.app_id, t.version))
            .collect(),
    )
}

/// The version of `app_id` the table last recorded, if any.
pub async fn applied_version(table: &DeltaTable, app_id: &str) -> Result<Option<i64>> {
    let snapshot = table.snapshot()?;
    Ok(snapshot
        .transaction_version(table.log_store().as_ref(), app_id)
        .await?)
}

/// Whether `table` has every one of `txns` applied already (a retried
/// write); an error when it has some of them only.
pub async fn already_applied(table: &DeltaTable, txns: &[AppTransaction]) -> Result<bool> {
    if table.version().is_none() || txns.is_empty() {
        return Ok(false);
    }
    let mut applied = 0;
    for t in txns {
        if applied_version(table, &t.app_id)
            .await?
            .is_some_and(|v| v >= t.version)
        {
            applied += 1;
        }
    }
    if applied > 0 && applied < txns.len() {
        return Err(crate::error::Error::new(
            crate::error::ErrorKind::SerializationFailure,
            "part of this write was already applied by the same writer; nothing was written",
        ));
    }
    Ok(applied == txns.len())
}

/// Record `txns` and `metadata` in a commit without data: a write whose
/// input changed no row still marks that input consumed.
pub async fn record_transactions(
    lake: &Lake,
    table: &DeltaTable,
    txns: &[AppTransaction],
    metadata: Vec<(String, serde_json::Value)>,
) -> Result<DeltaTable> {
    use deltalake::kernel::transaction::CommitBuilder;
    use deltalake::protocol::DeltaOperation;
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: None,
        predicate: None,
    };
    CommitBuilder::from(commit_properties_with(txns).with_metadata(metadata))
        .build(Some(table.snapshot()?), table.log_store(), operation)
        .await?;
    let table = lake.table_now(table.table_url()).await?;
    lake.committed(&table).await;
    Ok(table)
}

/// How [`write_plan`] writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub partition_by: Vec<String>,
    /// Replace the table's schema with the plan's (an overwrite that
    /// renames columns); otherwise the schema must match.
    pub new_schema: bool,
    pub txns: Vec<AppTransaction>,
    /// Recorded in the commit's `commitInfo` (what a refresh did, say).
    pub metadata: Vec<(String, serde_json::Value)>,
    /// Columns each a key of its own ([`writer_properties`]).
    pub unique_columns: Vec<String>,
}

/// Stream `plan` into `table` (created by this write when it has no state
/// yet) in one commit. Everything is owned, so the write can run as a task
/// of its own while its input is still arriving (COPY).
pub async fn write_plan(
    state: datafusion::execution::SessionState,
    lake: Arc<Lake>,
    table: DeltaTable,
    plan: LogicalPlan,
    mode: SaveMode,
    options: WriteOptions,
) -> Result<Outcome> {
    if already_applied(&table, &options.txns).await? {
        // A retry of a write the table already has: nothing to do.
        return Ok(Outcome {
            version: table.version().unwrap_or(0) as i64,
            table,
            rows: 0,
            files_added: 0,
            bytes_added: 0,
        });
    }
    let mut builder = table
        .write(vec![])
        .with_input_plan(plan)
        .with_save_mode(mode)
        .with_writer_properties(data_file_properties(&options.unique_columns))
        .with_session_state(Arc::new(state))
        .with_commit_properties(
            commit_properties_with(&options.txns).with_metadata(options.metadata),
        );
    if !options.partition_by.is_empty() {
        builder = builder.with_partition_columns(options.partition_by);
    }
    if options.new_schema {
        builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
    }
    let written = builder.await?;
    lake.committed(&written).await;
    Ok(Outcome::of(written, None).await)
}
