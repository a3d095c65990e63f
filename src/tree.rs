//! Walks of DataFusion's plan and expression trees, compiled once.
//!
//! DataFusion's `TreeNode` walks are generic over the closure they call:
//! each closure given to `LogicalPlan::transform_up_with_subqueries`
//! compiled the walk of a plan and of every expression in it again, some
//! 850 functions, and each closure of an expression rewrite some 350. With
//! one closure per rewrite that was a third of the functions this crate
//! compiled. Every walk goes through here instead: the closure is held as a
//! trait object, so each walk is compiled once per node type and the
//! functions here are the only per-closure code.
//!
//! The functions carry the names and the order of visits of the methods
//! they call. `clippy.toml` disallows DataFusion's walks elsewhere.

#![allow(clippy::disallowed_methods)]

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan};

type Rewrite<'a, N> = dyn FnMut(N) -> Result<Transformed<N>> + 'a;

/// `node.transform_up(f)`: children before their parent.
pub fn transform_up<N: TreeNode>(
    node: N,
    mut f: impl FnMut(N) -> Result<Transformed<N>>,
) -> Result<Transformed<N>> {
    fn dyn_up<N: TreeNode>(node: N, f: &mut Rewrite<'_, N>) -> Result<Transformed<N>> {
        node.transform_up(f)
    }
    dyn_up(node, &mut f)
}

/// `node.transform_down(f)`: a parent before its children.
pub fn transform_down<N: TreeNode>(
    node: N,
    mut f: impl FnMut(N) -> Result<Transformed<N>>,
) -> Result<Transformed<N>> {
    fn dyn_down<N: TreeNode>(node: N, f: &mut Rewrite<'_, N>) -> Result<Transformed<N>> {
        node.transform_down(f)
    }
    dyn_down(node, &mut f)
}

/// `node.map_children(f)`: `f` on each child, not deeper.
pub fn map_children<N: TreeNode>(
    node: N,
    mut f: impl FnMut(N) -> Result<Transformed<N>>,
) -> Result<Transformed<N>> {
    fn dyn_children<N: TreeNode>(node: N, f: &mut Rewrite<'_, N>) -> Result<Transformed<N>> {
        node.map_children(f)
    }
    dyn_children(node, &mut f)
}

/// `node.apply(f)`: every node, a parent before its children.
pub fn apply<'n, N: TreeNode>(
    node: &'n N,
    mut f: impl FnMut(&'n N) -> Result<TreeNodeRecursion>,
) -> Result<TreeNodeRecursion> {
    fn dyn_apply<'n, N: TreeNode>(
        node: &'n N,
        f: &mut dyn FnMut(&'n N) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        node.apply(f)
    }
    dyn_apply(node, &mut f)
}

/// `node.exists(f)`: whether `f` holds for a node of the tree.
pub fn exists<N: TreeNode>(node: &N, mut f: impl FnMut(&N) -> Result<bool>) -> Result<bool> {
    fn dyn_exists<N: TreeNode>(node: &N, f: &mut dyn FnMut(&N) -> Result<bool>) -> Result<bool> {
        node.exists(f)
    }
    dyn_exists(node, &mut f)
}

/// `plan.transform_up_with_subqueries(f)`: every plan node, subqueries'
/// plans included, children before their parent.
pub fn transform_up_with_subqueries(
    plan: LogicalPlan,
    mut f: impl FnMut(LogicalPlan) -> Result<Transformed<LogicalPlan>>,
) -> Result<Transformed<LogicalPlan>> {
    fn dyn_up(
        plan: LogicalPlan,
        f: &mut Rewrite<'_, LogicalPlan>,
    ) -> Result<Transformed<LogicalPlan>> {
        plan.transform_up_with_subqueries(f)
    }
    dyn_up(plan, &mut f)
}

