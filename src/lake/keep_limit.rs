//! A pass-through node that stops a LIMIT from being pushed into a scan
//! that would drop it.
//!
//! delta-rs answers a scan that reads no column (`SELECT 1 FROM t LIMIT 1`)
//! from the log alone, with a node that says a limit may be pushed into it
//! but takes none: DataFusion then removed the limit and every row came
//! back. Above such a node, this one keeps the limit where it was.

use std::fmt;
use std::sync::Arc;

use datafusion::common::Statistics;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, StatisticsArgs,
};

/// `plan` as it is when a limit pushed into it is kept, else wrapped.
pub(crate) fn keep_limit(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    let drops_limit = plan.children().is_empty()
        && plan.supports_limit_pushdown()
        && plan.with_fetch(Some(1)).is_none();
    if drops_limit {
        Arc::new(KeepLimit { input: plan })
    } else {
        plan
    }
}

#[derive(Debug)]
struct KeepLimit {
    input: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for KeepLimit {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "KeepLimit")
    }
}

impl ExecutionPlan for KeepLimit {
    fn name(&self) -> &'static str {
        "KeepLimit"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => Ok(Arc::new(KeepLimit { input })),
            _ => datafusion::common::internal_err!("KeepLimit takes one input"),
        }
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        Ok(input_stats[0].clone())
    }
}
