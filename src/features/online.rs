//! The online store: the latest row of each entity of every `ONLINE`
//! feature view, in memory, for lookups that plan nothing.
//!
//! ```text
//!  Delta table of the view ──scan──▶ Builder ──finish──▶ ViewIndex { rows, times, keys → row }
//!        new version, appended ──files added──▶ Builder(from the index) ──▶ ViewIndex
//!        new version, rewritten ──────────────▶ rebuilt from a full scan
//! ```
//!
//! An index is built the first time a view is looked up (or polled), and
//! brought forward when the view's table gets a new version: by this
//! server's refresh at once ([`OnlineStore::sync`]), by anyone's commit when
//! the poller next looks ([`OnlineStore::start_polling`]). A lookup reads
//! the index it finds; a new one is swapped in whole, never half-built.
//!
//! Rows whose entity key or event time is NULL are not served: no `=`
//! finds them. A row older than the view's TTL (by its event time, against
//! the clock at the lookup) reads as absent.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, interleave_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::catalog::{Catalog, FeatureDef, Kind, Object, RelName};
use crate::error::{Error, ErrorKind, Result};
use crate::lake::Lake;
use crate::lake::changes::{self, Changes};

/// Every online feature view's index, by view.
pub struct OnlineStore {
    lake: Arc<Lake>,
    indexes: RwLock<HashMap<RelName, Arc<ViewIndex>>>,
    /// One build or update at a time: two lookups of a view nobody indexed
    /// yet build it once.
    building: tokio::sync::Mutex<()>,
}

/// The latest row per entity of one feature view at one table version.
pub struct ViewIndex {
    pub view: RelName,
    /// The table's location and the definition the index was built for: a
    /// view dropped and created again under its name is indexed anew.
    location: String,
    pub feature: FeatureDef,
    pub version: Option<u64>,
    /// Row `i` is entity `i`'s latest row.
    rows: RecordBatch,
    /// Event time of each row, in microseconds since the epoch.
    times: Vec<i64>,
    keys: Keys,
    key_types: Vec<DataType>,
}

/// Entity keys to rows: one integer key directly, any other in Arrow's row
/// format.
#[derive(Clone)]
enum Keys {
    Int(HashMap<i64, u32>),
    Rows {
        types: Vec<DataType>,
        map: HashMap<Box<[u8]>, u32>,
    },
}

impl Keys {
    fn new(types: Vec<DataType>) -> Keys {
        if types.len() == 1 && types[0].is_integer() {
            Keys::Int(HashMap::new())
        } else {
            Keys::Rows {
                types,
                map: HashMap::new(),
            }
        }
    }

    fn converter(types: &[DataType]) -> Result<RowConverter> {
        Ok(RowConverter::new(
            types.iter().map(|t| SortField::new(t.clone())).collect(),
        )?)
    }

    /// The keys of `columns` (one array per key column): `None` where a
    /// key column is NULL.
    fn encode(&self, columns: &[ArrayRef]) -> Result<Vec<Option<KeyValue>>> {
        let n = columns.first().map(|c| c.len()).unwrap_or(0);
        let null = |i: usize| columns.iter().any(|c| c.is_null(i));
        match self {
            Keys::Int(_) => {
                let ints = cast(&columns[0], &DataType::Int64)?;
                let ints = ints.as_primitive::<Int64Type>();
                Ok((0..n)
                    .map(|i| (!null(i)).then(|| KeyValue::Int(ints.value(i))))
                    .collect())
            }
            Keys::Rows { types, .. } => {
                let cast_columns = columns
                    .iter()
                    .zip(types)
                    .map(|(c, t)| Ok(cast(c, t)?))
                    .collect::<Result<Vec<_>>>()?;
                let rows = Self::converter(types)?.convert_columns(&cast_columns)?;
                Ok((0..n)
                    .map(|i| (!null(i)).then(|| KeyValue::Row(rows.row(i).as_ref().into())))
                    .collect())
            }
        }
    }

    fn get(&self, k: &KeyValue) -> Option<u32> {
        match (self, k) {
            (Keys::Int(m), KeyValue::Int(v)) => m.get(v).copied(),
            (Keys::Rows { map, .. }, KeyValue::Row(r)) => map.get(r).copied(),
            _ => None,
        }
    }

