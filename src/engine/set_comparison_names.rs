//! A select item or grouping expression holding `x op ANY/ALL (subquery)`
//! keeps its name through DataFusion's rewrite of the comparison.
//!
//! DataFusion's `rewrite_set_comparison` replaces the comparison by a CASE
//! over EXISTS subqueries inside whatever expression holds it, without an
//! alias, so a projection's column changed its name and the optimizer
//! stopped with `XX000 ... a difference in schemas`
//! (`SELECT CASE WHEN 1.5 < ALL (SELECT ... WHERE t.k = 1) THEN ...`).
//! Run just before it, this rule names every such expression of a
//! projection or an aggregation by its current name, which the rewrite
//! then keeps.

use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// Names the expressions DataFusion's set comparison rewrite would rename
/// (see the module docs).
#[derive(Debug)]
pub struct SetComparisonNames;

impl OptimizerRule for SetComparisonNames {
    fn name(&self) -> &str {
        "sluice_set_comparison_names"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        crate::tree::transform_up_with_subqueries(plan, |node| {
            if !matches!(node, LogicalPlan::Projection(_) | LogicalPlan::Aggregate(_)) {
                return Ok(Transformed::no(node));
            }
            crate::tree::map_expressions(node, |e| {
                if matches!(e, Expr::Alias(_)) || !holds_set_comparison(&e)? {
                    return Ok(Transformed::no(e));
                }
                let (qualifier, name) = e.qualified_name();
                Ok(Transformed::yes(e.alias_qualified(qualifier, name)))
            })
        })
    }
}

fn holds_set_comparison(e: &Expr) -> Result<bool> {
    crate::tree::exists(e, |x| Ok(matches!(x, Expr::SetComparison(_))))
}
