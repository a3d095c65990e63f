//! SQL text to statements.
//!
//! Standard PostgreSQL statements go to sqlparser's PostgreSQL dialect. The
//! lakehouse forms PostgreSQL lacks are parsed here, token by token:
//!
//! ```text
//!  DESCRIBE HISTORY t [LIMIT n]
//!  OPTIMIZE t [ZORDER BY (c, ...)]
//!  VACUUM t [RETAIN n HOURS] [DRY RUN]
//!  RESTORE TABLE t TO VERSION AS OF n | TO TIMESTAMP AS OF 'ts'
//!  COPY ...   (see [`copy`]: every PostgreSQL and psql spelling)
//!  CREATE EXTERNAL TABLE t [(cols)] STORED AS fmt LOCATION 'path' [OPTIONS (...)]
//!  ... FROM t VERSION AS OF n | TIMESTAMP AS OF 'ts'   (any table reference)
//! ```
//!
//! Time-travel references are rewritten before parsing into names in a
//! schema the catalog resolves (`"__time_travel"."public.t@v3"`).

pub mod copy;
pub mod names;

use datafusion::sql::sqlparser::ast::{ObjectName, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

use crate::catalog::provider::{TIME_TRAVEL_SCHEMA, time_travel_name};
use crate::error::{Error, Result};
use crate::lake::TimeTravel;

/// One statement Sluice accepts.
#[derive(Debug, Clone)]
pub enum Stmt {
    /// A statement sqlparser understands.
    Sql(Box<Statement>),
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
    Restore {
        table: ObjectName,
        at: TimeTravel,
    },
    Copy(Box<copy::CopyStmt>),
    CreateExternalTable(Box<ExternalTable>),
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
///
/// `default_schema` qualifies unqualified time-travel references.
pub fn parse(sql: &str, default_schema: &str) -> Result<Vec<Stmt>> {
    let dialect = PostgreSqlDialect {};
    if looks_like_client_introspection(sql) {
        // psql and BI tools send catalog queries that need the
        // pg_catalog rewrites (regclass casts, OPERATOR(...), ...).
        let compat = PostgresCompatibilityParser::new();
        if let Ok(stmts) = compat.parse(sql) {
            return Ok(stmts
                .into_iter()
                .map(|mut s| {
                    without_trigger_subqueries(&mut s);
                    regclass_names(&mut s);
                    Stmt::Sql(Box::new(s))
                })
                .collect());
        }
    }
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| Error::syntax(format!("syntax error: {e}")))?;
    let tokens = rewrite_time_travel(tokens, default_schema);
    let tokens = rewrite_merge_do_nothing(tokens);
    let tokens = rewrite_named_args(tokens);
    let tokens = rewrite_expectations(tokens)?;
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        let stmt = match parse_extension(&mut parser)? {
            Some(s) => s,
            None => Stmt::Sql(Box::new(parser.parse_statement()?)),
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

/// `pg_trigger` is always empty, so the values a query over it alone
/// selects are never computed: its scalar subqueries (psql's correlated
/// "parent trigger" lookup, which DataFusion cannot plan) become NULL.
fn without_trigger_subqueries(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        Expr, SetExpr, TableFactor, Value, visit_expressions_mut,
    };
    let Statement::Query(q) = stmt else { return };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let only_triggers = match select.from.as_slice() {
        [t] => {
            t.joins.is_empty()
                && matches!(&t.relation, TableFactor::Table { name, .. }
                    if name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| i.value.eq_ignore_ascii_case("pg_trigger")))
        }
        _ => false,
    };
    if !only_triggers {
        return;
    }
    for item in select.projection.iter_mut() {
        let _ = visit_expressions_mut(item, |e: &mut Expr| {
            if matches!(e, Expr::Subquery(_)) {
                *e = Expr::Value(Value::Null.into());
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
}

/// A select item that is a relation OID cast to `regclass` shows the
/// relation's name, as in PostgreSQL (the
/// compatibility layer turns the cast into the OID). Only whole select
/// items: a regclass inside an expression (compared, cast on to oid)
/// stays an OID.
fn regclass_names(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments,
        Ident, SelectItem, SetExpr,
    };
    let Statement::Query(q) = stmt else { return };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    for item in select.projection.iter_mut() {
        let (e, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e.clone(), None),
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
            _ => continue,
        };
        let Expr::Cast {
            expr, data_type, ..
        } = &e
        else {
            continue;
        };
        if !data_type
            .to_string()
            .to_ascii_lowercase()
            .ends_with("regclass")
            || matches!(expr.as_ref(), Expr::Value(_))
        {
            continue;
        }
        let arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(expr.as_ref().clone()));
        let call = Expr::Function(Function {
            name: ObjectName::from(vec![Ident::new(
                crate::catalog::pg_constraints::REGCLASS_NAME,
            )]),
            uses_odbc_syntax: false,
            parameters: FunctionArguments::None,
            args: FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![arg],
                clauses: vec![],
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: vec![],
        });
        // An alias named like the column would clash with it (ORDER BY).
        *item = match alias {
            Some(alias) => SelectItem::ExprWithAlias { expr: call, alias },
            None => SelectItem::UnnamedExpr(call),
        };
    }
}

fn looks_like_client_introspection(sql: &str) -> bool {
    let t = sql.trim_start().to_ascii_lowercase();
    (t.starts_with("select") || t.starts_with("with")) && t.contains("pg_catalog")
}

fn word_is(t: &Token, kw: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

fn peek_word(p: &Parser, n: usize, kw: &str) -> bool {
    word_is(&p.peek_nth_token(n).token, kw)
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

fn parse_extension(p: &mut Parser) -> Result<Option<Stmt>> {
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
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let sql = format!(
            "CREATE TABLE {}{name} AS SELECT * FROM ({query}) AS __sluice_ctas ({})",
            if if_not_exists { "IF NOT EXISTS " } else { "" },
            columns.join(", ")
        );
        let stmt = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&sql)?
            .parse_statement()?;
        return Ok(Some(Stmt::Sql(Box::new(stmt))));
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
    if peek_word(p, 0, "VACUUM") {
        p.next_token();
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

/// Table functions whose `name => value` arguments are passed on as a
/// `'name =>'` marker followed by the value (DataFusion's planner drops
/// argument names).
const NAMED_ARG_FUNCTIONS: &[&str] = &["read_csv", "read_json", "read_parquet", "postgres_query"];

fn rewrite_named_args(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    // Paren depth inside the current call of one of those functions.
    let mut depth = 0usize;
    let mut pending_call = false;
    for t in tokens {
        match &t.token {
            Token::Word(w)
                if depth == 0
                    && NAMED_ARG_FUNCTIONS
                        .iter()
                        .any(|f| w.value.eq_ignore_ascii_case(f)) =>
            {
                pending_call = true;
            }
            Token::LParen if pending_call || depth > 0 => {
                depth += 1;
                pending_call = false;
            }
            Token::RParen if depth > 0 => depth -= 1,
            Token::RArrow if depth == 1 => {
                // Replace the argument name before `=>` with the marker.
                while out.last().is_some_and(|p| is_ws(&p.token)) {
                    out.pop();
                }
                if let Some(TokenWithSpan {
                    token: Token::Word(name),
                    span,
                }) = out.last().cloned()
                {
                    out.pop();
                    out.push(TokenWithSpan::new(
                        Token::SingleQuotedString(format!(
                            "{}{}",
                            name.value,
                            crate::ingest::files::NAMED_ARG_SUFFIX
                        )),
                        span,
                    ));
                    out.push(TokenWithSpan::new(Token::Comma, span));
                    continue;
                }
            }
            t if !is_ws(t) => pending_call = false,
            _ => {}
        }
        out.push(t);
    }
    out
}

fn is_ws(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

/// The function a CHECK carries an expectation in (see
/// [`rewrite_expectations`]); never callable from SQL.
pub const EXPECT_MARKER: &str = "__sluice_expect";

/// `CONSTRAINT name EXPECT (cond) [ON VIOLATION FAIL [UPDATE] | DROP ROW |
/// QUARANTINE]` becomes `CONSTRAINT name CHECK (__sluice_expect((cond),
/// 'action'))`, which sqlparser parses as a table constraint of CREATE
/// TABLE or ALTER TABLE ADD; the DDL turns it back into an expectation.
fn rewrite_expectations(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    // Index of the next non-whitespace token at or after `j`.
    let next = |j: usize| {
        let mut j = j;
        while j < tokens.len() && is_ws(&tokens[j].token) {
            j += 1;
        }
        j
    };
    while i < tokens.len() {
        let t = &tokens[i];
        if word_is(&t.token, "EXPECT")
            && out
                .iter()
                .rev()
                .filter(|p| !is_ws(&p.token))
                .nth(1)
                .is_some_and(|p| word_is(&p.token, "CONSTRAINT"))
        {
            let span = t.span;
            let open = next(i + 1);
            if tokens.get(open).map(|t| &t.token) != Some(&Token::LParen) {
                return Err(Error::syntax("syntax error: expected ( after EXPECT"));
            }
            // The condition, up to the matching parenthesis.
            let mut depth = 0usize;
            let mut close = open;
            for (j, t) in tokens.iter().enumerate().skip(open) {
                match t.token {
                    Token::LParen => depth += 1,
                    Token::RParen => {
                        depth -= 1;
                        if depth == 0 {
                            close = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            if close == open {
                return Err(Error::syntax("syntax error: unterminated EXPECT condition"));
            }
            let mut after = next(close + 1);
            let mut action = "record";
            if tokens.get(after).is_some_and(|t| word_is(&t.token, "ON"))
                && tokens
                    .get(next(after + 1))
                    .is_some_and(|t| word_is(&t.token, "VIOLATION"))
            {
                let a = next(next(after + 1) + 1);
                let word =
                    |j: usize, kw: &str| tokens.get(j).is_some_and(|t| word_is(&t.token, kw));
                if word(a, "FAIL") {
                    action = "fail";
                    after = next(a + 1);
                    if word(after, "UPDATE") {
                        after = next(after + 1);
                    }
                } else if word(a, "DROP") && word(next(a + 1), "ROW") {
                    action = "drop";
                    after = next(next(a + 1) + 1);
                } else if word(a, "QUARANTINE") {
                    action = "quarantine";
                    after = next(a + 1);
                } else {
                    return Err(Error::syntax(
                        "syntax error: ON VIOLATION takes FAIL, DROP ROW or QUARANTINE",
                    ));
                }
            }
            let tok = |token: Token| TokenWithSpan::new(token, span);
            out.push(tok(Token::make_keyword("CHECK")));
            out.push(tok(Token::LParen));
            out.push(tok(Token::make_word(EXPECT_MARKER, None)));
            out.push(tok(Token::LParen));
            out.extend(tokens[open..=close].iter().cloned());
            out.push(tok(Token::Comma));
            out.push(tok(Token::SingleQuotedString(action.to_string())));
            out.push(tok(Token::RParen));
            out.push(tok(Token::RParen));
            out.push(tok(Token::Whitespace(
                datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
            )));
            i = after;
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    Ok(out)
}

/// Rewrite `name VERSION AS OF n` / `name TIMESTAMP AS OF 'ts'` into a
/// reference to the time-travel schema, keeping the table's own name as the
/// alias so qualified column references still resolve.
fn rewrite_time_travel(tokens: Vec<TokenWithSpan>, default_schema: &str) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i].token;
        let is_spec = (word_is(t, "VERSION") || word_is(t, "TIMESTAMP")) && {
            let rest: Vec<&Token> = tokens[i + 1..]
                .iter()
                .map(|t| &t.token)
                .filter(|t| !is_ws(t))
                .take(3)
                .collect();
            rest.len() == 3
                && word_is(rest[0], "AS")
                && word_is(rest[1], "OF")
                && matches!(rest[2], Token::Number(..) | Token::SingleQuotedString(_))
        };
        if !is_spec {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        // Collect the object name that precedes the spec: ident (. ident)*
        let mut j = out.len();
        while j > 0 && is_ws(&out[j - 1].token) {
            j -= 1;
        }
        let end = j;
        let mut parts: Vec<String> = Vec::new();
        loop {
            match out.get(j.wrapping_sub(1)).map(|t| &t.token) {
                Some(Token::Word(w)) if j > 0 => {
                    parts.push(ident_value(w));
                    j -= 1;
                    if j > 0 && out[j - 1].token == Token::Period {
                        j -= 1;
                        continue;
                    }
                }
                _ => {}
            }
            break;
        }
        // Do not touch `RESTORE TABLE t TO VERSION AS OF n`.
        let preceded_by_to = parts.len() == 1 && word_is(&out[end - 1].token, "TO");
        if parts.is_empty() || preceded_by_to {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        parts.reverse();
        let (schema, table) = match parts.as_slice() {
            [t] => (default_schema.to_string(), t.clone()),
            [s, t] => (s.clone(), t.clone()),
            [_, s, t] => (s.clone(), t.clone()),
            _ => {
                out.push(tokens[i].clone());
                i += 1;
                continue;
            }
        };
        // Consume VERSION/TIMESTAMP AS OF <literal>.
        let mut k = i + 1;
        let mut seen = 0;
        let mut literal = Token::EOF;
        while k < tokens.len() && seen < 3 {
            if !is_ws(&tokens[k].token) {
                seen += 1;
                if seen == 3 {
                    literal = tokens[k].token.clone();
                }
            }
            k += 1;
        }
        let at = match (&literal, word_is(t, "VERSION")) {
            (Token::Number(n, _), true) => match n.parse::<i64>() {
                Ok(v) => TimeTravel::Version(v),
                Err(_) => {
                    out.push(tokens[i].clone());
                    i += 1;
                    continue;
                }
            },
            (Token::SingleQuotedString(s), false) => TimeTravel::Timestamp(s.clone()),
            (Token::Number(n, _), false) => TimeTravel::Timestamp(n.clone()),
            (Token::SingleQuotedString(s), true) => match s.trim().parse::<i64>() {
                Ok(v) => TimeTravel::Version(v),
                Err(_) => TimeTravel::Timestamp(s.clone()),
            },
            _ => unreachable!("checked above"),
        };
        let span = tokens[i].span;
        out.truncate(j);
        let mk = |token: Token| TokenWithSpan { token, span };
        out.push(mk(Token::Word(Word {
            value: TIME_TRAVEL_SCHEMA.to_string(),
            quote_style: Some('"'),
            keyword: Keyword::NoKeyword,
        })));
        out.push(mk(Token::Period));
        out.push(mk(Token::Word(Word {
            value: time_travel_name(&schema, &table, &at),
            quote_style: Some('"'),
            keyword: Keyword::NoKeyword,
        })));
        // Keep the table's name as alias unless the user gave one.
        let next = tokens[k..].iter().map(|t| &t.token).find(|t| !is_ws(t));
        let has_alias = match next {
            Some(Token::Word(w)) => {
                w.keyword == Keyword::AS
                    || w.keyword == Keyword::NoKeyword
                    || w.quote_style.is_some()
            }
            _ => false,
        };
        if !has_alias {
            out.push(mk(Token::Whitespace(
                datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
            )));
            out.push(mk(Token::Word(Word {
                value: table.clone(),
                quote_style: Some('"'),
                keyword: Keyword::NoKeyword,
            })));
        }
        i = k;
    }
    out
}

/// Column name that marks a MERGE `DO NOTHING` action, which sqlparser
/// does not parse: `THEN DO NOTHING` becomes an action on this column.
pub const MERGE_DO_NOTHING: &str = "__sluice_do_nothing";

fn rewrite_merge_do_nothing(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    use datafusion::sql::sqlparser::tokenizer::Whitespace;
    let significant = |v: &[TokenWithSpan]| -> Vec<usize> {
        (0..v.len()).filter(|&i| !is_ws(&v[i].token)).collect()
    };
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i].token;
        if word_is(t, "DO") {
            let sig = significant(&out);
            let prev_then = sig.last().is_some_and(|&j| word_is(&out[j].token, "THEN"));
            let next = tokens[i + 1..].iter().position(|x| !is_ws(&x.token));
            if let (true, Some(k)) = (prev_then, next)
                && word_is(&tokens[i + 1 + k].token, "NOTHING")
            {
                // Which clause: the words after the last WHEN.
                let when = sig.iter().rposition(|&j| word_is(&out[j].token, "WHEN"));
                let words: Vec<&Token> = when
                    .map(|w| sig[w + 1..].iter().map(|&j| &out[j].token).collect())
                    .unwrap_or_default();
                let not_matched = words.first().is_some_and(|t| word_is(t, "NOT"))
                    && !words.iter().any(|t| word_is(t, "SOURCE"));
                let span = tokens[i].span;
                let word = |v: &str, q: Option<char>, keyword: Keyword| TokenWithSpan {
                    token: Token::Word(Word {
                        value: v.to_string(),
                        quote_style: q,
                        keyword,
                    }),
                    span,
                };
                let tok = |t: Token| TokenWithSpan { token: t, span };
                let sp = || tok(Token::Whitespace(Whitespace::Space));
                let marker = word(MERGE_DO_NOTHING, Some('"'), Keyword::NoKeyword);
                let null = word("NULL", None, Keyword::NULL);
                if not_matched {
                    out.extend([
                        word("INSERT", None, Keyword::INSERT),
                        sp(),
                        tok(Token::LParen),
                        marker,
                        tok(Token::RParen),
                        sp(),
                        word("VALUES", None, Keyword::VALUES),
                        sp(),
                        tok(Token::LParen),
                        null,
                        tok(Token::RParen),
                    ]);
                } else {
                    out.extend([
                        word("UPDATE", None, Keyword::UPDATE),
                        sp(),
                        word("SET", None, Keyword::SET),
                        sp(),
                        marker,
                        sp(),
                        tok(Token::Eq),
                        sp(),
                        null,
                    ]);
                }
                i += k + 2;
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

fn ident_value(w: &Word) -> String {
    if w.quote_style.is_some() {
        w.value.clone()
    } else {
        w.value.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Stmt {
        let mut v = parse(sql, "public").unwrap();
        assert_eq!(v.len(), 1, "{sql}");
        v.remove(0)
    }

    #[test]
    fn named_arguments_of_table_functions_become_markers() {
        let Stmt::Sql(s) =
            one("SELECT * FROM read_csv('x.csv', header => false, delimiter => ';')")
        else {
            panic!()
        };
        let text = s.to_string();
        assert!(
            text.contains("read_csv('x.csv', 'header =>', false, 'delimiter =>', ';')"),
            "{text}"
        );
    }

    #[test]
    fn several_statements_split() {
        let v = parse("select 1; select 2;; ", "public").unwrap();
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn version_as_of_becomes_time_travel_reference() {
        let Stmt::Sql(s) = one("SELECT t.a FROM raw.t VERSION AS OF 3 WHERE a > 1") else {
            panic!()
        };
        let text = s.to_string();
        assert!(
            text.contains("\"__time_travel\".\"raw.t@v3\" \"t\""),
            "{text}"
        );
    }

    #[test]
    fn timestamp_as_of_keeps_user_alias() {
        let Stmt::Sql(s) = one("select * from t TIMESTAMP AS OF '2026-01-01 00:00:00' AS x") else {
            panic!()
        };
        let text = s.to_string();
        assert!(
            text.contains("\"public.t@t2026-01-01 00:00:00\" AS x"),
            "{text}"
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
        match one("RESTORE TABLE raw.t TO VERSION AS OF 2") {
            Stmt::Restore { at, .. } => assert_eq!(at, TimeTravel::Version(2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn merge_do_nothing_becomes_a_marked_action() {
        let Stmt::Sql(s) = one("MERGE INTO t USING s ON t.k = s.k \
             WHEN MATCHED AND s.x > 1 THEN DO NOTHING \
             WHEN MATCHED THEN DELETE \
             WHEN NOT MATCHED THEN DO NOTHING")
        else {
            panic!()
        };
        let text = s.to_string();
        assert!(
            text.contains("UPDATE SET \"__sluice_do_nothing\" = NULL"),
            "{text}"
        );
        assert!(
            text.contains("INSERT (\"__sluice_do_nothing\") VALUES (NULL)"),
            "{text}"
        );
    }

    #[test]
    fn garbage_is_a_syntax_error() {
        let e = parse("SELEC 1", "public").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Syntax);
        let e = parse("select 1 2", "public").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Syntax);
    }
}
