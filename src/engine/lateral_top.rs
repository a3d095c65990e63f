//! The first rows per outer row, written as a LATERAL subquery with a
//! LIMIT (`LEFT JOIN LATERAL (SELECT ... FROM u WHERE u.k = t.k ORDER BY
//! u.at DESC LIMIT 1) s ON true`, also `CROSS JOIN LATERAL` and `,
//! LATERAL`). DataFusion cannot decorrelate a subquery that limits rows;
//! when the correlation is equalities of inner expressions with outer
//! columns, the rows are numbered per key instead and joined on the key:
//!
//! ```text
//!  t LEFT JOIN LATERAL (SELECT a FROM u WHERE u.k = t.k AND w ORDER BY o LIMIT n OFFSET m) s ON true
//!   ─▶ t LEFT JOIN (SELECT a, u.k AS __sluice_lk0,
//!                          row_number() OVER (PARTITION BY u.k ORDER BY o) AS __sluice_rn
//!                   FROM u WHERE w) s
//!        ON s.__sluice_lk0 = t.k AND s.__sluice_rn > m AND s.__sluice_rn <= m + n
//! ```
//!
//! The numbering columns are not shown: `*` and `s.*` of the outer query
//! are spelled out as the subquery's columns (left as written, and
//! answering `0A000`, when those have no names). Any other shape is left
//! as it is.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArguments, GroupByExpr, Ident, JoinConstraint, JoinOperator,
    LimitClause, OrderByKind, Query, SelectItem, SetExpr, Statement, TableFactor, Value,
    VisitorMut, WindowType,
};

use crate::frontend::names::normalize_ident;

const KEY: &str = "__sluice_lk";
const ROW: &str = "__sluice_rn";

/// Rewrite every such join of `stmt`.
pub fn rewrite(stmt: &mut Statement) {
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            rewrite_select(q);
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V);
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    }
}

fn number(n: u64) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

