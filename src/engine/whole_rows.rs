//! Whole-row references in the JSON functions: `row_to_json(t)`,
//! `to_json(t)`, `json_agg(t)`, `to_jsonb(t.*)`, where `t` names a
//! relation of the query's FROM (and no column of it). PostgreSQL passes
//! the row as a record; here it becomes a struct of the relation's
//! columns under their names, which the JSON functions write as an object
//! (`{"id":1,"name":"a"}`). `row_to_json` is `to_json` of a record.
//! A relation whose columns cannot be known (a function's) is left as it
//! is, and DataFusion reports the name as a missing column.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, Query, SetExpr,
    Statement, TableFactor, Value, VisitorMut,
};

use super::normalize_ident;
use super::using_joins::{ColumnsOf, Scope, columns, qualifier};

/// The functions whose arguments may be whole rows.
const TAKING_ROWS: &[&str] = &[
    "row_to_json",
    "to_json",
    "to_jsonb",
    "json_build_array",
    "jsonb_build_array",
    "json_build_object",
    "jsonb_build_object",
    crate::types::json_fns::AGG_ELEMENT,
];

/// Rewrite every query level of `stmt`; inner levels first, so that a
/// name left in a subquery is a relation of an outer level.
pub fn rewrite(stmt: &mut Statement, columns_of: &ColumnsOf) {
    struct V<'a> {
        scope: Scope<'a>,
    }
    impl VisitorMut for V<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            self.scope.enter(q);
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            rewrite_body(q.body.as_mut(), &|f| self.scope.lookup(f));
            inline_one_row(q);
            self.scope.leave();
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(
        stmt,
        &mut V {
            scope: Scope::new(columns_of),
        },
    );
}

fn rewrite_body(body: &mut SetExpr, columns_of: &ColumnsOf) {
    let select = match body {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_body(left, columns_of);
            rewrite_body(right, columns_of);
            return;
        }
        SetExpr::Query(q) => return rewrite_body(q.body.as_mut(), columns_of),
        _ => return,
    };
    // (qualifier, its columns) of each relation of FROM.
    let mut relations: Vec<(String, Vec<String>)> = vec![];
    for item in &select.from {
        for f in std::iter::once(&item.relation).chain(item.joins.iter().map(|j| &j.relation)) {
            let (Some(q), Some(cols)) = (qualifier(f), columns(f, columns_of)) else {
                continue;
            };
            if let Some(name) = q.0.last().and_then(|p| p.as_ident()) {
                relations.push((normalize_ident(name), cols));
            }
        }
    }
    // A column of that name is what the name means.
    let is_column = |n: &str| {
        relations
            .iter()
            .any(|(_, cols)| cols.iter().any(|c| c == n))
    };
    let row_of = |n: &str| -> Option<Expr> {
        if is_column(n) {
            return None;
        }
        let (q, cols) = relations.iter().find(|(q, _)| q == n)?;
        let mut args = vec![];
        for c in cols {
            args.push(Expr::value(Value::SingleQuotedString(c.clone())));
            args.push(Expr::CompoundIdentifier(vec![
                Ident::with_quote('"', q.clone()),
                Ident::with_quote('"', c.clone()),
            ]));
        }
        Some(crate::frontend::compat::call("named_struct", args, vec![]))
    };
    let rewrite_calls = |e: &mut Expr| {
        let _ = crate::visit::visit_expressions_mut(e, |x| {
            let Expr::Function(f) = x else {
                return ControlFlow::<()>::Continue(());
            };
            let Some(name) = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.to_lowercase())
            else {
                return ControlFlow::Continue(());
            };
            if !TAKING_ROWS.contains(&name.as_str()) || f.name.0.len() != 1 {
                return ControlFlow::Continue(());
            }
            let FunctionArguments::List(list) = &mut f.args else {
                return ControlFlow::Continue(());
            };
            for arg in list.args.iter_mut() {
                let FunctionArg::Unnamed(a) = arg else {
                    continue;
                };
                let named = match a {
                    FunctionArgExpr::Expr(Expr::Identifier(id)) => Some(normalize_ident(id)),
                    FunctionArgExpr::QualifiedWildcard(ObjectName(parts)) if parts.len() == 1 => {
                        parts[0].as_ident().map(normalize_ident)
                    }
                    _ => None,
                };
                if let Some(row) = named.and_then(|n| row_of(&n)) {
                    *a = FunctionArgExpr::Expr(row);
                }
            }
            if name == "row_to_json" && list.args.len() == 1 {
                f.name = ObjectName::from(vec![Ident::new("to_json")]);
            }
            ControlFlow::Continue(())
        });
    };
    for item in select.projection.iter_mut() {
        use datafusion::sql::sqlparser::ast::SelectItem;
        match item {
            // An unnamed `row_to_json(t)` keeps PostgreSQL's name.
            SelectItem::UnnamedExpr(e) => {
                let before = match &*e {
                    Expr::Function(f) => f.name.to_string().to_lowercase(),
                    _ => String::new(),
                };
                rewrite_calls(e);
                let after = match &*e {
                    Expr::Function(f) => f.name.to_string().to_lowercase(),
                    _ => String::new(),
                };
                if before == "row_to_json" && after != before {
                    *item = SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: Ident::with_quote('"', before),
                    };
                }
            }
            SelectItem::ExprWithAlias { expr, .. } => rewrite_calls(expr),
            _ => {}
        }
    }
    for e in select
        .selection
        .iter_mut()
        .chain(select.having.iter_mut())
        .chain(select.qualify.iter_mut())
    {
        rewrite_calls(e);
    }
}

