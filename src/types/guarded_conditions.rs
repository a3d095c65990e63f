//! A condition of a WHERE or ON that can fail is computed only for the
//! rows the conditions before it keep, as PostgreSQL computes a WHERE
//! clause left to right: `WHERE d <> 0 AND x / d > 1` never divides by
//! zero there, nor does `WHERE x > 0 AND ln(x) > 1` take a logarithm of
//! zero. DataFusion computes both sides of an `AND` for every row (unless
//! few rows pass the first), so such a query failed with 22012 or 2201E.
//!
//! An analyzer rule rewrites, in the predicate of a filter and the
//! condition of a join, each conjunct after the first that can fail: the
//! input of each operation in it that can fail becomes `CASE WHEN <the
//! conjuncts before it> THEN <input> END`, so a row the guard drops
//! computes it over NULL. The same rows pass (a row where the guard is
//! false or NULL is dropped either way). What can fail: a division or
//! remainder by a column, a cast of text, the logarithms, roots and
//! powers, and the parsing functions. Conjuncts that cannot fail stay as
//! they are, so plain comparisons still prune files and row groups.

use datafusion::common::DFSchema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::Case;
use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, Filter, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

/// Guards the conditions that can fail (see the module docs).
#[derive(Debug)]
pub struct GuardedConditions;

impl AnalyzerRule for GuardedConditions {
    fn name(&self) -> &str {
        "sluice_guarded_conditions"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        crate::tree::transform_up_with_subqueries(plan, |node| match node {
            LogicalPlan::Filter(f) => {
                let schema = f.input.schema().as_ref().clone();
                match guarded(f.predicate.clone(), &schema)? {
                    Some(p) => Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(
                        p, f.input,
                    )?))),
                    None => Ok(Transformed::no(LogicalPlan::Filter(f))),
                }
            }
            LogicalPlan::Join(mut j) => {
                let Some(on) = j.filter.take() else {
                    return Ok(Transformed::no(LogicalPlan::Join(j)));
                };
                let mut schema = j.left.schema().as_ref().clone();
                schema.merge(j.right.schema());
                match guarded(on.clone(), &schema)? {
                    Some(p) => {
                        j.filter = Some(p);
                        Ok(Transformed::yes(LogicalPlan::Join(j)))
                    }
                    None => {
                        j.filter = Some(on);
                        Ok(Transformed::no(LogicalPlan::Join(j)))
                    }
                }
            }
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}

/// Functions that fail for some of their inputs.
const FAILING: &[&str] = &[
    "ln",
    "log",
    "log10",
    "log2",
    "sqrt",
    "cbrt",
    "power",
    "pow",
    "to_date",
    "to_timestamp",
    "to_number",
    "make_date",
    "make_timestamp",
];

/// Whether the operation `x` itself can fail for a value of a row.
fn can_fail_here(x: &Expr, schema: &DFSchema) -> bool {
    match x {
        Expr::BinaryExpr(BinaryExpr {
            op: Operator::Divide | Operator::Modulo,
            right,
            ..
        }) => !matches!(right.as_ref(), Expr::Literal(v, _) if !v.is_null() && !is_zero(v)),
        Expr::Cast(c) => {
            c.expr.get_type(schema).is_ok_and(|t| t.is_string()) && !c.field.data_type().is_string()
        }
        Expr::ScalarFunction(f) => FAILING.contains(&f.name()),
        _ => false,
    }
}

/// Whether computing `e` can fail for a value of a row.
fn can_fail(e: &Expr, schema: &DFSchema) -> bool {
    crate::tree::exists(e, |x| Ok(can_fail_here(x, schema))).unwrap_or(true)
}

fn is_zero(v: &datafusion::common::ScalarValue) -> bool {
    datafusion::common::ScalarValue::new_zero(&v.data_type()).is_ok_and(|z| &z == v)
}

