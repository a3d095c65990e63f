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
use datafusion::common::tree_node::Transformed;
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
        // Also inside the plans of subqueries, where an outer column of a
        // nested subquery is a column of the subquery around it.
        crate::tree::transform_up_with_subqueries(plan, |node| {
            // The outer columns must be columns of the node's inputs (not
            // of a query further out, which the node cannot pass).
            let inputs: Vec<datafusion::common::DFSchemaRef> =
                node.inputs().iter().map(|i| i.schema().clone()).collect();
            let runnable = |sq: &Subquery| {
                sq.outer_ref_columns.iter().all(|e| match e {
                    Expr::OuterReferenceColumn(_, c) => inputs.iter().any(|s| s.has_column(c)),
                    _ => false,
                })
            };
            // The rewritten expressions keep their names: the node's
            // schema must not change.
            let names = NamePreserver::new(&node);
            crate::tree::map_expressions(node, |e| {
                let saved = crate::types::save_name(&names, &e);
                let rewritten = crate::tree::transform_up(e, |x| match x {
                    Expr::ScalarSubquery(sq)
                        if !sq.outer_ref_columns.is_empty() && runnable(&sq) =>
                    {
                        Ok(Transformed::yes(subplan_call(sq)?))
                    }
                    other => Ok(Transformed::no(other)),
                })?;
                Ok(rewritten.update_data(|e| crate::types::keep_name(saved, e)))
            })
        })
    }
}

/// `SubPlan(outer columns...)` for a correlated scalar subquery.
fn subplan_call(sq: Subquery) -> DfResult<Expr> {
    let mut outer: Vec<Column> = Vec::new();
    for e in &sq.outer_ref_columns {
        if let Expr::OuterReferenceColumn(_, c) = e
            && !outer.contains(c)
        {
            outer.push(c.clone());
        }
    }
    let out = sq.subquery.schema().field(0).data_type().clone();
    let udf = ScalarUDF::new_from_impl(SubPlan {
        signature: Signature::variadic_any(Volatility::Volatile),
        plan: sq.subquery.clone(),
        outer: outer.clone(),
        out,
    });
    let args: Vec<Expr> = outer.into_iter().map(Expr::Column).collect();
    // A function needs an argument; an empty outer list cannot happen here.
    Ok(udf.call(args))
}

#[derive(Debug)]
struct SubPlan {
    signature: Signature,
    plan: Arc<LogicalPlan>,
    outer: Vec<Column>,
    out: DataType,
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
    /// The subquery with the outer columns bound to `values`.
    fn bound(&self, values: &[ScalarValue]) -> DfResult<LogicalPlan> {
        let bind = |e: Expr| {
            crate::tree::transform_up(e, |x| match x {
                Expr::OuterReferenceColumn(_, c) => match self.outer.iter().position(|o| o == &c) {
                    Some(i) => Ok(Transformed::yes(lit(values[i].clone()))),
                    None => Ok(Transformed::no(Expr::OuterReferenceColumn(
                        Arc::new(datafusion::arrow::datatypes::Field::new(
                            c.name(),
                            DataType::Null,
                            true,
                        )),
                        c,
                    ))),
                },
                other => Ok(Transformed::no(other)),
            })
        };
        // Each expression keeps its name: a literal in place of an outer
        // column renames an aggregate (`first_value(outer_ref(a.x))`),
        // which the projection above reads by that name.
        let plan = crate::tree::transform_up(self.plan.as_ref().clone(), |node| {
            let names = NamePreserver::new(&node);
            crate::tree::map_expressions(node, |e| {
                let saved = crate::types::save_name(&names, &e);
                Ok(bind(e)?.update_data(|e| crate::types::keep_name(saved, e)))
            })
        })?;
        // Schemas computed with the outer references typed need recomputing.
        plan.data.recompute_schema()
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
            let value = match memo.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let v = crate::interrupt::block_on(self.run(&key))?;
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
