//! Statements the engine generates, as syntax trees: a fixed SQL template
//! with `$1`, `$2`, ... placeholders, parsed once, whose placeholders are
//! then replaced by expressions of the user's statement. No user text is
//! ever spliced into SQL and parsed again.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Query, Statement, Value, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::parser::Parser;

use super::dialect::SluiceDialect;
use crate::error::{Error, Result};

/// Replace `$n` in `node` by `args[n - 1]`.
fn substitute<T: VisitMut>(node: &mut T, args: &[Expr]) -> Result<()> {
    struct Sub<'a>(&'a [Expr], Option<Error>);
    impl VisitorMut for Sub<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Value(v) = e
                && let Value::Placeholder(p) = &v.value
            {
                match p.trim_start_matches('$').parse::<usize>() {
                    Ok(n) if n >= 1 && n <= self.0.len() => *e = self.0[n - 1].clone(),
                    _ => {
                        self.1 = Some(Error::internal(format!("template placeholder {p}")));
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut sub = Sub(args, None);
    let _ = crate::visit::walk_mut(node, &mut sub);
    match sub.1 {
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
}