/// `plan.transform_down_with_subqueries(f)`: every plan node, subqueries'
/// plans included, a parent before its children.
pub fn transform_down_with_subqueries(
    plan: LogicalPlan,
    mut f: impl FnMut(LogicalPlan) -> Result<Transformed<LogicalPlan>>,
) -> Result<Transformed<LogicalPlan>> {
    fn dyn_down(
        plan: LogicalPlan,
        f: &mut Rewrite<'_, LogicalPlan>,
    ) -> Result<Transformed<LogicalPlan>> {
        plan.transform_down_with_subqueries(f)
    }
    dyn_down(plan, &mut f)
}

/// `plan.apply_with_subqueries(f)`: every plan node, subqueries' plans
/// included, a parent before its children.
pub fn apply_with_subqueries(
    plan: &LogicalPlan,
    mut f: impl FnMut(&LogicalPlan) -> Result<TreeNodeRecursion>,
) -> Result<TreeNodeRecursion> {
    fn dyn_apply(
        plan: &LogicalPlan,
        f: &mut dyn FnMut(&LogicalPlan) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        plan.apply_with_subqueries(f)
    }
    dyn_apply(plan, &mut f)
}

/// `plan.apply_subqueries(f)`: the plans of the subqueries in this node's
/// expressions, not deeper.
pub fn apply_subqueries(
    plan: &LogicalPlan,
    mut f: impl FnMut(&LogicalPlan) -> Result<TreeNodeRecursion>,
) -> Result<TreeNodeRecursion> {
    fn dyn_apply(
        plan: &LogicalPlan,
        f: &mut dyn FnMut(&LogicalPlan) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        plan.apply_subqueries(f)
    }
    dyn_apply(plan, &mut f)
}

/// `plan.map_subqueries(f)`: the plans of the subqueries in this node's
/// expressions, not deeper.
pub fn map_subqueries(
    plan: LogicalPlan,
    mut f: impl FnMut(LogicalPlan) -> Result<Transformed<LogicalPlan>>,
) -> Result<Transformed<LogicalPlan>> {
    fn dyn_map(
        plan: LogicalPlan,
        f: &mut Rewrite<'_, LogicalPlan>,
    ) -> Result<Transformed<LogicalPlan>> {
        plan.map_subqueries(f)
    }
    dyn_map(plan, &mut f)
}

/// `plan.map_expressions(f)`: this node's own expressions.
pub fn map_expressions(
    plan: LogicalPlan,
    mut f: impl FnMut(Expr) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    fn dyn_map(plan: LogicalPlan, f: &mut Rewrite<'_, Expr>) -> Result<Transformed<LogicalPlan>> {
        plan.map_expressions(f)
    }
    dyn_map(plan, &mut f)
}

/// `plan.apply_expressions(f)`: this node's own expressions.
pub fn apply_expressions(
    plan: &LogicalPlan,
    mut f: impl FnMut(&Expr) -> Result<TreeNodeRecursion>,
) -> Result<TreeNodeRecursion> {
    fn dyn_apply(
        plan: &LogicalPlan,
        f: &mut dyn FnMut(&Expr) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        plan.apply_expressions(f)
    }
    dyn_apply(plan, &mut f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn walks_keep_datafusion_order() {
        let e = (col("a") + lit(1)) * col("b");
        let mut seen = Vec::new();
        apply(&e, |x| {
            seen.push(x.to_string());
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        assert_eq!(
            seen,
            ["(a + Int32(1)) * b", "a + Int32(1)", "a", "Int32(1)", "b"]
        );

        let mut order = Vec::new();
        let out = transform_up(e.clone(), |x| {
            order.push(x.to_string());
            Ok(match x {
                Expr::Column(c) if c.name == "b" => Transformed::yes(lit(2)),
                other => Transformed::no(other),
            })
        })
        .unwrap();
        assert!(out.transformed);
        assert_eq!(out.data.to_string(), "(a + Int32(1)) * Int32(2)");
        assert_eq!(order.first().map(String::as_str), Some("a"));

        assert!(exists(&e, |x| Ok(matches!(x, Expr::Literal(..)))).unwrap());
        assert!(!exists(&e, |x| Ok(matches!(x, Expr::Not(_)))).unwrap());
    }
}