/// `predicate` with its failing conjuncts guarded; `None` when none is.
fn guarded(predicate: Expr, schema: &DFSchema) -> Result<Option<Expr>> {
    let conjuncts = split_conjunction_owned(predicate);
    if conjuncts.len() < 2
        || !conjuncts[1..].iter().any(|c| can_fail(c, schema))
        || conjuncts.iter().any(Expr::is_volatile)
    {
        return Ok(None);
    }
    let mut changed = false;
    let mut out: Vec<Expr> = Vec::with_capacity(conjuncts.len());
    for (i, c) in conjuncts.iter().enumerate() {
        if i == 0 || !can_fail(c, schema) {
            out.push(c.clone());
            continue;
        }
        let guard = conjunction(conjuncts[..i].iter().cloned()).expect("one at least");
        let g = guard_operands(c.clone(), &guard, schema)?;
        changed |= g.transformed;
        out.push(g.data);
    }
    Ok(if changed { conjunction(out) } else { None })
}

/// `CASE WHEN guard THEN e END`: `e` for the rows the guard keeps, NULL
/// for the others. Not a boolean `CASE`, which the simplifier would turn
/// back into an `AND` of both sides.
fn when(guard: &Expr, e: Expr) -> (Expr, bool) {
    if matches!(&e, Expr::Case(c) if c.expr.is_none() && c.else_expr.is_none()
        && c.when_then_expr.len() == 1 && c.when_then_expr[0].0.as_ref() == guard)
    {
        return (e, false);
    }
    (
        Expr::Case(Case::new(
            None,
            vec![(Box::new(guard.clone()), Box::new(e))],
            None,
        )),
        true,
    )
}

/// Each operation of `c` that can fail gets its input through [`when`]:
/// the divisor, the text cast, the function's arguments. A row the guard
/// drops computes it over NULL, which cannot fail.
fn guard_operands(c: Expr, guard: &Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    crate::tree::transform_up(c, |x| {
        if !can_fail_here(&x, schema) {
            return Ok(Transformed::no(x));
        }
        Ok(match x {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (right, changed) = when(guard, *right);
                Transformed::new_transformed(
                    Expr::BinaryExpr(BinaryExpr::new(left, op, Box::new(right))),
                    changed,
                )
            }
            Expr::Cast(mut cast) => {
                let (inner, changed) = when(guard, *cast.expr);
                cast.expr = Box::new(inner);
                Transformed::new_transformed(Expr::Cast(cast), changed)
            }
            Expr::ScalarFunction(mut f) => {
                let mut changed = false;
                f.args = f
                    .args
                    .into_iter()
                    .map(|a| {
                        // A constant (a format, a base) stays one.
                        if a.column_refs().is_empty() {
                            return a;
                        }
                        let (a, c) = when(guard, a);
                        changed |= c;
                        a
                    })
                    .collect();
                Transformed::new_transformed(Expr::ScalarFunction(f), changed)
            }
            other => Transformed::no(other),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::{col, lit};

    fn schema() -> DFSchema {
        DFSchema::try_from(Schema::new(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("d", DataType::Int64, true),
        ]))
        .unwrap()
    }

    #[test]
    fn a_division_after_its_guard_is_computed_for_the_guarded_rows() {
        let p = col("d")
            .not_eq(lit(0i64))
            .and((col("x") / col("d")).gt(lit(1i64)));
        let out = guarded(p, &schema()).unwrap().unwrap();
        assert_eq!(
            out.to_string(),
            "d != Int64(0) AND x / CASE WHEN d != Int64(0) THEN d END > Int64(1)"
        );
        // Run again: unchanged.
        assert!(guarded(out, &schema()).unwrap().is_none());
    }

    #[test]
    fn conditions_that_cannot_fail_stay() {
        let p = col("d").gt(lit(0i64)).and(col("x").lt(lit(5i64)));
        assert!(guarded(p, &schema()).unwrap().is_none());
        let p = col("d")
            .gt(lit(0i64))
            .and((col("x") / lit(2i64)).lt(lit(5i64)));
        assert!(guarded(p, &schema()).unwrap().is_none());
    }
}
