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
//! The MERGE is built as a syntax tree: the statement's source, values and
//! conditions go in as the client wrote them, around fixed templates of
//! the table's own names (`frontend::template`); nothing of the client's
//! is printed as SQL and read again.
//!
//! Delta tables have no unique indexes, so the listed columns are the key
//! by declaration. As in PostgreSQL, `DO NOTHING` keeps the first of
//! several incoming rows with one key (a load deduplicates), and `DO
//! UPDATE` refuses incoming rows that share a key (21000). Rows with a NULL
//! key never conflict.

use datafusion::sql::sqlparser::ast::{
    Assignment, BinaryOperator, ConflictTarget, Expr, Ident, Insert, OnConflict, OnConflictAction,
    OnInsert, Query, TableFactor, TableObject,
};

use super::{Output, Session, last_ident, normalize_ident};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::merge::{MergeAction, MergeWhen, WhenKind};
use crate::frontend::names::{quote_ident as ident, quote_list as ident_list};
use crate::frontend::{generated, template};
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

pub async fn upsert(
    session: &mut Session,
    mut ins: Insert,
    overriding: Option<crate::frontend::Overriding>,
) -> Result<Output> {
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
            // DO NOTHING without a target skips a row that would break a
            // key of the table. A key the INSERT does not set (a serial)
            // takes fresh values and cannot conflict: with one key it
            // sets, that key; with none, a plain INSERT.
            OnConflictAction::DoNothing => {
                let TableObject::TableName(name) = &ins.table else {
                    return Err(Error::not_supported("INSERT into a table function"));
                };
                let (_, _, def) = session.resolve_table(name)?;
                let listed: Vec<String> = ins.columns.iter().map(last_ident).collect();
                let set = |c: &String| listed.is_empty() || listed.contains(c);
                let touched: Vec<_> = def
                    .keys
                    .iter()
                    .filter(|k| k.columns.iter().any(set))
                    .collect();
                match touched.as_slice() {
                    [key] if key.columns.iter().all(set) => key.columns.clone(),
                    [_, ..] => {
                        return Err(Error::not_supported(
                            "ON CONFLICT DO NOTHING without a conflict target, where the \
                             INSERT sets more than one key of the table or part of one",
                        )
                        .with_hint("Name the key: ON CONFLICT (column, ...) DO NOTHING."));
                    }
                    _ => {
                        ins.on = None;
                        ins.returning = returning;
                        return super::dml::insert(session, ins, overriding).await;
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
    super::dml::refuse_generated_always(&source, &cols, true, &target.def, overriding, None)?;
    super::dml::resolve_values(&mut source, &cols, &target.def)?;
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
    let mut typed: Vec<String> = cols
        .iter()
        .map(|c| {
            let ty = &target.def.column(c).expect("a target column").ty;
            match ty.name.as_str() {
                "character varying" | "character" | "text" => ident(c),
                _ => format!("CAST({} AS {}) AS {}", ident(c), ty.display(), ident(c)),
            }
        })
        .collect();
    // A column the INSERT does not set, whose default a generated column
    // reads, takes its default in the incoming rows, once (`nextval`): the
    // MERGE inserts it as given.
    let mut inserted = cols.clone();
    for c in &target.def.columns {
        let read = target.def.columns.iter().any(|g| {
            g.generated
                .as_deref()
                .is_some_and(|e| crate::write::generated::reads(e, &c.name))
        });
        if read && c.default.is_some() && c.generated.is_none() && !cols.contains(&c.name) {
            let default = super::dml::default_expr(&target.def, &c.name)?;
            typed.push(format!(
                "CAST(({default}) AS {}) AS {}",
                c.ty.display(),
                ident(&c.name)
            ));
            inserted.push(c.name.clone());
        }
    }
    let inserted_list = ident_list(&inserted);
    let mut rows = *template::query_of(
        &format!(
            "SELECT {} FROM {} AS __sluice_src ({col_list})",
            typed.join(", "),
            template::relation(1)
        ),
        &[],
        &[*source],
    )?;
    // `excluded` holds the generated columns of the proposed row too,
    // computed over the incoming columns.
    if target.def.columns.iter().any(|c| c.generated.is_some()) {
        let mut names = inserted.clone();
        let mut values: Vec<Expr> = inserted
            .iter()
            .map(|c| Expr::Identifier(crate::frontend::names::quoted(c)))
            .collect();
        crate::write::generated::complete_insert(
            &target.def,
            &mut names,
            &mut values,
            false,
            &|_| false,
        )?;
        let list: Vec<String> = names
            .iter()
            .zip(&values)
            .map(|(n, v)| match target.def.column(n) {
                Some(c) if c.generated.is_some() => {
                    format!("CAST(({v}) AS {}) AS {}", c.ty.display(), ident(n))
                }
                _ => ident(n),
            })
            .collect();
        rows = *template::query_of(
            &format!(
                "SELECT {} FROM {} AS __sluice_typed",
                list.join(", "),
                template::relation(1)
            ),
            &[],
            &[rows],
        )?;
    }
    // `alias.k = excluded.k AND ...`, as text of the table's own names
    // for the templates below and as a syntax tree for the MERGE.
    let on_text = keys
        .iter()
        .map(|k| format!("{}.{} = excluded.{}", ident(&alias), ident(k), ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let on = keys
        .iter()
        .map(|k| Expr::BinaryOp {
            left: Box::new(column(&alias, k)),
            op: BinaryOperator::Eq,
            right: Box::new(column("excluded", k)),
        })
        .reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        })
        .ok_or_else(|| Error::internal("an upsert without a key"))?;
    let nulls = |negated: bool| {
        keys.iter()
            .map(|k| format!("{} IS {}NULL", ident(k), if negated { "NOT " } else { "" }))
            .collect::<Vec<_>>()
    };
    // RETURNING: the rows of the key values inserted or updated, read from
    // the version the MERGE commits (see `returned`).
    let returned = match &returning {
        Some(items) => {
            // A NULL in a NOT NULL key fails the write itself (23502).
            let nullable: Vec<String> = keys
                .iter()
                .filter(|k| target.def.column(k).is_some_and(|c| !c.not_null))
                .map(|k| format!("{} IS NULL", ident(k)))
                .collect();
            if !nullable.is_empty() {
                let q = *template::query_of(
                    &format!(
                        "SELECT 1 FROM {} AS __sluice_rows WHERE {} LIMIT 1",
                        template::relation(1),
                        nullable.join(" OR ")
                    ),
                    &[],
                    std::slice::from_ref(&rows),
                )?;
                if generated::rows_of(&session.ctx, q).await?.count().await? > 0 {
                    return Err(Error::not_supported(
                        "INSERT ... ON CONFLICT ... RETURNING of a row whose conflict key is NULL",
                    ));
                }
            }
            // The rows are found again by their key: one the update
            // changes is not found.
            if let OnConflictAction::DoUpdate(up) = &action
                && let Some(key) = up.assignments.iter().find_map(|a| match &a.target {
                    datafusion::sql::sqlparser::ast::AssignmentTarget::ColumnName(n) => {
                        n.0.last()
                            .and_then(|p| p.as_ident())
                            .map(crate::frontend::names::normalize_ident)
                            .filter(|c| keys.contains(c))
                    }
                    _ => None,
                })
            {
                return Err(Error::not_supported(format!(
                    "INSERT ... ON CONFLICT DO UPDATE ... RETURNING that sets the conflict key \
                     column \"{key}\""
                ))
                .with_hint("Run the statement without RETURNING and select the rows after it."));
            }
            let kept = match &action {
                OnConflictAction::DoNothing => Kept::All,
                OnConflictAction::DoUpdate(up) => match &up.selection {
                    Some(w) => Kept::Unless(Box::new(qualify_with(w.clone(), &alias))),
                    None => Kept::None,
                },
            };
            // The list is planned now: a mistake in it must fail the
            // statement before anything is committed.
            super::dml::returning_exprs_of(session, &target.def, &alias, items)?;
            Some((target.pinned_sql(), kept))
        }
        None => None,
    };
    let (source, clauses) = match action {
        OnConflictAction::DoNothing => {
            // The first row of each key goes in; NULL keys are all distinct.
            let first = *template::query_of(
                &format!(
                    "SELECT {inserted_list} FROM (SELECT *, row_number() OVER (PARTITION BY \
                     {key_list}) AS __sluice_n FROM {} AS __sluice_rows) AS __sluice_numbered \
                     WHERE __sluice_n = 1 OR {}",
                    template::relation(1),
                    nulls(false).join(" OR ")
                ),
                &[],
                std::slice::from_ref(&rows),
            )?;
            (first, vec![insert_clause(&inserted)])
        }
        OnConflictAction::DoUpdate(up) => {
            let dup = *template::query_of(
                &format!(
                    "SELECT 1 FROM {} AS __sluice_rows WHERE {} GROUP BY {key_list} \
                     HAVING count(*) > 1 LIMIT 1",
                    template::relation(1),
                    nulls(true).join(" AND ")
                ),
                &[],
                std::slice::from_ref(&rows),
            )?;
            if generated::rows_of(&session.ctx, dup).await?.count().await? > 0 {
                return Err(Error::new(
                    ErrorKind::CardinalityViolation,
                    "ON CONFLICT DO UPDATE command cannot affect row a second time",
                )
                .with_hint(
                    "Ensure that no rows proposed for insertion within the same command have \
                     duplicate constrained values.",
                ));
            }
            let update = MergeWhen {
                kind: WhenKind::Matched,
                condition: up.selection.map(|w| qualify_with(w, &alias)),
                action: MergeAction::Update(
                    up.assignments
                        .into_iter()
                        .map(|a| Assignment {
                            value: qualify_with(a.value, &alias),
                            ..a
                        })
                        .collect(),
                ),
            };
            (rows.clone(), vec![update, insert_clause(&inserted)])
        }
    };
    let def_after = target.def.clone();
    drop(target);
    let mut m = template::merge(
        &format!(
            "MERGE INTO \"__sluice_target\" AS {} USING {} AS excluded ON TRUE \
             WHEN NOT MATCHED THEN DO NOTHING",
            ident(&alias),
            template::relation(1)
        ),
        &[source],
    )?;
    if let TableFactor::Table { name: n, .. } = &mut m.target {
        *n = name.clone();
    }
    m.on = on;
    m.clauses = clauses;
    session.qualify_merge(&mut m)?;
    let outcome = crate::write::merge::merge(&wc, m, true).await?;
    match (returned, returning) {
        (Some((old, kept)), Some(items)) => {
            let after = Target::open(&wc, &schema_name, &table_name, def_after, None).await?;
            let new = after.pinned_sql_at(outcome.version);
            let q = returned_rows((&old, &new), &alias, &keys, &on_text, &rows, kept)?;
            let rows = generated::rows_of(&session.ctx, q).await?.collect().await?;
            super::dml::returning(session, rows, &after, &alias, &items, "INSERT 0").await
        }
        _ => Ok(Output::count("INSERT", outcome.rows)),
    }
}

/// `alias.column`, quoted.
fn column(alias: &str, name: &str) -> Expr {
    Expr::CompoundIdentifier(vec![
        Ident::with_quote('"', alias),
        Ident::with_quote('"', name),
    ])
}

/// `WHEN NOT MATCHED THEN INSERT (cols) VALUES (excluded.cols)`.
fn insert_clause(cols: &[String]) -> MergeWhen {
    MergeWhen {
        kind: WhenKind::NotMatched,
        condition: None,
        action: MergeAction::Insert {
            columns: cols.iter().map(|c| Ident::with_quote('"', c)).collect(),
            values: Some(cols.iter().map(|c| column("excluded", c)).collect()),
        },
    }
}

/// The keys an upsert left as they were: none (`DO UPDATE`), all that
/// existed (`DO NOTHING`), or those whose `DO UPDATE ... WHERE` fails.
enum Kept {
    None,
    All,
    Unless(Box<Expr>),
}

/// The rows an upsert inserted or updated, in the order of the incoming
/// `rows`: the rows of the `new` version whose key an incoming row has,
/// but for the keys the `old` version had and the statement left as they
/// were (`kept`).
fn returned_rows(
    (old, new): (&str, &str),
    alias: &str,
    keys: &[String],
    on: &str,
    rows: &Query,
    kept: Kept,
) -> Result<Query> {
    let a = ident(alias);
    let key_list = ident_list(keys);
    let matched = keys
        .iter()
        .map(|k| format!("{a}.{k} = __sluice_in.{k}", k = ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let rel = template::relation(1);
    let (kept, args) = match kept {
        Kept::None => (String::new(), vec![]),
        Kept::All => (
            format!(
                " WHERE NOT EXISTS (SELECT 1 FROM {old} AS {a} JOIN {rel} AS excluded ON {on} \
                 WHERE {matched})"
            ),
            vec![],
        ),
        Kept::Unless(cond) => (
            format!(
                " WHERE NOT EXISTS (SELECT 1 FROM {old} AS {a} JOIN {rel} AS excluded ON {on} \
                 WHERE {matched} AND NOT COALESCE(($1), false))"
            ),
            vec![*cond],
        ),
    };
    Ok(*template::query_of(
        &format!(
            "SELECT {a}.* FROM {new} AS {a} JOIN (SELECT {key_list}, min(__sluice_n) AS __sluice_n \
             FROM (SELECT *, row_number() OVER () AS __sluice_n FROM {rel} AS __sluice_rows) \
             AS __sluice_numbered GROUP BY {key_list}) AS __sluice_in ON {matched}{kept} \
             ORDER BY __sluice_in.__sluice_n"
        ),
        &args,
        std::slice::from_ref(rows),
    )?)
}
