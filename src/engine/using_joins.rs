//! `JOIN ... USING (k)` as PostgreSQL reads it: the joined column `k`
//! (unqualified, or in `*`) is one column, `COALESCE(l.k, r.k)` for a
//! `RIGHT` or `FULL` join, where DataFusion gives the left table's `k` (NULL
//! for the rows only the right side has) and finds an unqualified `k` in
//! WHERE ambiguous. The join becomes `ON l.k = r.k`; an unqualified `k` at
//! that query's level becomes the merged value and `*` becomes
//! `k, l.* EXCLUDE (k), r.* EXCLUDE (k), ...` in PostgreSQL's column order.
//! Qualified `l.k` / `r.k` keep their side's value, as in PostgreSQL.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, ExcludeSelectItem, Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator,
    ObjectName, OrderByKind, Query, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    Statement, TableFactor, VisitMut, VisitorMut, WildcardAdditionalOptions,
};

use crate::frontend::compat::call;
use crate::frontend::names::normalize_ident;

/// Rewrite every query level of `stmt` that has such a join.
pub fn rewrite(stmt: &mut Statement) {
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            merge_using_columns(q);
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut V);
}

/// The name a FROM relation's columns are qualified by.
fn qualifier(f: &TableFactor) -> Option<ObjectName> {
    match f {
        TableFactor::Table {
            alias: Some(a),
            args: None,
            ..
        }
        | TableFactor::Derived { alias: Some(a), .. } => a
            .columns
            .is_empty()
            .then(|| ObjectName::from(vec![a.name.clone()])),
        TableFactor::Table {
            name,
            alias: None,
            args: None,
            ..
        } => Some(name.clone()),
        _ => None,
    }
}

/// The columns of a USING join and whether the merged value is the
/// coalesced one (`RIGHT`, `FULL`) rather than the left's.
fn using_columns(op: &JoinOperator) -> Option<(&[ObjectName], bool)> {
    match op {
        JoinOperator::Join(JoinConstraint::Using(c))
        | JoinOperator::Inner(JoinConstraint::Using(c))
        | JoinOperator::Left(JoinConstraint::Using(c))
        | JoinOperator::LeftOuter(JoinConstraint::Using(c)) => Some((c, false)),
        JoinOperator::Right(JoinConstraint::Using(c))
        | JoinOperator::RightOuter(JoinConstraint::Using(c))
        | JoinOperator::FullOuter(JoinConstraint::Using(c)) => Some((c, true)),
        _ => None,
    }
}

fn joins_by_name(op: &JoinOperator) -> bool {
    use JoinOperator as J;
    let c = match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c)
        | J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c) => c,
        _ => return false,
    };
    matches!(c, JoinConstraint::Using(_) | JoinConstraint::Natural)
}

