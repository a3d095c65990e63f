//! Walks of sqlparser's syntax tree, compiled once.
//!
//! sqlparser derives `Visit` and `VisitMut` for every node type, generic
//! over the visitor: each visitor type compiles the walk of the whole tree
//! again, some three thousand functions with their stack-growth shims.
//! With one visitor type per rewrite that was four fifths of the
//! functions this crate compiled and half of its build time. Every walk
//! goes through here instead: the visitor is held as a trait object and
//! its break value kept aside, so the tree's walk is compiled once for
//! changing walks and once for reading ones.
//!
//! [`visit_expressions_mut`], [`visit_expressions`] and
//! [`visit_relations`] call their closure where sqlparser's functions of
//! the same names do. `clippy.toml` disallows sqlparser's walks
//! elsewhere.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, ObjectName, Query, Select, Statement, TableFactor, ValueWithSpan, Visit,
    VisitMut, Visitor, VisitorMut,
};

/// Walk `node`, calling `visitor`'s hooks (sqlparser's `node.visit`).
#[allow(clippy::disallowed_methods)]
pub fn walk_mut<N: VisitMut, B>(
    node: &mut N,
    visitor: &mut dyn VisitorMut<Break = B>,
) -> ControlFlow<B> {
    let mut keep = KeepBreak {
        inner: visitor,
        broke: None,
    };
    let _ = node.visit(&mut DynMut(&mut keep));
    keep.broke
        .map_or(ControlFlow::Continue(()), ControlFlow::Break)
}

/// Walk `node` without changing it (sqlparser's `node.visit`).
#[allow(clippy::disallowed_methods)]
pub fn walk<N: Visit, B>(node: &N, visitor: &mut dyn Visitor<Break = B>) -> ControlFlow<B> {
    let mut keep = KeepBreak {
        inner: visitor,
        broke: None,
    };
    let _ = node.visit(&mut Dyn(&mut keep));
    keep.broke
        .map_or(ControlFlow::Continue(()), ControlFlow::Break)
}

/// Call `f` on every expression of `node`, children before their parent.
pub fn visit_expressions_mut<N: VisitMut, B>(
    node: &mut N,
    mut f: impl FnMut(&mut Expr) -> ControlFlow<B>,
) -> ControlFlow<B> {
    struct V<'a, B>(&'a mut dyn FnMut(&mut Expr) -> ControlFlow<B>);
    impl<B> VisitorMut for V<'_, B> {
        type Break = B;
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<B> {
            (self.0)(e)
        }
    }
    walk_mut(node, &mut V(&mut f))
}

/// Call `f` on every expression of `node`, parents before their children.
pub fn visit_expressions<N: Visit, B>(
    node: &N,
    mut f: impl FnMut(&Expr) -> ControlFlow<B>,
) -> ControlFlow<B> {
    struct V<'a, B>(&'a mut dyn FnMut(&Expr) -> ControlFlow<B>);
    impl<B> Visitor for V<'_, B> {
        type Break = B;
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<B> {
            (self.0)(e)
        }
    }
    walk(node, &mut V(&mut f))
}

/// The first argument of a `nextval`, `currval` or `setval` call: the
/// sequence's name.
pub fn sequence_argument(e: &mut Expr) -> Option<&mut Expr> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let Expr::Function(func) = e else {
        return None;
    };
    let named = func
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .is_some_and(|i| {
            ["nextval", "currval", "setval"]
                .iter()
                .any(|n| i.value.eq_ignore_ascii_case(n))
        });
    match &mut func.args {
        FunctionArguments::List(list) if named => match list.args.first_mut() {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))) => Some(arg),
            _ => None,
        },
        _ => None,
    }
}

