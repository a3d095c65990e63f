//! `count(t.*)`: the rows where relation `t` is present.
//!
//! PostgreSQL counts the rows whose whole-row value of `t` is not NULL,
//! which it is only where an outer join null-extended `t`:
//! `count(b.*)` over `a LEFT JOIN b ON b.k = a.id` is the number of rows
//! where `b` matched. DataFusion reads the argument as `count(*)`, which
//! counts the null-extended rows too (a wrong answer), or refuses a
//! table's own name (`Invalid qualifier`).
//!
//! Written here as what it means:
//! - `t` is not null-extended by any join of its FROM: `count(*)`;
//! - one left or right join null-extends `t` and its condition holds only
//!   where a column of `t` is not NULL (a conjunct `t.c op x` of `ON`, or
//!   a column of `USING`): `count(t.c)`, which counts exactly the matched
//!   rows;
//! - otherwise (`ON true`, a full join, two outer joins, `t` inside
//!   parentheses, or `count(DISTINCT t.*)`): `0A000` with a hint, never a
//!   guess; a name that is not a relation of the FROM (also an outer
//!   query's) is `42P01`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Join,
    JoinConstraint, JoinOperator, ObjectName, Query, Select, SetExpr, Statement, TableFactor,
    VisitorMut,
};

use super::names::normalize_ident;
use crate::error::{Error, Result};

/// Rewrite every `count(t.*)` of `stmt` (see the module docs).
pub fn whole_row_counts(stmt: &mut Statement) -> Result<()> {
    struct Counts;
    impl VisitorMut for Counts {
        type Break = Error;
        fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<Error> {
            let order_by = q.order_by.as_mut();
            match selects(q.body.as_mut(), order_by) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => ControlFlow::Break(e),
            }
        }
    }
    fn selects(
        body: &mut SetExpr,
        order_by: Option<&mut datafusion::sql::sqlparser::ast::OrderBy>,
    ) -> Result<()> {
        match body {
            SetExpr::Select(s) => {
                let Select {
                    projection,
                    having,
                    from,
                    ..
                } = s.as_mut();
                let mut failed = None;
                let mut each = |e: &mut Expr| {
                    if failed.is_none()
                        && let Err(e) = rewrite_count(e, from)
                    {
                        failed = Some(e);
                    }
                };
                for item in projection.iter_mut() {
                    let _ = crate::visit::at_level_mut(item, &mut each);
                }
                if let Some(h) = having.as_mut() {
                    let _ = crate::visit::at_level_mut(h, &mut each);
                }
                if let Some(o) = order_by {
                    let _ = crate::visit::at_level_mut(o, &mut each);
                }
                failed.map_or(Ok(()), Err)
            }
            SetExpr::SetOperation { left, right, .. } => {
                selects(left, None)?;
                selects(right, None)
            }
            _ => Ok(()),
        }
    }
    match crate::visit::walk_mut(stmt, &mut Counts) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The relation name a `count(t.*)` argument names, when `e` is one.
