//! Column statistics for planning Delta scans.
//!
//! delta-rs gives a scan the row count and size of its files, but column
//! statistics only for the columns of a pushed-down filter. DataFusion
//! estimates joins from those column statistics (the distinct values of a
//! key from its range), so without them a join of two unfiltered tables is
//! estimated badly and can pick the wrong build side. TPC-H q18 hashed the
//! 1.5M-row join of orders and lineitem instead of the 57 keys of its
//! `IN (subquery)`.
//!
//! The Delta log holds each file's minimum and maximum per column.
//! [`WithStatistics`] folds them into one estimate per column and
//! fills the scan's statistics with it. The values are marked inexact, so
//! they steer estimates only: a Delta writer may truncate string bounds,
//! and nothing is ever answered from them.
//!
//! The provider also knows the table's keys: a scan whose filters hold a
//! key to a value keeps at most one row, so it filters while decoding
//! (`crate::engine::late_filter` explains why other scans do not).
//!
//! And it reads a table's files in the order they were added (their
//! modification times in the log): a query without ORDER BY over a table
//! that fits one scan partition gives its rows in the order they were
//! inserted, and `string_agg` / `array_agg` without ORDER BY collect them
//! so, as PostgreSQL's heap order does for a table that was only appended
//! to. The log lists the newest files first.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, ColumnStatistics, ScalarValue, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DfResult;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, Operator, TableProviderFilterPushDown};
use datafusion::physical_optimizer::pruning::PruningStatistics;
use datafusion::physical_plan::ExecutionPlan;
use deltalake::DeltaTable;

/// Column name to its estimate over the whole table.
type Columns = HashMap<String, ColumnStatistics>;

/// Estimates of recently read table versions, by table root and version.
/// Folding the log is linear in its files, so it is done once per version.
static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Default::default);
type Cache = HashMap<(String, u64), Arc<Columns>>;
const CACHE_ENTRIES: usize = 512;

/// A data file's place in the order the table's rows were added: its
/// modification time and its position in the log, by its path relative
/// to the table.
pub(crate) type FileOrder = HashMap<String, (i64, usize)>;

/// [`FileOrder`]s of recently read table versions, keyed as [`CACHE`].
type OrderCache = HashMap<(String, u64), Arc<FileOrder>>;
static ORDER_CACHE: LazyLock<Mutex<OrderCache>> = LazyLock::new(Default::default);

/// The [`FileOrder`] of `table`'s snapshot (kept per version, as the
/// column estimates are).
pub(crate) fn file_order(table: &DeltaTable) -> Arc<FileOrder> {
    per_version(&ORDER_CACHE, table, |table| {
        let Ok(state) = table.snapshot() else {
            return FileOrder::new();
        };
        let Ok(log) = state.snapshot().try_log_data() else {
            return FileOrder::new();
        };
        log.into_iter()
            .enumerate()
            .map(|(i, f)| (f.path().into_owned(), (f.modification_time(), i)))
            .collect()
    })
}

/// `fold` of `table`'s snapshot, kept in `cache` by table and version:
/// folding the log is linear in its files. The table id tells a table
/// dropped and created again at the same place (and versions) from the
/// one before.
fn per_version<T: Default>(
    cache: &Mutex<HashMap<(String, u64), Arc<T>>>,
    table: &DeltaTable,
    fold: impl FnOnce(&DeltaTable) -> T,
) -> Arc<T> {
    let (Some(version), Ok(state)) = (table.version(), table.snapshot()) else {
        return Arc::default();
    };
    let key = (
        format!("{} {}", table.table_url(), state.metadata().id()),
        version,
    );
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = lock().get(&key) {
        return found.clone();
    }
    let folded = Arc::new(fold(table));
    let mut cached = lock();
    if cached.len() >= CACHE_ENTRIES {
        cached.clear();
    }
    cached.insert(key, folded.clone());
    folded
}

