//! Scalar subqueries as PostgreSQL evaluates them.
//!
//! PostgreSQL runs `(SELECT title FROM dept WHERE code = emp.dept)` per row:
//! no row gives NULL, one row its value, two rows the error 21000. DataFusion
//! only plans a correlated scalar subquery that aggregates, so the subquery
//! becomes one that does, without changing what it means:
//!
//! ```text
//!  (SELECT e FROM ... )                 ─▶ sluice_subquery_value((SELECT sluice_subquery_rows(e) FROM ...))
//!  (SELECT e FROM ... ORDER BY o LIMIT 1) ─▶ (SELECT first_value(e ORDER BY o) FROM ...)
//! ```
//!
//! `sluice_subquery_rows` keeps at most two values of its group and
//! `sluice_subquery_value` turns them into the one value, or into 21000 for
//! an outer row that really meets two: a key that repeats where no outer
//! row looks is no error, as in PostgreSQL.
//!
//! Subquery conditions (`EXISTS`, `x [NOT] IN`, `x op ANY/ALL`) DataFusion
//! plans as joins, which only work as filters and, for IN, only where a
//! NULL means the same as false. Anywhere else (a select list, a CASE,
//! under NOT or OR) they become counts of the deciding rows, scalar
//! subqueries DataFusion decorrelates:
//!
//! ```text
//!  EXISTS (SELECT ... WHERE w)   ─▶ (SELECT count(*) ... WHERE w) > 0
//!  x = ANY (SELECT v ... WHERE w) ─▶ CASE WHEN (SELECT count(*) ... WHERE w AND x = v) > 0 THEN true
//!                                        WHEN (SELECT count(*) ... WHERE w AND (x = v) IS NULL) > 0 THEN NULL
//!                                        ELSE false END
//! ```
//!
//! An aggregate on the left of an uncorrelated one (`HAVING NOT (sum(x) IN
//! (SELECT v ...))`) cannot move into a subquery, where it would aggregate
//! the subquery's rows: the rows are gathered once into an array and
//! compared as `x op ANY/ALL (array)`. DataFusion answers `x op ANY
//! (array)` false where PostgreSQL answers NULL, so outside AND/OR chains
//! of a filter (where the two mean the same) it is `NOT (x op' ALL
//! (array))`, with `op'` the negated comparison. A condition that stays a
//! join where NULL and false differ is refused (0A000), never answered.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Distinct, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, GroupByExpr, Ident, JoinConstraint, JoinOperator, LimitClause, ObjectName,
    OrderByExpr, OrderByKind, Query, Select, SelectItem, SetExpr, Statement, TableAlias,
    TableFactor, UnaryOperator, Value, VisitorMut,
};

use super::using_joins::ColumnsOf;
use crate::error::{Error, ErrorKind};
use crate::frontend::compat::call;

pub const ROWS: &str = "sluice_subquery_rows";
pub const VALUE: &str = "sluice_subquery_value";

