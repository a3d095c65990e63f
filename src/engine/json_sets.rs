//! PostgreSQL's JSON set-returning functions and aggregates, spelled with
//! what DataFusion plans: a set-returning function is `unnest` of a list
//! (`jsonb_array_elements(d)` → `unnest(sluice_jsonb_array_elements(d))`,
//! in the select list or in FROM, where `jsonb_each(d) AS e` becomes a
//! derived table of `key` and `value` unnested side by side), and an
//! aggregate is built on `array_agg`, which already knows ORDER BY,
//! DISTINCT and FILTER (`jsonb_agg(x ORDER BY y)` →
//! `sluice_jsonb_agg_array(array_agg(to_jsonb(x) ORDER BY y))`).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, Query, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias,
    TableFactor, VisitorMut,
};

use super::using_joins::ColumnsOf;
use crate::frontend::compat::call;
use crate::types::json_fns::{AGGREGATES, SET_FUNCTIONS};

/// The lower-case name of a call with a one-part name.
fn simple_name(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [part] => part.as_ident().map(|i| i.value.to_ascii_lowercase()),
        [schema, part] if schema.as_ident().is_some_and(|s| s.value == "pg_catalog") => {
            part.as_ident().map(|i| i.value.to_ascii_lowercase())
        }
        _ => None,
    }
}

fn plain_args(args: &FunctionArguments) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Rewrite the JSON set-returning functions and aggregates of `stmt`.
/// `columns_of` names a table's columns, where it is known: a bare name
/// that is a column of the relation a function follows reads the column,
/// as in PostgreSQL, not the function's value.
pub fn rewrite(stmt: &mut Statement, columns_of: &ColumnsOf) {
    struct V<'a>(&'a ColumnsOf<'a>);
    impl VisitorMut for V<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            lateral_sets(q, self.0);
            // A select item that is one of these calls is named after it.
            if let SetExpr::Select(s) = q.body.as_mut() {
                for item in s.projection.iter_mut() {
                    if let SelectItem::UnnamedExpr(Expr::Function(f)) = item
                        && let Some(name) = simple_name(&f.name)
                        && (select_list_set(&name).is_some()
                            || aggregate(&name).is_some()
                            || name == "generate_series")
                    {
                        let expr = Expr::Function(f.clone());
                        *item = SelectItem::ExprWithAlias {
                            expr,
                            alias: Ident::new(name),
                        };
                    }
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
            if let Some(derived) = set_function_in_from(f) {
                *f = derived;
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e
                && let Some(name) = simple_name(&f.name)
            {
                if let Some(list) = select_list_set(&name)
                    && let Some(args) = plain_args(&f.args)
                {
                    *e = call("unnest", vec![call(list, args, vec![])], vec![]);
                } else if let Some((outer, pair)) = aggregate(&name) {
                    *e = aggregate_call(f, outer, pair);
                } else if name == "generate_series"
                    && f.over.is_none()
                    && let Some(args) = plain_args(&f.args)
                {
                    *e = series(args);
                } else if name == "unnest"
                    && let Some(args) = plain_args(&f.args)
                    && let [rows] = args.as_slice()
                    && series_list(rows).is_some()
                {
                    // `unnest(generate_series(...))`: the series is rows
                    // already.
                    *e = rows.clone();
                } else if name == crate::types::arrays::OR_NULL_ELEMENT
                    && let Some(args) = plain_args(&f.args)
                    && let [rows] = args.as_slice()
                    && let Some(list) = series_list(rows)
                {
                    // A list function of the series' list (a LEFT JOIN
                    // LATERAL keeping rows without any).
                    *e = call(crate::types::arrays::OR_NULL_ELEMENT, vec![list], vec![]);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V(columns_of));
}

/// The list of the series, when `e` is what [`series`] makes of a
/// `generate_series(...)`.
fn series_list(e: &Expr) -> Option<Expr> {
    let rows = match e {
        Expr::Cast { expr, .. } => expr.as_ref(),
        e => e,
    };
    let Expr::Function(f) = rows else {
        return None;
    };
    if simple_name(&f.name).as_deref() != Some("unnest") {
        return None;
    }
    match plain_args(&f.args)?.as_slice() {
        [g @ Expr::Function(inner)]
            if simple_name(&inner.name).as_deref() == Some("generate_series") =>
        {
            Some(g.clone())
        }
        _ => None,
    }
}

/// `generate_series(...)` outside FROM, a set of rows as in PostgreSQL
/// (DataFusion's function of that name answers one list): the list
/// unnested, `integer` when its bounds are integer constants.
fn series(mut args: Vec<Expr>) -> Expr {
    use datafusion::sql::sqlparser::ast::{CastKind, DataType, UnaryOperator, Value};
    crate::frontend::table_functions::typed_series_args(&mut args);
    let int4 = |e: &Expr| {
        let (negative, e) = match e {
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } => (true, expr.as_ref()),
            e => (false, e),
        };
        matches!(e, Expr::Value(v) if matches!(&v.value, Value::Number(n, _)
            if n.parse::<i64>().is_ok_and(|n| i32::try_from(if negative { -n } else { n }).is_ok())))
    };
    let integers = args.iter().all(int4);
    let rows = call(
        "unnest",
        vec![call("generate_series", args, vec![])],
        vec![],
    );
    if !integers {
        return rows;
    }
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(rows),
        data_type: DataType::Integer(None),
        array: false,
        format: None,
    }
}

/// The list function of a set-returning function of one column.
fn select_list_set(name: &str) -> Option<&'static str> {
    SET_FUNCTIONS
        .iter()
        .find(|(n, lists, _)| *n == name && lists.len() == 1)
        .map(|(_, lists, _)| lists[0])
}

fn aggregate(name: &str) -> Option<(&'static str, bool)> {
    AGGREGATES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, outer, pair)| (outer, pair))
}