/// `config`'s files, each group in the order its files were added (see
/// the module docs); `None` when that is their order already.
fn in_added_order(
    config: &FileScanConfig,
    order: &FileOrder,
    root: &str,
) -> Option<Vec<datafusion::datasource::physical_plan::FileGroup>> {
    if order.is_empty() {
        return None;
    }
    let place = |f: &datafusion::datasource::listing::PartitionedFile| {
        let location = f.object_meta.location.as_ref();
        let relative = location.strip_prefix(root).unwrap_or(location);
        // Files the log does not list (none should) go last, as they are.
        order
            .get(relative)
            .map_or((i64::MAX, usize::MAX), |&(t, i)| {
                // The log lists newer files first: the later of two files of
                // one time is the one listed first.
                (t, usize::MAX - i)
            })
    };
    let mut changed = false;
    let groups = config
        .file_groups
        .iter()
        .map(|g| {
            if g.files().iter().map(place).is_sorted() {
                return g.clone();
            }
            let mut files: Vec<_> = g.files().to_vec();
            files.sort_by_cached_key(place);
            changed = true;
            let group = datafusion::datasource::physical_plan::FileGroup::new(files);
            match g.file_statistics(None) {
                Some(st) => group.with_statistics(Arc::new(st.clone())),
                None => group,
            }
        })
        .collect();
    changed.then_some(groups)
}

/// The estimate for each column of `table`'s snapshot; empty when the log
/// carries no statistics.
pub(crate) fn table_columns(table: &DeltaTable) -> Arc<Columns> {
    per_version(&CACHE, table, fold_log)
}

fn fold_log(table: &DeltaTable) -> Columns {
    let Ok(state) = table.snapshot() else {
        return Columns::new();
    };
    let Ok(log) = state.snapshot().try_log_data() else {
        return Columns::new();
    };
    let schema = state.snapshot().arrow_schema();
    let mut columns = Columns::new();
    for field in schema.fields() {
        let column = Column::new_unqualified(field.name());
        let stats = ColumnStatistics {
            min_value: bound(log.min_values(&column), Fold::Min),
            max_value: bound(log.max_values(&column), Fold::Max),
            ..ColumnStatistics::new_unknown()
        };
        if stats != ColumnStatistics::new_unknown() {
            columns.insert(field.name().clone(), stats);
        }
    }
    columns
}

/// The smallest (or largest) of the files' bounds, unknown when a file has
/// none: its rows could lie anywhere.
fn bound(per_file: Option<ArrayRef>, fold: Fold) -> Precision<ScalarValue> {
    match per_file {
        Some(values) if !values.is_empty() && values.null_count() == 0 => {
            match fold.over(&values) {
                Ok(v) if !v.is_null() => Precision::Inexact(v),
                _ => Precision::Absent,
            }
        }
        _ => Precision::Absent,
    }
}

#[derive(Clone, Copy)]
enum Fold {
    Min,
    Max,
}

impl Fold {
    fn over(self, values: &ArrayRef) -> DfResult<ScalarValue> {
        let mut acc: Box<dyn Accumulator> = match self {
            Fold::Min => Box::new(MinAccumulator::try_new(values.data_type())?),
            Fold::Max => Box::new(MaxAccumulator::try_new(values.data_type())?),
        };
        acc.update_batch(std::slice::from_ref(values))?;
        acc.evaluate()
    }
}

/// A Delta table provider whose scans carry the table's column estimates.
#[derive(Debug)]
pub(crate) struct WithStatistics {
    inner: Arc<dyn TableProvider>,
    columns: Arc<Columns>,
    /// Column sets each of which no two rows share (the table's primary
    /// key and UNIQUE constraints).
    pub(crate) keys: Vec<Vec<String>>,
    /// The table's location and the version this provider reads.
    pub(crate) snapshot: (url::Url, Option<u64>),
    /// The order its data files were added in.
    order: Arc<FileOrder>,
}

impl WithStatistics {
    pub(crate) fn new(
        inner: Arc<dyn TableProvider>,
        columns: Arc<Columns>,
        snapshot: (url::Url, Option<u64>),
    ) -> Self {
        WithStatistics {
            inner,
            columns,
            keys: Vec::new(),
            snapshot,
            order: Arc::default(),
        }
    }

