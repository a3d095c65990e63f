//! A HAVING condition of an aggregate without GROUP BY, or grouped by sets
//! that include the empty one (`ROLLUP`, `CUBE`), stays above it.
//!
//! DataFusion's filter pushdown moves below an aggregate every condition
//! that reads grouping columns only, which a condition reading no column
//! at all does vacuously. That is right for `GROUP BY a`, where it drops
//! the same groups, and wrong without GROUP BY, where the aggregate makes
//! its one row whatever its input: `HAVING (SELECT false)` gave a row with
//! `count(*)` 0 where PostgreSQL gives none, and a HAVING scalar subquery
//! that was NULL filtered nothing. The grand total of a `CUBE` is such a
//! row too. An analyzer rule makes such a condition
//! also read a column the aggregate computes, through a function that
//! returns the condition as it is, so that it is never pushed below.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Column;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, Filter, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// The function that keeps a condition above its aggregate.
pub(crate) const KEPT: &str = "sluice_having";

/// Keeps HAVING above an aggregate without GROUP BY (see the module
/// docs).
#[derive(Debug)]
pub struct GlobalHaving;

impl AnalyzerRule for GlobalHaving {
    fn name(&self) -> &str {
        "sluice_global_having"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        crate::tree::transform_up_with_subqueries(plan, |node| {
            let filter = match node {
                LogicalPlan::Filter(filter) => filter,
                LogicalPlan::Join(join) => return pin_constant_join_conditions(join),
                other => return Ok(Transformed::no(other)),
            };
            let Some(computed) = row_of_its_own(filter.input.as_ref()) else {
                return pin_constant_conditions(filter);
            };
            // A subquery condition that reads a column it computes
            // (`max(k) NOT IN (SELECT ...)`) stays above it anyway, and
            // must stay a condition of the filter, which DataFusion
            // decorrelates as a join that knows NULL; as an argument it
            // would be a mark join, which does not. The rest goes into the
            // function whole (the optimizer may split it further).
            keep(filter, computed, |c| {
                let already = matches!(c, Expr::ScalarFunction(f) if f.func.name() == KEPT);
                !(already || (subquery_condition(c) && !c.column_refs().is_empty()))
            })
        })
        .map(|t| t.data)
    }
}

/// The conditions without columns of a filter with such an aggregate
/// further below (one side of a join, under a grouped aggregate), tied to
/// a column of the filter's input: DataFusion pushes a condition without
/// columns into every input of a join and on below the aggregate, where
/// it no longer removes the aggregate's row (`FROM (SELECT max(x) FROM t)
/// d JOIN u ON true WHERE (SELECT NULL::boolean)` kept every row of `u`).
/// Tied to a column, it stops above the node that computes that column.
fn pin_constant_conditions(filter: Filter) -> Result<Transformed<LogicalPlan>> {
    let constant = |c: &Expr| {
        c.column_refs().is_empty() && !matches!(c, Expr::ScalarFunction(f) if f.func.name() == KEPT)
    };
    // The common filter reads columns in every condition: the plan below
    // is not walked for it.
    let schema = filter.input.schema();
    if schema.fields().is_empty()
        || !datafusion::logical_expr::utils::split_conjunction(&filter.predicate)
            .into_iter()
            .any(constant)
        || !crate::tree::exists(filter.input.as_ref(), |n| {
            Ok(matches!(n, LogicalPlan::Aggregate(a) if makes_a_row_of_nothing(&a.group_expr)))
        })?
    {
        return Ok(Transformed::no(LogicalPlan::Filter(filter)));
    }
    let (qualifier, field) = schema.qualified_field(0);
    let column = Column::new(qualifier.cloned(), field.name());
    keep(filter, column, constant)
}

