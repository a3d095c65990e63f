//! Dynamic filters only where DataFusion maps them to the right column.
//!
//! A join, TopK or aggregate hands its probe side a filter that it fills
//! while running (the keys of the build side, the current top values). When
//! that filter passes through a node whose output names a column twice
//! (`SELECT a.k, b.k ...` below a join on `b.k`), DataFusion 55 resolves the
//! column by name and filters the wrong input: rows went missing from a
//! three-way join. Such plans are optimized without dynamic filters; every
//! other plan keeps them.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// DataFusion's rule that places dynamic filters, skipped for plans that
/// name a column twice in one node's output.
#[derive(Debug)]
pub struct SafeDynamicFilters {
    inner: Arc<dyn PhysicalOptimizerRule + Send + Sync>,
}

/// DataFusion's default physical rules, with the one that places dynamic
/// filters wrapped by [`SafeDynamicFilters`].
pub fn physical_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new()
        .rules
        .into_iter()
        .map(|rule| {
            if rule.name() == "FilterPushdown(Post)" {
                Arc::new(SafeDynamicFilters { inner: rule }) as _
            } else {
                rule
            }
        })
        .collect()
}

/// Whether any node of `plan` outputs two columns of one name.
fn names_a_column_twice(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut twice = false;
    let _ = plan.apply(|node| {
        let schema = node.schema();
        let mut seen = HashSet::new();
        if schema
            .fields()
            .iter()
            .any(|f| !seen.insert(f.name().as_str()))
        {
            twice = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    twice
}

impl PhysicalOptimizerRule for SafeDynamicFilters {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !names_a_column_twice(&plan) {
            return self.inner.optimize(plan, config);
        }
        let mut without = config.clone();
        without.optimizer.enable_join_dynamic_filter_pushdown = false;
        without.optimizer.enable_topk_dynamic_filter_pushdown = false;
        without.optimizer.enable_aggregate_dynamic_filter_pushdown = false;
        self.inner.optimize(plan, &without)
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn schema_check(&self) -> bool {
        self.inner.schema_check()
    }
}
