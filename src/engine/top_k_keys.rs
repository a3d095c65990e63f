//! A TopK sorts each partition by every key of the merge above it.
//!
//! DataFusion 55 drops from a per-partition sort a key that is constant
//! within each partition, which is right for the sort alone, but its TopK
//! shares one threshold among the partitions, made of the keys it sorts
//! by. When the dropped key is constant within each partition but differs
//! across them (`SELECT x, 2 ... UNION ALL SELECT x, 1 ... ORDER BY x DESC,
//! 2 DESC LIMIT 3`), a partition's rows that tie another's threshold on the
//! remaining keys were pruned before the merge could order them by the
//! dropped one: the `1` rows came first. This rule, run before the dynamic
//! filters are placed, gives such a TopK the merge's keys back.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{ChildrenPropertiesMode, ExecutionPlan, ReplaceChildrenOptions};

/// See the module docs.
#[derive(Debug)]
pub struct TopKKeys;

impl PhysicalOptimizerRule for TopKKeys {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        crate::tree::transform_up(plan, |node| {
            let Some(merge) = node.downcast_ref::<SortPreservingMergeExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(sort) = merge.input().downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            let (all, kept) = (merge.expr(), sort.expr());
            if sort.fetch().is_none()
                || !sort.preserve_partitioning()
                || kept.len() >= all.len()
                || !kept.iter().zip(all.iter()).all(|(a, b)| a == b)
            {
                return Ok(Transformed::no(node));
            }
            let full = SortExec::new(all.clone(), Arc::clone(sort.input()))
                .with_preserve_partitioning(true)
                .with_fetch(sort.fetch());
            let merged = Arc::clone(&node).replace_children(
                vec![Arc::new(full)],
                ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
            )?;
            Ok(Transformed::yes(merged))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_top_k_keys"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