fn counted_relation(e: &Expr) -> Option<(String, bool)> {
    let Expr::Function(f) = e else { return None };
    let [part] = f.name.0.as_slice() else {
        return None;
    };
    if !part
        .as_ident()
        .is_some_and(|i| i.value.eq_ignore_ascii_case("count"))
    {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let [FunctionArg::Unnamed(FunctionArgExpr::QualifiedWildcard(name))] = list.args.as_slice()
    else {
        return None;
    };
    let last = name.0.last()?.as_ident()?;
    let distinct = list.duplicate_treatment == Some(DuplicateTreatment::Distinct);
    Some((normalize_ident(last), distinct))
}

fn rewrite_count(
    e: &mut Expr,
    from: &[datafusion::sql::sqlparser::ast::TableWithJoins],
) -> Result<()> {
    let Some((name, distinct)) = counted_relation(e) else {
        return Ok(());
    };
    let not_supported = |why: &str| {
        Error::not_supported(format!("count({name}.*) {why}")).with_hint(format!(
            "count a column of \"{name}\" that is never NULL where it is present, such as its key: count({name}.id)"
        ))
    };
    if distinct {
        return Err(not_supported("with DISTINCT"));
    }
    let mut place = None;
    for twj in from {
        let relations: Vec<&TableFactor> = std::iter::once(&twj.relation)
            .chain(twj.joins.iter().map(|j| &j.relation))
            .collect();
        if let Some(pos) = relations.iter().position(|r| names(r, &name)) {
            place = Some((twj, pos));
            break;
        }
        if relations.iter().any(|r| nests(r, &name)) {
            return Err(not_supported("of a relation inside a parenthesized join"));
        }
    }
    // Not a relation of this FROM. The planner would count every row;
    // an outer query's relation is refused as an unknown one.
    let Some((twj, pos)) = place else {
        return Err(Error::new(
            crate::error::ErrorKind::UndefinedTable,
            format!("missing FROM-clause entry for table \"{name}\""),
        ));
    };
    let mut extending: Vec<&Join> = Vec::new();
    for (k, join) in twj.joins.iter().enumerate() {
        // The relation this join brings is at position k + 1.
        let (right, left) = match &join.join_operator {
            JoinOperator::Join(_)
            | JoinOperator::Inner(_)
            | JoinOperator::CrossJoin(_)
            | JoinOperator::StraightJoin(_) => (false, false),
            JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => (true, false),
            JoinOperator::Right(_) | JoinOperator::RightOuter(_) => (false, true),
            JoinOperator::FullOuter(_) => (true, true),
            _ => (true, true),
        };
        if (right && pos == k + 1) || (left && pos <= k) {
            extending.push(join);
        }
    }
    let Expr::Function(f) = e else {
        return Ok(());
    };
    let FunctionArguments::List(list) = &mut f.args else {
        return Ok(());
    };
    let arg = match extending.as_slice() {
        [] => FunctionArgExpr::Wildcard,
        [join] => match present_column(join, &name) {
            Some(col) => FunctionArgExpr::Expr(col),
            None => {
                return Err(not_supported(
                    "of a relation an outer join null-extends on a condition that does not need one of its columns",
                ));
            }
        },
        _ => {
            return Err(not_supported(
                "of a relation more than one outer join null-extends",
            ));
        }
    };
    list.args = vec![FunctionArg::Unnamed(arg)];
    Ok(())
}

/// Does table factor `r` go by `name` (its alias, or its table's name)?
fn names(r: &TableFactor, name: &str) -> bool {
    let alias = match r {
        TableFactor::Table { alias, .. }
        | TableFactor::Derived { alias, .. }
        | TableFactor::TableFunction { alias, .. }
        | TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. }
        | TableFactor::NestedJoin { alias, .. } => alias.as_ref(),
        _ => return false,
    };
    match (alias, r) {
        (Some(a), _) => normalize_ident(&a.name) == name,
        (None, TableFactor::Table { name: table, .. }) => {
            table
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(normalize_ident)
                .as_deref()
                == Some(name)
        }
        _ => false,
    }
}

/// Is a relation called `name` inside the parenthesized join `r`?
fn nests(r: &TableFactor, name: &str) -> bool {
    let TableFactor::NestedJoin {
        table_with_joins, ..
    } = r
    else {
        return false;
    };
    std::iter::once(&table_with_joins.relation)
        .chain(table_with_joins.joins.iter().map(|j| &j.relation))
        .any(|r| names(r, name) || nests(r, name))
}

