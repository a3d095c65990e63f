//! Sluice's SQL dialect: PostgreSQL's, plus the table versions Delta has
//! (`t VERSION AS OF 3`, `t TIMESTAMP AS OF '...'`).
//!
//! sqlparser checks the dialect by type in many places, so this one
//! answers to PostgreSQL's type and delegates every choice PostgreSQL's
//! dialect makes; only table versioning is added, and only when the text
//! has an `AS OF` (sqlparser would otherwise read a table alias `at` or
//! `before` as the start of a version clause).

use std::any::TypeId;

use datafusion::sql::sqlparser::ast::{ColumnOption, Expr, Statement};
use datafusion::sql::sqlparser::dialect::{Dialect, PostgreSqlDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};

#[derive(Debug, Default)]
pub struct SluiceDialect {
    pg: PostgreSqlDialect,
    versioning: bool,
}

impl SluiceDialect {
    /// The dialect for parsing `sql`.
    pub fn for_sql(sql: &str) -> SluiceDialect {
        SluiceDialect {
            pg: PostgreSqlDialect {},
            versioning: has_as_of(sql),
        }
    }
}

/// Does `sql` contain the words `AS OF` (in any case, any spacing)?
fn has_as_of(sql: &str) -> bool {
    let words: Vec<&str> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .any(|w| w[0].eq_ignore_ascii_case("as") && w[1].eq_ignore_ascii_case("of"))
}

macro_rules! delegate {
    ($($name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(fn $name(&self $(, $arg: $ty)*) -> $ret { self.pg.$name($($arg),*) })*
    };
}

impl Dialect for SluiceDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    fn supports_table_versioning(&self) -> bool {
        self.versioning
    }

    delegate! {
        identifier_quote_style(&self, identifier: &str) -> Option<char>;
        is_delimited_identifier_start(&self, ch: char) -> bool;
        is_identifier_start(&self, ch: char) -> bool;
        is_identifier_part(&self, ch: char) -> bool;
        supports_unicode_string_literal(&self) -> bool;
        is_reserved_for_identifier(&self, kw: Keyword) -> bool;
        is_custom_operator_part(&self, ch: char) -> bool;
        get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>>;
        supports_filter_during_aggregation(&self) -> bool;
        supports_group_by_expr(&self) -> bool;
        prec_value(&self, prec: Precedence) -> u8;
        allow_extract_custom(&self) -> bool;
        allow_extract_single_quotes(&self) -> bool;
        supports_create_index_with_clause(&self) -> bool;
        supports_explain_with_utility_options(&self) -> bool;
        supports_listen_notify(&self) -> bool;
        supports_factorial_operator(&self) -> bool;
        supports_bitwise_shift_operators(&self) -> bool;
        supports_comment_on(&self) -> bool;
        supports_load_extension(&self) -> bool;
        supports_named_fn_args_with_colon_operator(&self) -> bool;
        supports_named_fn_args_with_expr_name(&self) -> bool;
        supports_empty_projections(&self) -> bool;
        supports_nested_comments(&self) -> bool;
        supports_string_escape_constant(&self) -> bool;
        supports_numeric_literal_underscores(&self) -> bool;
        supports_array_typedef_with_brackets(&self) -> bool;
        supports_geometric_types(&self) -> bool;
        supports_set_names(&self) -> bool;
        supports_alter_column_type_using(&self) -> bool;
        supports_notnull_operator(&self) -> bool;
        supports_interval_options(&self) -> bool;
        supports_insert_table_alias(&self) -> bool;
        supports_create_table_like_parenthesized(&self) -> bool;
        supports_select_wildcard_with_alias(&self) -> bool;
        supports_comma_separated_trim(&self) -> bool;
        supports_xml_expressions(&self) -> bool;
        supports_comment_optimizer_hint(&self) -> bool;
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        if let Some(op) = prefix_operator(parser) {
            return Some(op);
        }
        self.pg.parse_prefix(parser)
    }

    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        if let Some(between) = symmetric_between(parser, expr) {
            return Some(between);
        }
        self.pg.parse_infix(parser, expr, precedence)
    }

    fn parse_statement(&self, parser: &mut Parser) -> Option<Result<Statement, ParserError>> {
        self.pg.parse_statement(parser)
    }

    fn parse_column_option(
        &self,
        parser: &mut Parser,
    ) -> Result<Option<Result<Option<ColumnOption>, ParserError>>, ParserError> {
        self.pg.parse_column_option(parser)
    }
}

