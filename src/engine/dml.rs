//! INSERT, UPDATE and DELETE statements: their tables and expressions
//! taken from the syntax tree and handed to the write path (`crate::write`),
//! and RETURNING evaluated over what it returns. Rows are never collected
//! (except for RETURNING).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::Expr as DfExpr;
use datafusion::sql::sqlparser::ast::{
    Delete, Expr, FromTable, Insert, ObjectName, Query, SelectItem, SetExpr, Statement,
    TableFactor, TableObject, TableWithJoins, Update, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::{Output, Session, last_ident, normalize_ident};
use crate::error::{Error, Result};
use crate::frontend::Overriding;
use crate::write::{self, Append, Target};

fn table_name(t: &TableObject) -> Result<&ObjectName> {
    match t {
        TableObject::TableName(n) => Ok(n),
        _ => Err(Error::not_supported("INSERT into a table function")),
    }
}

pub async fn insert(
    session: &mut Session,
    ins: Insert,
    overriding: Option<Overriding>,
) -> Result<Output> {
    if ins.overwrite && ins.on.is_some() {
        return Err(Error::syntax("INSERT OVERWRITE cannot have ON CONFLICT"));
    }
    if ins.on.is_some() {
        if overriding == Some(Overriding::User) {
            return Err(Error::not_supported(
                "INSERT ... OVERRIDING USER VALUE ... ON CONFLICT",
            ));
        }
        return Box::pin(super::upsert::upsert(session, ins, overriding)).await;
    }
    let wc = session.write_context();
    let (schema, name, def) = session.resolve_table(table_name(&ins.table)?)?;
    let target = Target::open(&wc, &schema, &name, def, None).await?;
    // RETURNING reads the table by its alias; planned before anything is
    // written, so that a mistake in it commits nothing.
    let alias = ins
        .table_alias
        .as_ref()
        .map(|a| normalize_ident(&a.alias))
        .unwrap_or_else(|| target.name.clone());
    if let Some(items) = &ins.returning {
        returning_exprs_of(session, &target.def, &alias, items)?;
    }
    let listed: Vec<String> = ins.columns.iter().map(last_ident).collect();
    let targets = target.target_columns(&listed)?;
    let Some(mut source) = ins.source else {
        return Err(Error::not_supported("INSERT without VALUES or SELECT"));
    };
    // A query whose width its select list does not say (`SELECT *`) is
    // checked once planned, against the columns it has.
    let deferred =
        !matches!(source.body.as_ref(), SetExpr::Values(_)) && query_width(&source.body).is_none();
    let refuse = |source: &Query, width| {
        refuse_generated_always(
            source,
            &targets,
            !ins.columns.is_empty(),
            &target.def,
            overriding,
            width,
        )
    };
    if !deferred {
        refuse(&source, None)?;
    }
    resolve_values(&mut source, &targets, &target.def)?;
    let plan = session.plan(Statement::Query(source.clone())).await?;
    let n_in = plan.schema().fields().len();
    if n_in > targets.len() {
        return Err(Error::syntax(
            "INSERT has more expressions than target columns",
        ));
    }
    if deferred {
        refuse(&source, Some(n_in))?;
    }
    if n_in < targets.len() && !ins.columns.is_empty() {
        return Err(Error::syntax(
            "INSERT has more target columns than expressions",
        ));
    }
    let df = session.ctx.execute_logical_plan(plan).await?;
    // OVERRIDING USER VALUE: an identity column takes its sequence's value
    // whatever is given (the value given fills no column).
    let filled: Vec<String> = targets[..n_in]
        .iter()
        .map(|t| {
            let identity = target.def.column(t).is_some_and(|c| c.identity.is_some());
            if identity && overriding == Some(Overriding::User) {
                String::new()
            } else {
                t.clone()
            }
        })
        .collect();
    let mut append = Append::new(&wc, &target).columns(filled);
    if ins.overwrite {
        // INSERT OVERWRITE (Spark / Databricks): the rows replace every row,
        // in one commit, with the table's rules applied to them.
        if ins.returning.is_some() {
            return Err(Error::not_supported("INSERT OVERWRITE ... RETURNING"));
        }
        let referenced = !session
            .engine()
            .catalog()
            .snapshot()
            .referencing(&schema, &name)
            .is_empty();
        if !target.def.keys.is_empty() || referenced {
            return Err(Error::not_supported(format!(
                "INSERT OVERWRITE into \"{name}\", which has a key or is referenced by a foreign key"
            )));
        }
        append = append.replacing_all();
    }
    match ins.returning {
        None => {
            let outcome = append.run(df).await?;
            Ok(Output::count("INSERT", outcome.rows))
        }
        Some(items) => {
            let (_, batches) = append.run_returning(df).await?;
            returning(session, batches, &target, &alias, &items, "INSERT 0").await
        }
    }
}

use write::generated::is_default;

/// How many columns a query body gives, when its select list says so
/// without a `*`.
fn query_width(body: &SetExpr) -> Option<usize> {
    match body {
        SetExpr::Select(s) => s
            .projection
            .iter()
            .all(|item| {
                matches!(
                    item,
                    SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
                )
            })
            .then_some(s.projection.len()),
        SetExpr::SetOperation { left, .. } => query_width(left),
        SetExpr::Query(q) => query_width(&q.body),
        _ => None,
    }
}

/// A value given for a `GENERATED ALWAYS` identity column or a generated
/// column (anything but `DEFAULT` in VALUES, or a listed column filled by
/// a query, or one of the first `width` columns, all when that is not
/// known): 428C9.
pub(super) fn refuse_generated_always(
    source: &Query,
    targets: &[String],
    listed: bool,
    def: &crate::catalog::TableDef,
    overriding: Option<Overriding>,
    width: Option<usize>,
) -> Result<()> {
    for (i, t) in targets.iter().enumerate() {
        let generated = def.column(t).is_some_and(|c| c.generated.is_some());
        // OVERRIDING SYSTEM VALUE takes the value given, USER VALUE the
        // sequence's.
        let always = def.column(t).and_then(|c| c.identity)
            == Some(crate::catalog::Identity::Always)
            && overriding.is_none();
        if !generated && !always {
            continue;
        }
        let given = match source.body.as_ref() {
            SetExpr::Values(v) => v
                .rows
                .iter()
                .any(|r| r.get(i).is_some_and(|c| !is_default(c))),
            // A query fills the listed columns, or the first as many
            // columns as it has (all of them when that is not known).
            body => listed || width.or_else(|| query_width(body)).is_none_or(|w| i < w),
        };
        if given && generated {
            return Err(write::generated::given_error(t, false));
        }
        if given {
            return Err(Error::new(
                crate::error::ErrorKind::GeneratedAlways,
                format!("cannot insert a non-DEFAULT value into column \"{t}\""),
            )
            .with_detail(format!(
                "Column \"{t}\" is an identity column defined as GENERATED ALWAYS."
            ))
            .with_hint("Use OVERRIDING SYSTEM VALUE to override."));
        }
    }
    Ok(())
}

/// An INSERT's (or upsert's) VALUES rows as their target columns take
/// them. `DEFAULT` is the column's default expression, or NULL when it
/// has none (as PostgreSQL, in any row). A quoted literal in a column
/// whose other rows give an expression is read as the column's type, as
/// PostgreSQL coerces each value of an INSERT to its column: `ARRAY['a']`
/// beside `'{b,c}'` in a `text[]` column.
pub(super) fn resolve_values(
    source: &mut Query,
    targets: &[String],
    def: &crate::catalog::TableDef,
) -> Result<()> {
    let SetExpr::Values(values) = source.body.as_mut() else {
        return Ok(());
    };
    for row in &mut values.rows {
        for (cell, column) in row.iter_mut().zip(targets) {
            if !is_default(cell) {
                continue;
            }
            *cell = default_expr(def, column)?;
        }
    }
    for (at, column) in targets.iter().enumerate() {
        let cells = || values.rows.iter().filter_map(|r| r.get(at));
        let mixed = cells().any(is_quoted) && cells().any(|c| !is_quoted(c) && !is_null(c));
        let Some(ty) = def.column(column).map(|c| &c.ty) else {
            continue;
        };
        if !mixed || matches!(ty.name.as_str(), "text" | "character varying" | "character") {
            continue;
        }
        let data_type = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&ty.assignment_cast())
            .and_then(|mut p| p.parse_data_type())
            .map_err(|e| {
                Error::internal(format!(
                    "the type of column \"{column}\" does not parse: {e}"
                ))
            })?;
        for cell in values.rows.iter_mut().filter_map(|r| r.get_mut(at)) {
            if is_quoted(cell) {
                *cell = Expr::Cast {
                    kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                    expr: Box::new(std::mem::replace(cell, Expr::value(Value::Null))),
                    data_type: data_type.clone(),
                    format: None,
                    array: false,
                };
                // The casts spelled as the statement's own were (uuid,
                // json, timestamps).
                crate::frontend::compat::typed_casts(cell);
                crate::frontend::compat::timestamp_casts(cell);
            }
        }
    }
    Ok(())
}

