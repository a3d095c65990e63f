//! Window aggregates over `RANGE` frames, with the frame found by integer
//! comparisons.
//!
//! DataFusion finds each row's `RANGE` frame by building its ORDER BY value
//! and the frame's edge as `ScalarValue`s and comparing them row by row:
//! for `count(*) OVER (PARTITION BY user ORDER BY ts RANGE BETWEEN INTERVAL
//! '1 hour' PRECEDING AND CURRENT ROW)` every row pays a timestamp-interval
//! subtraction through an Arrow kernel on one-element arrays and a linear
//! search of scalar comparisons. That was four fifths of the time of the
//! demo's feature views.
//!
//! [`RangeWindows`] replaces a window node whose expressions are all
//! aggregates over `RANGE` frames with one ORDER BY column of an integer,
//! date or timestamp type by a [`RangeWindowExec`]. The exec maps the ORDER
//! BY values to 128-bit integers (negated for `DESC`, NULL below or above
//! every value as the sort puts it), finds frame edges with integer
//! comparisons, and feeds DataFusion's own accumulators exactly the row
//! ranges DataFusion would: the same updates and retractions in the same
//! order, so every result is the one DataFusion computes. Frame offsets
//! are reckoned in 128 bits, so one that takes the edge past the limits of
//! the column's type is past every row, as in PostgreSQL (DataFusion's
//! arithmetic overflowed there and took the partition's edge, NULLs
//! included). Intervals with months, and days
//! in a time zone with daylight saving time, keep DataFusion's exec.
//!
//! The input is sorted by the partition keys and the ORDER BY column (the
//! replaced node required it). A partition's rows are kept only until
//! every frame has moved past them, so memory is bounded by the widest
//! frame, not the partition.

use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{SortOptions, concat, concat_batches};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Int16Type, Int32Type, Int64Type,
    SchemaRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::utils::{evaluate_partition_ranges, get_row_at_idx};
