//! References to the rows a write removes: foreign keys of other tables
//! (and of the table itself) and their ON DELETE actions.

use datafusion::sql::sqlparser::ast::Statement;

use super::{Target, WriteContext, delete::delete_statement, update::update_statement};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::names::quote_ident as ident;
use crate::quality::keys::ForeignKeyChecks;

/// The foreign keys of all tables (`schema.table` itself included) that
/// point at `schema.table`: (child schema, child table, the foreign key).
pub fn referencing(
    wc: &WriteContext,
    schema: &str,
    table: &str,
) -> Vec<(String, String, crate::quality::keys::ForeignKeyDef)> {
    wc.catalog
        .snapshot()
        .referencing(schema, table)
        .iter()
        .map(|(child, fk)| (child.schema.clone(), child.name.clone(), fk.clone()))
        .collect()
}

/// Before rows of `target` go (`gone`: a query for their old values, in
/// the table's columns), what references them: when the rows are deleted
/// (`deleted`) and the foreign key says ON DELETE CASCADE / SET NULL / SET
/// DEFAULT, a statement on the child deletes or changes the referencing
/// rows; otherwise a referencing row stops the statement (23503). Every
/// reference that stops the statement, and every SET NULL that a NOT NULL
/// column refuses (23502), is found before any action commits.
pub async fn delete_references(
    wc: &WriteContext,
    target: &Target,
    gone: &str,
    deleted: bool,
) -> Result<()> {
    use crate::quality::keys::SetOnDelete;
    let refs = target.referenced_by(wc);
    let mut actions = Vec::new();
    for (schema, child, fk) in refs {
        let on = fk.join_on("__gone", "__child");
        let child_name = format!("{}.{}", ident(&schema), ident(&child));
        let child_def = wc
            .catalog
            .snapshot()
            .relation(&schema, &child)
            .cloned()
            .ok_or_else(|| Error::internal(format!("no table {child}")))?
            .table_def()?;
        let itself = schema == target.schema && child == target.name;
        let mut referencing = format!("EXISTS (SELECT 1 FROM ({gone}) AS __gone WHERE {on})");
        if itself && deleted && !(fk.cascade || fk.on_delete_set.is_some()) {
            // As PostgreSQL checks at the end of the statement: a row that
            // goes in the same DELETE refers to nothing afterwards. Rows
            // are told apart by the primary key, else by all columns.
            let same: Vec<String> = child_def
                .keys
                .iter()
                .find(|k| k.primary)
                .map(|k| k.columns.clone())
                .unwrap_or_else(|| child_def.column_names())
                .iter()
                .map(|c| format!("__self.{c} IS NOT DISTINCT FROM __child.{c}", c = ident(c)))
                .collect();
            referencing = format!(
                "{referencing} AND NOT EXISTS (SELECT 1 FROM ({gone}) AS __self WHERE {})",
                same.join(" AND ")
            );
        }
        let first_referencing = |cols: &[String]| {
            let list = cols
                .iter()
                .map(|c| format!("__child.{}", ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT {list} FROM {child_name} AS __child WHERE {referencing} LIMIT 1")
        };
        // Nothing refers to the rows that go: no action, no error.
        let Some(key) =
            crate::quality::keys::first_row(&wc.ctx, &first_referencing(&fk.columns)).await?
        else {
            continue;
        };
        let acts = deleted && (fk.cascade || fk.on_delete_set.is_some());
        if !acts {
            return Err(Error::new(
                ErrorKind::ForeignKeyViolation,
                format!(
                    "update or delete on table \"{}\" violates foreign key constraint \"{}\" \
                     on table \"{child}\"",
                    target.name, fk.name
                ),
            )
            .with_detail(format!(
                "Key ({})=({key}) is still referenced from table \"{child}\".",
                fk.parent_columns.join(", ")
            ))
            .with_table(&child, None)
            .with_constraint(&fk.name));
        }
        // The action on a table that references itself would start over on
        // the rows it acts on, before they are gone.
        if itself {
            return Err(Error::not_supported(format!(
                "deleting rows of \"{child}\" that rows of the same table reference \
                 through ON DELETE CASCADE / SET NULL / SET DEFAULT (\"{}\")",
                fk.name
            )));
        }
        let action = match fk.on_delete_set {
            None => format!("DELETE FROM {child_name} AS __child WHERE {referencing}"),
            Some(set) => {
                // (column, value) for SET NULL / SET DEFAULT
                let mut list = Vec::new();
                for c in &fk.columns {
                    let value = match set {
                        SetOnDelete::Default => child_def.column(c).and_then(|d| d.default.clone()),
                        SetOnDelete::Null => None,
                    };
                    if value.is_none() && child_def.column(c).is_some_and(|d| d.not_null) {
                        return Err(Error::new(
                            ErrorKind::NotNullViolation,
                            format!(
                                "null value in column \"{c}\" of relation \"{child}\" violates \
                                 not-null constraint"
                            ),
                        ));
                    }
                    list.push(format!(
                        "{} = {}",
                        ident(c),
                        value.as_deref().unwrap_or("NULL")
                    ));
                }
                format!(
                    "UPDATE {child_name} AS __child SET {} WHERE {referencing}",
                    list.join(", ")
                )
            }
        };
        actions.push(action);
    }
    // The actions: statements on the children, with the children's own
    // rules, each its own commit before the parent's.
    for sql in actions {
        let mut stmts = crate::frontend::parse(&sql)?;
        match stmts.pop() {
            Some(crate::frontend::Stmt::Sql(stmt)) => match *stmt {
                Statement::Delete(d) => Box::pin(delete_statement(wc, d)).await?,
                Statement::Update(u) => Box::pin(update_statement(wc, u)).await?,
                _ => return Err(Error::internal("ON DELETE action did not plan")),
            },
            _ => return Err(Error::internal("ON DELETE action did not plan")),
        };
    }
    Ok(())
}
