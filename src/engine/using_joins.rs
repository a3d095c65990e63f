//! `JOIN ... USING (k)` as PostgreSQL reads it: the joined column `k`
//! (unqualified, or in `*`) is one column, `COALESCE(l.k, r.k)` for a
//! `RIGHT` or `FULL` join, where DataFusion gives the left table's `k` (NULL
//! for the rows only the right side has) and finds an unqualified `k` in
//! WHERE ambiguous. Each USING join becomes `ON <left k> = r.k`, where the
//! left `k` is the merged column of an earlier USING join of the same FROM
//! item or the one relation on the left that has a `k`; an unqualified `k`
//! at that query's level becomes the merged value and `*` becomes the
//! columns in PostgreSQL's order (merged columns first, then the left's
//! other columns, then the right's). Qualified `l.k` / `r.k` keep their
//! side's value, as in PostgreSQL.
//!
//! Runs after binding, which knows each table's columns; a derived table's
//! or a WITH query's are read from its select list. Where a relation's
//! columns cannot be known (a select list of unnamed expressions or `*`, a
//! table function) the query is left to DataFusion, unless a `RIGHT` or
//! `FULL` USING join's merged column is read through it, which is refused
//! (`0A000`) rather than answered with the left key.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator, ObjectName,
    OrderByKind, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement,
    TableFactor, VisitorMut, WildcardAdditionalOptions,
};

use super::names::{at_level, at_level_mut, repeated_alias};
use crate::error::{Error, Result};
use crate::frontend::compat::call;
use crate::frontend::names::normalize_ident;

/// The names of a relation's columns, in order, when they can be known.
pub type ColumnsOf<'a> = dyn Fn(&TableFactor) -> Option<Vec<String>> + 'a;

/// Rewrite every query level of `stmt` that has such a join.
/// `columns_of` answers for tables and versioned tables (as bound).
pub fn rewrite(stmt: &mut Statement, columns_of: &ColumnsOf) -> Result<()> {
    struct V<'a> {
        scope: Scope<'a>,
        error: Option<Error>,
    }
    impl VisitorMut for V<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            self.scope.enter(q);
            let merged = merge_using_columns(q, &|f| self.scope.lookup(f));
            if merged.is_ok() {
                one_column_rows(q, &|f| self.scope.lookup(f));
            }
            match merged {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    self.error = Some(e);
                    ControlFlow::Break(())
                }
            }
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.scope.leave();
            ControlFlow::Continue(())
        }
    }
    let mut v = V {
        scope: Scope::new(columns_of),
        error: None,
    };
    let _ = crate::visit::walk_mut(stmt, &mut v);
    v.error.map_or(Ok(()), Err)
}

/// The columns of the relations a query level reads: its WITH queries in
/// scope by their names, else a bound table's.
pub(super) struct Scope<'a> {
    columns_of: &'a ColumnsOf<'a>,
    /// WITH queries in scope, per query level: name and columns.
    ctes: Vec<Vec<(String, Option<Vec<String>>)>>,
}

impl<'a> Scope<'a> {
    pub(super) fn new(columns_of: &'a ColumnsOf<'a>) -> Self {
        Scope {
            columns_of,
            ctes: vec![],
        }
    }

    /// A query level begins: its WITH queries come into scope.
    pub(super) fn enter(&mut self, q: &Query) {
        self.ctes.push(vec![]);
        for c in q.with.iter().flat_map(|w| &w.cte_tables) {
            let named: Vec<String> = c
                .alias
                .columns
                .iter()
                .map(|d| normalize_ident(&d.name))
                .collect();
            let columns = if named.is_empty() {
                output_names(&c.query, &|f| self.lookup(f))
            } else {
                Some(named)
            };
            let entry = (normalize_ident(&c.alias.name), columns);
            self.ctes.last_mut().expect("pushed").push(entry);
        }
    }

    /// A query level ends.
    pub(super) fn leave(&mut self) {
        self.ctes.pop();
    }

