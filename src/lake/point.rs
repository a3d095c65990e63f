//! Reading the rows of a Delta table that hold one value in one column,
//! without planning a query: the read behind a lookup by key
//! (`SELECT … FROM t WHERE id = $1`), the statement applications repeat
//! most.
//!
//! ```text
//!  table version ──once──▶ each file's bounds of the column (Delta log)
//!  value ──▶ files whose bounds hold it ──▶ row groups (Parquet statistics)
//!        ──▶ pages (page index) ──▶ decoded, rows equal to the value kept
//! ```
//!
//! A file's Parquet metadata and page index are read once and kept (Delta
//! data files never change), so a repeated lookup reads only the pages that
//! may hold its value. Anything this reader does not handle exactly, such
//! as deletion vectors, column mapping, a column a file lacks or a key
//! spread over many files, makes it answer `None`: the caller plans the
//! statement as a query instead.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, Scalar};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    DefaultParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::error::DataFusionError;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector,
};
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
use datafusion::parquet::file::statistics::Statistics;
use datafusion::physical_optimizer::pruning::PruningStatistics;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use deltalake::DeltaTable;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use object_store::path::Path;

use crate::error::Result;

/// More files than this may hold the value (their bounds overlap): the
/// lookup is planned as a query, which reads them in parallel.
pub const MAX_FILES: usize = 16;

/// A Delta writer may cut a string bound short; a maximum this long may
/// have been cut, so it bounds nothing.
const STRING_BOUND_CUT: usize = 32;

/// One data file of a table version and its bounds of one column.
#[derive(Debug)]
struct FileBounds {
    path: Path,
    size: u64,
    min: Option<ScalarValue>,
    max: Option<ScalarValue>,
    /// Has a deletion vector (rows this reader would not know to skip).
    deletions: bool,
}

type Bounds = Arc<Vec<FileBounds>>;

/// Bounds of recently read (table, version, column)s.
static BOUNDS: LazyLock<Mutex<HashMap<BoundsKey, Bounds>>> = LazyLock::new(Default::default);
/// Table root, version, column.
type BoundsKey = (String, u64, String);
const BOUNDS_ENTRIES: usize = 256;

/// Parquet metadata (with page index) of recently read files, by table
/// root and file path, and their summed size.
static METADATA: LazyLock<Mutex<MetadataCache>> = LazyLock::new(Default::default);
/// The metadata kept at most, in bytes of memory.
const METADATA_BYTES: usize = 64 << 20;

#[derive(Default)]
struct MetadataCache {
    files: HashMap<(String, String), ArrowReaderMetadata>,
    bytes: usize,
}

