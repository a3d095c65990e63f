//! MERGE INTO (PostgreSQL 15 syntax) through delta-rs' merge, with the
//! table's rules checked on the rows it would write.

use std::sync::Arc;

use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::logical_expr::{Expr as DfExpr, lit};
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, Expr, Merge, MergeAction, MergeClauseKind, MergeInsertKind, TableFactor,
};

use super::dml::{Target, commit_properties, new_row, store_expr};
use super::{Output, Session, last_ident, normalize_ident};
use crate::error::{Error, ErrorKind, Result};

/// The name a table factor goes by in a statement: its alias or its name.
fn factor_name(f: &TableFactor) -> Option<String> {
    match f {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Some(normalize_ident(&a.name))
        }
        TableFactor::Table { name, .. } => Some(last_ident(name)),
        _ => None,
    }
}

fn same_kind(a: &MergeClauseKind, b: &MergeClauseKind) -> bool {
    use MergeClauseKind::*;
    let not_matched = |k: &MergeClauseKind| matches!(k, NotMatched | NotMatchedByTarget);
    a == b || (not_matched(a) && not_matched(b))
}

/// The frontend turns `THEN DO NOTHING` into an action on a marker column.
fn is_do_nothing(action: &MergeAction) -> bool {
    let marker = crate::frontend::MERGE_DO_NOTHING;
    match action {
        MergeAction::Update(u) => u.assignments.iter().any(
            |a| matches!(&a.target, AssignmentTarget::ColumnName(n) if last_ident(n) == marker),
        ),
        MergeAction::Insert(i) => i.columns.iter().any(|c| last_ident(c) == marker),
        MergeAction::Delete { .. } => false,
    }
}

/// MERGE INTO (PostgreSQL 15) through delta-rs' merge: one commit that
/// rewrites only the target files holding matched rows. WHEN clauses keep
/// their order; the first whose condition holds acts on a row.
pub async fn merge(session: &mut Session, m: Merge) -> Result<Output> {
    merge_with(session, m, false).await
}

