//! `avg` of a numeric or an integer with PostgreSQL's digits. PostgreSQL
//! divides the sum by the count (`numeric_avg`), so an average has the
//! places of that quotient: at least 16 significant digits, chosen per
//! value (`avg` of 1.00, 2.00, 2.50 is 1.8333333333333333, of 95000.50
//! and 120000 it is 107500.250000000000). DataFusion keeps the input's
//! scale plus 4, truncated (1.833333), and whatever is computed from it
//! next carries those six digits as if they were exact. An analyzer rule,
//! before type coercion, computes the average as its sum and count and
//! divides them in a projection above with `quotient`'s division.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema};
use datafusion::error::Result;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Cast, Expr, ExprSchemable, LogicalPlan, Projection, WindowFunctionDefinition,
};
use datafusion::optimizer::AnalyzerRule;

/// Averages numerics as PostgreSQL does (see the module docs).
#[derive(Debug)]
pub struct NumericAverages;

impl AnalyzerRule for NumericAverages {
    fn name(&self) -> &str {
        "sluice_numeric_averages"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        crate::tree::transform_up_with_subqueries(plan, |node| match node {
            LogicalPlan::Aggregate(a) => averaged_aggregate(a),
            LogicalPlan::Window(w) => averaged_window(w),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}

/// An average split into its sum and count, computed under the names it
/// has as columns of the node: `avg` is the average's own.
struct Split {
    avg: String,
    sum: String,
    count: String,
    /// The argument's precision and scale, as summed: the average has
    /// no more integer digits than it.
    arg_type: (u8, i8),
}

/// The decimal an average's argument of type `t` is summed as.
fn summed(t: &DataType) -> Option<(u8, i8)> {
    match super::numeric::unconstrained(t) {
        DataType::Decimal128(p, s) if t.is_integer() || matches!(t, DataType::Decimal128(..)) => {
            Some((p, s))
        }
        _ => None,
    }
}

/// The argument as summed, as counted, its decimal type, and the names of
/// the sum and the count.
type Parts = (Expr, Expr, (u8, i8), (String, String));

/// `avg(x)` (an aggregate call or a window call's parts) as `sum(x)` and
/// `count(x)` with the same options, when `x` is a numeric or an integer.
fn split(args: &[Expr], schema: &DFSchema, at: usize) -> Option<Parts> {
    let [arg] = args else { return None };
    let (p, s) = summed(&arg.get_type(schema).ok()?)?;
    // Room for a digit a later rule may add to the argument.
    let p = (p + 1).min(38);
    let (sum, count) = (
        format!("__sluice_avg_sum_{at}"),
        format!("__sluice_avg_count_{at}"),
    );
    // An integer is summed as a numeric (`sum` of a bigint wraps); a
    // numeric as it comes, whose type a later rule may still widen
    // (`ceil(n)` gains an integer digit).
    let t = arg.get_type(schema).ok()?;
    let summed = if t.is_integer() {
        Expr::Cast(Cast::new(Box::new(arg.clone()), DataType::Decimal128(p, s)))
    } else {
        arg.clone()
    };
    Some((summed, arg.clone(), (p, s), (sum, count)))
}

/// The quotient of a split average's columns, named as the average.
fn quotient(split: &Split) -> Option<Expr> {
    let (p, s) = split.arg_type;
    // The average has no more integer digits than its argument's type
    // allows, which is often far more than its values have (`avg(n * q)`
    // of a numeric(18,6) and an integer allows 23): never fewer than the
    // 16 places PostgreSQL gives an average from 1 to 9999, so an
    // average beyond 10^22 is 22003 rather than rounded short.
    let integer = (p - s as u8) as i16;
    let room = (38 - integer).max(MIN_PLACES);
    let scale = (QUOTIENT_SCALE.max(s) as i16).min(room);
    if scale < s as i16 {
        return None;
    }
    let count = Expr::Cast(Cast::new(
        Box::new(Expr::Column(Column::new_unqualified(&split.count))),
        DataType::Decimal128(20, 0),
    ));
    Some(
        super::quotient::divide(
            Expr::Column(Column::new_unqualified(&split.sum)),
            count,
            38,
            scale as i8,
        )
        .alias(&split.avg),
    )
}

/// `e` without the aliases around it.
fn strip_alias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => strip_alias(&a.expr),
        other => other,
    }
}

/// The fractional digits an average is stored with (see `quotient`), as
/// a quotient's: the places PostgreSQL gives an average between 0.0001
/// and 1. One from 1 to 9999 has 16 of them and is sent so (each value
/// is written with its own places, `places`); one below 0.0001 (24 or
/// more) is rounded at 20, and one of a `bigint` at 17, which leaves room
/// for its 21 integer digits.
const QUOTIENT_SCALE: i8 = 20;

/// The places PostgreSQL gives an average from 1 to 9999.
const MIN_PLACES: i16 = 16;

/// `node` (whose columns are `schema`'s) under a projection of the same
/// columns with each split average computed from its sum and count.
fn above(node: LogicalPlan, splits: &[Split]) -> Result<Transformed<LogicalPlan>> {
    let columns = node
        .schema()
        .iter()
        .filter(|(q, f)| q.is_some() || f.name() != Aggregate::INTERNAL_GROUPING_ID)
        .filter(|(q, f)| q.is_some() || !splits.iter().any(|s| &s.count == f.name()))
        .map(|(qualifier, field)| {
            let column = Expr::Column((qualifier, field).into());
            match splits
                .iter()
                .find(|s| qualifier.is_none() && &s.sum == field.name())
            {
                Some(split) => quotient(split).expect("checked when split"),
                None => column,
            }
        })
        .collect();
    let projection = Projection::try_new(columns, Arc::new(node))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

/// Makes a call of the aggregate function given, over the argument given,
/// with the options of the average it replaces.
type Caller<'a> = Box<dyn Fn(Arc<datafusion::logical_expr::AggregateUDF>, Expr) -> Expr + 'a>;

/// `exprs` (a node's aggregate or window calls, over `schema`) with each
/// average of a numeric or an integer split: its sum in its place and its
/// count after all of them. `caller` gives an average's argument and what
/// makes a call like it. `None` when none is split.
fn split_averages<'a>(
    exprs: &'a [Expr],
    schema: &DFSchema,
    caller: impl Fn(&'a Expr) -> Option<(&'a [Expr], Caller<'a>)>,
) -> Option<(Vec<Expr>, Vec<Split>)> {
    let mut out = vec![];
    let mut counts = vec![];
    let mut splits = vec![];
    for (at, e) in exprs.iter().enumerate() {
        let parts = caller(strip_alias(e))
            .and_then(|(args, call)| split(args, schema, at).map(|p| (call, p)));
        let Some((call, (summed, arg, arg_type, (sum, count)))) = parts else {
            out.push(e.clone());
            continue;
        };
        let this = Split {
            avg: e.schema_name().to_string(),
            sum: sum.clone(),
            count: count.clone(),
            arg_type,
        };
        if quotient(&this).is_none() {
            out.push(e.clone());
            continue;
        }
        out.push(call(datafusion::functions_aggregate::sum::sum_udaf(), summed).alias(sum));
        counts.push(call(datafusion::functions_aggregate::count::count_udaf(), arg).alias(count));
        splits.push(this);
    }
    if splits.is_empty() {
        return None;
    }
    out.extend(counts);
    Some((out, splits))
}

fn averaged_aggregate(a: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let schema = a.input.schema().clone();
    let split = split_averages(&a.aggr_expr, &schema, |e| match e {
        Expr::AggregateFunction(f) if f.func.name() == "avg" => {
            let call: Caller = Box::new(move |func, arg| {
                let mut params = f.params.clone();
                params.args = vec![arg];
                Expr::AggregateFunction(AggregateFunction { func, params })
            });
            Some((f.params.args.as_slice(), call))
        }
        _ => None,
    });
    let Some((exprs, splits)) = split else {
        return Ok(Transformed::no(LogicalPlan::Aggregate(a)));
    };
    let node = LogicalPlan::Aggregate(Aggregate::try_new(a.input, a.group_expr, exprs)?);
    above(node, &splits)
}

fn averaged_window(w: datafusion::logical_expr::Window) -> Result<Transformed<LogicalPlan>> {
    let schema = w.input.schema().clone();
    let split = split_averages(&w.window_expr, &schema, |e| match e {
        Expr::WindowFunction(f) if matches!(&f.fun, WindowFunctionDefinition::AggregateUDF(u) if u.name() == "avg") =>
        {
            let call: Caller = Box::new(move |func, arg| {
                let mut g = f.as_ref().clone();
                g.fun = WindowFunctionDefinition::AggregateUDF(func);
                g.params.args = vec![arg];
                Expr::WindowFunction(Box::new(g))
            });
            Some((f.params.args.as_slice(), call))
        }
        _ => None,
    });
    let Some((exprs, splits)) = split else {
        return Ok(Transformed::no(LogicalPlan::Window(w)));
    };
    let node = LogicalPlan::Window(datafusion::logical_expr::Window::try_new(exprs, w.input)?);
    above(node, &splits)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn averages_are_postgres_quotients() {
        let state = datafusion::execution::session_state::SessionStateBuilder::new()
            .with_default_features()
            .with_analyzer_rules({
                let mut rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> =
                    vec![Arc::new(NumericAverages)];
                rules.extend(datafusion::optimizer::Analyzer::new().rules);
                rules
            })
            .build();
        let ctx = SessionContext::new_with_state(state);
        for (sql, expected) in [
            (
                "SELECT avg(x) AS a, avg(x) / 2 AS h FROM t",
                // PostgreSQL's value, stored at scale 20 (the places are
                // written when the result is sent).
                "| 1.83333333333333330000 | 0.916666666666666650000000 |",
            ),
            (
                "SELECT avg(x) OVER () AS w FROM t LIMIT 1",
                "| 1.83333333333333330000 |",
            ),
        ] {
            let sql = format!(
                "WITH t AS (SELECT CAST(x AS decimal(12,2)) AS x \
                 FROM (VALUES (1), (2), (2.5)) v(x)) {sql}"
            );
            let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
            let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string();
            assert!(text.contains(expected), "{text}");
        }
    }
}
