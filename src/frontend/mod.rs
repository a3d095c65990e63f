//! SQL text to statements.
//!
//! Standard PostgreSQL statements go to sqlparser, with [`SluiceDialect`]
//! (PostgreSQL's, plus Delta's table versions). The forms PostgreSQL lacks,
//! and the ones sqlparser cannot parse, are parsed here into statements of
//! our own, typed:
//!
//! ```text
//!  CREATE TABLE t (..., CONSTRAINT c EXPECT (cond) [ON VIOLATION ...])   (see [`expect`])
//!  ALTER TABLE t ADD CONSTRAINT c EXPECT (cond) [ON VIOLATION ...]
//!  CREATE TABLE t (c, ...) AS query
//!  MERGE ... WHEN ... THEN DO NOTHING                                    (see [`merge`])
//!  DESCRIBE HISTORY t [LIMIT n]
//!  OPTIMIZE t [ZORDER BY (c, ...)]
//!  VACUUM t [RETAIN n HOURS] [DRY RUN]
//!  RESTORE TABLE t TO VERSION AS OF n | TO TIMESTAMP AS OF 'ts'
//!  COPY ...   (see [`copy`]: every PostgreSQL and psql spelling)
//!  REFRESH MATERIALIZED VIEW v [FULL]
//!  EXPLAIN REFRESH MATERIALIZED VIEW v [FULL]
//!  CREATE | REFRESH | DROP FEATURE VIEW ..., CREATE | DROP FEATURE SERVICE ...   (see [`features`])
//!  CREATE EXTERNAL TABLE t [(cols)] STORED AS fmt LOCATION 'path' [OPTIONS (...)]
//!  ... FROM t VERSION AS OF n | TIMESTAMP AS OF 'ts'   (any table reference, in sqlparser's AST)
//!  ... l ASOF [LEFT] JOIN r MATCH_CONDITION (...) | ON ...   (see [`asof`]: a join with a marker)
//! ```
//!
//! Nothing of ours travels through sqlparser's AST in disguise but the ASOF
//! join's marker, and nothing
//! is rewritten into SQL text to be parsed again.

pub mod asof;
pub mod collate;
pub mod compat;
pub mod copy;
pub mod dialect;
pub mod dml_with;
pub mod expect;
pub mod features;
pub mod fetch;
pub mod generated;
pub mod merge;
pub mod names;
pub mod one_group;
pub mod row_count;
pub mod schedule;
pub mod sequence_options;
pub mod table_functions;
pub mod template;
pub mod values_subqueries;

use datafusion::sql::sqlparser::ast::helpers::stmt_create_table::CreateTableBuilder;
use datafusion::sql::sqlparser::ast::{ColumnDef, CreateTable, DataType, ObjectName, Statement};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

pub use dialect::SluiceDialect;
pub use expect::Expectation;
pub use merge::MergeStmt;

use crate::error::{Error, Result};
use crate::lake::TimeTravel;

/// One statement Sluice accepts.
#[derive(Debug, Clone)]
pub enum Stmt {
    /// A standard statement, as sqlparser parsed it.
    Sql(Box<Statement>),
    /// `INSERT INTO t [(columns)] OVERRIDING {SYSTEM | USER} VALUE ...`,
    /// which sqlparser does not read: the INSERT without the clause.
    InsertOverriding {
        insert: Box<Statement>,
        overriding: Overriding,
    },
    /// `CREATE TABLE`, with its expectations.
    CreateTable {
        ct: Box<CreateTable>,
        expectations: Vec<Expectation>,
    },
    /// `ALTER TABLE t ADD CONSTRAINT c EXPECT (...) [ON VIOLATION ...]`
    AddExpectation {
        table: ObjectName,
        expectation: Box<Expectation>,
    },
    Merge(Box<MergeStmt>),
    DescribeHistory {
        table: ObjectName,
        limit: Option<u64>,
    },
    Optimize {
        table: ObjectName,
        zorder: Vec<String>,
    },
    Vacuum {
        table: ObjectName,
        retain_hours: Option<u64>,
        dry_run: bool,
    },
    /// `ANALYZE [VERBOSE] [name [(columns)] [, ...]]`: the tables named
    /// (none: every table).
    Analyze {
        tables: Vec<ObjectName>,
    },
    Restore {
        table: ObjectName,
        at: TimeTravel,
    },
    Copy(Box<copy::CopyStmt>),
    CreateExternalTable(Box<ExternalTable>),
    /// `[EXPLAIN] REFRESH MATERIALIZED VIEW [CONCURRENTLY] v [FULL]`, and
    /// `REFRESH FEATURE VIEW v [FULL]` (`feature`)
    RefreshMaterializedView {
        name: ObjectName,
        full: bool,
        explain: bool,
        feature: bool,
    },
    /// `CREATE FEATURE VIEW` (see [`features`])
    CreateFeatureView(Box<features::FeatureViewStmt>),
    /// `CREATE FEATURE SERVICE`
    CreateFeatureService(Box<features::FeatureServiceStmt>),
    /// `DROP FEATURE VIEW | SERVICE`
    DropFeature {
        what: features::FeatureObject,
        names: Vec<ObjectName>,
        if_exists: bool,
        cascade: bool,
    },
    /// `CREATE MATERIALIZED VIEW` with `PARTITIONED BY`, expectations or a
    /// refresh policy
    CreateMaterializedView {
        cv: Box<datafusion::sql::sqlparser::ast::CreateView>,
        partition_by: Vec<String>,
        expectations: Vec<Expectation>,
        refresh: Option<crate::catalog::schedule::RefreshPolicy>,
    },
    /// `SELECT sluice.refresh(arg)` or `CALL sluice.refresh(arg)`
    RefreshCall {
        arg: Box<datafusion::sql::sqlparser::ast::Expr>,
        call: bool,
    },
    /// `ALTER MATERIALIZED VIEW | FEATURE VIEW [IF EXISTS] v SET REFRESH
    /// ...` (`None`: `MANUAL`)
    AlterRefresh {
        name: ObjectName,
        feature: bool,
        if_exists: bool,
        policy: Option<crate::catalog::schedule::RefreshPolicy>,
    },
    /// `ALTER SEQUENCE [IF EXISTS] s ...` (see [`sequence_options::AlterSequence`])
    AlterSequence(Box<sequence_options::AlterSequence>),
    /// `ALTER MATERIALIZED VIEW [IF EXISTS] v RENAME TO w`
    RenameMaterializedView {
        name: ObjectName,
        if_exists: bool,
        new_name: ObjectName,
    },
}

