//! Statements the engine generates, as syntax trees: a fixed SQL template
//! with `$1`, `$2`, ... placeholders, parsed once, whose placeholders are
//! then replaced by expressions of the user's statement. No user text is
//! ever spliced into SQL and parsed again.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Query, Statement, Value, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::parser::Parser;

use super::dialect::SluiceDialect;
use crate::error::{Error, Result};

/// The placeholder of relation `n` in a template: the derived table
/// `(SELECT "__sluice_relation_n")`.
pub fn relation(n: usize) -> String {
    format!("(SELECT \"{RELATION}{n}\")")
}

const RELATION: &str = "__sluice_relation_";

/// The relation number a placeholder query stands for.
fn relation_number(q: &Query) -> Option<usize> {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    if !s.from.is_empty() {
        return None;
    }
    match s.projection.as_slice() {
        [SelectItem::UnnamedExpr(Expr::Identifier(i))] if i.quote_style == Some('"') => {
            i.value.strip_prefix(RELATION)?.parse().ok()
        }
        _ => None,
    }
}

/// Replace `$n` in `node` by `args[n - 1]`, and relation placeholder `n`
/// (see [`relation`]) by `relations[n - 1]`. What is put in is not
/// visited again.
fn substitute<T: VisitMut>(node: &mut T, args: &[Expr]) -> Result<()> {
    substitute_all(node, args, &[])
}

fn substitute_all<T: VisitMut>(node: &mut T, args: &[Expr], relations: &[Query]) -> Result<()> {
    struct Sub<'a>(&'a [Expr], &'a [Query], Option<Error>);
    impl VisitorMut for Sub<'_> {
        type Break = ();
        fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            if let Some(n) = relation_number(q) {
                match self.1.get(n.wrapping_sub(1)) {
                    Some(r) => *q = r.clone(),
                    None => {
                        self.2 = Some(Error::internal(format!("template relation {n}")));
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Value(v) = e
                && let Value::Placeholder(p) = &v.value
            {
                match p.trim_start_matches('$').parse::<usize>() {
                    Ok(n) if n >= 1 && n <= self.0.len() => *e = self.0[n - 1].clone(),
                    _ => {
                        self.2 = Some(Error::internal(format!("template placeholder {p}")));
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut sub = Sub(args, relations, None);
    let _ = crate::visit::walk_mut(node, &mut sub);
    match sub.2 {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The query `template` with its placeholders replaced by `args`.
pub fn query(template: &str, args: &[Expr]) -> Result<Box<Query>> {
    let dialect = SluiceDialect::default();
    let mut q = Parser::new(&dialect)
        .try_with_sql(template)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| Error::internal(format!("template {template}: {e}")))?;
    substitute(&mut q, args)?;
    Ok(q)
}

/// The query `template` with its placeholders replaced by `args` and its
/// relation placeholders by `relations`.
pub fn query_of(template: &str, args: &[Expr], relations: &[Query]) -> Result<Box<Query>> {
    let dialect = SluiceDialect::default();
    let mut q = Parser::new(&dialect)
        .try_with_sql(template)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| Error::internal(format!("template {template}: {e}")))?;
    substitute_all(&mut q, args, relations)?;
    Ok(q)
}

/// The MERGE `template` with its relation placeholders replaced by
/// `relations` (in its source).
pub fn merge(template: &str, relations: &[Query]) -> Result<super::merge::MergeStmt> {
    let dialect = SluiceDialect::default();
    let mut m = Parser::new(&dialect)
        .try_with_sql(template)
        .map_err(Error::from)
        .and_then(|mut p| super::merge::parse_merge(&mut p))
        .map_err(|e| Error::internal(format!("template {template}: {e}")))?;
    substitute_all(&mut m.source, &[], relations)?;
    Ok(m)
}

/// The statement `template` with its placeholders replaced by `args`.
pub fn statement(template: &str, args: &[Expr]) -> Result<Statement> {
    let dialect = SluiceDialect::default();
    let mut s = Parser::new(&dialect)
        .try_with_sql(template)
        .and_then(|mut p| p.parse_statement())
        .map_err(|e| Error::internal(format!("template {template}: {e}")))?;
    substitute(&mut s, args)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::ast::Ident;

    #[test]
    fn placeholders_take_expressions_not_text() {
        let evil = Expr::Identifier(Ident::with_quote('"', "a\"; DROP TABLE t; --"));
        let q = query("SELECT unnest($1) AS x", &[evil]).unwrap();
        assert_eq!(
            q.to_string(),
            "SELECT unnest(\"a\"\"; DROP TABLE t; --\") AS x"
        );
        assert!(query("SELECT $2", &[]).is_err());
    }

    #[test]
    fn relations_take_queries_and_are_not_read_again() {
        let dialect = SluiceDialect::default();
        let inner = *Parser::new(&dialect)
            .try_with_sql(&format!("SELECT $1 FROM {} AS x", relation(1)))
            .and_then(|mut p| p.parse_query())
            .unwrap();
        let q = query_of(
            &format!("SELECT * FROM {} AS r WHERE $1", relation(1)),
            &[Expr::Identifier(Ident::new("ok"))],
            &[inner],
        )
        .unwrap();
        // The placeholders inside the inserted query stay as they were.
        assert_eq!(
            q.to_string(),
            "SELECT * FROM (SELECT $1 FROM (SELECT \"__sluice_relation_1\") AS x) AS r WHERE ok"
        );
    }
}
