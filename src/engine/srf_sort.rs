//! `SELECT unnest(tags) FROM t ORDER BY id`: a set-returning function in
//! the select list and an ORDER BY key that is not an output column.
//! DataFusion adds such a key to the select list for an ordinary query but
//! not past an unnest ("column id does not exist"). The query is planned
//! as PostgreSQL evaluates it, the key computed beside the output columns
//! for each row the function returns:
//!
//! ```text
//!  SELECT f(x) AS a, b FROM t ORDER BY k LIMIT n
//!   ─▶ SELECT c1 AS a, c2 AS b
//!      FROM (SELECT f(x) AS c1, b AS c2, k AS k1 FROM t) AS s
//!      ORDER BY k1 LIMIT n
//! ```

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, OrderByKind, Query, SelectItem, SetExpr, Statement, TableFactor, Value, VisitorMut,
};

use super::names::pg_name;
use crate::frontend::names::normalize_ident;

const COLUMN: &str = "__sluice_c";
const KEY: &str = "__sluice_k";

/// Rewrite every such query of `stmt` (inner ones first).
pub fn rewrite(stmt: &mut Statement) {
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            if let Some(rewritten) = hidden_keys(q) {
                *q = rewritten;
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V);
}

/// Whether `e` calls `unnest` anywhere outside a subquery.
fn unnests(e: &Expr) -> bool {
    crate::visit::visit_expressions(e, |x| match x {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
            ControlFlow::Continue(())
        }
        Expr::Function(f)
            if f.name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("unnest")) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn hidden_keys(q: &Query) -> Option<Query> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let keys = match &q.order_by.as_ref()?.kind {
        OrderByKind::Expressions(keys) if !keys.is_empty() => keys,
        _ => return None,
    };
    if select.distinct.is_some() {
        return None;
    }
    let mut names = Vec::new();
    let mut values = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(e) => {
                names.push(pg_name(e));
                values.push(e.clone());
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                names.push(normalize_ident(alias));
                values.push(expr.clone());
            }
            _ => return None,
        }
    }
    if !values.iter().any(unnests) {
        return None;
    }
    // Keys that name an output column or its position stay as they are.
    let hidden = |e: &Expr| match e {
        Expr::Value(v) => !matches!(v.value, Value::Number(..)),
        Expr::Identifier(id) => !names.contains(&normalize_ident(id)),
        _ => true,
    };
    if !keys.iter().any(|k| hidden(&k.expr)) {
        return None;
    }
    let mut inner = q.clone();
    inner.with = None;
    inner.order_by = None;
    inner.limit_clause = None;
    inner.fetch = None;
    let SetExpr::Select(inner_select) = inner.body.as_mut() else {
        return None;
    };
    inner_select.projection = values
        .into_iter()
        .enumerate()
        .map(|(i, expr)| SelectItem::ExprWithAlias {
            expr,
            alias: Ident::new(format!("{COLUMN}{i}")),
        })
        .collect();
    let mut outer = q.clone();
    let mut order = q.order_by.clone()?;
    if let OrderByKind::Expressions(keys) = &mut order.kind {
        for (j, k) in keys.iter_mut().enumerate() {
            if hidden(&k.expr) {
                inner_select.projection.push(SelectItem::ExprWithAlias {
                    expr: k.expr.clone(),
                    alias: Ident::new(format!("{KEY}{j}")),
                });
                k.expr = Expr::Identifier(Ident::new(format!("{KEY}{j}")));
            }
        }
    }
    outer.order_by = Some(order);
    let mut shell =
        crate::frontend::template::query("SELECT 1 FROM (SELECT 1) AS __sluice_srf", &[]).ok()?;
    let SetExpr::Select(shell_select) = shell.body.as_mut() else {
        return None;
    };
    if let TableFactor::Derived { subquery, .. } = &mut shell_select.from.first_mut()?.relation {
        **subquery = inner;
    }
    shell_select.projection = names
        .iter()
        .enumerate()
        .map(|(i, n)| SelectItem::ExprWithAlias {
            expr: Expr::Identifier(Ident::new(format!("{COLUMN}{i}"))),
            alias: Ident::with_quote('"', n),
        })
        .collect();
    outer.body = shell.body;
    Some(outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut stmt = crate::frontend::parse(sql).unwrap().remove(0);
        let crate::frontend::Stmt::Sql(s) = &mut stmt else {
            panic!("{sql}")
        };
        rewrite(s);
        s.to_string()
    }

    #[test]
    fn keys_outside_the_select_list_are_computed_beside_it() {
        assert_eq!(
            rewritten("SELECT unnest(tags) AS t FROM emp ORDER BY id DESC LIMIT 2"),
            "SELECT __sluice_c0 AS \"t\" FROM (SELECT unnest(tags) AS __sluice_c0, id AS \
             __sluice_k0 FROM emp) AS __sluice_srf ORDER BY __sluice_k0 DESC LIMIT 2"
        );
        // Output columns and positions need nothing.
        let plain = "SELECT id, unnest(tags) AS t FROM emp ORDER BY id, 2";
        assert_eq!(rewritten(plain), plain);
        let no_set = "SELECT name FROM emp ORDER BY id";
        assert_eq!(rewritten(no_set), no_set);
    }
}
