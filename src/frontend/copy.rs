//! `COPY`, parsed here rather than by sqlparser so that every spelling
//! PostgreSQL and psql's `\copy` send is accepted:
//!
//! ```text
//!  COPY t [(c, ...)] FROM { STDIN | 'path-or-url' } [[WITH] (option [value], ...)]
//!  COPY { t [(c, ...)] | (query) } TO { STDOUT | 'path' } [[WITH] (option ...)]
//!  legacy options:  BINARY | CSV | HEADER | DELIMITER [AS] 'c' | NULL [AS] 's'
//!                   | QUOTE [AS] 'q' | ESCAPE [AS] 'e' | FORCE NOT NULL c, ...
//!                   | FORCE QUOTE { c, ... | * }
//! ```

use datafusion::sql::sqlparser::ast::{ObjectName, Query};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Error, ErrorKind, Result};

/// What a COPY reads from or writes to, on the server side.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyEndpoint {
    /// `STDIN` / `STDOUT`: the client connection.
    Client,
    /// A path or URL the server opens.
    File(String),
}

#[derive(Debug, Clone)]
pub enum CopyRelation {
    Table {
        name: ObjectName,
        columns: Vec<String>,
    },
    Query(Box<Query>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
    Json,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    None,
    Skip,
    /// `HEADER MATCH`: the header line must name the columns in order.
    Match,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ForceQuote {
    None,
    All,
    Columns(Vec<String>),
}

/// The options of one COPY, with PostgreSQL's defaults filled in by
/// [`CopyOptions::delimiter`] and friends.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyOptions {
    pub format: CopyFormat,
    pub header: Header,
    delimiter: Option<char>,
    null: Option<String>,
    quote: Option<char>,
    escape: Option<char>,
    pub force_not_null: Vec<String>,
    pub force_null: Vec<String>,
    pub force_quote: ForceQuote,
    /// `ON_ERROR ignore` (PostgreSQL 17): skip rows that fail to convert.
    pub skip_bad_rows: bool,
    /// `NEW_FILES_ONLY`: load only the files this table has not loaded
    /// before (COPY FROM files).
    pub new_files_only: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            format: CopyFormat::Text,
            header: Header::None,
            delimiter: None,
            null: None,
            quote: None,
            escape: None,
            force_not_null: vec![],
            force_null: vec![],
            force_quote: ForceQuote::None,
            skip_bad_rows: false,
            new_files_only: false,
        }
    }
}

impl CopyOptions {
    pub fn delimiter(&self) -> char {
        self.delimiter.unwrap_or(match self.format {
            CopyFormat::Csv => ',',
            _ => '\t',
        })
    }

    pub fn null_string(&self) -> &str {
        match (&self.null, self.format) {
            (Some(s), _) => s,
            (None, CopyFormat::Csv) => "",
            (None, _) => "\\N",
        }
    }

    pub fn quote(&self) -> char {
        self.quote.unwrap_or('"')
    }

    pub fn escape(&self) -> char {
        self.escape.unwrap_or(self.quote())
    }