    fn insert(&mut self, k: KeyValue, row: u32) {
        match (self, k) {
            (Keys::Int(m), KeyValue::Int(v)) => {
                m.insert(v, row);
            }
            (Keys::Rows { map, .. }, KeyValue::Row(r)) => {
                map.insert(r, row);
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyValue {
    Int(i64),
    Row(Box<[u8]>),
}

/// Event times as microseconds since the epoch (timestamps of any unit,
/// dates at midnight).
fn micros(a: &ArrayRef) -> Result<Int64Array> {
    let (factor, divisor) = match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => (1_000_000, 1),
        DataType::Timestamp(TimeUnit::Millisecond, _) => (1_000, 1),
        DataType::Timestamp(TimeUnit::Microsecond, _) => (1, 1),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => (1, 1_000),
        DataType::Date32 => (86_400_000_000, 1),
        other => {
            return Err(Error::new(
                ErrorKind::DatatypeMismatch,
                format!("an event time must be a timestamp or date, not {other}"),
            ));
        }
    };
    let raw = cast(a, &DataType::Int64)?;
    Ok(raw
        .as_primitive::<Int64Type>()
        .unary(|v| v.saturating_mul(factor) / divisor))
}

/// Collects the latest row per entity from batches in any order.
struct Builder {
    schema: SchemaRef,
    key_columns: Vec<usize>,
    ts_column: usize,
    created_column: Option<usize>,
    /// Rows that were the latest of their entity when their batch was read.
    chunks: Vec<RecordBatch>,
    chunk_rows: usize,
    /// Per entity: where its latest row is, its event and created times.
    slots: Vec<(u32, u32)>,
    times: Vec<i64>,
    created: Vec<i64>,
    keys: Keys,
}

const PENDING: u32 = u32::MAX;

impl Builder {
    fn new(schema: SchemaRef, feature: &FeatureDef) -> Result<Builder> {
        let index = |c: &str| {
            schema.index_of(c).map_err(|_| {
                Error::new(
                    ErrorKind::UndefinedColumn,
                    format!("column \"{c}\" of the feature view is missing from its table"),
                )
            })
        };
        let key_columns = feature
            .entity
            .iter()
            .map(|k| index(k))
            .collect::<Result<Vec<_>>>()?;
        let types = key_columns
            .iter()
            .map(|&i| schema.field(i).data_type().clone())
            .collect();
        Ok(Builder {
            key_columns,
            ts_column: index(&feature.timestamp)?,
            created_column: feature.created_at.as_deref().map(index).transpose()?,
            chunks: vec![],
            chunk_rows: 0,
            slots: vec![],
            times: vec![],
            created: vec![],
            keys: Keys::new(types),
            schema,
        })
    }

    /// Continue from an index (for rows appended after its version).
    fn from_index(ix: &ViewIndex) -> Result<Builder> {
        let mut b = Builder::new(ix.rows.schema(), &ix.feature)?;
        let n = ix.rows.num_rows();
        b.created = match b.created_column {
            Some(c) => micros(ix.rows.column(c))?
                .iter()
                .map(|v| v.unwrap_or(i64::MIN))
                .collect(),
            None => vec![i64::MIN; n],
        };
        b.chunks = vec![ix.rows.clone()];
        b.chunk_rows = n;
        b.slots = (0..n as u32).map(|i| (0, i)).collect();
        b.times = ix.times.clone();
        b.keys = ix.keys.clone();
        Ok(b)
    }

    /// Absorb every row `provider` scans.
    async fn read(
        mut self,
        provider: Arc<dyn datafusion::catalog::TableProvider>,
    ) -> Result<Builder> {
        let mut stream = SessionContext::new()
            .read_table(provider)?
            .execute_stream()
            .await?;
        while let Some(batch) = stream.next().await {
            self.absorb(batch?)?;
        }
        Ok(self)
    }

    fn absorb(&mut self, batch: RecordBatch) -> Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
        let key_arrays: Vec<ArrayRef> = self
            .key_columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let keys = self.keys.encode(&key_arrays)?;
        let times = micros(batch.column(self.ts_column))?;
        let created = self
            .created_column
            .map(|c| micros(batch.column(c)))
            .transpose()?;
        // Rows of this batch that became some entity's latest.
        let mut winners: Vec<u32> = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            let Some(key) = key else { continue };
            if times.is_null(i) {
                continue;
            }
            let t = times.value(i);
            let c = match &created {
                Some(c) if c.is_valid(i) => c.value(i),
                _ => i64::MIN,
            };
            match self.keys.get(&key) {
                Some(e) => {
                    let e = e as usize;
                    // Later event time wins; then later creation; then the
                    // row read last.
                    if (t, c) >= (self.times[e], self.created[e]) {
                        self.times[e] = t;
                        self.created[e] = c;
                        self.slots[e] = (PENDING, i as u32);
                        winners.push(i as u32);
                    }
                }
                None => {
                    let e = self.slots.len() as u32;
                    self.keys.insert(key, e);
                    self.slots.push((PENDING, i as u32));
                    self.times.push(t);
                    self.created.push(c);
                    winners.push(i as u32);
                }
            }
        }
        if winners.is_empty() {
            return Ok(());
        }
        let kept = take_record_batch(&batch, &UInt32Array::from(winners.clone()))?;
        let mut at = vec![0u32; batch.num_rows()];
        for (pos, &row) in winners.iter().enumerate() {
            at[row as usize] = pos as u32;
        }
        let chunk = self.chunks.len() as u32;
        for slot in self.slots.iter_mut().filter(|s| s.0 == PENDING) {
            *slot = (chunk, at[slot.1 as usize]);
        }
        self.chunk_rows += kept.num_rows();
        self.chunks.push(kept);
        // Superseded rows are garbage: keep them under twice the live ones.
        if self.chunk_rows > 2 * self.slots.len() + 65_536 {
            self.compact()?;
        }
        Ok(())
    }

    /// All live rows into one chunk, entity `i` at row `i`.
    fn compact(&mut self) -> Result<()> {
        let chunks: Vec<&RecordBatch> = self.chunks.iter().collect();
        let indices: Vec<(usize, usize)> = self
            .slots
            .iter()
            .map(|&(c, r)| (c as usize, r as usize))
            .collect();
        let one = if chunks.is_empty() {
            RecordBatch::new_empty(self.schema.clone())
        } else {
            interleave_record_batch(&chunks, &indices)?
        };
        self.chunk_rows = one.num_rows();
        self.chunks = vec![one];
        for (i, s) in self.slots.iter_mut().enumerate() {
            *s = (0, i as u32);
        }
        Ok(())
    }

    fn finish(
        mut self,
        view: RelName,
        location: String,
        feature: FeatureDef,
        version: Option<u64>,
    ) -> Result<ViewIndex> {
        self.compact()?;
        let key_types = self
            .key_columns
            .iter()
            .map(|&i| self.schema.field(i).data_type().clone())
            .collect();
        Ok(ViewIndex {
            key_types,
            view,
            location,
            feature,
            version,
            rows: self.chunks.pop().expect("one chunk after compacting"),
            times: self.times,
            keys: self.keys,
        })
    }
}

/// Now, in microseconds since the epoch.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl ViewIndex {
    pub fn schema(&self) -> SchemaRef {
        self.rows.schema()
    }