/// The same for the `ON` condition of a join: a condition without columns
/// (`LEFT JOIN u ON false`, an INNER join once a WHERE rejects its NULLs)
/// was pushed into both inputs, below an aggregate without GROUP BY on one
/// side, which then still made its row (`SELECT count(*) FROM (SELECT
/// max(x) FROM t) d LEFT JOIN u ON false WHERE u.k NOT IN (100)` counted
/// every row of `u`). Tied to a column of the left input, it stays above
/// that input's aggregate.
fn pin_constant_join_conditions(
    mut join: datafusion::logical_expr::Join,
) -> Result<Transformed<LogicalPlan>> {
    let constant = |c: &Expr| {
        c.column_refs().is_empty() && !matches!(c, Expr::ScalarFunction(f) if f.func.name() == KEPT)
    };
    let Some(on) = join.filter.take() else {
        return Ok(Transformed::no(LogicalPlan::Join(join)));
    };
    let left = join.left.schema();
    let aggregate_below = |input: &LogicalPlan| {
        crate::tree::exists(input, |n| {
            Ok(matches!(n, LogicalPlan::Aggregate(a) if makes_a_row_of_nothing(&a.group_expr)))
        })
    };
    if left.fields().is_empty()
        || !datafusion::logical_expr::utils::split_conjunction(&on)
            .into_iter()
            .any(constant)
        || !(aggregate_below(join.left.as_ref())? || aggregate_below(join.right.as_ref())?)
    {
        join.filter = Some(on);
        return Ok(Transformed::no(LogicalPlan::Join(join)));
    }
    let (qualifier, field) = left.qualified_field(0);
    let column = Column::new(qualifier.cloned(), field.name());
    let (wrapped, plain): (Vec<Expr>, Vec<Expr>) =
        datafusion::logical_expr::utils::split_conjunction_owned(on)
            .into_iter()
            .partition(|c| constant(c));
    let wrapped = wrapped.into_iter().reduce(Expr::and).expect("one at least");
    join.filter = std::iter::once(Expr::ScalarFunction(ScalarFunction::new_udf(
        kept_udf(),
        vec![wrapped, Expr::Column(column)],
    )))
    .chain(plain)
    .reduce(Expr::and);
    Ok(Transformed::yes(LogicalPlan::Join(join)))
}

/// `filter` with the conditions `tied` selects joined into one
/// `sluice_having(conditions, column)` beside the others; unchanged when
/// it selects none.
fn keep(
    filter: Filter,
    column: Column,
    tied: impl Fn(&Expr) -> bool,
) -> Result<Transformed<LogicalPlan>> {
    let (wrapped, plain): (Vec<Expr>, Vec<Expr>) =
        datafusion::logical_expr::utils::split_conjunction_owned(filter.predicate.clone())
            .into_iter()
            .partition(|c| tied(c));
    let Some(wrapped) = wrapped.into_iter().reduce(Expr::and) else {
        return Ok(Transformed::no(LogicalPlan::Filter(filter)));
    };
    let kept = std::iter::once(Expr::ScalarFunction(ScalarFunction::new_udf(
        kept_udf(),
        vec![wrapped, Expr::Column(column)],
    )))
    .chain(plain)
    .reduce(Expr::and)
    .expect("one condition at least");
    Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(
        kept,
        filter.input,
    )?)))
}

/// A column of `input` when it is an aggregate that makes a row of no
/// input (see [`makes_a_row_of_nothing`]), or a projection of one (a rule
/// that retypes an aggregate shows it through one: `avg` of a numeric), or
/// a derived table of one.
fn row_of_its_own(input: &LogicalPlan) -> Option<Column> {
    let mut below = input;
    loop {
        below = match below {
            LogicalPlan::Projection(p) => p.input.as_ref(),
            // A derived table of one: `FROM (SELECT count(*) ...) d WHERE ...`.
            LogicalPlan::SubqueryAlias(a) => a.input.as_ref(),
            _ => break,
        };
    }
    let LogicalPlan::Aggregate(agg) = below else {
        return None;
    };
    let schema = input.schema();
    if !makes_a_row_of_nothing(&agg.group_expr) || schema.fields().is_empty() {
        return None;
    }
    let (qualifier, field) = schema.qualified_field(0);
    Some(Column::new(qualifier.cloned(), field.name()))
}

/// `x [NOT] IN (SELECT ...)` or `[NOT] EXISTS (...)`, maybe negated.
fn subquery_condition(e: &Expr) -> bool {
    match e {
        Expr::Not(inner) => subquery_condition(inner),
        Expr::InSubquery(_) | Expr::Exists(_) => true,
        _ => false,
    }
}

/// Whether an aggregate grouped by `group_expr` makes a row even of no
/// input: one without GROUP BY, or with grouping sets that include the
/// empty one (every `ROLLUP` and `CUBE`, `GROUPING SETS (..., ())`).
fn makes_a_row_of_nothing(group_expr: &[Expr]) -> bool {
    use datafusion::logical_expr::expr::GroupingSet;
    match group_expr {
        [] => true,
        [Expr::GroupingSet(GroupingSet::Rollup(_) | GroupingSet::Cube(_))] => true,
        [Expr::GroupingSet(GroupingSet::GroupingSets(sets))] => sets.iter().any(Vec::is_empty),
        _ => false,
    }
}

fn kept_udf() -> Arc<ScalarUDF> {
    static UDF: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    UDF.get_or_init(|| {
        Arc::new(ScalarUDF::new_from_impl(Kept {
            signature: Signature::any(2, Volatility::Immutable),
        }))
    })
    .clone()
}

/// `sluice_having(condition, column)`: the condition.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Kept {
    signature: Signature,
}

impl ScalarUDFImpl for Kept {
    fn name(&self) -> &str {
        KEPT
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let condition = args.args.into_iter().next().expect("two arguments");
        condition.cast_to(&DataType::Boolean, None)
    }
}