/// MERGE; `keyed_upsert` says the ON condition matches the table's one key
/// and the source holds each key once (INSERT ... ON CONFLICT), so inserts
/// cannot repeat a key.
pub(crate) async fn merge_with(
    session: &mut Session,
    m: Merge,
    keyed_upsert: bool,
) -> Result<Output> {
    if m.output.is_some() {
        return Err(Error::not_supported("MERGE ... RETURNING"));
    }
    let TableFactor::Table { name, .. } = &m.table else {
        return Err(Error::not_supported(
            "MERGE into something that is not a table",
        ));
    };
    let target_alias = factor_name(&m.table).unwrap_or_default();
    let target = Target::open(session, name, Some(target_alias.clone())).await?;
    if !target.def.expectations.is_empty() {
        return Err(Error::not_supported(format!(
            "MERGE (and INSERT ... ON CONFLICT) into \"{}\", which has expectations",
            target.name
        )));
    }
    if !target.def.foreign_keys.is_empty() || !target.referenced_by(session).is_empty() {
        return Err(Error::not_supported(format!(
            "MERGE (and INSERT ... ON CONFLICT) into \"{}\", which has or is referenced by a \
             foreign key",
            target.name
        )));
    }
    if !target.def.keys.is_empty() {
        for clause in &m.clauses {
            let changes_key = match &clause.action {
                MergeAction::Insert(_) => !keyed_upsert,
                MergeAction::Update(u) => u.assignments.iter().any(|a| match &a.target {
                    AssignmentTarget::ColumnName(n) => target.in_key(&last_ident(n)),
                    _ => true,
                }),
                _ => false,
            };
            if changes_key {
                return Err(Error::not_supported(format!(
                    "MERGE that inserts or changes keys of \"{}\", which has a PRIMARY KEY or \
                     UNIQUE constraint (use INSERT ... ON CONFLICT)",
                    target.name
                )));
            }
        }
    }
    let source_alias =
        factor_name(&m.source).ok_or_else(|| Error::syntax("the MERGE source needs an alias"))?;
    let source = session
        .ctx
        .sql(&format!("SELECT * FROM {}", m.source))
        .await?;
    if source
        .schema()
        .fields()
        .iter()
        .any(|f| f.name() == &target_alias || f.name() == &source_alias)
    {
        return Err(Error::not_supported(
            "MERGE source columns named like the aliases",
        ));
    }
    // Plan every expression against target and source side by side, with
    // the statement's own aliases as qualifiers.
    let target_schema = DFSchema::try_from_qualified_schema(
        target_alias.as_str(),
        target.def.arrow_schema().as_ref(),
    )?;
    let source_schema =
        DFSchema::try_from_qualified_schema(source_alias.as_str(), source.schema().as_arrow())?;
    let both = target_schema.join(&source_schema)?;
    let expr =
        |e: &Expr| -> Result<DfExpr> { Ok(session.ctx.parse_sql_expr(&e.to_string(), &both)?) };
    let on = expr(&m.on)?;
    let store = |col: &str, e: DfExpr| store_expr(e, &target.def, col, &target.name);
    // The table's checks, over the new row, ride on the first value set.
    let checked = |sets: &mut Vec<(String, DfExpr)>, row: &[DfExpr]| -> Result<()> {
        if let Some((_, first)) = sets.first_mut() {
            *first = crate::quality::on_value(
                &session.ctx,
                first.clone(),
                &target.def,
                &target.name,
                &target_schema,
                row,
            )?;
        }
        Ok(())
    };

    let mut builder = target
        .table
        .clone()
        .merge(source, on)
        .with_source_alias(&source_alias)
        .with_target_alias(&target_alias)
        .with_session_state(Arc::new(session.ctx.state()))
        .with_commit_properties(commit_properties());
    // A DO NOTHING clause is no operation for delta-rs: the rows it takes
    // must just not reach the later clauses of its kind, so those get
    // `AND (its condition) IS NOT TRUE` (or are dropped when it has none).
    let mut guards: Vec<(MergeClauseKind, Option<DfExpr>)> = Vec::new();
    let guard_of = |kind: &MergeClauseKind, guards: &[(MergeClauseKind, Option<DfExpr>)]| {
        guards
            .iter()
            .filter(|(k, _)| same_kind(k, kind))
            .map(|(_, g)| g.clone())
            .collect::<Vec<_>>()
    };
    for clause in &m.clauses {
        let own = clause.predicate.as_ref().map(&expr).transpose()?;
        let mut blocked = false;
        let mut pred = own.clone();
        for g in guard_of(&clause.clause_kind, &guards) {
            match g {
                None => blocked = true,
                Some(g) => pred = Some(pred.map_or(g.clone(), |p| p.and(g))),
            }
        }
        if is_do_nothing(&clause.action) {
            guards.push((clause.clause_kind, own.map(|c| c.is_not_true())));
            continue;
        }
        if blocked {
            continue;
        }
        match (&clause.clause_kind, &clause.action) {
            (MergeClauseKind::Matched, MergeAction::Update(u))
            | (MergeClauseKind::NotMatchedBySource, MergeAction::Update(u)) => {
                let mut sets = Vec::new();
                for a in &u.assignments {
                    let AssignmentTarget::ColumnName(n) = &a.target else {
                        return Err(Error::not_supported("MERGE UPDATE of a column tuple"));
                    };
                    let col = last_ident(n);
                    if target.def.column(&col).is_none() {
                        return Err(Error::new(
                            ErrorKind::UndefinedColumn,
                            format!(
                                "column \"{col}\" of relation \"{}\" does not exist",
                                target.name
                            ),
                        ));
                    }
                    let value = store(&col, expr(&a.value)?);
                    sets.push((col, value));
                }
                let row = new_row(&target.def, &sets, |c| {
                    DfExpr::Column(Column::new(Some(target_alias.as_str()), c))
                });
                checked(&mut sets, &row)?;
                let by_source = clause.clause_kind == MergeClauseKind::NotMatchedBySource;
                let build = |mut b: deltalake::operations::merge::UpdateBuilder| {
                    if let Some(p) = pred.clone() {
                        b = b.predicate(p);
                    }
                    for (c, v) in sets {
                        b = b.update(c.as_str(), v);
                    }
                    b
                };
                builder = if by_source {
                    builder.when_not_matched_by_source_update(build)?
                } else {
                    builder.when_matched_update(build)?
                };
            }
            (MergeClauseKind::Matched, MergeAction::Delete { .. }) => {
                builder = builder.when_matched_delete(|mut d| {
                    if let Some(p) = pred.clone() {
                        d = d.predicate(p);
                    }
                    d
                })?;
            }
            (MergeClauseKind::NotMatchedBySource, MergeAction::Delete { .. }) => {
                builder = builder.when_not_matched_by_source_delete(|mut d| {
                    if let Some(p) = pred.clone() {
                        d = d.predicate(p);
                    }
                    d
                })?;
            }
            (
                MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget,
                MergeAction::Insert(ins),
            ) => {
                let MergeInsertKind::Values(values) = &ins.kind else {
                    return Err(Error::not_supported("MERGE ... INSERT ROW"));
                };
                let [row] = values.rows.as_slice() else {
                    return Err(Error::syntax("MERGE INSERT takes exactly one VALUES row"));
                };
                let columns: Vec<String> = if ins.columns.is_empty() {
                    target.all_columns()
                } else {
                    ins.columns.iter().map(last_ident).collect()
                };
                if row.len() != columns.len() {
                    return Err(Error::syntax(if row.len() > columns.len() {
                        "INSERT has more expressions than target columns"
                    } else {
                        "INSERT has more target columns than expressions"
                    }));
                }
                let mut sets = Vec::new();
                for c in &target.def.columns {
                    let value = match columns.iter().position(|n| n == &c.name) {
                        Some(i) => expr(&row[i])?,
                        None => match &c.default {
                            Some(sql) => session.ctx.parse_sql_expr(sql, &both)?,
                            None => lit(ScalarValue::Null),
                        },
                    };
                    sets.push((c.name.clone(), store(&c.name, value)));
                }
                let row: Vec<DfExpr> = sets.iter().map(|(_, v)| v.clone()).collect();
                checked(&mut sets, &row)?;
                if let Some(bad) = columns.iter().find(|n| target.def.column(n).is_none()) {
                    return Err(Error::new(
                        ErrorKind::UndefinedColumn,
                        format!(
                            "column \"{bad}\" of relation \"{}\" does not exist",
                            target.name
                        ),
                    ));
                }
                builder = builder.when_not_matched_insert(|mut i| {
                    if let Some(p) = pred.clone() {
                        i = i.predicate(p);
                    }
                    for (c, v) in sets {
                        i = i.set(c.as_str(), v);
                    }
                    i
                })?;
            }
            (kind, action) => {
                return Err(Error::new(
                    ErrorKind::Syntax,
                    format!("MERGE WHEN {kind:?} cannot {action}"),
                ));
            }
        }
    }
    let (written, metrics) = builder.await?;
    session.engine.lake().remember(&written);
    Ok(Output::Command {
        tag: "MERGE".into(),
        rows: Some(
            metrics.num_target_rows_inserted
                + metrics.num_target_rows_updated
                + metrics.num_target_rows_deleted,
        ),
    })
}