/// A column of relation `name` that `join`'s condition needs not NULL
/// (`name.c = x`, `name.c < x`, a `USING` column), as `name.c`.
fn present_column(join: &Join, name: &str) -> Option<Expr> {
    let constraint = match &join.join_operator {
        JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c) => c,
        // A full join keeps the unmatched rows of both sides: present
        // there with the column NULL.
        _ => return None,
    };
    let qualified = |col: &Ident| Expr::CompoundIdentifier(vec![Ident::new(name), col.clone()]);
    match constraint {
        JoinConstraint::On(on) => crate::visit::conjuncts(on).into_iter().find_map(|c| {
            let Expr::BinaryOp { left, op, right } = c else {
                return None;
            };
            if !crate::visit::is_comparison(op) {
                return None;
            }
            [left, right]
                .into_iter()
                .find_map(|side| match side.as_ref() {
                    Expr::CompoundIdentifier(ids)
                        if ids.len() >= 2 && normalize_ident(&ids[ids.len() - 2]) == name =>
                    {
                        Some(qualified(&ids[ids.len() - 1]))
                    }
                    _ => None,
                })
        }),
        JoinConstraint::Using(cols) => cols
            .first()
            .and_then(|c: &ObjectName| c.0.last())
            .and_then(|p| p.as_ident())
            .map(qualified),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> Result<String> {
        let mut stmt = crate::frontend::parse_one(sql);
        whole_row_counts(&mut stmt)?;
        Ok(stmt.to_string())
    }

    #[test]
    fn a_relation_no_outer_join_extends_counts_every_row() {
        assert_eq!(
            rewritten("SELECT count(t.*) FROM t").unwrap(),
            "SELECT count(*) FROM t"
        );
        assert_eq!(
            rewritten("SELECT count(a.*) FROM t AS a JOIN u ON u.k = a.k LEFT JOIN v ON v.k = u.k")
                .unwrap(),
            "SELECT count(*) FROM t AS a JOIN u ON u.k = a.k LEFT JOIN v ON v.k = u.k"
        );
    }

    #[test]
    fn a_null_extended_relation_counts_its_matched_rows() {
        assert_eq!(
            rewritten("SELECT a.id, count(b.*) FROM a LEFT JOIN b ON b.a_id = a.id GROUP BY a.id")
                .unwrap(),
            "SELECT a.id, count(b.a_id) FROM a LEFT JOIN b ON b.a_id = a.id GROUP BY a.id"
        );
        assert_eq!(
            rewritten("SELECT count(a.*) FROM a RIGHT JOIN b ON b.x > 1 AND a.k = b.k").unwrap(),
            "SELECT count(a.k) FROM a RIGHT JOIN b ON b.x > 1 AND a.k = b.k"
        );
        assert_eq!(
            rewritten("SELECT count(b.*) FROM a LEFT JOIN b USING (k)").unwrap(),
            "SELECT count(b.k) FROM a LEFT JOIN b USING(k)"
        );
        // In HAVING and a subquery's own FROM.
        assert_eq!(
            rewritten("SELECT (SELECT count(y.*) FROM x LEFT JOIN y ON y.k = x.k) FROM t HAVING count(t.*) > 0").unwrap(),
            "SELECT (SELECT count(y.k) FROM x LEFT JOIN y ON y.k = x.k) FROM t HAVING count(*) > 0"
        );
    }

    #[test]
    fn what_cannot_be_told_exactly_is_refused() {
        for sql in [
            "SELECT count(b.*) FROM a LEFT JOIN b ON true",
            "SELECT count(b.*) FROM a LEFT JOIN b ON b.k IS NULL",
            "SELECT count(DISTINCT a.*) FROM a",
            "SELECT count(b.*) FROM a FULL JOIN b USING (k)",
            "SELECT count(a.*) FROM a LEFT JOIN b ON b.k = a.k RIGHT JOIN c ON c.k = b.k AND a.k = c.k FULL JOIN d ON d.k = a.k",
            "SELECT count(b.*) FROM a LEFT JOIN (b JOIN c ON c.k = b.k) ON b.k = a.k",
        ] {
            let e = rewritten(sql).unwrap_err();
            assert_eq!(
                e.kind,
                crate::error::ErrorKind::FeatureNotSupported,
                "{sql}: {e:?}"
            );
        }
        // A name this FROM does not have.
        let e = rewritten("SELECT count(z.*) FROM t").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::UndefinedTable, "{e:?}");
    }
}
