//! `CREATE [UNIQUE] INDEX` and `DROP INDEX`. A Delta table has no index
//! structures (a scan skips files by their column statistics), but the
//! tools that manage schemas create and drop indexes as a matter of
//! course (ORM `create_all`, Alembic and Django migrations, dbt hooks):
//!
//! - a plain index is recorded on its table, listed where PostgreSQL
//!   lists indexes (`pg_indexes`, `pg_index`, psql's `\di` and `\d`) and
//!   dropped with `DROP INDEX` or its table;
//! - a unique index is enforced: it is a key of the index's name, checked
//!   against the rows already there when it is created and on every
//!   write after, as a UNIQUE constraint is.

use datafusion::sql::sqlparser::ast::{CreateIndex, ObjectName};

use super::ddl::{add_key, new_key, save_def};
use super::{Output, Session};
use crate::catalog::rules::IndexDef;
use crate::catalog::{Kind, TableDef};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::names::name_parts;

/// Whether an index or key of that name exists in `schema` (index and
/// key names share the namespace of relations).
fn index_name_taken(session: &Session, schema: &str, name: &str) -> bool {
    let snapshot = session.engine.catalog.snapshot();
    snapshot.relation(schema, name).is_some()
        || snapshot
            .objects()
            .iter()
            .filter(|o| o.schema == schema && o.kind() == Kind::Table)
            .filter_map(|o| o.table_def().ok())
            .any(|d| {
                d.keys.iter().any(|k| k.name == name) || d.indexes.iter().any(|i| i.name == name)
            })
}

/// PostgreSQL's name for an index created without one: `t_a_b_idx`,
/// numbered when taken.
fn generated_name(session: &Session, schema: &str, table: &str, columns: &[String]) -> String {
    let base = format!("{table}_{}_idx", columns.join("_"));
    let mut name = base.clone();
    let mut n = 0;
    while index_name_taken(session, schema, &name) {
        n += 1;
        name = format!("{base}{n}");
    }
    name
}

pub async fn create_index(session: &mut Session, ci: CreateIndex) -> Result<Output> {
    // A partial unique index would make rows unique among those it
    // covers only: not a key Sluice can enforce yet.
    if ci.unique && ci.predicate.is_some() {
        return Err(Error::not_supported(
            "a partial unique index (CREATE UNIQUE INDEX ... WHERE)",
        ));
    }
    let (schema, table) = session.qualify(&ci.table_name)?;
    let entry = match session.catalog_entry(&schema, &table) {
        Some(e) if e.kind() == Kind::Table => e,
        Some(_) => {
            return Err(Error::new(
                ErrorKind::WrongObjectType,
                format!("\"{table}\" is not a table"),
            ));
        }
        None => {
            return Err(Error::new(
                ErrorKind::UndefinedTable,
                format!("relation \"{table}\" does not exist"),
            ));
        }
    };
    let mut def: TableDef = entry.table_def()?.as_ref().clone();
    let (columns, expressions, named) = index_elements(session, &def, &ci)?;
    if let Some(c) = columns.iter().find(|c| def.column(c).is_none()) {
        return Err(Error::new(
            ErrorKind::UndefinedColumn,
            format!("column \"{c}\" does not exist"),
        ));
    }
    let name = match &ci.name {
        Some(n) => {
            let parts = name_parts(n);
            let name = parts.last().cloned().unwrap_or_default();
            if index_name_taken(session, &schema, &name) {
                if ci.if_not_exists {
                    session.notice(format!("relation \"{name}\" already exists, skipping"));
                    return Ok(Output::command("CREATE INDEX"));
                }
                return Err(Error::new(
                    ErrorKind::DuplicateTable,
                    format!("relation \"{name}\" already exists"),
                ));
            }
            name
        }
        None => generated_name(session, &schema, &table, &named),
    };
    if ci.unique {
        let key = new_key(&def, &table, Some(name.clone()), columns.clone(), false)?;
        let lake = session.engine.lake().clone();
        let delta = lake.table(&lake.url_for(&def.location)?).await?;
        crate::quality::keys::validate_existing(delta, &table, &key).await?;
        add_key(&mut def, key);
    }
    def.indexes.push(IndexDef {
        name,
        columns,
        unique: ci.unique,
        predicate: ci.predicate.as_ref().map(|p| p.to_string()),
        expressions,
    });
    save_def(session, &schema, &table, def, None).await?;
    Ok(Output::command("CREATE INDEX"))
}

