//! The lake: where tables live, and how Delta tables are opened, cached and
//! created.
//!
//! ```text
//!  <lake>/_sluice/catalog      the catalog (itself a Delta table)
//!  <lake>/<schema>/<table>     one Delta table per SQL table
//! ```
//!
//! Open tables are cached and brought forward to the newest commit with
//! `update_incremental`, which only lists the log after the version we hold.
//! Each such update (and each commit of ours) adds the new commits' file
//! actions to the state as batches of their own, which every later scan,
//! write and conflict check walks: after [`RELOAD_AFTER`] of them the table
//! is read afresh from its newest checkpoint (soon after one was written, so
//! the fresh read is the checkpoint and a few commits), so the cost of
//! opening a table and the memory its state holds stay bounded however long
//! the server runs.
//! Every request to storage passes through [`io`], which counts it and, on
//! object stores, caches byte ranges of the immutable data files.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use datafusion::arrow::datatypes::Schema as ArrowSchema;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use url::Url;

use crate::error::{Error, ErrorKind, Result};

pub mod changes;
pub mod io;
mod keep_limit;
pub mod lease;
pub mod point;
mod stats;

/// Scan settings for reading Delta tables: DataFusion's own defaults. By
/// default delta-rs pushes a query's filter into the Parquet reader, which
/// then evaluates it row by row while decoding; that made filtered scans
/// about 3x slower than the same filter applied after decoding, as
/// DataFusion does for Parquet files (TPC-H q6 on lineitem).
static SCAN_DEFAULTS: LazyLock<Arc<datafusion::execution::SessionState>> =
    LazyLock::new(|| Arc::new(datafusion::execution::SessionStateBuilder::new().build()));

/// A DataFusion provider reading `table`'s snapshot.
/// Its scans carry column estimates from the Delta log ([`stats`]).
pub async fn provider(table: &DeltaTable) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    keyed_provider(table, Vec::new()).await
}

/// [`provider`] for a table whose rows are unique on each column set of
/// `keys` (its primary key and UNIQUE constraints). A scan whose filters
/// hold every column of one of them to a value keeps at most a row per
/// value, so it applies its filter while decoding and decodes the other
/// columns for those rows only.
pub async fn keyed_provider(
    table: &DeltaTable,
    keys: Vec<Vec<String>>,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    let delta = table
        .table_provider()
        .with_session(SCAN_DEFAULTS.clone())
        .await?;
    Ok(Arc::new(
        stats::WithStatistics::new(
            delta,
            stats::table_columns(table),
            (table.table_url().clone(), table.version()),
        )
        .with_keys(keys)
        .with_order(stats::file_order(table)),
    ))
}

/// The location of the Delta table a provider of [`provider`] reads.
pub(crate) fn provider_location(p: &dyn datafusion::catalog::TableProvider) -> Option<&url::Url> {
    p.downcast_ref::<stats::WithStatistics>()
        .map(|t| &t.snapshot.0)
}

/// A provider reading only the data files `paths` (relative to the table,
/// as its log writes them) of `table`'s snapshot: the rows some commits
/// added. It carries no table-wide estimates, which would be wrong for a
/// part of the table.
pub async fn provider_of_files(
    table: &DeltaTable,
    paths: Vec<String>,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    let delta = table
        .table_provider()
        .with_session(SCAN_DEFAULTS.clone())
        .with_file_paths(paths)
        .await?;
    Ok(delta)
}