/// `CREATE EXTERNAL TABLE name [(columns)] STORED AS fmt LOCATION 'path'
/// [OPTIONS ('key' 'value', ...)]`
#[derive(Debug, Clone)]
pub struct ExternalTable {
    pub name: ObjectName,
    pub if_not_exists: bool,
    /// Column list as SQL text (`a integer, b text`), if given.
    pub columns: Option<String>,
    pub format: String,
    pub location: String,
    pub options: Vec<(String, String)>,
}

/// Parse a query string that may hold several statements.
pub fn parse(sql: &str) -> Result<Vec<Stmt>> {
    let dialect = SluiceDialect::for_sql(sql);
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| Error::syntax(format!("syntax error: {e}")))?;
    let tokens = trim_characters(sequence_options::normalize(asof::normalize(tokens)?));
    // The text of a lone statement, for rewrites keyed on what clients send.
    let statements = tokens
        .iter()
        .filter(|t| t.token == Token::SemiColon)
        .count();
    let lone = (statements == 0 || sql.trim_end().trim_end_matches(';').matches(';').count() == 0)
        .then_some(sql);
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        let stmt = match parse_extension(&mut parser)? {
            Some(s) => s,
            None => match parser.parse_statement()? {
                Statement::CreateTable(mut ct) => {
                    // The query of a CREATE TABLE AS is read as any query.
                    if let Some(q) = ct.query.take() {
                        let mut query = Statement::Query(q);
                        compat::rewrite(&mut query, None)?;
                        if let Statement::Query(q) = query {
                            ct.query = Some(q);
                        }
                    }
                    Stmt::CreateTable {
                        ct: Box::new(ct),
                        expectations: vec![],
                    }
                }
                other if schedule::refresh_call(&other).is_some() => {
                    schedule::refresh_call(&other).expect("checked")
                }
                other => {
                    let mut other = dml_with::dml_with(other)?;
                    dml_with::tuple_assignments(&mut other);
                    compat::rewrite(&mut other, lone)?;
                    Stmt::Sql(Box::new(other))
                }
            },
        };
        out.push(stmt);
        let next = parser.peek_token();
        match next.token {
            Token::SemiColon | Token::EOF => {}
            other => {
                return Err(Error::syntax(format!(
                    "syntax error at or near \"{other}\""
                )));
            }
        }
    }
    Ok(out)
}

/// `trim(LEADING | TRAILING | BOTH FROM s)`, which sqlparser reads only
/// with the characters to trim written: PostgreSQL's default, a space, is
/// written in.
fn trim_characters(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, _)| i)
        .collect();
    let is = |t: &Token, kw: &str| word_is(t, kw);
    let mut inserts = vec![];
    for w in significant.windows(4) {
        let [trim, open, side, from] = [w[0], w[1], w[2], w[3]].map(|i| &tokens[i].token);
        if is(trim, "TRIM")
            && *open == Token::LParen
            && (is(side, "LEADING") || is(side, "TRAILING") || is(side, "BOTH"))
            && is(from, "FROM")
        {
            inserts.push(w[2] + 1);
        }
    }
    for at in inserts.into_iter().rev() {
        tokens.insert(
            at,
            TokenWithSpan::wrap(Token::SingleQuotedString(" ".into())),
        );
        tokens.insert(
            at,
            TokenWithSpan::wrap(Token::Whitespace(Whitespace::Space)),
        );
    }
    tokens
}

/// The tokens of the statement `p` is at, up to (not including) the `;`
/// that ends it at the top level.
fn statement_tokens(p: &Parser) -> Vec<TokenWithSpan> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    for n in 0.. {
        let t = p.peek_nth_token(n);
        match t.token {
            Token::EOF => break,
            Token::SemiColon if depth == 0 => break,
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        out.push(t);
    }
    out
}