/// The rows of `table` whose column `key` equals `value`, with `columns`
/// (in this order, in the types the files hold them). `value` must be of
/// the column's type and not NULL. `None` when this reader does not read
/// this table or column exactly; then the caller plans a query.
pub async fn rows_by_key(
    table: &DeltaTable,
    key: &str,
    value: &ScalarValue,
    columns: &[String],
) -> Result<Option<Vec<RecordBatch>>> {
    if value.is_null() || !supported(&value.data_type()) {
        return Ok(None);
    }
    let state = table.snapshot()?;
    // Under column mapping a file's columns have other names than the
    // table's (the mode's type is not exported; its Debug form is its name).
    if state
        .snapshot()
        .table_properties()
        .column_mapping_mode
        .is_some_and(|m| format!("{m:?}") != "None")
    {
        return Ok(None);
    }
    let Some(bounds) = file_bounds(table, key) else {
        return Ok(None);
    };
    let mut files = Vec::new();
    for f in bounds.iter() {
        if !may_hold(f.min.as_ref(), f.max.as_ref(), value) {
            continue;
        }
        if f.deletions {
            return Ok(None);
        }
        files.push(f);
        if files.len() > MAX_FILES {
            return Ok(None);
        }
    }
    let readers = DefaultParquetFileReaderFactory::new(table.log_store().object_store(None));
    let reader = |f: &FileBounds| {
        readers
            .create_reader(
                0,
                PartitionedFile::new(f.path.to_string(), f.size),
                None,
                &ExecutionPlanMetricsSet::new(),
            )
            .map(Reader)
    };
    let root = table.table_url().to_string();
    let mut out = Vec::new();
    for f in files {
        let meta = metadata(&root, f, reader(f)?).await?;
        let file = (root.clone(), f.path.to_string());
        match read_file(&file, &|| Ok(reader(f)?), meta, key, value, columns).await? {
            Some(batches) => out.extend(batches),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Key types this reader compares exactly with Parquet's bounds.
fn supported(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::Utf8
    )
}

/// Each file of `table`'s version with its bounds of `key`, folded from the
/// log once per version. `None` when the snapshot has no file list.
fn file_bounds(table: &DeltaTable, key: &str) -> Option<Bounds> {
    let version = table.version()?;
    let cache_key = (table.table_url().to_string(), version, key.to_string());
    if let Some(b) = BOUNDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&cache_key)
    {
        return Some(b.clone());
    }
    let state = table.snapshot().ok()?;
    let log = state.snapshot().try_log_data().ok()?;
    let column = Column::new_unqualified(key);
    let mins = log.min_values(&column);
    let maxs = log.max_values(&column);
    let at = |a: &Option<ArrayRef>, i: usize| {
        a.as_ref()
            .filter(|a| i < a.len())
            .and_then(|a| ScalarValue::try_from_array(a, i).ok())
            .filter(|v| !v.is_null())
    };
    let mut files = Vec::new();
    for (i, f) in log.iter().enumerate() {
        let max = at(&maxs, i).filter(|v| match v {
            ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
                s.chars().count() < STRING_BOUND_CUT
            }
            _ => true,
        });
        files.push(FileBounds {
            path: f.object_store_path(),
            size: u64::try_from(f.size()).unwrap_or(0),
            min: at(&mins, i),
            max,
            deletions: f.deletion_vector_descriptor().is_some(),
        });
    }
    let bounds = Arc::new(files);
    let mut cache = BOUNDS.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= BOUNDS_ENTRIES {
        cache.clear();
    }
    cache.insert(cache_key, bounds.clone());
    Some(bounds)
}

/// Can a file whose column lies within `min..=max` (either unknown) hold
/// `value`? Bounds of another type than the value's say nothing.
fn may_hold(min: Option<&ScalarValue>, max: Option<&ScalarValue>, value: &ScalarValue) -> bool {
    let cmp = |b: &ScalarValue| {
        b.cast_to(&value.data_type())
            .ok()
            .and_then(|b| value.partial_cmp(&b))
    };
    let above_min = min.and_then(cmp).is_none_or(|o| o.is_ge());
    let below_max = max.and_then(cmp).is_none_or(|o| o.is_le());
    above_min && below_max
}

/// The file's Parquet metadata with its page index, read once.
async fn metadata(root: &str, f: &FileBounds, mut reader: Reader) -> Result<ArrowReaderMetadata> {
    let key = (root.to_string(), f.path.to_string());
    if let Some(m) = METADATA
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .files
        .get(&key)
    {
        return Ok(m.clone());
    }
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let meta = ArrowReaderMetadata::load_async(&mut reader, options)
        .await
        .map_err(DataFusionError::from)?;
    let size = meta.metadata().memory_size();
    let mut cache = METADATA.lock().unwrap_or_else(|e| e.into_inner());
    if cache.bytes + size > METADATA_BYTES {
        cache.files.clear();
        cache.bytes = 0;
    }
    if size <= METADATA_BYTES {
        cache.bytes += size;
        cache.files.insert(key, meta.clone());
    }
    Ok(meta)
}