/// The rows that changed in `table` after version `from` up to `to`, read
/// from its change data feed: inserted and deleted rows and both images of
/// updated ones, with the columns of `like` (the table's own provider), in
/// its order and types.
pub async fn provider_of_changes(
    table: &DeltaTable,
    from: i64,
    to: i64,
    like: &datafusion::arrow::datatypes::Schema,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast};
    let builder = table
        .clone()
        .scan_cdf()
        .with_starting_version((from + 1) as _)
        .with_ending_version(to as _);
    let feed = deltalake::delta_datafusion::DeltaCdfTableProvider::try_new(builder)?;
    let source = datafusion::datasource::provider_as_source(Arc::new(feed));
    let columns: Vec<Expr> = like
        .fields()
        .iter()
        .map(|f| {
            let column = Expr::Column(datafusion::common::Column::new_unqualified(f.name()));
            cast(column, f.data_type().clone()).alias(f.name())
        })
        .collect();
    let plan = LogicalPlanBuilder::scan("__sluice_changes", source, None)?
        .project(columns)?
        .build()?;
    Ok(Arc::new(datafusion::catalog::view::ViewTable::new(
        plan, None,
    )))
}

/// Turn on the change data feed of `table` (one commit of its properties),
/// unless it is on already; whether it committed. Later UPDATE, DELETE and
/// MERGE commits write the rows they change beside the data.
pub async fn enable_change_data_feed(lake: &Lake, table: &DeltaTable) -> Result<bool> {
    use deltalake::table::config::TablePropertiesExt;
    if table.snapshot()?.table_config().enable_change_data_feed() {
        return Ok(false);
    }
    let changed = table
        .clone()
        .set_tbl_properties()
        .with_properties(std::collections::HashMap::from([(
            "delta.enableChangeDataFeed".to_string(),
            "true".to_string(),
        )]))
        .with_raise_if_not_exists(false)
        .await?;
    lake.committed(&changed).await;
    Ok(true)
}

/// The actions of the commit that made `version` of `table`, one JSON
/// object each (`add`, `remove`, `commitInfo`, ...); `None` when the log
/// no longer keeps that entry.
pub async fn commit_actions(
    table: &DeltaTable,
    version: u64,
) -> Result<Option<Vec<serde_json::Value>>> {
    let Some(bytes) = table.log_store().read_commit_entry(version as _).await? else {
        return Ok(None);
    };
    Ok(Some(
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect(),
    ))
}

/// The `commitInfo` of the commit that made `table`'s version.
pub async fn last_commit_info(
    table: &DeltaTable,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let actions = commit_actions(table, table.version()?).await.ok()??;
    actions
        .into_iter()
        .find_map(|a| a.get("commitInfo").and_then(|i| i.as_object()).cloned())
}

/// How far back [`last_refresh_info`] looks.
const REFRESH_LOOKBACK: u64 = 16;

/// The `commitInfo` of the newest of the last few commits of `table` that
/// a refresh made (it has `sluice.refresh`): a commit that only changed
/// table properties (turning on the change data feed when a view comes to
/// read this one) or compacted files does not hide what the last refresh
/// consumed.
pub async fn last_refresh_info(
    table: &DeltaTable,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let newest = table.version()?;
    for version in (newest.saturating_sub(REFRESH_LOOKBACK)..=newest).rev() {
        let Ok(Some(actions)) = commit_actions(table, version).await else {
            continue;
        };
        let info = actions
            .into_iter()
            .find_map(|a| a.get("commitInfo").and_then(|i| i.as_object()).cloned());
        if let Some(info) = info
            && info.contains_key("sluice.refresh")
        {
            return Some(info);
        }
    }
    None
}

/// The table location and version `provider` reads when it is one pinned
/// snapshot of a Delta table (made by [`provider`]): what it returns
/// changes only with that table's version.
pub fn snapshot_of(
    provider: &dyn datafusion::catalog::TableProvider,
) -> Option<(Url, Option<u64>)> {
    provider
        .downcast_ref::<stats::WithStatistics>()
        .map(|p| p.snapshot.clone())
}

/// The column sets no two rows of `provider`'s table share (its primary
/// key and UNIQUE constraints), when it is a Delta table made by
/// [`keyed_provider`].
pub fn keys_of(provider: &dyn datafusion::catalog::TableProvider) -> Option<&[Vec<String>]> {
    provider
        .downcast_ref::<stats::WithStatistics>()
        .map(|p| p.keys.as_slice())
}