/// `CREATE TABLE` with `CONSTRAINT c EXPECT ...` clauses: the clauses are
/// taken out and the rest parsed as usual.
fn create_table_with_expectations(p: &mut Parser) -> Result<Option<Stmt>> {
    if !(peek_word(p, 0, "CREATE") && (peek_word(p, 1, "TABLE") || peek_word(p, 2, "TABLE"))) {
        return Ok(None);
    }
    let tokens = statement_tokens(p);
    let has_expect = tokens.windows(3).any(|w| {
        word_is(&w[0].token, "EXPECT")
            || word_is(&w[1].token, "EXPECT")
            || word_is(&w[2].token, "EXPECT")
    });
    if !has_expect {
        return Ok(None);
    }
    let significant: Vec<TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .cloned()
        .collect();
    let (kept, expectations) = expect::extract(significant)?;
    if expectations.is_empty() {
        return Ok(None);
    }
    for _ in 0..tokens.len() {
        p.next_token();
    }
    let dialect = SluiceDialect::default();
    let mut sub = Parser::new(&dialect).with_tokens_with_locations(kept);
    match sub.parse_statement()? {
        Statement::CreateTable(ct) => {
            if sub.peek_token().token != Token::EOF {
                return Err(Error::syntax(format!(
                    "syntax error at or near \"{}\"",
                    sub.peek_token().token
                )));
            }
            Ok(Some(Stmt::CreateTable {
                ct: Box::new(ct),
                expectations,
            }))
        }
        _ => Err(Error::syntax("EXPECT is only allowed in CREATE TABLE")),
    }
}

/// `ALTER TABLE [IF EXISTS] t ADD CONSTRAINT c EXPECT (...)`: None when the
/// ALTER is another one.
fn add_expectation(p: &mut Parser) -> Result<Option<Stmt>> {
    // ALTER TABLE [IF EXISTS] [ONLY] name ADD CONSTRAINT c EXPECT
    let tokens: Vec<Token> = statement_tokens(p)
        .into_iter()
        .map(|t| t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let Some(add) = tokens.iter().position(|t| word_is(t, "ADD")) else {
        return Ok(None);
    };
    let is_expect = tokens
        .get(add + 1)
        .is_some_and(|t| word_is(t, "CONSTRAINT"))
        && tokens.get(add + 3).is_some_and(|t| word_is(t, "EXPECT"));
    if !is_expect {
        return Ok(None);
    }
    p.expect_keyword(Keyword::ALTER)?;
    p.expect_keyword(Keyword::TABLE)?;
    if p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]) {
        return Err(Error::not_supported(
            "ALTER TABLE IF EXISTS ... ADD CONSTRAINT ... EXPECT",
        ));
    }
    let _ = p.parse_keyword(Keyword::ONLY);
    let table = p.parse_object_name(false)?;
    p.expect_keyword(Keyword::ADD)?;
    p.expect_keyword(Keyword::CONSTRAINT)?;
    let name = names::normalize_ident(&p.parse_identifier()?);
    p.next_token(); // EXPECT
    let expectation = expect::parse_after_expect(p, name)?;
    Ok(Some(Stmt::AddExpectation {
        table,
        expectation: Box::new(expectation),
    }))
}

fn word_is(t: &Token, kw: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

fn peek_word(p: &Parser, n: usize, kw: &str) -> bool {
    word_is(&p.peek_nth_token(n).token, kw)
}

/// Past the `)` closing a `(` just read, nested parentheses included.
fn skip_to_closing(p: &mut Parser) -> Result<()> {
    let mut depth = 1;
    while depth > 0 {
        match p.next_token().token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::EOF | Token::SemiColon => return Err(Error::syntax("syntax error: expected )")),
            _ => {}
        }
    }
    Ok(())
}

/// `CREATE MATERIALIZED VIEW v [(names, CONSTRAINT c EXPECT (...) [ON
/// VIOLATION ...])] [PARTITIONED BY (a, b)] [REFRESH ...] AS query`: the statement
/// without Sluice's clauses is what sqlparser reads; the clauses come with
/// it. `None` when it has neither.
fn materialized_view_clauses(p: &mut Parser) -> Result<Option<Stmt>> {
    let tokens = statement_tokens(p);
    let consumed = tokens.len();
    let (mut kept, expectations) = if tokens.iter().any(|t| word_is(&t.token, "EXPECT")) {
        expect::extract(tokens)?
    } else {
        (tokens, vec![])
    };
    let partition_by = take_partitioned_by(&mut kept)?;
    let refresh = schedule::take_refresh(&mut kept)?;
    if expectations.is_empty() && partition_by.is_none() && refresh.is_none() {
        return Ok(None);
    }
    // A name list that held only expectations is gone with them.
    if let Some(i) = kept.iter().position(|t| t.token == Token::LParen)
        && kept.get(i + 1).is_some_and(|t| t.token == Token::RParen)
    {
        kept.drain(i..i + 2);
    }
    for _ in 0..consumed {
        p.next_token();
    }
    let text: Vec<String> = kept.iter().map(|t| t.token.to_string()).collect();
    let dialect = SluiceDialect::for_sql(&text.join(" "));
    let mut inner = Parser::new(&dialect).with_tokens_with_locations(kept);
    let stmt = inner.parse_statement()?;
    if inner.peek_token().token != Token::EOF {
        return Err(Error::syntax(format!(
            "syntax error at or near \"{}\"",
            inner.peek_token().token
        )));
    }
    match stmt {
        Statement::CreateView(cv) if cv.materialized => Ok(Some(Stmt::CreateMaterializedView {
            cv: Box::new(cv),
            partition_by: partition_by.unwrap_or_default(),
            expectations,
            refresh,
        })),
        _ => Err(Error::syntax(
            "EXPECT, PARTITIONED BY and REFRESH belong to CREATE MATERIALIZED VIEW ... AS query",
        )),
    }
}