/// `jsonb_agg(x ...)` as `sluice_jsonb_agg_array(array_agg(to_jsonb(x) ...))`,
/// the call's DISTINCT, ORDER BY, FILTER and OVER kept on `array_agg`.
fn aggregate_call(f: &Function, outer: &str, pair: bool) -> Expr {
    let mut inner = f.clone();
    inner.name = ObjectName::from(vec![Ident::new("array_agg")]);
    if let FunctionArguments::List(FunctionArgumentList { args, .. }) = &mut inner.args {
        let exprs: Vec<Expr> = args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect();
        // json_agg keeps each document's own text, as to_json does;
        // jsonb_agg normalizes it.
        let value = if pair {
            call("sluice_json_member", exprs, vec![])
        } else if outer.starts_with("sluice_jsonb") {
            call("to_jsonb", exprs, vec![])
        } else {
            call(crate::types::json_fns::AGG_ELEMENT, exprs, vec![])
        };
        *args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(value))];
    }
    call(outer, vec![Expr::Function(inner)], vec![])
}

/// A set-returning function in FROM: the `unnest` calls that give its
/// columns, their names, and its alias.
struct SetInFrom {
    calls: Vec<Expr>,
    names: Vec<Ident>,
    alias: Option<TableAlias>,
    function: String,
}