/// Call `f` on the sequence name of every `nextval`, `currval` and
/// `setval` call of `node` whose first argument is a string literal.
pub fn sequence_names_mut<N: VisitMut>(node: &mut N, mut f: impl FnMut(&mut String)) {
    use datafusion::sql::sqlparser::ast::Value;
    let _ = visit_expressions_mut(node, |e: &mut Expr| {
        if let Some(Expr::Value(v)) = sequence_argument(e)
            && let Value::SingleQuotedString(name) = &mut v.value
        {
            f(name);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Call `f` on every relation name `node` reads or writes.
pub fn visit_relations<N: Visit, B>(
    node: &N,
    mut f: impl FnMut(&ObjectName) -> ControlFlow<B>,
) -> ControlFlow<B> {
    struct V<'a, B>(&'a mut dyn FnMut(&ObjectName) -> ControlFlow<B>);
    impl<B> Visitor for V<'_, B> {
        type Break = B;
        fn pre_visit_relation(&mut self, r: &ObjectName) -> ControlFlow<B> {
            (self.0)(r)
        }
    }
    walk(node, &mut V(&mut f))
}

/// Implements the hooks of [`VisitorMut`] (`mut`) or [`Visitor`]
/// (`shared`) by handing each call to the implementing type's `forward`.
macro_rules! hooks {
    (@each mut $($hook:ident($node:ty)),*) => {
        $(
            fn $hook(&mut self, node: &mut $node) -> ControlFlow<Self::Break> {
                self.forward(|v| v.$hook(node))
            }
        )*
    };
    (@each shared $($hook:ident($node:ty)),*) => {
        $(
            fn $hook(&mut self, node: &$node) -> ControlFlow<Self::Break> {
                self.forward(|v| v.$hook(node))
            }
        )*
    };
    ($kind:ident) => {
        hooks!(@each $kind pre_visit_query(Query),
            post_visit_query(Query),
            pre_visit_select(Select),
            post_visit_select(Select),
            pre_visit_relation(ObjectName),
            post_visit_relation(ObjectName),
            pre_visit_table_factor(TableFactor),
            post_visit_table_factor(TableFactor),
            pre_visit_expr(Expr),
            post_visit_expr(Expr),
            pre_visit_statement(Statement),
            post_visit_statement(Statement),
            pre_visit_value(ValueWithSpan),
            post_visit_value(ValueWithSpan));
    };
}

/// The one visitor type the mutable walk is compiled for: its break type
/// is always `()` (see [`KeepBreak`]).
struct DynMut<'a>(&'a mut dyn VisitorMut<Break = ()>);

impl DynMut<'_> {
    fn forward(
        &mut self,
        hook: impl FnOnce(&mut dyn VisitorMut<Break = ()>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        hook(&mut *self.0)
    }
}

impl VisitorMut for DynMut<'_> {
    type Break = ();
    hooks!(mut);
}

/// The one visitor type the read-only walk is compiled for.
struct Dyn<'a>(&'a mut dyn Visitor<Break = ()>);

impl Dyn<'_> {
    fn forward(
        &mut self,
        hook: impl FnOnce(&mut dyn Visitor<Break = ()>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        hook(&mut *self.0)
    }
}

impl Visitor for Dyn<'_> {
    type Break = ();
    hooks!(shared);
}

/// A visitor with any break type seen as one that breaks with `()`: the
/// value it broke with is kept here, so the walk of the whole tree is
/// compiled once, not once per break type.
struct KeepBreak<'a, V: ?Sized, B> {
    inner: &'a mut V,
    broke: Option<B>,
}

impl<V: ?Sized, B> KeepBreak<'_, V, B> {
    fn forward(&mut self, hook: impl FnOnce(&mut V) -> ControlFlow<B>) -> ControlFlow<()> {
        match hook(self.inner) {
            ControlFlow::Continue(()) => ControlFlow::Continue(()),
            ControlFlow::Break(b) => {
                self.broke = Some(b);
                ControlFlow::Break(())
            }
        }
    }
}

impl<B> VisitorMut for KeepBreak<'_, dyn VisitorMut<Break = B> + '_, B> {
    type Break = ();
    hooks!(mut);
}