/// A quoted literal, whose type PostgreSQL leaves to where it is used.
fn is_quoted(cell: &Expr) -> bool {
    matches!(cell, Expr::Value(v) if matches!(
        v.value,
        Value::SingleQuotedString(_)
            | Value::EscapedStringLiteral(_)
            | Value::DollarQuotedString(_)
    ))
}

fn is_null(cell: &Expr) -> bool {
    matches!(cell, Expr::Value(v) if matches!(v.value, Value::Null))
}

/// The default expression of `column`, or NULL when it has none.
pub(super) fn default_expr(def: &crate::catalog::TableDef, column: &str) -> Result<Expr> {
    let Some(sql) = def.column(column).and_then(|c| c.default.as_deref()) else {
        return Ok(Expr::value(Value::Null));
    };
    let mut e = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| {
            Error::internal(format!(
                "the default of column \"{column}\" ({sql}) does not parse: {e}"
            ))
        })?;
    // The casts spelled as the statement's own were (see
    // `compat::planned_default`).
    crate::frontend::compat::typed_casts(&mut e);
    crate::frontend::compat::timestamp_casts(&mut e);
    Ok(e)
}

pub async fn update(session: &mut Session, up: Update) -> Result<Output> {
    use datafusion::sql::sqlparser::ast::UpdateTableFromKind;
    let from = match &up.from {
        Some(UpdateTableFromKind::AfterSet(f) | UpdateTableFromKind::BeforeSet(f)) => {
            // RETURNING reads the updated rows of the target: `*` would
            // also take the FROM list's columns in PostgreSQL.
            if up
                .returning
                .as_ref()
                .is_some_and(|items| items.iter().any(|i| matches!(i, SelectItem::Wildcard(_))))
            {
                return Err(Error::not_supported("RETURNING * of UPDATE ... FROM")
                    .with_hint("Return the target's columns (RETURNING t.*, or by name)."));
            }
            Some(
                f.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        }
        None => None,
    };
    let wc = session.write_context();
    let (name, alias) = target(&up.table)?;
    let (schema, tname, def) = session.resolve_table(&name)?;
    let target = Target::open(&wc, &schema, &tname, def, alias).await?;
    let shown = target.alias.clone().unwrap_or_else(|| target.name.clone());
    if let Some(items) = &up.returning {
        returning_exprs_of(session, &target.def, &shown, items)?;
    }
    let mut sets: Vec<(String, Expr)> = Vec::new();
    for a in &up.assignments {
        let col = target.assigned_column(&a.target, "UPDATE")?;
        if target
            .def
            .column(&col)
            .is_some_and(|c| c.generated.is_some())
        {
            // Computed from the new row by the write (see
            // `write::generated`); only DEFAULT may be given.
            if !is_default(&a.value) {
                return Err(write::generated::given_error(&col, true));
            }
        }
        if target.def.column(&col).and_then(|c| c.identity)
            == Some(crate::catalog::Identity::Always)
            && !is_default(&a.value)
        {
            return Err(Error::new(
                crate::error::ErrorKind::GeneratedAlways,
                format!("column \"{col}\" can only be updated to DEFAULT"),
            )
            .with_detail(format!(
                "Column \"{col}\" is an identity column defined as GENERATED ALWAYS."
            )));
        }
        // `SET c = DEFAULT`: the column's default (NULL without one).
        let value = if is_default(&a.value) {
            default_expr(&target.def, &col)?
        } else {
            a.value.clone()
        };
        sets.push((col, value));
    }
    let (outcome, rows) = write::update::update(
        &wc,
        &target,
        &sets,
        up.selection.as_ref(),
        from.as_deref(),
        up.returning.is_some(),
    )
    .await?;
    match (rows, &up.returning) {
        (Some(batches), Some(items)) => {
            returning(session, batches, &target, &shown, items, "UPDATE").await
        }
        _ => Ok(Output::count("UPDATE", outcome.rows)),
    }
}

pub async fn delete(session: &mut Session, mut del: Delete) -> Result<Output> {
    // `DELETE FROM t USING u WHERE c`: the rows of t for which some row of
    // u meets c, `DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE c)`.
    if let Some(using) = del.using.take() {
        let cond = del
            .selection
            .take()
            .unwrap_or(datafusion::sql::sqlparser::ast::Expr::value(
                datafusion::sql::sqlparser::ast::Value::Boolean(true),
            ));
        let mut q = crate::frontend::template::query("SELECT 1 WHERE $1", &[cond])?;
        match q.body.as_mut() {
            datafusion::sql::sqlparser::ast::SetExpr::Select(s) => s.from = using,
            _ => return Err(Error::internal("DELETE ... USING template")),
        }
        del.selection = Some(datafusion::sql::sqlparser::ast::Expr::Exists {
            subquery: q,
            negated: false,
        });
    }
    let from = match &del.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    if from.len() != 1 {
        return Err(Error::not_supported("DELETE from several tables"));
    }
    let wc = session.write_context();
    let (name, alias) = target(&from[0])?;
    let (schema, tname, def) = session.resolve_table(&name)?;
    let target = Target::open(&wc, &schema, &tname, def, alias).await?;
    let shown = target.alias.clone().unwrap_or_else(|| target.name.clone());
    if let Some(items) = &del.returning {
        returning_exprs_of(session, &target.def, &shown, items)?;
    }
    let (outcome, rows) = write::delete::delete(
        &wc,
        &target,
        del.selection.as_ref(),
        del.returning.is_some(),
    )
    .await?;
    match (rows, &del.returning) {
        (Some(batches), Some(items)) => {
            returning(session, batches, &target, &shown, items, "DELETE").await
        }
        _ => Ok(Output::count("DELETE", outcome.rows)),
    }
}

/// Evaluate a RETURNING list over the rows a statement wrote or removed.
pub(super) async fn returning(
    session: &Session,
    mut batches: Vec<RecordBatch>,
    target: &Target,
    alias: &str,
    items: &[SelectItem],
    tag: &'static str,
) -> Result<Output> {
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(target.def.arrow_schema()));
    }
    let df = session.ctx.read_batches(batches)?.alias(alias)?;
    let exprs = returning_exprs(session, &df, items)?;
    let out = df.select(exprs)?;
    let schema: SchemaRef = Arc::new(out.schema().as_arrow().clone());
    let rows = out.collect().await?;
    Output::batches(schema, rows, tag)
}