fn merge_using_columns(q: &mut Query) {
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    // One USING join, the first join of its FROM item, and no
    // other join by name in this FROM list (chained USING joins merge
    // columns of merged columns: left to DataFusion).
    let mut found = None;
    let mut by_name = 0;
    for (i, item) in select.from.iter().enumerate() {
        for (j, join) in item.joins.iter().enumerate() {
            if joins_by_name(&join.join_operator) {
                by_name += 1;
                if j == 0 && using_columns(&join.join_operator).is_some() {
                    found = Some(i);
                }
            }
        }
    }
    let (Some(i), 1) = (found, by_name) else {
        return;
    };
    let item = &select.from[i];
    let (Some(left), Some(right)) = (
        qualifier(&item.relation),
        qualifier(&item.joins[0].relation),
    ) else {
        return;
    };
    let Some((columns, coalesced)) = using_columns(&item.joins[0].join_operator) else {
        return;
    };
    let Some(columns): Option<Vec<Ident>> = columns
        .iter()
        .map(|c| match c.0.as_slice() {
            [part] => part.as_ident().cloned(),
            _ => None,
        })
        .collect()
    else {
        return;
    };
    // Every relation's qualifier, for `*`.
    let mut relations = vec![];
    for item in &select.from {
        for f in std::iter::once(&item.relation).chain(item.joins.iter().map(|j| &j.relation)) {
            match qualifier(f) {
                Some(q) => relations.push(q),
                None => return,
            }
        }
    }
    let side = |q: &ObjectName, c: &Ident| {
        let mut parts: Vec<Ident> = q.0.iter().filter_map(|p| p.as_ident().cloned()).collect();
        parts.push(c.clone());
        Expr::CompoundIdentifier(parts)
    };
    let Some(on) = columns
        .iter()
        .map(|c| Expr::BinaryOp {
            left: Box::new(side(&left, c)),
            op: BinaryOperator::Eq,
            right: Box::new(side(&right, c)),
        })
        .reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        })
    else {
        return;
    };
    let merged: Vec<(String, Expr)> = columns
        .iter()
        .map(|c| {
            let value = if coalesced {
                call("coalesce", vec![side(&left, c), side(&right, c)], vec![])
            } else {
                side(&left, c)
            };
            (normalize_ident(c), value)
        })
        .collect();
    let join = &mut select.from[i].joins[0];
    join.join_operator = match &join.join_operator {
        JoinOperator::FullOuter(_) => JoinOperator::FullOuter(JoinConstraint::On(on)),
        JoinOperator::Right(_) | JoinOperator::RightOuter(_) => {
            JoinOperator::RightOuter(JoinConstraint::On(on))
        }
        JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => {
            JoinOperator::LeftOuter(JoinConstraint::On(on))
        }
        _ => JoinOperator::Inner(JoinConstraint::On(on)),
    };

    let mut projection = Vec::with_capacity(select.projection.len());
    for item in select.projection.drain(..) {
        match item {
            SelectItem::Wildcard(opts) if opts == WildcardAdditionalOptions::default() => {
                for (c, (_, e)) in columns.iter().zip(&merged) {
                    projection.push(SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: c.clone(),
                    });
                }
                for r in &relations {
                    let exclude = (*r == left || *r == right).then(|| {
                        ExcludeSelectItem::Multiple(
                            columns
                                .iter()
                                .map(|c| ObjectName::from(vec![c.clone()]))
                                .collect(),
                        )
                    });
                    projection.push(SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(r.clone()),
                        WildcardAdditionalOptions {
                            opt_exclude: exclude,
                            ..Default::default()
                        },
                    ));
                }
            }
            SelectItem::UnnamedExpr(Expr::Identifier(id))
                if merged.iter().any(|(n, _)| *n == normalize_ident(&id)) =>
            {
                let expr = merged
                    .iter()
                    .find(|(n, _)| *n == normalize_ident(&id))
                    .map(|(_, e)| e.clone())
                    .expect("found");
                projection.push(SelectItem::ExprWithAlias { expr, alias: id });
            }
            other => projection.push(other),
        }
    }
    select.projection = projection;

    // Unqualified references at this level (not in nested queries).
    struct Refs<'a> {
        merged: &'a [(String, Expr)],
        depth: usize,
    }
    impl VisitorMut for Refs<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Identifier(id) = e
                && let Some((_, m)) = self.merged.iter().find(|(n, _)| *n == normalize_ident(id))
            {
                *e = m.clone();
            }
            ControlFlow::Continue(())
        }
    }
    let mut refs = Refs {
        merged: &merged,
        depth: 0,
    };
    for item in select.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            let _ = e.visit(&mut refs);
        }
    }
    if let Some(w) = select.selection.as_mut() {
        let _ = w.visit(&mut refs);
    }
    // A later join's ON may name the merged column too.
    for join in select.from[i].joins.iter_mut().skip(1) {
        use JoinOperator as J;
        if let J::Join(JoinConstraint::On(on))
        | J::Inner(JoinConstraint::On(on))
        | J::Left(JoinConstraint::On(on))
        | J::LeftOuter(JoinConstraint::On(on))
        | J::Right(JoinConstraint::On(on))
        | J::RightOuter(JoinConstraint::On(on))
        | J::FullOuter(JoinConstraint::On(on)) = &mut join.join_operator
        {
            let _ = on.visit(&mut refs);
        }
    }
    if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        for e in exprs {
            let _ = e.visit(&mut refs);
        }
    }
    if let Some(h) = select.having.as_mut() {
        let _ = h.visit(&mut refs);
    }
    // ORDER BY a bare name reads the output column of that name first.
    let outputs: Vec<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(normalize_ident(alias)),
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => Some(normalize_ident(id)),
            _ => None,
        })
        .collect();
    if let Some(order) = q.order_by.as_mut()
        && let OrderByKind::Expressions(exprs) = &mut order.kind
    {
        for o in exprs {
            if matches!(&o.expr, Expr::Identifier(id) if outputs.contains(&normalize_ident(id))) {
                continue;
            }
            let _ = o.expr.visit(&mut refs);
        }
    }
}