/// Rewrite the scalar subqueries of `stmt` (see the module docs).
/// `is_aggregate` tells aggregate function names.
/// `columns_of` tells the columns of a table of a FROM (None: unknown).
pub fn rewrite(
    stmt: &mut Statement,
    is_aggregate: &dyn Fn(&str) -> bool,
    columns_of: &ColumnsOf,
) -> crate::error::Result<()> {
    struct V<'a> {
        is_aggregate: &'a dyn Fn(&str) -> bool,
        columns_of: &'a ColumnsOf<'a>,
        /// Addresses of the subqueries of `x op ANY/ALL (SELECT ...)`: a
        /// set of rows, which DataFusion plans as such, not a value.
        compared: Vec<usize>,
        /// Addresses of those that are conditions of a WHERE or HAVING.
        filters: Vec<usize>,
        /// Addresses of the conditions of a WHERE, HAVING or join ON
        /// reached through AND and OR only, where a NULL and false both
        /// drop the row (see [`monotone`]).
        monotone: Vec<usize>,
        /// Addresses of the subquery conditions anywhere in a WHERE,
        /// HAVING or join ON (outside nested queries).
        conditions: Vec<usize>,
        /// Addresses of the subquery conditions of a grouped SELECT's list
        /// and HAVING whose left side is an expression (see [`grouped_conditions`]).
        grouped: Vec<usize>,
        /// The names each query being visited declares in its FROM,
        /// innermost last.
        levels: Vec<Vec<String>>,
        error: Option<Error>,
    }
    impl V<'_> {
        /// Does `e`, an expression of the innermost query being visited,
        /// read a column of a query around it? Moved into a subquery that
        /// counts rows, it would name a query two levels out, which
        /// DataFusion's decorrelation loses (`42703`).
        fn reads_enclosing(&self, e: &Expr) -> bool {
            self.levels.last().is_some_and(|declared| {
                Names::of(e)
                    .qualifiers
                    .iter()
                    .any(|q| !declared.contains(q))
            })
        }
    }
    impl VisitorMut for V<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            qualified_lefts(q, self.columns_of);
            constant_not_in(q, self.is_aggregate, self.columns_of);
            planned_filters(q, &mut self.filters);
            monotone(q, &mut self.monotone, &mut self.conditions);
            grouped_conditions(q, self.is_aggregate, &mut self.grouped);
            ordered_conditions(q, &mut self.grouped);
            aggregated_conditions(q, self.is_aggregate, &mut self.grouped);
            let declared = selects(&mut q.body)
                .into_iter()
                .flat_map(|s| Names::of(&s.from).declared)
                .collect();
            self.levels.push(declared);
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.levels.pop();
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } = e
                && let Expr::Subquery(q) = right.as_ref()
            {
                self.compared.push(q.as_ref() as *const Query as usize);
            }
            match e {
                Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } => {
                    if let Expr::Subquery(q) = right.as_mut() {
                        without_distinct(q);
                    }
                }
                Expr::InSubquery { subquery: q, .. } | Expr::Exists { subquery: q, .. } => {
                    without_distinct(q)
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
            if let Some(derived) = unnest_in_from(f) {
                *f = derived;
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Subquery(q) = e
                && !self
                    .compared
                    .contains(&(q.as_ref() as *const Query as usize))
                && let Some(wrapped) = single_row(q, self.is_aggregate)
            {
                *e = wrapped;
            }
            if let Some(collected) = array_of_rows(e) {
                *e = collected;
            }
            let at = e as *const Expr as usize;
            if self.monotone.contains(&at)
                && let Some(exists) = row_in(e, self.columns_of)
            {
                *e = exists;
                return ControlFlow::Continue(());
            }
            if matches!(e, Expr::InSubquery { expr, .. } if matches!(expr.as_ref(), Expr::Tuple(_)))
            {
                self.error = Some(crate::error::Error::not_supported(
                    "a row of values IN (subquery) used as a value (outside a condition of \
                     WHERE, HAVING or ON)",
                ));
                return ControlFlow::Break(());
            }
            if !self.monotone.contains(&at)
                && let Some(all) = any_of_array(e)
            {
                *e = all;
            }
            if !self.filters.contains(&at) {
                let grouped = self.grouped.contains(&at)
                    || condition_left(e).is_some_and(|x| self.reads_enclosing(x));
                match subquery_value(e, grouped, self.is_aggregate, self.columns_of) {
                    Some(counted) => *e = counted,
                    // Left to DataFusion, whose mark join answers false
                    // where PostgreSQL answers NULL: right only where the
                    // two mean the same.
                    None if self.conditions.contains(&at) && !self.monotone.contains(&at) => {
                        self.error = Some(crate::error::subquery_value_not_supported());
                        return ControlFlow::Break(());
                    }
                    None => {}
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::visit_expressions_mut(stmt, |e| {
        if let Some(set) = as_in(e) {
            *e = set;
        }
        if let Some(lifted) = outer_conditions_lifted(e, is_aggregate) {
            *e = lifted;
        }
        if let Some(compared) = outer_value_in(e, is_aggregate) {
            *e = compared;
        }
        ControlFlow::<()>::Continue(())
    });
    let mut v = V {
        is_aggregate,
        columns_of,
        compared: Vec::new(),
        filters: Vec::new(),
        monotone: Vec::new(),
        conditions: Vec::new(),
        grouped: Vec::new(),
        levels: Vec::new(),
        error: None,
    };
    let _ = crate::visit::walk_mut(stmt, &mut v);
    v.error.map_or(Ok(()), Err)
}

/// The relations of a FROM: the name each is qualified by and its columns,
/// when known.
type Relations = [(Option<ObjectName>, Option<Vec<String>>)];

/// The left side `x` of each subquery condition of `q`'s SELECTs (`x [NOT]
/// IN (SELECT ...)`, `x op ANY/ALL (SELECT ...)`), with every unqualified
/// column qualified by the one relation of that SELECT's FROM that has it:
/// moved into a subquery that counts rows, `s` of `s IN (SELECT 'a' FROM u
/// WHERE u.k = t.k)` would mean `u.s`. Left as it is when a relation's
/// columns are not known.
fn qualified_lefts(q: &mut Query, columns_of: &ColumnsOf) {
    use super::names::at_level_mut;
    use super::using_joins::{columns, qualifier};
    // Most queries have no such condition: their relations' columns are
    // not looked up.
    let mut any = false;
    let _ = crate::visit::visit_expressions(q, |e: &Expr| {
        any = matches!(e, Expr::InSubquery { .. })
            || matches!(e, Expr::AnyOp { right, .. } | Expr::AllOp { right, .. }
                if matches!(right.as_ref(), Expr::Subquery(_)));
        if any {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    if !any {
        return;
    }
    let single = matches!(q.body.as_ref(), SetExpr::Select(_));
    let mut relations = Vec::new();
    let qualify = |e: &mut Expr, relations: &Relations| {
        if let Some(x) = condition_left(e) {
            qualify_columns(x, relations)
        }
    };
    for s in selects(&mut q.body) {
        relations = s
            .from
            .iter()
            .flat_map(|f| std::iter::once(&f.relation).chain(f.joins.iter().map(|j| &j.relation)))
            .map(|f| (qualifier(f), columns(f, columns_of)))
            .collect();
        let _ = at_level_mut(s, &mut |e| qualify(e, &relations));
    }
    // ORDER BY reads the one SELECT's relations.
    if single && let Some(order) = q.order_by.as_mut() {
        let _ = at_level_mut(order, &mut |e| qualify(e, &relations));
    }
}

/// Each unqualified column of `x` (outside nested queries) qualified by
/// the one of `relations` that has it; nothing when a relation's columns
/// are not known.
fn qualify_columns(x: &mut Expr, relations: &Relations) {
    if relations.iter().any(|(q, c)| q.is_none() || c.is_none()) {
        return;
    }
    let _ = super::names::at_level_mut(x, &mut |e| {
        let Expr::Identifier(id) = e else {
            return;
        };
        let name = crate::frontend::names::normalize_ident(id);
        let mut having = relations
            .iter()
            .filter(|(_, c)| c.as_ref().is_some_and(|c| c.contains(&name)));
        if let (Some((Some(q), _)), None) = (having.next(), having.next()) {
            let mut parts: Vec<Ident> = q.0.iter().filter_map(|p| p.as_ident().cloned()).collect();
            parts.push(id.clone());
            *e = Expr::CompoundIdentifier(parts);
        }
    });
}

/// The `x` of `x [NOT] IN (SELECT ...)` and `x op ANY/ALL (SELECT ...)`.
fn condition_left(e: &mut Expr) -> Option<&mut Expr> {
    match e {
        Expr::InSubquery { expr, .. } => Some(expr),
        Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. }
            if matches!(right.as_ref(), Expr::Subquery(_)) =>
        {
            Some(left)
        }
        _ => None,
    }
}

/// `(a, b) [NOT] IN (SELECT x, y ...)` as a condition of a WHERE,
/// HAVING or ON (reached through AND and OR, where NULL and false both
/// drop the row), which DataFusion cannot plan (`XX000 Too many
/// columns`): `EXISTS (SELECT 1 ... WHERE (w) AND x = a AND y = b)`, and
/// for NOT IN `NOT EXISTS (... WHERE (w) AND (x = a AND y = b) IS NOT
/// FALSE)`, true only when no row is equal or unknown, as NOT IN is. A
/// subquery other than a plain `SELECT ... FROM ... WHERE`, or one whose
/// tables could capture a column of the left side, is read as a derived
/// table.
fn row_in(e: &Expr, columns_of: &ColumnsOf) -> Option<Expr> {
    let Expr::InSubquery {
        expr,
        subquery,
        negated,
    } = e
    else {
        return None;
    };
    let Expr::Tuple(left) = expr.as_ref() else {
        return None;
    };
    // A column on the left that would mean one of the subquery's own once
    // written inside it (`WHERE (f1, f2) IN (SELECT f2, f3 FROM t)` over
    // `t` itself) keeps it outside: the rows are then a derived table.
    let plain = !captured(expr, subquery, columns_of)
        && subquery.with.is_none()
        && subquery.limit_clause.is_none()
        && subquery.fetch.is_none()
        && matches!(subquery.body.as_ref(), SetExpr::Select(s)
            if !grouped(s) && s.having.is_none() && s.distinct.is_none() && !s.from.is_empty());
    let (rows, values): (Query, Vec<Expr>) = if plain {
        let SetExpr::Select(s) = subquery.body.as_ref() else {
            return None;
        };
        let values = s
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(v) | SelectItem::ExprWithAlias { expr: v, .. } => {
                    Some(v.clone())
                }
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        (subquery.as_ref().clone(), values)
    } else {
        let columns: Vec<String> = (1..=left.len()).map(|i| format!("__sluice_c{i}")).collect();
        let q = crate::frontend::template::query(
            &format!(
                "SELECT 1 FROM (SELECT 1) AS __sluice_rows({})",
                columns.join(", ")
            ),
            &[],
        )
        .ok()?;
        let values = columns
            .iter()
            .map(|c| {
                Expr::CompoundIdentifier(vec![Ident::new("__sluice_rows"), Ident::new(c.clone())])
            })
            .collect();
        let mut q = q;
        struct Derived<'a>(&'a Query);
        impl VisitorMut for Derived<'_> {
            type Break = ();
            fn post_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
                if let TableFactor::Derived { subquery, .. } = f {
                    **subquery = self.0.clone();
                }
                ControlFlow::Continue(())
            }
        }
        let _ = crate::visit::walk_mut(&mut q, &mut Derived(subquery));
        (*q, values)
    };
    if values.len() != left.len() {
        return None;
    }
    let equal = left
        .iter()
        .zip(&values)
        .map(|(l, v)| value("($1) = ($2)", &[l.clone(), v.clone()]))
        .collect::<Option<Vec<_>>>()?;
    let mut condition = and_all(equal)?;
    if *negated {
        condition = value("($1) IS NOT FALSE", &[condition])?;
    }
    exists_where(rows, condition, *negated)
}

/// `[NOT] EXISTS (SELECT 1 FROM ... WHERE (w) AND (condition))` of the
/// plain select `rows`.
fn exists_where(mut rows: Query, condition: Expr, negated: bool) -> Option<Expr> {
    let SetExpr::Select(s) = rows.body.as_mut() else {
        return None;
    };
    s.selection = Some(match s.selection.take() {
        Some(w) => value("($1) AND ($2)", &[w, condition])?,
        None => condition,
    });
    s.projection = vec![SelectItem::UnnamedExpr(value("1", &[])?)];
    s.distinct = None;
    rows.order_by = None;
    Some(Expr::Exists {
        subquery: Box::new(rows),
        negated,
    })
}

/// `x = ANY (SELECT ...)` as `x IN (SELECT ...)` and `x <> ALL (SELECT
/// ...)` as `x NOT IN (SELECT ...)`, which they are: planned as joins in a
/// WHERE, as IN is, not as counts.
fn as_in(e: &Expr) -> Option<Expr> {
    let (expr, subquery, negated) = match e {
        Expr::AnyOp {
            left,
            compare_op: BinaryOperator::Eq,
            right,
            ..
        } => (left, right, false),
        Expr::AllOp {
            left,
            compare_op: BinaryOperator::NotEq,
            right,
        } => (left, right, true),
        _ => return None,
    };
    let Expr::Subquery(subquery) = subquery.as_ref() else {
        return None;
    };
    Some(Expr::InSubquery {
        expr: expr.clone(),
        subquery: subquery.clone(),
        negated,
    })
}

/// `[NOT] EXISTS` or `x [NOT] IN` of a subquery whose WHERE has
/// conditions on outer columns alone (`EXISTS (SELECT 1 FROM u WHERE u.k =
/// t.k AND t.a IN (SELECT ...))`), which DataFusion decorrelates wrongly
/// or not at all (`42703`, lost rows), with those conditions taken out of
/// it: they hold for every row of the subquery or for none, and none
/// makes EXISTS and IN false and NOT IN true.
///
/// ```text
///  EXISTS (SELECT ... WHERE c AND w)    ─▶ (c) IS TRUE AND EXISTS (SELECT ... WHERE w)
///  x IN (SELECT v ... WHERE c AND w)    ─▶ (c) IS TRUE AND x IN (SELECT v ... WHERE w)
///  x NOT IN (SELECT v ... WHERE c AND w) ─▶ (c) IS NOT TRUE OR x NOT IN (SELECT v ... WHERE w)
/// ```
///
/// Only for a plain select (no grouping, aggregate or LIMIT, which keep
/// or make rows whatever the WHERE) and conditions that name every column
/// by a qualifier the subquery's FROM does not declare.
fn outer_conditions_lifted(e: &Expr, is_aggregate: &dyn Fn(&str) -> bool) -> Option<Expr> {
    let (subquery, template) = match e {
        Expr::Exists { subquery, negated } => (
            subquery,
            if *negated {
                "NOT (($1) IS TRUE AND $2)"
            } else {
                "($1) IS TRUE AND $2"
            },
        ),
        Expr::InSubquery {
            subquery, negated, ..
        } => (
            subquery,
            if *negated {
                "($1) IS NOT TRUE OR $2"
            } else {
                "($1) IS TRUE AND $2"
            },
        ),
        _ => return None,
    };
    let mut rows = subquery.as_ref().clone();
    let s = plain_rows(&mut rows, is_aggregate)?;
    let from = Names::of(&s.from).declared;
    let outer_only = |c: &Expr| outer_only(c, &from);
    let (lifted, kept): (Vec<Expr>, Vec<Expr>) = crate::visit::conjuncts(s.selection.as_ref()?)
        .into_iter()
        .cloned()
        .partition(|c| outer_only(c));
    let lifted = and_all(lifted)?;
    s.selection = and_all(kept);
    let rows = Box::new(rows);
    let inner = match e {
        Expr::Exists { .. } => Expr::Exists {
            subquery: rows,
            negated: false,
        },
        Expr::InSubquery { expr, negated, .. } => Expr::InSubquery {
            expr: expr.clone(),
            subquery: rows,
            negated: *negated,
        },
        _ => return None,
    };
    value(template, &[lifted, inner])
}

/// The SELECT of `q` when it is a plain one, whose rows are those its
/// WHERE keeps (no WITH, grouping, aggregate, LIMIT or set operation).
fn plain_rows<'a>(q: &'a mut Query, is_aggregate: &dyn Fn(&str) -> bool) -> Option<&'a mut Select> {
    if q.with.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(s) = q.body.as_mut() else {
        return None;
    };
    let aggregated = s.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            aggregates(e, is_aggregate)
        }
        _ => false,
    });
    if grouped(s) || s.having.is_some() || aggregated {
        return None;
    }
    Some(s)
}

