//! `COALESCE(a, b, ...)` evaluates an argument only for the rows whose
//! earlier arguments are all NULL, as PostgreSQL does ("like a CASE
//! expression, COALESCE only evaluates the arguments that are needed"):
//! `COALESCE(k, 1 / d)` never divides by a `d` of a row whose `k` is set.
//! DataFusion's `coalesce` computes every argument for every row, so an
//! argument that can fail (a division, a cast, checked arithmetic, any
//! function) raised errors PostgreSQL never raises. Such a `COALESCE` is
//! planned, after type coercion, as the `CASE WHEN a IS NOT NULL THEN a
//! WHEN b IS NOT NULL THEN b ... ELSE z END` it stands for, which
//! evaluates each branch for its rows only. Others stay `coalesce`.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::Case;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

/// Plans a `COALESCE` with an argument that can fail as a `CASE`.
#[derive(Debug)]
pub struct LazyCoalesce;

impl AnalyzerRule for LazyCoalesce {
    fn name(&self) -> &str {
        "sluice_lazy_coalesce"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_expressions(plan, as_case)
    }
}

/// Can evaluating `e` raise an error for some row?
fn may_fail(e: &Expr) -> bool {
    crate::tree::exists(e, |x| {
        Ok(matches!(
            x,
            Expr::Cast(_)
                | Expr::ScalarFunction(_)
                | Expr::BinaryExpr(BinaryExpr {
                    op: Operator::Divide | Operator::Modulo,
                    ..
                })
        ))
    })
    .unwrap_or(true)
}

fn as_case(e: Expr, _: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::ScalarFunction(f) = &e else {
        return Ok(Transformed::no(e));
    };
    if f.name() != "coalesce" || f.args.len() < 2 || !f.args[1..].iter().any(may_fail) {
        return Ok(Transformed::no(e));
    }
    let Expr::ScalarFunction(f) = e else {
        unreachable!("matched above")
    };
    let mut args = f.args;
    let last = args.pop().expect("two arguments or more");
    let when_then = args
        .into_iter()
        .map(|a| (Box::new(a.clone().is_not_null()), Box::new(a)))
        .collect();
    let otherwise = match last {
        // CASE without ELSE answers NULL too.
        Expr::Literal(ScalarValue::Null, _) => None,
        last => Some(Box::new(last)),
    };
    Ok(Transformed::yes(Expr::Case(Case::new(
        None, when_then, otherwise,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn only_a_coalesce_with_an_argument_that_can_fail_becomes_a_case() {
        let schema = DFSchema::empty();
        let plain = datafusion::functions::expr_fn::coalesce(vec![col("a"), lit(1)]);
        assert!(!as_case(plain, &schema).unwrap().transformed);
        let failing = datafusion::functions::expr_fn::coalesce(vec![col("a"), col("b") / col("c")]);
        let case = as_case(failing, &schema).unwrap();
        assert!(case.transformed);
        assert_eq!(
            case.data.to_string(),
            "CASE WHEN a IS NOT NULL THEN a ELSE b / c END"
        );
    }
}
