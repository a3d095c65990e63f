//! A `date` compared with a `timestamp` or `timestamptz` is compared as
//! a timestamp of the other side's type, in microseconds.
//!
//! DataFusion coerces both sides of such a comparison to nanosecond
//! timestamps, which end in 2262: `DATE '2024-02-29' <> TIMESTAMPTZ
//! '3204-01-01 00:00:00+00'` failed with XX000 ("converted value exceeds
//! the representable i64 range") where PostgreSQL answers true. An
//! analyzer rule ahead of type coercion casts the date side to the
//! timestamp side's own type (midnight of that day; the session's time
//! zone is UTC), so coercion has nothing left to do. Comparisons, `IN`
//! lists and `BETWEEN` are covered.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Between, InList};
use datafusion::logical_expr::{BinaryExpr, Cast, Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

/// Casts the date side of a date-timestamp comparison (see the module
/// docs).
#[derive(Debug)]
pub struct DateTimestampComparisons;

impl AnalyzerRule for DateTimestampComparisons {
    fn name(&self) -> &str {
        "sluice_date_timestamp_comparisons"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_expressions(plan, compared)
    }
}

fn type_of(e: &Expr, schema: &DFSchema) -> Option<DataType> {
    e.get_type(schema).ok()
}

fn is_timestamp(t: &Option<DataType>) -> bool {
    matches!(t, Some(DataType::Timestamp(..)))
}

/// `e` as the timestamp type `to` when it is a date.
fn widened(e: Expr, schema: &DFSchema, to: &DataType) -> (Expr, bool) {
    if type_of(&e, schema) == Some(DataType::Date32) {
        (Expr::Cast(Cast::new(Box::new(e), to.clone())), true)
    } else {
        (e, false)
    }
}

fn compared(x: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match x {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if super::is_comparison(&op) => {
            let (lt, rt) = (type_of(&left, schema), type_of(&right, schema));
            let (left, right, changed) = match (&lt, &rt) {
                (Some(DataType::Date32), Some(t @ DataType::Timestamp(..))) => {
                    let (l, c) = widened(*left, schema, t);
                    (l, *right, c)
                }
                (Some(t @ DataType::Timestamp(..)), Some(DataType::Date32)) => {
                    let (r, c) = widened(*right, schema, t);
                    (*left, r, c)
                }
                _ => (*left, *right, false),
            };
            let e = Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)));
            Ok(if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            })
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => {
            let types = [&expr, &low, &high].map(|e| type_of(e, schema));
            let Some(to) = types.iter().find(|t| is_timestamp(t)).cloned().flatten() else {
                return Ok(Transformed::no(Expr::Between(Between {
                    expr,
                    negated,
                    low,
                    high,
                })));
            };
            let (expr, a) = widened(*expr, schema, &to);
            let (low, b) = widened(*low, schema, &to);
            let (high, c) = widened(*high, schema, &to);
            let e = Expr::Between(Between::new(
                Box::new(expr),
                negated,
                Box::new(low),
                Box::new(high),
            ));
            Ok(Transformed::new_transformed(e, a || b || c))
        }
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) => {
            let to = std::iter::once(expr.as_ref())
                .chain(list.iter())
                .map(|e| type_of(e, schema))
                .find(is_timestamp)
                .flatten();
            let Some(to) = to else {
                return Ok(Transformed::no(Expr::InList(InList {
                    expr,
                    list,
                    negated,
                })));
            };
            let (expr, mut changed) = widened(*expr, schema, &to);
            let list = list
                .into_iter()
                .map(|e| {
                    let (e, c) = widened(e, schema, &to);
                    changed |= c;
                    e
                })
                .collect();
            let e = Expr::InList(InList::new(Box::new(expr), list, negated));
            Ok(Transformed::new_transformed(e, changed))
        }
        other => Ok(Transformed::no(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    use datafusion::logical_expr::{col, lit};

    fn schema() -> DFSchema {
        DFSchema::try_from(Schema::new(vec![
            Field::new("d", DataType::Date32, true),
            Field::new(
                "tz",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::Int64, true),
        ]))
        .unwrap()
    }

    #[test]
    fn the_date_side_takes_the_timestamp_type() {
        let tz = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let out = compared(col("d").lt(col("tz")), &schema()).unwrap();
        assert!(out.transformed);
        assert_eq!(
            out.data,
            Expr::Cast(Cast::new(Box::new(col("d")), tz.clone())).lt(col("tz"))
        );
        let out = compared(col("d").between(col("tz"), col("d")), &schema()).unwrap();
        assert!(out.transformed);
        let out = compared(col("tz").in_list(vec![col("d")], false), &schema()).unwrap();
        assert!(out.transformed);
    }

    #[test]
    fn other_comparisons_are_left_alone() {
        assert!(
            !compared(col("d").eq(col("d")), &schema())
                .unwrap()
                .transformed
        );
        assert!(
            !compared(col("n").eq(lit(1i64)), &schema())
                .unwrap()
                .transformed
        );
        assert!(
            !compared(col("n").in_list(vec![lit(1i64)], false), &schema())
                .unwrap()
                .transformed
        );
    }
}