/// Does `e` read columns, every one qualified by a name that `from` (the
/// names a subquery's FROM declares) does not have: outer columns alone?
fn outer_only(e: &Expr, from: &[String]) -> bool {
    let names = Names::of(e);
    names.unqualified.is_empty()
        && !names.qualifiers.is_empty()
        && names.qualifiers.iter().all(|q| !from.contains(q))
}

/// `x [NOT] IN (SELECT v ... WHERE w)` whose `v` reads outer columns
/// alone: every row of the subquery has the one value `v`, so it is `CASE
/// WHEN EXISTS (SELECT 1 ... WHERE w) THEN x = v ELSE false END` (`x <> v`
/// and true for NOT IN), which DataFusion can decorrelate (it failed with
/// `XX000 single expression required`).
fn outer_value_in(e: &Expr, is_aggregate: &dyn Fn(&str) -> bool) -> Option<Expr> {
    let Expr::InSubquery {
        expr,
        subquery,
        negated,
    } = e
    else {
        return None;
    };
    let mut rows = subquery.as_ref().clone();
    let s = plain_rows(&mut rows, is_aggregate)?;
    let [SelectItem::UnnamedExpr(v) | SelectItem::ExprWithAlias { expr: v, .. }] =
        s.projection.as_slice()
    else {
        return None;
    };
    if !outer_only(v, &Names::of(&s.from).declared) {
        return None;
    }
    let v = v.clone();
    s.projection = vec![SelectItem::UnnamedExpr(Expr::value(Value::Number(
        "1".to_string(),
        false,
    )))];
    s.distinct = None;
    let exists = Expr::Exists {
        subquery: Box::new(rows),
        negated: false,
    };
    let template = if *negated {
        "CASE WHEN $1 THEN ($2) <> ($3) ELSE true END"
    } else {
        "CASE WHEN $1 THEN ($2) = ($3) ELSE false END"
    };
    value(template, &[exists, expr.as_ref().clone(), v])
}

/// `x op ANY (array)`, which DataFusion answers false where PostgreSQL
/// answers NULL (no element compares true and one is NULL, or `x` is NULL,
/// or `=` ANY of an empty array with a NULL `x`), as `NOT (x op' ALL
/// (array))` with the negated operator, whose three values DataFusion
/// keeps: ANY is true if some element compares true, else NULL if some
/// compares NULL, else false, which is exactly the negation of ALL of the
/// negated comparison.
fn any_of_array(e: &Expr) -> Option<Expr> {
    let Expr::AnyOp {
        left,
        compare_op,
        right,
        ..
    } = e
    else {
        return None;
    };
    if matches!(right.as_ref(), Expr::Subquery(_)) {
        return None;
    }
    let negated = negation(compare_op)?;
    Some(Expr::UnaryOp {
        op: UnaryOperator::Not,
        expr: Box::new(Expr::Nested(Box::new(Expr::AllOp {
            left: left.clone(),
            compare_op: negated,
            right: right.clone(),
        }))),
    })
}

/// The comparison true exactly where `op` is false.
fn negation(op: &BinaryOperator) -> Option<BinaryOperator> {
    Some(match op {
        BinaryOperator::Eq => BinaryOperator::NotEq,
        BinaryOperator::NotEq => BinaryOperator::Eq,
        BinaryOperator::Lt => BinaryOperator::GtEq,
        BinaryOperator::GtEq => BinaryOperator::Lt,
        BinaryOperator::Gt => BinaryOperator::LtEq,
        BinaryOperator::LtEq => BinaryOperator::Gt,
        _ => return None,
    })
}

/// Addresses of the conditions of each WHERE, HAVING and join ON of `q`
/// reached through AND and OR only (`monotone`), where a NULL drops the
/// row as false does, and of every subquery condition in them outside
/// nested queries (`conditions`).
fn monotone(q: &mut Query, monotone: &mut Vec<usize>, conditions: &mut Vec<usize>) {
    fn walk(e: &mut Expr, out: &mut Vec<usize>) {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And | BinaryOperator::Or,
                right,
            } => {
                walk(left, out);
                walk(right, out);
            }
            Expr::Nested(inner) => walk(inner, out),
            _ => out.push(e as *const Expr as usize),
        }
    }
    struct Conditions<'a>(&'a mut Vec<usize>, usize);
    impl VisitorMut for Conditions<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.1 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.1 -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            let condition = match e {
                Expr::InSubquery { .. } => true,
                Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } => {
                    matches!(right.as_ref(), Expr::Subquery(_))
                }
                _ => false,
            };
            if self.1 == 0 && condition {
                self.0.push(e as *const Expr as usize);
            }
            ControlFlow::Continue(())
        }
    }
    for s in selects(&mut q.body) {
        let ons = s.from.iter_mut().flat_map(|f| {
            f.joins
                .iter_mut()
                .filter_map(|j| match &mut j.join_operator {
                    JoinOperator::Join(c)
                    | JoinOperator::Inner(c)
                    | JoinOperator::Left(c)
                    | JoinOperator::LeftOuter(c)
                    | JoinOperator::Right(c)
                    | JoinOperator::RightOuter(c)
                    | JoinOperator::FullOuter(c) => match c {
                        JoinConstraint::On(e) => Some(e),
                        _ => None,
                    },
                    _ => None,
                })
        });
        let filters: Vec<&mut Expr> = s
            .selection
            .iter_mut()
            .chain(s.having.iter_mut())
            .chain(ons)
            .collect();
        for e in filters {
            walk(e, monotone);
            let _ = crate::visit::walk_mut(e, &mut Conditions(conditions, 0));
        }
    }
}

/// The rows of `IN`, `ANY`, `ALL` and `EXISTS` as a set: their `DISTINCT`
/// changes no answer (unless a LIMIT counts rows after it) and is dropped,
/// since DataFusion's decorrelation of a `DISTINCT` of a constant fails
/// (`XX000 Projections require unique expression names`).
fn without_distinct(q: &mut Query) {
    if q.limit_clause.is_some() || q.fetch.is_some() {
        return;
    }
    if let SetExpr::Select(s) = q.body.as_mut()
        && matches!(s.distinct, Some(Distinct::Distinct))
    {
        s.distinct = None;
    }
}

/// `c NOT IN (SELECT v ...)` in WHERE with a constant `c`: DataFusion
/// filters the subquery by `v = c` before its null-aware anti join looks
/// for NULLs, so a NULL `v` no longer keeps every row out. As a condition
/// of WHERE, where NULL and false both drop the row, it is
/// `NOT EXISTS (SELECT 1 FROM (SELECT v ...) AS s(v) WHERE s.v = c OR
/// s.v IS NULL OR c IS NULL)`: no row when the subquery is empty, none
/// when it has `c` or a NULL, as PostgreSQL answers.
/// The same holds of such a condition of HAVING (its constant reads no
/// aggregate either).
fn constant_not_in(q: &mut Query, is_aggregate: &dyn Fn(&str) -> bool, columns_of: &ColumnsOf) {
    for s in selects(&mut q.body) {
        if let Some(w) = s.selection.as_mut() {
            where_conjuncts(w, is_aggregate, columns_of);
        }
        if let Some(h) = s.having.as_mut() {
            for e in crate::visit::conjuncts_mut(h) {
                if let Expr::InSubquery { expr, .. } = e
                    && !aggregates(expr, is_aggregate)
                {
                    constant_not_in_conjunct(e);
                }
            }
        }
    }
}

/// `c NOT IN (SELECT v ...)` with a constant `c` and an uncorrelated
/// subquery, as the `NOT EXISTS` of [`constant_not_in`].
fn constant_not_in_conjunct(e: &mut Expr) {
    if let Expr::InSubquery {
        expr,
        subquery,
        negated: true,
    } = e
        && constant_value(expr)
        && !correlated(subquery)
        && let Some(exists) = over_rows(
            "NOT EXISTS (SELECT 1 FROM (SELECT 1) AS __sluice_rows(__sluice_v) \
             WHERE __sluice_rows.__sluice_v = $1 OR __sluice_rows.__sluice_v IS NULL \
             OR $1 IS NULL)",
            expr,
            subquery,
        )
    {
        *e = exists;
    }
}

