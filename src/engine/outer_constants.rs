//! The side of an outer join that may be NULL-extended has no constants.
//!
//! DataFusion 55 carries the constants it knows of a join's inputs (a
//! column a filter fixed, `WHERE status = 'open'`, or a literal of a
//! one-row subquery) into the join's output, also for the side a LEFT,
//! RIGHT or FULL join extends with NULLs. A sort key on such a column was
//! then dropped as constant: `... LEFT JOIN (SELECT * FROM t WHERE status
//! = 'open') o ON ... ORDER BY o.status DESC, a.id` put the rows where
//! `o.status` is NULL last, a wrong answer. This physical rule, run first,
//! puts a node above each such input that forwards its rows and its
//! partitioning and ordering but none of its constants.

use std::fmt;
use std::sync::Arc;

use datafusion::common::Statistics;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::JoinType;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::{HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec};
use datafusion::physical_plan::{
    ChildStats, ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan,
    ExecutionPlanProperties, PlanProperties, ReplaceChildrenOptions, StatisticsArgs,
};

/// Hides the constants of outer joins' NULL-extended inputs (see the
/// module docs).
#[derive(Debug)]
pub struct OuterJoinConstants;

/// Which inputs (left, right) a join of `t` extends with NULLs.
fn null_extended(t: JoinType) -> (bool, bool) {
    match t {
        JoinType::Left => (false, true),
        JoinType::Right => (true, false),
        JoinType::Full => (true, true),
        _ => (false, false),
    }
}

fn join_type(plan: &Arc<dyn ExecutionPlan>) -> Option<JoinType> {
    if let Some(j) = plan.downcast_ref::<HashJoinExec>() {
        return Some(*j.join_type());
    }
    if let Some(j) = plan.downcast_ref::<SortMergeJoinExec>() {
        return Some(j.join_type());
    }
    plan.downcast_ref::<NestedLoopJoinExec>()
        .map(|j| *j.join_type())
}

fn has_constants(plan: &Arc<dyn ExecutionPlan>) -> bool {
    !plan.equivalence_properties().constants().is_empty()
}

impl PhysicalOptimizerRule for OuterJoinConstants {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(crate::tree::transform_up(plan, |node| {
            let Some(t) = join_type(&node) else {
                return Ok(Transformed::no(node));
            };
            let (left, right) = null_extended(t);
            let children: Vec<Arc<dyn ExecutionPlan>> =
                node.children().into_iter().cloned().collect();
            let [l, r] = children.as_slice() else {
                return Ok(Transformed::no(node));
            };
            let wrap_left = left && has_constants(l);
            let wrap_right = right && has_constants(r);
            if !wrap_left && !wrap_right {
                return Ok(Transformed::no(node));
            }
            let l = if wrap_left {
                NoConstants::over(l.clone())
            } else {
                l.clone()
            };
            let r = if wrap_right {
                NoConstants::over(r.clone())
            } else {
                r.clone()
            };
            Ok(Transformed::yes(node.replace_children(
                vec![l, r],
                ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
            )?))
        })?
        .data)
    }

    fn name(&self) -> &str {
        "sluice_outer_join_constants"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Its input's rows, partitioning and ordering, without its constants.
#[derive(Debug)]
struct NoConstants {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl NoConstants {
    fn over(input: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        let schema = input.schema();
        let eq = match input.output_ordering() {
            Some(o) => EquivalenceProperties::new_with_orderings(schema, [o.clone()]),
            None => EquivalenceProperties::new(schema),
        };
        let properties = Arc::new(input.properties().as_ref().clone().with_eq_properties(eq));
        Arc::new(NoConstants { input, properties })
    }
}

impl DisplayAs for NoConstants {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "NullableSideExec")
    }
}

impl ExecutionPlan for NoConstants {
    fn name(&self) -> &'static str {
        "NullableSideExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
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
            Some(input) if children.is_empty() => Ok(NoConstants::over(input)),
            _ => datafusion::common::internal_err!("NullableSideExec takes one input"),
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
