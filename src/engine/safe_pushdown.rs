//! Physical filter pushdown only where DataFusion maps columns right.
//!
//! DataFusion 55 moves a filter below a projection, a filter or into a join
//! input by looking its columns up *by name* in the schema below. When a
//! node's output names a column twice (`SELECT a.k, b.k ...` of a join),
//! the lookup finds the first `k`, and the filter reads the wrong column:
//!
//! - a `WHERE` filter on a join's output was moved below the projection
//!   that restores the column order of a swapped right join, and from there
//!   to the wrong input (`a RIGHT JOIN b ON a.k = b.k WHERE CASE WHEN a.k IS
//!   NOT NULL THEN ... END` lost rows: `a.k` became `b.k`);
//! - the dynamic filter a join, TopK or aggregate hands its probe side (the
//!   keys of the build side, the current top values) filtered the wrong
//!   input: rows went missing from a three-way join.
//!
//! Plans that name a column twice are therefore optimized without the
//! physical pushdown of filters and without dynamic filters. The logical
//! optimizer has already pushed every filter it could to its table scan
//! (it resolves columns by qualified name), so what is lost is an
//! optimization of the physical plan only; every other plan keeps both.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// One of DataFusion's two filter pushdown rules, skipped (the first) or
/// run without dynamic filters (the second) for plans that name a column
/// twice in one node's output.
#[derive(Debug)]
pub struct SafeFilterPushdown {
    inner: Arc<dyn PhysicalOptimizerRule + Send + Sync>,
    /// The rule that runs after the others and places dynamic filters.
    post: bool,
}

/// DataFusion's default physical rules, with both filter pushdown rules
/// wrapped by [`SafeFilterPushdown`].
pub fn physical_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new()
        .rules
        .into_iter()
        .map(|rule| match rule.name() {
            "FilterPushdown" => Arc::new(SafeFilterPushdown {
                inner: rule,
                post: false,
            }) as _,
            "FilterPushdown(Post)" => Arc::new(SafeFilterPushdown {
                inner: rule,
                post: true,
            }) as _,
            _ => rule,
        })
        .collect()
}

/// Whether any node of `plan` outputs two columns of one name.
fn names_a_column_twice(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut twice = false;
    let _ = crate::tree::apply(plan, |node| {
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

impl PhysicalOptimizerRule for SafeFilterPushdown {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !names_a_column_twice(&plan) {
            return self.inner.optimize(plan, config);
        }
        if !self.post {
            return Ok(plan);
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