/// The SELECTs of a query body: itself, or every branch of a set
/// operation (`SELECT ... WHERE ... UNION SELECT ...`). A parenthesized
/// query is a query of its own, visited as such.
fn selects(body: &mut SetExpr) -> Vec<&mut Select> {
    match body {
        SetExpr::Select(s) => vec![s.as_mut()],
        SetExpr::SetOperation { left, right, .. } => {
            let mut out = selects(left);
            out.extend(selects(right));
            out
        }
        _ => Vec::new(),
    }
}

/// The conditions of a WHERE joined by AND: a constant `NOT IN` (see
/// [`constant_not_in`]) and an `IN` whose rows' value reads outer
/// columns (see [`correlated_value_in`]).
fn where_conjuncts(e: &mut Expr, is_aggregate: &dyn Fn(&str) -> bool, columns_of: &ColumnsOf) {
    for e in crate::visit::conjuncts_mut(e) {
        where_conjunct(e, is_aggregate, columns_of);
    }
}

fn where_conjunct(e: &mut Expr, is_aggregate: &dyn Fn(&str) -> bool, columns_of: &ColumnsOf) {
    match e {
        Expr::InSubquery {
            expr,
            subquery,
            negated: true,
        } if constant_value(expr) && !correlated(subquery) => constant_not_in_conjunct(e),
        Expr::InSubquery {
            expr,
            subquery,
            negated: false,
        } => {
            if let Some(exists) = correlated_value_in(expr, subquery, is_aggregate, columns_of) {
                *e = exists;
            }
        }
        Expr::InSubquery {
            expr,
            subquery,
            negated: true,
        } if correlated(subquery) => {
            if let Some(exists) = correlated_not_in(expr, subquery, is_aggregate, columns_of) {
                *e = exists;
            }
        }
        _ => {}
    }
}

/// `x IN (SELECT v FROM ... WHERE w)` as a condition of WHERE, where `v`
/// reads columns of the outer query: DataFusion decorrelates outer columns
/// in a WHERE, not in a select list (`0A000`, or `XX000 single expression
/// required`). Where NULL and false both drop the row, it is `EXISTS
/// (SELECT 1 FROM ... WHERE (w) AND (x) = (v))`. Only for a plain select
/// (no grouping, aggregate, LIMIT or set operation) and an `x` whose
/// columns cannot mean the subquery's.
fn correlated_value_in(
    x: &Expr,
    rows: &Query,
    is_aggregate: &dyn Fn(&str) -> bool,
    columns_of: &ColumnsOf,
) -> Option<Expr> {
    let reads_outer = |v: &Expr| {
        let declared = Names::of(rows).declared;
        Names::of(v)
            .qualifiers
            .iter()
            .any(|q| !declared.contains(q))
    };
    as_exists(x, rows, is_aggregate, columns_of, false, reads_outer)
}

/// `x NOT IN (SELECT v FROM ... WHERE w)` as a condition of WHERE, where
/// the subquery reads columns of the outer query: DataFusion plans NOT IN
/// as a null-aware anti join, which takes one key only, so a correlated
/// one failed. Where NULL and false both drop the row it is `NOT EXISTS
/// (SELECT 1 FROM ... WHERE (w) AND ((x) = (v) OR (v) IS NULL OR (x) IS
/// NULL))`: true when no row is there, and when none has `x` or a NULL,
/// as PostgreSQL answers. The same restrictions as
/// [`correlated_value_in`], except that `v` may be any expression.
fn correlated_not_in(
    x: &Expr,
    rows: &Query,
    is_aggregate: &dyn Fn(&str) -> bool,
    columns_of: &ColumnsOf,
) -> Option<Expr> {
    as_exists(x, rows, is_aggregate, columns_of, true, |_| true)
}

/// `[NOT] EXISTS (SELECT 1 FROM ... WHERE (w) AND <x against v>)` for
/// `x [NOT] IN (SELECT v FROM ... WHERE w)`, when the subquery is a plain
/// select of one value `v` that `wanted` accepts and that reads no nested
/// query or aggregate, and `x` cannot be captured by the subquery's tables.
fn as_exists(
    x: &Expr,
    rows: &Query,
    is_aggregate: &dyn Fn(&str) -> bool,
    columns_of: &ColumnsOf,
    negated: bool,
    wanted: impl Fn(&Expr) -> bool,
) -> Option<Expr> {
    if rows.with.is_some() || rows.limit_clause.is_some() || rows.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(s) = rows.body.as_ref() else {
        return None;
    };
    if grouped(s)
        || s.having.is_some()
        || s.from.is_empty()
        || matches!(s.distinct, Some(Distinct::On(_)))
    {
        return None;
    }
    let [SelectItem::UnnamedExpr(v) | SelectItem::ExprWithAlias { expr: v, .. }] =
        s.projection.as_slice()
    else {
        return None;
    };
    // An uncorrelated scalar subquery `x` reads its own tables wherever
    // it is written.
    if Names::of(v).nested
        || aggregates(v, is_aggregate)
        || !wanted(v)
        || (!constant_value(x) && captured(x, rows, columns_of))
    {
        return None;
    }
    let condition = if negated {
        value(
            "($1) = ($2) OR ($2) IS NULL OR ($1) IS NULL",
            &[x.clone(), v.clone()],
        )?
    } else {
        value("($1) = ($2)", &[x.clone(), v.clone()])?
    };
    exists_where(rows.clone(), condition, negated)
}

/// The sort keys of an ORDER BY without a key that repeats an earlier
/// one (`ORDER BY a, b, a DESC` sorts as `ORDER BY a, b`): an ordered
/// aggregate given one key twice failed (`XX000 number of columns must
/// match number of fields`).
fn first_keys(order: Vec<OrderByExpr>) -> Vec<OrderByExpr> {
    let mut kept: Vec<OrderByExpr> = Vec::with_capacity(order.len());
    for key in order {
        if !kept.iter().any(|k| k.expr == key.expr) {
            kept.push(key);
        }
    }
    kept
}

/// Does `s` have a GROUP BY (of anything)?
fn grouped(s: &Select) -> bool {
    match &s.group_by {
        GroupByExpr::All(_) => true,
        GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
    }
}

/// The expression `template` with `$1` replaced by `value` and each
/// placeholder derived table `(SELECT 1) AS __sluice_rows` by the user's
/// `rows`.
fn over_rows(template: &str, value: &Expr, rows: &Query) -> Option<Expr> {
    let q = crate::frontend::template::query(
        &format!("SELECT {template}"),
        std::slice::from_ref(value),
    )
    .ok()?;
    let SetExpr::Select(select) = *q.body else {
        return None;
    };
    let Some(SelectItem::UnnamedExpr(mut expr)) = select.projection.into_iter().next() else {
        return None;
    };
    // Replaced after its own contents were visited, so the user's rows
    // (which may hold derived tables of their own) are never visited here.
    struct Derived<'a>(&'a Query);
    impl VisitorMut for Derived<'_> {
        type Break = ();
        fn post_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Derived {
                subquery,
                alias: Some(alias),
                ..
            } = f
                && alias.name.value.starts_with("__sluice_rows")
            {
                **subquery = self.0.clone();
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(&mut expr, &mut Derived(rows));
    Some(expr)
}

/// Addresses of the subquery conditions of a WHERE or HAVING of `q` that
/// DataFusion plans as (semi, anti or mark) joins: `x IN` reached through
/// AND only, where a NULL and false both drop the row (and `x NOT IN` when
/// uncorrelated), and `EXISTS` through AND, OR and NOT, as it is never
/// NULL. `x op ANY/ALL` is never left to it (`= ANY` and `<> ALL` are IN
/// and NOT IN by then, see [`as_in`]): its rewrite of those into EXISTS
/// loses rows under a set operation.
fn planned_filters(q: &mut Query, out: &mut Vec<usize>) {
    fn walk(e: &mut Expr, conjunct: bool, out: &mut Vec<usize>) {
        match e {
            Expr::BinaryOp { left, op, right }
                if matches!(op, BinaryOperator::And | BinaryOperator::Or) =>
            {
                let conjunct = conjunct && *op == BinaryOperator::And;
                walk(left, conjunct, out);
                walk(right, conjunct, out);
            }
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => walk(expr, false, out),
            Expr::Nested(inner) => walk(inner, conjunct, out),
            Expr::Exists { .. } => out.push(e as *const Expr as usize),
            // DataFusion's null-aware anti join takes no correlation.
            Expr::InSubquery {
                subquery,
                negated: true,
                ..
            } if conjunct && !correlated(subquery) => out.push(e as *const Expr as usize),
            Expr::InSubquery { negated: false, .. } if conjunct => {
                out.push(e as *const Expr as usize)
            }
            _ => {}
        }
    }
    for s in selects(&mut q.body) {
        for e in s.selection.iter_mut().chain(s.having.iter_mut()) {
            walk(e, true, out);
        }
    }
}