/// Plan a RETURNING list over the table `def` read as `alias`, to refuse a
/// mistake in it before the statement writes.
pub(super) fn returning_exprs_of(
    session: &Session,
    def: &crate::catalog::TableDef,
    alias: &str,
    items: &[SelectItem],
) -> Result<()> {
    let df = session
        .ctx
        .read_batch(RecordBatch::new_empty(def.arrow_schema()))?
        .alias(alias)?;
    returning_exprs(session, &df, items)?;
    Ok(())
}

/// The expressions of a RETURNING list over rows shaped like the table.
fn returning_exprs(session: &Session, df: &DataFrame, items: &[SelectItem]) -> Result<Vec<DfExpr>> {
    let mut exprs = Vec::new();
    for item in items {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                exprs.extend(df.schema().columns().into_iter().map(DfExpr::Column));
            }
            SelectItem::UnnamedExpr(e) => {
                let x = crate::frontend::generated::plan_expr(&session.ctx, e, df.schema())?;
                // Named as PostgreSQL names a select item (`t.id` is `id`).
                exprs.push(x.alias(super::names::pg_name(e)));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let x = crate::frontend::generated::plan_expr(&session.ctx, expr, df.schema())?;
                exprs.push(x.alias(normalize_ident(alias)));
            }
            other => return Err(Error::not_supported(format!("RETURNING {other}"))),
        }
    }
    Ok(exprs)
}