    /// A WITH query's columns by its name, else a bound table's.
    pub(super) fn lookup(&self, f: &TableFactor) -> Option<Vec<String>> {
        if let TableFactor::Table {
            name,
            args: None,
            version: None,
            ..
        } = f
            && let [one] = name.0.as_slice()
            && let Some(id) = one.as_ident()
        {
            let n = normalize_ident(id);
            if let Some(found) = self.ctes.iter().rev().flatten().find(|(c, _)| *c == n) {
                return found.1.clone();
            }
        }
        (self.columns_of)(f)
    }
}

/// The names of a query's output columns, when each can be known: named
/// expressions, columns, function calls (named after the function) and
/// casts of a column, and `*` over relations whose columns are known and
/// not joined by name.
fn output_names(q: &Query, columns_of: &ColumnsOf) -> Option<Vec<String>> {
    fn expr_name(e: &Expr) -> Option<String> {
        match e {
            Expr::Identifier(id) => Some(normalize_ident(id)),
            Expr::CompoundIdentifier(parts) => parts.last().map(normalize_ident),
            Expr::Function(f) => f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(normalize_ident),
            Expr::Cast { expr, .. } => match expr.as_ref() {
                e @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => expr_name(e),
                _ => None,
            },
            Expr::Nested(e) => expr_name(e),
            _ => None,
        }
    }
    fn of(body: &SetExpr, columns_of: &ColumnsOf) -> Option<Vec<String>> {
        match body {
            SetExpr::Select(s) => {
                let mut names = vec![];
                for item in &s.projection {
                    match item {
                        SelectItem::UnnamedExpr(e) => names.push(expr_name(e)?),
                        SelectItem::ExprWithAlias { alias, .. } => {
                            names.push(normalize_ident(alias))
                        }
                        SelectItem::Wildcard(o) if *o == WildcardAdditionalOptions::default() => {
                            for item in &s.from {
                                if item.joins.iter().any(|j| {
                                    using_columns(&j.join_operator).is_some()
                                        || matches!(
                                            constraint(&j.join_operator),
                                            Some(JoinConstraint::Natural)
                                        )
                                }) {
                                    return None;
                                }
                                for f in std::iter::once(&item.relation)
                                    .chain(item.joins.iter().map(|j| &j.relation))
                                {
                                    names.extend(columns(f, columns_of)?);
                                }
                            }
                        }
                        SelectItem::QualifiedWildcard(
                            SelectItemQualifiedWildcardKind::ObjectName(q),
                            o,
                        ) if *o == WildcardAdditionalOptions::default() => {
                            let f = s
                                .from
                                .iter()
                                .flat_map(|i| {
                                    std::iter::once(&i.relation)
                                        .chain(i.joins.iter().map(|j| &j.relation))
                                })
                                .find(|f| qualifier(f).as_ref() == Some(q))?;
                            names.extend(columns(f, columns_of)?);
                        }
                        _ => return None,
                    }
                }
                Some(names)
            }
            SetExpr::Query(q) => of(&q.body, columns_of),
            SetExpr::SetOperation { left, .. } => of(left, columns_of),
            // `column1`, `column2`, ... (renamed by an alias's list).
            SetExpr::Values(v) => v
                .rows
                .first()
                .map(|r| (1..=r.len()).map(|i| format!("column{i}")).collect()),
            _ => None,
        }
    }
    of(&q.body, columns_of)
}

/// The name a FROM relation's columns are qualified by.
pub(super) fn qualifier(f: &TableFactor) -> Option<ObjectName> {
    match f {
        TableFactor::Table {
            alias: Some(a),
            args: None,
            ..
        }
        | TableFactor::Derived { alias: Some(a), .. } => {
            Some(ObjectName::from(vec![a.name.clone()]))
        }
        TableFactor::Table {
            name,
            alias: None,
            args: None,
            ..
        } => Some(name.clone()),
        _ => None,
    }
}

/// The columns of a FROM relation, as its qualifier names them.
pub(super) fn columns(f: &TableFactor, columns_of: &ColumnsOf) -> Option<Vec<String>> {
    let underlying = match f {
        TableFactor::Derived { subquery, .. } => output_names(subquery, columns_of),
        TableFactor::Table { .. } => columns_of(f),
        _ => None,
    };
    let renamed: Vec<String> = match f {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            a.columns.iter().map(|c| normalize_ident(&c.name)).collect()
        }
        _ => vec![],
    };
    match underlying {
        Some(u) if u.len() >= renamed.len() => Some(
            renamed
                .iter()
                .cloned()
                .chain(u.into_iter().skip(renamed.len()))
                .collect(),
        ),
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

fn constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    use JoinOperator as J;
    match op {
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
        | J::RightAnti(c) => Some(c),
        _ => None,
    }
}

