//! `x IS TRUE`, `IS FALSE`, `IS NOT TRUE` and `IS NOT FALSE` planned as
//! the comparisons DataFusion executes them by (`x IS NOT DISTINCT FROM
//! true`, ...), and `IS [NOT] UNKNOWN` as `IS [NOT] NULL`. Planned as they are, the logical plan says the test is
//! never NULL while the executed comparison says it may be, and an
//! aggregate above (`SELECT DISTINCT b IS FALSE FROM t`) stops on the
//! disagreement with an internal error. The answers are the same.
//! Also a cast of an integer to boolean, as `<> 0` (see [`nonzero`]).

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
        super::rewrite_expressions(plan, |x, schema| Ok(comparison(nonzero(x, schema))))
    }
}

/// `CAST(i AS boolean)` of an integer as `i <> 0`, what it means in
/// PostgreSQL and in DataFusion: DataFusion's filter analysis reads a cast
/// to boolean that must be true as fixing the integer to one value, and
/// dropped the integer from a sort after `WHERE CAST(i AS boolean)` (the
/// rows came out in another order, seed 20087).
fn nonzero(e: Expr, schema: &datafusion::common::DFSchema) -> Expr {
    use datafusion::logical_expr::ExprSchemable;
    match e {
        Expr::Cast(c)
            if c.field.data_type() == &datafusion::arrow::datatypes::DataType::Boolean
                && c.expr.get_type(schema).is_ok_and(|t| t.is_integer()) =>
        {
            Expr::BinaryExpr(BinaryExpr::new(c.expr, Operator::NotEq, Box::new(lit(0))))
        }
        other => other,
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::DFSchema;
    use datafusion::logical_expr::{cast, col};

    #[test]
    fn an_integer_cast_to_boolean_is_a_test_of_nonzero() {
        let schema = DFSchema::try_from(Schema::new(vec![
            Field::new("i", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ]))
        .unwrap();
        let e = nonzero(cast(col("i"), DataType::Boolean), &schema);
        assert_eq!(e, col("i").not_eq(lit(0)));
        // Text is read by its input function, as before.
        let text = cast(col("s"), DataType::Boolean);
        assert_eq!(nonzero(text.clone(), &schema), text);
    }
}