/// The rows of one file whose `key` equals `value`; `None` when the file
/// lacks a column (added after it was written, or a partition column).
async fn read_file(
    file: &FileKey,
    reader: &(dyn Fn() -> Result<Reader> + Send + Sync),
    meta: ArrowReaderMetadata,
    key: &str,
    value: &ScalarValue,
    columns: &[String],
) -> Result<Option<Vec<RecordBatch>>> {
    let schema = meta.schema().clone();
    let parquet = meta.metadata().clone();
    let descr = parquet.file_metadata().schema_descr();
    // Flat columns only: a root column is its own leaf.
    if descr.num_columns() != schema.fields().len() {
        return Ok(None);
    }
    let Ok(key_at) = schema.index_of(key) else {
        return Ok(None);
    };
    let mut roots = vec![key_at];
    for c in columns {
        let Ok(i) = schema.index_of(c) else {
            return Ok(None);
        };
        roots.push(i);
    }
    roots.sort_unstable();
    roots.dedup();
    let fields: Vec<_> = roots.iter().map(|&i| schema.field(i).clone()).collect();
    let needed = Arc::new(Schema::new(fields));
    let mut out = Vec::new();
    for unit in units(&parquet, key_at, value) {
        let batch = match cached_unit(file, &unit, &needed) {
            Some(b) => b,
            None => {
                let b = read_unit(reader()?, meta.clone(), &unit, &roots, &needed).await?;
                keep_unit(file, &unit, &b);
                b
            }
        };
        let kept = matching(&batch, key, value)?;
        if kept.num_rows() == 0 {
            continue;
        }
        let picked = columns
            .iter()
            .map(|c| Ok(kept.column(needed.index_of(c)?).clone()))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let fields: Vec<_> = columns
            .iter()
            .map(|c| Ok(needed.field_with_name(c)?.clone()))
            .collect::<Result<_>>()?;
        out.push(RecordBatch::try_new(Arc::new(Schema::new(fields)), picked)?);
    }
    Ok(Some(out))
}

/// Rows `first..first + rows` of row group `group` (of `group_rows`): a
/// page of the key column that may hold the value, or a whole row group
/// of a file without a page index.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Unit {
    group: usize,
    first: usize,
    rows: usize,
    group_rows: usize,
}

/// Decode the `roots` columns of one unit.
async fn read_unit(
    reader: Reader,
    meta: ArrowReaderMetadata,
    unit: &Unit,
    roots: &[usize],
    needed: &Arc<Schema>,
) -> Result<RecordBatch> {
    let mask = ProjectionMask::roots(
        meta.metadata().file_metadata().schema_descr(),
        roots.to_vec(),
    );
    let mut selectors = Vec::with_capacity(3);
    if unit.first > 0 {
        selectors.push(RowSelector::skip(unit.first));
    }
    selectors.push(RowSelector::select(unit.rows));
    let after = unit.group_rows.saturating_sub(unit.first + unit.rows);
    if after > 0 {
        selectors.push(RowSelector::skip(after));
    }
    let mut stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_row_groups(vec![unit.group])
        .with_row_selection(RowSelection::from(selectors))
        .with_projection(mask)
        .with_batch_size(unit.rows.max(1))
        .build()
        .map_err(DataFusionError::from)?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.try_next().await.map_err(DataFusionError::from)? {
        // In the order asked for (the reader keeps file order).
        batches.push(RecordBatch::try_new(
            needed.clone(),
            batch.columns().to_vec(),
        )?);
    }
    Ok(concat_batches(needed, &batches)?)
}

/// A data file: its table's root and its path in the table.
type FileKey = (String, String);

/// Decoded columns of recently read units, by file, row group, first row
/// and column, and their summed size. Data files never change, so a
/// unit decoded once answers every later lookup of a key in it (as a
/// database's buffer cache keeps the pages it read).
static UNITS: LazyLock<Mutex<UnitCache>> = LazyLock::new(Default::default);
/// Decoded columns kept at most, in bytes of memory.
const UNIT_BYTES: usize = 64 << 20;
/// A unit of more rows than this (a row group without a page index) is
/// decoded for each lookup, not kept.
const UNIT_ROWS: usize = 65_536;