    /// The same provider, reading its files in the order they were added.
    pub(crate) fn with_order(mut self, order: Arc<FileOrder>) -> Self {
        self.order = order;
        self
    }

    /// The same provider, told which column sets identify a row.
    pub(crate) fn with_keys(mut self, keys: Vec<Vec<String>>) -> Self {
        self.keys = keys;
        self
    }
}

#[async_trait]
impl TableProvider for WithStatistics {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn get_logical_plan(&self) -> Option<std::borrow::Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }
    crate::send_sync::scan_by!(Self::scan_boxed);

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // delta-rs calls a filter on partition columns only exact and uses it
        // to skip files; a filter with no column at all (`NULL`, `false`, a
        // constant part of `NOT IN (.., NULL)`) passes that test vacuously
        // and was lost. The scan prunes with every filter it is given; the
        // filter is evaluated again above it, which costs little and keeps
        // SQL's three-valued logic exact.
        Ok(self
            .inner
            .supports_filters_pushdown(filters)?
            .into_iter()
            .map(|p| match p {
                TableProviderFilterPushDown::Exact => TableProviderFilterPushDown::Inexact,
                other => other,
            })
            .collect())
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.inner.insert_into(state, input, insert_op).await
    }
}

impl WithStatistics {
    /// `TableProvider::scan` (see `crate::send_sync::scan_by`).
    fn scan_boxed<'a>(
        &'a self,
        state: &'a dyn Session,
        projection: Option<&'a Vec<usize>>,
        filters: &'a [Expr],
        limit: Option<usize>,
    ) -> futures::future::BoxFuture<'a, DfResult<Arc<dyn ExecutionPlan>>> {
        Box::pin(async move {
            let plan = self.inner.scan(state, projection, filters, limit).await?;
            let plan = super::keep_limit::keep_limit(plan);
            let by_key = pins_a_key(&self.keys, filters);
            if self.columns.is_empty() && !by_key && self.order.is_empty() {
                return Ok(plan);
            }
            // Object store paths of the table's files begin with this.
            let root = format!("{}/", self.snapshot.0.path().trim_matches('/'));
            let filled = crate::tree::transform_up(plan, |node| {
                let Some(scan) = node.downcast_ref::<DataSourceExec>() else {
                    return Ok(Transformed::no(node));
                };
                let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>() else {
                    return Ok(Transformed::no(node));
                };
                let mut builder = FileScanConfigBuilder::from(config.clone());
                if let Some(groups) = in_added_order(config, &self.order, &root) {
                    builder = builder.with_file_groups(groups);
                }
                if !self.columns.is_empty() {
                    builder = builder.with_statistics(fill(config, &self.columns));
                }
                if by_key && let Some(source) = filtered_while_decoding(config) {
                    builder = builder.with_source(source);
                }
                Ok(Transformed::yes(
                    DataSourceExec::from_data_source(builder.build()) as Arc<dyn ExecutionPlan>,
                ))
            })?;
            Ok(filled.data)
        })
    }
}

/// Whether `filters` hold every column of one of `keys` equal to a value
/// (or to one of a few listed values), so the scan keeps at most that
/// many rows of the table.
fn pins_a_key(keys: &[Vec<String>], filters: &[Expr]) -> bool {
    if keys.is_empty() {
        return false;
    }
    let mut pinned: Vec<&str> = Vec::new();
    for filter in filters {
        for conjunct in split_conjunction(filter) {
            if let Some(name) = pinned_column(conjunct) {
                pinned.push(name);
            }
        }
    }
    keys.iter()
        .any(|key| !key.is_empty() && key.iter().all(|c| pinned.contains(&c.as_str())))
}

/// Most values an `IN` list may hold for its column to count as pinned.
const PINNING_LIST: usize = 16;