fn rewrite_select(q: &mut Query) {
    use datafusion::sql::sqlparser::ast::{
        ObjectName, SelectItemQualifiedWildcardKind, WildcardAdditionalOptions,
    };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    // `*` and `s.*` are spelled out, without the numbering columns: each
    // relation's qualifier must be known for `*`.
    let star = select
        .projection
        .iter()
        .any(|i| matches!(i, SelectItem::Wildcard(_)));
    let qualified = |f: &TableFactor| -> Option<ObjectName> {
        match f {
            TableFactor::Table { alias: Some(a), .. }
            | TableFactor::Derived { alias: Some(a), .. } => {
                Some(ObjectName::from(vec![a.name.clone()]))
            }
            TableFactor::Table { name, .. } => Some(name.clone()),
            _ => None,
        }
    };
    let all_qualified = select.from.iter().all(|twj| {
        std::iter::once(&twj.relation)
            .chain(twj.joins.iter().map(|j| &j.relation))
            .all(|f| qualified(f).is_some())
    });
    let plain_wildcards = select.projection.iter().all(|i| match i {
        SelectItem::Wildcard(o) | SelectItem::QualifiedWildcard(_, o) => {
            *o == WildcardAdditionalOptions::default()
        }
        _ => true,
    });
    let mut rewritten: Vec<(String, Vec<String>)> = Vec::new();
    let mut extra_where: Vec<Expr> = Vec::new();
    for (i, item) in select.from.iter_mut().enumerate() {
        let usable = |names: &Option<Vec<String>>, alias: &str, projection: &[SelectItem]| {
            let shown = star
                || projection.iter().any(|p| {
                    matches!(p, SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _)
                        if n.0.len() == 1 && n.0[0].as_ident().is_some_and(|i| normalize_ident(i) == alias))
                });
            !shown || (names.is_some() && plain_wildcards && (!star || all_qualified))
        };
        // `, LATERAL (...) s`: an inner join whose condition goes to WHERE.
        if i > 0
            && item.joins.is_empty()
            && let Some((relation, cond, alias, names)) = top_rows(&item.relation)
            && usable(&names, &alias, &select.projection)
        {
            item.relation = relation;
            extra_where.push(cond);
            rewritten.push((alias, names.unwrap_or_default()));
        }
        for join in item.joins.iter_mut() {
            let left = match &join.join_operator {
                JoinOperator::Left(JoinConstraint::On(e))
                | JoinOperator::LeftOuter(JoinConstraint::On(e))
                    if is_true(e) =>
                {
                    true
                }
                JoinOperator::CrossJoin(JoinConstraint::None) => false,
                JoinOperator::Join(JoinConstraint::On(e))
                | JoinOperator::Inner(JoinConstraint::On(e))
                | JoinOperator::CrossJoin(JoinConstraint::On(e))
                    if is_true(e) =>
                {
                    false
                }
                _ => continue,
            };
            let Some((relation, cond, alias, names)) = top_rows(&join.relation) else {
                continue;
            };
            if !usable(&names, &alias, &select.projection) {
                continue;
            }
            join.relation = relation;
            join.join_operator = if left {
                JoinOperator::LeftOuter(JoinConstraint::On(cond))
            } else {
                JoinOperator::Inner(JoinConstraint::On(cond))
            };
            rewritten.push((alias, names.unwrap_or_default()));
        }
    }
    for cond in extra_where {
        select.selection = Some(match select.selection.take() {
            Some(w) => and(w, cond),
            None => cond,
        });
    }
    if rewritten.is_empty() {
        return;
    }
    let columns_of = |alias: &str| -> Option<Vec<SelectItem>> {
        let (a, names) = rewritten.iter().find(|(a, _)| a == alias)?;
        Some(
            names
                .iter()
                .map(|n| {
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![
                        Ident::with_quote('"', a),
                        Ident::with_quote('"', n),
                    ]))
                })
                .collect(),
        )
    };
    let mut projection = Vec::with_capacity(select.projection.len());
    for item in std::mem::take(&mut select.projection) {
        match &item {
            SelectItem::Wildcard(_) => {
                for twj in &select.from {
                    for f in
                        std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation))
                    {
                        let Some(q) = qualified(f) else { continue };
                        let own = match q.0.as_slice() {
                            [one] => one.as_ident().map(normalize_ident),
                            _ => None,
                        };
                        match own.as_deref().and_then(columns_of) {
                            Some(items) => projection.extend(items),
                            None => projection.push(SelectItem::QualifiedWildcard(
                                SelectItemQualifiedWildcardKind::ObjectName(q),
                                WildcardAdditionalOptions::default(),
                            )),
                        }
                    }
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _)
                if n.0.len() == 1 =>
            {
                match n.0[0]
                    .as_ident()
                    .map(normalize_ident)
                    .as_deref()
                    .and_then(columns_of)
                {
                    Some(items) => projection.extend(items),
                    None => projection.push(item),
                }
            }
            _ => projection.push(item),
        }
    }
    select.projection = projection;
}

fn is_true(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if v.value == Value::Boolean(true))
}

/// The names that qualify a relation of a FROM list.
fn qualifiers(from: &[datafusion::sql::sqlparser::ast::TableWithJoins]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for twj in from {
        for f in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            match f {
                TableFactor::Table { alias: Some(a), .. }
                | TableFactor::Derived { alias: Some(a), .. } => {
                    names.push(normalize_ident(&a.name))
                }
                TableFactor::Table { name, .. } => {
                    names.push(normalize_ident(name.0.last()?.as_ident()?))
                }
                _ => return None,
            }
        }
    }
    Some(names)
}