type UnitKey = (FileKey, usize, usize, String);

#[derive(Default)]
struct UnitCache {
    columns: HashMap<UnitKey, ArrayRef>,
    bytes: usize,
}

/// The unit's columns of `needed`, when every one is kept.
fn cached_unit(file: &FileKey, unit: &Unit, needed: &Arc<Schema>) -> Option<RecordBatch> {
    let cache = UNITS.lock().unwrap_or_else(|e| e.into_inner());
    let mut columns = Vec::with_capacity(needed.fields().len());
    for f in needed.fields() {
        let key = (file.clone(), unit.group, unit.first, f.name().clone());
        let c = cache.columns.get(&key)?;
        if c.data_type() != f.data_type() || c.len() != unit.rows {
            return None;
        }
        columns.push(c.clone());
    }
    RecordBatch::try_new(needed.clone(), columns).ok()
}

fn keep_unit(file: &FileKey, unit: &Unit, batch: &RecordBatch) {
    if unit.rows > UNIT_ROWS || batch.num_rows() != unit.rows {
        return;
    }
    let mut cache = UNITS.lock().unwrap_or_else(|e| e.into_inner());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let size = c.get_array_memory_size();
        if cache.bytes + size > UNIT_BYTES {
            cache.columns.clear();
            cache.bytes = 0;
        }
        let key = (file.clone(), unit.group, unit.first, f.name().clone());
        if let Some(old) = cache.columns.insert(key, c.clone()) {
            cache.bytes = cache.bytes.saturating_sub(old.get_array_memory_size());
        }
        cache.bytes += size;
    }
}

/// A file reader DataFusion makes (it reads through the table's object
/// store and may cut reads into ranges), usable where Parquet wants one.
struct Reader(Box<dyn AsyncFileReader + Send>);

impl AsyncFileReader for Reader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<bytes::Bytes>> {
        self.0.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<bytes::Bytes>>> {
        self.0.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        self.0.get_metadata(options)
    }
}

/// The rows of `batch` whose `key` equals `value`.
fn matching(batch: &RecordBatch, key: &str, value: &ScalarValue) -> Result<RecordBatch> {
    let column = batch.column(batch.schema().index_of(key)?);
    let wanted = cast(&value.to_array()?, column.data_type())?;
    let mask = eq(column, &Scalar::new(wanted))?;
    Ok(filter_record_batch(batch, &mask)?)
}

/// The units of a file that may hold `value` in column `leaf`: the pages
/// of row groups whose statistics may hold it whose page index bounds may,
/// or whole row groups where the file has no page index.
fn units(parquet: &ParquetMetaData, leaf: usize, value: &ScalarValue) -> Vec<Unit> {
    let mut out = Vec::new();
    for (g, rg) in parquet.row_groups().iter().enumerate() {
        if let Some(s) = rg.column(leaf).statistics()
            && !statistics_may_hold(s, value)
        {
            continue;
        }
        let rows = usize::try_from(rg.num_rows()).unwrap_or(0);
        let whole = Unit {
            group: g,
            first: 0,
            rows,
            group_rows: rows,
        };
        let pages = parquet
            .offset_index()
            .and_then(|o| o.get(g))
            .and_then(|o| o.get(leaf))
            .map(|o| o.page_locations());
        let index = parquet
            .column_index()
            .and_then(|c| c.get(g))
            .and_then(|c| c.get(leaf));
        let (Some(pages), Some(index)) = (pages, index) else {
            out.push(whole);
            continue;
        };
        for (p, page) in pages.iter().enumerate() {
            let first = usize::try_from(page.first_row_index).unwrap_or(0);
            let end = pages
                .get(p + 1)
                .map(|n| usize::try_from(n.first_row_index).unwrap_or(rows))
                .unwrap_or(rows);
            if end > first && page_may_hold(index, p, value) {
                out.push(Unit {
                    group: g,
                    first,
                    rows: end - first,
                    group_rows: rows,
                });
            }
        }
    }
    out
}

