//! Sorts put back where a late rewrite lost the ordering a node needs.
//!
//! DataFusion 55 plans a window's input unsorted when its ORDER BY key is
//! a constant there (`ORDER BY w.c1` where `c1` is a WITH query's `CAST(1
//! AS bigint)`), and then join selection and projection pushdown move that
//! constant to the build side of a join with an embedded projection,
//! through which the constant is no longer seen: the final check stopped
//! the query with `XX000 ... does not satisfy order requirements` (a
//! window over two joins, and the order-preserving merge above them).
//! Run just before that check, this rule finds a node whose input no
//! longer satisfies the ordering it requires and, only then, enforces the
//! plan's sort requirements again (a sort where one is missing).

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::ensure_requirements::enforce_sorting::{
    PlanWithCorrespondingSort, ensure_sorting,
};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

/// Sorts an input again when its required ordering was lost (see the
/// module docs).
#[derive(Debug)]
pub struct OrderRepair;

impl PhysicalOptimizerRule for OrderRepair {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !lost_ordering(&plan)? {
            return Ok(plan);
        }
        let repaired = crate::tree::transform_up(
            PlanWithCorrespondingSort::new_default(plan),
            ensure_sorting,
        )?;
        Ok(repaired.data.plan)
    }

    fn name(&self) -> &str {
        "sluice_order_repair"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether a node of `plan` requires an ordering its input does not have.
fn lost_ordering(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    let mut lost = false;
    crate::tree::apply(plan, |node| {
        for (child, required) in node
            .children()
            .into_iter()
            .zip(node.required_input_ordering())
        {
            if let Some(required) = required
                && !child
                    .equivalence_properties()
                    .ordering_satisfy_requirement(required.into_single())?
            {
                lost = true;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(lost)
}
