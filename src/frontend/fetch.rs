//! The SQL standard's row limit, `[OFFSET n {ROW | ROWS}] FETCH {FIRST |
//! NEXT} [n] {ROW | ROWS} ONLY`, as the `LIMIT` it means (DataFusion
//! refused the clause with 0A000). Without a count it is one row, as in
//! PostgreSQL. `WITH TIES` stays refused with its own message (0A000),
//! and so does a query that has both `LIMIT` and `FETCH` (42601, as in
//! PostgreSQL).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, LimitClause, Query, Statement, Value, VisitorMut};

use crate::error::{Error, Result};

/// Every `FETCH ... ONLY` of `stmt` as a `LIMIT` (see the module docs).
pub fn fetch_as_limit(stmt: &mut Statement) -> Result<()> {
    struct Fetches;
    impl VisitorMut for Fetches {
        type Break = Error;
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<Error> {
            match limit(q) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => ControlFlow::Break(e),
            }
        }
    }
    match crate::visit::walk_mut(stmt, &mut Fetches) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn limit(q: &mut Query) -> Result<()> {
    let Some(fetch) = q.fetch.take() else {
        return Ok(());
    };
    if fetch.with_ties {
        return Err(Error::not_supported("FETCH ... WITH TIES").with_hint(
            "Rank the rows with rank() OVER (ORDER BY ...) and keep those ranked within the count.",
        ));
    }
    if fetch.percent {
        return Err(Error::syntax("syntax error at or near \"PERCENT\""));
    }
    let count = fetch
        .quantity
        .unwrap_or_else(|| Expr::value(Value::Number("1".into(), false)));
    match &mut q.limit_clause {
        None => {
            q.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(count),
                offset: None,
                limit_by: vec![],
            });
        }
        Some(LimitClause::LimitOffset {
            limit: limit @ None,
            ..
        }) => *limit = Some(count),
        Some(_) => {
            return Err(Error::syntax("multiple LIMIT clauses not allowed"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn rewritten(sql: &str) -> Result<String> {
        let mut s = crate::frontend::parse_one(sql);
        fetch_as_limit(&mut s)?;
        Ok(s.to_string())
    }

    #[test]
    fn fetch_only_is_a_limit() {
        assert_eq!(
            rewritten("SELECT a FROM t ORDER BY a OFFSET 2 ROWS FETCH NEXT 3 ROWS ONLY").unwrap(),
            "SELECT a FROM t ORDER BY a LIMIT 3 OFFSET 2 ROWS"
        );
        assert_eq!(
            rewritten("SELECT a FROM t FETCH FIRST ROW ONLY").unwrap(),
            "SELECT a FROM t LIMIT 1"
        );
        assert_eq!(
            rewritten("SELECT (SELECT b FROM u ORDER BY b FETCH FIRST 1 ROWS ONLY) FROM t")
                .unwrap(),
            "SELECT (SELECT b FROM u ORDER BY b LIMIT 1) FROM t"
        );
    }

    #[test]
    fn ties_and_a_second_limit_are_refused() {
        let e = rewritten("SELECT a FROM t ORDER BY a FETCH FIRST 2 ROWS WITH TIES").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::FeatureNotSupported), "{e:?}");
        let e = rewritten("SELECT a FROM t LIMIT 1 FETCH FIRST 2 ROWS ONLY").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Syntax), "{e:?}");
    }
}