/// The value as the Parquet physical type compares it.
enum Physical<'a> {
    Int32(i32),
    Int64(i64),
    Bytes(&'a [u8]),
}

fn physical(value: &ScalarValue) -> Option<Physical<'_>> {
    match value {
        ScalarValue::Int16(Some(v)) => Some(Physical::Int32(i32::from(*v))),
        ScalarValue::Int32(Some(v)) => Some(Physical::Int32(*v)),
        ScalarValue::Int64(Some(v)) => Some(Physical::Int64(*v)),
        ScalarValue::Utf8(Some(s)) => Some(Physical::Bytes(s.as_bytes())),
        _ => None,
    }
}

/// `min <= v <= max`, each bound unknown as `None`.
fn within<T: PartialOrd + ?Sized>(min: Option<&T>, max: Option<&T>, v: &T) -> bool {
    min.is_none_or(|m| m <= v) && max.is_none_or(|m| v <= m)
}

fn statistics_may_hold(s: &Statistics, value: &ScalarValue) -> bool {
    match (s, physical(value)) {
        (Statistics::Int32(s), Some(Physical::Int32(v))) => within(s.min_opt(), s.max_opt(), &v),
        (Statistics::Int64(s), Some(Physical::Int64(v))) => within(s.min_opt(), s.max_opt(), &v),
        (Statistics::ByteArray(s), Some(Physical::Bytes(v))) => within(
            s.min_opt().map(|b| b.data()),
            s.max_opt().map(|b| b.data()),
            v,
        ),
        // Bounds of another type: they say nothing here.
        _ => true,
    }
}

fn page_may_hold(index: &ColumnIndexMetaData, page: usize, value: &ScalarValue) -> bool {
    match (index, physical(value)) {
        (ColumnIndexMetaData::INT32(ix), Some(Physical::Int32(v))) => {
            !ix.is_null_page(page) && within(ix.min_value(page), ix.max_value(page), &v)
        }
        (ColumnIndexMetaData::INT64(ix), Some(Physical::Int64(v))) => {
            !ix.is_null_page(page) && within(ix.min_value(page), ix.max_value(page), &v)
        }
        (ColumnIndexMetaData::BYTE_ARRAY(ix), Some(Physical::Bytes(v))) => {
            !ix.is_null_page(page) && within(ix.min_value(page), ix.max_value(page), v)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_decide_which_files_may_hold_a_value() {
        let five = ScalarValue::Int64(Some(5));
        let b = |v: i64| ScalarValue::Int64(Some(v));
        assert!(may_hold(Some(&b(1)), Some(&b(9)), &five));
        assert!(may_hold(Some(&b(5)), Some(&b(5)), &five));
        assert!(!may_hold(Some(&b(6)), Some(&b(9)), &five));
        assert!(!may_hold(Some(&b(1)), Some(&b(4)), &five));
        assert!(may_hold(None, Some(&b(9)), &five));
        assert!(may_hold(None, None, &five));
        // Bounds in a narrower integer type compare by value.
        assert!(!may_hold(Some(&ScalarValue::Int32(Some(6))), None, &five));
        let s = ScalarValue::Utf8(Some("m".into()));
        let t = |v: &str| ScalarValue::Utf8(Some(v.into()));
        assert!(may_hold(Some(&t("a")), Some(&t("z")), &s));
        assert!(!may_hold(Some(&t("n")), None, &s));
    }

    #[test]
    fn physical_bounds_compare_as_parquet_orders_them() {
        assert!(within(Some(&1), Some(&3), &2));
        assert!(!within(Some(&1), Some(&3), &4));
        assert!(within(None, Some(&3), &-7));
        let v: &[u8] = b"key-10";
        assert!(within(
            Some(b"key-1".as_slice()),
            Some(b"key-2".as_slice()),
            v
        ));
        assert!(!within(Some(b"key-2".as_slice()), None, v));
    }
}