/// The subquery conditions (`x [NOT] IN`, `x op ANY/ALL`) in the select
/// list and HAVING of `q`'s grouped SELECTs whose `x` is an expression,
/// not a column: after the grouping only the grouped expression exists,
/// not the columns it reads, so `x` cannot move into a subquery that
/// counts rows (`length(s) IN (SELECT ...) ... GROUP BY length(s)` failed
/// with 42703 for `s`); the rows of an uncorrelated subquery are gathered
/// instead, as for an aggregate `x`.
fn grouped_conditions(q: &mut Query, is_aggregate: &dyn Fn(&str) -> bool, out: &mut Vec<usize>) {
    let column = |e: &Expr| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
    for s in selects(&mut q.body) {
        let aggregated = s.projection.iter().any(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                aggregates(e, is_aggregate)
            }
            _ => false,
        });
        if !(grouped(s) || s.having.is_some() || aggregated) {
            continue;
        }
        let items = s.projection.iter_mut().filter_map(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
            _ => None,
        });
        for e in items.chain(s.having.iter_mut()) {
            let _ = crate::visit::visit_expressions_mut(e, |e: &mut Expr| {
                let expression = match &*e {
                    Expr::InSubquery { expr: left, .. } => !column(left),
                    Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
                        matches!(right.as_ref(), Expr::Subquery(_)) && !column(left)
                    }
                    _ => false,
                };
                if expression {
                    out.push(e as *const Expr as usize);
                }
                ControlFlow::<()>::Continue(())
            });
        }
    }
}

/// The subquery conditions inside the arguments and FILTER of an
/// aggregate of `q`'s SELECTs (`sum(u) FILTER (WHERE u IN (SELECT ...))`):
/// a subquery counting rows there is run once per input row, so the rows
/// of an uncorrelated one are gathered once instead (it took 17 s over a
/// thousand rows).
fn aggregated_conditions(q: &mut Query, is_aggregate: &dyn Fn(&str) -> bool, out: &mut Vec<usize>) {
    for s in selects(&mut q.body) {
        let _ = super::names::at_level_mut(s, &mut |e| {
            let Expr::Function(f) = e else { return };
            let name = f.name.to_string().to_ascii_lowercase();
            if f.over.is_some() || !is_aggregate(&name) {
                return;
            }
            let _ = crate::visit::visit_expressions_mut(f, |x: &mut Expr| {
                if condition_left(x).is_some() {
                    out.push(x as *const Expr as usize);
                }
                ControlFlow::<()>::Continue(())
            });
        });
    }
}

/// The subquery conditions in the ORDER BY of `q`: DataFusion cannot
/// decorrelate a subquery that counts rows in a sort key (0A000), nor in
/// the ordered aggregate that takes a LIMIT 1 subquery's first row (see
/// [`single_row`]), so the rows of an uncorrelated one are gathered
/// instead, as for an aggregate `x`.
fn ordered_conditions(q: &mut Query, out: &mut Vec<usize>) {
    let Some(order) = q.order_by.as_mut() else {
        return;
    };
    let _ = crate::visit::visit_expressions_mut(order, |e: &mut Expr| {
        if condition_left(e).is_some() {
            out.push(e as *const Expr as usize);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Does `q` name a table that none of its own FROM lists declares (a
/// column of the outer query, written qualified)?
fn correlated(q: &Query) -> bool {
    let names = Names::of(q);
    names
        .qualifiers
        .iter()
        .any(|qualifier| !names.declared.contains(qualifier))
}

/// Could a column of `e` (an expression of the outer query) mean a column
/// of `q` once written inside `q`: one qualified by a name `q` declares
/// too, or an unqualified one that a table of `q`'s FROM has (or may have:
/// a FROM item whose columns `columns_of` does not know)?
fn captured(e: &Expr, q: &Query, columns_of: &ColumnsOf) -> bool {
    let declared = Names::of(q).declared;
    let outer = Names::of(e);
    if outer.nested || outer.qualifiers.iter().any(|q| declared.contains(q)) {
        return true;
    }
    if outer.unqualified.is_empty() {
        return false;
    }
    // An unqualified column means the subquery's when a table of its FROM
    // has a column of that name, or may when a FROM item's columns are
    // not known.
    let SetExpr::Select(s) = q.body.as_ref() else {
        return true;
    };
    let factors = s
        .from
        .iter()
        .flat_map(|f| std::iter::once(&f.relation).chain(f.joins.iter().map(|j| &j.relation)));
    let mut known = Vec::new();
    for f in factors {
        match columns_of(f) {
            Some(columns) => known.extend(columns.into_iter().map(|c| c.to_lowercase())),
            None => return true,
        }
    }
    outer.unqualified.iter().any(|n| known.contains(n))
}

/// The conditions of the WHERE of `q` on outer columns alone (`e.s <>
/// 'a'` of `WHERE d.k = e.k AND e.s <> 'a'`), and the others.
fn outer_only_conjuncts(q: &Query) -> (Vec<Expr>, Vec<Expr>) {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return (Vec::new(), Vec::new());
    };
    let declared = Names::of(q).declared;
    let all = s
        .selection
        .as_ref()
        .map(crate::visit::conjuncts)
        .unwrap_or_default();
    all.into_iter().cloned().partition(|c| {
        let names = Names::of(c);
        names.unqualified.is_empty()
            && !names.nested
            && !names.qualifiers.is_empty()
            && names.qualifiers.iter().all(|q| !declared.contains(q))
    })
}

/// `parts` joined by AND, each parenthesized (None: no part).
fn and_all(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(Expr::Nested(Box::new(a))),
        op: BinaryOperator::And,
        right: Box::new(Expr::Nested(Box::new(b))),
    })
}

/// The table names and aliases a syntax tree declares, and the qualifiers
/// and unqualified column names it uses (lowercased).
#[derive(Default)]
struct Names {
    declared: Vec<String>,
    qualifiers: Vec<String>,
    unqualified: Vec<String>,
    nested: bool,
}

impl Names {
    fn of<T: datafusion::sql::sqlparser::ast::Visit>(node: &T) -> Names {
        let mut names = Names::default();
        let _ = crate::visit::walk(node, &mut names);
        names
    }
}

impl datafusion::sql::sqlparser::ast::Visitor for Names {
    type Break = ();
    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.nested = true;
        ControlFlow::Continue(())
    }
    fn pre_visit_table_factor(&mut self, f: &TableFactor) -> ControlFlow<()> {
        let (name, alias) = match f {
            TableFactor::Table { name, alias, .. } => (
                name.0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.to_lowercase()),
                alias,
            ),
            TableFactor::Derived { alias, .. } | TableFactor::Function { alias, .. } => {
                (None, alias)
            }
            _ => (None, &None),
        };
        self.declared.extend(name);
        if let Some(a) = alias {
            self.declared.push(a.name.value.to_lowercase());
        }
        ControlFlow::Continue(())
    }
    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => self
                .qualifiers
                .push(parts[parts.len() - 2].value.to_lowercase()),
            Expr::Identifier(i) => self.unqualified.push(i.value.to_lowercase()),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// A subquery condition as a value (in a select list, a CASE, under OR or
/// NOT), which DataFusion can only run as a filter, becomes counts of the
/// rows that decide it. `EXISTS`: some row. `x op ANY/ALL (SELECT v ...)`
/// (and `x [NOT] IN`, which is `= ANY` / `<> ALL`) keeps PostgreSQL's three
/// values: ANY is true if some row compares true, else NULL if some
/// compares NULL, else false (an empty set too); ALL is false if some row
/// compares false, else NULL if some compares NULL, else true.
fn subquery_value(
    e: &Expr,
    grouped: bool,
    is_aggregate: &dyn Fn(&str) -> bool,
    columns_of: &ColumnsOf,
) -> Option<Expr> {
    let (left, op, rows, any, negated) = match e {
        Expr::Exists { subquery, negated } => {
            let some = counted(subquery, None, None, is_aggregate, columns_of)?;
            return value(if *negated { "$1 = 0" } else { "$1 > 0" }, &[some]);
        }
        Expr::AnyOp {
            left,
            compare_op,
            right,
            ..
        } => match right.as_ref() {
            Expr::Subquery(rows) => (left, compare_op.clone(), rows, true, false),
            _ => return None,
        },
        Expr::AllOp {
            left,
            compare_op,
            right,
        } => match right.as_ref() {
            Expr::Subquery(rows) => (left, compare_op.clone(), rows, false, false),
            _ => return None,
        },
        Expr::InSubquery {
            expr,
            subquery,
            negated,
        } => (expr, BinaryOperator::Eq, subquery, true, *negated),
        _ => return None,
    };
    if !crate::visit::is_comparison(&op) {
        return None;
    }
    if aggregates(left, is_aggregate) || grouped {
        // NOT (x op ANY rows) is x op' ALL rows, with op' the negation.
        let gathered = match negated {
            true => aggregated_value(left, negation(&op)?, rows, !any),
            false => aggregated_value(left, op.clone(), rows, any),
        };
        if gathered.is_some() || !grouped {
            return gathered;
        }
    }
    let compare = format!("$1 {op} $2");
    let decisive = if any {
        compare.clone()
    } else {
        format!("NOT ({compare})")
    };
    let decided = counted(rows, Some(&decisive), Some(left), is_aggregate, columns_of)?;
    let unknown = format!("({compare}) IS NULL");
    let unknown = counted(rows, Some(&unknown), Some(left), is_aggregate, columns_of)?;
    let template = if any != negated {
        "CASE WHEN $1 > 0 THEN true WHEN $2 > 0 THEN NULL ELSE false END"
    } else {
        "CASE WHEN $1 > 0 THEN false WHEN $2 > 0 THEN NULL ELSE true END"
    };
    value(template, &[decided, unknown])
}

/// `x op ANY/ALL (SELECT v ...)` (`any`: ANY) where `x` aggregates the
/// outer query's rows, which a subquery counting the rows that decide it
/// cannot hold (there `x` would aggregate the subquery's rows): the rows
/// of an uncorrelated subquery are gathered once into an array, compared
/// the way [`any_of_array`] does. No row gives no array: ANY is false and
/// ALL is true then, whatever `x` is. A correlated one is not rewritten.
fn aggregated_value(left: &Expr, op: BinaryOperator, rows: &Query, any: bool) -> Option<Expr> {
    if correlated(rows) {
        return None;
    }
    let array = "coalesce((SELECT array_agg(__sluice_rows.__sluice_v) \
                 FROM (SELECT 1) AS __sluice_rows(__sluice_v)))";
    let template = if any {
        format!(
            "CASE WHEN {array} IS NULL THEN false ELSE NOT ($1 {} ALL ({array})) END",
            negation(&op)?
        )
    } else {
        format!("CASE WHEN {array} IS NULL THEN true ELSE $1 {op} ALL ({array}) END")
    };
    over_rows(&template, left, rows)
}

/// The expression `template` with `$1`, `$2`, ... replaced by `args`.
fn value(template: &str, args: &[Expr]) -> Option<Expr> {
    let q = crate::frontend::template::query(&format!("SELECT {template}"), args).ok()?;
    let SetExpr::Select(select) = *q.body else {
        return None;
    };
    match select.projection.into_iter().next() {
        Some(SelectItem::UnnamedExpr(e)) => Some(e),
        _ => None,
    }
}

/// The scalar subquery counting the rows of `rows` for which `condition`
/// holds, where `$1` is `left` and `$2` the row's value. A plain `SELECT v
/// FROM ... WHERE ...` keeps its FROM and gets the condition added to its
/// WHERE, as DataFusion decorrelates outer columns in a WHERE, not inside
/// a derived table (within another subquery, not even when `rows` is
/// uncorrelated), unless a column of `left` would then mean one of the
/// subquery's; conditions on outer columns alone are taken out of it.
/// Otherwise an uncorrelated `rows` is read as a derived table whose only
/// column is `__sluice_v`, and a correlated one is not rewritten.
fn counted(
    rows: &Query,
    condition: Option<&str>,
    left: Option<&Expr>,
    is_aggregate: &dyn Fn(&str) -> bool,
    columns_of: &ColumnsOf,
) -> Option<Expr> {
    let left = left.cloned().unwrap_or(Expr::value(Value::Null));
    let mut q = rows.clone();
    let correlated = correlated(rows);
    let plain = !captured(&left, rows, columns_of)
        && q.with.is_none()
        && q.fetch.is_none()
        && q.limit_clause.is_none()
        && match q.body.as_ref() {
            SetExpr::Select(s) => {
                !s.from.is_empty()
                    && !grouped(s)
                    && s.having.is_none()
                    && s.distinct.is_none()
                    && s.projection.iter().all(|item| match item {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                            !aggregates(e, is_aggregate)
                        }
                        _ => true,
                    })
            }
            _ => false,
        };
    if plain && let SetExpr::Select(s) = q.body.as_mut() {
        if let Some(condition) = condition {
            let row = match s.projection.first() {
                Some(SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) => {
                    e.clone()
                }
                _ => return None,
            };
            let condition = value(condition, &[left, row])?;
            s.selection = Some(match s.selection.take() {
                Some(w) => value("($1) AND ($2)", &[w, condition])?,
                None => condition,
            });
        }
        s.projection = vec![SelectItem::UnnamedExpr(value("count(*)", &[])?)];
        q.order_by = None;
        // DataFusion's decorrelation of a count under a condition on outer
        // columns alone loses rows in a filter: such conditions hold for
        // every row of the subquery or for none, so they choose between
        // the count of the others and none.
        let (lifted, kept) = outer_only_conjuncts(&q);
        if let SetExpr::Select(s) = q.body.as_mut() {
            s.selection = and_all(kept);
        }
        let count = Expr::Subquery(Box::new(q));
        return match and_all(lifted) {
            Some(lifted) => value("CASE WHEN $1 THEN $2 ELSE 0 END", &[lifted, count]),
            None => Some(count),
        };
    }
    if correlated {
        // Outer columns inside a derived table: not decorrelated either.
        return None;
    }
    let template = match condition {
        Some(condition) => format!(
            "(SELECT count(*) FROM (SELECT 1) AS __sluice_rows(__sluice_v) WHERE {})",
            condition.replace("$2", "__sluice_rows.__sluice_v")
        ),
        None => "(SELECT count(*) FROM (SELECT 1) AS __sluice_rows)".to_string(),
    };
    over_rows(&template, &left, rows)
}

