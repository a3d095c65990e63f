//! `character(n)` in expressions. Its values are stored without trailing
//! spaces (see [`crate::types::bpchar`]), which is what PostgreSQL compares,
//! measures and concatenates; this rule covers the rest:
//!
//! - a literal, parameter or varchar compared with a `character(n)` column
//!   is a `character` value too, whose trailing spaces do not count
//!   (`k = 'a  '`, `k IN ('b ', 'c')`, `k = $1` with a padded value a client
//!   read back): it is compared without them;
//! - `LIKE`, `octet_length` and `concat` see the value padded to `n`, as
//!   PostgreSQL's do (`k LIKE 'a'` is false for `'a  '`).
//!
//! A column is `character(n)` when it passes a table column of that type
//! through (see [`super::result_types`]).

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan};

use super::result_types::{Source, Tables, expr_source, untyped_text, walk};
use crate::catalog::Catalog;

#[derive(Debug)]
pub struct CharSemantics {
    catalog: std::sync::Weak<Catalog>,
}

impl CharSemantics {
    pub fn new(catalog: &Arc<Catalog>) -> Self {
        CharSemantics {
            catalog: Arc::downgrade(catalog),
        }
    }
}

/// The width of `e` when it is a `character(n)` column (through the casts
/// between text types that coercion adds, and the text output that
/// `concat` reads its arguments through).
fn char_width(e: &Expr, input: &LogicalPlan, sources: &[Option<Source>]) -> Option<usize> {
    let mut e = e;
    loop {
        e = match e {
            Expr::Cast(c) => &c.expr,
            Expr::ScalarFunction(f)
                if f.func.name() == crate::types::text::OUTPUT_TEXT && f.args.len() == 1 =>
            {
                &f.args[0]
            }
            _ => break,
        };
    }
    if let Some(n) = char_cast_width(e) {
        return Some(n);
    }
    match expr_source(e, input, sources)? {
        Source::Type(t, _) if t.name == "character" => Some(t.length.unwrap_or(1) as usize),
        _ => None,
    }
}

fn reads_char_cast(e: &Expr) -> bool {
    crate::tree::exists(e, |x| Ok(char_cast_width(x).is_some())).unwrap_or(false)
}

/// Whether an expression of `plan` (its subqueries' too) casts to
/// `character(n)`.
fn has_char_cast(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = crate::tree::apply_with_subqueries(plan, |node| {
        found = node.expressions().iter().any(reads_char_cast);
        Ok(if found {
            datafusion::common::tree_node::TreeNodeRecursion::Stop
        } else {
            datafusion::common::tree_node::TreeNodeRecursion::Continue
        })
    });
    found
}

/// The width of a cast to `character(n)` as the planner writes it
/// (`sluice_bpchar(left(CAST(x AS text), n), ' ')`: `'a'::char(3)`).
fn char_cast_width(e: &Expr) -> Option<usize> {
    use datafusion::common::ScalarValue;
    let Expr::ScalarFunction(trim) = e else {
        return None;
    };
    let [inner, Expr::Literal(space, _)] = trim.args.as_slice() else {
        return None;
    };
    if trim.func.name() != crate::types::bpchar::CAST
        || !matches!(space, ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) if s == " ")
    {
        return None;
    }
    let Expr::ScalarFunction(left) = inner else {
        return None;
    };
    let [Expr::Cast(_), n] = left.args.as_slice() else {
        return None;
    };
    let mut n = n;
    while let Expr::Cast(c) = n {
        n = &c.expr;
    }
    let Expr::Literal(n, _) = n else {
        return None;
    };
    if left.func.name() != "left" {
        return None;
    }
    match n
        .cast_to(&datafusion::arrow::datatypes::DataType::Int64)
        .ok()?
    {
        ScalarValue::Int64(Some(n)) if n > 0 => Some(n as usize),
        _ => None,
    }
}

/// A value written without a type: a string literal or a parameter.
fn untyped(e: &Expr) -> bool {
    match e {
        Expr::Placeholder(_) => true,
        Expr::Cast(c) => untyped(&c.expr),
        _ => untyped_text(e),
    }
}

fn call(f: Arc<datafusion::logical_expr::ScalarUDF>, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(f, args))
}

fn trimmed(e: Expr) -> Expr {
    call(datafusion::functions::string::rtrim(), vec![e])
}

/// `e` padded to `width`, of `e`'s own type (the other operand was
/// coerced to it).
fn padded(e: Expr, width: usize, input: &LogicalPlan) -> Expr {
    use datafusion::logical_expr::ExprSchemable;
    let ty = e.get_type(input.schema()).ok();
    let pad = call(
        datafusion::functions::unicode::rpad(),
        vec![e, datafusion::logical_expr::lit(width as i64)],
    );
    match ty {
        Some(t) => datafusion::logical_expr::cast(pad, t),
        None => pad,
    }
}

