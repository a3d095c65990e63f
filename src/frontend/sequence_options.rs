//! PostgreSQL takes a sequence's options (`INCREMENT`, `MINVALUE`,
//! `MAXVALUE`, `START`, `CACHE`, `CYCLE`) in any order, as pg_dump writes
//! them (`START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1`);
//! sqlparser takes them in one order only. The options of `CREATE
//! SEQUENCE` and of an identity column (`AS IDENTITY (...)`) are put in
//! that order before the statement is parsed.

use datafusion::sql::sqlparser::ast::{DataType, Expr, Ident, ObjectName, SequenceOptions};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

use crate::error::{Error, Result};

fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// sqlparser's position of the option a group starts with, if it is one.
fn rank(first: &str, second: Option<&str>) -> Option<usize> {
    Some(match (first, second) {
        ("INCREMENT", _) => 0,
        ("MINVALUE", _) | ("NO", Some("MINVALUE")) => 1,
        ("MAXVALUE", _) | ("NO", Some("MAXVALUE")) => 2,
        ("START", _) => 3,
        ("CACHE", _) => 4,
        ("CYCLE", _) | ("NO", Some("CYCLE")) => 5,
        _ => return None,
    })
}

/// The options in `tokens` (significant tokens only), reordered; `None`
/// when something there is not an option (left for the parser to refuse).
fn reorder(tokens: &[TokenWithSpan]) -> Option<Vec<TokenWithSpan>> {
    let mut groups: Vec<(usize, Vec<TokenWithSpan>)> = Vec::new();
    for t in tokens {
        let w = word(&t.token);
        let starts = w.as_deref().and_then(|w| {
            let prev_no = groups
                .last()
                .is_some_and(|(_, g)| g.len() == 1 && word(&g[0].token).as_deref() == Some("NO"));
            if prev_no {
                return None;
            }
            match w {
                "NO" => Some(usize::MAX),
                other => rank(other, None),
            }
        });
        match starts {
            Some(r) => groups.push((r, vec![t.clone()])),
            None => groups.last_mut()?.1.push(t.clone()),
        }
    }
    for (r, g) in &mut groups {
        if *r == usize::MAX {
            let second = g.get(1).and_then(|t| word(&t.token));
            *r = rank("NO", second.as_deref())?;
        }
    }
    groups.sort_by_key(|(r, _)| *r);
    let space = TokenWithSpan::wrap(Token::Whitespace(Whitespace::Space));
    Some(
        groups
            .into_iter()
            .flat_map(|(_, g)| g)
            .flat_map(|t| [t, space.clone()])
            .collect(),
    )
}