/// The elements of an index: the columns it reads, its elements as
/// written when one is an expression (none otherwise), and the names
/// PostgreSQL names a new index after (a column's, an expression's
/// function's or `expr`). An expression must plan over the table's
/// columns; a unique index on one is 0A000 (not a key Sluice enforces).
fn index_elements(
    session: &Session,
    def: &TableDef,
    ci: &CreateIndex,
) -> Result<(Vec<String>, Vec<String>, Vec<String>)> {
    use datafusion::sql::sqlparser::ast::Expr;
    // `((a))` is the column `a`, as in PostgreSQL.
    let element = |e: &Expr| -> Expr {
        let mut e = e.clone();
        while let Expr::Nested(inner) = e {
            e = *inner;
        }
        e
    };
    let elements: Vec<Expr> = ci.columns.iter().map(|c| element(&c.column.expr)).collect();
    if elements.iter().all(|e| matches!(e, Expr::Identifier(_))) {
        let columns: Vec<String> = elements
            .iter()
            .map(|e| match e {
                Expr::Identifier(id) => crate::frontend::names::normalize_ident(id),
                _ => unreachable!("identifiers only"),
            })
            .collect();
        return Ok((columns.clone(), vec![], columns));
    }
    if ci.unique {
        return Err(Error::not_supported(
            "a unique index on an expression (CREATE UNIQUE INDEX ... ((expression)))",
        ));
    }
    let schema = datafusion::common::DFSchema::try_from(def.arrow_schema().as_ref().clone())?;
    let (mut columns, mut expressions, mut named) = (vec![], vec![], Vec::<String>::new());
    for e in &elements {
        let planned =
            crate::frontend::generated::plan_text(session.context(), &e.to_string(), &schema)?;
        let volatile = crate::tree::exists(&planned, |x| {
            Ok(
                matches!(x, datafusion::logical_expr::Expr::ScalarFunction(f)
                if f.func.signature().volatility != datafusion::logical_expr::Volatility::Immutable),
            )
        })?;
        if volatile {
            return Err(Error::new(
                ErrorKind::InvalidObjectDefinition,
                "functions in index expression must be marked IMMUTABLE",
            ));
        }
        for col in crate::write::generated::columns_read(e) {
            if !columns.contains(&col) {
                columns.push(col);
            }
        }
        // As written; pg_get_indexdef puts any expression but a column or
        // a function call in parentheses.
        expressions.push(match e {
            Expr::Identifier(_) | Expr::Function(_) => e.to_string(),
            // An operator prints in parentheses of its own.
            Expr::BinaryOp { .. } | Expr::UnaryOp { .. } => format!("(({e}))"),
            _ => format!("({e})"),
        });
        // Named after the column or function, numbered when repeated
        // (`lower`, `lower1`), as PostgreSQL names a new index.
        let base = match e {
            Expr::Identifier(id) => crate::frontend::names::normalize_ident(id),
            Expr::Function(f) => f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(crate::frontend::names::normalize_ident)
                .unwrap_or_else(|| "expr".into()),
            _ => "expr".into(),
        };
        let mut name = base.clone();
        let mut n = 0;
        while named.contains(&name) {
            n += 1;
            name = format!("{base}{n}");
        }
        named.push(name);
    }
    Ok((columns, expressions, named))
}

/// The schema and table holding index `name` (qualified, or found along
/// the search path), and its definition.
fn find_index(session: &Session, name: &ObjectName) -> Option<(String, String, TableDef)> {
    let parts = name_parts(name);
    let (schemas, index) = match parts.as_slice() {
        [schema, index] => (vec![schema.clone()], index.clone()),
        [index] => (session.settings.search_path(), index.clone()),
        _ => return None,
    };
    let snapshot = session.engine.catalog.snapshot();
    for schema in schemas {
        for o in snapshot
            .objects()
            .iter()
            .filter(|o| o.schema == schema && o.kind() == Kind::Table)
        {
            let Ok(def) = o.table_def() else { continue };
            if def.indexes.iter().any(|i| i.name == index)
                || def.keys.iter().any(|k| k.name == index)
            {
                return Some((schema, o.name.clone(), def.as_ref().clone()));
            }
        }
    }
    None
}

pub async fn drop_indexes(
    session: &mut Session,
    if_exists: bool,
    names: Vec<ObjectName>,
) -> Result<Output> {
    for n in &names {
        let index = name_parts(n).last().cloned().unwrap_or_default();
        let Some((schema, table, mut def)) = find_index(session, n) else {
            if if_exists {
                session.notice(format!("index \"{index}\" does not exist, skipping"));
                continue;
            }
            return Err(Error::new(
                ErrorKind::UndefinedObject,
                format!("index \"{index}\" does not exist"),
            ));
        };
        let Some(at) = def.indexes.iter().position(|i| i.name == index) else {
            // A key's index goes with its constraint only.
            return Err(Error::new(
                ErrorKind::DependentObjects,
                format!(
                    "cannot drop index {index} because constraint {index} on table {table} \
                     requires it"
                ),
            )
            .with_hint(format!(
                "You can drop constraint {index} on table {table} instead."
            )));
        };
        let dropped = def.indexes.remove(at);
        if dropped.unique {
            let referenced = session
                .engine
                .catalog
                .snapshot()
                .objects()
                .iter()
                .filter_map(|o| o.table_def().ok())
                .any(|d| {
                    d.foreign_keys.iter().any(|fk| {
                        fk.parent_schema == schema && fk.parent_table == table && {
                            let mut a = fk.parent_columns.clone();
                            let mut b = dropped.columns.clone();
                            a.sort();
                            b.sort();
                            a == b
                        }
                    })
                });
            if referenced {
                return Err(Error::new(
                    ErrorKind::DependentObjects,
                    format!("cannot drop index {index} because other objects depend on it"),
                )
                .with_hint("Drop the foreign keys that reference it first."));
            }
            def.keys.retain(|k| k.name != index);
        }
        save_def(session, &schema, &table, def, None).await?;
    }
    Ok(Output::command("DROP INDEX"))
}