/// A function that reads a `character(n)` argument with its padding.
fn sees_padding(f: &ScalarFunction) -> bool {
    matches!(f.func.name(), "octet_length" | "concat" | "concat_ws")
}

/// Whether `e` is an expression this rule may change.
fn candidate(e: &Expr) -> bool {
    match e {
        Expr::BinaryExpr(b) => crate::types::is_comparison(&b.op),
        Expr::InList(_) | Expr::Like(_) | Expr::SimilarTo(_) => true,
        Expr::ScalarFunction(f) => sees_padding(f),
        _ => false,
    }
}

fn rewrite(
    e: Expr,
    input: &LogicalPlan,
    sources: &[Option<Source>],
) -> datafusion::error::Result<Transformed<Expr>> {
    let width = |x: &Expr| char_width(x, input, sources);
    // PostgreSQL compares a varchar with a character value as character
    // (a text value as text, the character value's spaces dropped).
    let as_char = |x: &Expr| {
        untyped(x)
            || matches!(expr_source(x, input, sources),
                Some(Source::Type(t, _)) if t.name == "character varying")
    };
    Ok(match e {
        Expr::BinaryExpr(mut b) if crate::types::is_comparison(&b.op) => {
            if width(&b.left).is_some() && as_char(&b.right) {
                b.right = Box::new(trimmed(*b.right));
            } else if width(&b.right).is_some() && as_char(&b.left) {
                b.left = Box::new(trimmed(*b.left));
            } else {
                return Ok(Transformed::no(Expr::BinaryExpr(b)));
            }
            Transformed::yes(Expr::BinaryExpr(b))
        }
        Expr::InList(mut l) if width(&l.expr).is_some() && l.list.iter().any(untyped) => {
            l.list = l
                .list
                .into_iter()
                .map(|x| if untyped(&x) { trimmed(x) } else { x })
                .collect();
            Transformed::yes(Expr::InList(l))
        }
        Expr::Like(mut l) => match width(&l.expr) {
            Some(n) => {
                l.expr = Box::new(padded(*l.expr, n, input));
                Transformed::yes(Expr::Like(l))
            }
            None => Transformed::no(Expr::Like(l)),
        },
        Expr::SimilarTo(mut l) => match width(&l.expr) {
            Some(n) => {
                l.expr = Box::new(padded(*l.expr, n, input));
                Transformed::yes(Expr::SimilarTo(l))
            }
            None => Transformed::no(Expr::SimilarTo(l)),
        },
        Expr::ScalarFunction(mut f) if sees_padding(&f) => {
            let mut changed = false;
            for a in f.args.iter_mut() {
                if let Some(n) = width(a) {
                    *a = padded(a.clone(), n, input);
                    changed = true;
                }
            }
            Transformed::new_transformed(Expr::ScalarFunction(f), changed)
        }
        other => Transformed::no(other),
    })
}

impl datafusion::optimizer::AnalyzerRule for CharSemantics {
    fn name(&self) -> &str {
        "sluice_char_semantics"
    }

    fn analyze(
        &self,
        plan: LogicalPlan,
        _: &datafusion::common::config::ConfigOptions,
    ) -> datafusion::error::Result<LogicalPlan> {
        let Some(catalog) = self.catalog.upgrade() else {
            return Ok(plan);
        };
        let snapshot = catalog.snapshot();
        if !snapshot.has_character_columns() && !has_char_cast(&plan) {
            return Ok(plan);
        }
        let mut tables = Tables::new(&snapshot, catalog.lake());
        crate::tree::transform_up_with_subqueries(plan, |node| {
            let wanted = node
                .expressions()
                .iter()
                .any(|e| crate::tree::exists(e, |x| Ok(candidate(x))).unwrap_or(false));
            if !wanted {
                return Ok(Transformed::no(node));
            }
            // The columns an expression of the node reads: its input's, or
            // for a join both sides'.
            let input = match &node {
                LogicalPlan::Join(j)
                    if matches!(
                        j.join_type,
                        JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
                    ) =>
                {
                    node.clone()
                }
                _ => match node.inputs().as_slice() {
                    [one] => (*one).clone(),
                    _ => return Ok(Transformed::no(node)),
                },
            };
            let sources = walk(&input, &mut tables);
            if !sources
                .iter()
                .any(|s| matches!(s, Some(Source::Type(t, _)) if t.name == "character"))
                && !node.expressions().iter().any(reads_char_cast)
            {
                return Ok(Transformed::no(node));
            }
            let names = NamePreserver::new(&node);
            crate::tree::map_expressions(node, |e| {
                let saved = crate::types::save_name(&names, &e);
                let done = crate::tree::transform_up(e, |x| rewrite(x, &input, &sources))?;
                Ok(done.update_data(|e| crate::types::keep_name(saved, e)))
            })
        })
        .map(|t| t.data)
    }
}
