//! `NULLIF(x, 0)` and `CASE x WHEN 0` take a float `-0` for `0`, as in
//! PostgreSQL.
//!
//! DataFusion's `nullif` and `CASE x WHEN` compare floats by their bits,
//! where `-0` differs from `0`: `NULLIF(x, 0)` kept a `-0` (what
//! `round(-0.4)` or `-1 * 0.0` give), and a division by it then failed
//! with 22012 where PostgreSQL gives NULL. Its comparisons (`=`, `<`,
//! `IN`, joins, grouping) already take `-0` for `0`. An analyzer rule
//! after type coercion plans a float `NULLIF(a, b)` as the `CASE WHEN a =
//! b THEN NULL ELSE a END` it stands for (`a` keeps its sign when it is
//! returned), and a float `CASE x WHEN v THEN ...` as `CASE WHEN x = v
//! THEN ...`.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::Case;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

/// Plans a float `NULLIF` as a comparison (see the module docs).
#[derive(Debug)]
pub struct FloatZeros;

impl AnalyzerRule for FloatZeros {
    fn name(&self) -> &str {
        "sluice_float_zeros"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_expressions(plan, compared)
    }
}

fn is_float(e: &Expr, schema: &DFSchema) -> bool {
    matches!(
        e.get_type(schema),
        Ok(DataType::Float32 | DataType::Float64)
    )
}

fn compared(x: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let f = match x {
        Expr::ScalarFunction(f) => f,
        // Each WHEN reads `x` again: a volatile one (`CASE random() WHEN
        // ...`) must stay read once.
        Expr::Case(Case {
            expr: Some(base),
            when_then_expr,
            else_expr,
        }) if is_float(&base, schema) && !base.is_volatile() => {
            let when_then_expr = when_then_expr
                .into_iter()
                .map(|(w, then)| {
                    let equal = Expr::BinaryExpr(BinaryExpr::new(base.clone(), Operator::Eq, w));
                    (Box::new(equal), then)
                })
                .collect();
            return Ok(Transformed::yes(Expr::Case(Case::new(
                None,
                when_then_expr,
                else_expr,
            ))));
        }
        other => return Ok(Transformed::no(other)),
    };
    if f.func.name() != "nullif" || f.args.len() != 2 {
        return Ok(Transformed::no(Expr::ScalarFunction(f)));
    }
    let t = f.args[0].get_type(schema)?;
    // The CASE reads `a` twice: a volatile one (`random()`) could be
    // compared as one value and returned as another.
    if !matches!(t, DataType::Float32 | DataType::Float64) || f.args[0].is_volatile() {
        return Ok(Transformed::no(Expr::ScalarFunction(f)));
    }
    let mut args = f.args.into_iter();
    let (a, b) = (args.next().expect("two"), args.next().expect("two"));
    let equal = Expr::BinaryExpr(BinaryExpr::new(
        Box::new(a.clone()),
        Operator::Eq,
        Box::new(b),
    ));
    let null = Expr::Literal(ScalarValue::try_from(&t)?, None);
    Ok(Transformed::yes(Expr::Case(Case::new(
        None,
        vec![(Box::new(equal), Box::new(null))],
        Some(Box::new(a)),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::{col, lit};

    fn schema() -> DFSchema {
        DFSchema::try_from(Schema::new(vec![Field::new("x", DataType::Float64, true)])).unwrap()
    }

    fn simple_case(base: Expr) -> Expr {
        Expr::Case(Case::new(
            Some(Box::new(base)),
            vec![(Box::new(lit(0.0)), Box::new(lit(1)))],
            Some(Box::new(lit(2))),
        ))
    }

    #[test]
    fn a_float_case_compares_each_value_with_equals() {
        let out = compared(simple_case(col("x")), &schema()).unwrap();
        assert!(out.transformed);
        assert!(matches!(out.data, Expr::Case(Case { expr: None, .. })));
    }

    #[test]
    fn a_volatile_operand_is_read_once() {
        let random = datafusion::functions::math::expr_fn::random();
        let out = compared(simple_case(random.clone()), &schema()).unwrap();
        assert!(!out.transformed, "{}", out.data);
        let nullif = datafusion::functions::core::expr_fn::nullif(random, lit(0.0));
        let out = compared(nullif, &schema()).unwrap();
        assert!(!out.transformed, "{}", out.data);
    }
}
