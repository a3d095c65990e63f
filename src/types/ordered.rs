//! Ordered `string_agg` beside other orders. DataFusion's `string_agg`
//! needs its input sorted by its ORDER BY before it sees it (a hard
//! requirement), and one aggregation sorts its input one way only, so
//! `SELECT string_agg(a, ',' ORDER BY a), string_agg(b, ',' ORDER BY b)`
//! was refused (`0A000 Conflicting ordering requirements`); PostgreSQL
//! sorts each aggregate's input on its own. Where the orders of one
//! aggregation differ, each `string_agg(x, sep ORDER BY ...)` becomes
//! `array_agg(x ORDER BY ...) FILTER (WHERE x IS NOT NULL)`, which sorts
//! its own input, joined by `array_to_string(..., sep)` in a projection
//! above; the NULL filter keeps `string_agg`'s answers (NULLs skipped, NULL
//! when there is nothing to join). `string_agg(DISTINCT x, sep ORDER BY x)`
//! keeps its DISTINCT on `array_agg`.

use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::functions_aggregate::array_agg::array_agg_udaf;
use datafusion::functions_nested::string::array_to_string;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, SortExpr, cast};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct OrderedStringAggregates;

impl AnalyzerRule for OrderedStringAggregates {
    fn name(&self) -> &str {
        "sluice_ordered_string_aggregates"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        crate::tree::transform_up_with_subqueries(plan, |node| match node {
            LogicalPlan::Aggregate(agg) if conflicting(&agg) => each_sorted(agg),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}

/// The aggregate function of an aggregation's expression (aliased or not).
fn function(e: &Expr) -> Option<&AggregateFunction> {
    match e {
        Expr::AggregateFunction(f) => Some(f),
        Expr::Alias(a) => function(&a.expr),
        _ => None,
    }
}

/// A `string_agg(x, 'sep' ORDER BY ...)` this rule rewrites: its value
/// and separator.
fn ordered_string_agg(e: &Expr) -> Option<(&AggregateFunction, &ScalarValue)> {
    let f = function(e)?;
    if f.func.name() != "string_agg" || f.params.order_by.is_empty() {
        return None;
    }
    match f.params.args.as_slice() {
        [_, Expr::Literal(sep, _)] if !sep.is_null() => Some((f, sep)),
        _ => None,
    }
}

/// Whether `agg` has ordered aggregates whose orders differ, one of them a
/// `string_agg` this rule rewrites.
fn conflicting(agg: &Aggregate) -> bool {
    let orders: Vec<&Vec<SortExpr>> = agg
        .aggr_expr
        .iter()
        .filter_map(function)
        .map(|f| &f.params.order_by)
        .filter(|o| !o.is_empty())
        .collect();
    orders.iter().any(|o| *o != orders[0])
        && agg
            .aggr_expr
            .iter()
            .any(|e| ordered_string_agg(e).is_some())
}

fn each_sorted(agg: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let mut aggr = Vec::with_capacity(agg.aggr_expr.len());
    let mut separators = Vec::with_capacity(agg.aggr_expr.len());
    for (i, e) in agg.aggr_expr.iter().enumerate() {
        match ordered_string_agg(e) {
            Some((f, sep)) => {
                let value = f.params.args[0].clone();
                let present = value.clone().is_not_null();
                let filter = match &f.params.filter {
                    Some(given) => given.as_ref().clone().and(present),
                    None => present,
                };
                let sorted = Expr::AggregateFunction(AggregateFunction::new_udf(
                    array_agg_udaf(),
                    vec![value],
                    f.params.distinct,
                    Some(Box::new(filter)),
                    f.params.order_by.clone(),
                    f.params.null_treatment,
                ));
                aggr.push(sorted.alias(format!("__sluice_string_agg_{i}")));
                separators.push(Some(sep.clone()));
            }
            None => {
                aggr.push(e.clone());
                separators.push(None);
            }
        }
    }
    let old_schema = agg.schema.clone();
    let groups = old_schema.fields().len() - agg.aggr_expr.len();
    let sorted = Aggregate::try_new(agg.input, agg.group_expr, aggr)?;
    let shown = super::shown_as(&old_schema, sorted, |i, column, field| {
        Ok(
            match i.checked_sub(groups).and_then(|k| separators[k].clone()) {
                Some(sep) => cast(
                    array_to_string(column, Expr::Literal(sep, None)),
                    field.data_type().clone(),
                ),
                None => column,
            },
        )
    })?;
    Ok(Transformed::yes(shown))
}