    pub fn len(&self) -> usize {
        self.rows.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.num_rows() == 0
    }

    /// Is row `i` still within the view's TTL at `now`?
    fn live(&self, i: usize, now: i64) -> bool {
        match self.feature.ttl_micros {
            Some(ttl) => (now as i128 - self.times[i] as i128) <= ttl as i128,
            None => true,
        }
    }

    /// The types of the entity key columns, in ENTITY order.
    pub fn key_types(&self) -> &[DataType] {
        &self.key_types
    }

    /// The row of the entity with key values `key` (in ENTITY order), if it
    /// has one within the TTL at `now`. A value that does not fit the key's
    /// type finds nothing (as `=` would find no row).
    pub fn find(&self, key: &[ScalarValue], now: i64) -> Result<Option<u32>> {
        if key.iter().any(ScalarValue::is_null) {
            return Ok(None);
        }
        let k = match (&self.keys, key) {
            (Keys::Int(_), [v]) => match v.cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(Some(i))) => KeyValue::Int(i),
                _ => return Ok(None),
            },
            _ => {
                let mut columns = Vec::with_capacity(key.len());
                for (v, t) in key.iter().zip(&self.key_types) {
                    match v.cast_to(t) {
                        Ok(v) if !v.is_null() => columns.push(v.to_array()?),
                        _ => return Ok(None),
                    }
                }
                match self.keys.encode(&columns)?.pop() {
                    Some(Some(k)) => k,
                    _ => return Ok(None),
                }
            }
        };
        Ok(self.keys.get(&k).filter(|&i| self.live(i as usize, now)))
    }

    /// The rows at `rows` (`None`: a row of NULLs).
    pub fn take(&self, rows: &[Option<u32>]) -> Result<RecordBatch> {
        Ok(take_record_batch(
            &self.rows,
            &UInt32Array::from(rows.to_vec()),
        )?)
    }

    /// Every entity's latest row within the TTL at `now`.
    pub fn live_rows(&self, now: i64) -> Result<RecordBatch> {
        if self.feature.ttl_micros.is_none() {
            return Ok(self.rows.clone());
        }
        let keep: Vec<u32> = (0..self.rows.num_rows())
            .filter(|&i| self.live(i, now))
            .map(|i| i as u32)
            .collect();
        self.take(&keep.into_iter().map(Some).collect::<Vec<_>>())
    }
}