/// Take `PARTITIONED BY (a, b)` (at depth 0, before the `AS`) out of a
/// statement's tokens: its columns.
fn take_partitioned_by(tokens: &mut Vec<TokenWithSpan>) -> Result<Option<Vec<String>>> {
    let mut depth = 0usize;
    let mut at = None;
    for (i, t) in tokens.iter().enumerate() {
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            t if depth == 0 && word_is(t, "AS") => break,
            t if depth == 0 && word_is(t, "PARTITIONED") => {
                at = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(at) = at else {
        return Ok(None);
    };
    let bad =
        || Error::syntax("syntax error in PARTITIONED BY: expected PARTITIONED BY (column, ...)");
    let token = |i: usize| tokens.get(i).map(|t| &t.token);
    if !token(at + 1).is_some_and(|t| word_is(t, "BY")) || token(at + 2) != Some(&Token::LParen) {
        return Err(bad());
    }
    let mut columns = Vec::new();
    let mut n = at + 3;
    loop {
        match tokens.get(n) {
            Some(TokenWithSpan {
                token: Token::Word(w),
                span,
            }) => columns.push(names::normalize_ident(&w.to_ident(*span))),
            _ => return Err(bad()),
        }
        n += 1;
        match token(n) {
            Some(Token::Comma) => n += 1,
            Some(Token::RParen) => break,
            _ => return Err(bad()),
        }
    }
    tokens.drain(at..=n);
    Ok(Some(columns))
}

/// `CREATE TABLE name (column, ...) AS query`, PostgreSQL's way to name
/// the columns of a CTAS: the position of the `AS` when the statement
/// ahead has that shape (sqlparser wants a type after each column).
fn ctas_with_column_names(p: &Parser) -> Option<usize> {
    let mut n = 2;
    if !(peek_word(p, 0, "CREATE") && peek_word(p, 1, "TABLE")) {
        return None;
    }
    if peek_word(p, n, "IF") {
        n += 3;
    }
    // name: word (. word)*
    loop {
        if !matches!(p.peek_nth_token(n).token, Token::Word(_)) {
            return None;
        }
        n += 1;
        if p.peek_nth_token(n).token != Token::Period {
            break;
        }
        n += 1;
    }
    if p.peek_nth_token(n).token != Token::LParen {
        return None;
    }
    n += 1;
    loop {
        if !matches!(p.peek_nth_token(n).token, Token::Word(_)) {
            return None;
        }
        n += 1;
        match p.peek_nth_token(n).token {
            Token::Comma => n += 1,
            Token::RParen => break,
            _ => return None,
        }
    }
    n += 1;
    peek_word(p, n, "AS").then_some(n)
}

/// Which values an INSERT's identity columns take (`OVERRIDING ...
/// VALUE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overriding {
    /// `OVERRIDING SYSTEM VALUE`: the values given, even for a `GENERATED
    /// ALWAYS` identity column.
    System,
    /// `OVERRIDING USER VALUE`: the sequence's, whatever values are given.
    User,
}

/// `INSERT ... OVERRIDING {SYSTEM | USER} VALUE ...`: the clause taken out
/// and the rest parsed as an INSERT; None for any other statement.
fn insert_overriding(p: &mut Parser) -> Result<Option<Stmt>> {
    if !peek_word(p, 0, "INSERT") {
        return Ok(None);
    }
    // At the top level of `INSERT INTO t [AS a] [(columns)]`, before the
    // rows begin (a column of theirs may be named overriding), followed by
    // SYSTEM or USER and VALUE (a table may be named overriding too). Only
    // this head is looked at: every INSERT passes here.
    let mut depth = 0usize;
    let mut found = None;
    for n in 0.. {
        let t = p.peek_nth_token(n).token;
        match &t {
            Token::EOF | Token::SemiColon => break,
            // `(SELECT ...`, `(VALUES ...`: the rows begin.
            Token::LParen
                if depth == 0
                    && ["VALUES", "SELECT", "WITH"]
                        .iter()
                        .any(|w| word_is(&p.peek_nth_token(n + 1).token, w)) =>
            {
                break;
            }
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            other if depth == 0 && word_is(other, "OVERRIDING") => {
                let kind = match p.peek_nth_token(n + 1).token {
                    ref k if word_is(k, "SYSTEM") => Some(Overriding::System),
                    ref k if word_is(k, "USER") => Some(Overriding::User),
                    _ => None,
                };
                if let Some(kind) = kind
                    && word_is(&p.peek_nth_token(n + 2).token, "VALUE")
                {
                    found = Some((n, kind));
                    break;
                }
            }
            other
                if depth == 0
                    && ["VALUES", "SELECT", "WITH", "DEFAULT"]
                        .iter()
                        .any(|w| word_is(other, w)) =>
            {
                break;
            }
            _ => {}
        }
    }
    let Some((at, overriding)) = found else {
        return Ok(None);
    };
    // The statement's tokens, in one pass, without the clause.
    let mut kept: Vec<TokenWithSpan> = Vec::new();
    let mut depth = 0usize;
    let mut n = 0usize;
    loop {
        match p.peek_token().token {
            Token::EOF => break,
            Token::SemiColon if depth == 0 => break,
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        let t = p.next_token();
        if !(at..at + 3).contains(&n) {
            kept.push(t);
        }
        n += 1;
    }
    let dialect = SluiceDialect::default();
    let mut sub = Parser::new(&dialect).with_tokens_with_locations(kept);
    let stmt = sub.parse_statement()?;
    if sub.peek_token().token != Token::EOF {
        return Err(Error::syntax(format!(
            "syntax error at or near \"{}\"",
            sub.peek_token().token
        )));
    }
    if !matches!(stmt, Statement::Insert(_)) {
        return Err(Error::syntax("OVERRIDING is only allowed in INSERT"));
    }
    let mut stmt = dml_with::dml_with(stmt)?;
    compat::rewrite(&mut stmt, None)?;
    Ok(Some(Stmt::InsertOverriding {
        insert: Box::new(stmt),
        overriding,
    }))
}

fn parse_extension(p: &mut Parser) -> Result<Option<Stmt>> {
    if let Some(stmt) = insert_overriding(p)? {
        return Ok(Some(stmt));
    }
    if let Some(stmt) = features::parse(p)? {
        return Ok(Some(stmt));
    }
    if ctas_with_column_names(p).is_some() {
        p.next_token();
        p.next_token();
        let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = p.parse_object_name(false)?;
        p.expect_token(&Token::LParen)?;
        let columns = p.parse_comma_separated(|p| p.parse_identifier())?;
        p.expect_token(&Token::RParen)?;
        p.expect_keyword(Keyword::AS)?;
        let query = p.parse_query()?;
        // Named columns without types: the query's columns, renamed.
        let columns = columns
            .into_iter()
            .map(|name| ColumnDef {
                name,
                data_type: DataType::Unspecified,
                options: vec![],
            })
            .collect();
        let ct = CreateTableBuilder::new(name)
            .if_not_exists(if_not_exists)
            .columns(columns)
            .query(Some(query))
            .build();
        return Ok(Some(Stmt::CreateTable {
            ct: Box::new(ct),
            expectations: vec![],
        }));
    }
    if let Some(stmt) = create_table_with_expectations(p)? {
        return Ok(Some(stmt));
    }
    if peek_word(p, 0, "ALTER")
        && peek_word(p, 1, "TABLE")
        && let Some(stmt) = add_expectation(p)?
    {
        return Ok(Some(stmt));
    }
    if peek_word(p, 0, "ALTER") && peek_word(p, 1, "SEQUENCE") {
        return Ok(Some(Stmt::AlterSequence(Box::new(
            sequence_options::parse_alter(p)?,
        ))));
    }
    if peek_word(p, 0, "MERGE") {
        return Ok(Some(Stmt::Merge(Box::new(merge::parse_merge(p)?))));
    }
    if peek_word(p, 0, "CREATE") && peek_word(p, 1, "EXTERNAL") && peek_word(p, 2, "TABLE") {
        for _ in 0..3 {
            p.next_token();
        }
        let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = p.parse_object_name(false)?;
        let columns = if p.peek_token().token == Token::LParen {
            let (cols, _) = p.parse_columns()?;
            let text: Vec<String> = cols
                .iter()
                .map(|c| format!("{} {}", c.name, c.data_type))
                .collect();
            Some(text.join(", "))
        } else {
            None
        };
        let mut format = None;
        let mut location = None;
        let mut options = Vec::new();
        loop {
            if p.parse_keywords(&[Keyword::STORED, Keyword::AS]) {
                format = Some(p.parse_identifier()?.value.to_ascii_lowercase());
            } else if peek_word(p, 0, "LOCATION") {
                p.next_token();
                location = Some(p.parse_literal_string()?);
            } else if peek_word(p, 0, "WITH") && peek_word(p, 1, "HEADER") {
                p.next_token();
                p.next_token();
                let _ = p.parse_keyword(Keyword::ROW);
                options.push(("header".to_string(), "true".to_string()));
            } else if peek_word(p, 0, "OPTIONS") {
                p.next_token();
                p.expect_token(&Token::LParen)?;
                loop {
                    let k = p.parse_literal_string()?;
                    let v = match p.next_token().token {
                        Token::SingleQuotedString(v) => v,
                        Token::Number(v, _) => v,
                        Token::Word(w) => w.value,
                        other => {
                            return Err(Error::syntax(format!(
                                "syntax error at or near \"{other}\""
                            )));
                        }
                    };
                    options.push((k, v));
                    if !p.consume_token(&Token::Comma) {
                        break;
                    }
                }
                p.expect_token(&Token::RParen)?;
            } else {
                break;
            }
        }
        let (Some(format), Some(location)) = (format, location) else {
            return Err(Error::syntax(
                "CREATE EXTERNAL TABLE needs STORED AS <format> and LOCATION '<path>'",
            ));
        };
        return Ok(Some(Stmt::CreateExternalTable(Box::new(ExternalTable {
            name,
            if_not_exists,
            columns,
            format,
            location,
            options,
        }))));
    }
    let explain = peek_word(p, 0, "EXPLAIN") && peek_word(p, 1, "REFRESH");
    if peek_word(p, 0, "REFRESH") || explain {
        if explain {
            p.next_token();
        }
        p.next_token();
        if !(peek_word(p, 0, "MATERIALIZED") && peek_word(p, 1, "VIEW")) {
            return Err(Error::syntax(
                "syntax error: expected MATERIALIZED VIEW after REFRESH",
            ));
        }
        p.next_token();
        p.next_token();
        // Readers are never blocked by a refresh: CONCURRENTLY is the
        // only way Sluice refreshes.
        let _ = p.parse_keyword(Keyword::CONCURRENTLY);
        let name = p.parse_object_name(false)?;
        let full = peek_word(p, 0, "FULL");
        if full {
            p.next_token();
        }
        if p.parse_keywords(&[Keyword::WITH, Keyword::NO, Keyword::DATA]) {
            return Err(Error::not_supported(
                "REFRESH MATERIALIZED VIEW ... WITH NO DATA",
            ));
        }
        let _ = p.parse_keywords(&[Keyword::WITH, Keyword::DATA]);
        return Ok(Some(Stmt::RefreshMaterializedView {
            name,
            full,
            explain,
            feature: false,
        }));
    }
    if peek_word(p, 0, "CREATE")
        && peek_word(p, 1, "MATERIALIZED")
        && peek_word(p, 2, "VIEW")
        && let Some(stmt) = materialized_view_clauses(p)?
    {
        return Ok(Some(stmt));
    }
    if peek_word(p, 0, "ALTER")
        && peek_word(p, 1, "MATERIALIZED")
        && peek_word(p, 2, "VIEW")
        && let Some(stmt) = schedule::parse_alter(p, false)?
    {
        return Ok(Some(stmt));
    }
    if peek_word(p, 0, "ALTER") && peek_word(p, 1, "MATERIALIZED") && peek_word(p, 2, "VIEW") {
        for _ in 0..3 {
            p.next_token();
        }
        let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = p.parse_object_name(false)?;
        if !p.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
            let mut rest = Vec::new();
            while rest.len() < 3 && !matches!(p.peek_token().token, Token::EOF | Token::SemiColon) {
                rest.push(p.next_token().to_string());
            }
            return Err(Error::new(
                crate::error::ErrorKind::FeatureNotSupported,
                format!(
                    "ALTER MATERIALIZED VIEW ... {} is not supported; RENAME TO and SET REFRESH are",
                    rest.join(" ")
                ),
            ));
        }
        let new_name = p.parse_object_name(false)?;
        if new_name.0.len() > 1 {
            // As in PostgreSQL: RENAME keeps the schema; SET SCHEMA moves.
            return Err(Error::syntax(format!(
                "syntax error at or near \".\": the new name \"{new_name}\" of RENAME TO takes no schema"
            )));
        }
        return Ok(Some(Stmt::RenameMaterializedView {
            name,
            if_exists,
            new_name,
        }));
    }
    if peek_word(p, 0, "COPY") {
        return Ok(Some(Stmt::Copy(Box::new(copy::parse_copy(p)?))));
    }
    if peek_word(p, 0, "DESCRIBE") && peek_word(p, 1, "HISTORY") {
        p.next_token();
        p.next_token();
        let table = p.parse_object_name(false)?;
        let limit = if p.parse_keyword(Keyword::LIMIT) {
            Some(p.parse_literal_uint()?)
        } else {
            None
        };
        return Ok(Some(Stmt::DescribeHistory { table, limit }));
    }
    if peek_word(p, 0, "OPTIMIZE") {
        p.next_token();
        let table = p.parse_object_name(false)?;
        let mut zorder = Vec::new();
        if peek_word(p, 0, "ZORDER") {
            p.next_token();
            p.expect_keyword(Keyword::BY)?;
            let paren = p.consume_token(&Token::LParen);
            loop {
                zorder.push(p.parse_identifier()?.value);
                if !p.consume_token(&Token::Comma) {
                    break;
                }
            }
            if paren {
                p.expect_token(&Token::RParen)?;
            }
        }
        return Ok(Some(Stmt::Optimize { table, zorder }));
    }
    if peek_word(p, 0, "ANALYZE") || peek_word(p, 0, "ANALYSE") {
        p.next_token();
        // `(VERBOSE, SKIP_LOCKED ...)` and `VERBOSE` change nothing here.
        if p.consume_token(&Token::LParen) {
            skip_to_closing(p)?;
        }
        if peek_word(p, 0, "VERBOSE") {
            p.next_token();
        }
        let mut tables = vec![];
        while !matches!(p.peek_token().token, Token::EOF | Token::SemiColon) {
            tables.push(p.parse_object_name(false)?);
            if p.consume_token(&Token::LParen) {
                skip_to_closing(p)?;
            }
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        return Ok(Some(Stmt::Analyze { tables }));
    }
    if peek_word(p, 0, "VACUUM") {
        p.next_token();
        // PostgreSQL's options (`FULL`, `ANALYZE`, `(VERBOSE)` ...) change
        // nothing in a Delta vacuum.
        if p.consume_token(&Token::LParen) {
            skip_to_closing(p)?;
        }
        while ["FULL", "FREEZE", "VERBOSE", "ANALYZE", "ANALYSE"]
            .iter()
            .any(|w| peek_word(p, 0, w))
            && !matches!(p.peek_nth_token(1).token, Token::EOF | Token::SemiColon)
        {
            p.next_token();
        }
        let table = p.parse_object_name(false)?;
        let mut retain_hours = None;
        let mut dry_run = false;
        loop {
            if peek_word(p, 0, "RETAIN") {
                p.next_token();
                retain_hours = Some(p.parse_literal_uint()?);
                if !(peek_word(p, 0, "HOURS") || peek_word(p, 0, "HOUR")) {
                    return Err(Error::syntax("syntax error: expected HOURS after RETAIN n"));
                }
                p.next_token();
            } else if peek_word(p, 0, "DRY") && peek_word(p, 1, "RUN") {
                p.next_token();
                p.next_token();
                dry_run = true;
            } else {
                break;
            }
        }
        return Ok(Some(Stmt::Vacuum {
            table,
            retain_hours,
            dry_run,
        }));
    }
    if peek_word(p, 0, "RESTORE") {
        p.next_token();
        let _ = p.parse_keyword(Keyword::TABLE);
        let table = p.parse_object_name(false)?;
        p.expect_keyword(Keyword::TO)?;
        let at = if p.parse_keywords(&[Keyword::VERSION, Keyword::AS, Keyword::OF]) {
            TimeTravel::Version(p.parse_literal_uint()? as i64)
        } else if p.parse_keywords(&[Keyword::TIMESTAMP, Keyword::AS, Keyword::OF]) {
            TimeTravel::Timestamp(p.parse_literal_string()?)
        } else {
            return Err(Error::syntax(
                "syntax error: expected TO VERSION AS OF n or TO TIMESTAMP AS OF 'ts'",
            ));
        };
        return Ok(Some(Stmt::Restore { table, at }));
    }
    Ok(None)
}

/// A plain `SELECT 1 FROM x`, whose parts a rewrite fills in.
pub(crate) fn plain_select() -> Option<datafusion::sql::sqlparser::ast::Query> {
    let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
    match datafusion::sql::sqlparser::parser::Parser::parse_sql(&dialect, "SELECT 1 FROM x")
        .ok()?
        .pop()?
    {
        Statement::Query(q) => Some(*q),
        _ => None,
    }
}

/// One statement of `sql` as sqlparser reads it, for the rewrites' tests.
#[cfg(test)]
pub(crate) fn parse_one(sql: &str) -> Statement {
    datafusion::sql::sqlparser::parser::Parser::parse_sql(&SluiceDialect::default(), sql)
        .expect("parses")
        .remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Stmt {
        let mut v = parse(sql).unwrap();
        assert_eq!(v.len(), 1, "{sql}");
        v.remove(0)
    }

    #[test]
    fn overriding_comes_out_of_an_insert() {
        let Stmt::InsertOverriding { insert, overriding } =
            one("INSERT INTO t (id, v) OVERRIDING SYSTEM VALUE VALUES (1, 'a') RETURNING id")
        else {
            panic!("not read as INSERT ... OVERRIDING")
        };
        assert_eq!(overriding, Overriding::System);
        assert_eq!(
            insert.to_string(),
            "INSERT INTO t (id, v) VALUES (1, 'a') RETURNING id"
        );
        let Stmt::InsertOverriding { overriding, .. } =
            one("insert into t overriding user value select 1")
        else {
            panic!("not read as INSERT ... OVERRIDING")
        };
        assert_eq!(overriding, Overriding::User);
        // A column named overriding is a column.
        assert!(matches!(
            one("INSERT INTO t (overriding) SELECT overriding FROM u"),
            Stmt::Sql(_)
        ));
        assert!(parse("INSERT INTO t OVERRIDING NOTHING VALUE VALUES (1)").is_err());
        // A table named overriding is a table.
        assert!(matches!(
            one("INSERT INTO overriding VALUES (1)"),
            Stmt::Sql(_)
        ));
        assert!(matches!(
            one("INSERT INTO s.overriding AS o (a) VALUES (1)"),
            Stmt::Sql(_)
        ));
    }

    #[test]
    fn materialized_view_clauses_come_out_of_the_statement() {
        let Stmt::CreateMaterializedView {
            cv,
            partition_by,
            expectations,
            ..
        } = one(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS s.v (k, n, CONSTRAINT pos EXPECT (n > 0) \
             ON VIOLATION DROP ROW) PARTITIONED BY (k, \"Day\") AS SELECT a, count(*) FROM t \
             GROUP BY a",
        )
        else {
            panic!("not a materialized view with clauses")
        };
        assert!(cv.materialized && cv.if_not_exists);
        assert_eq!(cv.columns.len(), 2);
        assert_eq!(partition_by, vec!["k".to_string(), "Day".to_string()]);
        assert_eq!(expectations.len(), 1);
        assert_eq!(expectations[0].name, "pos");
        // Only expectations in the list: the list goes with them.
        let Stmt::CreateMaterializedView { cv, .. } =
            one("CREATE MATERIALIZED VIEW v (CONSTRAINT c EXPECT (a > 0)) AS SELECT a FROM t")
        else {
            panic!("not a materialized view with clauses")
        };
        assert!(cv.columns.is_empty());
        // Without clauses it is sqlparser's CREATE VIEW; a word in the
        // query is not a clause.
        assert!(matches!(
            one("CREATE MATERIALIZED VIEW v AS SELECT 1 AS partitioned"),
            Stmt::Sql(_)
        ));
        // Two statements: the clauses of the first stay with it.
        let both =
            parse("CREATE MATERIALIZED VIEW v PARTITIONED BY (a) AS SELECT 1 AS a; SELECT 2")
                .unwrap();
        assert_eq!(both.len(), 2);
        for bad in [
            "CREATE MATERIALIZED VIEW v PARTITIONED BY a AS SELECT 1 AS a",
            "CREATE MATERIALIZED VIEW v PARTITIONED BY (a AS SELECT 1 AS a",
            "CREATE MATERIALIZED VIEW v PARTITIONED BY (1) AS SELECT 1 AS a",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn alter_materialized_view_renames_only() {
        let Stmt::RenameMaterializedView {
            name,
            if_exists,
            new_name,
        } = one("ALTER MATERIALIZED VIEW IF EXISTS s.v RENAME TO w")
        else {
            panic!("not a rename")
        };
        assert!(if_exists);
        assert_eq!(name.to_string(), "s.v");
        assert_eq!(new_name.to_string(), "w");
        let e = match parse("ALTER MATERIALIZED VIEW v RENAME COLUMN a TO b") {
            Err(e) => e,
            Ok(_) => panic!("RENAME COLUMN parsed"),
        };
        assert_eq!(e.kind, crate::error::ErrorKind::FeatureNotSupported);
        assert!(e.message.contains("RENAME COLUMN a"), "{}", e.message);
        assert!(parse("ALTER MATERIALIZED VIEW v RENAME TO s.w").is_err());
    }

    #[test]
    fn named_arguments_stay_named() {
        let Stmt::Sql(s) =
            one("SELECT * FROM read_csv('x.csv', header => false, delimiter => ';')")
        else {
            panic!()
        };
        let text = s.to_string();
        assert!(
            text.contains("read_csv('x.csv', header => false, delimiter => ';')"),
            "{text}"
        );
    }

    #[test]
    fn several_statements_split() {
        let v = parse("select 1; select 2;; ").unwrap();
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn versions_stay_on_the_table_reference() {
        let Stmt::Sql(s) = one("SELECT t.a FROM raw.t VERSION AS OF 3 WHERE a > 1") else {
            panic!()
        };
        let text = s.to_string();
        assert!(text.contains("raw.t VERSION AS OF 3"), "{text}");
        let Stmt::Sql(s) = one("select * from t TIMESTAMP AS OF '2026-01-01 00:00:00' AS x") else {
            panic!()
        };
        assert!(
            s.to_string()
                .contains("t AS x TIMESTAMP AS OF '2026-01-01 00:00:00'"),
            "{s}"
        );
    }

    #[test]
    fn lakehouse_statements_parse() {
        assert!(matches!(
            one("DESCRIBE HISTORY raw.t"),
            Stmt::DescribeHistory { .. }
        ));
        match one("OPTIMIZE raw.t ZORDER BY (a, b)") {
            Stmt::Optimize { zorder, .. } => assert_eq!(zorder, vec!["a", "b"]),
            other => panic!("{other:?}"),
        }
        match one("VACUUM raw.t RETAIN 168 HOURS DRY RUN") {
            Stmt::Vacuum {
                retain_hours,
                dry_run,
                ..
            } => {
                assert_eq!(retain_hours, Some(168));
                assert!(dry_run);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            one("VACUUM FULL ANALYZE raw.t"),
            Stmt::Vacuum { .. }
        ));
        match one("ANALYZE VERBOSE raw.t (a, b), u") {
            Stmt::Analyze { tables } => assert_eq!(tables.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(one("ANALYZE"), Stmt::Analyze { tables } if tables.is_empty()));
        assert!(
            matches!(one("ANALYZE (VERBOSE) t"), Stmt::Analyze { tables } if tables.len() == 1)
        );
        match one("RESTORE TABLE raw.t TO VERSION AS OF 2") {
            Stmt::Restore { at, .. } => assert_eq!(at, TimeTravel::Version(2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expectations_come_out_typed() {
        match one(
            "CREATE TABLE t (a int CHECK (a > 0), CONSTRAINT pos EXPECT (a < 10) \
             ON VIOLATION QUARANTINE)",
        ) {
            Stmt::CreateTable { ct, expectations } => {
                assert_eq!(ct.columns.len(), 1);
                assert_eq!(expectations.len(), 1);
                assert_eq!(expectations[0].name, "pos");
            }
            other => panic!("{other:?}"),
        }
        match one("ALTER TABLE raw.t ADD CONSTRAINT c EXPECT (a IS NOT NULL) ON VIOLATION DROP ROW")
        {
            Stmt::AddExpectation { table, expectation } => {
                assert_eq!(table.to_string(), "raw.t");
                assert_eq!(expectation.action, crate::catalog::rules::Action::Drop);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            one("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)"),
            Stmt::Sql(_)
        ));
    }

    #[test]
    fn ctas_column_names_are_typed() {
        match one("CREATE TABLE t (x, y) AS SELECT 1, 2") {
            Stmt::CreateTable { ct, .. } => {
                assert_eq!(ct.columns.len(), 2);
                assert!(ct.query.is_some());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn merge_do_nothing_is_typed() {
        let Stmt::Merge(m) = one("MERGE INTO t USING s ON t.k = s.k \
             WHEN MATCHED AND s.x > 1 THEN DO NOTHING \
             WHEN MATCHED THEN DELETE \
             WHEN NOT MATCHED THEN DO NOTHING")
        else {
            panic!()
        };
        assert_eq!(m.clauses[0].action, merge::MergeAction::DoNothing);
        assert_eq!(m.clauses[2].action, merge::MergeAction::DoNothing);
    }

    #[test]
    fn garbage_is_a_syntax_error() {
        let e = parse("SELEC 1").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Syntax);
        let e = parse("select 1 2").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Syntax);
    }
}