/// A value the same for every row: [`constant`], or a scalar subquery
/// that reads no column of the outer query (`(SELECT avg(x) FROM t)`;
/// DataFusion dropped `(SELECT 1.5) NOT IN (SELECT NULL ...)` from the
/// plan, keeping every row).
fn constant_value(e: &Expr) -> bool {
    match e {
        Expr::Nested(inner) => constant_value(inner),
        Expr::Subquery(q) => !correlated(q),
        e => constant(e),
    }
}

/// Does `e` read no column and run no query?
fn constant(e: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::Visitor;
    struct Reads;
    impl Visitor for Reads {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
                | Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::InSubquery { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    crate::visit::walk(e, &mut Reads).is_continue()
}

/// Does `e` call an aggregate or a window function (outside nested queries)?
fn aggregates(e: &Expr, is_aggregate: &dyn Fn(&str) -> bool) -> bool {
    use datafusion::sql::sqlparser::ast::Visitor;
    struct A<'a>(&'a dyn Fn(&str) -> bool, usize);
    impl Visitor for A<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.1 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.1 -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.1 == 0
                && let Expr::Function(f) = e
            {
                let name = f.name.to_string().to_ascii_lowercase();
                if f.over.is_some() || (self.0)(&name) {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    crate::visit::walk(e, &mut A(is_aggregate, 0)).is_break()
}

/// The rewritten expression for the scalar subquery `q`, when it has the
/// shape DataFusion cannot plan as it is.
fn single_row(q: &mut Query, is_aggregate: &dyn Fn(&str) -> bool) -> Option<Expr> {
    if q.with.is_some() || q.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(select) = q.body.as_mut() else {
        return None;
    };
    if select.from.is_empty()
        || grouped(select)
        || select.having.is_some()
        || select.distinct.is_some()
        || select.projection.len() != 1
    {
        return None;
    }
    let (item, output) = match &mut select.projection[0] {
        SelectItem::ExprWithAlias { expr: e, alias } => {
            (e, Some(crate::frontend::names::normalize_ident(alias)))
        }
        SelectItem::UnnamedExpr(e) => {
            let output = match &*e {
                Expr::Identifier(id) => Some(crate::frontend::names::normalize_ident(id)),
                Expr::CompoundIdentifier(parts) => {
                    parts.last().map(crate::frontend::names::normalize_ident)
                }
                _ => None,
            };
            (e, output)
        }
        _ => return None,
    };
    if aggregates(item, is_aggregate) {
        return None;
    }
    let limit_one = match &q.limit_clause {
        None => false,
        Some(LimitClause::LimitOffset {
            limit: Some(l),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => {
            matches!(l, Expr::Value(v) if v.value == Value::Number("1".into(), false))
        }
        Some(_) => return None,
    };
    if limit_one {
        // The first row, in the subquery's order if it has one.
        let order = match q.order_by.take().map(|o| o.kind) {
            Some(OrderByKind::Expressions(exprs)) => exprs,
            Some(OrderByKind::All(_)) => return None,
            None => vec![],
        };
        // A key naming the output column (by name or as `1`) is its
        // expression, which the aggregate reads from the rows.
        let order = order
            .into_iter()
            .map(|mut key| {
                let names_output = match &key.expr {
                    Expr::Identifier(id) => {
                        output.as_deref() == Some(&*crate::frontend::names::normalize_ident(id))
                    }
                    Expr::Value(v) => v.value == Value::Number("1".into(), false),
                    _ => false,
                };
                if names_output {
                    key.expr = item.clone();
                }
                key
            })
            .collect();
        let order = first_keys(order);
        let clauses = if order.is_empty() {
            vec![]
        } else {
            vec![FunctionArgumentClause::OrderBy(order)]
        };
        *item = call("first_value", vec![item.clone()], clauses);
        q.limit_clause = None;
        return None;
    }
    *item = call(ROWS, vec![item.clone()], vec![]);
    Some(call(
        VALUE,
        vec![Expr::Subquery(Box::new(q.clone()))],
        vec![],
    ))
}

/// `FROM unnest(e) [AS a]`, a set-returning function in the FROM list,
/// as the query `(SELECT unnest(e) AS a) AS a`: then `e` may read the
/// columns of an outer query, as it may in PostgreSQL.
fn unnest_in_from(f: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        alias,
        args: Some(args),
        with_hints,
        version: None,
        ..
    } = f
    else {
        return None;
    };
    let last = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    if last != "unnest" || !with_hints.is_empty() {
        return None;
    }
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = args.args.as_slice() else {
        return None;
    };
    if alias.as_ref().is_some_and(|a| a.columns.len() > 1) {
        return None;
    }
    let column = crate::frontend::names::function_column(alias.as_ref(), "unnest");
    let sql_alias = TableAlias {
        explicit: true,
        name: alias
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_else(|| Ident::new("unnest")),
        columns: vec![],
        at: None,
    };
    let mut query =
        crate::frontend::template::query("SELECT unnest($1) AS c", std::slice::from_ref(arg))
            .ok()?;
    if let SetExpr::Select(s) = query.body.as_mut()
        && let Some(SelectItem::ExprWithAlias { alias, .. }) = s.projection.first_mut()
    {
        *alias = column;
    }
    Some(TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: Some(sql_alias),
        sample: None,
    })
}

/// `ARRAY(SELECT e FROM ... [ORDER BY o])`: the rows' values as an array,
/// empty (not NULL) when there are none.
fn array_of_rows(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    if !f.name.to_string().eq_ignore_ascii_case("array") {
        return None;
    }
    let FunctionArguments::Subquery(q) = &f.args else {
        return None;
    };
    let mut q = q.as_ref().clone();
    if q.limit_clause.is_some() || q.fetch.is_some() {
        return None;
    }
    let order = match q.order_by.take().map(|o| o.kind) {
        Some(OrderByKind::Expressions(exprs)) => first_keys(exprs),
        Some(OrderByKind::All(_)) => return None,
        None => vec![],
    };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return None;
    };
    if select.projection.len() != 1 {
        return None;
    }
    let item = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    // ORDER BY 1 names the (only) select item.
    let mut order = order;
    for o in order.iter_mut() {
        if let Expr::Value(v) = &o.expr {
            if v.value != Value::Number("1".into(), false) {
                return None;
            }
            o.expr = item.clone();
        }
    }
    let clauses = if order.is_empty() {
        vec![]
    } else {
        vec![FunctionArgumentClause::OrderBy(order)]
    };
    *item = call("array_agg", vec![item.clone()], clauses);
    Some(call(
        "coalesce",
        vec![
            Expr::Subquery(Box::new(q)),
            call("make_array", vec![], vec![]),
        ],
        vec![],
    ))
}

/// The functions the rewrite calls, to register with a session.
pub fn functions() -> (AggregateUDF, ScalarUDF) {
    (
        AggregateUDF::new_from_impl(Rows {
            signature: Signature::any(1, Volatility::Immutable),
        }),
        ScalarUDF::new_from_impl(SingleValue {
            signature: Signature::any(1, Volatility::Immutable),
        }),
    )
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Rows {
    signature: Signature,
}

fn list_of(t: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t.clone(), true)))
}

