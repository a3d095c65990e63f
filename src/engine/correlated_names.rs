//! Correlated columns of one name, told apart before decorrelation.
//!
//! DataFusion turns `EXISTS`, `IN` and scalar subqueries into joins by
//! pulling their correlated conditions up: the inner columns those
//! conditions read are added to the subquery's output, which is then
//! renamed `__correlated_sq_N`. Two such columns of one name (`a2.id =
//! t.id AND a3.id = t.k` over a join of `a2` and `a3`), or one named like
//! the value of an `IN` (`t.id IN (SELECT a3.id ... WHERE a2.id = t.id)`),
//! became one column of the renamed output: the join compared `t.id` with
//! `a3.id` twice, and rows were lost or kept wrongly (a correlated `NOT IN`
//! over a join answered 3 rows where PostgreSQL answers 10). An output
//! expression DataFusion names after a column (`CAST(a.k AS bigint)` is
//! `a.k`) clashed with that column pulled up beside it (`XX000 Projections
//! require unique expression names`). This rule,
//! run just before DataFusion's, gives each such inner column a name of
//! its own under the filter that reads it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::Column;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, Filter, LogicalPlan, LogicalPlanBuilder, Subquery};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// The prefix of the names given (a counter follows it).
const PREFIX: &str = "__sluice_correlated_";

static NEXT: AtomicUsize = AtomicUsize::new(1);

#[derive(Debug, Default)]
pub struct UniqueCorrelatedNames;

impl OptimizerRule for UniqueCorrelatedNames {
    fn name(&self) -> &str {
        "sluice_unique_correlated_names"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        crate::tree::transform_up_with_subqueries(plan, |node| {
            crate::tree::map_subqueries(node, |sq| match sq {
                LogicalPlan::Subquery(s) => subquery(s),
                other => Ok(Transformed::no(other)),
            })
        })
    }
}

/// A subquery whose correlated filters read inner columns of one name
/// (or of its output's name), with those columns renamed.
fn subquery(s: Subquery) -> Result<Transformed<LogicalPlan>> {
    let output = outputs(&s.subquery);
    let inner = s.subquery.as_ref().clone();
    // Nested subqueries are not entered: each is handled on its own.
    let fixed = crate::tree::transform_up(inner, |node| match node {
        LogicalPlan::Filter(f) => filter(f, &output),
        other => Ok(Transformed::no(other)),
    })?;
    if !fixed.transformed {
        return Ok(Transformed::no(LogicalPlan::Subquery(s)));
    }
    Ok(Transformed::yes(LogicalPlan::Subquery(Subquery {
        subquery: Arc::new(fixed.data),
        outer_ref_columns: s.outer_ref_columns,
        spans: s.spans,
    })))
}

/// A column of a subquery's output: its name, and the column it passes
/// through unchanged (None: an expression named like a column, as DataFusion
/// names `CAST(a.k AS bigint)` after `a.k`).
type Output = (Column, Option<Column>);

/// The output columns of `plan`.
fn outputs(plan: &LogicalPlan) -> Vec<Output> {
    let columns = plan.schema().columns();
    match plan {
        LogicalPlan::Projection(p) => columns
            .into_iter()
            .zip(&p.expr)
            .map(|(c, e)| match e.clone().unalias() {
                Expr::Column(inner) => (c, Some(inner)),
                _ => (c, None),
            })
            .collect(),
        _ => columns.into_iter().map(|c| (c.clone(), Some(c))).collect(),
    }
}

/// The inner columns of `f`'s correlated conditions that share a name with
/// another of them or with a column of the subquery's `output` that is not
/// that column itself.
fn clashing(f: &Filter, output: &[Output]) -> Vec<Column> {
    let correlated: BTreeSet<&Column> = split_conjunction(&f.predicate)
        .into_iter()
        .filter(|c| c.contains_outer())
        .flat_map(|c| c.column_refs())
        .collect();
    // What each name stands for: a column, or an output expression (by
    // its position). A column goes by its name and by its qualified name,
    // which an unqualified output expression is named after.
    let mut by_name: HashMap<String, BTreeSet<Result<&Column, usize>>> = HashMap::new();
    for c in correlated.iter().copied() {
        for name in [c.name.clone(), c.flat_name()] {
            by_name.entry(name).or_default().insert(Ok(c));
        }
    }
    for (i, (name, passed)) in output.iter().enumerate() {
        let meaning = passed.as_ref().ok_or(i);
        by_name
            .entry(name.name.clone())
            .or_default()
            .insert(meaning);
    }
    let clashes = |name: String| by_name.get(&name).is_some_and(|s| s.len() > 1);
    correlated
        .into_iter()
        .filter(|c| clashes(c.name.clone()) || clashes(c.flat_name()))
        .cloned()
        .collect()
}