/// A prefix operator of PostgreSQL's "any other operator" class (`@`,
/// `|/`, `||/`, `!!`, `~`), whose operand takes in the operators that bind
/// tighter than that class, as PostgreSQL's grammar has it: `@ -5 + 2` is
/// `@ (-5 + 2)`, 3 (sqlparser read `(@ -5) + 2`, 7).
fn prefix_operator(parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
    use datafusion::sql::sqlparser::ast::UnaryOperator;
    use datafusion::sql::sqlparser::dialect::{Dialect, PostgreSqlDialect, Precedence};
    use datafusion::sql::sqlparser::tokenizer::Token;
    let op = match parser.peek_token().token {
        Token::AtSign => UnaryOperator::PGAbs,
        Token::PGSquareRoot => UnaryOperator::PGSquareRoot,
        Token::PGCubeRoot => UnaryOperator::PGCubeRoot,
        Token::DoubleExclamationMark => UnaryOperator::PGPrefixFactorial,
        Token::Tilde => UnaryOperator::BitwiseNot,
        _ => return None,
    };
    parser.next_token();
    let operand = parser.parse_subexpr(PostgreSqlDialect {}.prec_value(Precedence::PgOther));
    Some(operand.map(|e| Expr::UnaryOp {
        op,
        expr: Box::new(e),
    }))
}

/// `x [NOT] BETWEEN SYMMETRIC a AND b`, which sqlparser does not know, as
/// PostgreSQL's grammar expands it: `x BETWEEN a AND b OR x BETWEEN b AND
/// a` (with NOT, both negated and joined by AND). `BETWEEN ASYMMETRIC` is
/// the plain one.
fn symmetric_between(parser: &mut Parser, expr: &Expr) -> Option<Result<Expr, ParserError>> {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    use datafusion::sql::sqlparser::tokenizer::Token;
    let word = |n: usize| match parser.peek_nth_token(n).token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    let negated = word(0).as_deref() == Some("NOT");
    let at = usize::from(negated);
    if word(at).as_deref() != Some("BETWEEN") {
        return None;
    }
    let symmetric = match word(at + 1).as_deref() {
        Some("SYMMETRIC") => true,
        Some("ASYMMETRIC") => false,
        _ => return None,
    };
    for _ in 0..at + 2 {
        parser.next_token();
    }
    let between = match parser.parse_between(expr.clone(), negated) {
        Ok(b) => b,
        Err(e) => return Some(Err(e)),
    };
    let Expr::Between {
        expr,
        negated,
        low,
        high,
    } = between
    else {
        return Some(Ok(between));
    };
    if !symmetric {
        return Some(Ok(Expr::Between {
            expr,
            negated,
            low,
            high,
        }));
    }
    let one = Expr::Between {
        expr: expr.clone(),
        negated,
        low: low.clone(),
        high: high.clone(),
    };
    let other = Expr::Between {
        expr,
        negated,
        low: high,
        high: low,
    };
    Some(Ok(Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(one),
        op: if negated {
            BinaryOperator::And
        } else {
            BinaryOperator::Or
        },
        right: Box::new(other),
    }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_found_in_any_spacing() {
        assert!(has_as_of("select * from t version as of 3"));
        assert!(has_as_of("SELECT * FROM t TIMESTAMP AS\n  OF '2026-01-01'"));
        assert!(!has_as_of("select a as offset from t"));
        assert!(!has_as_of("select 1 as x"));
        assert!(!has_as_of("select alias of_x from t"));
    }

    #[test]
    fn versions_parse_into_the_table_reference() {
        let sql = "SELECT * FROM raw.t VERSION AS OF 3 AS old JOIN u ON true";
        let stmts = Parser::parse_sql(&SluiceDialect::for_sql(sql), sql).unwrap();
        let text = stmts[0].to_string();
        assert!(text.contains("raw.t AS old VERSION AS OF 3"), "{text}");
    }
}