impl SetInFrom {
    fn of(f: &TableFactor) -> Option<SetInFrom> {
        // `f(...)` and `LATERAL f(...)`: a function in FROM reads the
        // relations before it either way.
        let (name, alias, args) = match f {
            TableFactor::Table {
                name,
                alias,
                args: Some(args),
                with_hints,
                version: None,
                with_ordinality: false,
                ..
            } if with_hints.is_empty() && args.settings.as_ref().is_none_or(Vec::is_empty) => {
                (name, alias, &args.args)
            }
            TableFactor::Function {
                name,
                args,
                with_ordinality: false,
                alias,
                ..
            } => (name, alias, args),
            _ => return None,
        };
        let fname = simple_name(name)?;
        if let Some(set) = SetInFrom::records(&fname, args, alias.as_ref()) {
            return Some(set);
        }
        let exprs: Vec<Expr> = args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let (lists, columns): (&[&str], &[&str]) = if fname == "unnest" && exprs.len() == 1 {
            (&[], &["unnest"])
        } else if fname == "generate_series" && (2..=3).contains(&exprs.len()) {
            // Unnested as in a select list (see `series`).
            (&["generate_series"], &["generate_series"])
        } else {
            let (_, lists, columns) = SET_FUNCTIONS.iter().find(|(n, _, _)| *n == fname)?;
            (lists, columns)
        };
        // Column names: the alias's list, else PostgreSQL's; a bare alias of
        // a one-column function names its column.
        let names: Vec<Ident> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| match alias {
                Some(a) if !a.columns.is_empty() => a
                    .columns
                    .get(i)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| Ident::new(*c)),
                Some(a) if columns.len() == 1 && *c != "value" => a.name.clone(),
                _ => Ident::new(*c),
            })
            .collect();
        let calls: Vec<Expr> = if lists.is_empty() {
            vec![call("unnest", exprs, vec![])]
        } else {
            lists
                .iter()
                .map(|l| call("unnest", vec![call(l, exprs.clone(), vec![])], vec![]))
                .collect()
        };
        Some(SetInFrom {
            calls,
            names,
            alias: alias.clone(),
            function: fname,
        })
    }

    /// `jsonb_to_recordset(d) AS x(a int, b text)` (and `json_`, and
    /// `_to_record` of one object): each declared column read from the
    /// object's member of its name, as PostgreSQL's populate functions do:
    /// a json or jsonb column takes the member's document, a text column its
    /// text, any other type its text cast; a missing member is NULL.
    fn records(fname: &str, args: &[FunctionArg], alias: Option<&TableAlias>) -> Option<SetInFrom> {
        use datafusion::sql::sqlparser::ast::{BinaryOperator, CastKind, DataType, Value};
        let (jsonb, set) = match fname {
            "jsonb_to_recordset" => (true, true),
            "json_to_recordset" => (false, true),
            "jsonb_to_record" => (true, false),
            "json_to_record" => (false, false),
            _ => return None,
        };
        let [FunctionArg::Unnamed(FunctionArgExpr::Expr(doc))] = args else {
            return None;
        };
        let alias = alias?;
        let element = if set {
            let list = if jsonb {
                "sluice_jsonb_array_elements"
            } else {
                "sluice_json_array_elements"
            };
            call(
                "unnest",
                vec![call(list, vec![doc.clone()], vec![])],
                vec![],
            )
        } else {
            doc.clone()
        };
        let mut calls = Vec::new();
        let mut names = Vec::new();
        for c in &alias.columns {
            let ty = c.data_type.clone()?;
            let member = Expr::value(Value::SingleQuotedString(c.name.value.clone()));
            let document = matches!(ty, DataType::JSON | DataType::JSONB);
            let read = Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(element.clone()))),
                op: if document {
                    BinaryOperator::Arrow
                } else {
                    BinaryOperator::LongArrow
                },
                right: Box::new(member),
            };
            let mut value = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(Expr::Nested(Box::new(read))),
                data_type: ty,
                array: false,
                format: None,
            };
            // Casts planned as a statement's own are (`jsonb`, timestamps).
            crate::frontend::compat::typed_casts(&mut value);
            crate::frontend::compat::timestamp_casts(&mut value);
            calls.push(value);
            names.push(c.name.clone());
        }
        if names.is_empty() {
            return None;
        }
        Some(SetInFrom {
            calls,
            names,
            alias: Some(TableAlias {
                columns: vec![],
                ..alias.clone()
            }),
            function: fname.to_string(),
        })
    }

    /// `SELECT <calls> AS <names>` (with `q.*` first and `FROM rel AS q`
    /// when it joins a relation laterally).
    fn query(&self, lateral: Option<(&Ident, &TableFactor)>) -> Option<Box<Query>> {
        let items = (1..=self.calls.len())
            .map(|i| format!("${i} AS c{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = match lateral {
            Some(_) => format!("SELECT q.*, {items} FROM q"),
            None => format!("SELECT {items}"),
        };
        let mut query = crate::frontend::template::query(&sql, &self.calls).ok()?;
        if let SetExpr::Select(s) = query.body.as_mut() {
            let skip = usize::from(lateral.is_some());
            for (item, name) in s.projection.iter_mut().skip(skip).zip(&self.names) {
                if let SelectItem::ExprWithAlias { alias, .. } = item {
                    *alias = name.clone();
                }
            }
            if let Some((q, relation)) = lateral {
                if let Some(SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(n),
                    _,
                )) = s.projection.first_mut()
                {
                    *n = ObjectName::from(vec![q.clone()]);
                }
                let mut relation = relation.clone();
                // A table read without an alias is named by its alias here.
                if let TableFactor::Table {
                    alias: a @ None, ..
                } = &mut relation
                {
                    *a = Some(TableAlias {
                        explicit: true,
                        name: q.clone(),
                        columns: vec![],
                        at: None,
                    });
                }
                s.from.first_mut()?.relation = relation;
            }
        }
        Some(query)
    }

    /// Keep a row the function has no output for: each list it unnests
    /// is one NULL where it is empty.
    fn keep_rows(&mut self) {
        // Each `unnest(list)`, wherever it stands in a call (a declared
        // column of `jsonb_to_recordset` reads a member of it).
        for c in self.calls.iter_mut() {
            let _ = crate::visit::visit_expressions_mut(c, |e: &mut Expr| {
                if let Expr::Function(f) = e
                    && simple_name(&f.name).as_deref() == Some("unnest")
                    && let FunctionArguments::List(list) = &mut f.args
                    && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] =
                        list.args.as_mut_slice()
                {
                    *arg = call(
                        crate::types::arrays::OR_NULL_ELEMENT,
                        vec![arg.clone()],
                        vec![],
                    );
                }
                ControlFlow::<()>::Continue(())
            });
        }
    }

    /// Does the function read columns (of a relation before it)?
    fn reads_columns(&self) -> bool {
        use datafusion::sql::sqlparser::ast::Visitor;
        struct Columns;
        impl Visitor for Columns {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                match e {
                    Expr::Identifier(_) | Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
                    Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                        ControlFlow::Break(())
                    }
                    _ => ControlFlow::Continue(()),
                }
            }
        }
        self.calls
            .iter()
            .any(|c| crate::visit::walk(c, &mut Columns).is_break())
    }
}

