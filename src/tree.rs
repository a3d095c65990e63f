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
type Visit<'a, N> = dyn FnMut(&N) -> Result<TreeNodeRecursion> + 'a;

/// `node.transform_up(f)`: children before their parent.
pub fn transform_up<N: TreeNode>(
    node: N,
    mut f: impl FnMut(N) -> Result<Transformed<N>>,
) -> Result<Transformed<N>> {
    node.transform_up(&mut f as &mut Rewrite<'_, N>)
}

/// `node.transform_down(f)`: a parent before its children.
pub fn transform_down<N: TreeNode>(
    node: N,
    mut f: impl FnMut(N) -> Result<Transformed<N>>,
) -> Result<Transformed<N>> {
    node.transform_down(&mut f as &mut Rewrite<'_, N>)
}

/// `node.map_children(f)`: `f` on each child, not deeper.
pub fn map_children<N: TreeNode>(
    node: N,
    mut f: impl FnMut(N) -> Result<Transformed<N>>,
) -> Result<Transformed<N>> {
    node.map_children(&mut f as &mut Rewrite<'_, N>)
}

/// `node.apply(f)`: every node, a parent before its children.
pub fn apply<'n, N: TreeNode>(
    node: &'n N,
    mut f: impl FnMut(&'n N) -> Result<TreeNodeRecursion>,
) -> Result<TreeNodeRecursion> {
    node.apply(&mut f as &mut dyn FnMut(&'n N) -> Result<TreeNodeRecursion>)
}

/// `node.exists(f)`: whether `f` holds for a node of the tree.
pub fn exists<N: TreeNode>(node: &N, mut f: impl FnMut(&N) -> Result<bool>) -> Result<bool> {
    node.exists(&mut f as &mut dyn FnMut(&N) -> Result<bool>)
}

/// `plan.transform_up_with_subqueries(f)`: every plan node, subqueries'
/// plans included, children before their parent.
pub fn transform_up_with_subqueries(
    plan: LogicalPlan,
    mut f: impl FnMut(LogicalPlan) -> Result<Transformed<LogicalPlan>>,
) -> Result<Transformed<LogicalPlan>> {
    plan.transform_up_with_subqueries(&mut f as &mut Rewrite<'_, LogicalPlan>)
}

/// `plan.transform_down_with_subqueries(f)`: every plan node, subqueries'
/// plans included, a parent before its children.
pub fn transform_down_with_subqueries(
    plan: LogicalPlan,
    mut f: impl FnMut(LogicalPlan) -> Result<Transformed<LogicalPlan>>,
) -> Result<Transformed<LogicalPlan>> {
    plan.transform_down_with_subqueries(&mut f as &mut Rewrite<'_, LogicalPlan>)
}

/// `plan.apply_with_subqueries(f)`: every plan node, subqueries' plans
/// included, a parent before its children.
pub fn apply_with_subqueries(
    plan: &LogicalPlan,
    mut f: impl FnMut(&LogicalPlan) -> Result<TreeNodeRecursion>,
) -> Result<TreeNodeRecursion> {
    plan.apply_with_subqueries(&mut f as &mut Visit<'_, LogicalPlan>)
}

/// `plan.apply_subqueries(f)`: the plans of the subqueries in this node's
/// expressions, not deeper.
pub fn apply_subqueries(
    plan: &LogicalPlan,
    mut f: impl FnMut(&LogicalPlan) -> Result<TreeNodeRecursion>,
) -> Result<TreeNodeRecursion> {
    plan.apply_subqueries(&mut f as &mut Visit<'_, LogicalPlan>)
}

/// `plan.map_subqueries(f)`: the plans of the subqueries in this node's
/// expressions, not deeper.
pub fn map_subqueries(
    plan: LogicalPlan,
    mut f: impl FnMut(LogicalPlan) -> Result<Transformed<LogicalPlan>>,
) -> Result<Transformed<LogicalPlan>> {
    plan.map_subqueries(&mut f as &mut Rewrite<'_, LogicalPlan>)
}

/// `plan.map_expressions(f)`: this node's own expressions.
pub fn map_expressions(
    plan: LogicalPlan,
    mut f: impl FnMut(Expr) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    plan.map_expressions(&mut f as &mut Rewrite<'_, Expr>)
}

/// `plan.apply_expressions(f)`: this node's own expressions.
pub fn apply_expressions(
    plan: &LogicalPlan,
    mut f: impl FnMut(&Expr) -> Result<TreeNodeRecursion>,
) -> Result<TreeNodeRecursion> {
    plan.apply_expressions(&mut f as &mut Visit<'_, Expr>)
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
