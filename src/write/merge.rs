//! MERGE INTO (PostgreSQL 15 syntax) through delta-rs' merge, with the
//! table's rules checked on the rows it would write.

use std::sync::Arc;

use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::logical_expr::{Expr as DfExpr, cast, lit, not};
use datafusion::sql::sqlparser::ast::{AssignmentTarget, Expr, TableFactor};

use crate::frontend::merge::{MergeAction, MergeStmt, WhenKind};

use super::{
    Expected, Outcome, Target, WriteContext, commit_properties, delete_references,
    expectations_before, new_row, store_expr,
};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::names::{
    last_ident, normalize_ident, quote_ident as ident, quote_list as ident_list,
};
use crate::quality::expect::Action;
use crate::quality::keys::{ForeignKeyChecks, KeyChecks};

/// In `WHEN NOT MATCHED [BY TARGET]` there is no target row: an unqualified
/// column is the source's, as in PostgreSQL (dbt writes `INSERT (id, v)
/// VALUES (id, v)`). Qualified here so that a name both sides have is not
/// ambiguous.
fn source_names_when_not_matched(m: &mut MergeStmt, source_alias: &str) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{Expr, Ident};
    use std::ops::ControlFlow;
    let qualify = |e: &mut Expr| {
        // Names inside a subquery are its own tables' first: left alone.
        if super::has_subquery(e) {
            return;
        }
        let _ = visit_expressions_mut(e, |x: &mut Expr| {
            if let Expr::Identifier(id) = x {
                *x = Expr::CompoundIdentifier(vec![
                    Ident::with_quote('"', source_alias),
                    id.clone(),
                ]);
            }
            ControlFlow::<()>::Continue(())
        });
    };
    for clause in m
        .clauses
        .iter_mut()
        .filter(|c| c.kind == crate::frontend::merge::WhenKind::NotMatched)
    {
        if let Some(cond) = clause.condition.as_mut() {
            qualify(cond);
        }
        if let crate::frontend::merge::MergeAction::Insert {
            values: Some(values),
            ..
        } = &mut clause.action
        {
            values.iter_mut().for_each(qualify);
        }
    }
}

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

/// Each scalar subquery in a WHEN condition or an action's values that
/// reads neither the target nor the source (`SET v = (SELECT f FROM u)`)
/// as the one value it has, computed once before the merge: the merge
/// plans its expressions over the target and source rows alone, where a
/// subquery's tables cannot be found (it was 42P01). A subquery that
/// plans on its own needs no row of the merge; one that does not is
/// refused (0A000). More than one row is 21000, as in PostgreSQL.
async fn uncorrelated_subqueries_as_values(wc: &WriteContext, m: &mut MergeStmt) -> Result<()> {
    use datafusion::sql::sqlparser::ast::Query;
    use std::ops::ControlFlow;
    let aliases: Vec<String> = [factor_name(&m.target), factor_name(&m.source)]
        .into_iter()
        .flatten()
        .collect();
    // Does the subquery name the target or the source?
    let reads_row = |q: &Query| {
        let mut named = false;
        let _ = crate::visit::visit_expressions(q, |x| {
            if let Expr::CompoundIdentifier(parts) = x
                && parts.len() >= 2
                && aliases.contains(&normalize_ident(&parts[parts.len() - 2]))
            {
                named = true;
            }
            ControlFlow::<()>::Continue(())
        });
        named
    };
    let mut found: Vec<Query> = Vec::new();
    let mut exprs: Vec<&mut Expr> = Vec::new();
    for c in m.clauses.iter_mut() {
        exprs.extend(c.condition.as_mut());
        match &mut c.action {
            MergeAction::Update(sets) => exprs.extend(sets.iter_mut().map(|a| &mut a.value)),
            MergeAction::Insert {
                values: Some(values),
                ..
            } => exprs.extend(values.iter_mut()),
            _ => {}
        }
    }
    // Subqueries of the merge's own expressions, not those nested in
    // them (which may read their enclosing subquery's tables).
    for e in exprs.iter_mut() {
        let _ = crate::visit::at_level_mut(&mut **e, &mut |x| {
            if let Expr::Subquery(q) = x
                && !found.contains(q)
            {
                found.push(q.as_ref().clone());
            }
        });
    }
    let mut values: Vec<(Query, Expr)> = Vec::new();
    for q in found {
        let df = match crate::frontend::generated::query(
            &wc.ctx,
            &format!("SELECT * FROM ({q}) AS __sluice_value LIMIT 2"),
        )
        .await
        {
            Ok(df) => df,
            // Merged rows are planned without their subqueries' tables.
            Err(_) if reads_row(&q) => {
                return Err(Error::not_supported(
                    "a subquery reading the target or source row in MERGE or ON CONFLICT \
                     DO UPDATE",
                ));
            }
            Err(e) => return Err(e),
        };
        if df.schema().fields().len() != 1 {
            continue;
        }
        let batches = df.collect().await?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        if rows > 1 {
            return Err(Error::new(
                ErrorKind::CardinalityViolation,
                "more than one row returned by a subquery used as an expression",
            ));
        }
        let Some(value) = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .map(|b| b.column(0).clone())
        else {
            values.push((q, Expr::value(datafusion::sql::sqlparser::ast::Value::Null)));
            continue;
        };
        if let Some(literal) = sql_literal(&value) {
            values.push((q, literal));
        }
    }
    for e in exprs {
        let _ = crate::visit::at_level_mut(e, &mut |x| {
            if let Expr::Subquery(q) = x
                && let Some((_, v)) = values.iter().find(|(found, _)| found == q.as_ref())
            {
                *x = v.clone();
            }
        });
    }
    Ok(())
}