/// `FROM jsonb_each(d) [AS e(k, v)]` as the derived table
/// `(SELECT unnest(keys(d)) AS key, unnest(values(d)) AS value) AS e`.
fn set_function_in_from(f: &TableFactor) -> Option<TableFactor> {
    let set = SetInFrom::of(f)?;
    if set.function == "unnest" || set.function == "generate_series" {
        // Left to the subquery rewrite, which knows unnest alone, and to
        // the table function generate_series (reading columns of the
        // relation before it, it is joined with it above).
        return None;
    }
    Some(TableFactor::Derived {
        lateral: false,
        subquery: set.query(None)?,
        alias: Some(TableAlias {
            explicit: true,
            name: set
                .alias
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_else(|| Ident::new(&set.function)),
            columns: vec![],
            at: None,
        }),
        sample: None,
    })
}

/// The name a FROM item's columns are qualified by.
fn qualifier(f: &TableFactor) -> Option<Ident> {
    match f {
        TableFactor::Table {
            alias: Some(a),
            args: None,
            ..
        }
        | TableFactor::Derived { alias: Some(a), .. } => Some(a.name.clone()),
        TableFactor::Table {
            name, args: None, ..
        } => name.0.last()?.as_ident().cloned(),
        _ => None,
    }
}

/// A relation merged with the set-returning function after it: the
/// function's alias, the relation's name, the function's column names.
type Rename = (String, Ident, Vec<Ident>);

/// `relation` followed by the function `next`: the derived table of both
/// when the function reads columns (of `relation`, which names them).
/// With `keep_rows` (`LEFT JOIN LATERAL`), a row of `relation` the
/// function has no output for is kept, with NULLs for the function's columns.
fn merge_set(
    relation: &TableFactor,
    next: &TableFactor,
    keep_rows: bool,
) -> Option<(TableFactor, Rename)> {
    let mut set = SetInFrom::of(next).filter(SetInFrom::reads_columns)?;
    if keep_rows {
        set.keep_rows();
    }
    let name = qualifier(relation)?;
    let query = set.query(Some((&name, relation)))?;
    let alias = set
        .alias
        .as_ref()
        .map(|a| a.name.value.to_ascii_lowercase())
        .unwrap_or_else(|| set.function.clone());
    let derived = TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: Some(TableAlias {
            explicit: true,
            name: name.clone(),
            columns: vec![],
            at: None,
        }),
        sample: None,
    };
    Some((derived, (alias, name, set.names)))
}

/// How a set-returning function is joined to the relation it reads
/// without a condition: `Some(false)` for an inner join (`CROSS JOIN`,
/// `JOIN ... ON true`), `Some(true)` for `LEFT JOIN ... ON true`.
fn unconditional(op: &datafusion::sql::sqlparser::ast::JoinOperator) -> Option<bool> {
    use datafusion::sql::sqlparser::ast::{JoinConstraint as C, JoinOperator as J, Value};
    let always = |e: &Expr| matches!(e, Expr::Value(v) if v.value == Value::Boolean(true));
    match op {
        J::CrossJoin(C::None) => Some(false),
        J::Join(C::On(e)) | J::Inner(C::On(e)) | J::CrossJoin(C::On(e)) if always(e) => Some(false),
        J::Left(C::On(e)) | J::LeftOuter(C::On(e)) if always(e) => Some(true),
        _ => None,
    }
}

