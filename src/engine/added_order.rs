//! Rows in the order they were added, where the plan can keep it cheaply.
//!
//! A table that fits one scan partition is read in the order its rows were
//! added (`crate::lake::stats`); PostgreSQL's heap gives that order too,
//! and clients rely on it for a query without ORDER BY (`SELECT * FROM t`
//! after a few INSERTs) and for `string_agg` / `array_agg` without ORDER
//! BY. DataFusion spreads a one-partition input over the cores in turns
//! (round-robin) before a filter or an aggregation, and the partitions'
//! rows then arrive interleaved. This rule takes that spreading away below
//! the result of a query that ends in merging its partitions, and below
//! the first stage of an aggregation that collects values in arrival
//! order (`array_agg` and `string_agg` without ORDER BY, which the JSON
//! aggregates use): those run on the one partition, in order.
//!
//! A result that is a `UNION ALL` gives its branches' rows one branch
//! after the other, as PostgreSQL's Append does (`SELECT 1 UNION ALL
//! SELECT 2` is 1, 2): the rule leaves its partitions unmerged and
//! [`execute`] reads them in order, each running at once a few batches
//! ahead.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    ReplaceChildrenOptions,
};
use futures::StreamExt;

/// See the module docs.
#[derive(Debug)]
pub struct AddedOrder;

impl PhysicalOptimizerRule for AddedOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // The result of the query: its rows as they come, its partitions
        // merged by a node of the plan or by the executor.
        let plan = match plan.downcast_ref::<CoalescePartitionsExec>() {
            // A union's branches, merged in order by `execute`.
            Some(c) if c.fetch().is_none() && union_below(c.input()) => Arc::clone(c.input()),
            _ => plan,
        };
        let plan = if plan.downcast_ref::<CoalescePartitionsExec>().is_some() {
            let child = Arc::clone(plan.children()[0]);
            match unspread(&child)? {
                Some(c) => with_child(plan, c)?,
                None => plan,
            }
        } else if plan.output_partitioning().partition_count() > 1 {
            unspread(&plan)?.unwrap_or(plan)
        } else {
            plan
        };
        crate::tree::transform_up(plan, |node| {
            let Some(agg) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if *agg.mode() != AggregateMode::Partial
                || !agg.aggr_expr().iter().any(|a| {
                    matches!(a.fun().name(), "array_agg" | "string_agg") && a.order_bys().is_empty()
                })
            {
                return Ok(Transformed::no(node));
            }
            match unspread(agg.input())? {
                Some(input) => Ok(Transformed::yes(with_child(node, input)?)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_added_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` over `child` instead of its one child.
fn with_child(
    plan: Arc<dyn ExecutionPlan>,
    child: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.replace_children(
        vec![child],
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )
}

/// Whether `plan` is a union under nodes that keep each partition's rows
/// in order.
fn union_below(plan: &Arc<dyn ExecutionPlan>) -> bool {
    if plan.downcast_ref::<UnionExec>().is_some() {
        return true;
    }
    (plan.downcast_ref::<ProjectionExec>().is_some() || plan.downcast_ref::<FilterExec>().is_some())
        && union_below(plan.children()[0])
}

/// The rows of `plan`, a query's result: a union's partitions one after
/// the other (see the module docs), anything else as DataFusion merges it.
pub fn execute(
    plan: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
) -> Result<SendableRecordBatchStream> {
    let partitions = plan.output_partitioning().partition_count();
    if partitions <= 1 || !union_below(&plan) {
        return datafusion::physical_plan::execute_stream(plan, context);
    }
    let mut tasks = tokio::task::JoinSet::new();
    let mut receivers = Vec::with_capacity(partitions);
    for partition in 0..partitions {
        let mut rows = plan.execute(partition, Arc::clone(&context))?;
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        tasks.spawn(async move {
            while let Some(batch) = rows.next().await {
                if sender.send(batch).await.is_err() {
                    break;
                }
            }
        });
        receivers.push(receiver);
    }
    // Dropping the stream drops the tasks, which stops them.
    let ordered = futures::stream::iter(receivers)
        .flat_map(|mut r| futures::stream::poll_fn(move |cx| r.poll_recv(cx)))
        .map(move |batch| {
            let _running = &tasks;
            batch
        });
    Ok(Box::pin(RecordBatchStreamAdapter::new(
        plan.schema(),
        ordered,
    )))
}

/// `plan` without the round-robin spreading of one partition below its
/// filters, projections and Delta scan; `None` when it has none.
fn unspread(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(r) = plan.downcast_ref::<RepartitionExec>() {
        let spread = matches!(r.partitioning(), Partitioning::RoundRobinBatch(_))
            && r.input().output_partitioning().partition_count() == 1
            && !r.preserve_order();
        return Ok(spread.then(|| Arc::clone(r.input())));
    }
    // A union: each branch on its own.
    if plan.downcast_ref::<UnionExec>().is_some() {
        let mut changed = false;
        let mut children = vec![];
        for child in plan.children() {
            match unspread(child)? {
                Some(c) => {
                    changed = true;
                    children.push(c);
                }
                None => children.push(Arc::clone(child)),
            }
        }
        return Ok(if changed {
            Some(Arc::clone(plan).replace_children(
                children,
                ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
            )?)
        } else {
            None
        });
    }
    // Nodes that keep each partition's order: filters, projections and
    // the Delta scan over its files.
    let keeps_order = plan.downcast_ref::<FilterExec>().is_some()
        || plan.downcast_ref::<ProjectionExec>().is_some()
        || (plan.name() == "DeltaScanExec" && plan.children().len() == 1);
    if !keeps_order {
        return Ok(None);
    }
    let child = Arc::clone(plan.children()[0]);
    match unspread(&child)? {
        Some(c) => Ok(Some(with_child(Arc::clone(plan), c)?)),
        None => Ok(None),
    }
}
