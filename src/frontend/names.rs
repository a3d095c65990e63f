//! Identifiers as PostgreSQL folds and quotes them.

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArgOperator, Ident, ObjectName,
};

/// Lowercase unquoted identifiers, as PostgreSQL folds them.
pub fn normalize_ident(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// The last part of a possibly qualified name, folded like PostgreSQL does.
pub fn last_ident(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(normalize_ident)
        .unwrap_or_default()
}

/// The parts of a possibly qualified name, folded.
pub fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(normalize_ident)
                .unwrap_or_else(|| p.to_string())
        })
        .collect()
}

/// A possibly qualified name as the user wrote it, folded (`raw.orders`).
pub fn display_name(name: &ObjectName) -> String {
    name_parts(name).join(".")
}

/// Quote an identifier for SQL text.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub use crate::types::ident::quote_ident_if_needed;

/// Column names as a quoted, comma-separated SQL list.
pub fn quote_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A quoted identifier as an AST node (keeps its case).
/// The name of the one column of a set-returning function in FROM: its
/// alias's first column, else the alias itself (`generate_series(1, 3) AS
/// g` is column `g`), else `default` (the function's name).
pub fn function_column(
    alias: Option<&datafusion::sql::sqlparser::ast::TableAlias>,
    default: &str,
) -> Ident {
    alias
        .map(|a| {
            a.columns
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_else(|| a.name.clone())
        })
        .unwrap_or_else(|| Ident::new(default))
}

pub fn quoted(s: &str) -> Ident {
    Ident::with_quote('"', s)
}

/// The name of `parts` as they are (each quoted, so not folded again).
pub fn quoted_name(parts: &[String]) -> ObjectName {
    ObjectName::from(parts.iter().map(|p| quoted(p)).collect::<Vec<_>>())
}

/// One argument of a table function: `value`, or `name => value` /
/// `name := value` with the name lower-cased. `None` for other forms.
pub fn function_argument(a: &FunctionArg) -> Option<(Option<String>, &Expr)> {
    match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some((None, e)),
        FunctionArg::Named {
            name,
            arg: FunctionArgExpr::Expr(e),
            operator: FunctionArgOperator::RightArrow | FunctionArgOperator::Assignment,
        }
        | FunctionArg::ExprNamed {
            name: Expr::Identifier(name),
            arg: FunctionArgExpr::Expr(e),
            operator: FunctionArgOperator::RightArrow | FunctionArgOperator::Assignment,
        } => Some((Some(name.value.to_ascii_lowercase()), e)),
        _ => None,
    }
}

/// A name written as text (`'mart.v'`, `'"Mart".v'`), as `regclass`
/// input reads one.
pub fn parse_object_name(text: &str) -> crate::error::Result<ObjectName> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::Token;
    let bad = || {
        crate::error::Error::new(
            crate::error::ErrorKind::InvalidParameter,
            format!("invalid name syntax: \"{text}\""),
        )
    };
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|_| bad())?;
    let name = p.parse_object_name(false).map_err(|_| bad())?;
    if p.peek_token().token != Token::EOF {
        return Err(bad());
    }
    Ok(name)
}
