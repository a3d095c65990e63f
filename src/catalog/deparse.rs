//! A CHECK constraint's expression as PostgreSQL prints it back
//! (`pg_get_constraintdef`): every operator parenthesised, constants cast
//! to the type the comparison reads them as (`amount >= (0)::numeric`,
//! `t <> 'x'::text`), `BETWEEN` spelled out; in the pretty form (psql,
//! SQLAlchemy) without redundant parentheses (`amount >= 0::numeric`).
//! Shapes outside what is handled here keep their text as written.

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::catalog::ColumnDef;

/// `(plain, pretty)` texts of the CHECK expression `expr` over `columns`,
/// or `None` when its shape is not one handled here.
pub fn check_texts(expr: &str, columns: &[ColumnDef]) -> Option<(String, String)> {
    let e = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(expr)
        .ok()?
        .parse_expr()
        .ok()?;
    let node = build(&e, columns)?;
    Some((node.plain(), node.pretty(0)))
}

/// The columns a CHECK expression reads, in the order they first appear
/// (PostgreSQL's `conkey`).
pub fn check_columns(expr: &str, columns: &[ColumnDef]) -> Vec<String> {
    use datafusion::sql::sqlparser::ast::Visitor;
    use std::ops::ControlFlow;
    let Ok(e) = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(expr)
        .and_then(|mut p| p.parse_expr())
    else {
        return vec![];
    };
    struct Names<'a>(&'a [ColumnDef], Vec<String>);
    impl Visitor for Names<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Identifier(id) = e {
                let name = if id.quote_style.is_some() {
                    id.value.clone()
                } else {
                    id.value.to_lowercase()
                };
                if self.0.iter().any(|c| c.name == name) && !self.1.contains(&name) {
                    self.1.push(name);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names(columns, vec![]);
    let _ = crate::visit::walk(&e, &mut names);
    names.1
}

/// A deparsed expression.
enum Node {
    /// A column, with the type PostgreSQL reads it as.
    Column {
        name: String,
        ty: String,
    },
    /// A constant: its literal text and its type (`unknown` for a string).
    Const {
        text: String,
        ty: &'static str,
    },
    /// A constant or column cast to `to`.
    Cast {
        inner: Box<Node>,
        to: String,
    },
    Op {
        left: Box<Node>,
        op: String,
        right: Box<Node>,
        prec: u8,
    },
    IsNull {
        inner: Box<Node>,
        not: bool,
    },
    Not(Box<Node>),
}

const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const CMP: u8 = 4;
const ADD: u8 = 5;
const MUL: u8 = 6;

impl Node {
    fn ty(&self) -> Option<&str> {
        match self {
            Node::Column { ty, .. } => Some(ty),
            Node::Const { ty, .. } => Some(ty),
            Node::Cast { to, .. } => Some(to),
            // Arithmetic is only built over integers.
            Node::Op {
                left, right, prec, ..
            } if *prec >= ADD => {
                if left.ty() == Some("bigint") || right.ty() == Some("bigint") {
                    Some("bigint")
                } else {
                    Some("integer")
                }
            }
            _ => None,
        }
    }

    fn prec(&self) -> u8 {
        match self {
            Node::Op { prec, .. } => *prec,
            Node::Not(_) => NOT,
            Node::IsNull { .. } => CMP,
            _ => u8::MAX,
        }
    }

    fn plain(&self) -> String {
        match self {
            Node::Column { name, .. } => name.clone(),
            Node::Const { text, .. } => text.clone(),
            Node::Cast { inner, to } => match inner.as_ref() {
                Node::Const {
                    text,
                    ty: "unknown",
                } => format!("{text}::{to}"),
                other => format!("({})::{to}", other.plain()),
            },
            Node::Op {
                left, op, right, ..
            } => format!("({} {op} {})", left.plain(), right.plain()),
            Node::IsNull { inner, not } => format!(
                "({} IS {}NULL)",
                inner.plain(),
                if *not { "NOT " } else { "" }
            ),
            Node::Not(inner) => format!("(NOT {})", inner.plain()),
        }
    }

    /// The pretty text inside a parent of precedence `outer`.
    fn pretty(&self, outer: u8) -> String {
        let text = match self {
            Node::Column { name, .. } => return name.clone(),
            Node::Const { text, .. } => return text.clone(),
            Node::Cast { inner, to } => return format!("{}::{to}", inner.pretty(u8::MAX)),
            Node::Op {
                left,
                op,
                right,
                prec,
            } => {
                // Under a comparison PostgreSQL keeps parentheses around
                // any operator (`(qty + 1) > 2`).
                let (l, r) = if *prec == CMP {
                    (u8::MAX, u8::MAX)
                } else {
                    (*prec, *prec + 1)
                };
                format!("{} {op} {}", left.pretty(l), right.pretty(r))
            }
            Node::IsNull { inner, not } => format!(
                "{} IS {}NULL",
                inner.pretty(CMP + 1),
                if *not { "NOT " } else { "" }
            ),
            Node::Not(inner) => format!("NOT {}", inner.pretty(NOT)),
        };
        if self.prec() < outer {
            format!("({text})")
        } else {
            text
        }
    }
}

fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The type name PostgreSQL compares a column of `pg` type as.
fn read_as(pg: &str) -> String {
    match pg {
        "character varying" => "text".into(),
        "character" => "bpchar".into(),
        other => other.into(),
    }
}

fn build(e: &Expr, columns: &[ColumnDef]) -> Option<Node> {
    Some(match e {
        Expr::Nested(inner) => build(inner, columns)?,
        Expr::Identifier(id) => {
            // An unquoted name folds to lower case, as everywhere in SQL.
            let name = match id.quote_style {
                Some(_) => id.value.clone(),
                None => id.value.to_lowercase(),
            };
            let c = columns.iter().find(|c| c.name == name)?;
            if c.ty.name.ends_with("[]") {
                return None;
            }
            let column = Node::Column {
                name: quote_ident(&name),
                ty: c.ty.name.clone(),
            };
            // varchar and char compare as text / bpchar, through a cast.
            match c.ty.name.as_str() {
                "character varying" | "character" => Node::Cast {
                    inner: Box::new(column),
                    to: read_as(&c.ty.name),
                },
                _ => column,
            }
        }
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => {
                let ty = if n.contains(['.', 'e', 'E']) {
                    "numeric"
                } else if n.parse::<i32>().is_ok() {
                    "integer"
                } else if n.parse::<i64>().is_ok() {
                    "bigint"
                } else {
                    "numeric"
                };
                Node::Const {
                    text: n.clone(),
                    ty,
                }
            }
            Value::SingleQuotedString(s) => Node::Const {
                text: format!("'{}'", s.replace('\'', "''")),
                ty: "unknown",
            },
            Value::Boolean(b) => Node::Const {
                text: b.to_string(),
                ty: "boolean",
            },
            _ => return None,
        },
        Expr::IsNull(inner) => Node::IsNull {
            inner: Box::new(build(inner, columns)?),
            not: false,
        },
        Expr::IsNotNull(inner) => Node::IsNull {
            inner: Box::new(build(inner, columns)?),
            not: true,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => Node::Not(Box::new(build(expr, columns)?)),
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let (lo_op, hi_op, join) = if *negated {
                ("<", ">", BinaryOperator::Or)
            } else {
                (">=", "<=", BinaryOperator::And)
            };
            let low = compare(build(expr, columns)?, lo_op, build(low, columns)?)?;
            let high = compare(build(expr, columns)?, hi_op, build(high, columns)?)?;
            let (op, prec) = if join == BinaryOperator::Or {
                ("OR", OR)
            } else {
                ("AND", AND)
            };
            Node::Op {
                left: Box::new(low),
                op: op.into(),
                right: Box::new(high),
                prec,
            }
        }
        Expr::BinaryOp { left, op, right } => {
            let (l, r) = (build(left, columns)?, build(right, columns)?);
            match op {
                BinaryOperator::And | BinaryOperator::Or => {
                    let (word, prec) = if *op == BinaryOperator::And {
                        ("AND", AND)
                    } else {
                        ("OR", OR)
                    };
                    Node::Op {
                        left: Box::new(l),
                        op: word.into(),
                        right: Box::new(r),
                        prec,
                    }
                }
                BinaryOperator::Eq => compare(l, "=", r)?,
                BinaryOperator::NotEq => compare(l, "<>", r)?,
                BinaryOperator::Lt => compare(l, "<", r)?,
                BinaryOperator::LtEq => compare(l, "<=", r)?,
                BinaryOperator::Gt => compare(l, ">", r)?,
                BinaryOperator::GtEq => compare(l, ">=", r)?,
                BinaryOperator::Plus | BinaryOperator::Minus => arithmetic(l, op, r, ADD)?,
                BinaryOperator::Multiply | BinaryOperator::Divide => arithmetic(l, op, r, MUL)?,
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// `c` as the type `to` reads it: a constant gets a cast where the type
/// it was written as differs.
fn coerce(c: Node, to: &str) -> Option<Node> {
    let Node::Const { ty, .. } = &c else {
        return Some(c);
    };
    let cast = match (*ty, to) {
        (from, to) if from == to => false,
        ("unknown", _) => true,
        ("integer" | "bigint", "numeric" | "double precision" | "real") => true,
        ("numeric", "double precision" | "real") => true,
        ("integer", "bigint" | "smallint") | ("bigint", "integer" | "smallint") => false,
        // Shapes whose resolution is not modelled here.
        _ => return None,
    };
    Some(if cast {
        Node::Cast {
            inner: Box::new(c),
            // A float column compares with float8 constants.
            to: if to == "real" {
                "double precision".into()
            } else {
                to.into()
            },
        }
    } else {
        c
    })
}

fn compare(l: Node, op: &str, r: Node) -> Option<Node> {
    let (l, r) = match (&l, &r) {
        (Node::Const { .. }, Node::Const { .. }) => return None,
        (Node::Const { .. }, other) => {
            let to = other.ty()?.to_string();
            (coerce(l, &to)?, r)
        }
        (other, Node::Const { .. }) => {
            let to = other.ty()?.to_string();
            (l, coerce(r, &to)?)
        }
        _ => (l, r),
    };
    Some(Node::Op {
        left: Box::new(l),
        op: op.into(),
        right: Box::new(r),
        prec: CMP,
    })
}

fn arithmetic(l: Node, op: &BinaryOperator, r: Node, prec: u8) -> Option<Node> {
    // Constants on either side keep their type only when both sides are
    // integers; other mixes are not modelled.
    let numeric = |n: &Node| matches!(n.ty(), Some("integer" | "bigint" | "smallint"));
    if !(numeric(&l) && numeric(&r)) {
        return None;
    }
    Some(Node::Op {
        left: Box::new(l),
        op: op.to_string(),
        right: Box::new(r),
        prec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PgType;

    fn cols() -> Vec<ColumnDef> {
        let c = |name: &str, ty: PgType| ColumnDef {
            name: name.into(),
            ty,
            not_null: false,
            default: None,
            identity: None,
            generated: None,
        };
        vec![
            c(
                "amount",
                PgType {
                    name: "numeric".into(),
                    length: Some(12),
                    scale: Some(2),
                },
            ),
            c("qty", PgType::simple("integer")),
            c("b", PgType::simple("bigint")),
            c("r", PgType::simple("real")),
            c("t", PgType::simple("text")),
            c(
                "v",
                PgType {
                    name: "character varying".into(),
                    length: Some(5),
                    scale: None,
                },
            ),
            c("d", PgType::simple("date")),
        ]
    }

    #[test]
    fn prints_as_postgres_does() {
        // Each pair is what PostgreSQL 15 prints, plain and pretty.
        for (expr, plain, pretty) in [
            (
                "amount >= 0",
                "(amount >= (0)::numeric)",
                "amount >= 0::numeric",
            ),
            ("amount > 1.5", "(amount > 1.5)", "amount > 1.5"),
            (
                "qty > 0 AND qty < 100",
                "((qty > 0) AND (qty < 100))",
                "qty > 0 AND qty < 100",
            ),
            (
                "b BETWEEN 1 AND 10",
                "((b >= 1) AND (b <= 10))",
                "b >= 1 AND b <= 10",
            ),
            (
                "r <> 1.5",
                "(r <> (1.5)::double precision)",
                "r <> 1.5::double precision",
            ),
            ("t <> 'x'", "(t <> 'x'::text)", "t <> 'x'::text"),
            (
                "v <> 'x'",
                "((v)::text <> 'x'::text)",
                "v::text <> 'x'::text",
            ),
            (
                "d > '2020-01-01'",
                "(d > '2020-01-01'::date)",
                "d > '2020-01-01'::date",
            ),
            (
                "qty > 0 AND (t IS NULL OR t <> '')",
                "((qty > 0) AND ((t IS NULL) OR (t <> ''::text)))",
                "qty > 0 AND (t IS NULL OR t <> ''::text)",
            ),
            (
                "b NOT BETWEEN 1 AND 10",
                "((b < 1) OR (b > 10))",
                "b < 1 OR b > 10",
            ),
            ("qty + 1 > 2", "((qty + 1) > 2)", "(qty + 1) > 2"),
            ("NOT (qty > 5)", "(NOT (qty > 5))", "NOT qty > 5"),
        ] {
            let (p, q) = check_texts(expr, &cols()).unwrap_or_else(|| panic!("{expr}"));
            assert_eq!((p.as_str(), q.as_str()), (plain, pretty), "{expr}");
        }
        assert!(check_texts("length(t) > 2", &cols()).is_none());
    }

    #[test]
    fn a_check_reads_its_columns_in_order() {
        assert_eq!(
            check_columns(
                "qty > 0 AND (T IS NULL OR length(t) > qty) OR zz > 1",
                &cols()
            ),
            ["qty", "t"]
        );
        assert!(check_columns("1 >", &cols()).is_empty());
    }
}
