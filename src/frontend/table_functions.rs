//! Set-returning functions in FROM as PostgreSQL reads them:
//!
//! - A function in a FROM list may read the relation before it without
//!   `LATERAL` (`FROM t, unnest(t.tags) AS u(tag)`); a bare `unnest` of
//!   another relation's column failed to plan (the comma form of
//!   `LATERAL unnest(...)`, which Sluice merges with the relation it reads,
//!   was read as a plain table factor). It is now the `LATERAL` function
//!   it means when the relation before it stands alone.
//! - `WITH ORDINALITY` adds a column `ordinality` numbering the rows from
//!   1 (DataFusion refused it for `unnest` and ignored it for
//!   `generate_series`, one column short). The function becomes a derived
//!   table that numbers its rows, which keeps the function's order; a
//!   function that reads another relation's columns is left to DataFusion,
//!   which refuses it.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, Query, Select,
    SelectItem, SetExpr, Statement, TableAlias, TableAliasColumnDef, TableFactor, TableWithJoins,
    VisitorMut, WildcardAdditionalOptions,
};

use crate::error::{Error, Result};

/// Both rewrites over every query of `stmt` (see the module docs).
pub fn table_functions(stmt: &mut Statement) -> Result<()> {
    struct Functions;
    impl VisitorMut for Functions {
        type Break = Error;
        fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<Error> {
            match selects(q.body.as_mut()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => ControlFlow::Break(e),
            }
        }
    }
    fn selects(body: &mut SetExpr) -> Result<()> {
        match body {
            SetExpr::Select(s) => {
                lateral_functions(s);
                for item in &mut s.from {
                    ordinality(&mut item.relation)?;
                    time_series(&mut item.relation)?;
                    for j in &mut item.joins {
                        ordinality(&mut j.relation)?;
                        time_series(&mut j.relation)?;
                    }
                }
                Ok(())
            }
            SetExpr::SetOperation { left, right, .. } => {
                selects(left)?;
                selects(right)
            }
            _ => Ok(()),
        }
    }
    match crate::visit::walk_mut(stmt, &mut Functions) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Whether `e` names a column (and so may read a relation before it).
fn reads_columns(e: &Expr) -> bool {
    let mut found = false;
    let _ = crate::visit::visit_expressions(e, |x: &Expr| {
        if matches!(x, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

/// A comma-separated `unnest` that reads columns, as the `LATERAL`
/// function it is (merged with the relation before it later, when that
/// relation stands alone).
fn lateral_functions(s: &mut Select) {
    for i in 1..s.from.len() {
        let alone = s.from[i - 1].joins.is_empty() && s.from[i].joins.is_empty();
        let reads = matches!(&s.from[i].relation, TableFactor::UNNEST { array_exprs, with_offset: false, .. }
            if array_exprs.iter().any(reads_columns));
        if !(alone && reads) {
            continue;
        }
        if let TableFactor::UNNEST {
            alias,
            array_exprs,
            with_ordinality,
            ..
        } = &s.from[i].relation
        {
            s.from[i].relation = TableFactor::Function {
                lateral: true,
                name: ObjectName::from(vec![Ident::new("unnest")]),
                args: array_exprs
                    .iter()
                    .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e.clone())))
                    .collect(),
                with_ordinality: *with_ordinality,
                alias: alias.clone(),
            };
        }
    }
}

/// Whether `e` is an interval: a literal, or a cast to one.
fn is_interval(e: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::{DataType, TypedString};
    match e {
        Expr::Interval(_) => true,
        Expr::Nested(inner) => is_interval(inner),
        Expr::Cast { data_type, .. } | Expr::TypedString(TypedString { data_type, .. }) => {
            matches!(data_type, DataType::Interval { .. })
        }
        _ => false,
    }
}

/// The arguments of `generate_series` typed as PostgreSQL resolves their
/// unknown types: a step written as a quoted literal that is no number
/// (`'1 day'`) is an interval, and then a bound written as a quoted
/// literal has the other bound's type (a timestamp, or `timestamptz` for a
/// date or another quoted literal).
pub fn typed_series_args(args: &mut [Expr]) {
    use datafusion::sql::sqlparser::ast::{CastKind, DataType, TimezoneInfo, TypedString, Value};
    let [start, stop, step] = args else { return };
    untyped_interval(step);
    if !is_interval(step) {
        return;
    }
    let quoted =
        |e: &Expr| matches!(e, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)));
    let timestamp = |e: &Expr| match e {
        Expr::Cast { data_type, .. } | Expr::TypedString(TypedString { data_type, .. }) => {
            match data_type {
                DataType::Timestamp(..) | DataType::TimestampNtz(_) => Some(data_type.clone()),
                DataType::Date => Some(DataType::Timestamp(None, TimezoneInfo::WithTimeZone)),
                _ => None,
            }
        }
        _ => None,
    };
    let typed = match (quoted(start), quoted(stop)) {
        (true, true) => DataType::Timestamp(None, TimezoneInfo::WithTimeZone),
        (true, false) => match timestamp(stop) {
            Some(t) => t,
            None => return,
        },
        (false, true) => match timestamp(start) {
            Some(t) => t,
            None => return,
        },
        (false, false) => return,
    };
    for b in [start, stop] {
        if quoted(b) {
            *b = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(b.clone()),
                data_type: typed.clone(),
                array: false,
                format: None,
            };
        }
    }
}

