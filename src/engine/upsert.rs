//! `INSERT ... ON CONFLICT (key) DO NOTHING | DO UPDATE`, as a MERGE on
//! the key columns:
//!
//! ```text
//!  INSERT INTO t AS a (cols) <source> ON CONFLICT (k) DO UPDATE SET c = excluded.c WHERE w
//!   ─▶ MERGE INTO t AS a USING (SELECT * FROM (<source>) AS s(cols)) AS excluded
//!        ON a.k = excluded.k
//!        WHEN MATCHED AND w THEN UPDATE SET c = excluded.c
//!        WHEN NOT MATCHED THEN INSERT (cols) VALUES (excluded.cols)
//! ```
//!
//! Delta tables have no unique indexes, so the listed columns are the key
//! by declaration. As in PostgreSQL, `DO NOTHING` keeps the first of
//! several incoming rows with one key (a load deduplicates), and `DO
//! UPDATE` refuses incoming rows that share a key (21000). Rows with a NULL
//! key never conflict.

use datafusion::sql::sqlparser::ast::{
    ConflictTarget, Expr, Ident, Insert, OnConflict, OnConflictAction, OnInsert, TableObject,
};

use super::{Output, Session, last_ident, normalize_ident};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::names::{quote_ident as ident, quote_list as ident_list};
use crate::write::Target;

/// Unqualified column names in `DO UPDATE` refer to the existing row;
/// those of a subquery in it are the subquery's own (`SET v = (SELECT f1
/// FROM u)` was 42P01).
fn qualify_with(mut e: Expr, alias: &str) -> Expr {
    let _ = super::names::at_level_mut(&mut e, &mut |x| {
        if let Expr::Identifier(id) = x {
            *x = Expr::CompoundIdentifier(vec![Ident::with_quote('"', alias), id.clone()]);
        }
    });
    e
}

