//! A numeric product keeps its type when one side is a constant zero.
//!
//! DataFusion's expression simplifier replaces `0 * a` (and `a * 0`) with
//! the zero when `a` cannot be null, and the zero keeps the type of its
//! own side: `CAST(0 AS numeric(10,0)) * CASE ... THEN 100.000001 END`
//! became a `numeric(10,0)` where the product is a `numeric(20,6)`. A
//! comparison planned for the product's type then failed with XX000
//! ("Invalid comparison operation: Decimal128(20, 6) != Decimal128(10,
//! 0)"), and a zero shown as `0` where PostgreSQL shows `0.000000`.
//!
//! An analyzer rule after type coercion casts such a product to its own
//! type: once the simplifier has replaced the product with the zero, the
//! cast of a constant folds into the zero of the right type. Only
//! products with a constant side are wrapped; a product of two columns
//! is never replaced.

use datafusion::common::DFSchema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::{BinaryExpr, Cast, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

/// Casts a decimal product with a constant side to its type (see the
/// module docs).
#[derive(Debug)]
pub struct DecimalZeroProducts;

impl AnalyzerRule for DecimalZeroProducts {
    fn name(&self) -> &str {
        "sluice_decimal_zero_products"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_expressions(plan, typed)
    }
}

/// An expression the simplifier may fold into one literal.
fn constant(e: &Expr) -> bool {
    e.column_refs().is_empty()
        && !e.is_volatile()
        && !crate::tree::exists(e, |e| {
            Ok(matches!(
                e,
                Expr::OuterReferenceColumn(..)
                    | Expr::ScalarSubquery(_)
                    | Expr::Exists(_)
                    | Expr::InSubquery(_)
            ))
        })
        .unwrap_or(true)
}

fn typed(x: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Multiply,
        right,
    }) = &x
    else {
        return Ok(Transformed::no(x));
    };
    if !(constant(left) || constant(right)) || (constant(left) && constant(right)) {
        return Ok(Transformed::no(x));
    }
    let product = x.get_type(schema)?;
    let (l, r) = (left.get_type(schema)?, right.get_type(schema)?);
    if !product.is_decimal() || (product == l && product == r) {
        return Ok(Transformed::no(x));
    }
    Ok(Transformed::yes(Expr::Cast(Cast::new(
        Box::new(x),
        product,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::{col, lit};
    use datafusion::scalar::ScalarValue;

    fn schema() -> DFSchema {
        DFSchema::try_from(Schema::new(vec![
            Field::new("n", DataType::Decimal128(9, 6), false),
            Field::new("m", DataType::Decimal128(10, 2), false),
        ]))
        .unwrap()
    }

    fn zero() -> Expr {
        lit(ScalarValue::Decimal128(Some(0), 10, 0))
    }

    #[test]
    fn a_product_with_a_constant_side_is_cast_to_its_type() {
        let e = zero() * col("n");
        let out = typed(e.clone(), &schema()).unwrap();
        assert!(out.transformed);
        assert_eq!(
            out.data,
            Expr::Cast(Cast::new(Box::new(e), DataType::Decimal128(20, 6)))
        );
        let e = col("n") * zero();
        assert!(typed(e, &schema()).unwrap().transformed);
    }

    #[test]
    fn products_of_columns_or_of_constants_are_left_alone() {
        assert!(!typed(col("n") * col("m"), &schema()).unwrap().transformed);
        assert!(!typed(zero() * zero(), &schema()).unwrap().transformed);
        assert!(!typed(col("n") + zero(), &schema()).unwrap().transformed);
    }
}