/// `Filter(p, input)` as `Projection(input's columns, Filter(p',
/// Projection(input's columns, c AS unique..., input)))`, where `p'`
/// reads each clashing column `c` by its unique name.
fn filter(f: Filter, output: &[Output]) -> Result<Transformed<LogicalPlan>> {
    let clash = clashing(&f, output);
    let schema = f.input.schema().clone();
    if clash.is_empty() || !clash.iter().all(|c| schema.has_column(c)) {
        return Ok(Transformed::no(LogicalPlan::Filter(f)));
    }
    let columns: Vec<Expr> = schema.columns().into_iter().map(Expr::Column).collect();
    let mut below = columns.clone();
    let mut renamed: HashMap<Column, Column> = HashMap::new();
    for c in clash {
        let name = format!("{PREFIX}{}", NEXT.fetch_add(1, Ordering::Relaxed));
        below.push(Expr::Column(c.clone()).alias(&name));
        renamed.insert(c, Column::new_unqualified(name));
    }
    let predicate = crate::tree::transform_up(f.predicate.clone(), |e| match e {
        Expr::Column(c) => Ok(match renamed.get(&c) {
            Some(n) => Transformed::yes(Expr::Column(n.clone())),
            None => Transformed::no(Expr::Column(c)),
        }),
        other => Ok(Transformed::no(other)),
    })?
    .data;
    let plan = LogicalPlanBuilder::from(f.input.as_ref().clone())
        .project(below)
        .and_then(|b| b.filter(predicate))
        .and_then(|b| b.project(columns))
        .and_then(|b| b.build());
    // A plan this rule cannot rebuild is left as it was.
    Ok(match plan {
        Ok(plan) => Transformed::yes(plan),
        Err(_) => Transformed::no(LogicalPlan::Filter(f)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    /// The rows of `sql` over two small tables, with the rule in place
    /// (as the engine has it) and sorted.
    async fn rows(sql: &str) -> Vec<String> {
        let ctx = SessionContext::new();
        let state = ctx.state();
        let mut rules = datafusion::optimizer::Optimizer::new().rules;
        let at = rules
            .iter()
            .position(|r| r.name() == "decorrelate_predicate_subquery")
            .expect("DataFusion decorrelates predicate subqueries");
        rules.insert(at, Arc::new(UniqueCorrelatedNames));
        let state =
            datafusion::execution::session_state::SessionStateBuilder::new_from_existing(state)
                .with_optimizer_rules(rules)
                .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.sql("CREATE TABLE o AS VALUES (1, 'a'), (2, 'b'), (3, NULL), (4, 'a'), (5, 'c')")
            .await
            .unwrap();
        ctx.sql("CREATE TABLE i AS VALUES (1, 'a'), (9, 'b'), (4, 'a'), (14, 'b')")
            .await
            .unwrap();
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut out: Vec<String> = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
            .lines()
            .filter(|l| l.starts_with("| ") && !l.contains("column"))
            .map(|l| l.replace(' ', ""))
            .collect();
        out.sort();
        out
    }

    #[tokio::test]
    async fn correlated_columns_of_one_name_stay_apart() {
        // PostgreSQL: 2, 3 and 5 (2 is not among the ids of i with b).
        let sql = "SELECT a1.column1 FROM o a1 WHERE a1.column1 NOT IN \
            (SELECT a3.column1 FROM o a2 JOIN i a3 ON a2.column2 = a3.column2 \
             WHERE a2.column1 = a1.column1)";
        assert_eq!(rows(sql).await, ["|2|", "|3|", "|5|"]);
        let sql = "SELECT a1.column1 FROM o a1 WHERE a1.column1 IN \
            (SELECT a3.column1 FROM o a2 JOIN i a3 ON a2.column2 = a3.column2 \
             WHERE a2.column1 = a1.column1)";
        assert_eq!(rows(sql).await, ["|1|", "|4|"]);
        // Two inner columns of one name, each correlated.
        let sql = "SELECT a1.column1 FROM o a1 WHERE EXISTS \
            (SELECT 1 FROM o a2 JOIN i a3 ON a2.column2 = a3.column2 \
             WHERE a2.column1 = a1.column1 AND a3.column1 = a1.column1 + 7)";
        assert_eq!(rows(sql).await, ["|2|"]);
        // A cast of the correlated column, which DataFusion names after it.
        let sql = "SELECT a1.column1 FROM o a1 WHERE 4 IN \
            (SELECT CAST(a2.column1 AS bigint) FROM i a2 WHERE a2.column1 = a1.column1)";
        assert_eq!(rows(sql).await, ["|4|"]);
    }
}