/// Which snapshot of a table to read.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeTravel {
    Version(i64),
    /// RFC 3339 or `YYYY-MM-DD HH:MM:SS[.f]` (taken as UTC).
    Timestamp(String),
}

pub struct Lake {
    root: Url,
    storage_options: HashMap<String, String>,
    /// Each open table's newest state we know, and when we last asked
    /// storage for a newer one.
    tables: Mutex<HashMap<Url, Cached>>,
    /// How long a table state read from storage counts as current.
    freshness: Duration,
    /// Whether a local table's log folder time may stand for a listing
    /// ([`log_stamp`]): on a local lake, unless `SLUICE_FRESHNESS_MS` says
    /// how fresh to be (a network file system may cache a folder's time).
    folder_times: bool,
}

crate::send_sync::send_sync_by_fields!(Lake {
    root,
    storage_options,
    tables,
    freshness,
    folder_times
});

/// Incremental updates a cached table state takes before it is read afresh,
/// once its version is at most [`RELOAD_WINDOW`] commits past a checkpoint
/// (Delta writes one every `delta.checkpointInterval` commits, 100 by
/// default), or in any case after four times as many. Measured on a local
/// lake (release build, a two-column table taking one-row inserts): each
/// update left about 0.1 ms of work on every later statement on the table
/// (an insert took 17 ms at first, 140 ms after 1,200 inserts), and a fresh
/// read from a checkpoint costs a few milliseconds (on S3, a few requests).
pub const RELOAD_AFTER: u32 = 64;
const RELOAD_WINDOW: u64 = 8;

/// A table's newest state we know.
struct Cached {
    table: DeltaTable,
    /// When we last asked storage for a newer one.
    checked: Instant,
    /// Updates since it was read afresh.
    updates: u32,
    /// On a local lake, the modification time of the table's log folder
    /// taken before the log was listed ([`log_stamp`]).
    stamp: Option<SystemTime>,
}

impl Cached {
    /// Current enough to serve without asking storage: asked within the
    /// window, or, on a local lake, the log folder is as it was when it
    /// was listed.
    fn fresh(&self, window: Duration, url: &Url) -> bool {
        let unchanged = || self.stamp.is_some() && log_stamp(url) == self.stamp;
        (self.checked.elapsed() < window || unchanged()) && !reload_due(&self.table, self.updates)
    }
}

/// How long after its last change a log folder's modification time is
/// trusted to tell every later change. A commit adds a file to the folder,
/// which sets its time; but the time has the file system's granularity
/// (a clock tick, or up to two seconds on some file systems), so a commit
/// in the same tick as the previous change would leave it as it was.
const STAMP_SETTLED: Duration = Duration::from_secs(2);

/// The modification time of the log folder of the local table at `url`,
/// if it last changed at least [`STAMP_SETTLED`] ago: then any later
/// commit gives it another time. `None` for other stores and for a folder
/// that changed since (its listing is read as before).
fn log_stamp(url: &Url) -> Option<SystemTime> {
    if url.scheme() != "file" {
        return None;
    }
    let log = url.to_file_path().ok()?.join("_delta_log");
    let modified = std::fs::metadata(log).ok()?.modified().ok()?;
    let age = SystemTime::now().duration_since(modified).ok()?;
    (age >= STAMP_SETTLED).then_some(modified)
}

/// Is it time to read `table`, `updates` updates after it was read afresh,
/// afresh again (see [`RELOAD_AFTER`])?
fn reload_due(table: &DeltaTable, updates: u32) -> bool {
    use deltalake::table::config::TablePropertiesExt as _;
    if updates < RELOAD_AFTER {
        return false;
    }
    if updates >= 4 * RELOAD_AFTER {
        return true;
    }
    let (Some(version), Ok(snapshot)) = (table.version(), table.snapshot()) else {
        return true;
    };
    let interval = snapshot.table_config().checkpoint_interval().get();
    // Checkpoints are written at the versions v with (v + 1) % interval == 0.
    (version + 1) % interval < RELOAD_WINDOW
}

