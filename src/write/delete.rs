//! DELETE through delta-rs' delete builder, or as a rewrite of the table
//! when the predicate has a subquery.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::sql::sqlparser::ast::{Delete, Expr, FromTable};

use super::update::{count, plan_exprs};
use super::{Outcome, Target, WriteContext, builder_refuses, commit_properties, delete_references};
use crate::error::{Error, Result};

/// A DELETE statement the write path generated (ON DELETE CASCADE), its
/// target named in full: the rows it deleted.
pub async fn delete_statement(wc: &WriteContext, del: Delete) -> Result<usize> {
    let from = match &del.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let [one] = from.as_slice() else {
        return Err(Error::internal("a generated DELETE has one table"));
    };
    let (name, alias) = super::single_target(one)?;
    let target = Target::open_qualified(wc, &name, alias).await?;
    Ok(delete(wc, &target, del.selection.as_ref(), false)
        .await?
        .0
        .rows)
}

/// Delete the rows of `target` where `pred` holds (all rows without one)
/// in one commit, after acting on the rows of other tables that refer to
/// them; with `old_rows`, the deleted rows too (for RETURNING).
pub async fn delete(
    wc: &WriteContext,
    target: &Target,
    pred: Option<&Expr>,
    old_rows: bool,
) -> Result<(Outcome, Option<Vec<RecordBatch>>)> {
    let gone = target.select_sql(&target.columns_sql(), pred);
    Box::pin(delete_references(wc, target, &gone, true)).await?;
    // RETURNING: the deleted rows, read from the snapshot the delete reads.
    let gone = if old_rows {
        Some(
            crate::frontend::generated::query(&wc.ctx, &target.select_sql("*", pred))
                .await?
                .collect()
                .await?,
        )
    } else {
        None
    };
    let n: Outcome = if pred.is_some_and(|p| builder_refuses(p, &target.def)) {
        // Keep every row the predicate does not select, in one overwrite.
        let n = count(wc, &target.select_sql("count(*)", pred)).await?;
        let all = target.columns_sql();
        let keep = format!(
            "SELECT {all} FROM {from} EXCEPT ALL {}",
            target.select_sql(&all, pred),
            from = target.snapshot_sql()
        );
        let written = target.overwrite_with(wc, &keep, None).await?;
        Outcome::of(written, Some(n)).await
    } else {
        let (_, pred) = plan_exprs(wc, target, &[], pred).await?;
        let mut builder = target
            .table
            .clone()
            .delete()
            .with_writer_properties(super::data_file_properties(&target.def.unique_columns()))
            .with_session_state(Arc::new(wc.ctx.state()))
            .with_commit_properties(commit_properties());
        if let Some(p) = pred.clone() {
            builder = builder.with_predicate(p);
        }
        let (written, metrics) = builder.await?;
        wc.lake.committed(&written).await;
        let n = match metrics.num_deleted_rows {
            Some(n) => n,
            None => {
                // Whole files were dropped from metadata alone: count them
                // on the snapshot the delete read.
                let mut df = wc
                    .ctx
                    .read_table(crate::lake::provider(&target.table).await?)?;
                if let Some(p) = pred {
                    df = df.filter(p)?;
                }
                df.count().await?
            }
        };
        Outcome::of(written, Some(n)).await
    };
    Ok((n, gone))
}