/// The column `expr` holds to a value: `c = v`, `v = c` or `c IN (v, ...)`
/// with a few constant values, the column under casts or not.
fn pinned_column(expr: &Expr) -> Option<&str> {
    fn column(e: &Expr) -> Option<&str> {
        match e {
            Expr::Column(c) => Some(c.name.as_str()),
            Expr::Cast(c) => column(&c.expr),
            Expr::TryCast(c) => column(&c.expr),
            _ => None,
        }
    }
    fn constant(e: &Expr) -> bool {
        match e {
            Expr::Literal(v, _) => !v.is_null(),
            Expr::Cast(c) => constant(&c.expr),
            Expr::TryCast(c) => constant(&c.expr),
            _ => false,
        }
    }
    match expr {
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            if constant(&b.right) {
                column(&b.left)
            } else if constant(&b.left) {
                column(&b.right)
            } else {
                None
            }
        }
        Expr::InList(l)
            if !l.negated && l.list.len() <= PINNING_LIST && l.list.iter().all(constant) =>
        {
            column(&l.expr)
        }
        _ => None,
    }
}

/// The scan's Parquet source set to apply its predicate while decoding:
/// for a filter that keeps a row or a few, the other columns are decoded
/// for those rows only (see `crate::engine::late_filter` for why this is
/// not the default). DataFusion pushes the query's filter into the source
/// later, when it optimizes the physical plan; a filter the Parquet reader
/// cannot apply row by row stays above the scan. `None` when the scan is
/// not of Parquet files or reads row positions (Delta deletion vectors),
/// which delta-rs never combines with a row filter.
fn filtered_while_decoding(config: &FileScanConfig) -> Option<Arc<dyn FileSource>> {
    let parquet = config.file_source.downcast_ref::<ParquetSource>()?;
    if parquet.table_parquet_options().global.pushdown_filters
        || !parquet.table_schema().virtual_columns().is_empty()
    {
        return None;
    }
    Some(Arc::new(
        parquet
            .clone()
            .with_pushdown_filters(true)
            .with_reorder_filters(true),
    ))
}

