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
//!
//! The arguments of an aggregate with `FILTER (WHERE ...)` are evaluated
//! for the rows the filter keeps only, the same way (see
//! [`LazyFilteredArguments`]).

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
    if f.name() != "coalesce" || f.args.len() < 2 {
        return Ok(Transformed::no(e));
    }
    // Nothing after a constant that is not NULL is ever needed, and
    // PostgreSQL drops it while planning, before it could fail
    // (`COALESCE(3, CAST(3000000000 * 7 AS integer))` is 3).
    if let Some(i) = f.args.iter().position(set_constant)
        && i + 1 < f.args.len()
    {
        let Expr::ScalarFunction(mut f) = e else {
            unreachable!("matched above")
        };
        f.args.truncate(i + 1);
        if i == 0 {
            return Ok(Transformed::yes(f.args.remove(0)));
        }
        return Ok(Transformed::yes(
            as_case(Expr::ScalarFunction(f), &DFSchema::empty())?.data,
        ));
    }
    if !f.args[1..].iter().any(may_fail) {
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

/// A literal (maybe cast) that is not NULL.
fn set_constant(e: &Expr) -> bool {
    match e {
        Expr::Literal(v, _) => !v.is_null(),
        Expr::Cast(c) => set_constant(&c.expr),
        _ => false,
    }
}

/// `agg(x) FILTER (WHERE c)` computes `x` only for the rows where `c`
/// holds, as PostgreSQL does (`count(x + 1) FILTER (WHERE x < 100)` never
/// adds to the largest integer). DataFusion computes the arguments for
/// every row and then drops those `c` does not keep, so an argument that
/// can fail is planned as `CASE WHEN c THEN x END`, which gives the
/// aggregate the same values for the rows it keeps.
#[derive(Debug)]
pub struct LazyFilteredArguments;

impl AnalyzerRule for LazyFilteredArguments {
    fn name(&self) -> &str {
        "sluice_lazy_filtered_arguments"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_expressions(plan, filtered_arguments)
    }
}

fn filtered_arguments(e: Expr, _: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::AggregateFunction(mut f) = e else {
        return Ok(Transformed::no(e));
    };
    let Some(condition) = f.params.filter.as_deref().cloned() else {
        return Ok(Transformed::no(Expr::AggregateFunction(f)));
    };
    // A constant (a delimiter, a fraction) stays as it is: it fails for
    // every row or none, and some aggregates want it literal.
    let lazy =
        |a: &Expr| may_fail(a) && !a.column_refs().is_empty() && !already_guarded(a, &condition);
    let ordered_by_lazy = f.params.order_by.iter().any(|o| lazy(&o.expr));
    if condition.is_volatile() || !(f.params.args.iter().any(lazy) || ordered_by_lazy) {
        return Ok(Transformed::no(Expr::AggregateFunction(f)));
    }
    let guard = |a: Expr| {
        if lazy(&a) {
            Expr::Case(Case::new(
                None,
                vec![(Box::new(condition.clone()), Box::new(a))],
                None,
            ))
        } else {
            a
        }
    };
    // The ORDER BY of the aggregate too, the same way: with DISTINCT it
    // must stay the argument it orders by.
    f.params.args = std::mem::take(&mut f.params.args)
        .into_iter()
        .map(guard)
        .collect();
    for o in f.params.order_by.iter_mut() {
        o.expr = guard(o.expr.clone());
    }
    Ok(Transformed::yes(Expr::AggregateFunction(f)))
}

/// `a` is already `CASE WHEN condition THEN ... END` (the rule ran before).
fn already_guarded(a: &Expr, condition: &Expr) -> bool {
    matches!(a, Expr::Case(c) if c.expr.is_none()
        && c.else_expr.is_none()
        && c.when_then_expr.len() == 1
        && c.when_then_expr[0].0.as_ref() == condition)
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

    #[test]
    fn a_filtered_aggregate_computes_arguments_that_can_fail_for_its_rows_only() {
        use datafusion::arrow::datatypes::DataType;
        use datafusion::functions_aggregate::expr_fn::count;
        use datafusion::functions_aggregate::string_agg::string_agg;
        use datafusion::logical_expr::{ExprFunctionExt, ExprSchemable};
        let schema = DFSchema::empty();
        let filtered = |e: Expr| e.filter(col("x").lt(lit(100))).build().unwrap();
        let once = filtered_arguments(filtered(count(col("x") / col("y"))), &schema).unwrap();
        assert!(once.transformed);
        assert!(
            once.data.to_string().contains(
                "count(CASE WHEN x < Int32(100) THEN x / y END) FILTER (WHERE x < Int32(100))"
            ),
            "{}",
            once.data
        );
        // Not twice, and not a column or a constant argument.
        assert!(!filtered_arguments(once.data, &schema).unwrap().transformed);
        let plain = filtered(string_agg(
            col("s"),
            lit(",").cast_to(&DataType::Utf8View, &schema).unwrap(),
        ));
        assert!(!filtered_arguments(plain, &schema).unwrap().transformed);
        // Without FILTER nothing changes.
        assert!(
            !filtered_arguments(count(col("x") / col("y")), &schema)
                .unwrap()
                .transformed
        );
    }
}