/// `SELECT ... FROM (SELECT a.x, a.y AS z) s` (one relation, a select of
/// named values and nothing else) as the select without FROM, `s.x` and
/// `z` read as the values: the derived table is one row, and its values
/// may name columns of an outer query (`(SELECT row_to_json(s) FROM
/// (SELECT d.title, d.budget) s)` per row of `d`), which a derived table
/// cannot read.
fn inline_one_row(q: &mut Query) {
    use datafusion::sql::sqlparser::ast::{SelectItem, TableAlias};
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let [item] = select.from.as_slice() else {
        return;
    };
    let TableFactor::Derived {
        lateral: false,
        subquery,
        alias:
            Some(TableAlias {
                name: alias,
                columns: renamed,
                ..
            }),
        ..
    } = &item.relation
    else {
        return;
    };
    if !item.joins.is_empty() || subquery.with.is_some() || subquery.order_by.is_some() {
        return;
    }
    if subquery.limit_clause.is_some() || subquery.fetch.is_some() {
        return;
    }
    let SetExpr::Select(inner) = subquery.body.as_ref() else {
        return;
    };
    if !inner.from.is_empty()
        || inner.selection.is_some()
        || inner.having.is_some()
        || inner.distinct.is_some()
        || !matches!(&inner.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(g, _) if g.is_empty())
    {
        return;
    }
    // (name, value) of each column; all named, and no aggregate (which
    // would make the one row a group) or set-returning function (which
    // makes it rows).
    let mut values: Vec<(String, Expr)> = vec![];
    for (i, item) in inner.projection.iter().enumerate() {
        let (name, e) = match item {
            SelectItem::ExprWithAlias { expr, alias } => (normalize_ident(alias), expr),
            SelectItem::UnnamedExpr(e @ Expr::Identifier(id)) => (normalize_ident(id), e),
            SelectItem::UnnamedExpr(e @ Expr::CompoundIdentifier(parts)) => {
                let Some(last) = parts.last() else { return };
                (normalize_ident(last), e)
            }
            _ => return,
        };
        let name = renamed.get(i).map_or(name, |c| normalize_ident(&c.name));
        let mut aggregate = false;
        let _ = crate::visit::visit_expressions(e, |x| {
            if let Expr::Function(f) = x
                && (crate::frontend::one_group::is_aggregate(f)
                    || f.over.is_some()
                    || set_returning(&f.name.to_string().to_lowercase()))
            {
                aggregate = true;
            }
            ControlFlow::<()>::Continue(())
        });
        if aggregate {
            return;
        }
        values.push((name, e.clone()));
    }
    let alias = normalize_ident(alias);
    let value_of = |e: &Expr| -> Option<Expr> {
        let name = match e {
            Expr::Identifier(id) => normalize_ident(id),
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [q, c] if normalize_ident(q) == alias => normalize_ident(c),
                _ => return None,
            },
            _ => return None,
        };
        values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| Expr::Nested(Box::new(v.clone())))
    };
    // Every reference to the relation must be one of its columns.
    let mut parts: Vec<&mut Expr> = vec![];
    for item in select.projection.iter_mut() {
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => parts.push(e),
            _ => return,
        }
    }
    parts.extend(select.selection.iter_mut());
    let mut unknown = false;
    for p in parts.iter() {
        let _ = crate::visit::visit_expressions(*p, |e| {
            if let Expr::CompoundIdentifier(ps) = e
                && ps.len() == 2
                && normalize_ident(&ps[0]) == alias
                && value_of(e).is_none()
            {
                unknown = true;
            }
            if let Expr::Identifier(id) = e
                && normalize_ident(id) == alias
            {
                unknown = true;
            }
            ControlFlow::<()>::Continue(())
        });
    }
    if unknown
        || select.having.is_some()
        || !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(g, _) if g.is_empty())
    {
        return;
    }
    // Unaliased items keep the names they had (`SELECT s.x` is `x`).
    for item in select.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(e) = item
            && let Some(name) = match &*e {
                Expr::Identifier(id) => Some(normalize_ident(id)),
                Expr::CompoundIdentifier(ps) => ps.last().map(normalize_ident),
                _ => None,
            }
            && value_of(e).is_some()
        {
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: Ident::with_quote('"', name),
            };
        }
    }
    for item in select.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            replace(e, &value_of);
        }
    }
    if let Some(w) = select.selection.as_mut() {
        replace(w, &value_of);
    }
    select.from.clear();
}

