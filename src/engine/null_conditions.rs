//! A WHERE or HAVING with a condition that is the constant NULL keeps no
//! row, whatever its other conditions are: `WHERE x < -5 AND
//! CAST(NULL AS boolean)` is false, as PostgreSQL plans it (a one-time
//! filter that reads nothing), so the other conditions are never
//! evaluated and cannot raise an error PostgreSQL never raises
//! (`22003` from a cast in `x`). DataFusion's simplifier leaves `x AND
//! NULL` alone (it is NULL or false, which only a filter reads alike);
//! as false, its filter is removed with the rows under it.

use datafusion::common::ScalarValue;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// Turns a filter with a constant NULL condition into `false`.
#[derive(Debug)]
pub struct NullConditions;

impl OptimizerRule for NullConditions {
    fn name(&self) -> &str {
        "sluice_null_conditions"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        crate::tree::transform_up_with_subqueries(plan, |node| match node {
            LogicalPlan::Filter(mut f) if has_null_condition(&f.predicate) => {
                f.predicate = Expr::Literal(ScalarValue::Boolean(Some(false)), None);
                Ok(Transformed::yes(LogicalPlan::Filter(f)))
            }
            other => Ok(Transformed::no(other)),
        })
    }
}

/// Is one of the conditions joined by AND in `predicate` a NULL constant?
/// Those a HAVING keeps above its aggregate (`global_having`) count too.
fn has_null_condition(predicate: &Expr) -> bool {
    let mut conditions = vec![];
    let mut kept = false;
    for c in split_conjunction(predicate) {
        match c {
            Expr::ScalarFunction(f) if f.func.name() == super::global_having::KEPT => {
                kept = true;
                conditions.extend(f.args.first().map(split_conjunction).unwrap_or_default());
            }
            c => conditions.push(c),
        }
    }
    (kept || conditions.len() > 1)
        && conditions.into_iter().any(|c| {
            matches!(
                c,
                Expr::Literal(ScalarValue::Boolean(None) | ScalarValue::Null, _)
            )
        })
}