    /// PostgreSQL's checks on option combinations.
    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::new(ErrorKind::FeatureNotSupported, m.to_string()));
        let csv = self.format == CopyFormat::Csv;
        if !csv && (self.quote.is_some() || self.escape.is_some()) {
            return bad("COPY QUOTE and ESCAPE are available only in CSV mode");
        }
        if !csv && (!self.force_not_null.is_empty() || !self.force_null.is_empty()) {
            return bad("COPY FORCE_NOT_NULL and FORCE_NULL are available only in CSV mode");
        }
        if !csv && self.force_quote != ForceQuote::None {
            return bad("COPY FORCE_QUOTE is available only in CSV mode");
        }
        if self.format == CopyFormat::Binary && (self.delimiter.is_some() || self.null.is_some()) {
            return Err(Error::syntax(
                "cannot specify DELIMITER or NULL in BINARY mode",
            ));
        }
        if self.format == CopyFormat::Binary && self.header != Header::None {
            return bad("cannot specify HEADER in BINARY mode");
        }
        let d = self.delimiter();
        if d == '\n' || d == '\r' {
            return Err(Error::syntax(
                "COPY delimiter cannot be newline or carriage return",
            ));
        }
        if !d.is_ascii() || !self.quote().is_ascii() || !self.escape().is_ascii() {
            return bad("COPY delimiter, quote and escape must be single one-byte characters");
        }
        if csv && d == self.quote() {
            return bad("COPY delimiter and quote must be different");
        }
        if self.format == CopyFormat::Text && "\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(d)
        {
            return Err(Error::syntax(format!("COPY delimiter cannot be \"{d}\"")));
        }
        if self.null_string().contains(d) {
            return Err(Error::syntax(
                "COPY delimiter character must not appear in the NULL specification",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct CopyStmt {
    pub relation: CopyRelation,
    /// `true` for `COPY ... FROM`.
    pub from: bool,
    pub endpoint: CopyEndpoint,
    pub options: CopyOptions,
}

fn word(p: &Parser, n: usize) -> Option<String> {
    match &p.peek_nth_token(n).token {
        Token::Word(w) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

fn eat(p: &mut Parser, kw: &str) -> bool {
    if word(p, 0).as_deref() == Some(kw) {
        p.next_token();
        true
    } else {
        false
    }
}

fn string_arg(p: &mut Parser, option: &str) -> Result<String> {
    match p.next_token().token {
        Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => Ok(s),
        other => Err(Error::syntax(format!(
            "syntax error at or near \"{other}\": {option} needs a quoted string"
        ))),
    }
}

fn char_arg(p: &mut Parser, option: &str) -> Result<char> {
    let s = string_arg(p, option)?;
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(Error::new(
            ErrorKind::FeatureNotSupported,
            format!(
                "COPY {} must be a single one-byte character",
                option.to_lowercase()
            ),
        )),
    }
}

fn column_list(p: &mut Parser) -> Result<Vec<String>> {
    let mut out = Vec::new();
    loop {
        out.push(crate::frontend::names::normalize_ident(
            &p.parse_identifier()?,
        ));
        if !p.consume_token(&Token::Comma) {
            return Ok(out);
        }
    }
}

fn bool_value(p: &mut Parser) -> bool {
    match word(p, 0).as_deref() {
        Some("TRUE" | "ON") => {
            p.next_token();
            true
        }
        Some("FALSE" | "OFF") => {
            p.next_token();
            false
        }
        _ => match p.peek_token().token {
            Token::Number(n, _) => {
                p.next_token();
                n != "0"
            }
            _ => true,
        },
    }
}

/// One `name [value]` inside `WITH ( ... )`.
fn parse_option(p: &mut Parser, o: &mut CopyOptions) -> Result<()> {
    let name = word(p, 0).ok_or_else(|| {
        Error::syntax(format!(
            "syntax error at or near \"{}\"",
            p.peek_token().token
        ))
    })?;
    p.next_token();
    match name.as_str() {
        "FORMAT" => {
            let f = match p.next_token().token {
                Token::Word(w) => w.value.to_ascii_lowercase(),
                Token::SingleQuotedString(s) => s.to_ascii_lowercase(),
                other => {
                    return Err(Error::syntax(format!(
                        "syntax error at or near \"{other}\""
                    )));
                }
            };
            o.format = match f.as_str() {
                "text" => CopyFormat::Text,
                "csv" => CopyFormat::Csv,
                "binary" => CopyFormat::Binary,
                "json" | "ndjson" => CopyFormat::Json,
                "parquet" => CopyFormat::Parquet,
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        format!("COPY format \"{f}\" not recognized"),
                    ));
                }
            };
        }
        "HEADER" => {
            o.header = if eat(p, "MATCH") {
                Header::Match
            } else if bool_value(p) {
                Header::Skip
            } else {
                Header::None
            };
        }
        "DELIMITER" => o.delimiter = Some(char_arg(p, "DELIMITER")?),
        "NULL" => o.null = Some(string_arg(p, "NULL")?),
        "QUOTE" => o.quote = Some(char_arg(p, "QUOTE")?),
        "ESCAPE" => o.escape = Some(char_arg(p, "ESCAPE")?),
        "FORCE_NOT_NULL" | "FORCE_NULL" | "FORCE_QUOTE" => {
            let cols = if p.consume_token(&Token::Mul) {
                None
            } else {
                p.expect_token(&Token::LParen)?;
                let c = column_list(p)?;
                p.expect_token(&Token::RParen)?;
                Some(c)
            };
            match (name.as_str(), cols) {
                ("FORCE_QUOTE", None) => o.force_quote = ForceQuote::All,
                ("FORCE_QUOTE", Some(c)) => o.force_quote = ForceQuote::Columns(c),
                ("FORCE_NOT_NULL", Some(c)) => o.force_not_null = c,
                ("FORCE_NULL", Some(c)) => o.force_null = c,
                _ => {
                    return Err(Error::not_supported(format!("{name} * (name the columns)")));
                }
            }
        }
        "ON_ERROR" => {
            let v = match p.next_token().token {
                Token::Word(w) => w.value.to_ascii_lowercase(),
                Token::SingleQuotedString(s) => s.to_ascii_lowercase(),
                other => {
                    return Err(Error::syntax(format!(
                        "syntax error at or near \"{other}\""
                    )));
                }
            };
            o.skip_bad_rows = match v.as_str() {
                "stop" => false,
                "ignore" => true,
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        format!("COPY ON_ERROR \"{v}\" not recognized"),
                    ));
                }
            };
        }
        "ENCODING" => {
            let e = string_arg(p, "ENCODING")?;
            let norm = e.to_ascii_uppercase().replace(['-', '_'], "");
            if norm != "UTF8" && norm != "SQLASCII" {
                return Err(Error::not_supported(format!(
                    "COPY ENCODING '{e}' (only UTF8)"
                )));
            }
        }
        "FREEZE" => {
            bool_value(p);
        }
        "NEW_FILES_ONLY" => o.new_files_only = bool_value(p),
        other => {
            return Err(Error::syntax(format!(
                "option \"{}\" not recognized",
                other.to_lowercase()
            )));
        }
    }
    Ok(())
}