use datafusion::common::{ScalarValue, internal_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Accumulator, WindowFrameBound, WindowFrameUnits};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::window::{
    PlainAggregateWindowExpr, SlidingAggregateWindowExpr, WindowExpr,
};
use datafusion::physical_expr::{OrderingRequirements, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan,
    InputDistributionRequirements, InputOrderMode, PlanProperties, RecordBatchStream,
    ReplaceChildrenOptions, SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

/// Runs last among the physical rules: the node it builds reports the
/// properties of the node it replaces.
#[derive(Debug, Default)]
pub struct RangeWindows;

impl PhysicalOptimizerRule for RangeWindows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        crate::tree::transform_up(plan, |node| {
            Ok(match RangeWindowExec::replacing(&node)? {
                Some(exec) => Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "range_windows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A frame edge, with offsets in units of the ORDER BY column.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound {
    Unbounded,
    Preceding(i128),
    CurrentRow,
    Following(i128),
}

/// The ORDER BY column's type, as far as offsets on it are concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KeyType {
    Int16,
    Int32,
    Int64,
    Date32,
    Date64,
    Timestamp(TimeUnit),
}

impl KeyType {
    fn of(data_type: &DataType) -> Option<KeyType> {
        Some(match data_type {
            DataType::Int16 => KeyType::Int16,
            DataType::Int32 => KeyType::Int32,
            DataType::Int64 => KeyType::Int64,
            DataType::Date32 => KeyType::Date32,
            DataType::Date64 => KeyType::Date64,
            DataType::Timestamp(unit, _) => KeyType::Timestamp(*unit),
            _ => return None,
        })
    }
}

/// The offset of a `RANGE` frame bound in units of the ORDER BY column,
/// when DataFusion's arithmetic with it is plain integer arithmetic.
fn offset(value: &ScalarValue, key: KeyType, time_zone: Option<&str>) -> Option<i128> {
    let exact = |nanos: i128, unit: TimeUnit| {
        let per = match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        };
        (nanos % per == 0).then_some(nanos / per)
    };
    // A day is 24 hours only where the clock never changes.
    let fixed_days = matches!(time_zone, None | Some("UTC" | "+00:00" | "Z"));
    match (key, value) {
        (KeyType::Int16, ScalarValue::Int16(Some(n))) => Some(*n as i128),
        (KeyType::Int32, ScalarValue::Int32(Some(n))) => Some(*n as i128),
        (KeyType::Int64, ScalarValue::Int64(Some(n))) => Some(*n as i128),
        (KeyType::Timestamp(unit), ScalarValue::IntervalMonthDayNano(Some(v))) => {
            if v.months != 0 || (v.days != 0 && !fixed_days) {
                return None;
            }
            exact(
                v.days as i128 * 86_400_000_000_000 + v.nanoseconds as i128,
                unit,
            )
        }
        (KeyType::Timestamp(unit), ScalarValue::IntervalDayTime(Some(v))) => {
            if v.days != 0 && !fixed_days {
                return None;
            }
            exact(
                (v.days as i128 * 86_400_000 + v.milliseconds as i128) * 1_000_000,
                unit,
            )
        }
        _ => None,
    }
}

fn bound(bound: &WindowFrameBound, key: KeyType, time_zone: Option<&str>) -> Option<Bound> {
    Some(match bound {
        WindowFrameBound::CurrentRow => Bound::CurrentRow,
        WindowFrameBound::Preceding(v) if v.is_null() => Bound::Unbounded,
        WindowFrameBound::Preceding(v) => Bound::Preceding(offset(v, key, time_zone)?),
        // UNBOUNDED FOLLOWING keeps DataFusion's exec.
        WindowFrameBound::Following(v) if v.is_null() => return None,
        WindowFrameBound::Following(v) => Bound::Following(offset(v, key, time_zone)?),
    })
}

/// A frame whose start never comes after its end.
fn ordered(start: Bound, end: Bound) -> bool {
    let rank = |b: Bound| match b {
        Bound::Unbounded => (0, 0),
        Bound::Preceding(n) => (1, -n),
        Bound::CurrentRow => (2, 0),
        Bound::Following(n) => (3, n),
    };
    !matches!(end, Bound::Unbounded) && rank(start) <= rank(end)
}

/// One window aggregate of the node.
#[derive(Debug, Clone)]
struct FrameAggregate {
    aggregate: Arc<AggregateFunctionExpr>,
    /// Rows leave the frame (its start moves): a sliding accumulator.
    sliding: bool,
    start: Bound,
    end: Bound,
}

impl FrameAggregate {
    fn of(expr: &Arc<dyn WindowExpr>, key: KeyType, time_zone: Option<&str>) -> Option<Self> {
        let any = expr.as_any();
        let (aggregate, sliding) = if let Some(e) = any.downcast_ref::<SlidingAggregateWindowExpr>()
        {
            (e.get_aggregate_expr(), true)
        } else if let Some(e) = any.downcast_ref::<PlainAggregateWindowExpr>() {
            (e.get_aggregate_expr(), false)
        } else {
            return None;
        };
        let frame = expr.get_window_frame();
        if frame.units != WindowFrameUnits::Range {
            return None;
        }
        let start = bound(&frame.start_bound, key, time_zone)?;
        let end = bound(&frame.end_bound, key, time_zone)?;
        // A plain accumulator never retracts: its frames start at the
        // partition's first row.
        if !ordered(start, end) || (!sliding && start != Bound::Unbounded) {
            return None;
        }
        // `agg(...) FILTER (WHERE ...)` keeps DataFusion's exec: the
        // filter is not public, but its debug form (the last field) is.
        if !format!("{expr:?}").ends_with("filter: None }") {
            return None;
        }
        Some(FrameAggregate {
            aggregate: Arc::new(aggregate.clone()),
            sliding,
            start,
            end,
        })
    }

    fn accumulator(&self) -> Result<Box<dyn Accumulator>> {
        if self.sliding {
            self.aggregate.create_sliding_accumulator()
        } else {
            self.aggregate.create_accumulator()
        }
    }
}

/// What the window aggregates of one node share.
#[derive(Debug, Clone)]
struct Spec {
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    order: PhysicalSortExpr,
    aggregates: Vec<FrameAggregate>,
    schema: SchemaRef,
}

/// A window node of aggregates over `RANGE` frames (see the module).
#[derive(Debug)]
pub struct RangeWindowExec {
    /// The node replaced: its properties, requirements and display.
    replaced: Arc<dyn ExecutionPlan>,
    input: Arc<dyn ExecutionPlan>,
    spec: Arc<Spec>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl RangeWindowExec {
    /// The exec for a window node, when its expressions allow.
    fn replacing(node: &Arc<dyn ExecutionPlan>) -> Result<Option<RangeWindowExec>> {
        let (exprs, input) = if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
            if w.input_order_mode != InputOrderMode::Sorted || w.state_observer().is_some() {
                return Ok(None);
            }
            (w.window_expr(), w.input())
        } else if let Some(w) = node.downcast_ref::<WindowAggExec>() {
            (w.window_expr(), w.input())
        } else {
            return Ok(None);
        };
        let Some(first) = exprs.first() else {
            return Ok(None);
        };
        let [order] = first.order_by() else {
            return Ok(None);
        };
        let partition_by = first.partition_by();
        let input_schema = input.schema();
        let data_type = order.expr.data_type(&input_schema)?;
        let Some(key) = KeyType::of(&data_type) else {
            return Ok(None);
        };
        let time_zone = match &data_type {
            DataType::Timestamp(_, tz) => tz.as_deref(),
            _ => None,
        };
        let mut aggregates = Vec::with_capacity(exprs.len());
        for expr in exprs {
            let same_keys = expr.order_by() == first.order_by()
                && expr.partition_by().len() == partition_by.len()
                && expr
                    .partition_by()
                    .iter()
                    .zip(partition_by)
                    .all(|(a, b)| a.eq(b));
            match FrameAggregate::of(expr, key, time_zone) {
                Some(a) if same_keys => aggregates.push(a),
                _ => return Ok(None),
            }
        }
        let spec = Spec {
            partition_by: partition_by.to_vec(),
            order: order.clone(),
            aggregates,
            schema: node.schema(),
        };
        Ok(Some(RangeWindowExec {
            replaced: node.clone(),
            input: input.clone(),
            spec: Arc::new(spec),
            properties: node.properties().clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}

impl DisplayAs for RangeWindowExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RangeWindowExec: wdw=[")?;
        for (i, a) in self.spec.aggregates.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}", a.aggregate.name())?;
        }
        write!(f, "]")
    }
}

impl ExecutionPlan for RangeWindowExec {
    fn name(&self) -> &'static str {
        "RangeWindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.replaced.input_distribution_requirements()
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.replaced.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.replaced.maintains_input_order()
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        self.replaced.benefits_from_input_partitioning()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.replaced.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let replaced = self.replaced.clone().replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
        Ok(match RangeWindowExec::replacing(&replaced)? {
            Some(exec) => Arc::new(exec),
            None => replaced,
        })
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        Ok(Box::pin(RangeWindowStream {
            input,
            windows: Windows {
                spec: self.spec.clone(),
                current: None,
            },
            baseline: BaselineMetrics::new(&self.metrics, partition),
            done: false,
        }))
    }
}

struct RangeWindowStream {
    input: SendableRecordBatchStream,
    windows: Windows,
    baseline: BaselineMetrics,
    done: bool,
}

impl Stream for RangeWindowStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let next = match self.input.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => next,
            };
            let this = &mut *self;
            let timer = this.baseline.elapsed_compute().timer();
            let out = match next {
                Some(Ok(batch)) => this.windows.push(&batch),
                Some(Err(e)) => Err(e),
                None => {
                    this.done = true;
                    this.windows.finish()
                }
            };
            timer.done();
            match out {
                Ok(Some(batch)) => {
                    this.baseline.record_output(batch.num_rows());
                    return Poll::Ready(Some(Ok(batch)));
                }
                Ok(None) => continue,
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl RecordBatchStream for RangeWindowStream {
    fn schema(&self) -> SchemaRef {
        self.windows.spec.schema.clone()
    }
}

/// The window state of one stream: the partition whose rows are arriving.
struct Windows {
    spec: Arc<Spec>,
    current: Option<Partition>,
}

impl Windows {
    /// The rows of `batch` whose frames are complete, with their window
    /// values.
    fn push(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(None);
        }
        let spec = self.spec.clone();
        let keys = spec
            .partition_by
            .iter()
            .map(|e| e.evaluate(batch)?.into_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let order = spec.order.expr.evaluate(batch)?.into_array(rows)?;
        let positions = sort_positions(&order, spec.order.options)?;
        let mut columns = Vec::with_capacity(spec.aggregates.len());
        for a in &spec.aggregates {
            let args = a
                .aggregate
                .expressions()
                .iter()
                .map(|e| e.evaluate(batch)?.into_array(rows))
                .collect::<Result<Vec<_>>>()?;
            columns.push(args);
        }
        let ranges = if keys.is_empty() {
            std::iter::once(0..rows).collect()
        } else {
            let sort_columns = keys
                .iter()
                .map(|values| datafusion::arrow::compute::SortColumn {
                    values: values.clone(),
                    options: None,
                })
                .collect::<Vec<_>>();
            evaluate_partition_ranges(rows, &sort_columns)?
        };
        let mut out = Vec::new();
        for range in ranges {
            let key = get_row_at_idx(&keys, range.start)?;
            if self.current.as_ref().is_some_and(|p| p.key != key)
                && let Some(mut done) = self.current.take()
            {
                out.extend(done.advance(&spec, true)?);
            }
            if self.current.is_none() {
                self.current = Some(Partition::new(&spec, key, batch.schema())?);
            }
            let Some(part) = self.current.as_mut() else {
                return internal_err!("window partition missing");
            };
            let n = range.len();
            part.append(
                batch.slice(range.start, n),
                &positions[range.clone()],
                columns
                    .iter()
                    .map(|args| args.iter().map(|a| a.slice(range.start, n)).collect())
                    .collect(),
            )?;
            out.extend(part.advance(&spec, false)?);
        }
        combine(&spec.schema, out)
    }

    /// The rows still held, at the end of the input.
    fn finish(&mut self) -> Result<Option<RecordBatch>> {
        let spec = self.spec.clone();
        let out = match self.current.take() {
            Some(mut last) => last.advance(&spec, true)?.into_iter().collect(),
            None => Vec::new(),
        };
        combine(&spec.schema, out)
    }
}

fn combine(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Option<RecordBatch>> {
    Ok(match batches.len() {
        0 => None,
        1 => batches.into_iter().next(),
        _ => Some(concat_batches(schema, &batches)?),
    })
}

/// ORDER BY values as positions in an ascending order: negated for
/// `DESC`, NULL before or after every value.
fn sort_positions(order: &ArrayRef, options: SortOptions) -> Result<Vec<i128>> {
    fn positions<T>(array: &ArrayRef, options: SortOptions) -> Vec<i128>
    where
        T: ArrowPrimitiveType,
        T::Native: Into<i128>,
    {
        let null = if options.nulls_first {
            i128::MIN
        } else {
            i128::MAX
        };
        let values = array.as_primitive::<T>();
        (0..values.len())
            .map(|i| {
                if values.is_null(i) {
                    null
                } else if options.descending {
                    -values.value(i).into()
                } else {
                    values.value(i).into()
                }
            })
            .collect()
    }
    Ok(match order.data_type() {
        DataType::Int16 => positions::<Int16Type>(order, options),
        DataType::Int32 => positions::<Int32Type>(order, options),
        DataType::Int64 => positions::<Int64Type>(order, options),
        DataType::Date32 => positions::<Date32Type>(order, options),
        DataType::Date64 => positions::<Date64Type>(order, options),
        DataType::Timestamp(TimeUnit::Second, _) => {
            positions::<TimestampSecondType>(order, options)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            positions::<TimestampMillisecondType>(order, options)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            positions::<TimestampMicrosecondType>(order, options)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            positions::<TimestampNanosecondType>(order, options)
        }
        other => return internal_err!("RANGE frame over {other}"),
    })
}

/// Where one window aggregate has got to in the current partition.
/// Indexes count from the partition's first row.
struct Progress {
    accumulator: Box<dyn Accumulator>,
    /// The frame of the last row computed.
    frame: Range<usize>,
    /// The next row to compute.
    next: usize,
    /// Values computed and not yet output.
    values: Vec<ScalarValue>,
}

/// The rows of one partition that are still needed, from index `base` on.
struct Partition {
    key: Vec<ScalarValue>,
    base: usize,
    rows: RecordBatch,
    positions: Vec<i128>,
    /// Per aggregate: its argument columns.
    inputs: Inputs,
    progress: Vec<Progress>,
    /// The next row to output.
    emitted: usize,
}

type Inputs = Vec<Vec<ArrayRef>>;

impl Partition {
    fn new(spec: &Spec, key: Vec<ScalarValue>, schema: SchemaRef) -> Result<Partition> {
        let progress = spec
            .aggregates
            .iter()
            .map(|a| {
                Ok(Progress {
                    accumulator: a.accumulator()?,
                    frame: 0..0,
                    next: 0,
                    values: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Partition {
            key,
            base: 0,
            rows: RecordBatch::new_empty(schema),
            positions: Vec::new(),
            inputs: Vec::new(),
            progress,
            emitted: 0,
        })
    }

    fn end(&self) -> usize {
        self.base + self.positions.len()
    }

    fn append(&mut self, rows: RecordBatch, positions: &[i128], inputs: Inputs) -> Result<()> {
        if self.positions.is_empty() {
            self.rows = rows;
            self.inputs = inputs;
        } else {
            self.rows = concat_batches(&self.rows.schema(), [&self.rows, &rows])?;
            for (args, more_args) in self.inputs.iter_mut().zip(inputs) {
                for (a, more) in args.iter_mut().zip(more_args) {
                    *a = concat(&[a.as_ref(), more.as_ref()])?;
                }
            }
        }
        self.positions.extend_from_slice(positions);
        Ok(())
    }

    /// Computes every row whose frame is known (all of them when the
    /// partition has `ended`), outputs the rows every aggregate has
    /// computed, and lets go of the rows no frame reaches any more.
    fn advance(&mut self, spec: &Spec, ended: bool) -> Result<Option<RecordBatch>> {
        let end = self.end();
        for (i, a) in spec.aggregates.iter().enumerate() {
            while self.progress[i].next < end {
                let row = self.progress[i].next;
                let frame = self.frame(a, &self.progress[i].frame, row);
                // A frame that reaches the last row held may grow with
                // rows still to come.
                if frame.end == end && !ended {
                    break;
                }
                let value = self.aggregate(i, a, frame.clone())?;
                let p = &mut self.progress[i];
                p.frame = frame;
                p.next += 1;
                p.values.push(value);
            }
        }
        let ready = self.progress.iter().map(|p| p.next).min().unwrap_or(end);
        let batch = if ready > self.emitted {
            let n = ready - self.emitted;
            let mut columns = self
                .rows
                .slice(self.emitted - self.base, n)
                .columns()
                .to_vec();
            for p in &mut self.progress {
                let values: Vec<ScalarValue> = p.values.drain(..n).collect();
                columns.push(ScalarValue::iter_to_array(values)?);
            }
            self.emitted = ready;
            Some(RecordBatch::try_new(spec.schema.clone(), columns)?)
        } else {
            None
        };
        self.release(spec);
        Ok(batch)
    }

    /// Drops the rows before every frame and before the next row to output.
    fn release(&mut self, spec: &Spec) {
        let keep = spec
            .aggregates
            .iter()
            .zip(&self.progress)
            .map(|(a, p)| {
                if a.sliding {
                    p.frame.start
                } else {
                    p.frame.end
                }
            })
            .fold(self.emitted, usize::min);
        let drop = keep.saturating_sub(self.base);
        // Slicing is cheap, but the arrays keep their buffers until the
        // next append copies what is left: wait for a worthwhile amount.
        if drop == 0 || (drop < 1024 && drop * 2 < self.positions.len()) {
            return;
        }
        let rest = self.positions.len() - drop;
        self.rows = self.rows.slice(drop, rest);
        self.positions.drain(..drop);
        for args in &mut self.inputs {
            for a in args.iter_mut() {
                *a = a.slice(drop, rest);
            }
        }
        self.base = keep;
    }

    fn position(&self, row: usize) -> i128 {
        self.positions[row - self.base]
    }

    /// The first row from `from` on whose position fails `before`.
    fn seek(&self, from: usize, before: impl Fn(i128) -> bool) -> usize {
        let start = from.saturating_sub(self.base).min(self.positions.len());
        let n = self.positions[start..]
            .iter()
            .take_while(|p| before(**p))
            .count();
        from + n
    }

    /// The frame of `row`, found as DataFusion finds it: the start is the
    /// first row from the last frame's start on that does not sort before
    /// the start's target value, the end the first row from the last
    /// frame's end on that sorts after the end's target value.
    fn frame(&self, a: &FrameAggregate, last: &Range<usize>, row: usize) -> Range<usize> {
        let at = self.position(row);
        let end_of_data = self.end();
        let start = match a.start {
            Bound::Unbounded => 0,
            Bound::CurrentRow => self.seek(last.start, |p| p < at),
            Bound::Preceding(n) => {
                let t = target(at, -n);
                self.seek(last.start, |p| p < t)
            }
            Bound::Following(n) => {
                let t = target(at, n);
                self.seek(last.start, |p| p < t)
            }
        };
        let end = match a.end {
            Bound::Unbounded => end_of_data,
            Bound::CurrentRow => self.seek(last.end, |p| p <= at),
            Bound::Preceding(n) => {
                let t = target(at, -n);
                self.seek(last.end, |p| p <= t)
            }
            Bound::Following(n) => {
                let t = target(at, n);
                self.seek(last.end, |p| p <= t)
            }
        };
        start..end.max(start)
    }

    /// The aggregate over `frame`, moving the accumulator from the last
    /// frame to it as DataFusion does.
    fn aggregate(
        &mut self,
        i: usize,
        a: &FrameAggregate,
        frame: Range<usize>,
    ) -> Result<ScalarValue> {
        let last = self.progress[i].frame.clone();
        let args = &self.inputs[i];
        let base = self.base;
        let slice = |from: usize, to: usize| -> Result<Vec<ArrayRef>> {
            Ok(args
                .iter()
                .map(|v| v.slice(from - base, to - from))
                .collect())
        };
        let accumulator = &mut self.progress[i].accumulator;
        if frame.start == frame.end {
            if a.sliding && last.end > last.start {
                accumulator.retract_batch(&slice(last.start, last.end)?)?;
            }
            return a.aggregate.default_value(a.aggregate.field().data_type());
        }
        if frame.end > last.end {
            accumulator.update_batch(&slice(last.end, frame.end)?)?;
        }
        if a.sliding && frame.start > last.start {
            accumulator.retract_batch(&slice(last.start, frame.start)?)?;
        }
        accumulator.evaluate()
    }
}

/// The position `offset` away from `at` in sort order, reckoned without
/// the limits of the ORDER BY column's type: a target beyond them is
/// beyond every row, as PostgreSQL's `in_range` takes an offset that
/// overflows (`ORDER BY big DESC RANGE 1 PRECEDING` of the largest bigint
/// holds its peers, never the NULLs sorted first). A NULL's frame is its
/// peers: the position itself.
fn target(at: i128, offset: i128) -> i128 {
    if at == i128::MIN || at == i128::MAX {
        return at;
    }
    at + offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_in_units_of_the_order_column() {
        let hour = ScalarValue::new_interval_mdn(0, 0, 3_600_000_000_000);
        let micros = KeyType::Timestamp(TimeUnit::Microsecond);
        assert_eq!(offset(&hour, micros, Some("UTC")), Some(3_600_000_000));
        let day = ScalarValue::new_interval_mdn(0, 1, 0);
        assert_eq!(offset(&day, micros, None), Some(86_400_000_000));
        // A day in a zone with daylight saving time is not 24 hours.
        assert_eq!(offset(&day, micros, Some("Europe/Paris")), None);
        assert_eq!(
            offset(&hour, micros, Some("Europe/Paris")),
            Some(3_600_000_000)
        );
        // Months, and fractions of the column's unit, keep DataFusion's exec.
        assert_eq!(
            offset(&ScalarValue::new_interval_mdn(1, 0, 0), micros, None),
            None
        );
        let seconds = KeyType::Timestamp(TimeUnit::Second);
        assert_eq!(
            offset(&ScalarValue::new_interval_mdn(0, 0, 1_500), seconds, None),
            None
        );
        assert_eq!(
            offset(&ScalarValue::Int32(Some(3)), KeyType::Int32, None),
            Some(3)
        );
        assert_eq!(
            offset(&ScalarValue::Int64(Some(3)), KeyType::Int32, None),
            None
        );
    }

    #[test]
    fn targets_beyond_the_type_are_beyond_every_row() {
        assert_eq!(target(10, -3), 7);
        assert_eq!(target(i16::MIN as i128 + 1, -3), i16::MIN as i128 - 2);
        // Descending: positions are negated values; 3 preceding is +3.
        assert_eq!(target(-10, -3), -13);
        assert_eq!(target(-(i64::MAX as i128), -1), -(i64::MAX as i128) - 1);
        // NULL's frame is its peers.
        assert_eq!(target(i128::MIN, -3), i128::MIN);
    }

    #[test]
    fn frames_that_start_after_they_end_are_left_alone() {
        assert!(ordered(Bound::Preceding(2), Bound::Preceding(1)));
        assert!(!ordered(Bound::Preceding(1), Bound::Preceding(2)));
        assert!(ordered(Bound::Unbounded, Bound::CurrentRow));
        assert!(!ordered(Bound::Following(1), Bound::CurrentRow));
        assert!(!ordered(Bound::CurrentRow, Bound::Unbounded));
    }

    use datafusion::arrow::array::{
        Float64Array, Int32Array, Int64Array, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// A table with partitions, peers, NULLs, large bigints, split into
    /// small batches so that partitions and frames
    /// cross batch boundaries.
    fn table(seed: u64, batch_rows: usize) -> Result<MemTable> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let rows = 1500;
        let pick = |rng: &mut fastrand::Rng, null_one_in: u32| rng.u32(0..null_one_in) != 0;
        let id: Int32Array = (0..rows).map(Some).collect();
        let g: Int32Array = (0..rows)
            .map(|_| pick(&mut rng, 15).then(|| rng.i32(0..4)))
            .collect();
        let n: Int32Array = (0..rows)
            .map(|_| pick(&mut rng, 12).then(|| rng.i32(-20..40)))
            .collect();
        // Values DataFusion's frame arithmetic does not overflow on: past
        // the limits of the type its frames differ from PostgreSQL's, and
        // this exec's follow PostgreSQL (the slt files compare them).
        let big: Int64Array = (0..rows)
            .map(|_| pick(&mut rng, 20).then(|| rng.i64(-50..50) * 1_000_000_000_000))
            .collect();
        let ts: TimestampMicrosecondArray = (0..rows)
            .map(|_| {
                pick(&mut rng, 10).then(|| 1_767_225_600_000_000 + rng.i64(0..200) * 600_000_000)
            })
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC");
        let v: Float64Array = (0..rows)
            .map(|_| pick(&mut rng, 8).then(|| rng.i32(-9..9) as f64 / 4.0))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("g", DataType::Int32, true),
            Field::new("n", DataType::Int32, true),
            Field::new("big", DataType::Int64, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("v", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(id),
                Arc::new(g),
                Arc::new(n),
                Arc::new(big),
                Arc::new(ts),
                Arc::new(v),
            ],
        )?;
        let partitions = (0..3)
            .map(|p| {
                (0..rows as usize / 3)
                    .step_by(batch_rows)
                    .map(|at| batch.slice(p * 500 + at, batch_rows.min(500 - at)))
                    .collect()
            })
            .collect();
        MemTable::try_new(schema, partitions)
    }

    /// The fast exec on small batches, or DataFusion's on batches that
    /// hold whole partitions (its frames of NULL rows under `n PRECEDING`
    /// ends depend on where batches end).
    fn context(fast: bool, seed: u64) -> Result<SessionContext> {
        let (batch, rows) = if fast { (23, 70) } else { (8192, 500) };
        let table = table(seed, rows)?;
        let config = SessionConfig::new()
            .with_batch_size(batch)
            .with_target_partitions(3);
        let mut state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(config);
        if fast {
            state = state.with_physical_optimizer_rule(Arc::new(RangeWindows));
        }
        let ctx = SessionContext::new_with_state(state.build());
        ctx.register_table("t", Arc::new(table))?;
        Ok(ctx)
    }

    async fn run(ctx: &SessionContext, sql: &str) -> Result<(String, String)> {
        let frame = ctx.sql(sql).await?;
        let plan = frame.clone().create_physical_plan().await?;
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        let batches = frame.collect().await?;
        Ok((pretty_format_batches(&batches)?.to_string(), shown))
    }

    /// Every frame shape on every key type gives what DataFusion's own
    /// window execs give, row for row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn same_results_as_datafusion() -> Result<()> {
        let int_frames = [
            "1 PRECEDING AND CURRENT ROW",
            "3 PRECEDING AND 1 FOLLOWING",
            "CURRENT ROW AND 2 FOLLOWING",
            "CURRENT ROW AND CURRENT ROW",
            "UNBOUNDED PRECEDING AND CURRENT ROW",
            "UNBOUNDED PRECEDING AND 2 FOLLOWING",
            "UNBOUNDED PRECEDING AND 1 PRECEDING",
            "5 PRECEDING AND 2 PRECEDING",
            "1 FOLLOWING AND 4 FOLLOWING",
            "0 PRECEDING AND 0 FOLLOWING",
        ];
        let big_frames = [
            "5000000000000 PRECEDING AND 5000000000000 FOLLOWING",
            "1000000000000000000 PRECEDING AND CURRENT ROW",
            "CURRENT ROW AND 1000000000000000000 FOLLOWING",
            "100000000000000 PRECEDING AND 3000000000000 PRECEDING",
        ];
        let ts_frames = [
            "INTERVAL '10 minutes' PRECEDING AND CURRENT ROW",
            "INTERVAL '1 hour' PRECEDING AND INTERVAL '20 minutes' FOLLOWING",
            "INTERVAL '1 day' PRECEDING AND INTERVAL '1 hour' PRECEDING",
            "CURRENT ROW AND INTERVAL '30 minutes' FOLLOWING",
            "UNBOUNDED PRECEDING AND CURRENT ROW",
        ];
        let orders = ["", " DESC", " NULLS FIRST", " DESC NULLS LAST"];
        let partitions = ["PARTITION BY g ", ""];
        let mut queries = Vec::new();
        for (key, frames) in [
            ("n", &int_frames[..]),
            ("big", &big_frames[..]),
            ("ts", &ts_frames[..]),
        ] {
            for (i, frame) in frames.iter().enumerate() {
                let order = orders[i % orders.len()];
                let partition = partitions[i % partitions.len()];
                let w = format!("{partition}ORDER BY {key}{order} RANGE BETWEEN {frame}");
                let other = format!(
                    "{partition}ORDER BY {key}{order} RANGE BETWEEN CURRENT ROW AND CURRENT ROW"
                );
                queries.push(format!(
                    "SELECT id, count(*) OVER w AS c, count(v) OVER w AS cv, sum(n) OVER w AS sn, \
                     sum(v) OVER w AS sv, avg(v) OVER w AS av, min(v) OVER w AS mv, \
                     max(big) OVER w AS mb, count(*) OVER u AS peers FROM t WINDOW w AS ({w}), u AS ({other}) ORDER BY id"
                ));
            }
        }
        for seed in [1, 2] {
            let plain = context(false, seed)?;
            let fast = context(true, seed)?;
            for sql in &queries {
                let (expected, _) = run(&plain, sql).await?;
                let (got, plan) = run(&fast, sql).await?;
                assert!(plan.contains("RangeWindowExec"), "{sql}\n{plan}");
                let differ: Vec<_> = got
                    .lines()
                    .zip(expected.lines())
                    .filter(|(g, e)| g != e)
                    .take(5)
                    .collect();
                assert!(differ.is_empty(), "{sql}\n(got, expected): {differ:#?}");
            }
        }
        Ok(())
    }

    /// Frames this exec does not take keep DataFusion's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_frames_keep_datafusion_execs() -> Result<()> {
        let fast = context(true, 3)?;
        for w in [
            "ORDER BY n ROWS BETWEEN 1 PRECEDING AND CURRENT ROW",
            "ORDER BY n RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING",
            "ORDER BY n, id RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
            "ORDER BY v RANGE BETWEEN 1 PRECEDING AND CURRENT ROW",
            "ORDER BY ts RANGE BETWEEN INTERVAL '1 month' PRECEDING AND CURRENT ROW",
        ] {
            let sql = format!("SELECT id, sum(n) OVER ({w}) FROM t");
            let (_, plan) = run(&fast, &sql).await?;
            assert!(!plan.contains("RangeWindowExec"), "{sql}\n{plan}");
        }
        Ok(())
    }
}
