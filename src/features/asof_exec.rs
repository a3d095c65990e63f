//! The ASOF join operator.
//!
//! Both inputs are hash-partitioned on the join keys, so each partition
//! joins on its own. Per partition the right side (the features) is
//! gathered into one batch and indexed: its rows grouped by key, each group
//! sorted by time. The left side (the labels) then streams through: a key
//! lookup and a binary search per row find the match, and the output is
//! built with `take`, a batch out for each batch in.
//!
//! ```text
//!  right ─collect─▶ index: key ─▶ rows sorted by time
//!  left  ─stream──▶ per row: group, binary search, cutoff walk, TTL ─▶ take ─▶ out
//! ```
//!
//! The right side of a partition is held in memory, reserved from the
//! memory pool. When the pool refuses it, the partition is split on disk:
//! both sides are written to [`SPILL_PARTS`] files by a hash of the keys
//! (rows of one key land in one file pair), and the pairs are joined one
//! after another, each within the pool. Only a single file pair whose right
//! side still does not fit (one huge key) fails with "resources exhausted".
//!
//! ```text
//!  right ─collect─▶ refused ─▶ right files 0..N ┐
//!  left  ───────────────────▶ left files 0..N  ┴▶ per pair: index right k, stream left k
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{BatchCoalescer, cast, concat_batches, take, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, SpillFile, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::EmptyRecordBatchStream;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, SpillMetrics,
};
use datafusion::physical_plan::spill::SpillManager;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

use super::asof::AsofOp;

/// What to join on: expressions over the left and the right input.
#[derive(Debug)]
pub struct AsofSpec {
    pub left_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub right_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub left_time: Arc<dyn PhysicalExpr>,
    pub right_time: Arc<dyn PhysicalExpr>,
    /// A right-side time after which the left time must be for the row to
    /// be usable (when the value became known).
    pub cutoff: Option<Arc<dyn PhysicalExpr>>,
    pub op: AsofOp,
    pub keep_unmatched: bool,
    /// The oldest a match may be, in units of the time column.
    pub max_age: Option<i64>,
}

