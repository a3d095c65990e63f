//! `MERGE` as PostgreSQL 15 writes it, `WHEN ... THEN DO NOTHING` included
//! (which sqlparser does not parse).
//!
//! ```text
//!  MERGE INTO target [[AS] alias] USING source [[AS] alias] ON condition
//!    WHEN MATCHED [AND cond] THEN UPDATE SET c = v, ... | DELETE | DO NOTHING
//!    WHEN NOT MATCHED [BY TARGET] [AND cond] THEN INSERT [(c, ...)] VALUES (v, ...)
//!                                             | INSERT DEFAULT VALUES | DO NOTHING
//!    WHEN NOT MATCHED BY SOURCE [AND cond] THEN UPDATE ... | DELETE | DO NOTHING
//! ```

use datafusion::sql::sqlparser::ast::{Assignment, Expr, Ident, TableFactor};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenKind {
    Matched,
    NotMatched,
    NotMatchedBySource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MergeAction {
    Update(Vec<Assignment>),
    Delete,
    /// Columns (empty: all, in table order) and values (`None`: DEFAULT VALUES).
    Insert {
        columns: Vec<Ident>,
        values: Option<Vec<Expr>>,
    },
    DoNothing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MergeWhen {
    pub kind: WhenKind,
    pub condition: Option<Expr>,
    pub action: MergeAction,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MergeStmt {
    pub target: TableFactor,
    pub source: TableFactor,
    pub on: Expr,
    pub clauses: Vec<MergeWhen>,
}

fn syntax_at(p: &Parser, what: &str) -> Error {
    let t = p.peek_token().token;
    let near = if t == Token::EOF {
        "syntax error at end of input".to_string()
    } else {
        format!("syntax error at or near \"{t}\"")
    };
    Error::syntax(near).with_detail(format!("expected {what}"))
}

/// Parse a MERGE statement; `p` is at the `MERGE` keyword.
pub fn parse_merge(p: &mut Parser) -> Result<MergeStmt> {
    p.expect_keyword(Keyword::MERGE)?;
    p.expect_keyword(Keyword::INTO)?;
    let target = p.parse_table_factor()?;
    p.expect_keyword(Keyword::USING)?;
    let mut source = p.parse_table_factor()?;
    super::compat::scalar_function_aliases(&mut source);
    p.expect_keyword(Keyword::ON)?;
    let on = p.parse_expr()?;
    let mut clauses = Vec::new();
    while p.parse_keyword(Keyword::WHEN) {
        let kind = if p.parse_keyword(Keyword::NOT) {
            p.expect_keyword(Keyword::MATCHED)?;
            if p.parse_keywords(&[Keyword::BY, Keyword::SOURCE]) {
                WhenKind::NotMatchedBySource
            } else {
                let _ = p.parse_keywords(&[Keyword::BY, Keyword::TARGET]);
                WhenKind::NotMatched
            }
        } else {
            p.expect_keyword(Keyword::MATCHED)?;
            WhenKind::Matched
        };
        let condition = if p.parse_keyword(Keyword::AND) {
            Some(p.parse_expr()?)
        } else {
            None
        };
        p.expect_keyword(Keyword::THEN)?;
        let action = if p.parse_keyword(Keyword::UPDATE) {
            if kind == WhenKind::NotMatched {
                return Err(Error::syntax(
                    "UPDATE is not allowed in a WHEN NOT MATCHED clause",
                ));
            }
            p.expect_keyword(Keyword::SET)?;
            MergeAction::Update(p.parse_comma_separated(Parser::parse_assignment)?)
        } else if p.parse_keyword(Keyword::DELETE) {
            if kind == WhenKind::NotMatched {
                return Err(Error::syntax(
                    "DELETE is not allowed in a WHEN NOT MATCHED clause",
                ));
            }
            MergeAction::Delete
        } else if p.parse_keyword(Keyword::INSERT) {
            if kind != WhenKind::NotMatched {
                return Err(Error::syntax(
                    "INSERT is only allowed in a WHEN NOT MATCHED clause",
                ));
            }
            let columns = if p.peek_token().token == Token::LParen {
                p.expect_token(&Token::LParen)?;
                let c = p.parse_comma_separated(|p| p.parse_identifier())?;
                p.expect_token(&Token::RParen)?;
                c
            } else {
                vec![]
            };
            let values = if p.parse_keywords(&[Keyword::DEFAULT, Keyword::VALUES]) {
                None
            } else {
                p.expect_keyword(Keyword::VALUES)?;
                p.expect_token(&Token::LParen)?;
                let v = p.parse_comma_separated(Parser::parse_expr)?;
                p.expect_token(&Token::RParen)?;
                Some(v)
            };
            MergeAction::Insert { columns, values }
        } else if p.parse_keywords(&[Keyword::DO, Keyword::NOTHING]) {
            MergeAction::DoNothing
        } else {
            return Err(syntax_at(p, "UPDATE, DELETE, INSERT or DO NOTHING"));
        };
        clauses.push(MergeWhen {
            kind,
            condition,
            action,
        });
    }
    if clauses.is_empty() {
        return Err(syntax_at(p, "WHEN"));
    }
    if matches!(p.peek_token().token, Token::Word(ref w) if w.keyword == Keyword::RETURNING) {
        return Err(Error::not_supported("MERGE ... RETURNING"));
    }
    Ok(MergeStmt {
        target,
        source,
        on,
        clauses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::dialect::SluiceDialect;

    fn parse(sql: &str) -> Result<MergeStmt> {
        let dialect = SluiceDialect::default();
        let mut p = Parser::new(&dialect).try_with_sql(sql)?;
        parse_merge(&mut p)
    }

    #[test]
    fn every_clause_form_parses() {
        let m = parse(
            "MERGE INTO t AS a USING (SELECT 1 AS k) s ON a.k = s.k \
             WHEN MATCHED AND s.k > 1 THEN DO NOTHING \
             WHEN MATCHED THEN UPDATE SET v = s.k \
             WHEN NOT MATCHED BY SOURCE THEN DELETE \
             WHEN NOT MATCHED THEN INSERT (k) VALUES (s.k) \
             WHEN NOT MATCHED THEN INSERT DEFAULT VALUES",
        )
        .unwrap();
        assert_eq!(m.clauses.len(), 5);
        assert_eq!(m.clauses[0].action, MergeAction::DoNothing);
        assert_eq!(m.clauses[2].kind, WhenKind::NotMatchedBySource);
        assert!(matches!(
            &m.clauses[4].action,
            MergeAction::Insert { values: None, .. }
        ));
    }

    #[test]
    fn misplaced_actions_are_syntax_errors() {
        assert!(parse("MERGE INTO t USING s ON true WHEN NOT MATCHED THEN DELETE").is_err());
        assert!(parse("MERGE INTO t USING s ON true WHEN MATCHED THEN INSERT VALUES (1)").is_err());
        assert!(parse("MERGE INTO t USING s ON true").is_err());
    }
}
