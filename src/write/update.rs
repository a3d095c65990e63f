//! UPDATE through delta-rs' update builder, or as a rewrite of the table
//! when delta-rs cannot evaluate it (subqueries, keys, partition moves).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlan, cast};
use datafusion::sql::sqlparser::ast::{Expr, Update};

use super::expectations::Expected;
use super::{
    Outcome, Target, WriteContext, commit_properties, delete_references, expectations_before,
    has_subquery, new_row, store_expr,
};
use crate::error::{Error, Result};
use crate::frontend::names::quote_ident as ident;
use crate::quality::expect::Action;

fn unqualify(e: DfExpr) -> Result<DfExpr> {
    Ok(crate::tree::transform_up(e, |x| {
        Ok(match x {
            DfExpr::Column(c) => Transformed::yes(DfExpr::Column(Column::new_unqualified(c.name))),
            other => Transformed::no(other),
        })
    })?
    .data)
}

/// Plan `SELECT exprs FROM target WHERE pred` and pull out the DataFusion
/// expressions, unqualified, for delta-rs' builders.
pub(super) async fn plan_exprs(
    wc: &WriteContext,
    target: &Target,
    exprs: &[String],
    pred: Option<&Expr>,
) -> Result<(Vec<DfExpr>, Option<DfExpr>)> {
    // Each named apart: two assignments of one value (`SET a = 1, b = 1`)
    // would be two select items of one name, which DataFusion refuses.
    let list = if exprs.is_empty() {
        "1".to_string()
    } else {
        exprs
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{e} AS __sluice_set_{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let state = wc.ctx.state();
    let plan = crate::frontend::generated::plan(&wc.ctx, &target.select_sql(&list, pred)).await?;
    // delta-rs plans these expressions again over a scan of its own, where
    // the declared types of the columns cannot be traced (jsonb's `||`, the
    // documents passed to JSON builders, character(n) values compared with
    // literals), and hands its predicate to the Delta kernel to skip files,
    // which compares a column's statistics with literals of the column's
    // own type only: they are given analyzed, as a query's would be.
    let plan = state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})?;
    let mut projections = Vec::new();
    let mut filter = None;
    let mut node = &plan;
    loop {
        match node {
            LogicalPlan::Projection(p) => {
                projections = p.expr.iter().map(|e| e.clone().unalias()).collect();
                node = p.input.as_ref();
            }
            LogicalPlan::Filter(f) => {
                filter = Some(f.predicate.clone());
                node = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(a) => node = a.input.as_ref(),
            _ => break,
        }
    }
    projections.truncate(exprs.len());
    let projections = projections
        .into_iter()
        .map(unqualify)
        .collect::<Result<Vec<_>>>()?;
    Ok((projections, filter.map(unqualify).transpose()?))
}

pub(super) async fn count(wc: &WriteContext, sql: &str) -> Result<usize> {
    let batches = crate::frontend::generated::query(&wc.ctx, sql)
        .await?
        .collect()
        .await?;
    let b = batches
        .first()
        .ok_or_else(|| Error::internal("count returned nothing"))?;
    match ScalarValue::try_from_array(b.column(0), 0)? {
        ScalarValue::Int64(Some(n)) => Ok(n as usize),
        other => Err(Error::internal(format!("count returned {other}"))),
    }
}

/// An UPDATE statement the write path generated (ON DELETE SET NULL),
/// its target named in full: the rows it changed.
pub async fn update_statement(wc: &WriteContext, up: Update) -> Result<usize> {
    let (name, alias) = super::single_target(&up.table)?;
    let target = Target::open_qualified(wc, &name, alias).await?;
    let mut sets: Vec<(String, Expr)> = Vec::new();
    for a in &up.assignments {
        sets.push((
            target.assigned_column(&a.target, "UPDATE")?,
            a.value.clone(),
        ));
    }
    Ok(
        update(wc, &target, &sets, up.selection.as_ref(), None, false)
            .await?
            .0
            .rows,
    )
}

/// Set the `sets` columns of the rows of `target` where `pred` holds (all
/// rows without one), in one commit; with `new_rows`, the changed rows as
/// they are after the update too (for RETURNING).
/// `from`: the FROM list of `UPDATE ... FROM` (SQL over qualified names),
/// whose columns `sets` and `pred` may read; a target row that several of
/// its rows match is updated from one of them, as in PostgreSQL.
pub async fn update(
    wc: &WriteContext,
    target: &Target,
    sets: &[(String, Expr)],
    pred: Option<&Expr>,
    from: Option<&str>,
    new_rows: bool,
) -> Result<(Outcome, Option<Vec<RecordBatch>>)> {
    let target_owned;
    let target = {
        target_owned = target;
        target_owned
    };
    // Generated columns that read a changed column change with it.
    let sets = super::generated::with_generated_sets(
        &target.def,
        target.alias.as_deref().unwrap_or(&target.name),
        sets,
        &|e| super::generated::calls_volatile(&wc.ctx, e),
    )?;
    // RETURNING: the new rows, computed on the snapshot the update reads.
    let returned = if new_rows {
        let sql = match from {
            None => target.select_sql(&target.new_row_sql(&sets), pred),
            // Each target row once, however many FROM rows match it (as
            // the update itself takes them).
            Some(f) => format!(
                "SELECT {all} FROM (SELECT DISTINCT ON (__sluice_r) {new}, __sluice_r FROM \
                 (SELECT *, row_number() OVER () AS __sluice_r FROM {pinned}) AS {qualifier}, {f} \
                 WHERE {cond}) AS __sluice_returned",
                all = target.columns_sql(),
                new = target.new_row_sql(&sets),
                pinned = target.pinned_sql(),
                qualifier = ident(target.alias.as_deref().unwrap_or(&target.name)),
                cond = pred.map(|p| p.to_string()).unwrap_or_else(|| "TRUE".into()),
            ),
        };
        Some(
            crate::frontend::generated::query(&wc.ctx, &sql)
                .await?
                .collect()
                .await?,
        )
    } else {
        None
    };
    // delta-rs evaluates neither subqueries nor moves rows between
    // partitions; those updates rewrite the table instead.
    let referenced: Vec<String> = target
        .referenced_by(wc)
        .into_iter()
        .flat_map(|(_, _, fk)| fk.parent_columns)
        .collect();
    // A referenced key that changes must not be referenced any more.
    let moved: Vec<String> = sets
        .iter()
        .filter(|(c, _)| referenced.contains(c))
        .map(|(c, e)| {
            format!(
                "(CAST({e} AS {}) IS DISTINCT FROM {})",
                target.def.column(c).expect("checked").ty.assignment_cast(),
                ident(c)
            )
        })
        .collect();
    // The target, with the FROM list of UPDATE ... FROM beside it.
    let reads = match from {
        Some(f) => format!("{}, {f}", target.snapshot_sql()),
        None => target.snapshot_sql(),
    };
    if !moved.is_empty() {
        let cond = pred.map(|p| format!("({p}) AND ")).unwrap_or_default();
        let qualifier = ident(target.alias.as_deref().unwrap_or(&target.name));
        let list: Vec<String> = target
            .def
            .columns
            .iter()
            .map(|c| format!("{qualifier}.{}", ident(&c.name)))
            .collect();
        let gone = format!(
            "SELECT {} FROM {reads} WHERE {cond}({})",
            list.join(", "),
            moved.join(" OR ")
        );
        Box::pin(delete_references(wc, target, &gone, false)).await?;
    }
    // A key or reference that changes is checked over the whole new table.
    let rewrite = from.is_some()
        || pred.is_some_and(|p| super::builder_refuses(p, &target.def))
        || sets.iter().any(|(c, e)| {
            has_subquery(e) || target.def.partition_by.contains(c) || target.in_key(c)
        });
    let n: Outcome = if rewrite {
        // The selected rows with new and old values; those the DROP ROW and
        // QUARANTINE rules let through change. The new table is the changed
        // rows plus every other row (EXCEPT ALL keeps duplicates and treats
        // NULLs as equal, so rows where the predicate is NULL stay as they
        // were). DataFusion turns the subqueries into joins.
        let cond = pred.map(|p| p.to_string()).unwrap_or_else(|| "TRUE".into());
        let qualifier = ident(target.alias.as_deref().unwrap_or(&target.name));
        let old: Vec<String> = target
            .def
            .columns
            .iter()
            .enumerate()
            .map(|(j, c)| format!("{qualifier}.{} AS __sluice_old_{j}", ident(&c.name)))
            .collect();
        let selected = match from {
            None => format!(
                "(SELECT {}, {} FROM {} WHERE {cond}) AS __sluice_u",
                target.new_row_sql(&sets),
                old.join(", "),
                target.snapshot_sql(),
            ),
            // Target rows numbered, so that one matched by several FROM
            // rows changes once.
            Some(f) => format!(
                "(SELECT DISTINCT ON (__sluice_r) {}, {}, __sluice_r FROM \
                 (SELECT *, row_number() OVER () AS __sluice_r FROM {}) AS {qualifier}, {f} \
                 WHERE {cond}) AS __sluice_u",
                target.new_row_sql(&sets),
                old.join(", "),
                target.pinned_sql(),
            ),
        };
        let all = target.columns_sql();
        let changed = format!("(SELECT {all} FROM {selected}) AS {}", ident(&target.name));
        let mut expected = expectations_before(wc, target, &changed).await?;
        let kept = crate::quality::expect::kept_sql(&target.def);
        let n = count(wc, &format!("SELECT count(*) FROM {selected} WHERE {kept}")).await?;
        let sql = format!(
            "SELECT {all} FROM {selected} WHERE {kept} UNION ALL \
             (SELECT {all} FROM {from} EXCEPT ALL SELECT {} FROM {selected} WHERE {kept})",
            target.old_columns_sql(None),
            from = target.snapshot_sql(),
        );
        let hook = expected.as_mut().map(Expected::at_end);
        let written = target.overwrite_with(wc, &sql, hook).await?;
        if let Some(run) = expected {
            run.record(written.version().unwrap_or(0) as i64).await;
        }
        Outcome::of(written, Some(n)).await
    } else {
        let texts: Vec<String> = sets.iter().map(|(_, e)| e.to_string()).collect();
        let changed = format!(
            "({}) AS {}",
            target.select_sql(&target.new_row_sql(&sets), pred),
            ident(&target.name)
        );
        let mut expected = expectations_before(wc, target, &changed).await?;
        let (values, pred) = plan_exprs(wc, target, &texts, pred).await?;
        // Rows whose new values a DROP ROW or QUARANTINE rule refuses keep
        // their old values.
        let schema = DFSchema::try_from(target.def.arrow_schema().as_ref().clone())?;
        let raw_row = new_row(
            &target.def,
            &sets
                .iter()
                .zip(&values)
                .map(|((c, _), v)| {
                    (
                        c.clone(),
                        cast(
                            v.clone(),
                            target.def.column(c).expect("checked").ty.arrow_type(),
                        ),
                    )
                })
                .collect::<Vec<_>>(),
            |c| DfExpr::Column(Column::new_unqualified(c)),
        );
        let mut pred = pred;
        for e in &target.def.expectations {
            if matches!(e.action, Action::Drop | Action::Quarantine) {
                let check = crate::quality::CheckDef {
                    name: e.name.clone(),
                    expr: e.expr.clone(),
                };
                let cond = crate::quality::plan_check(&wc.ctx, &check, &schema)?;
                let cond =
                    crate::quality::substitute_columns(cond, &target.def, &raw_row)?.is_not_false();
                pred = Some(match pred {
                    Some(p) => p.and(cond),
                    None => cond,
                });
            }
        }
        let mut builder = target
            .table
            .clone()
            .update()
            .with_writer_properties(super::data_file_properties(&target.def.unique_columns()))
            .with_session_state(Arc::new(wc.ctx.state()))
            .with_commit_properties(commit_properties());
        if let Some(p) = pred {
            builder = builder.with_predicate(p);
        }
        let stored: Vec<(String, DfExpr)> = sets
            .iter()
            .zip(values)
            .map(|((c, _), v)| (c.clone(), store_expr(v, &target.def, c, &target.name)))
            .collect();
        let schema = DFSchema::try_from(target.def.arrow_schema().as_ref().clone())?;
        let new_row = new_row(&target.def, &stored, |c| {
            DfExpr::Column(Column::new_unqualified(c))
        });
        for (i, (c, v)) in stored.into_iter().enumerate() {
            let v = if i == 0 {
                crate::quality::on_value(&wc.ctx, v, &target.def, &target.name, &schema, &new_row)?
            } else {
                v
            };
            builder = builder.with_update(c.as_str(), v);
        }
        if let Some(e) = expected.as_mut() {
            e.quarantine().await?;
        }
        let (written, metrics) = builder.await?;
        wc.lake.committed(&written).await;
        if let Some(run) = expected {
            run.record(written.version().unwrap_or(0) as i64).await;
        }
        Outcome::of(written, Some(metrics.num_updated_rows)).await
    };
    Ok((n, returned))
}