/// How often other servers' commits are looked for: `SLUICE_ONLINE_POLL_MS`,
/// by default one second.
pub fn poll_interval() -> Result<Duration> {
    match std::env::var("SLUICE_ONLINE_POLL_MS") {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidParameter,
                    format!("SLUICE_ONLINE_POLL_MS must be a number of milliseconds, not \"{v}\""),
                )
            }),
        Err(_) => Ok(Duration::from_secs(1)),
    }
}

/// The feature definition and table location of an online feature view.
fn online_view(o: &Object) -> Option<(&FeatureDef, &str)> {
    let f = o.feature()?;
    let table = o.stored()?;
    f.online.then_some((f, table.location.as_str()))
}

impl OnlineStore {
    pub fn new(lake: Arc<Lake>) -> OnlineStore {
        OnlineStore {
            lake,
            indexes: RwLock::new(HashMap::new()),
            building: tokio::sync::Mutex::new(()),
        }
    }

    /// The index of `view` as it was last brought forward, if it is one of
    /// the definition `o` has now.
    fn held(&self, o: &Object) -> Option<Arc<ViewIndex>> {
        let (f, location) = online_view(o)?;
        let rel = o.rel_name();
        let ix = self.indexes.read().unwrap().get(&rel).cloned()?;
        (ix.location == location && &ix.feature == f).then_some(ix)
    }

    /// The index of the online feature view `o`, built now if it has none.
    pub async fn index(&self, o: &Object) -> Result<Arc<ViewIndex>> {
        if let Some(ix) = self.held(o) {
            return Ok(ix);
        }
        self.sync(o).await
    }

    /// Bring the index of `o` forward to its table's newest version: only
    /// the files appended since the indexed version are read when that is
    /// all that happened, else the table is read again.
    pub async fn sync(&self, o: &Object) -> Result<Arc<ViewIndex>> {
        let Some((feature, location)) = online_view(o) else {
            return Err(Error::new(
                ErrorKind::WrongObjectType,
                format!(
                    "\"{}.{}\" is not an ONLINE feature view (CREATE FEATURE VIEW ... ONLINE)",
                    o.schema, o.name
                ),
            ));
        };
        let _one = self.building.lock().await;
        let url = self.lake.url_for(location)?;
        let table = self.lake.table_now(&url).await?;
        let version = table.version();
        let held = self.held(o);
        if let Some(ix) = &held
            && ix.version == version
        {
            return Ok(ix.clone());
        }
        let rel = o.rel_name();
        // Only what was appended since the indexed version, when that is
        // all that happened; if reading it fails, the whole table.
        let appended = match (&held, held.as_ref().and_then(|ix| ix.version), version) {
            (Some(ix), Some(from), Some(to)) => {
                match changes::since(&table, from as i64, to as i64).await? {
                    Changes::Appended(files) => Some((ix.clone(), files)),
                    _ => None,
                }
            }
            _ => None,
        };
        let added = match appended {
            Some((ix, files)) => {
                let provider = crate::lake::provider_of_files(&table, files).await?;
                match Builder::from_index(&ix) {
                    Ok(b) => b.read(provider).await.map_err(|e| {
                        tracing::debug!(view = %rel, "online index read again in full: {e}");
                    }),
                    Err(_) => Err(()),
                }
            }
            None => Err(()),
        };
        let builder = match added {
            Ok(b) => b,
            Err(()) => {
                let provider = crate::lake::provider(&table).await?;
                Builder::new(provider.schema(), feature)?
                    .read(provider)
                    .await?
            }
        };
        let ix = Arc::new(builder.finish(
            rel.clone(),
            location.to_string(),
            feature.clone(),
            version,
        )?);
        tracing::debug!(view = %rel, version = ?version, entities = ix.len(), "online index");
        self.indexes.write().unwrap().insert(rel, ix.clone());
        Ok(ix)
    }

