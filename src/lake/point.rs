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
    files: HashMap<FileKey, ArrowReaderMetadata>,
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
        let file = (root.clone(), f.path.to_string());
        let open = || -> Result<Reader> { Ok(reader(f)?) };
        let meta = metadata(&file, &open).await?;
        match read_file(&file, &open, meta, key, value, columns).await? {
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
async fn metadata(
    file: &FileKey,
    open: &(dyn Fn() -> Result<Reader> + Send + Sync),
) -> Result<ArrowReaderMetadata> {
    if let Some(m) = METADATA
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .files
        .get(file)
    {
        return Ok(m.clone());
    }
    // A reader only when the metadata is read: making one is not free.
    let mut reader = open()?;
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
        cache.files.insert(file.clone(), meta.clone());
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
    let out_fields: Vec<_> = columns
        .iter()
        .map(|c| Ok(needed.field_with_name(c)?.clone()))
        .collect::<Result<_>>()?;
    let out_schema = Arc::new(Schema::new(out_fields));
    let mut out = Vec::new();
    let keep_rows = |b: &RecordBatch| matching(b, key, value);
    for unit in units(&parquet, key_at, value) {
        let found = match cached_unit(file, &unit, &needed) {
            Some(b) => vec![keep_rows(&b)?],
            None => {
                read_unit(
                    reader()?,
                    meta.clone(),
                    file,
                    &unit,
                    &roots,
                    &needed,
                    &keep_rows,
                )
                .await?
            }
        };
        for kept in found {
            if kept.num_rows() == 0 {
                continue;
            }
            let picked = columns
                .iter()
                .map(|c| Ok(kept.column(needed.index_of(c)?).clone()))
                .collect::<Result<Vec<ArrayRef>>>()?;
            out.push(RecordBatch::try_new(out_schema.clone(), picked)?);
        }
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

/// Rows decoded at a time from a unit too large to keep.
const BATCH_ROWS: usize = 8192;

/// Decode the `roots` columns of one unit and keep the rows `keep_rows`
/// keeps. A unit of at most [`UNIT_ROWS`] rows is decoded whole and kept
/// for later lookups; a larger one (a row group of a file without a page
/// index) is filtered batch by batch, never held whole.
async fn read_unit(
    reader: Reader,
    meta: ArrowReaderMetadata,
    file: &FileKey,
    unit: &Unit,
    roots: &[usize],
    needed: &Arc<Schema>,
    keep_rows: &(dyn Fn(&RecordBatch) -> Result<RecordBatch> + Send + Sync),
) -> Result<Vec<RecordBatch>> {
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
    let whole = unit.rows <= UNIT_ROWS;
    let mut stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_row_groups(vec![unit.group])
        .with_row_selection(RowSelection::from(selectors))
        .with_projection(mask)
        .with_batch_size(if whole { unit.rows } else { BATCH_ROWS })
        .build()
        .map_err(DataFusionError::from)?;
    let mut decoded = Vec::new();
    let mut found = Vec::new();
    while let Some(batch) = stream.try_next().await.map_err(DataFusionError::from)? {
        // In the order asked for (the reader keeps file order).
        let batch = RecordBatch::try_new(needed.clone(), batch.columns().to_vec())?;
        if whole {
            decoded.push(batch);
        } else {
            found.push(keep_rows(&batch)?);
        }
    }
    if whole {
        let batch = concat_batches(needed, &decoded)?;
        keep_unit(file, unit, &batch);
        found.push(keep_rows(&batch)?);
    }
    Ok(found)
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
    if batch.num_rows() != unit.rows {
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
        if rows == 0 {
            continue;
        }
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
            .and_then(|c| c.get(leaf))
            // Page locations without bounds pick no page.
            .filter(|c| !matches!(c, ColumnIndexMetaData::NONE));
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

    /// A file with one row group of `rows` rows (`k` = 0.., `v` = "v<k>"),
    /// with or without a page index, read through a local store.
    async fn file(
        dir: &std::path::Path,
        rows: i64,
        page_index: bool,
    ) -> (FileKey, impl Fn() -> Result<Reader> + Send + Sync) {
        use datafusion::arrow::array::{Int64Array, StringArray};
        use datafusion::arrow::datatypes::Field;
        use datafusion::parquet::arrow::ArrowWriter;
        use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("v{i}")),
                )),
            ],
        )
        .unwrap();
        let stats = if page_index {
            EnabledStatistics::Page
        } else {
            EnabledStatistics::Chunk
        };
        let props = WriterProperties::builder()
            .set_statistics_enabled(stats)
            .set_data_page_row_count_limit(4096)
            .set_max_row_group_row_count(Some(usize::MAX))
            .build();
        let name = format!("f-{rows}-{page_index}.parquet");
        let out = std::fs::File::create(dir.join(&name)).unwrap();
        let mut w = ArrowWriter::try_new(out, schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let size = std::fs::metadata(dir.join(&name)).unwrap().len();
        let store: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap());
        let readers = DefaultParquetFileReaderFactory::new(store);
        let key = (format!("test://{}", dir.display()), name.clone());
        let open = move || -> Result<Reader> {
            Ok(readers
                .create_reader(
                    0,
                    PartitionedFile::new(name.clone(), size),
                    None,
                    &ExecutionPlanMetricsSet::new(),
                )
                .map(Reader)?)
        };
        (key, open)
    }

    async fn lookup(
        file: &FileKey,
        open: &(dyn Fn() -> Result<Reader> + Send + Sync),
        k: i64,
    ) -> Vec<String> {
        let meta = metadata(file, open).await.unwrap();
        let batches = read_file(
            file,
            open,
            meta,
            "k",
            &ScalarValue::Int64(Some(k)),
            &["v".to_string()],
        )
        .await
        .unwrap()
        .unwrap();
        batches
            .iter()
            .flat_map(|b| {
                let v = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::StringArray>()
                    .unwrap();
                (0..v.len())
                    .map(|i| v.value(i).to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn pages_are_read_and_kept_and_large_row_groups_are_filtered_by_batch() {
        let dir = tempfile::tempdir().unwrap();
        // With a page index: one page of 4,096 rows per lookup, kept.
        let (key, open) = file(dir.path(), 20_000, true).await;
        let meta = metadata(&key, &open).await.unwrap();
        let picked = units(meta.metadata(), 0, &ScalarValue::Int64(Some(5_000)));
        assert_eq!(picked.len(), 1, "{picked:?}");
        assert!(picked[0].rows <= 4096, "{picked:?}");
        assert_eq!(lookup(&key, &open, 5_000).await, ["v5000"]);
        assert_eq!(lookup(&key, &open, 5_000).await, ["v5000"]);
        assert_eq!(lookup(&key, &open, 5_001).await, ["v5001"]);
        assert!(lookup(&key, &open, 20_000).await.is_empty());
        // Without one: the whole row group is the unit, more rows than are
        // kept, and it is read in batches.
        let rows = i64::try_from(UNIT_ROWS).unwrap() + 10_000;
        let (key, open) = file(dir.path(), rows, false).await;
        let meta = metadata(&key, &open).await.unwrap();
        let picked = units(meta.metadata(), 0, &ScalarValue::Int64(Some(7)));
        assert_eq!(picked.len(), 1);
        assert!(picked[0].rows > UNIT_ROWS);
        assert_eq!(
            lookup(&key, &open, rows - 1).await,
            [format!("v{}", rows - 1)]
        );
        assert_eq!(lookup(&key, &open, 7).await, ["v7"]);
        let cached = UNITS.lock().unwrap();
        assert!(
            !cached.columns.keys().any(|(f, ..)| f == &key),
            "a large unit was kept"
        );
    }

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
