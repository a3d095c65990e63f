//! Correlated scalar subqueries that DataFusion cannot turn into joins,
//! evaluated the way PostgreSQL evaluates every one of them: once per outer
//! row (a "SubPlan").
//!
//! DataFusion decorrelates a scalar subquery when its correlation is a set of
//! equalities; `(SELECT max(x) FROM d WHERE d.k = e.k AND d.v > e.v)` or a
//! condition on the outer row alone stays a subquery, which it cannot
//! execute. An optimizer rule that runs after DataFusion's own turns each
//! such subquery into a function of the outer columns it reads. The
//! function runs the subquery with those columns' values as literals, once
//! per distinct set of values, in memory: PostgreSQL's plan, with its cost.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{Column, ScalarValue};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Subquery, Volatility, lit,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::error::{Error, ErrorKind};

/// The optimizer rule (see the module docs).
#[derive(Debug, Default)]
pub struct CorrelatedSubplans;

impl OptimizerRule for CorrelatedSubplans {
    fn name(&self) -> &str {
        "sluice_correlated_subplans"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        subplans_where(plan, |sq, passed| {
            let outer = outer_columns(&sq.outer_ref_columns);
            (!outer.is_empty() && outer.iter().all(passed)).then_some(outer)
        })
    }
}

/// `plan` with each correlated scalar subquery made a subplan of the
/// outer columns `outer_of` gives it (`None`: left as it is), given
/// which columns its node can pass.
fn subplans_where(
    plan: LogicalPlan,
    outer_of: impl Fn(&Subquery, &dyn Fn(&Column) -> bool) -> Option<Vec<Column>>,
) -> DfResult<Transformed<LogicalPlan>> {
    // Also inside the plans of subqueries, where an outer column of a
    // nested subquery is a column of the subquery around it.
    crate::tree::transform_up_with_subqueries(plan, |node| {
        // The outer columns must be columns of the node's inputs (not
        // of a query further out, which the node cannot pass).
        let inputs: Vec<datafusion::common::DFSchemaRef> =
            node.inputs().iter().map(|i| i.schema().clone()).collect();
        let passed = |c: &Column| inputs.iter().any(|s| s.has_column(c));
        // The rewritten expressions keep their names: the node's
        // schema must not change.
        let names = NamePreserver::new(&node);
        crate::tree::map_expressions(node, |e| {
            let saved = crate::types::save_name(&names, &e);
            let rewritten = crate::tree::transform_up(e, |x| match x {
                Expr::ScalarSubquery(sq) => match outer_of(&sq, &passed) {
                    Some(outer) => Ok(Transformed::yes(subplan_call(sq, outer))),
                    None => Ok(Transformed::no(Expr::ScalarSubquery(sq))),
                },
                other => Ok(Transformed::no(other)),
            })?;
            Ok(rewritten.update_data(|e| crate::types::keep_name(saved, e)))
        })
    })
}

/// The columns of a subquery's outer references, each once.
fn outer_columns(refs: &[Expr]) -> Vec<Column> {
    let mut outer: Vec<Column> = Vec::new();
    for e in refs {
        if let Expr::OuterReferenceColumn(_, c) = e
            && !outer.contains(c)
        {
            outer.push(c.clone());
        }
    }
    outer
}

/// Correlated scalar subqueries whose nested IN, EXISTS or scalar
/// subquery reads a column of the query around them (`SELECT (SELECT
/// count(*) FROM b WHERE a.s NOT IN (SELECT ... WHERE c.id = b.i)) FROM
/// a`) become subplans before DataFusion decorrelates the nested one: it
/// made `a.s` a column of the join it built inside, which the query
/// around no longer passed (42703).
#[derive(Debug, Default)]
pub struct DeepCorrelations;