/// `NATURAL [kind] JOIN r` as `[kind] JOIN r USING (the columns both
/// sides have)`, in the left side's order, when both sides' columns are
/// known: its merged columns are then PostgreSQL's (DataFusion's FULL
/// NATURAL JOIN gave the left key, NULL for the rows only the right side
/// has). No common column makes it a join on `true`.
fn natural_as_using(select: &mut Select, columns_of: &ColumnsOf) {
    use JoinOperator as J;
    for item in select.from.iter_mut() {
        let mut left: Option<Vec<String>> = columns(&item.relation, columns_of);
        for join in item.joins.iter_mut() {
            let right = columns(&join.relation, columns_of);
            if matches!(
                constraint(&join.join_operator),
                Some(JoinConstraint::Natural)
            ) && let (Some(l), Some(r)) = (&left, &right)
            {
                let common: Vec<ObjectName> = l
                    .iter()
                    .filter(|c| r.contains(c))
                    .map(|c| ObjectName::from(vec![Ident::with_quote('"', c)]))
                    .collect();
                let c = if common.is_empty() {
                    JoinConstraint::On(Expr::Value(
                        datafusion::sql::sqlparser::ast::Value::Boolean(true).into(),
                    ))
                } else {
                    JoinConstraint::Using(common)
                };
                join.join_operator = match &join.join_operator {
                    J::Join(_) => J::Join(c),
                    J::Inner(_) => J::Inner(c),
                    J::Left(_) => J::Left(c),
                    J::LeftOuter(_) => J::LeftOuter(c),
                    J::Right(_) => J::Right(c),
                    J::RightOuter(_) => J::RightOuter(c),
                    J::FullOuter(_) => J::FullOuter(c),
                    other => other.clone(),
                };
            }
            left = match (left, right) {
                (Some(mut l), Some(r)) => {
                    l.extend(r.into_iter().filter(|c| !l.contains(c)).collect::<Vec<_>>());
                    Some(l)
                }
                _ => None,
            };
        }
    }
}

fn on_mut(op: &mut JoinOperator) -> Option<&mut Expr> {
    use JoinOperator as J;
    match op {
        J::Join(JoinConstraint::On(on))
        | J::Inner(JoinConstraint::On(on))
        | J::Left(JoinConstraint::On(on))
        | J::LeftOuter(JoinConstraint::On(on))
        | J::Right(JoinConstraint::On(on))
        | J::RightOuter(JoinConstraint::On(on))
        | J::FullOuter(JoinConstraint::On(on)) => Some(on),
        _ => None,
    }
}

/// `q.c` as an expression.
fn qualified(q: &ObjectName, c: &str) -> Expr {
    let mut parts: Vec<Ident> = q.0.iter().filter_map(|p| p.as_ident().cloned()).collect();
    parts.push(Ident::with_quote('"', c));
    Expr::CompoundIdentifier(parts)
}

/// A column of a FROM item's output: its name and value.
type Output = (String, Expr);

/// What the USING joins of one query level became.
struct Merged {
    /// Unqualified name to merged value.
    values: Vec<Output>,
    /// The output of `*`: a FROM item's columns, or for an item without
    /// USING joins whose columns are not all known, its relations' `*`.
    star: Vec<SelectItem>,
}