/// The scan's statistics with each unknown column estimate taken from the
/// table's. Columns are matched by name over the scan's full table schema.
///
/// The size in bytes is dropped. delta-rs gives the compressed size of the
/// whole files, which a projection of a few columns keeps as it is (the
/// scan's file-id column is not fixed width), and DataFusion compares join
/// inputs by bytes before rows: the one-column scan of `customer` in TPC-H
/// q13 weighed 13 MB and was swapped against 1.5M filtered `orders`. Row
/// counts decide instead, as they do for Parquet scans without sizes.
fn fill(config: &FileScanConfig, columns: &Columns) -> Statistics {
    let mut stats = config.statistics();
    stats.total_byte_size = Precision::Absent;
    let schema = config.file_source.table_schema().table_schema();
    for (field, column) in schema
        .fields()
        .iter()
        .zip(stats.column_statistics.iter_mut())
    {
        let Some(known) = columns.get(field.name()) else {
            continue;
        };
        // In the scan's type (strings are read as views); a bound that
        // does not convert is left unknown.
        let as_read = |v: &Precision<ScalarValue>| match v.get_value() {
            Some(v) => match v.cast_to(field.data_type()) {
                Ok(v) => Precision::Inexact(v),
                Err(_) => Precision::Absent,
            },
            None => Precision::Absent,
        };
        if column.min_value == Precision::Absent {
            column.min_value = as_read(&known.min_value);
        }
        if column.max_value == Precision::Absent {
            column.max_value = as_read(&known.max_value);
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::{StatisticsArgs, StatisticsContext};
    use datafusion::prelude::SessionContext;
    use deltalake::protocol::SaveMode;

    use super::*;
    use crate::lake::Lake;

    async fn append(lake: &Lake, table: DeltaTable, columns: Vec<ArrayRef>) -> DeltaTable {
        let fields: Vec<Field> = table
            .snapshot()
            .unwrap()
            .snapshot()
            .arrow_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let t = table
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .await
            .unwrap();
        lake.remember(&t);
        t
    }

    #[tokio::test]
    async fn scans_carry_column_estimates_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let url = lake.url_for("public/t").unwrap();
        let schema = Schema::new(vec![
            Field::new("k", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int32, true),
        ]);
        let table = lake.create(&url, &schema, &[], "t").await.unwrap();
        // Two commits, so two files whose bounds are folded.
        let table = append(
            &lake,
            table,
            vec![
                Arc::new(Int32Array::from(vec![5, 9])),
                Arc::new(StringArray::from(vec!["b", "a"])),
                Arc::new(Int32Array::from(vec![None, Some(1)])),
            ],
        )
        .await;
        let table = append(
            &lake,
            table,
            vec![
                Arc::new(Int32Array::from(vec![-2])),
                Arc::new(StringArray::from(vec!["c"])),
                Arc::new(Int32Array::from(vec![None])),
            ],
        )
        .await;
        let provider = crate::lake::provider(&table).await.unwrap();
        let state = SessionContext::new().state();
        let plan = provider.scan(&state, None, &[], None).await.unwrap();
        // What the optimizer sees (join selection computes it this way).
        let stats = StatisticsContext::new()
            .compute(plan.as_ref(), &StatisticsArgs::new())
            .unwrap();
        let column = |name: &str| {
            let i = plan.schema().index_of(name).unwrap();
            stats.column_statistics[i].clone()
        };
        let inexact = |v: ScalarValue| Precision::Inexact(v);
        assert_eq!(column("k").min_value, inexact(ScalarValue::Int32(Some(-2))));
        assert_eq!(column("k").max_value, inexact(ScalarValue::Int32(Some(9))));
        let text = |s: &str| inexact(ScalarValue::Utf8View(Some(s.into())));
        assert_eq!(column("s").min_value, text("a"));
        assert_eq!(column("s").max_value, text("c"));
        assert_eq!(stats.num_rows, Precision::Exact(3));

        // Dropped and created again at the same place, with another type:
        // the new table's bounds, never the old one's.
        lake.remove_all(&url).await.unwrap();
        let schema = Schema::new(vec![Field::new("k", DataType::Int64, true)]);
        let table = lake.create(&url, &schema, &[], "t").await.unwrap();
        let table = append(&lake, table, vec![Arc::new(Int64Array::from(vec![100]))]).await;
        let table = append(&lake, table, vec![Arc::new(Int64Array::from(vec![200]))]).await;
        let provider = crate::lake::provider(&table).await.unwrap();
        let plan = provider.scan(&state, None, &[], None).await.unwrap();
        let stats = StatisticsContext::new()
            .compute(plan.as_ref(), &StatisticsArgs::new())
            .unwrap();
        assert_eq!(
            stats.column_statistics[0].min_value,
            inexact(ScalarValue::Int64(Some(100)))
        );
    }

    #[test]
    fn a_filter_pins_a_key_when_it_holds_every_column_to_values() {
        use datafusion::logical_expr::{cast, col, lit};
        let keys = vec![vec!["id".to_string()], vec!["a".into(), "b".into()]];
        let pins = |filters: &[Expr]| pins_a_key(&keys, filters);
        assert!(pins(&[col("id").eq(lit(5i64))]));
        assert!(pins(&[lit(5i64).eq(cast(col("id"), DataType::Int32))]));
        assert!(pins(
            &[col("id").in_list(vec![lit(1i64), lit(2i64)], false)]
        ));
        assert!(pins(&[col("x").gt(lit(1)).and(col("id").eq(lit(5i64)))]));
        assert!(pins(&[col("a").eq(lit(1)), col("b").eq(lit("x"))]));
        // Not a single row or a few.
        assert!(!pins(&[col("a").eq(lit(1))]));
        assert!(!pins(&[col("id").gt(lit(5i64))]));
        assert!(!pins(&[col("id").eq(lit(5i64)).or(col("x").eq(lit(1)))]));
        assert!(!pins(&[col("id").in_list(vec![lit(1i64)], true)]));
        assert!(!pins(&[
            col("id").in_list((0..17).map(|i| lit(i as i64)).collect(), false)
        ]));
        assert!(!pins(&[col("id").eq(col("x"))]));
        assert!(!pins(&[col("id").eq(lit(ScalarValue::Int64(None)))]));
        assert!(!pins_a_key(&[], &[col("id").eq(lit(5i64))]));
    }
}
