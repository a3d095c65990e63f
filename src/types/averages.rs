//! `avg` of a numeric with PostgreSQL's digits. PostgreSQL divides the sum
//! by the count to at least 16 significant digits, rounded (`avg` of 1.00,
//! 2.00, 2.50 is 1.8333333333333333); DataFusion keeps the input's scale
//! plus 4, truncated (1.833333), and whatever is computed from it next (a
//! division, a multiplication) carries those six digits as if they were
//! exact. An analyzer rule, before type coercion, averages a numeric of a
//! smaller scale as one of scale 13 (DataFusion answers at scale 17) and
//! rounds the result to 16 fractional digits in a projection above: the
//! digits PostgreSQL shows for averages from 1 to 9999.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    Aggregate, Cast, Expr, ExprSchemable, LogicalPlan, Projection, WindowFunctionDefinition,
};
use datafusion::optimizer::AnalyzerRule;

/// The scale an average's input is read at; its result is rounded to
/// `SCALE + 3` (see the module docs).
const SCALE: i8 = 13;

/// Averages numerics at [`SCALE`] (see the module docs).
#[derive(Debug)]
pub struct NumericAverages;

impl AnalyzerRule for NumericAverages {
    fn name(&self) -> &str {
        "sluice_numeric_averages"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        crate::tree::transform_up_with_subqueries(plan, |node| {
            if !matches!(node, LogicalPlan::Aggregate(_) | LogicalPlan::Window(_)) {
                return Ok(Transformed::no(node));
            }
            let mut schema = DFSchema::empty();
            for input in node.inputs() {
                schema.merge(input.schema());
            }
            let names = NamePreserver::new(&node);
            let mut averaged: Vec<String> = vec![];
            let rewritten = crate::tree::map_expressions(node, |e| {
                let saved = crate::types::save_name(&names, &e);
                let name = e.schema_name().to_string();
                let widened = crate::tree::transform_up(e, |x| widen(x, &schema))?;
                if widened.transformed {
                    averaged.push(name);
                }
                Ok(widened.update_data(|e| crate::types::keep_name(saved, e)))
            })?;
            if !rewritten.transformed {
                return Ok(rewritten);
            }
            let node = rewritten.data.recompute_schema()?;
            // The same columns, the averages rounded; without the internal
            // grouping id of grouping sets, which the analyzer's rule for
            // `grouping(...)` drops from the aggregate's output after this.
            let columns = node
                .schema()
                .iter()
                .filter(|(q, f)| q.is_some() || f.name() != Aggregate::INTERNAL_GROUPING_ID)
                .map(|(qualifier, field)| {
                    let column = Expr::Column((qualifier, field).into());
                    if qualifier.is_none() && averaged.contains(field.name()) {
                        Expr::Cast(Cast::new(
                            Box::new(column),
                            DataType::Decimal128(38, SCALE + 3),
                        ))
                        .alias(field.name())
                    } else {
                        column
                    }
                })
                .collect();
            let projection = Projection::try_new(columns, Arc::new(node))?;
            Ok(Transformed::yes(LogicalPlan::Projection(projection)))
        })
        .map(|t| t.data)
    }
}

/// The argument of `avg` as a numeric of [`SCALE`], when it is a numeric of
/// a smaller scale whose integer digits still fit.
fn widened(args: &mut [Expr], schema: &DFSchema) -> bool {
    let [arg] = args else {
        return false;
    };
    match arg.get_type(schema) {
        Ok(DataType::Decimal128(p, s))
            if s < SCALE && (p as i16 - s as i16) <= 38 - SCALE as i16 =>
        {
            *arg = Expr::Cast(Cast::new(
                Box::new(arg.clone()),
                DataType::Decimal128(38, SCALE),
            ));
            true
        }
        _ => false,
    }
}

fn widen(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match e {
        Expr::AggregateFunction(AggregateFunction { func, mut params }) if func.name() == "avg" => {
            let changed = widened(&mut params.args, schema);
            let e = Expr::AggregateFunction(AggregateFunction { func, params });
            Ok(if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            })
        }
        Expr::WindowFunction(mut w) if matches!(&w.fun, WindowFunctionDefinition::AggregateUDF(f) if f.name() == "avg") =>
        {
            let WindowFunction { params, .. } = w.as_mut();
            let changed = widened(&mut params.args, schema);
            let e = Expr::WindowFunction(w);
            Ok(if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            })
        }
        other => Ok(Transformed::no(other)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn averages_carry_sixteen_digits() {
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
                "| 1.8333333333333333 | 0.91666666666666665000 |",
            ),
            (
                "SELECT avg(x) OVER () AS w FROM t LIMIT 1",
                "| 1.8333333333333333 |",
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
