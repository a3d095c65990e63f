//! `ASOF JOIN` in both of its spellings:
//!
//! ```text
//!  l ASOF [LEFT [OUTER]] JOIN r MATCH_CONDITION (l.ts >= r.ts) [ON l.k = r.k AND ...]   (Snowflake)
//!  l ASOF [LEFT [OUTER]] JOIN r ON l.k = r.k AND l.ts >= r.ts                          (DuckDB)
//! ```
//!
//! sqlparser reads neither the `LEFT` form nor DuckDB's, so both are turned
//! into an ordinary join whose `ON` starts with the match marker
//! [`MATCH_MARKER`]: `[LEFT] JOIN r ON sluice_asof_match(l.ts >= r.ts) AND
//! l.k = r.k`, or `sluice_asof_match()` when the comparison is among the
//! `ON` conditions. The marker is a function only the ASOF planning rule
//! (`features::asof`) understands: it replaces the join with the ASOF
//! operator, so the marker never runs.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{Error, Result};

/// The function that marks a join as an ASOF join.
pub const MATCH_MARKER: &str = "sluice_asof_match";

/// Where an ASOF join's rewrite stands.
enum Step {
    /// After `JOIN`: the relation, then `MATCH_CONDITION` or `ON`.
    Relation,
    /// Inside `MATCH_CONDITION (...)`.
    Condition,
    /// After the match condition: an `ON` becomes `AND`.
    AfterCondition,
}

struct Pending {
    depth: usize,
    step: Step,
}

/// The statement's tokens with every `ASOF ... JOIN` made an ordinary join
/// carrying the match marker; the tokens unchanged when there is none.
pub fn normalize(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>> {
    if !tokens.iter().any(|t| is_word(&t.token, "ASOF")) {
        return Ok(tokens);
    }
    let mut out = Vec::with_capacity(tokens.len() + 8);
    let mut pending: Vec<Pending> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let span = t.span;
        let make = |token: Token| TokenWithSpan { token, span };
        if matches!(t.token, Token::Whitespace(_)) {
            out.push(t.clone());
            i += 1;
            continue;
        }
        // An ASOF join starts.
        if is_word(&t.token, "ASOF") {
            let mut j = next_significant(&tokens, i + 1);
            let left = j.is_some_and(|j| is_word(&tokens[j].token, "LEFT"));
            if left {
                j = next_significant(&tokens, j.unwrap_or(0) + 1);
                if j.is_some_and(|j| is_word(&tokens[j].token, "OUTER")) {
                    j = next_significant(&tokens, j.unwrap_or(0) + 1);
                }
            }
            if let Some(j) = j.filter(|&j| is_word(&tokens[j].token, "JOIN")) {
                if left {
                    out.push(make(Token::make_keyword("LEFT")));
                    out.push(make(Token::Whitespace(
                        datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
                    )));
                }
                out.push(make(Token::make_keyword("JOIN")));
                pending.push(Pending {
                    depth,
                    step: Step::Relation,
                });
                i = j + 1;
                continue;
            }
        }
        if let Some(p) = pending.last_mut()
            && depth == p.depth
        {
            match p.step {
                Step::Relation if is_word(&t.token, "MATCH_CONDITION") => {
                    out.push(make(Token::make_keyword("ON")));
                    out.push(make(Token::Whitespace(
                        datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
                    )));
                    out.push(make(Token::make_word(MATCH_MARKER, None)));
                    p.step = Step::Condition;
                    i += 1;
                    continue;
                }
                Step::Relation if is_word(&t.token, "ON") => {
                    // DuckDB's form: the comparison is among the conditions.
                    out.push(t.clone());
                    for token in [
                        Token::make_word(MATCH_MARKER, None),
                        Token::LParen,
                        Token::RParen,
                        Token::make_keyword("AND"),
                    ] {
                        out.push(make(Token::Whitespace(
                            datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
                        )));
                        out.push(make(token));
                    }
                    pending.pop();
                    i += 1;
                    continue;
                }
                Step::Relation if is_word(&t.token, "USING") => {
                    return Err(Error::not_supported(
                        "ASOF JOIN ... USING: write ON l.key = r.key AND l.ts >= r.ts",
                    ));
                }
                Step::Relation if ends_relation(&t.token) => {
                    return Err(Error::syntax(format!(
                        "ASOF JOIN needs MATCH_CONDITION (...) or ON ... before \"{}\"",
                        t.token
                    )));
                }
                Step::AfterCondition => {
                    pending.pop();
                    if is_word(&t.token, "ON") {
                        out.push(make(Token::make_keyword("AND")));
                        i += 1;
                        continue;
                    }
                }
                _ => {}
            }
        }
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth = depth.saturating_sub(1);
                if let Some(p) = pending.last_mut()
                    && p.depth == depth
                {
                    if matches!(p.step, Step::Condition) {
                        p.step = Step::AfterCondition;
                    }
                } else if pending.last().is_some_and(|p| p.depth > depth) {
                    return Err(Error::syntax(
                        "ASOF JOIN needs MATCH_CONDITION (...) or ON ...",
                    ));
                }
            }
            _ => {}
        }
        out.push(t.clone());
        i += 1;
    }
    match pending.last() {
        Some(p) if !matches!(p.step, Step::AfterCondition) => Err(Error::syntax(
            "ASOF JOIN needs MATCH_CONDITION (...) or ON ...",
        )),
        _ => Ok(out),
    }
}

