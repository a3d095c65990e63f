//! `x [NOT] IN (subquery)` and `[NOT] EXISTS (subquery)` whose subquery
//! the optimizer has found empty: their answer without the subquery. `x
//! IN` an empty set is false and `NOT IN` true, whatever `x` is (NULL
//! included), as in PostgreSQL; `EXISTS` false, `NOT EXISTS` true.
//! DataFusion reduces such a subquery to an empty relation with no output
//! column, and its decorrelation then stops with `XX000 single expression
//! required` (`WHERE 1 NOT IN (SELECT t.k FROM u WHERE t.b AND NULL)`).

use datafusion::common::ScalarValue;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, Subquery};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// Answers IN and EXISTS over a subquery known to be empty.
#[derive(Debug)]
pub struct EmptySubqueries;

impl OptimizerRule for EmptySubqueries {
    fn name(&self) -> &str {
        "sluice_empty_subqueries"
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
            crate::tree::map_expressions(node, |e| {
                crate::tree::transform_up(e, |x| Ok(answered(x)))
            })
        })
    }
}

/// Whether `s` is a plan the optimizer has reduced to no rows.
fn empty(s: &Subquery) -> bool {
    matches!(s.subquery.as_ref(), LogicalPlan::EmptyRelation(e) if !e.produce_one_row)
}

fn answered(e: Expr) -> Transformed<Expr> {
    let negated = match &e {
        Expr::InSubquery(i) if empty(&i.subquery) => i.negated,
        Expr::Exists(x) if empty(&x.subquery) => x.negated,
        _ => return Transformed::no(e),
    };
    Transformed::yes(Expr::Literal(ScalarValue::Boolean(Some(negated)), None))
}