    /// Bring every online feature view of the catalog forward, and forget
    /// the indexes of views that are gone or no longer online.
    pub async fn poll(&self, catalog: &Catalog) -> Result<()> {
        let snapshot = catalog.refresh().await?;
        let online: Vec<&Object> = snapshot
            .of_kind(Kind::MaterializedView)
            .filter(|o| online_view(o).is_some())
            .collect();
        self.indexes
            .write()
            .unwrap()
            .retain(|rel, _| online.iter().any(|o| &o.rel_name() == rel));
        for o in online {
            if let Err(e) = self.sync(o).await {
                tracing::warn!(view = %o.rel_name(), "online index not brought forward: {e}");
            }
        }
        Ok(())
    }

    /// Poll every `every` for as long as the store lives.
    pub fn start_polling(self: &Arc<Self>, catalog: Arc<Catalog>, every: Duration) {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(s) = store.upgrade() else { return };
                if let Err(e) = s.poll(&catalog).await {
                    tracing::warn!("online store poll failed: {e}");
                }
                drop(s);
                tokio::time::sleep(every).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    fn def(ttl: Option<i64>) -> FeatureDef {
        FeatureDef {
            entity: vec!["k".into()],
            timestamp: "ts".into(),
            created_at: None,
            ttl_micros: ttl,
            ttl: None,
            online: true,
        }
    }

    fn batch(keys: &[Option<&str>], ts: &[i64], v: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("v", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(TimestampMicrosecondArray::from(ts.to_vec())),
                Arc::new(Int64Array::from(v.to_vec())),
            ],
        )
        .unwrap()
    }

    fn value(ix: &ViewIndex, k: &str, now: i64) -> Option<i64> {
        let row = ix.find(&[ScalarValue::from(k)], now).unwrap()?;
        Some(
            ix.rows
                .column(2)
                .as_primitive::<Int64Type>()
                .value(row as usize),
        )
    }

    #[test]
    fn keeps_the_latest_row_per_entity_in_any_order() {
        let b1 = batch(&[Some("a"), Some("b"), None], &[10, 5, 99], &[1, 2, 3]);
        let mut b = Builder::new(b1.schema(), &def(None)).unwrap();
        b.absorb(b1).unwrap();
        b.absorb(batch(&[Some("a"), Some("b")], &[7, 6], &[4, 5]))
            .unwrap();
        let ix = b
            .finish(RelName::new("s", "v"), "l".into(), def(None), Some(1))
            .unwrap();
        assert_eq!(ix.len(), 2, "the NULL key is not served");
        assert_eq!(value(&ix, "a", 0), Some(1));
        assert_eq!(value(&ix, "b", 0), Some(5));
        assert_eq!(value(&ix, "c", 0), None);
    }

    #[test]
    fn appends_continue_an_index_and_ttl_hides_old_rows() {
        let b1 = batch(&[Some("a"), Some("b")], &[10, 20], &[1, 2]);
        let mut b = Builder::new(b1.schema(), &def(Some(15))).unwrap();
        b.absorb(b1).unwrap();
        let ix = b
            .finish(RelName::new("s", "v"), "l".into(), def(Some(15)), Some(1))
            .unwrap();
        let mut b = Builder::from_index(&ix).unwrap();
        b.absorb(batch(&[Some("a")], &[30], &[7])).unwrap();
        let ix = b
            .finish(RelName::new("s", "v"), "l".into(), def(Some(15)), Some(2))
            .unwrap();
        assert_eq!(value(&ix, "a", 40), Some(7));
        assert_eq!(value(&ix, "b", 35), Some(2), "15 after its event time");
        assert_eq!(value(&ix, "b", 36), None, "expired");
        assert_eq!(ix.live_rows(36).unwrap().num_rows(), 1);
    }

    #[test]
    fn compacts_when_superseded_rows_pile_up() {
        let first = batch(&[Some("a")], &[0], &[0]);
        let mut b = Builder::new(first.schema(), &def(None)).unwrap();
        for i in 0..200_000i64 {
            b.absorb(batch(&[Some("a")], &[i], &[i])).unwrap();
        }
        assert!(b.chunk_rows <= 2 + 65_536 + 1);
        let ix = b
            .finish(RelName::new("s", "v"), "l".into(), def(None), None)
            .unwrap();
        assert_eq!(value(&ix, "a", 0), Some(199_999));
    }
}
