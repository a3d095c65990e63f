//! A condition above an aggregate without GROUP BY stays above it.
//!
//! DataFusion's filter pushdown moves a condition below an aggregate when
//! every column it reads is grouped; a condition that reads no column at
//! all (`42 = 1`, once a projection's constant is put in place of its
//! column) passes that test, and below an aggregate without GROUP BY it
//! changes the answer: over no rows the aggregate still gives its one row.
//! `WHERE 42 IN (SELECT 1 FROM (SELECT max(x) FROM t) d)` kept every row
//! (PostgreSQL: none). The barrier rule, just before the pushdown, puts
//! each such aggregate under `LIMIT 1` (which it gives anyway, and which
//! the pushdown does not cross); the lift rule, just after, takes the
//! limit away again.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, Limit, LogicalPlan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// Puts (`lift: false`) or takes away (`lift: true`) the limit over each
/// aggregate without GROUP BY.
#[derive(Debug)]
pub struct GlobalAggregateBarrier {
    pub lift: bool,
}

fn global(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Aggregate(a) if a.group_expr.is_empty())
}

/// A `LIMIT 1` (no offset) over an aggregate without GROUP BY, which
/// changes nothing.
fn barrier(limit: &Limit) -> bool {
    limit.skip.is_none()
        && matches!(
            limit.fetch.as_deref(),
            Some(Expr::Literal(ScalarValue::Int64(Some(1)), _))
        )
        && global(&limit.input)
}

impl OptimizerRule for GlobalAggregateBarrier {
    fn name(&self) -> &str {
        if self.lift {
            "sluice_global_aggregate_lift"
        } else {
            "sluice_global_aggregate_barrier"
        }
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if self.lift {
            return crate::tree::transform_up_with_subqueries(plan, |node| match node {
                LogicalPlan::Limit(limit) if barrier(&limit) => {
                    Ok(Transformed::yes(Arc::unwrap_or_clone(limit.input)))
                }
                other => Ok(Transformed::no(other)),
            });
        }
        crate::tree::transform_up_with_subqueries(plan, |node| {
            if let LogicalPlan::Limit(limit) = &node
                && barrier(limit)
            {
                return Ok(Transformed::no(node));
            }
            let inputs = node.inputs();
            if !inputs.iter().any(|i| global(i)) {
                return Ok(Transformed::no(node));
            }
            // The inputs of `node` that are such aggregates go under a limit.
            let new_inputs: Vec<LogicalPlan> = inputs
                .into_iter()
                .map(|i| {
                    if global(i) {
                        LogicalPlan::Limit(Limit {
                            skip: None,
                            fetch: Some(Box::new(Expr::Literal(ScalarValue::Int64(Some(1)), None))),
                            input: Arc::new(i.clone()),
                        })
                    } else {
                        i.clone()
                    }
                })
                .collect();
            let exprs = node.expressions();
            Ok(Transformed::yes(node.with_new_exprs(exprs, new_inputs)?))
        })
    }
}