impl AggregateUDFImpl for Rows {
    fn name(&self) -> &str {
        ROWS
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        Ok(list_of(&args[0]))
    }
    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let DataType::List(item) = args.return_field.data_type() else {
            return exec_err!("{ROWS} returns a list");
        };
        Ok(Box::new(FirstTwo {
            ty: item.data_type().clone(),
            values: Vec::new(),
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[rows]", args.name),
            args.return_field.data_type().clone(),
            true,
        ))])
    }
}

/// Up to two values of a group: enough to tell none, one and many apart.
#[derive(Debug)]
struct FirstTwo {
    ty: DataType,
    values: Vec<ScalarValue>,
}

impl FirstTwo {
    fn take(&mut self, a: &ArrayRef) -> DfResult<()> {
        for i in 0..a.len() {
            if self.values.len() >= 2 {
                break;
            }
            self.values.push(ScalarValue::try_from_array(a, i)?);
        }
        Ok(())
    }

    fn list(&self) -> ScalarValue {
        ScalarValue::List(ScalarValue::new_list_nullable(&self.values, &self.ty))
    }
}

impl Accumulator for FirstTwo {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.take(&values[0])
    }
    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(self.list())
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.iter().map(|v| v.size()).sum::<usize>()
    }
    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![self.list()])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                self.take(&lists.value(i))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleValue {
    signature: Signature,
}