/// Whether the function `name` returns a set of rows (in a select list
/// too), or is one of Sluice's, which may stand for one.
fn set_returning(name: &str) -> bool {
    const SETS: &[&str] = &[
        "unnest",
        "generate_series",
        "generate_subscripts",
        "regexp_matches",
        "regexp_split_to_table",
        "json_array_elements",
        "json_array_elements_text",
        "jsonb_array_elements",
        "jsonb_array_elements_text",
        "json_each",
        "json_each_text",
        "jsonb_each",
        "jsonb_each_text",
        "json_object_keys",
        "jsonb_object_keys",
        "jsonb_path_query",
        "json_to_recordset",
        "jsonb_to_recordset",
        "json_populate_recordset",
        "jsonb_populate_recordset",
    ];
    SETS.contains(&name) || name.starts_with("sluice_")
}

/// `e` with each reference `value_of` knows replaced by its value.
fn replace(e: &mut Expr, value_of: &dyn Fn(&Expr) -> Option<Expr>) {
    let _ = crate::visit::visit_expressions_mut(e, |x| {
        if let Some(v) = value_of(x) {
            *x = v;
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut stmt = crate::frontend::parse_one(sql);
        let columns_of = |f: &TableFactor| match f {
            TableFactor::Table { name, .. } if name.to_string() == "t" => {
                Some(vec!["id".to_string(), "name".to_string()])
            }
            _ => None,
        };
        rewrite(&mut stmt, &columns_of);
        stmt.to_string()
    }

    #[test]
    fn a_relation_name_in_a_json_function_is_its_row() {
        assert_eq!(
            rewritten("SELECT row_to_json(t) FROM t"),
            "SELECT to_json(named_struct('id', \"t\".\"id\", 'name', \"t\".\"name\")) AS \
             \"row_to_json\" FROM t"
        );
        assert_eq!(
            rewritten("SELECT to_jsonb(x.*) FROM t AS x"),
            "SELECT to_jsonb(named_struct('id', \"x\".\"id\", 'name', \"x\".\"name\")) FROM t AS x"
        );
        // A column of that name is the column.
        let sql = "SELECT to_json(name) FROM t AS name";
        assert_eq!(rewritten(sql), sql);
        // A subquery's relation name that is an outer relation's.
        assert_eq!(
            rewritten("SELECT (SELECT to_json(t) FROM u) FROM t"),
            "SELECT (SELECT to_json(named_struct('id', \"t\".\"id\", 'name', \"t\".\"name\")) \
             FROM u) FROM t"
        );
    }
}