#[derive(Debug)]
pub struct AsofJoinExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    spec: Arc<AsofSpec>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl AsofJoinExec {
    pub fn try_new(
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
        spec: Arc<AsofSpec>,
        schema: SchemaRef,
    ) -> DfResult<Self> {
        let partitioning = if spec.left_keys.is_empty() {
            Partitioning::UnknownPartitioning(1)
        } else {
            left.output_partitioning().clone()
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            partitioning,
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(AsofJoinExec {
            left,
            right,
            spec,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for AsofJoinExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let s = &self.spec;
        write!(
            f,
            "AsofJoinExec: {}{:?}, keys={}",
            if s.keep_unmatched { "left, " } else { "" },
            s.op,
            s.left_keys.len()
        )?;
        if s.cutoff.is_some() {
            write!(f, ", cutoff")?;
        }
        if let Some(age) = s.max_age {
            write!(f, ", max_age={age}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for AsofJoinExec {
    fn name(&self) -> &'static str {
        "AsofJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        if self.spec.left_keys.is_empty() {
            vec![Distribution::SinglePartition, Distribution::SinglePartition]
        } else {
            vec![
                Distribution::KeyPartitioned(self.spec.left_keys.clone()),
                Distribution::KeyPartitioned(self.spec.right_keys.clone()),
            ]
        }
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        // Left rows keep their order, but the output does not declare it:
        // a sort is never pushed below the join.
        vec![false, false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        let s = &self.spec;
        let all = s
            .left_keys
            .iter()
            .chain(&s.right_keys)
            .chain([&s.left_time, &s.right_time])
            .chain(s.cutoff.as_ref());
        for e in all {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [left, right]: [Arc<dyn ExecutionPlan>; 2] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("AsofJoinExec takes two inputs".into()))?;
        Ok(Arc::new(AsofJoinExec::try_new(
            left,
            right,
            self.spec.clone(),
            self.schema.clone(),
        )?))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let (nl, nr) = (
            self.left.output_partitioning().partition_count(),
            self.right.output_partitioning().partition_count(),
        );
        if nl != nr {
            return Err(DataFusionError::Internal(format!(
                "AsofJoinExec: {nl} left and {nr} right partitions"
            )));
        }
        let right = self.right.execute(partition, context.clone())?;
        let left = self.left.execute(partition, context.clone())?;
        let join = Join {
            spec: self.spec.clone(),
            schema: self.schema.clone(),
            metrics: BaselineMetrics::new(&self.metrics, partition),
            spill: SpillMetrics::new(&self.metrics, partition),
            context,
            partition,
        };
        let schema = self.schema.clone();
        let stream = futures::stream::once(join.run(left, right)).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// How many file pairs a partition whose right side does not fit in memory
/// is split into.
pub const SPILL_PARTS: usize = 32;

/// Splits spilled rows by key; not the hash that partitioned the inputs
/// (all rows of a partition share that one's remainder).
const SPILL_HASH: datafusion::common::hash_utils::RandomState =
    datafusion::common::hash_utils::RandomState::with_seed(0x5151_a50f);

type Joined = std::pin::Pin<Box<dyn futures::Stream<Item = DfResult<RecordBatch>> + Send>>;

/// One partition of the join.
struct Join {
    spec: Arc<AsofSpec>,
    schema: SchemaRef,
    metrics: BaselineMetrics,
    spill: SpillMetrics,
    context: Arc<TaskContext>,
    partition: usize,
}

/// The right side of a partition as far as it was read.
enum Gathered {
    /// All of it, reserved.
    Whole(Vec<RecordBatch>, MemoryReservation),
    /// The pool refused more (why): what was read, and the rest.
    TooLarge(Vec<RecordBatch>, SendableRecordBatchStream, DataFusionError),
}

impl Join {
    fn reservation(&self, what: &str) -> MemoryReservation {
        MemoryConsumer::new(format!("AsofJoinExec[{}]{what}", self.partition))
            .with_can_spill(true)
            .register(self.context.memory_pool())
    }

    /// Read the right side while the pool grants it (batches and index).
    /// `coalesce`: copy small batches into full ones as they come (the
    /// small batches read back from a spill file each hold a large buffer).
    async fn gather(
        mut input: SendableRecordBatchStream,
        reservation: MemoryReservation,
        coalesce: bool,
    ) -> DfResult<Gathered> {
        let mut batches = Vec::new();
        let mut coalescer = coalesce.then(|| BatchCoalescer::new(input.schema(), 8192));
        loop {
            let batch = match coalescer.as_mut() {
                None => match input.try_next().await? {
                    Some(b) => b,
                    None => break,
                },
                Some(c) => match c.next_completed_batch() {
                    Some(b) => b,
                    None => match input.try_next().await? {
                        Some(b) => {
                            c.push_batch(b)?;
                            continue;
                        }
                        None if c.is_empty() => break,
                        None => {
                            c.finish_buffered_batch()?;
                            continue;
                        }
                    },
                },
            };
            // The batch, its copy in the concatenated one, and the index
            // (buffers shared by columns counted once: batches read back
            // from a spill file share one).
            let size = datafusion::physical_plan::spill::get_record_batch_memory_size(&batch);
            let need = 2 * size + batch.num_rows() * 32;
            match reservation.try_grow(need) {
                Ok(()) => batches.push(batch),
                Err(e) if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) => {
                    batches.push(batch);
                    return Ok(Gathered::TooLarge(batches, input, e));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Gathered::Whole(batches, reservation))
    }

    fn probe_stream(&self, index: Index, left: SendableRecordBatchStream) -> Joined {
        let (spec, schema, metrics) =
            (self.spec.clone(), self.schema.clone(), self.metrics.clone());
        Box::pin(left.map(move |batch| {
            let batch = batch?;
            let timer = metrics.elapsed_compute().timer();
            let out = index.probe(&batch, &spec, &schema);
            timer.done();
            if let Ok(b) = &out {
                metrics.record_output(b.num_rows());
            }
            out
        }))
    }

    async fn run(
        self,
        left: SendableRecordBatchStream,
        right: SendableRecordBatchStream,
    ) -> DfResult<Joined> {
        let right_schema = right.schema();
        match Self::gather(right, self.reservation(""), false).await? {
            Gathered::Whole(batches, reservation) => {
                let index = Index::new(&right_schema, batches, &self.spec, reservation)?;
                Ok(self.probe_stream(index, left))
            }
            Gathered::TooLarge(read, rest, _) => self.spilled(left, read, rest).await,
        }
    }

    /// The join of a partition split into file pairs.
    async fn spilled(
        self,
        left: SendableRecordBatchStream,
        read: Vec<RecordBatch>,
        rest: SendableRecordBatchStream,
    ) -> DfResult<Joined> {
        let right_schema = rest.schema();
        let key_types = self
            .spec
            .right_keys
            .iter()
            .map(|k| k.data_type(&right_schema))
            .collect::<DfResult<Vec<_>>>()?;
        let env = self.context.runtime_env();
        let right_files = SpillManager::new(env.clone(), self.spill.clone(), right_schema.clone());
        let rights = split(&right_files, &self.spec.right_keys, &key_types, read, rest).await?;
        let left_files = SpillManager::new(env, self.spill.clone(), left.schema());
        let lefts = split(&left_files, &self.spec.left_keys, &key_types, vec![], left).await?;
        let this = Arc::new(self);
        let pairs = futures::stream::iter(rights.into_iter().zip(lefts).enumerate()).then(
            move |(k, (r, l))| {
                let this = this.clone();
                let (right_files, left_files) = (right_files.clone(), left_files.clone());
                let right_schema = right_schema.clone();
                async move {
                    let Some(l) = l else {
                        return Ok(Box::pin(futures::stream::empty()) as Joined);
                    };
                    let input: SendableRecordBatchStream = match r {
                        Some(r) => right_files.read_spill_as_stream(r, None)?,
                        None => Box::pin(EmptyRecordBatchStream::new(right_schema.clone())),
                    };
                    let reservation = this.reservation(&format!("/{k}"));
                    let (batches, reservation) =
                        match Self::gather(input, reservation, true).await? {
                            Gathered::Whole(b, reservation) => (b, reservation),
                            Gathered::TooLarge(_, _, e) => {
                                return Err(DataFusionError::ResourcesExhausted(format!(
                                    "ASOF JOIN: the right rows of one group of keys do not fit \
                                 in memory even split {SPILL_PARTS} ways ({e})"
                                )));
                            }
                        };
                    let index = Index::new(&right_schema, batches, &this.spec, reservation)?;
                    let left = left_files.read_spill_as_stream(l, None)?;
                    Ok(this.probe_stream(index, left))
                }
            },
        );
        Ok(Box::pin(pairs.try_flatten()))
    }
}

/// Write the rows of `first` and then of `rest` to [`SPILL_PARTS`] files
/// by a hash of their keys (cast to the right side's key types, so both
/// sides agree): the files, `None` where no row went.
async fn split(
    manager: &SpillManager,
    keys: &[Arc<dyn PhysicalExpr>],
    key_types: &[DataType],
    first: Vec<RecordBatch>,
    mut rest: SendableRecordBatchStream,
) -> DfResult<Vec<Option<Arc<dyn SpillFile>>>> {
    let mut files = (0..SPILL_PARTS)
        .map(|_| manager.create_in_progress_file("ASOF JOIN"))
        .collect::<DfResult<Vec<_>>>()?;
    let mut write = |batch: &RecordBatch| -> DfResult<()> {
        let mut arrays = evaluate(keys, batch)?;
        for (k, t) in arrays.iter_mut().zip(key_types) {
            if k.data_type() != t {
                *k = cast(k, t)?;
            }
        }
        let mut hashes = vec![0u64; batch.num_rows()];
        datafusion::common::hash_utils::create_hashes(arrays.iter(), &SPILL_HASH, &mut hashes)?;
        let mut parts: Vec<Vec<u32>> = vec![Vec::new(); SPILL_PARTS];
        for (i, h) in hashes.iter().enumerate() {
            // The top bits of a remix: the low bits of one hash function
            // under two seeds need not be independent.
            let mixed = (h ^ (h >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            parts[((mixed >> 32) % SPILL_PARTS as u64) as usize].push(i as u32);
        }
        for (file, rows) in files.iter_mut().zip(parts) {
            if !rows.is_empty() {
                file.append_batch(&take_record_batch(batch, &UInt32Array::from(rows))?)?;
            }
        }
        Ok(())
    };
    for b in first {
        write(&b)?;
    }
    while let Some(b) = rest.try_next().await? {
        write(&b)?;
    }
    files.iter_mut().map(|f| f.finish()).collect()
}

/// Keys to their range in `order`: one integer key directly, any other
/// keys in Arrow's row format.
enum Groups {
    Int(HashMap<i64, (u32, u32)>),
    Rows(HashMap<Box<[u8]>, (u32, u32)>),
}

/// The keys of one batch, as [`Groups`] looks them up.
enum Keys {
    Int(datafusion::arrow::array::PrimitiveArray<Int64Type>),
    Rows(Rows),
}

impl Keys {
    fn of(arrays: &[ArrayRef], converter: &RowConverter, int: bool) -> DfResult<Keys> {
        Ok(if int {
            Keys::Int(
                cast(&arrays[0], &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            )
        } else {
            Keys::Rows(converter.convert_columns(arrays)?)
        })
    }

    fn range(&self, groups: &Groups, i: usize) -> Option<(u32, u32)> {
        match (self, groups) {
            (Keys::Int(k), Groups::Int(g)) => g.get(&k.value(i)).copied(),
            (Keys::Rows(k), Groups::Rows(g)) => g.get(key_of(k, i)).copied(),
            _ => None,
        }
    }
}

/// Whether one key column of this type is looked up as an integer.
fn int_key(types: &[DataType]) -> bool {
    matches!(
        types,
        [DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32]
    )
}

/// One partition's right side, indexed by key and time.
struct Index {
    batch: RecordBatch,
    converter: RowConverter,
    key_types: Vec<DataType>,
    groups: Groups,
    /// Right row numbers, grouped by key, sorted by time within a group.
    order: Vec<u32>,
    /// The time of each entry of `order`.
    times: Vec<i64>,
    /// The cutoff time of each entry of `order` (`i64::MAX` when NULL:
    /// never usable).
    cutoffs: Option<Vec<i64>>,
    _reservation: MemoryReservation,
}

impl Index {
    /// Index the right rows `batches` (their memory, and the index's,
    /// already reserved in `reservation`).
    fn new(
        schema: &SchemaRef,
        batches: Vec<RecordBatch>,
        spec: &AsofSpec,
        reservation: MemoryReservation,
    ) -> DfResult<Index> {
        let batch = concat_batches(schema, &batches)?;
        drop(batches);
        let rows = batch.num_rows();
        if rows > u32::MAX as usize {
            return Err(DataFusionError::ResourcesExhausted(
                "ASOF JOIN: more than 4 billion right rows in one partition".into(),
            ));
        }
        let keys = evaluate(&spec.right_keys, &batch)?;
        let key_types: Vec<DataType> = keys.iter().map(|k| k.data_type().clone()).collect();
        let converter = RowConverter::new(
            key_types
                .iter()
                .map(|t| SortField::new(t.clone()))
                .collect(),
        )?;
        let int = int_key(&key_types);
        let key_rows = Keys::of(&keys, &converter, int)?;
        let time = times_of(&spec.right_time.evaluate(&batch)?.into_array(rows)?)?;
        let cutoff = match &spec.cutoff {
            Some(c) => Some(times_of(&c.evaluate(&batch)?.into_array(rows)?)?),
            None => None,
        };
        // Group ids by key; rows with a NULL key or time join nothing.
        let mut int_ids: HashMap<i64, u32> = HashMap::new();
        let mut row_ids: HashMap<&[u8], u32> = HashMap::new();
        let mut group_of = vec![u32::MAX; rows];
        let mut counts: Vec<u32> = Vec::new();
        for (i, slot) in group_of.iter_mut().enumerate() {
            if time.is_null(i) || keys.iter().any(|k| k.is_null(i)) {
                continue;
            }
            let next = counts.len() as u32;
            let id = match &key_rows {
                Keys::Int(k) => *int_ids.entry(k.value(i)).or_insert(next),
                Keys::Rows(r) => *row_ids.entry(key_of(r, i)).or_insert(next),
            };
            if id == next {
                counts.push(0);
            }
            counts[id as usize] += 1;
            *slot = id;
        }
        let mut starts = Vec::with_capacity(counts.len() + 1);
        let mut total = 0u32;
        for c in &counts {
            starts.push(total);
            total += c;
        }
        starts.push(total);
        let mut fill = starts.clone();
        let mut order = vec![0u32; total as usize];
        for (i, &g) in group_of.iter().enumerate() {
            if g != u32::MAX {
                order[fill[g as usize] as usize] = i as u32;
                fill[g as usize] += 1;
            }
        }
        drop(fill);
        drop(group_of);
        let t = time.values();
        for g in 0..counts.len() {
            let (s, e) = (starts[g] as usize, starts[g + 1] as usize);
            // Ties on time keep input order: the last one loaded wins.
            order[s..e].sort_by_key(|&r| t[r as usize]);
        }
        let times: Vec<i64> = order.iter().map(|&r| t[r as usize]).collect();
        let cutoffs = cutoff.map(|c| {
            order
                .iter()
                .map(|&r| {
                    if c.is_null(r as usize) {
                        i64::MAX
                    } else {
                        c.value(r as usize)
                    }
                })
                .collect::<Vec<i64>>()
        });
        let range = |g: u32| (starts[g as usize], starts[g as usize + 1]);
        let groups = if int {
            Groups::Int(int_ids.into_iter().map(|(k, g)| (k, range(g))).collect())
        } else {
            Groups::Rows(
                row_ids
                    .into_iter()
                    .map(|(k, g)| (Box::from(k), range(g)))
                    .collect(),
            )
        };
        drop(key_rows);
        Ok(Index {
            batch,
            converter,
            key_types,
            groups,
            order,
            times,
            cutoffs,
            _reservation: reservation,
        })
    }

    /// The matching right row (its number) of each left row.
    fn probe(
        &self,
        left: &RecordBatch,
        spec: &AsofSpec,
        schema: &SchemaRef,
    ) -> DfResult<RecordBatch> {
        let n = left.num_rows();
        let mut keys = evaluate(&spec.left_keys, left)?;
        for (k, t) in keys.iter_mut().zip(&self.key_types) {
            if k.data_type() != t {
                *k = cast(k, t)?;
            }
        }
        let int = matches!(self.groups, Groups::Int(_));
        let key_rows = Keys::of(&keys, &self.converter, int)?;
        let time = times_of(&spec.left_time.evaluate(left)?.into_array(n)?)?;
        let mut left_rows: Vec<u32> = Vec::with_capacity(n);
        let mut right_rows: Vec<Option<u32>> = Vec::with_capacity(n);
        for i in 0..n {
            let found = if time.is_null(i) || keys.iter().any(|k| k.is_null(i)) {
                None
            } else {
                key_rows
                    .range(&self.groups, i)
                    .and_then(|(s, e)| self.find(s as usize, e as usize, time.value(i), spec))
            };
            if found.is_some() || spec.keep_unmatched {
                left_rows.push(i as u32);
                right_rows.push(found.map(|j| self.order[j]));
            }
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        if left_rows.len() == n {
            columns.extend(left.columns().iter().cloned());
        } else {
            let idx = UInt32Array::from(left_rows);
            for c in left.columns() {
                columns.push(take(c, &idx, None)?);
            }
        }
        let idx = UInt32Array::from(right_rows);
        for c in self.batch.columns() {
            columns.push(take(c, &idx, None)?);
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }

    /// The entry of `order` in `[s, e)` that matches left time `t`.
    fn find(&self, s: usize, e: usize, t: i64, spec: &AsofSpec) -> Option<usize> {
        let times = &self.times[s..e];
        let at = match spec.op {
            AsofOp::AtOrAfter => times.partition_point(|&x| x <= t).checked_sub(1),
            AsofOp::After => times.partition_point(|&x| x < t).checked_sub(1),
            AsofOp::AtOrBefore => Some(times.partition_point(|&x| x < t)),
            AsofOp::Before => Some(times.partition_point(|&x| x <= t)),
        }
        .filter(|&j| j < times.len())?;
        let mut j = s + at;
        if let Some(cutoffs) = &self.cutoffs {
            // The latest row already known at `t`.
            if spec.op.backward() {
                while cutoffs[j] > t {
                    if j == s {
                        return None;
                    }
                    j -= 1;
                }
            } else {
                while cutoffs[j] > t {
                    j += 1;
                    if j == e {
                        return None;
                    }
                }
            }
        }
        if let Some(age) = spec.max_age {
            let gap = (t as i128 - self.times[j] as i128).abs();
            if gap > age as i128 {
                return None;
            }
        }
        Some(j)
    }
}

/// Row `i`'s key in row format; without key columns, the one empty key.
fn key_of(rows: &Rows, i: usize) -> &[u8] {
    if rows.num_rows() == 0 {
        &[]
    } else {
        rows.row(i).data()
    }
}

fn evaluate(exprs: &[Arc<dyn PhysicalExpr>], batch: &RecordBatch) -> DfResult<Vec<ArrayRef>> {
    exprs
        .iter()
        .map(|e| e.evaluate(batch)?.into_array(batch.num_rows()))
        .collect()
}

/// A time column as 64-bit integers in its own unit.
fn times_of(a: &ArrayRef) -> DfResult<datafusion::arrow::array::PrimitiveArray<Int64Type>> {
    let as_int = match a.data_type() {
        DataType::Int64 => a.clone(),
        DataType::Timestamp(_, _) | DataType::Date64 => {
            let data = a
                .to_data()
                .into_builder()
                .data_type(DataType::Int64)
                .build()?;
            datafusion::arrow::array::make_array(data)
        }
        _ => cast(a, &DataType::Int64)?,
    };
    Ok(as_int.as_primitive::<Int64Type>().clone())
}