/// A series step written as a quoted literal that is no number (`'1
/// day'`), made an interval, as PostgreSQL resolves its unknown type.
fn untyped_interval(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{CastKind, DataType, Value};
    if let Expr::Value(v) = e
        && let Value::SingleQuotedString(text) = &v.value
        && text.trim().parse::<f64>().is_err()
    {
        *e = Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(e.clone()),
            data_type: DataType::Interval {
                fields: None,
                precision: None,
            },
            array: false,
            format: None,
        };
    }
}

/// Whether `e` is a date: a literal, or a cast to one.
fn is_date(e: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::{DataType, TypedString};
    match e {
        Expr::Nested(inner) => is_date(inner),
        Expr::Cast { data_type, .. } | Expr::TypedString(TypedString { data_type, .. }) => {
            matches!(data_type, DataType::Date)
        }
        _ => false,
    }
}

/// `generate_series(start, stop, interval)` in FROM, a series of
/// timestamps: DataFusion's table function takes only nanosecond
/// timestamps (a `TIMESTAMP '...'` bound failed), so it is planned as the
/// select-list form, `(SELECT generate_series(...) AS name) AS alias`.
/// Dates are `timestamptz` bounds, as PostgreSQL resolves them. Bounds
/// that read another relation's columns are left as written.
fn time_series(t: &mut TableFactor) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{CastKind, DataType, TimezoneInfo};
    let TableFactor::Table {
        name,
        args: Some(args),
        alias,
        with_ordinality: false,
        ..
    } = t
    else {
        return Ok(());
    };
    if !name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .is_some_and(|i| i.value.eq_ignore_ascii_case("generate_series"))
    {
        return Ok(());
    }
    let mut bounds: Vec<Expr> = args
        .args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect();
    typed_series_args(&mut bounds);
    if bounds.len() != 3
        || bounds.len() != args.args.len()
        || !is_interval(&bounds[2])
        || bounds.iter().any(reads_columns)
    {
        return Ok(());
    }
    for b in bounds.iter_mut().take(2) {
        if is_date(b) {
            *b = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(b.clone()),
                data_type: DataType::Timestamp(None, TimezoneInfo::WithTimeZone),
                array: false,
                format: None,
            };
        }
    }
    let mut query = crate::frontend::plain_select()
        .ok_or_else(|| Error::internal("the template of a derived table did not parse"))?;
    let alias = alias.take();
    let column = super::names::function_column(alias.as_ref(), "generate_series");
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Ok(());
    };
    select.projection = vec![SelectItem::ExprWithAlias {
        expr: crate::frontend::compat::call("generate_series", bounds, vec![]),
        alias: column,
    }];
    select.from = vec![];
    let alias = alias.map(|mut a| {
        a.columns.clear();
        a
    });
    *t = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(query),
        alias: Some(alias.unwrap_or(TableAlias {
            explicit: true,
            name: Ident::new("generate_series"),
            columns: vec![],
            at: None,
        })),
        sample: None,
    };
    Ok(())
}