/// How long a table's state, once read, is taken as the newest without
/// asking storage again: `SLUICE_FRESHNESS_MS`, by default 0 for local
/// lakes (asking is a look at the log folder's time, or a listing; see
/// [`log_stamp`]) and 1 s for object stores (a LIST request). Commits made
/// by this process are known at once, whatever the window; commits by
/// others are seen at most this much later.
fn freshness_for(root: &Url) -> Result<Duration> {
    if let Ok(v) = std::env::var("SLUICE_FRESHNESS_MS") {
        let ms: u64 = v.trim().parse().map_err(|_| {
            Error::new(
                ErrorKind::InvalidParameter,
                format!("SLUICE_FRESHNESS_MS must be a number of milliseconds, not \"{v}\""),
            )
        })?;
        return Ok(Duration::from_millis(ms));
    }
    Ok(match root.scheme() {
        "file" | "memory" => Duration::ZERO,
        _ => Duration::from_secs(1),
    })
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("root", &self.root.as_str())
            .finish()
    }
}

impl Lake {
    /// Open a lake from a path, `file://` URL, `s3://bucket/prefix` or
    /// `memory://`.
    pub fn open(spec: &str) -> Result<Arc<Lake>> {
        Lake::open_with(spec, HashMap::new())
    }

    /// Open a lake with storage options (from the config file) that win
    /// over the `AWS_*` environment variables.
    pub fn open_with(
        spec: &str,
        mut storage_options: HashMap<String, String>,
    ) -> Result<Arc<Lake>> {
        io::register(io::cache_mb_from_env()?);
        let root = if spec.contains("://") {
            let mut u = Url::parse(spec).map_err(|e| {
                Error::new(ErrorKind::InvalidParameter, format!("lake URL {spec}: {e}"))
            })?;
            if u.scheme() == "file" {
                std::fs::create_dir_all(u.path())?;
            }
            if !u.path().ends_with('/') {
                let p = format!("{}/", u.path());
                u.set_path(&p);
            }
            u
        } else {
            std::fs::create_dir_all(spec)?;
            let abs = std::fs::canonicalize(spec)?;
            Url::from_directory_path(&abs).map_err(|_| {
                Error::new(ErrorKind::InvalidParameter, format!("bad lake path {spec}"))
            })?
        };
        if matches!(root.scheme(), "s3" | "s3a") {
            // Commits are conditional writes, whatever the environment
            // says: an unsafe rename lets two writers overwrite each other.
            storage_options.insert("AWS_S3_ALLOW_UNSAFE_RENAME".into(), "false".into());
            // A statement waits a bounded time for storage that does not
            // answer (object_store's own default is about a minute of
            // retries per request); the config file can say otherwise.
            for (key, default) in [("max_retries", "3"), ("retry_timeout", "15s")] {
                if !storage_options.keys().any(|k| k.eq_ignore_ascii_case(key)) {
                    storage_options.insert(key.into(), default.into());
                }
            }
        }
        let freshness = freshness_for(&root)?;
        let folder_times =
            root.scheme() == "file" && std::env::var_os("SLUICE_FRESHNESS_MS").is_none();
        Ok(Arc::new(Lake {
            root,
            storage_options,
            tables: Mutex::new(HashMap::new()),
            freshness,
            folder_times,
        }))
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The lake's storage options that also apply to `url`: those of an
    /// S3 lake, for files in the lake's bucket.
    pub fn options_for(&self, url: &Url) -> &HashMap<String, String> {
        static NONE: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();
        let same_bucket = matches!(url.scheme(), "s3" | "s3a")
            && matches!(self.root.scheme(), "s3" | "s3a")
            && url.host_str() == self.root.host_str();
        if same_bucket {
            &self.storage_options
        } else {
            NONE.get_or_init(HashMap::new)
        }
    }

    /// Location of a table, relative to the lake root (`raw/orders`).
    pub fn url_for(&self, relative: &str) -> Result<Url> {
        let rel = if relative.ends_with('/') {
            relative.to_string()
        } else {
            format!("{relative}/")
        };
        self.root
            .join(&rel)
            .map_err(|e| Error::internal(format!("bad table location {relative}: {e}")))
    }

    fn builder(&self, url: &Url) -> Result<DeltaTableBuilder> {
        Ok(DeltaTableBuilder::from_url(url.clone())?
            .with_storage_options(self.storage_options.clone()))
    }

    /// The newest committed state of the table at `url`, as of at most the
    /// lake's freshness window ago.
    pub async fn table(&self, url: &Url) -> Result<DeltaTable> {
        if let Some(c) = self.tables.lock().unwrap().get(url)
            && c.fresh(self.freshness, url)
        {
            return Ok(c.table.clone());
        }
        self.table_now(url).await
    }

    /// [`Lake::table`] for a query: when storage cannot be reached, a
    /// table read before is served at the version last seen (a consistent
    /// snapshot, as a lagging replica would), so queries on data this
    /// server holds keep working through an outage. Writes use
    /// [`Lake::table`] and fail.
    pub async fn table_for_read(&self, url: &Url) -> Result<DeltaTable> {
        let cached = match self.tables.lock().unwrap().get(url) {
            Some(c) if c.fresh(self.freshness, url) => return Ok(c.table.clone()),
            Some(c) => Some((c.table.clone(), c.updates)),
            None => None,
        };
        match self.ask_storage(url, cached.clone()).await {
            Ok(t) => Ok(t),
            Err((e, true)) => match cached {
                Some((t, _)) => {
                    self.warn_outage(url, &e);
                    Ok(t)
                }
                None => Err(e),
            },
            Err((e, false)) => Err(e),
        }
    }

    /// The newest committed state of the table at `url`, asking storage.
    pub async fn table_now(&self, url: &Url) -> Result<DeltaTable> {
        let cached = self
            .tables
            .lock()
            .unwrap()
            .get(url)
            .map(|c| (c.table.clone(), c.updates));
        self.ask_storage(url, cached).await.map_err(|(e, _)| e)
    }

    /// Read the table's log from storage (from `cached`, a state and its
    /// updates since a fresh read, on; afresh past [`RELOAD_AFTER`]); on
    /// failure, also whether storage could not be reached at all.
    async fn ask_storage(
        &self,
        url: &Url,
        cached: Option<(DeltaTable, u32)>,
    ) -> std::result::Result<DeltaTable, (Error, bool)> {
        let fail = |e: deltalake::DeltaTableError| {
            let unreachable = storage_unreachable(&e);
            (open_error(url, e), unreachable)
        };
        // Taken before the listing: a commit after it changes the folder.
        let stamp = if self.folder_times {
            log_stamp(url)
        } else {
            None
        };
        let (table, updates) = match cached {
            Some((mut t, updates)) if !reload_due(&t, updates) => {
                let before = t.version();
                t.update_incremental(None).await.map_err(fail)?;
                let grew = t.version() != before;
                (t, updates + u32::from(grew))
            }
            _ => (
                self.builder(url)
                    .map_err(|e| (e, false))?
                    .load()
                    .await
                    .map_err(fail)?,
                0,
            ),
        };
        self.keep(&table, Some(updates), stamp);
        Ok(table)
    }

    /// Log, at most once a minute, that reads are served from what this
    /// server holds.
    fn warn_outage(&self, url: &Url, e: &Error) {
        static LAST: Mutex<Option<Instant>> = Mutex::new(None);
        let mut last = LAST.lock().unwrap();
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            tracing::warn!(
                "storage of {} cannot be reached; reads use the versions this server holds \
                 (first: {url}): {}",
                self.root,
                e.message
            );
        }
    }

