//! Expectations: `CONSTRAINT name EXPECT (condition) [ON VIOLATION FAIL
//! [UPDATE] | DROP ROW | QUARANTINE]`, Sluice's (and Delta Live Tables')
//! rule that records, drops or quarantines the rows that break it.
//!
//! sqlparser does not know the clause, so a statement that has one is
//! parsed without it and the clause comes back beside the statement, typed.

use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::dialect::SluiceDialect;
use super::names::normalize_ident;
use crate::catalog::rules::Action;
use crate::error::{Error, Result};

/// One `CONSTRAINT name EXPECT (...) [ON VIOLATION ...]` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub name: String,
    pub condition: Expr,
    pub action: Action,
}

fn word_is(t: &Token, kw: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

fn is_ws(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

/// Parse the part of an expectation after `EXPECT`: `(condition) [ON
/// VIOLATION ...]`, with `p` just past the `EXPECT`.
pub fn parse_after_expect(p: &mut Parser, name: String) -> Result<Expectation> {
    p.expect_token(&Token::LParen)?;
    let condition = p.parse_expr()?;
    p.expect_token(&Token::RParen)?;
    let mut action = Action::Record;
    let on_violation =
        word_is(&p.peek_token().token, "ON") && word_is(&p.peek_nth_token(1).token, "VIOLATION");
    if on_violation {
        p.next_token();
        p.next_token();
        let t = p.next_token().token;
        action = if word_is(&t, "FAIL") {
            if word_is(&p.peek_token().token, "UPDATE") {
                p.next_token();
            }
            Action::Fail
        } else if word_is(&t, "DROP") && word_is(&p.peek_token().token, "ROW") {
            p.next_token();
            Action::Drop
        } else if word_is(&t, "QUARANTINE") {
            Action::Quarantine
        } else {
            return Err(Error::syntax(format!("syntax error at or near \"{t}\""))
                .with_detail("ON VIOLATION takes FAIL, DROP ROW or QUARANTINE"));
        };
    }
    Ok(Expectation {
        name,
        condition,
        action,
    })
}

/// The tokens of one statement with every expectation clause taken out
/// (with the comma that joined it to the list), and the clauses.
pub fn extract(tokens: Vec<TokenWithSpan>) -> Result<(Vec<TokenWithSpan>, Vec<Expectation>)> {
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !is_ws(&tokens[i].token))
        .collect();
    let mut cut: Vec<(usize, usize)> = Vec::new(); // token index ranges, end exclusive
    let mut found = Vec::new();
    let mut k = 0;
    while k + 2 < significant.len() {
        let (c, n, e) = (significant[k], significant[k + 1], significant[k + 2]);
        if !(word_is(&tokens[c].token, "CONSTRAINT")
            && matches!(tokens[n].token, Token::Word(_))
            && word_is(&tokens[e].token, "EXPECT"))
        {
            k += 1;
            continue;
        }
        let Token::Word(w) = &tokens[n].token else {
            unreachable!("matched above")
        };
        let name = normalize_ident(&datafusion::sql::sqlparser::ast::Ident {
            value: w.value.clone(),
            quote_style: w.quote_style,
            span: tokens[n].span,
        });
        let rest: Vec<TokenWithSpan> = tokens[e + 1..].to_vec();
        let dialect = SluiceDialect::default();
        let mut p = Parser::new(&dialect).with_tokens_with_locations(rest);
        let expectation = parse_after_expect(&mut p, name)?;
        let consumed = p.index();
        let end = e + 1 + consumed;
        // Take the separating comma: the one before, else the one after.
        let mut start = c;
        let mut stop = end;
        if k > 0 && tokens[significant[k - 1]].token == Token::Comma {
            start = significant[k - 1];
        } else if let Some(&after) = significant.iter().find(|&&i| i >= end)
            && tokens[after].token == Token::Comma
        {
            stop = after + 1;
        }
        cut.push((start, stop));
        found.push(expectation);
        k = significant
            .iter()
            .position(|&i| i >= stop)
            .unwrap_or(significant.len());
    }
    if found.is_empty() {
        return Ok((tokens, found));
    }
    let kept = tokens
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !cut.iter().any(|(s, e)| i >= s && i < e))
        .map(|(_, t)| t)
        .collect();
    Ok((kept, found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn run(sql: &str) -> (String, Vec<Expectation>) {
        let tokens = Tokenizer::new(&SluiceDialect::default(), sql)
            .tokenize_with_location()
            .unwrap();
        let (kept, found) = extract(tokens).unwrap();
        let text: String = kept.iter().map(|t| t.token.to_string()).collect();
        (text, found)
    }

    #[test]
    fn clauses_come_out_typed_and_the_rest_parses() {
        let (text, found) = run("CREATE TABLE t (a int, CONSTRAINT pos EXPECT (a > 0) \
             ON VIOLATION DROP ROW, b text, CONSTRAINT \"Known\" EXPECT (b IN ('x')))");
        assert_eq!(text, "CREATE TABLE t (a int, b text)");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "pos");
        assert_eq!(found[0].action, Action::Drop);
        assert_eq!(found[0].condition.to_string(), "a > 0");
        assert_eq!(found[1].name, "Known");
        assert_eq!(found[1].action, Action::Record);
    }

    #[test]
    fn a_leading_clause_takes_the_comma_after_it() {
        let (text, found) =
            run("CREATE TABLE t (CONSTRAINT c EXPECT (a > 0) ON VIOLATION FAIL UPDATE, a int)");
        assert_eq!(text, "CREATE TABLE t ( a int)");
        assert_eq!(found[0].action, Action::Fail);
    }

    #[test]
    fn a_bad_action_is_a_syntax_error() {
        let tokens = Tokenizer::new(
            &SluiceDialect::default(),
            "CREATE TABLE t (a int, CONSTRAINT c EXPECT (a > 0) ON VIOLATION SHRUG)",
        )
        .tokenize_with_location()
        .unwrap();
        assert!(extract(tokens).is_err());
    }
}