/// `f(...) WITH ORDINALITY [AS a(c, ...)]` as `(SELECT *, row_number()
/// OVER () AS ordinality FROM f(...)) AS a(c, ..., ordinality)`.
fn ordinality(t: &mut TableFactor) -> Result<()> {
    let (name, args, alias) = match t {
        TableFactor::Table {
            name,
            args: Some(args),
            with_ordinality: true,
            alias,
            ..
        } => (
            name.clone(),
            args.args
                .iter()
                .filter_map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            alias.clone(),
        ),
        TableFactor::UNNEST {
            array_exprs,
            with_ordinality: true,
            with_offset: false,
            alias,
            ..
        } => (
            ObjectName::from(vec![Ident::new("unnest")]),
            array_exprs.clone(),
            alias.clone(),
        ),
        TableFactor::Function {
            name,
            args,
            with_ordinality: true,
            alias,
            ..
        } => (
            name.clone(),
            args.iter()
                .filter_map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect(),
            alias.clone(),
        ),
        _ => return Ok(()),
    };
    // Reading another relation's columns, the function cannot be a
    // derived table of its own: left as written, for DataFusion to plan
    // or refuse (psql asks for `pg_partition_ancestors(t.x) WITH
    // ORDINALITY` in a subquery it never runs here).
    if args.iter().any(reads_columns) {
        return Ok(());
    }
    let mut query = crate::frontend::plain_select()
        .ok_or_else(|| Error::internal("the template of a derived table did not parse"))?;
    // Unchanged but for WITH ORDINALITY; the alias names the function's
    // column as before (`generate_series(1, 3) AS g` is column `g`).
    let function_alias = alias.as_ref().map(|a| TableAlias {
        columns: a.columns.iter().take(1).cloned().collect(),
        ..a.clone()
    });
    let inner = match std::mem::replace(
        t,
        TableFactor::Derived {
            lateral: false,
            subquery: Box::new(query.clone()),
            alias: None,
            sample: None,
        },
    ) {
        TableFactor::Table {
            name,
            args,
            with_hints,
            version,
            partitions,
            json_path,
            sample,
            index_hints,
            ..
        } => TableFactor::Table {
            name,
            alias: function_alias,
            args,
            with_hints,
            version,
            with_ordinality: false,
            partitions,
            json_path,
            sample,
            index_hints,
        },
        TableFactor::UNNEST { array_exprs, .. } => TableFactor::UNNEST {
            alias: function_alias,
            array_exprs,
            with_offset: false,
            with_offset_alias: None,
            with_ordinality: false,
        },
        TableFactor::Function {
            lateral,
            name,
            args,
            ..
        } => TableFactor::Function {
            lateral,
            name,
            args,
            with_ordinality: false,
            alias: function_alias,
        },
        _ => unreachable!("matched above"),
    };
    let number = Expr::Function(datafusion::sql::sqlparser::ast::Function {
        name: ObjectName::from(vec![Ident::new("row_number")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(datafusion::sql::sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: Some(datafusion::sql::sqlparser::ast::WindowType::WindowSpec(
            datafusion::sql::sqlparser::ast::WindowSpec {
                window_name: None,
                partition_by: vec![],
                order_by: vec![],
                window_frame: None,
            },
        )),
        within_group: vec![],
    });
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Ok(());
    };
    select.projection = vec![
        SelectItem::Wildcard(WildcardAdditionalOptions::default()),
        SelectItem::ExprWithAlias {
            expr: number,
            alias: Ident::new("ordinality"),
        },
    ];
    select.from = vec![TableWithJoins {
        relation: inner,
        joins: vec![],
    }];
    let derived_alias = match alias {
        Some(mut a) => {
            if !a.columns.is_empty() && a.columns.len() < 2 {
                a.columns.push(TableAliasColumnDef::from_name("ordinality"));
            }
            a
        }
        None => TableAlias {
            explicit: true,
            at: None,
            name: name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .cloned()
                .unwrap_or_else(|| Ident::new("f")),
            columns: vec![],
        },
    };
    *t = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(query),
        alias: Some(derived_alias),
        sample: None,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> Result<String> {
        let mut s = crate::frontend::parse_one(sql);
        table_functions(&mut s)?;
        Ok(s.to_string())
    }

    #[test]
    fn a_comma_unnest_of_a_column_is_a_lateral_join() {
        assert_eq!(
            rewritten("SELECT * FROM t, unnest(t.tags) AS x(tag), v").unwrap(),
            "SELECT * FROM t, LATERAL unnest(t.tags) AS x (tag), v"
        );
        // Of a constant, or after a full join: as written.
        for sql in [
            "SELECT * FROM t, UNNEST(ARRAY[1, 2]) AS x",
            "SELECT * FROM t JOIN u ON t.a = u.a, UNNEST(t.tags) AS x",
        ] {
            assert_eq!(rewritten(sql).unwrap(), sql);
        }
    }

    #[test]
    fn a_series_of_times_in_from_is_the_select_list_form() {
        assert_eq!(
            rewritten(
                "SELECT d FROM generate_series(DATE '2024-01-01', DATE '2024-01-03', INTERVAL '1 day') AS d"
            )
            .unwrap(),
            "SELECT d FROM (SELECT generate_series(CAST(DATE '2024-01-01' AS TIMESTAMP WITH TIME ZONE), \
             CAST(DATE '2024-01-03' AS TIMESTAMP WITH TIME ZONE), INTERVAL '1 day') AS d) AS d"
        );
        for sql in [
            "SELECT * FROM generate_series(1, 10, 2)",
            "SELECT * FROM t, generate_series(t.a, t.b, INTERVAL '1 day') AS g",
        ] {
            assert_eq!(rewritten(sql).unwrap(), sql);
        }
    }

    #[test]
    fn with_ordinality_numbers_the_rows() {
        assert_eq!(
            rewritten("SELECT * FROM generate_series(1, 3) WITH ORDINALITY AS g(v, n)").unwrap(),
            "SELECT * FROM (SELECT *, row_number() OVER () AS ordinality FROM generate_series(1, 3) AS g (v)) AS g (v, n)"
        );
        assert_eq!(
            rewritten("SELECT * FROM unnest(ARRAY['a']) WITH ORDINALITY").unwrap(),
            "SELECT * FROM (SELECT *, row_number() OVER () AS ordinality FROM UNNEST(ARRAY['a'])) AS unnest"
        );
        let correlated = "SELECT * FROM t, LATERAL unnest(t.tags) WITH ORDINALITY AS x (tag, n)";
        assert_eq!(rewritten(correlated).unwrap(), correlated);
    }
}
