//! Generated columns (`GENERATED ALWAYS AS (expr) STORED`) on the way in.
//! A statement never gives their values: an INSERT, COPY or MERGE
//! computes them from the new row's other values (see
//! [`super::conform`] for rows planned as a query), and an UPDATE or a
//! MERGE that changes a column they read sets them again.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{CastKind, Expr, Ident};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::catalog::{ColumnDef, TableDef};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::names::normalize_ident;

/// The generation expression of `c`, parsed as a statement's own
/// expressions are; `None` for a column that is not generated.
pub fn expression(c: &ColumnDef) -> Result<Option<Expr>> {
    let Some(sql) = &c.generated else {
        return Ok(None);
    };
    let mut e = parse(sql, &c.name)?;
    // The casts spelled as a statement's own are (see `engine::dml`).
    crate::frontend::compat::typed_casts(&mut e);
    crate::frontend::compat::timestamp_casts(&mut e);
    Ok(Some(e))
}

fn parse(sql: &str, column: &str) -> Result<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| {
            Error::internal(format!(
                "the generation expression of column \"{column}\" ({sql}) does not parse: {e}"
            ))
        })
}

/// The table columns an expression names (its identifiers, or the last
/// part of qualified ones), in the order they first appear.
pub fn columns_read(e: &Expr) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let _ = crate::visit::visit_expressions(e, |x| {
        if let Some(n) = column_name(x)
            && !out.contains(&n)
        {
            out.push(n);
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// Whether the generation expression `sql` reads `column`.
pub fn reads(sql: &str, column: &str) -> bool {
    parse(sql, column).is_ok_and(|e| columns_read(&e).iter().any(|c| c == column))
}

fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(id) => Some(normalize_ident(id)),
        Expr::CompoundIdentifier(parts) => parts.last().map(normalize_ident),
        _ => None,
    }
}

/// `e` with every column it names replaced by `value(column)` (left as it
/// is where that gives `None`).
fn substitute(mut e: Expr, mut value: impl FnMut(&str) -> Option<Expr>) -> Expr {
    let _ = crate::visit::visit_expressions_mut(&mut e, |x| {
        if let Some(v) = column_name(x).and_then(|n| value(&n)) {
            *x = v;
        }
        ControlFlow::<()>::Continue(())
    });
    e
}

/// `CAST((e) AS <type of c>)`: a value as column `c` stores it.
fn as_column(e: Expr, c: &ColumnDef) -> Result<Expr> {
    let data_type = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&c.ty.assignment_cast())
        .and_then(|mut p| p.parse_data_type())
        .map_err(|e| {
            Error::internal(format!(
                "the type of column \"{}\" does not parse: {e}",
                c.name
            ))
        })?;
    Ok(Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(Expr::Nested(Box::new(e))),
        data_type,
        format: None,
        array: false,
    })
}

/// A value given for a generated column where only `DEFAULT` may stand:
/// 428C9, as PostgreSQL words it for an INSERT and for an UPDATE.
pub fn given_error(column: &str, update: bool) -> Error {
    let message = if update {
        format!("column \"{column}\" can only be updated to DEFAULT")
    } else {
        format!("cannot insert a non-DEFAULT value into column \"{column}\"")
    };
    Error::new(ErrorKind::GeneratedAlways, message)
        .with_detail(format!("Column \"{column}\" is a generated column."))
}