impl OptimizerRule for DeepCorrelations {
    fn name(&self) -> &str {
        "sluice_deep_correlations"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        subplans_where(plan, |sq, passed| {
            let mut outer = outer_columns(&sq.outer_ref_columns);
            if !outer.iter().all(passed) {
                return None;
            }
            let deep: Vec<Column> = nested_outer_columns(sq)
                .into_iter()
                .filter(|c| passed(c) && !outer.contains(c))
                .collect();
            if deep.is_empty() {
                return None;
            }
            outer.extend(deep);
            Some(outer)
        })
    }
}

/// The outer columns the subqueries nested in `sq` read.
fn nested_outer_columns(sq: &Subquery) -> Vec<Column> {
    let mut found = vec![];
    let _ = crate::tree::apply(sq.subquery.as_ref(), |node| {
        crate::tree::apply_expressions(node, |e| {
            crate::tree::apply(e, |x| {
                let refs = match x {
                    Expr::ScalarSubquery(s) => &s.outer_ref_columns,
                    Expr::Exists(x) => &x.subquery.outer_ref_columns,
                    Expr::InSubquery(x) => &x.subquery.outer_ref_columns,
                    _ => return Ok(TreeNodeRecursion::Continue),
                };
                found.extend(outer_columns(refs));
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    found
}

/// `SubPlan(outer columns...)` for a correlated scalar subquery.
fn subplan_call(sq: Subquery, outer: Vec<Column>) -> Expr {
    let out = sq.subquery.schema().field(0).data_type().clone();
    let udf = ScalarUDF::new_from_impl(SubPlan {
        signature: Signature::variadic_any(Volatility::Volatile),
        plan: sq.subquery.clone(),
        outer: outer.clone(),
        out,
        memo: Default::default(),
    });
    let args: Vec<Expr> = outer.into_iter().map(Expr::Column).collect();
    // A function needs an argument; an empty outer list cannot happen here.
    udf.call(args)
}

/// The most sets of outer values whose results one subquery keeps for
/// the whole statement (a value found in the same batch is reused beyond
/// it too).
const MEMO_ENTRIES: usize = 10_000;

#[derive(Debug)]
struct SubPlan {
    signature: Signature,
    plan: Arc<LogicalPlan>,
    outer: Vec<Column>,
    out: DataType,
    /// The results computed so far in this statement, by outer values: a
    /// nested loop join evaluates its condition once per pair of batches,
    /// and ran the subquery again for each (a plan is optimized, and so
    /// made with a new memo, for each execution).
    memo: Arc<std::sync::Mutex<HashMap<Vec<ScalarValue>, ScalarValue>>>,
}

impl PartialEq for SubPlan {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.plan, &other.plan)
    }
}

impl Eq for SubPlan {}

impl std::hash::Hash for SubPlan {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.outer.hash(state);
    }
}

/// Plans and runs the per-row subqueries, with Sluice's optimizer and
/// physical rules (DataFusion's own moved a filter above an outer join
/// below it, reading the other side's column of the same name) and its
/// query planner (an ASOF join inside).
static STATE: LazyLock<SessionState> = LazyLock::new(|| {
    SessionStateBuilder::new()
        .with_default_features()
        .with_query_planner(Arc::new(crate::features::asof::SluiceQueryPlanner))
        .with_optimizer_rules(super::optimizer_rules())
        .with_physical_optimizer_rules(super::physical_optimizer_rules())
        .build()
});

fn ours(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl SubPlan {
    /// The subquery with the outer columns bound to `values`, also where
    /// a subquery nested in it reads them.
    fn bound(&self, values: &[ScalarValue]) -> DfResult<LogicalPlan> {
        let bound_here = |c: &Column| self.outer.iter().position(|o| o == c);
        let unbound = |refs: Vec<Expr>| -> Vec<Expr> {
            refs.into_iter()
                .filter(
                    |e| !matches!(e, Expr::OuterReferenceColumn(_, c) if bound_here(c).is_some()),
                )
                .collect()
        };
        let bind = |e: Expr| {
            crate::tree::transform_up(e, |x| match x {
                Expr::OuterReferenceColumn(f, c) => match bound_here(&c) {
                    Some(i) => Ok(Transformed::yes(lit(values[i].clone()))),
                    None => Ok(Transformed::no(Expr::OuterReferenceColumn(f, c))),
                },
                // A nested subquery no longer reads what was bound.
                Expr::ScalarSubquery(mut sq) => {
                    sq.outer_ref_columns = unbound(sq.outer_ref_columns);
                    Ok(Transformed::yes(Expr::ScalarSubquery(sq)))
                }
                Expr::Exists(mut e) => {
                    e.subquery.outer_ref_columns = unbound(e.subquery.outer_ref_columns);
                    Ok(Transformed::yes(Expr::Exists(e)))
                }
                Expr::InSubquery(mut e) => {
                    e.subquery.outer_ref_columns = unbound(e.subquery.outer_ref_columns);
                    Ok(Transformed::yes(Expr::InSubquery(e)))
                }
                other => Ok(Transformed::no(other)),
            })
        };
        // Each expression keeps its name: a literal in place of an outer
        // column renames an aggregate (`first_value(outer_ref(a.x))`),
        // which the projection above reads by that name.
        let plan = crate::tree::transform_up_with_subqueries(self.plan.as_ref().clone(), |node| {
            let names = NamePreserver::new(&node);
            let node = crate::tree::map_expressions(node, |e| {
                let saved = crate::types::save_name(&names, &e);
                Ok(bind(e)?.update_data(|e| crate::types::keep_name(saved, e)))
            })?;
            // Schemas computed with the outer references typed need
            // recomputing.
            node.map_data(|n| n.recompute_schema())
        })?;
        Ok(plan.data)
    }

    async fn run(&self, values: &[ScalarValue]) -> DfResult<ScalarValue> {
        let plan = self.bound(values)?;
        let plan = STATE.optimize(&plan)?;
        let physical = STATE.create_physical_plan(&plan).await?;
        let batches = datafusion::physical_plan::collect(physical, STATE.task_ctx()).await?;
        let mut found: Option<ScalarValue> = None;
        for b in batches.iter().filter(|b| b.num_rows() > 0) {
            if found.is_some() || b.num_rows() > 1 {
                return Err(ours(Error::new(
                    ErrorKind::CardinalityViolation,
                    "more than one row returned by a subquery used as an expression",
                )));
            }
            found = Some(ScalarValue::try_from_array(b.column(0), 0)?);
        }
        match found {
            Some(v) => Ok(v),
            None => ScalarValue::try_from(&self.out),
        }
    }
}

impl ScalarUDFImpl for SubPlan {
    fn name(&self) -> &str {
        "sluice_subplan"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(self.out.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let columns = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<DfResult<Vec<_>>>()?;
        tokio::runtime::Handle::try_current().map_err(|_| {
            ours(Error::not_supported(
                "a correlated subquery outside the query runtime",
            ))
        })?;
        let mut memo: HashMap<Vec<ScalarValue>, ScalarValue> = HashMap::new();
        let mut out = Vec::with_capacity(rows);
        for r in 0..rows {
            let key = columns
                .iter()
                .map(|c| ScalarValue::try_from_array(c.as_ref(), r))
                .collect::<DfResult<Vec<_>>>()?;
            let kept = || self.memo.lock().ok()?.get(&key).cloned();
            let value = match memo.get(&key).cloned().or_else(kept) {
                Some(v) => v,
                None => {
                    let v = crate::interrupt::block_on(self.run(&key))?;
                    if let Ok(mut kept) = self.memo.lock()
                        && kept.len() < MEMO_ENTRIES
                    {
                        kept.insert(key.clone(), v.clone());
                    }
                    memo.insert(key, v.clone());
                    v
                }
            };
            out.push(value);
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(&self.out),
            ));
        }
        let array = ScalarValue::iter_to_array(out)?;
        if array.data_type() != &self.out {
            return Ok(ColumnarValue::Array(datafusion::arrow::compute::cast(
                &array, &self.out,
            )?));
        }
        Ok(ColumnarValue::Array(array))
    }
}
