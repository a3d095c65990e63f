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
//! memory pool, so a query that would not fit fails with "resources
//! exhausted" instead of taking the machine down.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, take};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
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
        let reservation = MemoryConsumer::new(format!("AsofJoinExec[{partition}]"))
            .register(context.memory_pool());
        let spec = self.spec.clone();
        let schema = self.schema.clone();
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let out_schema = schema.clone();
        let stream = futures::stream::once(async move {
            let index = Arc::new(Index::build(right, &spec, reservation).await?);
            let joined = left.map(move |batch| {
                let batch = batch?;
                let timer = metrics.elapsed_compute().timer();
                let out = index.probe(&batch, &spec, &out_schema);
                timer.done();
                if let Ok(b) = &out {
                    metrics.record_output(b.num_rows());
                }
                out
            });
            Ok::<_, DataFusionError>(joined)
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
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
    async fn build(
        mut input: SendableRecordBatchStream,
        spec: &AsofSpec,
        reservation: MemoryReservation,
    ) -> DfResult<Index> {
        let schema = input.schema();
        let mut batches = Vec::new();
        while let Some(batch) = input.try_next().await? {
            reservation.try_grow(batch.get_array_memory_size())?;
            batches.push(batch);
        }
        let batch = concat_batches(&schema, &batches)?;
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
        let (groups, key_bytes) = if int {
            let n = int_ids.len();
            let g = int_ids.into_iter().map(|(k, g)| (k, range(g))).collect();
            (Groups::Int(g), n * 24)
        } else {
            let bytes = row_ids.keys().map(|k| k.len() + 32).sum::<usize>();
            let g = row_ids
                .into_iter()
                .map(|(k, g)| (Box::from(k), range(g)))
                .collect();
            (Groups::Rows(g), bytes)
        };
        drop(key_rows);
        let index_bytes =
            order.len() * 12 + cutoffs.as_ref().map_or(0, |c| c.len() * 8) + key_bytes;
        reservation.try_grow(index_bytes)?;
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