impl<B> Visitor for KeepBreak<'_, dyn Visitor<Break = B> + '_, B> {
    type Break = ();
    hooks!(shared);
}

/// The conditions `e` joins by AND, parentheses looked through
/// (`a AND (b AND c)` is `[a, b, c]`).
pub fn conjuncts(e: &Expr) -> Vec<&Expr> {
    fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                walk(left, out);
                walk(right, out);
            }
            Expr::Nested(inner) => walk(inner, out),
            other => out.push(other),
        }
    }
    let mut out = Vec::new();
    walk(e, &mut out);
    out
}

/// `=`, `<>`, `<`, `<=`, `>` or `>=`: an operator that is NULL when either
/// side is.
pub fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
    )
}

/// [`conjuncts`], each condition mutable in place.
pub fn conjuncts_mut(e: &mut Expr) -> Vec<&mut Expr> {
    fn walk<'a>(e: &'a mut Expr, out: &mut Vec<&'a mut Expr>) {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                walk(left, out);
                walk(right, out);
            }
            Expr::Nested(inner) => walk(inner, out),
            other => out.push(other),
        }
    }
    let mut out = Vec::new();
    walk(e, &mut out);
    out
}

/// Call `f` on every expression of `node` outside nested queries.
pub fn at_level<T: datafusion::sql::sqlparser::ast::Visit>(
    node: &T,
    f: &mut dyn FnMut(&Expr),
) -> ControlFlow<()> {
    struct L<'a> {
        f: &'a mut dyn FnMut(&Expr),
        depth: usize,
    }
    impl datafusion::sql::sqlparser::ast::Visitor for L<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.depth == 0 {
                (self.f)(e);
            }
            ControlFlow::Continue(())
        }
    }
    walk(node, &mut L { f, depth: 0 })
}

/// [`at_level`], changing expressions after their parts.
pub fn at_level_mut<N: datafusion::sql::sqlparser::ast::VisitMut>(
    e: &mut N,
    f: &mut dyn FnMut(&mut Expr),
) -> ControlFlow<()> {
    struct L<'a> {
        f: &'a mut dyn FnMut(&mut Expr),
        depth: usize,
    }
    impl VisitorMut for L<'_> {
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
            if self.depth == 0 {
                (self.f)(e);
            }
            ControlFlow::Continue(())
        }
    }
    walk_mut(e, &mut L { f, depth: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parse(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn expressions_are_visited_as_sqlparser_orders_them() {
        let mut stmt = parse("SELECT a + 1 FROM t WHERE b > (SELECT max(c) FROM u)");
        let mut ours = Vec::new();
        let _ = visit_expressions(&stmt, |e| {
            ours.push(e.to_string());
            ControlFlow::<()>::Continue(())
        });
        let mut theirs = Vec::new();
        #[allow(clippy::disallowed_methods)]
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(&stmt, |e| {
            theirs.push(e.to_string());
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(ours, theirs);
        assert_eq!(ours[0], "a + 1");

        let mut post = Vec::new();
        let _ = visit_expressions_mut(&mut stmt, |e| {
            post.push(e.to_string());
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(post.first().map(String::as_str), Some("a"));
        assert_eq!(post.len(), ours.len());
    }

    #[test]
    fn a_break_stops_the_walk_with_its_value() {
        let mut stmt = parse("SELECT x FROM a JOIN b ON true WHERE y IN (SELECT z FROM c)");
        let mut names = Vec::new();
        let _ = visit_relations(&stmt, |r| {
            names.push(r.to_string());
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(names, ["a", "b", "c"]);
        let found = visit_expressions_mut(&mut stmt, |e| match e {
            Expr::Identifier(i) if i.value == "y" => {
                i.value = "w".into();
                ControlFlow::Break(7)
            }
            _ => ControlFlow::Continue(()),
        });
        assert_eq!(found, ControlFlow::Break(7));
        assert!(stmt.to_string().contains("WHERE w IN"));
    }
}
