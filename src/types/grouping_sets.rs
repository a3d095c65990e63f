//! The expressions of a grouping set keep their names through type
//! coercion. DataFusion's coercion names a changed expression after the
//! original by an alias; inside `CUBE ((d + 30))` that alias went around
//! the whole grouping set, which the aggregate then took for one plain
//! key: an empty input gave no row where PostgreSQL gives the grand
//! total's, and a key of the set was "does not exist" (`42703`). This rule,
//! before coercion, coerces each expression of a grouping set whose type
//! coercion would change, and names it as it was.

use datafusion::common::DFSchema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, GroupingSet, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;
use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;

/// Coerces grouping-set keys under their own names (see the module docs).
#[derive(Debug)]
pub struct GroupingSetNames;

impl AnalyzerRule for GroupingSetNames {
    fn name(&self) -> &str {
        "sluice_grouping_set_names"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        crate::tree::transform_up_with_subqueries(plan, |node| {
            let LogicalPlan::Aggregate(mut agg) = node else {
                return Ok(Transformed::no(node));
            };
            let schema = agg.input.schema().as_ref().clone();
            let mut renamed: Vec<(Expr, Expr)> = Vec::new();
            for e in agg.group_expr.iter_mut() {
                if let Expr::GroupingSet(set) = e {
                    let exprs: Vec<&mut Expr> = match set {
                        GroupingSet::Rollup(v) | GroupingSet::Cube(v) => v.iter_mut().collect(),
                        GroupingSet::GroupingSets(sets) => sets.iter_mut().flatten().collect(),
                    };
                    for x in exprs {
                        if let Some(named) = coerced(x, &schema) {
                            renamed.push((std::mem::replace(x, named.clone()), named));
                        }
                    }
                }
            }
            if renamed.is_empty() {
                return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
            }
            // `grouping(key)` finds its key among the set's expressions.
            for e in agg.aggr_expr.iter_mut() {
                let Expr::AggregateFunction(f) = e else {
                    continue;
                };
                if f.func.name() != "grouping" {
                    continue;
                }
                for arg in f.params.args.iter_mut() {
                    if let Some((_, named)) = renamed.iter().find(|(old, _)| old == arg) {
                        *arg = named.clone();
                    }
                }
            }
            let rebuilt = datafusion::logical_expr::Aggregate::try_new(
                agg.input,
                agg.group_expr,
                agg.aggr_expr,
            )?;
            Ok(Transformed::yes(LogicalPlan::Aggregate(rebuilt)))
        })
        .map(|t| t.data)
    }
}

/// `e` coerced and named as it was, when coercion changes its name.
fn coerced(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    if matches!(e, Expr::Column(_) | Expr::Alias(_)) {
        return None;
    }
    let mut coercion = TypeCoercionRewriter::new(schema);
    // One instantiation, with DataFusion's own rewriter.
    #[allow(clippy::disallowed_methods)]
    let done = e.clone().rewrite(&mut coercion).ok()?.data;
    let (relation, name) = e.qualified_name();
    (done.qualified_name() != (relation.clone(), name.clone()))
        .then(|| done.alias_qualified(relation, name))
}