/// Plan every USING join of `select`'s FROM list, or `None` when a
/// column it needs cannot be known.
fn plan_joins(select: &Select, columns_of: &ColumnsOf) -> Option<(Merged, Vec<Vec<JoinOperator>>)> {
    let star_used = select.projection.iter().any(
        |i| matches!(i, SelectItem::Wildcard(o) if *o == WildcardAdditionalOptions::default()),
    );
    let mut values: Vec<Output> = vec![];
    let mut star: Vec<SelectItem> = vec![];
    let mut star_names: Vec<String> = vec![];
    let mut operators = vec![];
    for item in &select.from {
        let mut item_values: Vec<Output> = vec![];
        let q = qualifier(&item.relation);
        let cols = q.as_ref().and_then(|_| columns(&item.relation, columns_of));
        // Relations joined so far: qualifier and columns.
        let mut rels: Vec<(Option<ObjectName>, Option<Vec<String>>)> = vec![(q, cols)];
        // The item's output so far, when known.
        let mut output: Option<Vec<Output>> = match &rels[0] {
            (Some(q), Some(c)) => Some(c.iter().map(|c| (c.clone(), qualified(q, c))).collect()),
            _ => None,
        };
        let mut ops = vec![];
        for join in &item.joins {
            let rq = qualifier(&join.relation);
            let rcols = rq
                .as_ref()
                .and_then(|_| columns(&join.relation, columns_of));
            let right_output: Option<Vec<Output>> = match (&rq, &rcols) {
                (Some(q), Some(c)) => {
                    Some(c.iter().map(|c| (c.clone(), qualified(q, c))).collect())
                }
                _ => None,
            };
            let Some((names, coalesced)) = using_columns(&join.join_operator) else {
                if matches!(
                    constraint(&join.join_operator),
                    Some(JoinConstraint::Natural)
                ) {
                    return None;
                }
                ops.push(join.join_operator.clone());
                output = match (output, right_output) {
                    (Some(mut l), Some(r)) => {
                        l.extend(r);
                        Some(l)
                    }
                    _ => None,
                };
                rels.push((rq, rcols));
                continue;
            };
            let (Some(rq), Some(rcols)) = (rq, rcols) else {
                return None;
            };
            let names: Vec<String> = names
                .iter()
                .map(|n| match n.0.as_slice() {
                    [part] => part.as_ident().map(normalize_ident),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            let mut on: Option<Expr> = None;
            let mut merged_here = vec![];
            for n in &names {
                if !rcols.contains(n) {
                    return None;
                }
                let left = match item_values.iter().find(|(m, _)| m == n) {
                    Some((_, v)) => v.clone(),
                    None => {
                        let mut having = rels.iter().filter(|(_, c)| match c {
                            Some(c) => c.contains(n),
                            None => true,
                        });
                        match (having.next(), having.next()) {
                            (Some((Some(q), Some(_))), None) => qualified(q, n),
                            _ => return None,
                        }
                    }
                };
                let right = qualified(&rq, n);
                let eq = Expr::BinaryOp {
                    left: Box::new(left.clone()),
                    op: BinaryOperator::Eq,
                    right: Box::new(right.clone()),
                };
                on = Some(match on {
                    None => eq,
                    Some(a) => Expr::BinaryOp {
                        left: Box::new(a),
                        op: BinaryOperator::And,
                        right: Box::new(eq),
                    },
                });
                let value = if coalesced {
                    call("coalesce", vec![left, right], vec![])
                } else {
                    left
                };
                merged_here.push((n.clone(), value));
            }
            let on = on?;
            ops.push(match &join.join_operator {
                JoinOperator::FullOuter(_) => JoinOperator::FullOuter(JoinConstraint::On(on)),
                JoinOperator::Right(_) | JoinOperator::RightOuter(_) => {
                    JoinOperator::RightOuter(JoinConstraint::On(on))
                }
                JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => {
                    JoinOperator::LeftOuter(JoinConstraint::On(on))
                }
                _ => JoinOperator::Inner(JoinConstraint::On(on)),
            });
            output = match (output, right_output) {
                (Some(l), Some(r)) => {
                    let mut o = merged_here.clone();
                    o.extend(l.into_iter().filter(|(c, _)| !names.contains(c)));
                    o.extend(r.into_iter().filter(|(c, _)| !names.contains(c)));
                    Some(o)
                }
                _ => None,
            };
            for (n, v) in merged_here {
                match item_values.iter_mut().find(|(m, _)| *m == n) {
                    Some(slot) => slot.1 = v,
                    None => item_values.push((n, v)),
                }
            }
            rels.push((Some(rq), Some(rcols)));
        }
        if star_used {
            match output {
                Some(o) => {
                    for (name, expr) in o {
                        // Names may repeat (`*` over a FULL JOIN USING
                        // (k, s) and another table with an `s`).
                        let alias = if star_names.contains(&name) {
                            repeated_alias(&name, star.len())
                        } else {
                            name.clone()
                        };
                        star_names.push(name);
                        star.push(SelectItem::ExprWithAlias {
                            expr,
                            alias: Ident::with_quote('"', alias),
                        });
                    }
                }
                None if item_values.is_empty() => {
                    for (q, _) in rels {
                        star.push(SelectItem::QualifiedWildcard(
                            SelectItemQualifiedWildcardKind::ObjectName(q?),
                            WildcardAdditionalOptions::default(),
                        ));
                    }
                }
                None => return None,
            }
        }
        operators.push(ops);
        for (n, v) in item_values {
            // The same merged name in two FROM items is ambiguous.
            if values.iter().any(|(m, _)| *m == n) {
                return None;
            }
            values.push((n, v));
        }
    }
    Some((Merged { values, star }, operators))
}

/// Whether `select` reads an unqualified `name` (one of `names`) or an
/// unqualified `*` at its own level.
fn reads_merged(select: &Select, names: &[String]) -> bool {
    if select
        .projection
        .iter()
        .any(|i| matches!(i, SelectItem::Wildcard(_)))
    {
        return true;
    }
    let mut found = false;
    let _ = at_level(select, &mut |e| {
        found |= matches!(e, Expr::Identifier(id) if names.contains(&normalize_ident(id)));
    });
    found
}

fn merge_using_columns(q: &mut Query, columns_of: &ColumnsOf) -> Result<()> {
    let order = q.order_by.as_mut().and_then(|o| match &mut o.kind {
        OrderByKind::Expressions(exprs) => Some(exprs),
        _ => None,
    });
    merge_in(q.body.as_mut(), order, columns_of)
}

/// [`merge_using_columns`] for each select of a query body; `order` is
/// the query's ORDER BY when the body is one select.
fn merge_in(
    body: &mut SetExpr,
    order: Option<&mut Vec<datafusion::sql::sqlparser::ast::OrderByExpr>>,
    columns_of: &ColumnsOf,
) -> Result<()> {
    let select = match body {
        SetExpr::Select(select) => select,
        SetExpr::SetOperation { left, right, .. } => {
            merge_in(left, None, columns_of)?;
            return merge_in(right, None, columns_of);
        }
        _ => return Ok(()),
    };
    natural_as_using(select, columns_of);
    let has_using = select.from.iter().any(|item| {
        item.joins.iter().any(|j| {
            using_columns(&j.join_operator).is_some()
                || matches!(constraint(&j.join_operator), Some(JoinConstraint::Natural))
        })
    });
    if !has_using {
        return Ok(());
    }
    let Some((merged, operators)) = plan_joins(select, columns_of) else {
        // Left to DataFusion, whose merged column is the left one: right
        // for INNER and LEFT joins, not for RIGHT and FULL.
        let outer: Vec<String> = select
            .from
            .iter()
            .flat_map(|i| &i.joins)
            .filter_map(|j| match using_columns(&j.join_operator) {
                Some((names, true)) => Some(names),
                _ => None,
            })
            .flatten()
            .filter_map(|n| n.0.last().and_then(|p| p.as_ident()).map(normalize_ident))
            .collect();
        if !outer.is_empty() && reads_merged(select, &outer) {
            return Err(Error::not_supported(format!(
                "the merged column \"{}\" of a RIGHT or FULL JOIN ... USING whose sides' columns are not known before planning (a table function, or a subquery whose select list has unnamed expressions or *); name it by its table (l.{0}, r.{0}), or join with ON",
                outer[0]
            )));
        }
        return Ok(());
    };
    // Each FROM item's first USING join (past the end if none).
    let first_using: Vec<usize> = select
        .from
        .iter()
        .map(|i| {
            i.joins
                .iter()
                .position(|j| using_columns(&j.join_operator).is_some())
                .unwrap_or(i.joins.len())
        })
        .collect();
    for (item, ops) in select.from.iter_mut().zip(operators) {
        for (join, op) in item.joins.iter_mut().zip(ops) {
            join.join_operator = op;
        }
    }
    let values = &merged.values;

    let mut projection = Vec::with_capacity(select.projection.len());
    for item in select.projection.drain(..) {
        match item {
            SelectItem::Wildcard(opts) if opts == WildcardAdditionalOptions::default() => {
                projection.extend(merged.star.iter().cloned());
            }
            SelectItem::UnnamedExpr(Expr::Identifier(id))
                if values.iter().any(|(n, _)| *n == normalize_ident(&id)) =>
            {
                let expr = values
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
    let mut refs = |e: &mut Expr| {
        if let Expr::Identifier(id) = e
            && let Some((_, m)) = values.iter().find(|(n, _)| *n == normalize_ident(id))
        {
            *e = m.clone();
        }
    };
    for item in select.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            let _ = at_level_mut(e, &mut refs);
        }
    }
    // The ON of a join after a USING join may name its merged column too
    // (a USING join's own ON is of qualified names, left alone).
    at_clauses(select, &|i| first_using[i] + 1, &mut refs);
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
    if let Some(exprs) = order {
        for o in exprs {
            if matches!(&o.expr, Expr::Identifier(id) if outputs.contains(&normalize_ident(id))) {
                continue;
            }
            let _ = at_level_mut(&mut o.expr, &mut refs);
        }
    }
    Ok(())
}

/// Whether `q` is a set-returning function in FROM as the frontend plans
/// it: one select item that unnests a list or is a series, no FROM.
fn set_function(q: &Query) -> bool {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    let item = match s.projection.as_slice() {
        [SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }] => e,
        _ => return false,
    };
    let item = match item {
        Expr::Cast { expr, .. } => expr.as_ref(),
        e => e,
    };
    s.from.is_empty()
        && matches!(item, Expr::Function(f) if f.name.0.last().and_then(|p| p.as_ident())
            .is_some_and(|i| ["unnest", "generate_series"].contains(&i.value.to_ascii_lowercase().as_str())))
}

/// A bare name that is no column of the query's relations but the alias
/// of a set-returning function of one column reads that column:
/// PostgreSQL reads it as the function's whole row, which for a function
/// of one column is its value (`FROM jsonb_array_elements(d) AS e WHERE e ->> 'k'
/// = 'x'`). Left alone where a relation's columns cannot be known.
fn one_column_rows(q: &mut Query, columns_of: &ColumnsOf) {
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let mut names: Vec<String> = Vec::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    for item in &select.from {
        for f in std::iter::once(&item.relation).chain(item.joins.iter().map(|j| &j.relation)) {
            let Some(cols) = columns(f, columns_of) else {
                return;
            };
            if let TableFactor::Derived {
                alias: Some(a),
                subquery,
                ..
            } = f
                && set_function(subquery)
                && let [only] = cols.as_slice()
                && *only != normalize_ident(&a.name)
            {
                rows.push((normalize_ident(&a.name), only.clone()));
            }
            names.extend(cols);
        }
    }
    rows.retain(|(alias, _)| !names.contains(alias));
    if rows.is_empty() {
        return;
    }
    let value = |id: &Ident| {
        let n = normalize_ident(id);
        rows.iter().find(|(a, _)| *a == n).map(|(a, c)| {
            Expr::CompoundIdentifier(vec![Ident::with_quote('"', a), Ident::with_quote('"', c)])
        })
    };
    let mut refs = |e: &mut Expr| {
        if let Expr::Identifier(id) = e
            && let Some(v) = value(id)
        {
            *e = v;
        }
    };
    for item in select.projection.iter_mut() {
        match item {
            // Named as it was written.
            SelectItem::UnnamedExpr(Expr::Identifier(id)) if value(id).is_some() => {
                let expr = value(id).expect("found");
                *item = SelectItem::ExprWithAlias {
                    expr,
                    alias: id.clone(),
                };
            }
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                let _ = at_level_mut(e, &mut refs);
            }
            _ => {}
        }
    }
    at_clauses(select, &|_| 0, &mut refs);
}

/// `refs` applied at the query's own level (not in subqueries) to its
/// WHERE, the ON of the joins of each FROM item `i` from its join
/// `first_join(i)` on, GROUP BY and HAVING.
fn at_clauses(
    select: &mut Select,
    first_join: &dyn Fn(usize) -> usize,
    refs: &mut dyn FnMut(&mut Expr),
) {
    if let Some(w) = select.selection.as_mut() {
        let _ = at_level_mut(w, refs);
    }
    for (i, item) in select.from.iter_mut().enumerate() {
        for join in item.joins.iter_mut().skip(first_join(i)) {
            if let Some(on) = on_mut(&mut join.join_operator) {
                let _ = at_level_mut(on, refs);
            }
        }
    }
    if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        for e in exprs {
            let _ = at_level_mut(e, refs);
        }
    }
    if let Some(h) = select.having.as_mut() {
        let _ = at_level_mut(h, refs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    /// `sql` rewritten over tables `a (k, x)`, `b (k, y)`, `c (k, x)`, `d (y)`.
    fn rewritten(sql: &str) -> Result<String> {
        let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        let columns = |f: &TableFactor| -> Option<Vec<String>> {
            let TableFactor::Table {
                name, args: None, ..
            } = f
            else {
                return None;
            };
            let cols: &[&str] = match name.to_string().as_str() {
                "a" => &["k", "x"],
                "b" => &["k", "y"],
                "c" => &["k", "x"],
                "d" => &["y"],
                _ => return None,
            };
            Some(cols.iter().map(|c| c.to_string()).collect())
        };
        rewrite(&mut stmt, &columns)?;
        Ok(stmt.to_string())
    }

    #[test]
    fn a_using_join_after_another_join_merges_with_the_left_side_that_has_the_column() {
        assert_eq!(
            rewritten("SELECT k FROM a JOIN d ON a.x = d.y FULL JOIN c USING (k)").unwrap(),
            "SELECT coalesce(a.\"k\", c.\"k\") AS k FROM a JOIN d ON a.x = d.y \
             FULL JOIN c ON a.\"k\" = c.\"k\""
        );
    }

    #[test]
    fn chained_using_joins_merge_the_merged_column() {
        assert_eq!(
            rewritten("SELECT * FROM a FULL JOIN b USING (k) FULL JOIN c USING (k)").unwrap(),
            "SELECT coalesce(coalesce(a.\"k\", b.\"k\"), c.\"k\") AS \"k\", a.\"x\" AS \"x\", \
             b.\"y\" AS \"y\", c.\"x\" AS \"x\u{1f}3\" FROM a FULL JOIN b ON a.\"k\" = b.\"k\" \
             FULL JOIN c ON coalesce(a.\"k\", b.\"k\") = c.\"k\""
        );
    }

    #[test]
    fn a_subquery_s_columns_are_read_from_its_select_list() {
        assert_eq!(
            rewritten(
                "WITH w AS (SELECT * FROM a) \
                 SELECT k FROM (SELECT b.*, count(*), y::text FROM b) s RIGHT JOIN w USING (k)"
            )
            .unwrap(),
            "WITH w AS (SELECT * FROM a) SELECT coalesce(s.\"k\", w.\"k\") AS k FROM \
             (SELECT b.*, count(*), y::TEXT FROM b) s RIGHT OUTER JOIN w ON s.\"k\" = w.\"k\""
        );
    }

    #[test]
    fn a_column_two_left_relations_have_is_left_to_the_planner() {
        // PostgreSQL: "common column name k appears more than once".
        let sql = "SELECT a.k FROM a JOIN c ON true JOIN b USING(k)";
        assert_eq!(rewritten(sql).unwrap(), sql);
    }

    #[test]
    fn an_outer_merged_column_over_unknown_columns_is_refused_not_answered_wrong() {
        let e =
            rewritten("SELECT k FROM f() AS g JOIN a USING (k) FULL JOIN b USING (k)").unwrap_err();
        assert!(
            matches!(e.kind, crate::error::ErrorKind::FeatureNotSupported),
            "{e}"
        );
        // Not read unqualified: planned as written.
        let sql = "SELECT b.k FROM f() AS g FULL JOIN b USING(k)";
        assert_eq!(rewritten(sql).unwrap(), sql);
    }
}