    /// The table at `url` as it was at a past version or time.
    pub async fn table_at(&self, url: &Url, at: &TimeTravel) -> Result<DeltaTable> {
        let mut table = self.builder(url)?.build()?;
        match at {
            TimeTravel::Version(v) => {
                if *v < 0 {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        format!("version {v} is negative"),
                    ));
                }
                table.load_version(*v as u64).await.map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidParameter,
                        format!("cannot read version {v} of table: {e}"),
                    )
                })?;
            }
            TimeTravel::Timestamp(ts) => {
                let dt = parse_timestamp(ts)?;
                table.load_with_datetime(dt).await.map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidParameter,
                        format!("cannot read table as of {ts}: {e}"),
                    )
                })?;
            }
        }
        Ok(table)
    }

    /// Keep a table state we produced (after a commit) so the next open is cheap.
    pub fn remember(&self, table: &DeltaTable) {
        self.keep(table, None, None);
    }

    /// Keep `table` unless we hold a newer state; `updates` since it was
    /// read afresh, or (`None`) one more than the state it replaces had;
    /// `stamp`, the log folder's time taken before its log was listed.
    fn keep(&self, table: &DeltaTable, updates: Option<u32>, stamp: Option<SystemTime>) {
        if table.version().is_some() {
            let url = table.table_url().clone();
            let mut tables = self.tables.lock().unwrap();
            let held = tables.get(&url);
            let newer = held
                .and_then(|c| c.table.version())
                .is_none_or(|v| Some(v) <= table.version());
            if newer {
                // A state of the same version adds no update.
                let updates = updates.unwrap_or_else(|| {
                    held.map_or(0, |c| {
                        let grew = c.table.version() != table.version();
                        c.updates.saturating_add(u32::from(grew))
                    })
                });
                let cached = Cached {
                    table: table.clone(),
                    checked: Instant::now(),
                    updates,
                    stamp,
                };
                tables.insert(url, cached);
            }
        }
    }

    /// After a commit of ours: remember the new state and, when the commit
    /// made a checkpoint, remove log entries past the table's retention
    /// (what delta-rs would otherwise do after every commit, at the cost of
    /// listing the whole log each time; see `write::commit_properties`).
    pub async fn committed(&self, table: &DeltaTable) {
        use deltalake::table::config::TablePropertiesExt as _;
        self.remember(table);
        let Some(version) = table.version() else {
            return;
        };
        let Ok(snapshot) = table.snapshot() else {
            return;
        };
        let config = snapshot.table_config();
        let checkpointed = (version + 1).is_multiple_of(config.checkpoint_interval().get());
        if checkpointed && config.enable_expired_log_cleanup() {
            // Cleanup is housekeeping: the commit stands either way.
            if let Err(e) = deltalake::protocol::checkpoints::cleanup_metadata(table, None).await {
                tracing::warn!(table = %table.table_url(), "log cleanup failed: {e}");
            }
        }
    }

    pub fn forget(&self, url: &Url) {
        self.tables.lock().unwrap().remove(url);
    }

    /// Does a Delta table exist at `url`?
    pub async fn exists(&self, url: &Url) -> Result<bool> {
        let table = self.builder(url)?.build()?;
        Ok(table.verify_deltatable_existence().await?)
    }

    /// Create an empty Delta table with the given Arrow schema.
    pub async fn create(
        &self,
        url: &Url,
        schema: &ArrowSchema,
        partition_by: &[String],
        name: &str,
    ) -> Result<DeltaTable> {
        self.create_with_checks(url, schema, partition_by, name, &[])
            .await
    }

    /// [`Lake::create`] with CHECK constraints stored as Delta's
    /// `delta.constraints.<name>` (`(name, condition)`), which other Delta
    /// writers enforce; they need writer version 3.
    pub async fn create_with_checks(
        &self,
        url: &Url,
        schema: &ArrowSchema,
        partition_by: &[String],
        name: &str,
        checks: &[(String, String)],
    ) -> Result<DeltaTable> {
        let kernel: StructType = schema.try_into_kernel().map_err(|e| {
            Error::new(
                ErrorKind::DatatypeMismatch,
                format!("cannot store schema in Delta: {e}"),
            )
        })?;
        let mut builder = deltalake::operations::create::CreateBuilder::new()
            .with_location(url.as_str())
            .with_storage_options(self.storage_options.clone())
            .with_table_name(name)
            .with_columns(kernel.fields().cloned());
        if !partition_by.is_empty() {
            builder = builder.with_partition_columns(partition_by.to_vec());
        }
        if !checks.is_empty() {
            let mut config = vec![("delta.minWriterVersion".to_string(), Some("3".to_string()))];
            for (n, sql) in checks {
                config.push((format!("delta.constraints.{n}"), Some(sql.clone())));
            }
            builder = builder
                .with_configuration(config)
                .with_raise_if_key_not_exists(false);
        }
        let table = builder.await?;
        self.remember(&table);
        Ok(table)
    }

    /// The object store the lake lives in, and the path of `url` in it
    /// (for small records of the lake's own, such as scheduler leases).
    pub fn store_for(
        &self,
        url: &Url,
    ) -> Result<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)> {
        if !url.as_str().starts_with(self.root.as_str()) {
            return Err(Error::internal(format!("{url} is not inside the lake")));
        }
        let table = self.builder(url)?.build()?;
        let store = table.log_store().root_object_store(None);
        Ok((
            store,
            object_store::path::Path::from(url.path().trim_matches('/')),
        ))
    }

    /// Remove every object under a table's location (DROP TABLE).
    pub async fn remove_all(&self, url: &Url) -> Result<()> {
        self.forget(url);
        // Never reach outside the lake, and never the lake root itself.
        if !url.as_str().starts_with(self.root.as_str()) || url.as_str() == self.root.as_str() {
            return Err(Error::internal(format!(
                "refusing to remove {url}: not a table location inside the lake"
            )));
        }
        if url.scheme() == "file" {
            let path = url
                .to_file_path()
                .map_err(|_| Error::internal(format!("bad table location {url}")))?;
            return match std::fs::remove_dir_all(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        let table = self.builder(url)?.build()?;
        let store = table.log_store().root_object_store(None);
        let prefix = object_store::path::Path::from(url.path().trim_matches('/'));
        let files: Vec<_> = store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        for f in files {
            match store.delete(&f).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::new(ErrorKind::Io, e.to_string())),
            }
        }
        Ok(())
    }
}