impl ScalarUDFImpl for SingleValue {
    fn name(&self) -> &str {
        VALUE
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match &args[0] {
            DataType::List(f) => Ok(f.data_type().clone()),
            DataType::Null => Ok(DataType::Null),
            other => exec_err!("{VALUE} takes a list, not {other}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let input = args.args[0].to_array(rows)?;
        let out_type = args.return_field.data_type().clone();
        if input.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(&out_type)?));
        }
        let lists: &ListArray = input.as_list::<i32>();
        let mut values = Vec::with_capacity(rows);
        for i in 0..lists.len() {
            if lists.is_null(i) || lists.value_length(i) == 0 {
                values.push(ScalarValue::try_from(&out_type)?);
                continue;
            }
            if lists.value_length(i) > 1 {
                return Err(datafusion::error::DataFusionError::External(Box::new(
                    Error::new(
                        ErrorKind::CardinalityViolation,
                        "more than one row returned by a subquery used as an expression",
                    ),
                )));
            }
            values.push(ScalarValue::try_from_array(&lists.value(i), 0)?);
        }
        if values.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(&out_type),
            ));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables `d` (a, b, c) and `f` (c) are known; nothing else is.
    fn table_columns(f: &TableFactor) -> Option<Vec<String>> {
        let TableFactor::Table { name, .. } = f else {
            return None;
        };
        match name.to_string().as_str() {
            "d" => Some(vec!["a".into(), "b".into(), "c".into()]),
            "f" => Some(vec!["c".into()]),
            _ => None,
        }
    }

    fn rewritten(sql: &str) -> String {
        let mut stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            sql,
        )
        .unwrap()
        .remove(0);
        rewrite(&mut stmt, &|n| matches!(n, "count" | "max"), &table_columns).unwrap();
        stmt.to_string()
    }

    #[test]
    fn only_unaggregated_subqueries_change() {
        assert_eq!(
            rewritten("SELECT (SELECT t FROM d WHERE d.c = e.c) FROM e"),
            "SELECT sluice_subquery_value((SELECT sluice_subquery_rows(t) FROM d WHERE d.c = e.c)) FROM e"
        );
        let same = "SELECT (SELECT max(t) FROM d WHERE d.c = e.c) FROM e";
        assert_eq!(rewritten(same), same);
        let same = "SELECT (SELECT 1) FROM e";
        assert_eq!(rewritten(same), same);
        assert_eq!(
            rewritten("SELECT (SELECT t FROM d ORDER BY k DESC LIMIT 1) FROM e"),
            "SELECT (SELECT first_value(t ORDER BY k DESC) FROM d) FROM e"
        );
    }

    #[test]
    fn subquery_conditions_stay_joins_where_a_null_is_false() {
        for same in [
            "SELECT a FROM e WHERE a IN (SELECT b FROM d) AND c > 0",
            "SELECT a FROM e WHERE NOT EXISTS (SELECT 1 FROM d WHERE d.b = e.a) OR c = 1",
            "SELECT a FROM e WHERE a NOT IN (SELECT b FROM d)",
        ] {
            let printed = datafusion::sql::sqlparser::parser::Parser::parse_sql(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                same,
            )
            .unwrap()[0]
                .to_string();
            assert_eq!(rewritten(same), printed);
        }
        // A correlated NOT IN is a NOT EXISTS that a NULL on either side
        // also satisfies.
        let not_in =
            rewritten("SELECT a FROM e WHERE e.a NOT IN (SELECT d.b FROM d WHERE d.c = e.c)");
        assert!(
            not_in.contains("WHERE NOT EXISTS (SELECT 1 FROM d WHERE")
                && not_in.contains("(d.b) IS NULL OR (e.a) IS NULL")
                && !not_in.contains("NOT IN"),
            "{not_in}"
        );
    }

    #[test]
    fn subquery_conditions_as_values_count_the_deciding_rows() {
        assert_eq!(
            rewritten("SELECT EXISTS (SELECT 1 FROM d WHERE d.b = e.a) FROM e"),
            "SELECT (SELECT count(*) FROM d WHERE d.b = e.a) > 0 FROM e"
        );
        // Uncorrelated: the rows are a derived table, compared outside it.
        assert_eq!(
            rewritten("SELECT a IN (SELECT b FROM d) FROM e"),
            "SELECT CASE WHEN (SELECT count(*) FROM (SELECT b FROM d) AS __sluice_rows (__sluice_v) \
             WHERE a = __sluice_rows.__sluice_v) > 0 THEN true \
             WHEN (SELECT count(*) FROM (SELECT b FROM d) AS __sluice_rows (__sluice_v) \
             WHERE (a = __sluice_rows.__sluice_v) IS NULL) > 0 THEN NULL ELSE false END FROM e"
        );
        // Correlated, with a qualified left side: the comparison joins the
        // subquery's WHERE, where DataFusion decorrelates it.
        assert_eq!(
            rewritten("SELECT e.a < ALL (SELECT d.b FROM d WHERE d.c = e.c) FROM e"),
            "SELECT CASE WHEN (SELECT count(*) FROM d WHERE (d.c = e.c) AND (NOT (e.a < d.b))) > 0 \
             THEN false WHEN (SELECT count(*) FROM d WHERE (d.c = e.c) AND ((e.a < d.b) IS NULL)) > 0 \
             THEN NULL ELSE true END FROM e"
        );
        // An unqualified left side would mean the subquery's column there:
        // not rewritten.
        let same = "SELECT a = ANY (SELECT d.a FROM d WHERE d.c = e.c) FROM e";
        assert!(!rewritten(same).contains("count(*)"), "{same}");
        // A condition on outer columns alone, which DataFusion decorrelates
        // wrongly, chooses between the count of the other rows and none.
        assert_eq!(
            rewritten("SELECT e.a = ANY (SELECT 1 FROM d WHERE d.c = e.c) FROM e"),
            "SELECT CASE WHEN CASE WHEN e.a = 1 THEN (SELECT count(*) FROM d WHERE d.c = e.c) \
             ELSE 0 END > 0 THEN true \
             WHEN CASE WHEN (e.a = 1) IS NULL THEN (SELECT count(*) FROM d WHERE d.c = e.c) \
             ELSE 0 END > 0 THEN NULL ELSE false END FROM e"
        );
        // One that no table of the subquery has is the outer query's.
        assert!(
            rewritten("SELECT x = ANY (SELECT f.c FROM f WHERE f.c <> e.c) FROM e")
                .contains("(f.c <> e.c) AND (x = f.c)")
        );
    }

    #[test]
    fn left_sides_are_qualified_and_moved_only_where_they_can_be_read() {
        // An unqualified column of the one outer relation that has it is
        // qualified by it before it moves into the subquery.
        assert!(
            rewritten("SELECT c IN (SELECT d.b FROM d WHERE d.a = f.c) FROM f")
                .contains("WHERE (d.a = f.c) AND (f.c = d.b)")
        );
        // Reading a query two levels out, or in the ORDER BY of a LIMIT:
        // the rows are gathered, the left side stays where it is.
        for gathered in [
            "SELECT 1 FROM e WHERE EXISTS (SELECT 1 FROM d WHERE d.b = 1 OR e.a IN (SELECT f.c FROM f))",
            "SELECT (SELECT d.a FROM d ORDER BY d.b IN (SELECT f.c FROM f) LIMIT 1) FROM e",
        ] {
            let out = rewritten(gathered);
            assert!(
                out.contains("array_agg") && !out.contains("count(*)"),
                "{out}"
            );
        }
        // The first row ordered by the output column's name.
        assert_eq!(
            rewritten("SELECT (SELECT d.a AS x FROM d ORDER BY x DESC LIMIT 1) FROM e"),
            "SELECT (SELECT first_value(d.a ORDER BY d.a DESC) AS x FROM d) FROM e"
        );
    }

    #[test]
    fn equal_to_any_of_rows_is_in_and_unequal_to_all_is_not_in() {
        assert_eq!(
            rewritten(
                "SELECT a FROM e WHERE a = ANY (SELECT b FROM d) AND c <> ALL (SELECT b FROM d)"
            ),
            "SELECT a FROM e WHERE a IN (SELECT b FROM d) AND c NOT IN (SELECT b FROM d)"
        );
    }

    #[test]
    fn conditions_on_outer_columns_alone_leave_the_subquery() {
        assert_eq!(
            rewritten(
                "SELECT a FROM e WHERE NOT EXISTS (SELECT 1 FROM d WHERE d.b = e.a AND e.c > 1)"
            ),
            "SELECT a FROM e WHERE NOT ((e.c > 1) IS TRUE AND EXISTS (SELECT 1 FROM d WHERE d.b = e.a))"
        );
        assert!(
            rewritten("SELECT a FROM e WHERE e.a NOT IN (SELECT d.b FROM d WHERE e.c > 1)")
                .starts_with("SELECT a FROM e WHERE (e.c > 1) IS NOT TRUE OR ")
        );
        // A column of the subquery's tables, an unqualified one, or rows
        // an aggregate makes whatever the WHERE: left as they are.
        for same in [
            "SELECT a FROM e WHERE EXISTS (SELECT 1 FROM d WHERE d.b = e.a AND c > 1)",
            "SELECT a FROM e WHERE EXISTS (SELECT 1 FROM d AS e WHERE e.c > 1)",
            "SELECT a FROM e WHERE EXISTS (SELECT count(*) FROM d WHERE e.c > 1)",
        ] {
            assert!(!rewritten(same).contains("IS TRUE"), "{same}");
        }
    }

    #[test]
    fn in_rows_of_one_outer_value_is_a_comparison_with_it() {
        assert_eq!(
            rewritten("SELECT a FROM e WHERE e.a NOT IN (SELECT e.c FROM d WHERE d.b > 1)"),
            "SELECT a FROM e WHERE CASE WHEN (SELECT count(*) FROM d WHERE d.b > 1) > 0 \
             THEN (e.a) <> (e.c) ELSE true END"
        );
    }

    #[test]
    fn any_of_an_array_is_the_negation_of_all_where_null_can_differ_from_false() {
        assert_eq!(
            rewritten("SELECT a = ANY (ARRAY[1, NULL]), a > ANY (b) FROM e"),
            "SELECT NOT (a <> ALL(ARRAY[1, NULL])), NOT (a <= ALL(b)) FROM e"
        );
        // Through AND and OR in WHERE a NULL drops the row as false does.
        let same = "SELECT a FROM e WHERE a = ANY(b) OR c = 1";
        assert_eq!(rewritten(same), same);
        assert_eq!(
            rewritten("SELECT a FROM e WHERE NOT (a = ANY (b))"),
            "SELECT a FROM e WHERE NOT (NOT (a <> ALL(b)))"
        );
    }

    #[test]
    fn an_aggregate_in_a_subquery_condition_is_compared_with_the_rows_gathered_once() {
        let rows = "coalesce((SELECT array_agg(__sluice_rows.__sluice_v) \
                    FROM (SELECT b FROM d) AS __sluice_rows (__sluice_v)))";
        assert_eq!(
            rewritten("SELECT count(a) NOT IN (SELECT b FROM d) FROM e"),
            format!(
                "SELECT CASE WHEN {rows} IS NULL THEN true ELSE count(a) <> ALL({rows}) END FROM e"
            )
        );
        assert_eq!(
            rewritten("SELECT c FROM e GROUP BY c HAVING NOT (max(a) > ANY (SELECT b FROM d))"),
            format!(
                "SELECT c FROM e GROUP BY c HAVING NOT (CASE WHEN {rows} IS NULL THEN false \
                 ELSE NOT (max(a) <= ALL({rows})) END)"
            )
        );
    }

    #[test]
    fn a_condition_left_to_a_mark_join_where_null_is_not_false_is_refused() {
        let mut stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            "SELECT c FROM e GROUP BY c HAVING NOT (max(a) IN (SELECT b FROM d WHERE d.b = e.c))",
        )
        .unwrap()
        .remove(0);
        let e = rewrite(&mut stmt, &|n| n == "max", &table_columns).unwrap_err();
        assert_eq!(e.kind, ErrorKind::FeatureNotSupported);
        // Where NULL and false mean the same, the join answers it.
        let same = "SELECT c FROM e GROUP BY c HAVING max(a) IN (SELECT b FROM d WHERE d.b = e.c) OR c = 1";
        assert_eq!(rewritten(same), same);
    }

    #[test]
    fn correlation_is_a_qualifier_the_subquery_does_not_declare() {
        let q = |sql: &str| {
            datafusion::sql::sqlparser::parser::Parser::new(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            )
            .try_with_sql(sql)
            .unwrap()
            .parse_query()
            .unwrap()
        };
        assert!(correlated(&q("SELECT d.b FROM d WHERE d.c = e.c")));
        assert!(!correlated(&q("SELECT x.b FROM s.d AS x WHERE x.c = 1")));
        assert!(!correlated(&q(
            "SELECT d.b FROM s.d WHERE d.c IN (SELECT f.c FROM f)"
        )));
        let a = Expr::Identifier(Ident::new("a"));
        assert!(captured(&a, &q("SELECT b FROM d"), &table_columns));
        assert!(!captured(&a, &q("SELECT c FROM f"), &table_columns));
        assert!(captured(
            &a,
            &q("SELECT c FROM f JOIN d USING (c)"),
            &table_columns
        ));
        assert!(captured(&a, &q("SELECT c FROM f, unknown"), &table_columns));
        assert!(captured(
            &a,
            &q("SELECT c FROM (SELECT 1 AS c) s"),
            &table_columns
        ));
        assert!(!captured(
            &Expr::CompoundIdentifier(vec![Ident::new("e"), Ident::new("a")]),
            &q("SELECT b FROM d"),
            &table_columns
        ));
    }
}