/// `tokens` with the options of every `CREATE SEQUENCE` and `AS IDENTITY
/// (...)` in sqlparser's order.
pub fn normalize(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant = |t: &TokenWithSpan| !matches!(t.token, Token::Whitespace(_));
    let words: Vec<(usize, Option<String>)> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| significant(t))
        .map(|(i, t)| (i, word(&t.token)))
        .collect();
    // Ranges of token indexes (start, end exclusive) holding options.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (k, (_, w)) in words.iter().enumerate() {
        let at = |d: usize| words.get(k + d).and_then(|(_, w)| w.as_deref());
        if w.as_deref() == Some("IDENTITY")
            && k > 0
            && words[k - 1].1.as_deref() == Some("AS")
            && words
                .get(k + 1)
                .is_some_and(|(i, _)| tokens[*i].token == Token::LParen)
        {
            let start = words[k + 1].0 + 1;
            let end = tokens[start..]
                .iter()
                .position(|t| t.token == Token::RParen)
                .map(|p| start + p);
            if let Some(end) = end {
                ranges.push((start, end));
            }
        }
        if w.as_deref() == Some("CREATE") {
            // CREATE [TEMP|TEMPORARY] SEQUENCE [IF NOT EXISTS] name [AS type] options
            let mut d = 1;
            if matches!(at(d), Some("TEMP" | "TEMPORARY")) {
                d += 1;
            }
            if at(d) != Some("SEQUENCE") {
                continue;
            }
            d += 1;
            if at(d) == Some("IF") {
                d += 3;
            }
            // The name: parts joined by periods.
            d += 1;
            while words
                .get(k + d)
                .is_some_and(|(i, _)| tokens[*i].token == Token::Period)
            {
                d += 2;
            }
            if at(d) == Some("AS") {
                d += 2;
            }
            let Some(&(start, _)) = words.get(k + d) else {
                continue;
            };
            // Up to OWNED BY, the statement's end, or anything else.
            let mut e = k + d;
            while let Some((i, w)) = words.get(e) {
                if tokens[*i].token == Token::SemiColon || w.as_deref() == Some("OWNED") {
                    break;
                }
                e += 1;
            }
            let end = words.get(e).map_or(tokens.len(), |(i, _)| *i);
            ranges.push((start, end));
        }
    }
    if ranges.is_empty() {
        return tokens;
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    for (start, end) in ranges {
        if start < i || end < start {
            continue;
        }
        out.extend_from_slice(&tokens[i..start]);
        let inside: Vec<TokenWithSpan> = tokens[start..end]
            .iter()
            .filter(|t| significant(t))
            .cloned()
            .collect();
        match reorder(&inside) {
            Some(r) => out.extend(r),
            None => out.extend_from_slice(&tokens[start..end]),
        }
        i = end;
    }
    out.extend_from_slice(&tokens[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alter(sql: &str) -> Result<AlterSequence> {
        let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
        let mut p = Parser::new(&dialect).try_with_sql(sql)?;
        parse_alter(&mut p)
    }

    #[test]
    fn alter_sequence_reads_options_in_any_order() {
        let a = alter(
            "ALTER SEQUENCE IF EXISTS s.q RESTART CYCLE INCREMENT -2 AS integer OWNED BY NONE",
        )
        .unwrap();
        assert!(a.if_exists);
        assert_eq!(a.name.to_string(), "s.q");
        let AlterSequenceAction::Options(o) = a.action else {
            panic!("options expected");
        };
        let AlterOptions {
            data_type,
            options,
            restart,
            owned_by,
        } = *o;
        assert_eq!(data_type.unwrap().to_string(), "INTEGER");
        assert_eq!(options.len(), 2);
        assert!(matches!(restart, Some(None)));
        assert_eq!(owned_by.unwrap().to_string(), "NONE");
        let a = alter("ALTER SEQUENCE q RESTART WITH 5").unwrap();
        assert!(matches!(
            a.action,
            AlterSequenceAction::Options(o) if matches!(o.restart, Some(Some(_)))
        ));
        assert!(matches!(
            alter("ALTER SEQUENCE q RENAME TO r").unwrap().action,
            AlterSequenceAction::Rename(_)
        ));
        assert!(matches!(
            alter("ALTER SEQUENCE q SET SCHEMA x").unwrap().action,
            AlterSequenceAction::SetSchema(_)
        ));
        assert!(alter("ALTER SEQUENCE q").is_err());
        assert!(alter("ALTER SEQUENCE q CACHE 2 CACHE 3").is_err());
    }
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn text(sql: &str) -> String {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        normalize(tokens)
            .iter()
            .map(|t| t.token.to_string())
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn options_take_sqlparsers_order() {
        assert_eq!(
            text("CREATE SEQUENCE s START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1"),
            "CREATE SEQUENCE s INCREMENT BY 1 NO MINVALUE NO MAXVALUE START WITH 1 CACHE 1"
        );
        assert_eq!(
            text("CREATE SEQUENCE IF NOT EXISTS a.s AS integer CYCLE START 5 OWNED BY t.c"),
            "CREATE SEQUENCE IF NOT EXISTS a.s AS integer START 5 CYCLE OWNED BY t.c"
        );
        assert_eq!(
            text(
                "CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY (START WITH 10 INCREMENT BY -5), v text)"
            ),
            "CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY (INCREMENT BY - 5 START WITH 10 ), v text)"
        );
        assert_eq!(text("SELECT 1"), "SELECT 1");
    }
}

/// `ALTER SEQUENCE [IF EXISTS] name action`.
#[derive(Debug, Clone)]
pub struct AlterSequence {
    pub name: ObjectName,
    pub if_exists: bool,
    pub action: AlterSequenceAction,
}

#[derive(Debug, Clone)]
pub enum AlterSequenceAction {
    /// `RENAME TO new_name`
    Rename(Ident),
    /// `SET SCHEMA schema`
    SetSchema(Ident),
    /// Options, in any order, each at most once.
    Options(Box<AlterOptions>),
}

/// The options of an `ALTER SEQUENCE`.
#[derive(Debug, Clone)]
pub struct AlterOptions {
    /// `AS type`
    pub data_type: Option<DataType>,
    pub options: Vec<SequenceOptions>,
    /// `RESTART` (`Some(None)`) or `RESTART [WITH] n`.
    pub restart: Option<Option<Expr>>,
    /// `OWNED BY table.column` or `OWNED BY NONE`.
    pub owned_by: Option<ObjectName>,
}

/// Parse `ALTER SEQUENCE ...` (the parser stands on `ALTER`).
pub fn parse_alter(p: &mut Parser) -> Result<AlterSequence> {
    p.expect_keyword(Keyword::ALTER)?;
    p.expect_keyword(Keyword::SEQUENCE)?;
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let name = p.parse_object_name(false)?;
    if p.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
        let new_name = p.parse_identifier()?;
        return Ok(AlterSequence {
            name,
            if_exists,
            action: AlterSequenceAction::Rename(new_name),
        });
    }
    if p.parse_keywords(&[Keyword::OWNER, Keyword::TO]) {
        return Err(Error::not_supported("ALTER SEQUENCE OWNER TO"));
    }
    if p.parse_keywords(&[Keyword::SET, Keyword::SCHEMA]) {
        let schema = p.parse_identifier()?;
        return Ok(AlterSequence {
            name,
            if_exists,
            action: AlterSequenceAction::SetSchema(schema),
        });
    }
    let (mut data_type, mut options, mut restart, mut owned_by) = (None, Vec::new(), None, None);
    let mut seen: Vec<&'static str> = Vec::new();
    let mut once = |what: &'static str| {
        if seen.contains(&what) {
            return Err(Error::syntax("conflicting or redundant options"));
        }
        seen.push(what);
        Ok(())
    };
    loop {
        if p.parse_keyword(Keyword::AS) {
            once("AS")?;
            data_type = Some(p.parse_data_type()?);
        } else if p.parse_keyword(Keyword::INCREMENT) {
            once("INCREMENT")?;
            let by = p.parse_keyword(Keyword::BY);
            options.push(SequenceOptions::IncrementBy(p.parse_number()?, by));
        } else if p.parse_keywords(&[Keyword::NO, Keyword::MINVALUE]) {
            once("MINVALUE")?;
            options.push(SequenceOptions::MinValue(None));
        } else if p.parse_keyword(Keyword::MINVALUE) {
            once("MINVALUE")?;
            options.push(SequenceOptions::MinValue(Some(p.parse_number()?)));
        } else if p.parse_keywords(&[Keyword::NO, Keyword::MAXVALUE]) {
            once("MAXVALUE")?;
            options.push(SequenceOptions::MaxValue(None));
        } else if p.parse_keyword(Keyword::MAXVALUE) {
            once("MAXVALUE")?;
            options.push(SequenceOptions::MaxValue(Some(p.parse_number()?)));
        } else if p.parse_keyword(Keyword::START) {
            once("START")?;
            let with = p.parse_keyword(Keyword::WITH);
            options.push(SequenceOptions::StartWith(p.parse_number()?, with));
        } else if p.parse_keyword(Keyword::RESTART) {
            once("RESTART")?;
            let with = p.parse_keyword(Keyword::WITH);
            let value = match p.peek_token().token {
                Token::Number(..) | Token::Minus | Token::Plus => Some(p.parse_number()?),
                _ if with => Some(p.parse_number()?),
                _ => None,
            };
            restart = Some(value);
        } else if p.parse_keyword(Keyword::CACHE) {
            once("CACHE")?;
            options.push(SequenceOptions::Cache(p.parse_number()?));
        } else if p.parse_keywords(&[Keyword::NO, Keyword::CYCLE]) {
            once("CYCLE")?;
            options.push(SequenceOptions::Cycle(true));
        } else if p.parse_keyword(Keyword::CYCLE) {
            once("CYCLE")?;
            options.push(SequenceOptions::Cycle(false));
        } else if p.parse_keywords(&[Keyword::OWNED, Keyword::BY]) {
            once("OWNED BY")?;
            owned_by = Some(p.parse_object_name(false)?);
        } else {
            break;
        }
    }
    if seen.is_empty() {
        let found = p.peek_token();
        return Err(Error::syntax(format!(
            "syntax error at or near \"{}\"",
            found.token
        )));
    }
    Ok(AlterSequence {
        name,
        if_exists,
        action: AlterSequenceAction::Options(Box::new(AlterOptions {
            data_type,
            options,
            restart,
            owned_by,
        })),
    })
}