/// Did a read of a table's log fail because storage did not answer (a
/// refused or dropped connection, a timeout, a 5xx), rather than because
/// of what it answered (no such table, a log that does not parse)?
fn storage_unreachable(e: &deltalake::DeltaTableError) -> bool {
    use deltalake::DeltaTableError as D;
    if let D::ObjectStore {
        source: object_store::Error::Generic { .. },
    } = e
    {
        return true;
    }
    // Wrapped (the kernel's log reads): told by what the client said.
    let text = e.to_string().to_ascii_lowercase();
    [
        "error sending request",
        "connection refused",
        "connection reset",
        "timed out",
        "operation timed out",
    ]
    .iter()
    .any(|m| text.contains(m))
}

fn open_error(url: &Url, e: deltalake::DeltaTableError) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("cannot open Delta table at {url}: {e}"),
    )
}

/// Parse a time-travel timestamp. Without a zone it is UTC.
pub fn parse_timestamp(ts: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let t = ts.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Ok(dt.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap().and_utc());
    }
    Err(Error::new(
        ErrorKind::InvalidText,
        format!("invalid input syntax for type timestamp: \"{ts}\""),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_in_common_spellings() {
        assert!(parse_timestamp("2026-11-01 00:00:00").is_ok());
        assert!(parse_timestamp("2026-11-01T00:00:00Z").is_ok());
        assert!(parse_timestamp("2026-11-01 10:00:00.5+02").is_ok());
        assert!(parse_timestamp("2026-11-01").is_ok());
        assert!(parse_timestamp("yesterday-ish").is_err());
    }
}