/// The pre-9.0 option list psql and old scripts still send.
fn parse_legacy_options(p: &mut Parser, o: &mut CopyOptions) -> Result<()> {
    loop {
        if eat(p, "BINARY") {
            o.format = CopyFormat::Binary;
        } else if eat(p, "CSV") {
            o.format = CopyFormat::Csv;
        } else if eat(p, "HEADER") {
            o.header = Header::Skip;
        } else if eat(p, "DELIMITER") {
            eat(p, "AS");
            o.delimiter = Some(char_arg(p, "DELIMITER")?);
        } else if eat(p, "NULL") {
            eat(p, "AS");
            o.null = Some(string_arg(p, "NULL")?);
        } else if eat(p, "QUOTE") {
            eat(p, "AS");
            o.quote = Some(char_arg(p, "QUOTE")?);
        } else if eat(p, "ESCAPE") {
            eat(p, "AS");
            o.escape = Some(char_arg(p, "ESCAPE")?);
        } else if word(p, 0).as_deref() == Some("FORCE") {
            p.next_token();
            if eat(p, "QUOTE") {
                o.force_quote = if p.consume_token(&Token::Mul) {
                    ForceQuote::All
                } else {
                    ForceQuote::Columns(column_list(p)?)
                };
            } else if eat(p, "NOT") && eat(p, "NULL") {
                o.force_not_null = column_list(p)?;
            } else {
                return Err(Error::syntax("syntax error at or near \"FORCE\""));
            }
        } else {
            return Ok(());
        }
    }
}

