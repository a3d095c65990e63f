//! `ALTER TABLE ... DROP COLUMN`, `ALTER COLUMN ... TYPE` and `ALTER
//! COLUMN ... SET | DROP NOT NULL`: the migrations tools write. A Delta
//! table without column mapping keeps its schema in its data files, so
//! each of these rewrites the table in one overwrite commit that replaces
//! the schema (see [`crate::write::Target::reshape`]): every row passes the
//! table's rules again, and a row that cannot be converted fails the
//! statement with nothing changed. `SET NOT NULL` only checks the rows.

use datafusion::sql::sqlparser::ast::{DataType, Expr, Ident};

use super::ddl::{save_def, store_checks, unstore_checks};
use super::{Output, Session, normalize_ident};
use crate::catalog::{Kind, PgType, TableDef};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::names::quote_ident as ident;

/// The column `col` of table `name`, or PostgreSQL's 42703.
fn column_of<'a>(
    def: &'a TableDef,
    name: &str,
    col: &str,
) -> Result<&'a crate::catalog::ColumnDef> {
    def.column(col).ok_or_else(|| {
        Error::new(
            ErrorKind::UndefinedColumn,
            format!("column \"{col}\" of relation \"{name}\" does not exist"),
        )
    })
}

/// Whether `stmt` (a query or an expression) names the column `col`.
fn names_column(stmt: &impl datafusion::sql::sqlparser::ast::Visit, col: &str) -> bool {
    crate::visit::visit_expressions(stmt, |e| match e {
        Expr::Identifier(i) if normalize_ident(i) == col => std::ops::ControlFlow::Break(()),
        Expr::CompoundIdentifier(parts)
            if parts.last().is_some_and(|i| normalize_ident(i) == col) =>
        {
            std::ops::ControlFlow::Break(())
        }
        _ => std::ops::ControlFlow::Continue(()),
    })
    .is_break()
}

/// Whether the condition text `expr` names one of `columns`.
pub(super) fn mentions(expr: &str, columns: &[String]) -> bool {
    match crate::frontend::generated::expr(expr) {
        Ok(e) => columns.iter().any(|c| names_column(&e, c)),
        Err(_) => true,
    }
}

/// Whether a select list of `stmt` is `*` or `t.*` (a view stores the
/// columns it had; `count(*)` and `a * b` are no such list).
fn reads_every_column(stmt: &datafusion::sql::sqlparser::ast::Statement) -> bool {
    use datafusion::sql::sqlparser::ast::{Query, SelectItem, SetExpr, Visitor};
    struct Star;
    impl Visitor for Star {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> std::ops::ControlFlow<()> {
            match q.body.as_ref() {
                SetExpr::Select(s)
                    if s.projection.iter().any(|i| {
                        matches!(
                            i,
                            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                        )
                    }) =>
                {
                    std::ops::ControlFlow::Break(())
                }
                _ => std::ops::ControlFlow::Continue(()),
            }
        }
    }
    crate::visit::walk(stmt, &mut Star).is_break()
}

/// The views that read `schema.name` and may read its column `col` (a
/// view whose query names it, or reads `*`; any other dependent).
pub(super) fn views_reading(session: &Session, schema: &str, name: &str, col: &str) -> Vec<String> {
    let snapshot = session.engine.catalog.snapshot();
    snapshot
        .dependents(schema, name)
        .into_iter()
        .filter(|o| o.kind() != Kind::Table)
        .filter(|o| {
            let crate::catalog::Def::View(view) = &o.def else {
                return true;
            };
            // A `*` reads the columns the view had when created only.
            let kept = || view.columns.is_empty() || view.columns.iter().any(|c| c.name == col);
            match crate::frontend::generated::statement(&view.sql) {
                Ok(stmt) => names_column(&stmt, col) || (reads_every_column(&stmt) && kept()),
                Err(_) => true,
            }
        })
        .map(|o| o.name.clone())
        .collect()
}