fn is_word(t: &Token, kw: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

fn next_significant(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
}

/// Tokens after which a join's relation can no longer be followed by its
/// condition.
fn ends_relation(t: &Token) -> bool {
    const ENDS: [&str; 14] = [
        "WHERE",
        "GROUP",
        "HAVING",
        "ORDER",
        "LIMIT",
        "OFFSET",
        "UNION",
        "EXCEPT",
        "INTERSECT",
        "JOIN",
        "WINDOW",
        "QUALIFY",
        "FETCH",
        "RETURNING",
    ];
    matches!(t, Token::SemiColon | Token::EOF | Token::Comma)
        || ENDS.iter().any(|kw| is_word(t, kw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::SluiceDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn norm(sql: &str) -> Result<String> {
        let dialect = SluiceDialect::default();
        let tokens = Tokenizer::new(&dialect, sql)
            .tokenize_with_location()
            .unwrap();
        Ok(normalize(tokens)?
            .into_iter()
            .map(|t| t.token.to_string())
            .collect::<String>())
    }

    #[test]
    fn snowflake_form() {
        assert_eq!(
            norm("SELECT * FROM l ASOF JOIN r MATCH_CONDITION (l.ts >= r.ts) ON l.k = r.k WHERE x")
                .unwrap(),
            "SELECT * FROM l JOIN r ON sluice_asof_match (l.ts >= r.ts) AND l.k = r.k WHERE x"
        );
        assert_eq!(
            norm("SELECT * FROM l ASOF LEFT OUTER JOIN r f MATCH_CONDITION(l.ts > f.ts)").unwrap(),
            "SELECT * FROM l LEFT JOIN r f ON sluice_asof_match(l.ts > f.ts)"
        );
    }

    #[test]
    fn duckdb_form_and_nesting() {
        assert_eq!(
            norm("SELECT * FROM l ASOF LEFT JOIN (SELECT * FROM a ASOF JOIN b ON a.k = b.k AND a.t >= b.t) r ON l.k = r.k AND l.t >= r.t").unwrap(),
            "SELECT * FROM l LEFT JOIN (SELECT * FROM a JOIN b ON sluice_asof_match ( ) AND a.k = b.k AND a.t >= b.t) r ON sluice_asof_match ( ) AND l.k = r.k AND l.t >= r.t"
        );
    }

    #[test]
    fn errors_and_untouched() {
        assert!(norm("SELECT * FROM l ASOF JOIN r WHERE x").is_err());
        assert!(norm("SELECT * FROM l ASOF JOIN r USING (k)").is_err());
        assert!(norm("SELECT * FROM l ASOF JOIN r").is_err());
        assert_eq!(norm("SELECT asof FROM t").unwrap(), "SELECT asof FROM t");
    }
}