/// The first value of `column` as SQL: `CAST('<text>' AS <type>)`, or
/// NULL; `None` for a type without a plain SQL spelling.
fn sql_literal(column: &datafusion::arrow::array::ArrayRef) -> Option<Expr> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    let ty = match column.data_type() {
        DataType::Boolean => "boolean".to_string(),
        DataType::Int16 => "smallint".to_string(),
        DataType::Int32 => "integer".to_string(),
        DataType::Int64 => "bigint".to_string(),
        DataType::Float32 => "real".to_string(),
        DataType::Float64 => "double precision".to_string(),
        DataType::Decimal128(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".to_string(),
        DataType::Date32 => "date".to_string(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp".to_string(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "timestamptz".to_string(),
        _ => return None,
    };
    if column.is_null(0) {
        return Some(Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
    }
    let text = crate::types::output::output_utf8(&column.slice(0, 1)).ok()?;
    let text = text.as_string::<i32>().value(0).replace('\'', "''");
    let q =
        crate::frontend::template::query(&format!("SELECT CAST('{text}' AS {ty})"), &[]).ok()?;
    match *q.body {
        datafusion::sql::sqlparser::ast::SetExpr::Select(s) => match s.projection.first() {
            Some(datafusion::sql::sqlparser::ast::SelectItem::UnnamedExpr(e)) => Some(e.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Generated columns in the clauses: an UPDATE that changes a column one
/// reads sets it again, an INSERT computes it from the values it gives;
/// a value given for one is refused (428C9), but in an upsert's INSERT,
/// whose rows were refused before and hold placeholders.
fn generated_columns(
    wc: &WriteContext,
    target: &Target,
    m: &mut MergeStmt,
    target_alias: &str,
    keyed_upsert: bool,
) -> Result<()> {
    use super::generated;
    use datafusion::sql::sqlparser::ast::{Assignment, Ident, ObjectName};
    let volatile = |e: &Expr| generated::calls_volatile(&wc.ctx, e);
    if target.def.columns.iter().all(|c| c.generated.is_none()) {
        return Ok(());
    }
    for clause in &mut m.clauses {
        match &mut clause.action {
            MergeAction::Update(assignments) => {
                let mut sets = Vec::new();
                for a in assignments.iter() {
                    let col = target.assigned_column(&a.target, "MERGE UPDATE")?;
                    if target
                        .def
                        .column(&col)
                        .is_some_and(|c| c.generated.is_some())
                        && !generated::is_default(&a.value)
                    {
                        return Err(generated::given_error(&col, true));
                    }
                    sets.push((col, a.value.clone()));
                }
                let sets =
                    generated::with_generated_sets(&target.def, target_alias, &sets, &volatile)?;
                *assignments = sets
                    .into_iter()
                    .map(|(c, value)| Assignment {
                        target: AssignmentTarget::ColumnName(ObjectName::from(vec![
                            Ident::with_quote('"', c),
                        ])),
                        value,
                    })
                    .collect();
            }
            MergeAction::Insert { columns, values } => {
                let given = values.get_or_insert_with(Vec::new);
                let mut names: Vec<String> = if columns.is_empty() && !given.is_empty() {
                    target.all_columns()
                } else {
                    columns.iter().map(normalize_ident).collect()
                };
                if names.len() != given.len() {
                    // The clause reports it.
                    continue;
                }
                generated::complete_insert(
                    &target.def,
                    &mut names,
                    given,
                    !keyed_upsert,
                    &volatile,
                )?;
                *columns = names.iter().map(|c| Ident::with_quote('"', c)).collect();
            }
            MergeAction::Delete | MergeAction::DoNothing => {}
        }
    }
    Ok(())
}

fn is_do_nothing(action: &MergeAction) -> bool {
    matches!(action, MergeAction::DoNothing)
}

/// MERGE INTO (PostgreSQL 15) through delta-rs' merge: one commit that
/// rewrites only the target files holding matched rows. WHEN clauses keep
/// their order; the first whose condition holds acts on a row.
/// `keyed_upsert` says the ON condition matches the table's one key and the
/// source holds each key once (INSERT ... ON CONFLICT), so inserts cannot
/// repeat a key. The target and every name in `m` are qualified.
pub async fn merge(wc: &WriteContext, mut m: MergeStmt, keyed_upsert: bool) -> Result<Outcome> {
    uncorrelated_subqueries_as_values(wc, &mut m).await?;
    let TableFactor::Table { name, .. } = &m.target else {
        return Err(Error::not_supported(
            "MERGE into something that is not a table",
        ));
    };
    let target_alias = factor_name(&m.target).unwrap_or_default();
    let target = Target::open_qualified(wc, name, Some(target_alias.clone())).await?;
    // Before the source's names are qualified: `DEFAULT` is a keyword.
    generated_columns(wc, &target, &mut m, &target_alias, keyed_upsert)?;
    if let Some(source_alias) = factor_name(&m.source) {
        source_names_when_not_matched(&mut m, &source_alias);
    }
    let source_alias =
        factor_name(&m.source).ok_or_else(|| Error::syntax("the MERGE source needs an alias"))?;
    let source = crate::frontend::generated::select_all_from(m.source.clone())?;
    let source = crate::frontend::generated::plan_statement(&wc.ctx, source).await?;
    let source = wc.ctx.execute_logical_plan(source).await?;
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
    // The target's rows beside the source's, as a plan: the declared types
    // of their columns (jsonb's `||`, character(n) comparisons) are traced
    // through it, as a query's are.
    let sides = {
        let scan = datafusion::logical_expr::LogicalPlanBuilder::scan(
            target_alias.as_str(),
            datafusion::datasource::provider_as_source(crate::lake::provider(&target.table).await?),
            None,
        )?
        .build()?;
        let source =
            datafusion::logical_expr::LogicalPlanBuilder::from(source.logical_plan().clone())
                .alias(source_alias.as_str())?
                .build()?;
        datafusion::logical_expr::LogicalPlanBuilder::from(scan)
            .cross_join(source)?
            .build()?
    };
    let state = wc.ctx.state();
    let expr = |e: &Expr| -> Result<DfExpr> {
        let planned = crate::frontend::generated::plan_expr(&wc.ctx, e, &both)?;
        super::declared_types(&state, planned, &sides)
    };
    let on = expr(&m.on)?;
    // Text stored into a column of another type is read by Sluice's input
    // functions (`'2020-01-01 00:00'` as a timestamp), as in an INSERT.
    let store = |col: &str, e: DfExpr| -> Result<DfExpr> {
        let stored = store_expr(e, &target.def, col, &target.name);
        super::analyzed_with(&state, stored, &sides, &["sluice_text_input_casts"])
    };
    let as_stored =
        |col: &str, e: DfExpr| cast(e, target.def.column(col).expect("checked").ty.arrow_type());
    // The new row passes every DROP ROW and QUARANTINE rule (None when the
    // table has none): a row that does not is left as it was, and its
    // clause must not fall through to a later one.
    let passes = |row: &[DfExpr]| -> Result<Option<DfExpr>> {
        let mut all: Option<DfExpr> = None;
        for e in &target.def.expectations {
            if !matches!(e.action, Action::Drop | Action::Quarantine) {
                continue;
            }
            let check = crate::quality::CheckDef {
                name: e.name.clone(),
                expr: e.expr.clone(),
            };
            let cond = crate::quality::plan_check(&wc.ctx, &check, &target_schema)?;
            let cond = crate::quality::substitute_columns(cond, &target.def, row)?.is_not_false();
            all = Some(all.map_or(cond.clone(), |a| a.and(cond)));
        }
        Ok(all)
    };
    // The table's checks, over the new row, ride on the first value set.
    let checked = |sets: &mut Vec<(String, DfExpr)>, row: &[DfExpr]| -> Result<()> {
        if let Some((_, first)) = sets.first_mut() {
            *first = crate::quality::on_value(
                &wc.ctx,
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
        .with_writer_properties(super::data_file_properties(&target.def.unique_columns()))
        .with_source_alias(&source_alias)
        .with_target_alias(&target_alias)
        .with_session_state(Arc::new(wc.ctx.state()))
        .with_commit_properties(commit_properties());
    // A DO NOTHING clause is no operation for delta-rs: the rows it takes
    // must just not reach the later clauses of its kind, so those get
    // `AND (its condition) IS NOT TRUE` (or are dropped when it has none).
    let mut guards: Vec<(WhenKind, Option<DfExpr>)> = Vec::new();
    let guard_of = |kind: &WhenKind, guards: &[(WhenKind, Option<DfExpr>)]| {
        guards
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, g)| g.clone())
            .collect::<Vec<_>>()
    };
    for clause in &m.clauses {
        let own = clause.condition.as_ref().map(&expr).transpose()?;
        let mut blocked = false;
        let mut pred = own.clone();
        for g in guard_of(&clause.kind, &guards) {
            match g {
                None => blocked = true,
                Some(g) => pred = Some(pred.map_or(g.clone(), |p| p.and(g))),
            }
        }
        if is_do_nothing(&clause.action) {
            guards.push((clause.kind, own.map(|c| c.is_not_true())));
            continue;
        }
        if blocked {
            continue;
        }
        let mut refused: Option<DfExpr> = None;
        let mut with_rules = |pred: &Option<DfExpr>, row: &[DfExpr]| -> Result<Option<DfExpr>> {
            let Some(pass) = passes(row)? else {
                return Ok(pred.clone());
            };
            let taken = own
                .clone()
                .map_or(not(pass.clone()), |o| o.and(not(pass.clone())));
            refused = Some(taken.is_not_true());
            Ok(Some(pred.clone().map_or(pass.clone(), |p| p.and(pass))))
        };
        match (&clause.kind, &clause.action) {
            (WhenKind::Matched, MergeAction::Update(assignments))
            | (WhenKind::NotMatchedBySource, MergeAction::Update(assignments)) => {
                let mut sets = Vec::new();
                let mut raw = Vec::new();
                for a in assignments {
                    let col = target.assigned_column(&a.target, "MERGE UPDATE")?;
                    let value = expr(&a.value)?;
                    raw.push((col.clone(), as_stored(&col, value.clone())));
                    sets.push((col.clone(), store(&col, value)?));
                }
                let old = |c: &str| DfExpr::Column(Column::new(Some(target_alias.as_str()), c));
                let row = new_row(&target.def, &sets, old);
                checked(&mut sets, &row)?;
                let pred = with_rules(&pred, &new_row(&target.def, &raw, old))?;
                let by_source = clause.kind == WhenKind::NotMatchedBySource;
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
            (WhenKind::Matched, MergeAction::Delete) => {
                builder = builder.when_matched_delete(|mut d| {
                    if let Some(p) = pred.clone() {
                        d = d.predicate(p);
                    }
                    d
                })?;
            }
            (WhenKind::NotMatchedBySource, MergeAction::Delete) => {
                builder = builder.when_not_matched_by_source_delete(|mut d| {
                    if let Some(p) = pred.clone() {
                        d = d.predicate(p);
                    }
                    d
                })?;
            }
            (WhenKind::NotMatched, MergeAction::Insert { columns, values }) => {
                let empty = Vec::new();
                let row = values.as_ref().unwrap_or(&empty);
                let columns: Vec<String> = if columns.is_empty() {
                    if values.is_none() {
                        vec![]
                    } else {
                        target.all_columns()
                    }
                } else {
                    columns.iter().map(normalize_ident).collect()
                };
                if row.len() != columns.len() {
                    return Err(Error::syntax(if row.len() > columns.len() {
                        "INSERT has more expressions than target columns"
                    } else {
                        "INSERT has more target columns than expressions"
                    }));
                }
                let mut sets = Vec::new();
                let mut raw = Vec::new();
                for c in &target.def.columns {
                    let value = match columns.iter().position(|n| n == &c.name) {
                        Some(i) => expr(&row[i])?,
                        None => match &c.default {
                            Some(sql) => {
                                crate::frontend::generated::plan_text(&wc.ctx, sql, &both)?
                            }
                            None => lit(ScalarValue::Null),
                        },
                    };
                    raw.push(as_stored(&c.name, value.clone()));
                    sets.push((c.name.clone(), store(&c.name, value)?));
                }
                let row: Vec<DfExpr> = sets.iter().map(|(_, v)| v.clone()).collect();
                checked(&mut sets, &row)?;
                let pred = with_rules(&pred, &raw)?;
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
                    format!("MERGE WHEN {kind:?} cannot {action:?}"),
                ));
            }
        }
        if let Some(g) = refused {
            guards.push((clause.kind, Some(g)));
        }
    }
    // Quarantine appends and changes to child tables commit before the
    // merge; a target row that two source rows match is found first.
    let numbered =
        crate::quality::expect::quarantines(&target.def) || !target.referenced_by(wc).is_empty();
    let preview = Preview::new(&target, &m, (&target_alias, &source_alias), numbered);
    let expected = check_rules(wc, &target, &preview, keyed_upsert).await?;
    let (written, metrics) = builder.await?;
    wc.lake.committed(&written).await;
    if let Some(run) = expected {
        run.record(written.version().unwrap_or(0) as i64).await;
    }
    let rows = metrics.num_target_rows_inserted
        + metrics.num_target_rows_updated
        + metrics.num_target_rows_deleted;
    Ok(Outcome::of(written, Some(rows)).await)
}

/// What a MERGE does, as a query on the snapshot it reads: each row of
/// target and source joined that a clause acts on, with the clause (its
/// position, from 1), the new values under the table's column names, and
/// the old values as `__sluice_old_<i>`. Clauses take rows in order, as
/// in PostgreSQL and delta-rs.
struct Preview {
    sql: String,
    updates: Vec<usize>,
    inserts: Vec<usize>,
    deletes: Vec<usize>,
    /// Which columns each UPDATE clause assigns.
    assigned: Vec<String>,
    /// The new row passes every DROP ROW and QUARANTINE rule.
    kept: String,
    /// WHEN MATCHED clauses that update or delete.
    matched: Vec<usize>,
    /// Target rows are numbered (`__sluice_row`), to find one that two
    /// source rows would change.
    numbered: bool,
}

impl Preview {
    fn new(
        target: &Target,
        m: &MergeStmt,
        (target_alias, source_alias): (&str, &str),
        numbered: bool,
    ) -> Preview {
        let (t, s) = (ident(target_alias), ident(source_alias));
        let (in_t, in_s) = (format!("{t}.__sluice_t"), format!("{s}.__sluice_s"));
        let columns = &target.def.columns;
        let mut p = Preview {
            sql: String::new(),
            updates: Vec::new(),
            inserts: Vec::new(),
            deletes: Vec::new(),
            assigned: Vec::new(),
            kept: String::new(),
            matched: Vec::new(),
            numbered,
        };
        let (mut by_target, mut by_source) = (false, false);
        // (condition, new value of each column) per clause
        let mut arms: Vec<(String, Option<Vec<String>>)> = Vec::new();
        for (i, clause) in m.clauses.iter().enumerate() {
            let kind = match clause.kind {
                WhenKind::Matched => format!("{in_t} IS NOT NULL AND {in_s} IS NOT NULL"),
                WhenKind::NotMatched => {
                    by_target = true;
                    format!("{in_t} IS NULL")
                }
                WhenKind::NotMatchedBySource => {
                    by_source = true;
                    format!("{in_s} IS NULL")
                }
            };
            let cond = match &clause.condition {
                Some(pred) => format!("{kind} AND ({pred})"),
                None => kind,
            };
            let typed = |c: &crate::catalog::ColumnDef, e: &str| {
                format!("CAST(({e}) AS {})", c.ty.assignment_cast())
            };
            let values = match &clause.action {
                _ if is_do_nothing(&clause.action) => None,
                MergeAction::Update(assignments) => {
                    p.updates.push(i + 1);
                    let values = columns
                        .iter()
                        .map(|c| {
                            let set = assignments.iter().find(|a| {
                                matches!(&a.target, AssignmentTarget::ColumnName(n) if last_ident(n) == c.name)
                            });
                            match set {
                                Some(a) => {
                                    p.assigned.push(c.name.clone());
                                    typed(c, &a.value.to_string())
                                }
                                None => format!("{t}.{}", ident(&c.name)),
                            }
                        })
                        .collect();
                    Some(values)
                }
                MergeAction::Insert {
                    columns: listed,
                    values,
                } => {
                    p.inserts.push(i + 1);
                    let listed: Vec<String> = listed.iter().map(normalize_ident).collect();
                    let row = values.clone().unwrap_or_default();
                    let values = columns
                        .iter()
                        .enumerate()
                        .map(|(j, c)| {
                            let at = if listed.is_empty() {
                                Some(j)
                            } else {
                                listed.iter().position(|n| n == &c.name)
                            };
                            match (at.and_then(|k| row.get(k)), &c.default) {
                                (Some(e), _) => typed(c, &e.to_string()),
                                (None, Some(d)) => {
                                    typed(c, &crate::frontend::compat::planned_default(d))
                                }
                                (None, None) => typed(c, "NULL"),
                            }
                        })
                        .collect();
                    Some(values)
                }
                MergeAction::Delete => {
                    p.deletes.push(i + 1);
                    None
                }
                MergeAction::DoNothing => None,
            };
            if clause.kind == WhenKind::Matched
                && !is_do_nothing(&clause.action)
                && !matches!(clause.action, MergeAction::Insert { .. })
            {
                p.matched.push(i + 1);
            }
            arms.push((cond, values));
        }
        let case = |value: &dyn Fn(usize, &Option<Vec<String>>) -> String| {
            let whens: Vec<String> = arms
                .iter()
                .enumerate()
                .map(|(i, (cond, values))| format!("WHEN {cond} THEN {}", value(i, values)))
                .collect();
            format!("CASE {} END", whens.join(" "))
        };
        let mut list = vec![format!(
            "{} AS __sluice_clause",
            case(&|i, _| (i + 1).to_string())
        )];
        for (j, c) in columns.iter().enumerate() {
            let new = case(&|_, values| match values {
                Some(v) => v[j].clone(),
                None => "NULL".into(),
            });
            list.push(format!("{new} AS {}", ident(&c.name)));
            list.push(format!("{t}.{} AS __sluice_old_{j}", ident(&c.name)));
        }
        let numbering = if numbered {
            list.push(format!("{t}.__sluice_row"));
            ", row_number() OVER () AS __sluice_row"
        } else {
            ""
        };
        let join = match (by_target, by_source) {
            (true, true) => "FULL JOIN",
            (true, false) => "RIGHT JOIN",
            (false, true) => "LEFT JOIN",
            (false, false) => "JOIN",
        };
        p.sql = format!(
            "SELECT {} FROM (SELECT *, TRUE AS __sluice_t{numbering} FROM {}) AS {t} {join} \
             (SELECT *, TRUE AS __sluice_s FROM {}) AS {s} ON {}",
            list.join(", "),
            target.pinned_sql(),
            m.source,
            m.on
        );
        p.kept = crate::quality::expect::kept_sql(&target.def);
        p
    }

    /// `SELECT list` over the acting rows that `filter` keeps.
    fn rows(&self, list: &str, filter: &str) -> String {
        format!(
            "SELECT {list} FROM ({}) AS __sluice_m WHERE {filter}",
            self.sql
        )
    }

    /// `__sluice_clause IN (...)`: the rows taken by one of `clauses`.
    fn taken_by(clauses: &[usize]) -> String {
        if clauses.is_empty() {
            return "FALSE".into();
        }
        let list: Vec<String> = clauses.iter().map(|c| c.to_string()).collect();
        format!("__sluice_clause IN ({})", list.join(", "))
    }

    /// The rows the MERGE writes (updated or inserted), new values.
    fn written(&self) -> String {
        let both: Vec<usize> = self.updates.iter().chain(&self.inserts).copied().collect();
        Self::taken_by(&both)
    }

    /// The rows whose old values leave the table: deleted, or updated
    /// and kept.
    fn leaving(&self) -> String {
        format!(
            "({}) OR ({} AND {})",
            Self::taken_by(&self.deletes),
            Self::taken_by(&self.updates),
            self.kept
        )
    }
}

/// The table's rules, checked on what the MERGE would write before it
/// writes: expectations (counted, FAIL enforced, quarantine written),
/// references to parents, keys, and references from children (deleted
/// with ON DELETE CASCADE, else 23503); then the quarantine append
/// commits. Without expectations, the CHECKs and NOT NULL ride in the
/// write itself.
async fn check_rules(
    wc: &WriteContext,
    target: &Target,
    p: &Preview,
    keyed_upsert: bool,
) -> Result<Option<Expected>> {
    let def = &target.def;
    let all = target.columns_sql();
    let expected = if def.expectations.is_empty() {
        None
    } else {
        let changed = format!(
            "({}) AS {}",
            p.rows(&all, &p.written()),
            ident(&target.name)
        );
        expectations_before(wc, target, &changed).await?
    };
    let written = format!("({} AND {})", p.written(), p.kept);
    let assigns = |cols: &[String]| p.assigned.iter().any(|c| cols.contains(c));
    for fk in &def.foreign_keys {
        if p.inserts.is_empty() && !assigns(&fk.columns) {
            continue;
        }
        let mut parent = format!("{}.{}", ident(&fk.parent_schema), ident(&fk.parent_table));
        if fk.parent_schema == target.schema && fk.parent_table == target.name {
            // The table is its own parent, as it will be after the MERGE:
            // the rows that stay and the rows written.
            let list = ident_list(&fk.parent_columns);
            parent = format!(
                "(SELECT {list} FROM {} EXCEPT ALL {} UNION ALL {})",
                target.pinned_sql(),
                p.rows(
                    &target.old_columns_sql(Some(&fk.parent_columns)),
                    &p.leaving()
                ),
                p.rows(&list, &written)
            );
        }
        let child = format!("({})", p.rows(&all, &written));
        if let Some(values) =
            crate::quality::keys::first_row(&wc.ctx, &fk.missing_sql(&child, &parent)).await?
        {
            return Err(fk.missing(&target.name, &values));
        }
    }
    for key in &def.keys {
        // An upsert on the table's only key inserts only keys not there.
        let inserts = !p.inserts.is_empty() && (!keyed_upsert || def.keys.len() > 1);
        if !inserts && !assigns(&key.columns) {
            continue;
        }
        // The keys written, and the keys of the rows that stay.
        let list = ident_list(&key.columns);
        let new = format!("({})", p.rows(&list, &written));
        let remaining = format!(
            "(SELECT {list} FROM {} EXCEPT ALL {})",
            target.pinned_sql(),
            p.rows(&target.old_columns_sql(Some(&key.columns)), &p.leaving())
        );
        crate::quality::keys::first_violation(
            key,
            &wc.ctx,
            &[key.repeated_sql(&new), key.present_sql(&new, &remaining)],
        )
        .await?;
    }
    if p.numbered && !p.matched.is_empty() {
        let twice = p.rows(
            "__sluice_row",
            &format!(
                "{} GROUP BY __sluice_row HAVING count(*) > 1 LIMIT 1",
                Preview::taken_by(&p.matched)
            ),
        );
        if crate::quality::keys::first_row(&wc.ctx, &twice)
            .await?
            .is_some()
        {
            return Err(Error::new(
                ErrorKind::CardinalityViolation,
                "MERGE command cannot affect row a second time",
            )
            .with_hint("Ensure that not more than one source row matches any one target row."));
        }
    }
    let referenced: Vec<String> = target
        .referenced_by(wc)
        .into_iter()
        .flat_map(|(_, _, fk)| fk.parent_columns)
        .collect();
    if referenced.is_empty() {
        return quarantine(expected).await;
    }
    if assigns(&referenced) {
        let moved = def
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| referenced.contains(&c.name))
            .map(|(j, c)| format!("{} IS DISTINCT FROM __sluice_old_{j}", ident(&c.name)))
            .collect::<Vec<_>>()
            .join(" OR ");
        let filter = format!(
            "{} AND {} AND ({moved})",
            Preview::taken_by(&p.updates),
            p.kept
        );
        let gone = p.rows(&target.old_columns_sql(None), &filter);
        delete_references(wc, target, &gone, false).await?;
    }
    if !p.deletes.is_empty() {
        let gone = p.rows(
            &target.old_columns_sql(None),
            &Preview::taken_by(&p.deletes),
        );
        delete_references(wc, target, &gone, true).await?;
    }
    quarantine(expected).await
}

/// The quarantine append, once every check passed.
async fn quarantine(mut expected: Option<Expected>) -> Result<Option<Expected>> {
    if let Some(e) = expected.as_mut() {
        e.quarantine().await?;
    }
    Ok(expected)
}

/// The names a group merge gives the view's rows and the new ones.
pub const GROUP_TARGET: &str = "__sluice_target";
pub const GROUP_SOURCE: &str = "__sluice_source";

/// How [`merge_groups`] changes the rows of the groups it finds.
pub enum GroupMerge {
    /// Each group's row is replaced by the source's; where the source's
    /// column `present` is null the group has no row any more and its row
    /// is deleted.
    Replace { present: String },
    /// Groups of any number of rows: a source row whose column `marker`
    /// is true stands for its key and deletes every row of it; the other
    /// source rows are inserted.
    ReplacePartitions { marker: String },
    /// Each group's row gets the values (expressions over
    /// [`GROUP_TARGET`] and [`GROUP_SOURCE`] columns) of `set`; a new
    /// group is inserted as the source has it.
    Combine { set: Vec<(String, DfExpr)> },
}

/// Change groups of rows of `target`, found by key, in one commit that
/// rewrites only the files holding them: `source` has one row per group,
/// its keys in the columns `keys[k].1` (the target's `keys[k].0`, nulls
/// equal), and the target's columns by name. Records `txns`, also when no
/// row changed, so a retried merge is not applied twice.
pub async fn merge_groups(
    wc: &WriteContext,
    target: &Target,
    source: datafusion::dataframe::DataFrame,
    keys: &[(String, String)],
    how: GroupMerge,
    txns: &[super::AppTransaction],
    metadata: Vec<(String, serde_json::Value)>,
) -> Result<Outcome> {
    if super::already_applied(&target.table, txns).await? {
        return Ok(Outcome {
            table: target.table.clone(),
            version: target.table.version().unwrap_or(0) as i64,
            rows: 0,
            files_added: 0,
            bytes_added: 0,
        });
    }
    let (t, s) = (GROUP_TARGET, GROUP_SOURCE);
    let on = keys
        .iter()
        .map(|(tc, sc)| {
            datafusion::logical_expr::binary_expr(
                DfExpr::Column(Column::new(Some(t), tc)),
                datafusion::logical_expr::Operator::IsNotDistinctFrom,
                DfExpr::Column(Column::new(Some(s), sc)),
            )
        })
        .reduce(DfExpr::and)
        .ok_or_else(|| Error::internal("groups are merged by key"))?;
    let on = match &how {
        GroupMerge::ReplacePartitions { marker } => {
            on.and(DfExpr::Column(Column::new(Some(s), marker)))
        }
        _ => on,
    };
    let columns = target.all_columns();
    let value = |c: &str| DfExpr::Column(Column::new(Some(s), c));
    let mut builder = target
        .table
        .clone()
        .merge(source, on)
        .with_writer_properties(super::data_file_properties(&target.def.unique_columns()))
        .with_source_alias(s)
        .with_target_alias(t)
        .with_session_state(Arc::new(wc.ctx.state()))
        .with_commit_properties(
            super::commit_properties_with(txns).with_metadata(metadata.clone()),
        );
    let insert_when = match how {
        GroupMerge::Replace { present } => {
            let gone = DfExpr::Column(Column::new(Some(s), present)).is_null();
            builder = builder
                .when_matched_delete(|d| d.predicate(gone.clone()))?
                .when_matched_update(|mut u| {
                    for c in &columns {
                        u = u.update(c.as_str(), value(c));
                    }
                    u
                })?;
            Some(not(gone))
        }
        GroupMerge::ReplacePartitions { marker } => {
            builder = builder.when_matched_delete(|d| d)?;
            Some(not(DfExpr::Column(Column::new(Some(s), marker))))
        }
        GroupMerge::Combine { set } => {
            builder = builder.when_matched_update(|mut u| {
                for (c, e) in set {
                    u = u.update(c.as_str(), e);
                }
                u
            })?;
            None
        }
    };
    builder = builder.when_not_matched_insert(|mut i| {
        if let Some(p) = insert_when {
            i = i.predicate(p);
        }
        for c in &columns {
            i = i.set(c.as_str(), value(c));
        }
        i
    })?;
    let (mut written, metrics) = builder.await?;
    if written.version() == target.table.version() {
        // No group changed: delta-rs made no commit.
        written = super::record_transactions(&wc.lake, &written, txns, metadata).await?;
    } else {
        wc.lake.committed(&written).await;
    }
    let rows = metrics.num_target_rows_inserted
        + metrics.num_target_rows_updated
        + metrics.num_target_rows_deleted;
    Ok(Outcome::of(written, Some(rows)).await)
}