/// Whether `e` names a relation that is not one of `inner` (an outer
/// column), outside any subquery of its own.
fn reads_outer(e: &Expr, inner: &[String]) -> bool {
    crate::visit::visit_expressions(e, |x| match x {
        Expr::CompoundIdentifier(parts)
            if parts.len() >= 2 && !inner.contains(&normalize_ident(&parts[parts.len() - 2])) =>
        {
            ControlFlow::Break(())
        }
        // A subquery's own names are not known here.
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Whether `e` calls an aggregate or a window function.
fn aggregates(e: &Expr) -> bool {
    crate::visit::visit_expressions(e, |x| match x {
        Expr::Function(f) if f.over.is_some() || crate::frontend::one_group::is_aggregate(f) => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// The derived table numbering the rows of a LATERAL subquery with a
/// LIMIT, and the join condition that keeps its first rows per outer row.
#[allow(clippy::type_complexity)]
fn top_rows(f: &TableFactor) -> Option<(TableFactor, Expr, String, Option<Vec<String>>)> {
    let TableFactor::Derived {
        lateral: true,
        subquery,
        alias: Some(alias),
        sample,
    } = f
    else {
        return None;
    };
    let name = normalize_ident(&alias.name);
    if !alias.columns.is_empty() || subquery.with.is_some() || subquery.fetch.is_some() {
        return None;
    }
    let (limit, offset) = match &subquery.limit_clause {
        Some(LimitClause::LimitOffset {
            limit: Some(Expr::Value(l)),
            offset,
            limit_by,
        }) if limit_by.is_empty() => {
            let Value::Number(n, _) = &l.value else {
                return None;
            };
            let n: u64 = n.parse().ok()?;
            let m: u64 = match offset {
                None => 0,
                Some(o) => match &o.value {
                    Expr::Value(v) => match &v.value {
                        Value::Number(m, _) => m.parse().ok()?,
                        _ => return None,
                    },
                    _ => return None,
                },
            };
            (n, m)
        }
        _ => return None,
    };
    let SetExpr::Select(s) = subquery.body.as_ref() else {
        return None;
    };
    if s.distinct.is_some()
        || s.having.is_some()
        || !matches!(&s.group_by, GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty())
        || !s.named_window.is_empty()
        || s.qualify.is_some()
    {
        return None;
    }
    let inner = qualifiers(&s.from)?;
    // The select list reads the inner relations only, and aggregates nothing.
    for item in &s.projection {
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                if reads_outer(e, &inner) || aggregates(e) {
                    return None;
                }
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {}
            _ => return None,
        }
    }
    // The correlation: `inner = outer` conjuncts; the rest stays inside.
    let mut pairs: Vec<(Expr, Expr)> = Vec::new();
    let mut kept: Vec<Expr> = Vec::new();
    let all: Vec<Expr> = s
        .selection
        .as_ref()
        .map(|w| crate::visit::conjuncts(w).into_iter().cloned().collect())
        .unwrap_or_default();
    for c in all {
        if !reads_outer(&c, &inner) {
            kept.push(c);
            continue;
        }
        let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = &c
        else {
            return None;
        };
        let outer_column =
            |e: &Expr| matches!(e, Expr::CompoundIdentifier(_)) && reads_outer(e, &inner);
        if outer_column(right) && !reads_outer(left, &inner) {
            pairs.push((*left.clone(), *right.clone()));
        } else if outer_column(left) && !reads_outer(right, &inner) {
            pairs.push((*right.clone(), *left.clone()));
        } else {
            return None;
        }
    }
    if pairs.is_empty() {
        return None;
    }
    // The order of the rows within a key: the subquery's ORDER BY, its
    // output names read as the expressions they name.
    let aliases: Vec<(String, Expr)> = s
        .projection
        .iter()
        .filter_map(|i| match i {
            SelectItem::ExprWithAlias { expr, alias } => {
                Some((normalize_ident(alias), expr.clone()))
            }
            _ => None,
        })
        .collect();
    let mut order = Vec::new();
    if let Some(o) = &subquery.order_by {
        let OrderByKind::Expressions(keys) = &o.kind else {
            return None;
        };
        for k in keys {
            if reads_outer(&k.expr, &inner) || matches!(&k.expr, Expr::Value(_)) {
                return None;
            }
            let mut k = k.clone();
            if let Expr::Identifier(id) = &k.expr
                && let Some((_, e)) = aliases.iter().find(|(a, _)| *a == normalize_ident(id))
            {
                k.expr = e.clone();
            }
            order.push(k);
        }
    }
    let mut numbered = crate::frontend::template::query(
        "SELECT row_number() OVER (PARTITION BY 1 ORDER BY 1) AS __sluice_rn",
        &[],
    )
    .ok()?;
    let SetExpr::Select(template) = numbered.body.as_mut() else {
        return None;
    };
    let Some(SelectItem::ExprWithAlias {
        expr: Expr::Function(row_number),
        ..
    }) = template.projection.pop()
    else {
        return None;
    };
    let mut row_number = row_number;
    if let Some(WindowType::WindowSpec(spec)) = row_number.over.as_mut() {
        spec.partition_by = pairs.iter().map(|(i, _)| i.clone()).collect();
        spec.order_by = order;
    }
    if !matches!(row_number.args, FunctionArguments::List(_)) {
        return None;
    }
    // The subquery's output names, for a `*` of the outer query.
    let names: Option<Vec<String>> = s
        .projection
        .iter()
        .map(|i| match i {
            SelectItem::ExprWithAlias { alias, .. } => Some(normalize_ident(alias)),
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => Some(normalize_ident(id)),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                parts.last().map(normalize_ident)
            }
            _ => None,
        })
        .collect();
    let mut s2 = s.clone();
    s2.selection = kept.into_iter().reduce(and);
    for (i, (inner_expr, _)) in pairs.iter().enumerate() {
        s2.projection.push(SelectItem::ExprWithAlias {
            expr: inner_expr.clone(),
            alias: Ident::new(format!("{KEY}{i}")),
        });
    }
    s2.projection.push(SelectItem::ExprWithAlias {
        expr: Expr::Function(row_number),
        alias: Ident::new(ROW),
    });
    let mut q2 = subquery.as_ref().clone();
    q2.body = Box::new(SetExpr::Select(s2));
    q2.order_by = None;
    q2.limit_clause = None;
    let column =
        |c: String| Expr::CompoundIdentifier(vec![Ident::with_quote('"', &name), Ident::new(c)]);
    let mut cond: Option<Expr> = None;
    for (i, (_, outer)) in pairs.into_iter().enumerate() {
        let eq = Expr::BinaryOp {
            left: Box::new(column(format!("{KEY}{i}"))),
            op: BinaryOperator::Eq,
            right: Box::new(outer),
        };
        cond = Some(match cond {
            Some(c) => and(c, eq),
            None => eq,
        });
    }
    // The last row number kept; a limit past u64 keeps every row.
    let last = offset.saturating_add(limit);
    let row = || column(ROW.to_string());
    let mut cond = cond?;
    if offset > 0 {
        cond = and(
            cond,
            Expr::BinaryOp {
                left: Box::new(row()),
                op: BinaryOperator::Gt,
                right: Box::new(number(offset)),
            },
        );
    }
    cond = and(
        cond,
        Expr::BinaryOp {
            left: Box::new(row()),
            op: BinaryOperator::LtEq,
            right: Box::new(number(last)),
        },
    );
    Some((
        TableFactor::Derived {
            lateral: false,
            subquery: Box::new(q2),
            alias: Some(alias.clone()),
            sample: sample.clone(),
        },
        cond,
        name,
        names,
    ))
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
    fn the_first_rows_per_key_are_numbered_and_joined_on_the_key() {
        assert_eq!(
            rewritten(
                "SELECT t.id, s.v FROM t LEFT JOIN LATERAL \
                 (SELECT u.v FROM u WHERE u.k = t.id AND u.ok ORDER BY u.at DESC LIMIT 2) s ON true"
            ),
            "SELECT t.id, s.v FROM t LEFT OUTER JOIN (SELECT u.v, u.k AS __sluice_lk0, \
             row_number() OVER (PARTITION BY u.k ORDER BY u.at DESC) AS __sluice_rn FROM u \
             WHERE u.ok) s ON \"s\".__sluice_lk0 = t.id AND \"s\".__sluice_rn <= 2"
        );
        // `*` is spelled out without the numbering columns.
        let star =
            "SELECT * FROM t CROSS JOIN LATERAL (SELECT u.v FROM u WHERE u.k = t.id LIMIT 1) AS s";
        let out = rewritten(star);
        assert!(out.starts_with("SELECT t.*, \"s\".\"v\" FROM"), "{out}");
        // Unnamed columns cannot be spelled out: left as written.
        let unnamed = "SELECT * FROM t CROSS JOIN LATERAL (SELECT u.v + 1 FROM u WHERE u.k = t.id LIMIT 1) AS s";
        assert!(rewritten(unnamed).contains("LATERAL"));
        // A correlation that is no equality: left as written.
        let range = "SELECT s.v FROM t CROSS JOIN LATERAL (SELECT u.v FROM u WHERE u.k > t.id LIMIT 1) AS s";
        assert!(rewritten(range).contains("LATERAL"));
    }
}