/// Result columns of a DML statement's RETURNING clause, for Describe.
pub async fn returning_schema(session: &Session, s: &Statement) -> Result<Option<SchemaRef>> {
    let (name, alias, items) = match s {
        Statement::Insert(i) => (
            table_name(&i.table)?.clone(),
            i.table_alias.as_ref().map(|a| normalize_ident(&a.alias)),
            &i.returning,
        ),
        Statement::Update(u) => {
            let (name, alias) = target(&u.table)?;
            (name, alias, &u.returning)
        }
        Statement::Delete(d) => match &d.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) if t.len() == 1 => {
                let (name, alias) = target(&t[0])?;
                (name, alias, &d.returning)
            }
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let Some(items) = items else { return Ok(None) };
    let (_, tname, def) = session.resolve_table(&name)?;
    let df = session
        .ctx
        .read_batch(RecordBatch::new_empty(def.arrow_schema()))?
        .alias(alias.as_deref().unwrap_or(&tname))?;
    let exprs = returning_exprs(session, &df, items)?;
    let out = df.select(exprs)?;
    Ok(Some(Arc::new(out.schema().as_arrow().clone())))
}

/// The single table a DML statement targets, with its alias.
fn target(t: &TableWithJoins) -> Result<(ObjectName, Option<String>)> {
    if !t.joins.is_empty() {
        return Err(Error::not_supported("joins in the target of UPDATE/DELETE"));
    }
    match &t.relation {
        TableFactor::Table { name, alias, .. } => Ok((
            name.clone(),
            alias.as_ref().map(|a| normalize_ident(&a.name)),
        )),
        _ => Err(Error::not_supported(
            "UPDATE/DELETE of something that is not a table",
        )),
    }
}
