//! `WITH ... INSERT | UPDATE | DELETE`: WITH queries ahead of a write, as
//! PostgreSQL allows. sqlparser reads the statement as a query whose body
//! is the write, which DataFusion refused ("not implemented yet"). The
//! write is taken out: an INSERT's source query gets the WITH queries
//! ahead of its own, and in an UPDATE or DELETE each reference to a WITH
//! query (in `FROM`, `USING` and subqueries, never the table written) is
//! replaced by that query as a derived table of the same name.
//!
//! Also here: an UPDATE's `SET (a, b) = (x, y)`, set column by column.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Cte, Query, SetExpr, Statement, TableAlias, TableFactor, VisitorMut, With,
};

use super::names::normalize_ident;
use crate::error::{Error, Result};

/// `stmt` with a write under WITH queries taken out (see the module docs);
/// any other statement as it is.
pub fn dml_with(stmt: Statement) -> Result<Statement> {
    let Statement::Query(q) = &stmt else {
        return Ok(stmt);
    };
    if !matches!(
        q.body.as_ref(),
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_)
    ) {
        return Ok(stmt);
    }
    let Statement::Query(q) = stmt else {
        unreachable!("matched above")
    };
    let Query { with, body, .. } = *q;
    let write = match *body {
        SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => s,
        _ => unreachable!("matched above"),
    };
    let Some(with) = with else {
        return Ok(write);
    };
    if with.recursive {
        return Err(
            Error::not_supported("WITH RECURSIVE ahead of an INSERT, UPDATE or DELETE")
                .with_hint("Put the recursive query in the statement's FROM or subquery."),
        );
    }
    match write {
        Statement::Insert(mut ins) => {
            let Some(source) = ins.source.as_mut() else {
                return Err(Error::not_supported("INSERT without VALUES or SELECT"));
            };
            let mut ctes = with.cte_tables.clone();
            let mut recursive = false;
            if let Some(own) = source.with.take() {
                recursive = own.recursive;
                ctes.extend(own.cte_tables);
            }
            source.with = Some(With {
                cte_tables: ctes,
                recursive,
                ..with
            });
            Ok(Statement::Insert(ins))
        }
        Statement::Update(mut up) => {
            let ctes = inlined(&with.cte_tables);
            let mut v = Inline(&ctes);
            let _ = crate::visit::walk_mut(&mut up.from, &mut v);
            let _ = crate::visit::walk_mut(&mut up.selection, &mut v);
            let _ = crate::visit::walk_mut(&mut up.assignments, &mut v);
            let _ = crate::visit::walk_mut(&mut up.returning, &mut v);
            // The target's joins (`UPDATE t, s` is not PostgreSQL's).
            let _ = crate::visit::walk_mut(&mut up.table.joins, &mut v);
            Ok(Statement::Update(up))
        }
        Statement::Delete(mut del) => {
            let ctes = inlined(&with.cte_tables);
            let mut v = Inline(&ctes);
            let _ = crate::visit::walk_mut(&mut del.using, &mut v);
            let _ = crate::visit::walk_mut(&mut del.selection, &mut v);
            let _ = crate::visit::walk_mut(&mut del.returning, &mut v);
            Ok(Statement::Delete(del))
        }
        other => Ok(other),
    }
}

/// `SET (a, b) = (x, y)` (also `= ROW(x, y)`) as `SET a = x, b = y`, in
/// an UPDATE and in `ON CONFLICT DO UPDATE`, as PostgreSQL reads it; a
/// tuple set from a subquery is left (and refused where it is written).
pub fn tuple_assignments(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        Assignment, AssignmentTarget, Expr, OnConflictAction, OnInsert,
    };
    // `SET (a) = (x)` gives one value in parentheses.
    fn values(e: &Expr) -> Option<Vec<Expr>> {
        match e {
            Expr::Nested(inner) => Some(vec![inner.as_ref().clone()]),
            other => crate::frontend::compat::row_constructor_fields(other),
        }
    }
    let expand = |assignments: &mut Vec<Assignment>| {
        let mut out = Vec::with_capacity(assignments.len());
        for a in assignments.drain(..) {
            match (&a.target, values(&a.value)) {
                (AssignmentTarget::Tuple(columns), Some(v)) if v.len() == columns.len() => {
                    out.extend(columns.iter().zip(v).map(|(c, value)| Assignment {
                        target: AssignmentTarget::ColumnName(c.clone()),
                        value,
                    }));
                }
                _ => out.push(a),
            }
        }
        *assignments = out;
    };
    match stmt {
        Statement::Update(up) => expand(&mut up.assignments),
        Statement::Insert(ins) => {
            if let Some(OnInsert::OnConflict(c)) = &mut ins.on
                && let OnConflictAction::DoUpdate(u) = &mut c.action
            {
                expand(&mut u.assignments);
            }
        }
        _ => {}
    }
}