/// Whether `e` calls a volatile function of `ctx` (`random()`,
/// `nextval`): a value that must be computed once, not once more inside
/// a generated column's expression.
pub fn calls_volatile(ctx: &datafusion::prelude::SessionContext, e: &Expr) -> bool {
    let state = ctx.state_ref();
    let state = state.read();
    crate::visit::visit_expressions(e, |x| {
        let volatile = matches!(x, Expr::Function(f) if f
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .and_then(|n| state.scalar_functions().get(&normalize_ident(n)))
        .is_some_and(|u| {
            u.signature().volatility == datafusion::logical_expr::Volatility::Volatile
        }));
        if volatile {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// A volatile value for a column that a generated column reads, where
/// the write would compute it twice: 0A000.
fn volatile_error(column: &str, generated: &str) -> Error {
    Error::not_supported(format!(
        "a volatile value (random(), nextval(), ...) for column \"{column}\", which generated \
         column \"{generated}\" reads, in UPDATE, MERGE or INSERT ... ON CONFLICT"
    ))
    .with_hint("Give the value as a constant, or write it with INSERT or COPY.")
}

/// Generated column `g`'s expression `e` with each column it reads
/// replaced by `value(column)` (None: left as written); a volatile value
/// is refused (see [`volatile_error`]).
fn computed(
    g: &ColumnDef,
    e: Expr,
    volatile: &dyn Fn(&Expr) -> bool,
    mut value: impl FnMut(&str) -> Result<Option<Expr>>,
) -> Result<Expr> {
    let mut failed = None;
    let out = substitute(e, |name| match value(name) {
        Ok(Some(v)) if volatile(&v) => {
            failed = Some(volatile_error(name, &g.name));
            None
        }
        Ok(v) => v,
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The assignments of an UPDATE (`(column, value over the old row)`) with
/// those of the generated columns added: each generated column that reads
/// an assigned column is set to its expression over the new values. The
/// columns it reads unchanged are named through `qualifier` (the target's
/// alias or name), so that a FROM list or a MERGE source beside the
/// target cannot take them. An assignment of a generated column itself
/// (`SET g = DEFAULT`, the only one an UPDATE may give) computes it again.
/// `volatile` tells a value that must not be computed twice.
pub fn with_generated_sets(
    def: &TableDef,
    qualifier: &str,
    sets: &[(String, Expr)],
    volatile: &dyn Fn(&Expr) -> bool,
) -> Result<Vec<(String, Expr)>> {
    let mut out: Vec<(String, Expr)> = sets
        .iter()
        .filter(|(c, _)| def.column(c).is_none_or(|c| c.generated.is_none()))
        .cloned()
        .collect();
    let given = out.clone();
    for g in &def.columns {
        let Some(e) = expression(g)? else { continue };
        let recomputed = sets.iter().any(|(s, _)| s == &g.name);
        if !recomputed
            && !columns_read(&e)
                .iter()
                .any(|c| given.iter().any(|(s, _)| s == c))
        {
            continue;
        }
        let value = computed(g, e, volatile, |name| {
            let Some(c) = def.column(name) else {
                return Ok(None);
            };
            Ok(Some(match given.iter().find(|(s, _)| s == name) {
                Some((_, v)) => as_column(v.clone(), c)?,
                None => Expr::CompoundIdentifier(vec![
                    Ident::with_quote('"', qualifier),
                    Ident::with_quote('"', name),
                ]),
            }))
        })?;
        out.push((g.name.clone(), value));
    }
    Ok(out)
}

/// The values a MERGE's `INSERT (columns) VALUES (values)` gives, with
/// each generated column's value computed from the others (a column not
/// listed takes its default, or NULL): `columns` and `values` are
/// completed in place. `refuse`: a value other than `DEFAULT` given for
/// a generated column is an error (for MERGE as the user wrote it; an
/// upsert refused those already and passes placeholders). `volatile`
/// tells a value that must not be computed twice.
pub fn complete_insert(
    def: &TableDef,
    columns: &mut Vec<String>,
    values: &mut Vec<Expr>,
    refuse: bool,
    volatile: &dyn Fn(&Expr) -> bool,
) -> Result<()> {
    if def.columns.iter().all(|c| c.generated.is_none()) {
        return Ok(());
    }
    if refuse
        && let Some((c, _)) = columns
            .iter()
            .zip(values.iter())
            .find(|(c, v)| def.column(c).is_some_and(|c| c.generated.is_some()) && !is_default(v))
    {
        return Err(given_error(c, false));
    }
    // The given values of the other columns, as each is stored.
    let mut given: Vec<(String, Expr)> = Vec::new();
    for (c, v) in columns.iter().zip(values.iter()) {
        if let Some(col) = def.column(c).filter(|c| c.generated.is_none()) {
            given.push((c.clone(), as_column(v.clone(), col)?));
        }
    }
    for g in &def.columns {
        let Some(e) = expression(g)? else { continue };
        let value = computed(g, e, volatile, |name| {
            let Some(c) = def.column(name) else {
                return Ok(None);
            };
            if let Some((_, v)) = given.iter().find(|(s, _)| s == name) {
                return Ok(Some(v.clone()));
            }
            Ok(Some(match &c.default {
                Some(sql) => {
                    let mut d = parse(sql, name)?;
                    crate::frontend::compat::typed_casts(&mut d);
                    crate::frontend::compat::timestamp_casts(&mut d);
                    as_column(d, c)?
                }
                None => Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            }))
        })?;
        match columns.iter().position(|c| c == &g.name) {
            Some(i) => values[i] = value,
            None => {
                columns.push(g.name.clone());
                values.push(value);
            }
        }
    }
    Ok(())
}

/// `DEFAULT` where a value may stand.
pub fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(id)
        if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PgType;

    fn column(name: &str, ty: &str, generated: Option<&str>) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            ty: PgType::simple(ty),
            not_null: false,
            default: None,
            identity: None,
            generated: generated.map(String::from),
        }
    }

    fn table() -> TableDef {
        TableDef::new(
            vec![
                column("a", "integer", None),
                column("b", "integer", None),
                column("g", "integer", Some("a * 2 + b")),
            ],
            "t".into(),
        )
    }

    fn expr(sql: &str) -> Expr {
        parse(sql, "x").unwrap()
    }

    fn never(_: &Expr) -> bool {
        false
    }

    #[test]
    fn a_volatile_value_a_generated_column_reads_is_refused() {
        let random = |e: &Expr| e.to_string().contains("random");
        let e = with_generated_sets(&table(), "t", &[("b".into(), expr("random()"))], &random)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::FeatureNotSupported);
        let mut columns = vec!["a".to_string()];
        let mut values = vec![expr("random()")];
        assert!(complete_insert(&table(), &mut columns, &mut values, true, &random).is_err());
    }

    #[test]
    fn an_update_of_a_column_read_sets_the_generated_column_again() {
        let sets =
            with_generated_sets(&table(), "t", &[("a".into(), expr("a + 1"))], &never).unwrap();
        let shown: Vec<String> = sets.iter().map(|(c, e)| format!("{c}={e}")).collect();
        assert_eq!(
            shown,
            ["a=a + 1", "g=CAST((a + 1) AS INTEGER) * 2 + \"t\".\"b\""]
        );
        // Nothing read changes: nothing to compute.
        let sets = with_generated_sets(&table(), "t", &[("x".into(), expr("1"))], &never).unwrap();
        assert_eq!(sets.len(), 1);
        // `g = DEFAULT`: computed again from the row as it is.
        let sets =
            with_generated_sets(&table(), "t", &[("g".into(), expr("DEFAULT"))], &never).unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].1.to_string(), "\"t\".\"a\" * 2 + \"t\".\"b\"");
    }

    #[test]
    fn an_insert_computes_generated_columns_from_the_values_given() {
        let mut columns = vec!["a".to_string()];
        let mut values = vec![expr("s.v")];
        complete_insert(&table(), &mut columns, &mut values, true, &never).unwrap();
        assert_eq!(columns, ["a", "g"]);
        assert_eq!(values[1].to_string(), "CAST((s.v) AS INTEGER) * 2 + NULL");
        let mut columns = vec!["a".to_string(), "g".to_string()];
        let mut values = vec![expr("1"), expr("5")];
        let e = complete_insert(&table(), &mut columns, &mut values, true, &never).unwrap_err();
        assert_eq!(e.kind, ErrorKind::GeneratedAlways);
        let mut values = vec![expr("1"), expr("DEFAULT")];
        complete_insert(&table(), &mut columns, &mut values, true, &never).unwrap();
        assert_eq!(values[1].to_string(), "CAST((1) AS INTEGER) * 2 + NULL");
    }
}
