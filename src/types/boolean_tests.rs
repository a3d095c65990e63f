//! `x IS TRUE`, `IS FALSE`, `IS NOT TRUE` and `IS NOT FALSE` planned as
//! the comparisons DataFusion executes them by (`x IS NOT DISTINCT FROM
//! true`, ...), and `IS [NOT] UNKNOWN` as `IS [NOT] NULL`. Planned as they are, the logical plan says the test is
//! never NULL while the executed comparison says it may be, and an
//! aggregate above (`SELECT DISTINCT b IS FALSE FROM t`) stops on the
//! disagreement with an internal error. The answers are the same.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator, lit};
use datafusion::optimizer::AnalyzerRule;

/// Plans the boolean tests as comparisons (see the module docs).
#[derive(Debug)]
pub struct BooleanTests;

impl AnalyzerRule for BooleanTests {
    fn name(&self) -> &str {
        "sluice_boolean_tests"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        // Type coercion, after this, recomputes the schemas.
        super::rewrite_expressions(plan, |x, _| Ok(comparison(x)))
    }
}

fn comparison(e: Expr) -> Transformed<Expr> {
    let (x, op, value) = match e {
        // A boolean is unknown when it is NULL.
        Expr::IsUnknown(x) => return Transformed::yes(Expr::IsNull(x)),
        Expr::IsNotUnknown(x) => return Transformed::yes(Expr::IsNotNull(x)),
        Expr::IsTrue(x) => (x, Operator::IsNotDistinctFrom, true),
        Expr::IsFalse(x) => (x, Operator::IsNotDistinctFrom, false),
        Expr::IsNotTrue(x) => (x, Operator::IsDistinctFrom, true),
        Expr::IsNotFalse(x) => (x, Operator::IsDistinctFrom, false),
        other => return Transformed::no(other),
    };
    Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
        x,
        op,
        Box::new(lit(value)),
    )))
}