pub async fn upsert(session: &mut Session, mut ins: Insert) -> Result<Output> {
    let Some(OnInsert::OnConflict(OnConflict {
        conflict_target,
        action,
    })) = ins.on.take()
    else {
        return Err(Error::not_supported("INSERT ... ON DUPLICATE KEY UPDATE"));
    };
    let returning = ins.returning.take();
    let keys: Vec<String> = match conflict_target {
        Some(ConflictTarget::Columns(c)) => c.iter().map(normalize_ident).collect(),
        Some(ConflictTarget::OnConstraint(_)) => {
            return Err(Error::not_supported("ON CONFLICT ON CONSTRAINT"));
        }
        None => match action {
            // DO NOTHING without a target skips a row that would break the
            // table's key: with one key, that key. Without one nothing can
            // conflict, and a key the INSERT does not set (a serial) takes
            // fresh values: a plain INSERT.
            OnConflictAction::DoNothing => {
                let TableObject::TableName(name) = &ins.table else {
                    return Err(Error::not_supported("INSERT into a table function"));
                };
                let (_, _, def) = session.resolve_table(name)?;
                let listed: Vec<String> = ins.columns.iter().map(last_ident).collect();
                let sets = |columns: &[String]| {
                    listed.is_empty() || columns.iter().all(|c| listed.contains(c))
                };
                match def.keys.as_slice() {
                    [key] if sets(&key.columns) => key.columns.clone(),
                    [_, _, ..] => {
                        return Err(Error::not_supported(
                            "ON CONFLICT DO NOTHING without a conflict target on a table with \
                             several keys",
                        )
                        .with_hint("Name the key: ON CONFLICT (column, ...) DO NOTHING."));
                    }
                    _ => {
                        ins.on = None;
                        ins.returning = returning;
                        return super::dml::insert(session, ins).await;
                    }
                }
            }
            OnConflictAction::DoUpdate(_) => {
                return Err(Error::syntax(
                    "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                )
                .with_hint("For example, ON CONFLICT (column_name)."));
            }
        },
    };
    let TableObject::TableName(name) = &ins.table else {
        return Err(Error::not_supported("INSERT into a table function"));
    };
    let wc = session.write_context();
    let (schema_name, table_name, def) = session.resolve_table(name)?;
    let target = Target::open(&wc, &schema_name, &table_name, def, None).await?;
    // With declared keys, the conflict target must be one of them, as
    // PostgreSQL wants a unique index; the others are checked by MERGE.
    if !target.def.keys.is_empty() {
        let mut wanted = keys.clone();
        wanted.sort();
        let matches = target.def.keys.iter().any(|k| {
            let mut cols = k.columns.clone();
            cols.sort();
            cols == wanted
        });
        if !matches {
            return Err(Error::new(
                ErrorKind::InvalidColumnReference,
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            ));
        }
    }
    let listed: Vec<String> = ins.columns.iter().map(last_ident).collect();
    let cols = target.target_columns(&listed)?;
    for k in &keys {
        if target.def.column(k).is_none() {
            return Err(Error::new(
                ErrorKind::UndefinedColumn,
                format!("column \"{k}\" does not exist"),
            ));
        }
        if !cols.contains(k) {
            return Err(Error::not_supported(format!(
                "ON CONFLICT on column \"{k}\", which the INSERT does not set"
            )));
        }
    }
    let Some(mut source) = ins.source.take() else {
        return Err(Error::not_supported("INSERT without VALUES or SELECT"));
    };
    super::dml::refuse_generated_always(&source, &cols, true, &target.def)?;
    super::dml::fill_defaults(&mut source, &cols, &target.def)?;
    let alias = ins
        .table_alias
        .as_ref()
        .map(|a| normalize_ident(&a.alias))
        .unwrap_or_else(|| target.name.clone());
    let col_list = ident_list(&cols);
    let key_list = ident_list(&keys);
    // The incoming rows have the target's column types, as `excluded`
    // does in PostgreSQL (`excluded.a || t.a` of an array written as
    // '{3,4}'); character types are checked where they are stored.
    let typed: Vec<String> = cols
        .iter()
        .map(|c| {
            let ty = &target.def.column(c).expect("a target column").ty;
            match ty.name.as_str() {
                "character varying" | "character" | "text" => ident(c),
                _ => format!("CAST({} AS {}) AS {}", ident(c), ty.display(), ident(c)),
            }
        })
        .collect();
    let rows = format!(
        "(SELECT {} FROM ({source}) AS __sluice_src ({col_list}))",
        typed.join(", ")
    );
    let on = keys
        .iter()
        .map(|k| format!("{}.{} = excluded.{}", ident(&alias), ident(k), ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let insert = format!(
        "WHEN NOT MATCHED THEN INSERT ({col_list}) VALUES ({})",
        cols.iter()
            .map(|c| format!("excluded.{}", ident(c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let table = format!("{name} AS {}", ident(&alias));
    // RETURNING: the rows of the key values inserted or updated, read from
    // the version the MERGE commits (see `returned_sql`).
    let returned = match &returning {
        Some(_) => {
            // A NULL in a NOT NULL key fails the write itself (23502).
            let nullable: Vec<String> = keys
                .iter()
                .filter(|k| target.def.column(k).is_some_and(|c| !c.not_null))
                .map(|k| format!("{} IS NULL", ident(k)))
                .collect();
            let nulls = format!(
                "SELECT 1 FROM {rows} AS __sluice_rows WHERE {} LIMIT 1",
                nullable.join(" OR ")
            );
            if !nullable.is_empty()
                && crate::frontend::generated::query(&session.ctx, &nulls)
                    .await?
                    .count()
                    .await?
                    > 0
            {
                return Err(Error::not_supported(
                    "INSERT ... ON CONFLICT ... RETURNING of a row whose conflict key is NULL",
                ));
            }
            let unchanged = match &action {
                OnConflictAction::DoNothing => Some(String::new()),
                OnConflictAction::DoUpdate(up) => up.selection.as_ref().map(|w| {
                    format!(
                        " AND NOT COALESCE(({}), false)",
                        qualify_with(w.clone(), &alias)
                    )
                }),
            };
            // The list is planned now: a mistake in it must fail the
            // statement before anything is committed.
            if let Some(items) = &returning {
                super::dml::returning_exprs_of(session, &target.def, &alias, items)?;
            }
            Some((target.pinned_sql(), unchanged))
        }
        None => None,
    };
    let merge_sql = match action {
        OnConflictAction::DoNothing => {
            // The first row of each key goes in; NULL keys are all distinct.
            let numbered = format!(
                "(SELECT *, row_number() OVER (PARTITION BY {key_list}) AS __sluice_n \
                 FROM {rows} AS __sluice_rows)"
            );
            let nulls = keys
                .iter()
                .map(|k| format!("{} IS NULL", ident(k)))
                .collect::<Vec<_>>()
                .join(" OR ");
            let first = format!(
                "(SELECT {col_list} FROM {numbered} AS __sluice_numbered \
                 WHERE __sluice_n = 1 OR {nulls})"
            );
            format!("MERGE INTO {table} USING {first} AS excluded ON {on} {insert}")
        }
        OnConflictAction::DoUpdate(up) => {
            let key_not_null = keys
                .iter()
                .map(|k| format!("{} IS NOT NULL", ident(k)))
                .collect::<Vec<_>>()
                .join(" AND ");
            let dup = format!(
                "SELECT 1 FROM {rows} AS __sluice_rows WHERE {key_not_null} \
                 GROUP BY {key_list} HAVING count(*) > 1 LIMIT 1"
            );
            if crate::frontend::generated::query(&session.ctx, &dup)
                .await?
                .count()
                .await?
                > 0
            {
                return Err(Error::new(
                    ErrorKind::CardinalityViolation,
                    "ON CONFLICT DO UPDATE command cannot affect row a second time",
                )
                .with_hint(
                    "Ensure that no rows proposed for insertion within the same command have \
                     duplicate constrained values.",
                ));
            }
            let sets = up
                .assignments
                .iter()
                .map(|a| format!("{} = {}", a.target, qualify_with(a.value.clone(), &alias)))
                .collect::<Vec<_>>()
                .join(", ");
            let when = up
                .selection
                .map(|w| format!(" AND ({})", qualify_with(w, &alias)))
                .unwrap_or_default();
            format!(
                "MERGE INTO {table} USING {rows} AS excluded ON {on} \
                 WHEN MATCHED{when} THEN UPDATE SET {sets} {insert}"
            )
        }
    };
    let def_after = target.def.clone();
    drop(target);
    let mut stmts = session.parse(&merge_sql)?;
    let Some(crate::frontend::Stmt::Merge(m)) = stmts.pop() else {
        return Err(Error::internal("upsert did not plan as MERGE"));
    };
    let mut m = *m;
    session.qualify_merge(&mut m)?;
    let outcome = crate::write::merge::merge(&wc, m, true).await?;
    match (returned, returning) {
        (Some(returned), Some(items)) => {
            let after = Target::open(&wc, &schema_name, &table_name, def_after, None).await?;
            let (old, unchanged) = returned;
            let new = after.pinned_sql_at(outcome.version);
            let sql = returned_sql(&old, &new, &alias, &keys, &rows, &on, unchanged);
            let rows = crate::frontend::generated::query(&session.ctx, &sql)
                .await?
                .collect()
                .await?;
            super::dml::returning(session, rows, &after, &alias, &items, "INSERT 0").await
        }
        _ => Ok(Output::count("INSERT", outcome.rows)),
    }
}

/// The rows an upsert inserted or updated, in the order of the incoming
/// rows: the rows of the `new` version whose key an incoming row has, but
/// for the keys the `old` version had and the statement left as they were
/// (`unchanged`: all of them for `DO NOTHING` (""), those whose `DO UPDATE
/// ... WHERE` fails).
fn returned_sql(
    old: &str,
    new: &str,
    alias: &str,
    keys: &[String],
    rows: &str,
    on: &str,
    unchanged: Option<String>,
) -> String {
    let a = ident(alias);
    let key_list = ident_list(keys);
    let matched = keys
        .iter()
        .map(|k| format!("{a}.{k} = __sluice_in.{k}", k = ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let kept = unchanged
        .map(|cond| {
            format!(
                " WHERE NOT EXISTS (SELECT 1 FROM {old} AS {a} JOIN {rows} AS excluded ON {on} \
                 WHERE {matched}{cond})"
            )
        })
        .unwrap_or_default();
    format!(
        "SELECT {a}.* FROM {new} AS {a} JOIN (SELECT {key_list}, min(__sluice_n) AS __sluice_n \
         FROM (SELECT *, row_number() OVER () AS __sluice_n FROM {rows} AS __sluice_rows) AS __sluice_numbered \
         GROUP BY {key_list}) AS __sluice_in ON {matched}{kept} ORDER BY __sluice_in.__sluice_n"
    )
}
