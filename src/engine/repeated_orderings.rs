//! An aggregate's ORDER BY that names one expression twice keeps the first
//! only (`first_value(v ORDER BY k DESC, k)` orders by `k DESC`: a later key
//! equal to an earlier one never decides an order). The simplifier makes
//! such lists (`ORDER BY COALESCE(id, 42) DESC, id` of a NOT NULL `id`),
//! which DataFusion's ordered aggregates cannot run: their state kept one
//! column per distinct key and read one per key (`XX000 number of
//! columns(3) must match number of fields(4)`).

use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

#[derive(Debug)]
pub struct RepeatedOrderings;

impl OptimizerRule for RepeatedOrderings {
    fn name(&self) -> &str {
        "sluice_repeated_orderings"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        crate::types::rewrite_plan_expressions(plan, |e, _| first_of_each(e))
    }
}

/// `e` with each ORDER BY expression of its aggregate once.
fn first_of_each(e: Expr) -> Result<Transformed<Expr>> {
    let Expr::AggregateFunction(mut f) = e else {
        return Ok(Transformed::no(e));
    };
    let order = &f.params.order_by;
    let repeated = order
        .iter()
        .enumerate()
        .any(|(i, o)| order[..i].iter().any(|p| p.expr == o.expr));
    if !repeated {
        return Ok(Transformed::no(Expr::AggregateFunction(f)));
    }
    let mut kept: Vec<datafusion::logical_expr::SortExpr> = Vec::new();
    for o in std::mem::take(&mut f.params.order_by) {
        if !kept.iter().any(|k| k.expr == o.expr) {
            kept.push(o);
        }
    }
    f.params.order_by = kept;
    Ok(Transformed::yes(Expr::AggregateFunction(f)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::functions_aggregate::expr_fn::first_value;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn a_repeated_key_of_an_aggregate_order_is_dropped() {
        let order = vec![
            col("k").sort(false, true),
            col("j").sort(true, false),
            col("k").sort(true, false),
        ];
        let agg = first_value(lit(1), order);
        let once = first_of_each(agg).unwrap();
        assert!(once.transformed);
        let Expr::AggregateFunction(f) = &once.data else {
            panic!("{}", once.data)
        };
        assert_eq!(
            f.params.order_by,
            vec![col("k").sort(false, true), col("j").sort(true, false)]
        );
        assert!(!first_of_each(once.data).unwrap().transformed);
    }
}