fn depends_error(what: &str, col: &str, name: &str, views: &[String]) -> Error {
    Error::new(
        ErrorKind::DependentObjects,
        format!("cannot {what} column {col} of table {name} because other objects depend on it"),
    )
    .with_detail(format!(
        "view {} depends on column {col} of table {name}",
        views[0]
    ))
}

/// Rewrite `schema.name` (now `old`) as `new`, each row the select list
/// `list` filling the columns `targets`; the Delta copies of the CHECKs
/// `checks_out` go before and come back after (those `new` keeps). Its
/// quarantine table follows.
async fn rewrite(
    session: &mut Session,
    (schema, name): (&str, &str),
    old: std::sync::Arc<TableDef>,
    new: TableDef,
    (list, targets): (&str, &[String]),
    checks_out: &[String],
) -> Result<()> {
    if !checks_out.is_empty() {
        unstore_checks(session, &old, checks_out).await?;
    }
    let wc = session.write_context();
    let target = crate::write::Target::open(&wc, schema, name, old, None).await?;
    let written = target
        .reshape(&wc, std::sync::Arc::new(new.clone()), list, targets)
        .await?;
    session.engine.lake().committed(&written).await;
    let back: Vec<&crate::quality::CheckDef> = new
        .checks
        .iter()
        .filter(|c| checks_out.contains(&c.name))
        .collect();
    store_checks(session, &new, &back).await?;
    save_def(session, schema, name, new.clone(), None).await?;
    Box::pin(sync_quarantine(session, schema, name, &new)).await
}