/// `FROM t AS a, jsonb_array_elements(a.doc) AS e` (the function reads
/// the relation before it, as LATERAL; also `CROSS JOIN LATERAL` and
/// `JOIN LATERAL ... ON true`) as
/// `FROM (SELECT a.*, unnest(...) AS value FROM t AS a) AS a`, with `e.value`
/// read as `a.value`.
fn lateral_sets(q: &mut Query, columns_of: &ColumnsOf) {
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let mut renames: Vec<Rename> = vec![];
    // Aliases that are also a column of the relation before the function:
    // a bare one reads that column.
    let mut shadowed: Vec<String> = vec![];
    let mut shadows = |relation: &TableFactor, rename: &Rename| {
        if columns_of(relation).is_some_and(|cols| cols.contains(&rename.0)) {
            shadowed.push(rename.0.clone());
        }
    };
    // Joined: `t CROSS JOIN LATERAL f(t.x)` when `t` is the first relation.
    for from in select.from.iter_mut() {
        while let Some(join) = from.joins.first()
            && let Some(keep_rows) = unconditional(&join.join_operator)
            && let Some((merged, rename)) = merge_set(&from.relation, &join.relation, keep_rows)
        {
            shadows(&from.relation, &rename);
            from.relation = merged;
            from.joins.remove(0);
            renames.push(rename);
        }
    }
    // Listed: `t, f(t.x)`.
    let mut i = 1;
    while i < select.from.len() {
        let (before, at) = (&select.from[i - 1], &select.from[i]);
        let merge = (before.joins.is_empty() && at.joins.is_empty())
            .then(|| merge_set(&before.relation, &at.relation, false))
            .flatten();
        let Some((merged, rename)) = merge else {
            i += 1;
            continue;
        };
        shadows(&select.from[i - 1].relation, &rename);
        renames.push(rename);
        select.from[i - 1].relation = merged;
        select.from.remove(i);
    }
    if renames.is_empty() {
        return;
    }
    // A select item that is the function's alias alone (`SELECT e` of
    // `jsonb_array_elements_text(d) AS e`) keeps that name for its column;
    // `e.*` is the function's columns.
    let renamed = |a: &Ident| {
        renames
            .iter()
            .find(|(alias, _, _)| a.value.to_ascii_lowercase() == *alias)
            .filter(|(alias, _, _)| !shadowed.contains(alias))
    };
    let mut projection = Vec::with_capacity(select.projection.len());
    for item in std::mem::take(&mut select.projection) {
        match &item {
            SelectItem::UnnamedExpr(Expr::Identifier(a))
                if renamed(a).is_some_and(|(_, _, names)| {
                    names.len() == 1 && !names[0].value.eq_ignore_ascii_case(&a.value)
                }) =>
            {
                projection.push(SelectItem::ExprWithAlias {
                    expr: Expr::Identifier(a.clone()),
                    alias: a.clone(),
                });
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _) => {
                let found = match n.0.as_slice() {
                    [part] => part.as_ident().and_then(renamed),
                    _ => None,
                };
                match found {
                    Some((_, q, names)) => projection.extend(names.iter().map(|c| {
                        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![
                            q.clone(),
                            c.clone(),
                        ]))
                    })),
                    None => projection.push(item),
                }
            }
            _ => projection.push(item),
        }
    }
    select.projection = projection;
    // References to the function's alias now name the merged relation.
    struct Renames<'a>(&'a [Rename], &'a [String]);
    impl VisitorMut for Renames<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            let found = |a: &Ident| {
                self.0
                    .iter()
                    .find(|(alias, _, _)| a.value.to_ascii_lowercase() == *alias)
            };
            match e {
                Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                    if let Some((_, q, names)) = found(&parts[0]) {
                        let column = if names.len() == 1 {
                            names[0].clone()
                        } else {
                            parts[1].clone()
                        };
                        *e = Expr::CompoundIdentifier(vec![q.clone(), column]);
                    }
                }
                Expr::Identifier(a) => {
                    if let Some((alias, q, names)) = found(a)
                        && !self.1.contains(alias)
                        && names.len() == 1
                        && !names[0].value.eq_ignore_ascii_case(&a.value)
                    {
                        *e = Expr::CompoundIdentifier(vec![q.clone(), names[0].clone()]);
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(q, &mut Renames(&renames, &shadowed));
}