/// The WITH queries, each with the ones before it inlined into it.
fn inlined(ctes: &[Cte]) -> Vec<Cte> {
    let mut out: Vec<Cte> = Vec::with_capacity(ctes.len());
    for cte in ctes {
        let mut cte = cte.clone();
        let _ = crate::visit::walk_mut(&mut cte.query, &mut Inline(&out));
        out.push(cte);
    }
    out
}

/// Replaces a one-part table name that is one of the WITH queries by the
/// query, named as the reference names it.
struct Inline<'a>(&'a [Cte]);

impl VisitorMut for Inline<'_> {
    type Break = ();
    /// After the reference's own parts are visited: the query put in its
    /// place is not visited again (its names were bound where it was
    /// defined; a WITH query may read a table of its own name).
    fn post_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = t
        else {
            return ControlFlow::Continue(());
        };
        let [part] = name.0.as_slice() else {
            return ControlFlow::Continue(());
        };
        let Some(ident) = part.as_ident() else {
            return ControlFlow::Continue(());
        };
        let wanted = normalize_ident(ident);
        let Some(cte) = self
            .0
            .iter()
            .rev()
            .find(|c| normalize_ident(&c.alias.name) == wanted)
        else {
            return ControlFlow::Continue(());
        };
        let alias = match alias.take() {
            Some(a) if a.columns.is_empty() => TableAlias {
                columns: cte.alias.columns.clone(),
                ..a
            },
            Some(a) => a,
            None => cte.alias.clone(),
        };
        *t = TableFactor::Derived {
            lateral: false,
            subquery: cte.query.clone(),
            alias: Some(alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        dml_with(crate::frontend::parse_one(sql))
            .unwrap()
            .to_string()
    }

    #[test]
    fn tuples_are_set_column_by_column() {
        let mut s = crate::frontend::parse_one("UPDATE t SET (a, b) = (a + 1, NULL), c = 2");
        tuple_assignments(&mut s);
        assert_eq!(s.to_string(), "UPDATE t SET a = a + 1, b = NULL, c = 2");
        let mut s = crate::frontend::parse_one("UPDATE t SET (a, b) = ROW(1, 2)");
        tuple_assignments(&mut s);
        assert_eq!(s.to_string(), "UPDATE t SET a = 1, b = 2");
    }

    #[test]
    fn writes_under_with_queries_are_taken_out() {
        assert_eq!(
            rewritten("WITH s AS (SELECT 1 AS k) INSERT INTO t (k) SELECT k FROM s"),
            "INSERT INTO t (k) WITH s AS (SELECT 1 AS k) SELECT k FROM s"
        );
        assert_eq!(
            rewritten(
                "WITH s AS (SELECT k FROM u WHERE v = 0) UPDATE t SET n = 99 FROM s WHERE t.k = s.k"
            ),
            "UPDATE t SET n = 99 FROM (SELECT k FROM u WHERE v = 0) s WHERE t.k = s.k"
        );
        assert_eq!(
            rewritten(
                "WITH a AS (SELECT 1 AS k), b(x) AS (SELECT k FROM a) \
                 DELETE FROM t WHERE k IN (SELECT x FROM b)"
            ),
            "DELETE FROM t WHERE k IN (SELECT x FROM (SELECT k FROM (SELECT 1 AS k) a) b (x))"
        );
        // A WITH query reading the table of its own name reads the table.
        assert_eq!(
            rewritten(
                "WITH orders AS (SELECT * FROM orders WHERE open) \
                 DELETE FROM t WHERE k IN (SELECT k FROM orders)"
            ),
            "DELETE FROM t WHERE k IN (SELECT k FROM (SELECT * FROM orders WHERE open) orders)"
        );
        // The table written is never a WITH query.
        assert_eq!(
            rewritten("WITH t AS (SELECT 1 AS k) DELETE FROM t"),
            "DELETE FROM t"
        );
    }
}
