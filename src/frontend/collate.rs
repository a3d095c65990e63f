//! `expr COLLATE name`: text in Sluice compares and sorts by its bytes,
//! which is PostgreSQL's `C` collation. A collation that means the same
//! (`"C"`, `"POSIX"`, `ucs_basic`, `"default"` — the database's, which is
//! C here) is dropped; another is refused with 0A000 rather than sorted
//! as C (DataFusion failed on the node with an unhelpful 0A000).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, ObjectName, Statement, VisitorMut};

use crate::error::{Error, Result};

/// The collations that sort as bytes.
const AS_BYTES: &[&str] = &["c", "posix", "ucs_basic", "default"];

fn collation_name(n: &ObjectName) -> String {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Drops every byte-order `COLLATE` of `stmt` (see the module docs).
pub fn byte_collations(stmt: &mut Statement) -> Result<()> {
    struct Collations;
    impl VisitorMut for Collations {
        type Break = Error;
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<Error> {
            let Expr::Collate { expr, collation } = e else {
                return ControlFlow::Continue(());
            };
            let name = collation_name(collation);
            if !AS_BYTES.contains(&name.as_str()) {
                return ControlFlow::Break(
                    Error::not_supported(format!("collation {collation}")).with_hint(
                        "Text compares and sorts by its bytes: use COLLATE \"C\" or none.",
                    ),
                );
            }
            let inner = std::mem::replace(
                expr.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            *e = Expr::Nested(Box::new(inner));
            ControlFlow::Continue(())
        }
    }
    match crate::visit::walk_mut(stmt, &mut Collations) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> Result<String> {
        let mut s = crate::frontend::parse_one(sql);
        byte_collations(&mut s)?;
        Ok(s.to_string())
    }

    #[test]
    fn byte_order_collations_are_dropped() {
        assert_eq!(
            rewritten("SELECT a FROM t WHERE a COLLATE \"C\" < 'b' ORDER BY a COLLATE \"POSIX\"")
                .unwrap(),
            "SELECT a FROM t WHERE (a) < 'b' ORDER BY (a)"
        );
        assert_eq!(
            rewritten("SELECT a COLLATE pg_catalog.\"default\" FROM t").unwrap(),
            "SELECT (a) FROM t"
        );
    }

    #[test]
    fn other_collations_are_refused() {
        let e = rewritten("SELECT a FROM t ORDER BY a COLLATE \"en_US\"").unwrap_err();
        assert!(e.message.contains("en_US"), "{}", e.message);
    }
}