pub async fn drop_columns(
    session: &mut Session,
    (schema, name): (&str, &str),
    old: std::sync::Arc<TableDef>,
    columns: &[Ident],
    if_exists: bool,
    cascade: bool,
) -> Result<Output> {
    let mut def = old.as_ref().clone();
    let mut gone = Vec::new();
    let listed: Vec<String> = columns.iter().map(normalize_ident).collect();
    // The columns named, then the generated columns computed from them,
    // which go with them under CASCADE: each is checked alike.
    let mut dropping: Vec<String> = Vec::new();
    for col in &listed {
        if def.column(col).is_none() {
            if if_exists {
                session.notice(format!(
                    "column \"{col}\" of relation \"{name}\" does not exist, skipping"
                ));
                continue;
            }
            column_of(&def, name, col)?;
        }
        dropping.push(col.clone());
    }
    for col in dropping.clone() {
        let readers: Vec<String> = super::generated_columns::reading(&def, &col)
            .into_iter()
            .filter(|g| !listed.contains(g))
            .collect();
        if !readers.is_empty() && !cascade {
            return Err(Error::new(
                ErrorKind::DependentObjects,
                format!(
                    "cannot drop column {col} of table {name} because other objects depend on it"
                ),
            )
            .with_detail(
                readers
                    .iter()
                    .map(|g| {
                        format!(
                            "column {g} of table {name} depends on column {col} of table {name}"
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
            .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
        }
        for g in readers {
            if !dropping.contains(&g) {
                session.notice(format!("drop cascades to column {g} of table {name}"));
                dropping.push(g);
            }
        }
    }
    for col in dropping {
        if def.partition_by.contains(&col) {
            return Err(Error::not_supported(format!(
                "dropping the partition column \"{col}\""
            )));
        }
        let views = views_reading(session, schema, name, &col);
        if !views.is_empty() {
            if !cascade {
                return Err(depends_error("drop", &col, name, &views)
                    .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
            }
            for v in &views {
                session.notice(format!("drop cascades to view {v}"));
            }
            let names = views
                .iter()
                .map(|v| {
                    datafusion::sql::sqlparser::ast::ObjectName::from(vec![
                        crate::frontend::names::quoted(schema),
                        crate::frontend::names::quoted(v),
                    ])
                })
                .collect();
            Box::pin(super::ddl::drop(
                session,
                datafusion::sql::sqlparser::ast::ObjectType::View,
                true,
                names,
                true,
            ))
            .await?;
        }
        // Another table's foreign key on a key with this column.
        let referenced = crate::write::referencing(&session.write_context(), schema, name)
            .into_iter()
            .find(|(_, _, fk)| fk.parent_columns.contains(&col));
        if let Some((_, child, fk)) = referenced {
            return Err(Error::new(
                ErrorKind::DependentObjects,
                format!(
                    "cannot drop column {col} of table {name} because other objects depend on it"
                ),
            )
            .with_detail(format!(
                "constraint {} on table {child} depends on column {col} of table {name}",
                fk.name
            ))
            .with_hint("Drop the foreign key first."));
        }
        gone.push(col);
    }
    if gone.is_empty() {
        return Ok(Output::command("ALTER TABLE"));
    }
    if def.columns.iter().all(|c| gone.contains(&c.name)) {
        return Err(Error::not_supported("dropping every column of a table"));
    }
    // Constraints and indexes that involve a dropped column go with it.
    let involves = |cols: &[String]| cols.iter().any(|c| gone.contains(c));
    let mentions = |expr: &str| mentions(expr, &gone);
    let checks_out: Vec<String> = def
        .checks
        .iter()
        .filter(|c| mentions(&c.expr))
        .map(|c| c.name.clone())
        .collect();
    def.checks.retain(|c| !checks_out.contains(&c.name));
    def.keys.retain(|k| !involves(&k.columns));
    def.indexes
        .retain(|i| !involves(&i.columns) && !i.predicate.as_deref().is_some_and(&mentions));
    def.foreign_keys.retain(|f| !involves(&f.columns));
    def.expectations.retain(|e| !mentions(&e.expr));
    def.columns.retain(|c| !gone.contains(&c.name));
    let targets = def.column_names();
    let list: Vec<String> = targets.iter().map(|c| ident(c)).collect();
    rewrite(
        session,
        (schema, name),
        old,
        def,
        (&list.join(", "), &targets),
        &checks_out,
    )
    .await?;
    Ok(Output::command("ALTER TABLE"))
}

pub async fn set_type(
    session: &mut Session,
    (schema, name): (&str, &str),
    old: std::sync::Arc<TableDef>,
    col: &str,
    data_type: &DataType,
    using: Option<&Expr>,
) -> Result<Output> {
    let mut def = old.as_ref().clone();
    column_of(&def, name, col)?;
    if def.partition_by.iter().any(|p| p == col) {
        return Err(Error::not_supported(format!(
            "changing the type of the partition column \"{col}\""
        )));
    }
    if !views_reading(session, schema, name, col).is_empty() {
        return Err(Error::not_supported(
            "cannot alter type of a column used by a view or rule",
        ));
    }
    let ty = PgType::from_sql(data_type)?;
    // Without USING the values convert as an assignment would: text
    // becomes another type only when told how.
    let text = |t: &PgType| matches!(t.name.as_str(), "text" | "character varying" | "character");
    let was = column_of(&def, name, col)?.ty.clone();
    if using.is_none() && text(&was) && !text(&ty) {
        return Err(Error::new(
            ErrorKind::DatatypeMismatch,
            format!(
                "column \"{col}\" cannot be cast automatically to type {}",
                ty.display()
            ),
        )
        .with_hint(format!(
            "You might need to specify \"USING {col}::{}\".",
            ty.display()
        )));
    }
    let value = match using {
        Some(e) => e.to_string(),
        None => ident(col),
    };
    let cast_to = ty.assignment_cast();
    let checks_out: Vec<String> = def
        .checks
        .iter()
        .filter(|c| mentions(&c.expr, &[col.to_string()]))
        .map(|c| c.name.clone())
        .collect();
    for c in def.columns.iter_mut().filter(|c| c.name == col) {
        c.ty = ty.clone();
    }
    let targets = def.column_names();
    let list: Vec<String> = targets
        .iter()
        .map(|c| {
            if c == col {
                format!("CAST(({value}) AS {cast_to}) AS {}", ident(c))
            } else {
                ident(c)
            }
        })
        .collect();
    rewrite(
        session,
        (schema, name),
        old,
        def,
        (&list.join(", "), &targets),
        &checks_out,
    )
    .await?;
    Ok(Output::command("ALTER TABLE"))
}

pub async fn set_not_null(
    session: &mut Session,
    (schema, name): (&str, &str),
    old: std::sync::Arc<TableDef>,
    col: &str,
    not_null: bool,
) -> Result<Output> {
    let mut def = old.as_ref().clone();
    let column = column_of(&def, name, col)?;
    if column.not_null == not_null {
        return Ok(Output::command("ALTER TABLE"));
    }
    if !not_null
        && def
            .keys
            .iter()
            .any(|k| k.primary && k.columns.iter().any(|c| c == col))
    {
        return Err(Error::new(
            ErrorKind::InvalidTableDefinition,
            format!("column \"{col}\" is in a primary key"),
        ));
    }
    for c in def.columns.iter_mut().filter(|c| c.name == col) {
        c.not_null = not_null;
    }
    if not_null {
        // The rows already there must have a value: checked, not rewritten.
        let wc = session.write_context();
        let target = crate::write::Target::open(&wc, schema, name, old, None).await?;
        let any = crate::frontend::generated::query(
            &wc.ctx,
            &format!(
                "SELECT 1 FROM ({}) AS __sluice_rows WHERE {} IS NULL LIMIT 1",
                target.select_sql(&ident(col), None),
                ident(col)
            ),
        )
        .await?
        .count()
        .await?;
        if any > 0 {
            return Err(Error::new(
                ErrorKind::NotNullViolation,
                format!("column \"{col}\" of relation \"{name}\" contains null values"),
            ));
        }
        save_def(session, schema, name, def, None).await?;
    } else {
        // The Delta schema says the column has a value: rewritten with
        // one that allows none.
        let targets = def.column_names();
        let list: Vec<String> = targets.iter().map(|c| ident(c)).collect();
        rewrite(
            session,
            (schema, name),
            old,
            def,
            (&list.join(", "), &targets),
            &[],
        )
        .await?;
    }
    Ok(Output::command("ALTER TABLE"))
}

/// The quarantine table of `schema.table` in step with the table's columns
/// `def` (after ADD, DROP or ALTER COLUMN): its columns are the table's,
/// nullable and without rules, then its own two. Rows kept there keep
/// their values where a column stays, converted where its type changed
/// (NULL where one cannot be), NULL in a new column.
pub(super) async fn sync_quarantine(
    session: &mut Session,
    schema: &str,
    table: &str,
    def: &TableDef,
) -> Result<()> {
    use crate::quality::expect::{BROKEN_RULES, QUARANTINED_AT, quarantine_table, quarantines};
    if !quarantines(def) {
        return Ok(());
    }
    let qname = quarantine_table(table);
    let Some(entry) = session.catalog_entry(schema, &qname) else {
        return Ok(());
    };
    let old = entry.table_def()?;
    let mut columns: Vec<crate::catalog::ColumnDef> = def
        .columns
        .iter()
        .map(super::ddl::quarantine_column)
        .collect();
    for own in [BROKEN_RULES, QUARANTINED_AT] {
        if let Some(c) = old.column(own) {
            columns.push(c.clone());
        }
    }
    if columns == old.columns {
        return Ok(());
    }
    let mut qdef = old.as_ref().clone();
    qdef.columns = columns;
    let mut targets = Vec::new();
    let mut list = Vec::new();
    for c in &qdef.columns {
        match old.column(&c.name) {
            Some(o) if o.ty == c.ty => list.push(ident(&c.name)),
            Some(_) => list.push(format!(
                "TRY_CAST({} AS {}) AS {}",
                ident(&c.name),
                c.ty.assignment_cast(),
                ident(&c.name)
            )),
            None => continue,
        }
        targets.push(c.name.clone());
    }
    rewrite(
        session,
        (schema, &qname),
        old,
        qdef,
        (&list.join(", "), &targets),
        &[],
    )
    .await
}
