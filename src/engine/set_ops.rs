//! `INTERSECT ALL` and `EXCEPT ALL` with PostgreSQL's multiplicities, and
//! a `UNION` whose branches but one are empty.
//!
//! DataFusion plans `l INTERSECT ALL r` as a semi join of `l` with `r` on
//! every column, which keeps each row of `l` that has any match: a value
//! three times in `l` and once in `r` came back three times instead of once
//! (`EXCEPT ALL`, an anti join, dropped all three instead of keeping two).
//! Numbering the copies of each row on both sides and joining on the number
//! too gives `min(m, n)` and `max(m - n, 0)` copies, as PostgreSQL does.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality};
use datafusion::error::Result;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, JoinType, LogicalPlan, LogicalPlanBuilder, Projection,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

const COPY: &str = "__sluice_copy";

/// Counts every `INTERSECT ALL` / `EXCEPT ALL` per copy. An analyzer rule
/// (it keeps the plan's schema), so every plan the session runs gets it.
#[derive(Debug, Default)]
pub struct SetOperationsAll;

impl datafusion::optimizer::AnalyzerRule for SetOperationsAll {
    fn name(&self) -> &str {
        "sluice_set_operations_all"
    }

    fn analyze(
        &self,
        plan: LogicalPlan,
        _: &datafusion::common::config::ConfigOptions,
    ) -> Result<LogicalPlan> {
        rewrite(plan)
    }
}

fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    crate::tree::transform_up_with_subqueries(plan, |node| {
        let LogicalPlan::Join(join) = &node else {
            return Ok(Transformed::no(node));
        };
        // The shape DataFusion's SQL planner gives a set operation with ALL:
        // a semi or anti join on every column, NULLs equal, no filter, and
        // (unlike the DISTINCT form) no DISTINCT on the left.
        let set_op_all = matches!(join.join_type, JoinType::LeftSemi | JoinType::LeftAnti)
            && join.null_equality == NullEquality::NullEqualsNull
            && join.filter.is_none()
            && join.on.len() == join.left.schema().fields().len()
            && join.on.len() == join.right.schema().fields().len()
            && !matches!(join.left.as_ref(), LogicalPlan::Distinct(_))
            && !join.left.schema().fields().iter().any(|f| f.name() == COPY);
        if !set_op_all {
            return Ok(Transformed::no(node));
        }
        let columns = |p: &LogicalPlan| -> Vec<Expr> {
            p.schema().columns().into_iter().map(Expr::Column).collect()
        };
        let numbered = |p: LogicalPlan| -> Result<LogicalPlan> {
            let copy = row_number().partition_by(columns(&p)).build()?.alias(COPY);
            LogicalPlanBuilder::from(p).window(vec![copy])?.build()
        };
        let output = columns(&join.left);
        let (mut left_keys, mut right_keys): (Vec<Column>, Vec<Column>) = join
            .on
            .iter()
            .map(|(l, r)| match (l, r) {
                (Expr::Column(l), Expr::Column(r)) => Some((l.clone(), r.clone())),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().unzip())
            .unwrap_or_default();
        if left_keys.len() != join.on.len() {
            return Ok(Transformed::no(node));
        }
        left_keys.push(Column::from_name(COPY));
        right_keys.push(Column::from_name(COPY));
        let left = numbered(join.left.as_ref().clone())?;
        let right = numbered(join.right.as_ref().clone())?;
        let plan = LogicalPlanBuilder::from(left)
            .join_detailed(
                right,
                join.join_type,
                (left_keys, right_keys),
                None,
                NullEquality::NullEqualsNull,
            )?
            .project(output)?
            .build()?;
        Ok(Transformed::yes(plan))
    })
    .map(|t| t.data)
}

/// A `UNION` left with one branch that can have rows (the others' filters
/// are false) keeps the union's names. DataFusion's
/// `propagate_empty_relation` replaces it by a projection of the branch
/// that reads the union's column names from it, which fail when the branch
/// names them otherwise (`SELECT bool_and(false) ... WHERE false UNION
/// SELECT DISTINCT b ...`: `42703 column "bool_and(Boolean(false))" does
/// not exist`). This rule, run just after it, renames the branch's columns
/// by position instead: a projection of plain columns, one per column of
/// its input, some of which the input does not have.
#[derive(Debug, Default)]
pub struct OneBranchUnions;

impl OptimizerRule for OneBranchUnions {
    fn name(&self) -> &str {
        "sluice_one_branch_unions"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        crate::tree::transform_up_with_subqueries(plan, |node| {
            let LogicalPlan::Projection(p) = &node else {
                return Ok(Transformed::no(node));
            };
            let input = p.input.schema();
            let columns: Option<Vec<&Column>> = p
                .expr
                .iter()
                .map(|e| match e {
                    Expr::Column(c) => Some(c),
                    _ => None,
                })
                .collect();
            let misread = columns.is_some_and(|c| {
                c.len() == input.fields().len() && c.iter().any(|c| !input.has_column(c))
            });
            if !misread {
                return Ok(Transformed::no(node));
            }
            let renamed = input
                .columns()
                .into_iter()
                .zip(p.schema.iter())
                .map(|(c, (qualifier, field))| {
                    Expr::Column(c).alias_qualified(qualifier.cloned(), field.name())
                })
                .collect();
            match Projection::try_new_with_schema(
                renamed,
                Arc::clone(&p.input),
                Arc::clone(&p.schema),
            ) {
                Ok(p) => Ok(Transformed::yes(LogicalPlan::Projection(p))),
                Err(_) => Ok(Transformed::no(node)),
            }
        })
    }
}