/// Parse `COPY ...` after the `COPY` keyword has been seen (not consumed).
pub fn parse_copy(p: &mut Parser) -> Result<CopyStmt> {
    p.expect_keyword(Keyword::COPY)?;
    let relation = if p.consume_token(&Token::LParen) {
        let q = p.parse_query()?;
        p.expect_token(&Token::RParen)?;
        CopyRelation::Query(q)
    } else {
        let name = p.parse_object_name(false)?;
        let columns = if p.consume_token(&Token::LParen) {
            let c = column_list(p)?;
            p.expect_token(&Token::RParen)?;
            c
        } else {
            vec![]
        };
        CopyRelation::Table { name, columns }
    };
    let from = if p.parse_keyword(Keyword::FROM) {
        true
    } else if p.parse_keyword(Keyword::TO) {
        false
    } else {
        return Err(Error::syntax(format!(
            "syntax error at or near \"{}\"",
            p.peek_token().token
        )));
    };
    if from && matches!(relation, CopyRelation::Query(_)) {
        return Err(Error::syntax(
            "syntax error at or near \"FROM\": COPY (query) can only be used with TO",
        ));
    }
    let endpoint = match p.next_token().token {
        Token::Word(w) if w.value.eq_ignore_ascii_case("STDIN") && from => CopyEndpoint::Client,
        Token::Word(w) if w.value.eq_ignore_ascii_case("STDOUT") && !from => CopyEndpoint::Client,
        Token::SingleQuotedString(s) => CopyEndpoint::File(s),
        Token::Word(w) if w.value.eq_ignore_ascii_case("PROGRAM") => {
            return Err(Error::not_supported("COPY ... PROGRAM"));
        }
        other => {
            return Err(Error::syntax(format!(
                "syntax error at or near \"{other}\""
            )));
        }
    };
    let mut options = CopyOptions::default();
    eat(p, "WITH");
    if p.consume_token(&Token::LParen) {
        loop {
            parse_option(p, &mut options)?;
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        p.expect_token(&Token::RParen)?;
    } else {
        parse_legacy_options(p, &mut options)?;
    }
    if p.parse_keyword(Keyword::WHERE) {
        return Err(Error::not_supported("COPY ... FROM ... WHERE"));
    }
    options.validate()?;
    Ok(CopyStmt {
        relation,
        from,
        endpoint,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

    fn parse(sql: &str) -> Result<CopyStmt> {
        let mut p = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .unwrap();
        parse_copy(&mut p)
    }

    #[test]
    fn modern_options() {
        let c = parse(
            "COPY raw.t (a, \"B\") FROM STDIN WITH (FORMAT csv, HEADER, DELIMITER ';', \
             NULL 'NA', FORCE_NOT_NULL (a), ON_ERROR ignore)",
        )
        .unwrap();
        assert!(c.from);
        assert_eq!(c.endpoint, CopyEndpoint::Client);
        let CopyRelation::Table { columns, .. } = &c.relation else {
            panic!()
        };
        assert_eq!(columns, &["a", "B"]);
        let o = &c.options;
        assert_eq!(o.format, CopyFormat::Csv);
        assert_eq!(o.header, Header::Skip);
        assert_eq!(o.delimiter(), ';');
        assert_eq!(o.null_string(), "NA");
        assert_eq!(o.force_not_null, vec!["a"]);
        assert!(o.skip_bad_rows);
    }

    #[test]
    fn legacy_options_as_psql_sends_them() {
        let c = parse("COPY t FROM STDIN csv header delimiter as '|' null as ''").unwrap();
        assert_eq!(c.options.format, CopyFormat::Csv);
        assert_eq!(c.options.header, Header::Skip);
        assert_eq!(c.options.delimiter(), '|');
        let c = parse("COPY t TO STDOUT BINARY").unwrap();
        assert_eq!(c.options.format, CopyFormat::Binary);
    }

    #[test]
    fn defaults_follow_the_format() {
        let c = parse("COPY (SELECT 1) TO STDOUT").unwrap();
        assert!(!c.from);
        assert_eq!(c.options.delimiter(), '\t');
        assert_eq!(c.options.null_string(), "\\N");
        let c = parse("COPY t FROM '/data/x.csv' (FORMAT csv)").unwrap();
        assert_eq!(c.endpoint, CopyEndpoint::File("/data/x.csv".into()));
        assert_eq!(c.options.null_string(), "");
        assert_eq!(c.options.escape(), '"');
    }

    #[test]
    fn bad_combinations_are_rejected() {
        assert!(parse("COPY t FROM STDIN (QUOTE '''')").is_err());
        assert!(parse("COPY t FROM STDIN (FORMAT csv, DELIMITER ',', QUOTE ',')").is_err());
        assert!(parse("COPY t FROM STDIN (FORMAT xml)").is_err());
        assert!(parse("COPY (SELECT 1) FROM STDIN").is_err());
        assert!(parse("COPY t FROM STDIN (BOGUS 1)").is_err());
    }
}
