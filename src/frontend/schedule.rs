//! Refresh policies in SQL, on materialized and feature views:
//!
//! ```text
//!  CREATE MATERIALIZED VIEW v REFRESH EVERY INTERVAL '10 minutes' [RETRIES n] AS query
//!  CREATE FEATURE VIEW f ENTITY (k) TIMESTAMP ts REFRESH CRON '*/5 * * * *' AS query
//!  ALTER MATERIALIZED VIEW | FEATURE VIEW [IF EXISTS] v SET REFRESH ON UPSTREAM [RETRIES n]
//!  ALTER MATERIALIZED VIEW | FEATURE VIEW [IF EXISTS] v SET REFRESH MANUAL
//! ```

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, SelectItem, SetExpr,
    Statement,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::names::normalize_ident;
use super::{Stmt, peek_word, word_is};
use crate::catalog::schedule::{MAX_RETRIES, RefreshPolicy, Trigger};
use crate::error::{Error, Result};

fn expected(what: &str, p: &Parser) -> Error {
    Error::syntax(format!(
        "syntax error at or near \"{}\": expected {what}",
        p.peek_token().token
    ))
}

/// The policy after `REFRESH`: `EVERY [INTERVAL] 'text' | CRON 'line' |
/// ON UPSTREAM`, then `[RETRIES n]`.
pub fn parse_policy(p: &mut Parser) -> Result<RefreshPolicy> {
    let trigger = if peek_word(p, 0, "EVERY") {
        p.next_token();
        let _ = p.parse_keyword(Keyword::INTERVAL);
        let text = p
            .parse_literal_string()
            .map_err(|_| expected("an interval such as '10 minutes'", p))?;
        RefreshPolicy::every(&text)?
    } else if peek_word(p, 0, "CRON") {
        p.next_token();
        let text = p
            .parse_literal_string()
            .map_err(|_| expected("a cron line such as '*/5 * * * *'", p))?;
        RefreshPolicy::cron(&text)?
    } else if p.parse_keyword(Keyword::ON) {
        if !peek_word(p, 0, "UPSTREAM") {
            return Err(expected("UPSTREAM", p));
        }
        p.next_token();
        Trigger::OnUpstream
    } else {
        return Err(expected(
            "EVERY INTERVAL '...', CRON '...' or ON UPSTREAM after REFRESH",
            p,
        ));
    };
    let mut retries = 0;
    if peek_word(p, 0, "RETRIES") {
        p.next_token();
        let n = p
            .parse_literal_uint()
            .map_err(|_| expected("a number of retries", p))?;
        if n > MAX_RETRIES as u64 {
            return Err(Error::new(
                crate::error::ErrorKind::InvalidParameter,
                format!("RETRIES {n} is more than the {MAX_RETRIES} allowed"),
            ));
        }
        retries = n as u32;
    }
    Ok(RefreshPolicy { trigger, retries })
}

/// Take `REFRESH ...` (at depth 0, before the `AS`) out of a `CREATE
/// MATERIALIZED VIEW`'s tokens: its policy.
pub fn take_refresh(tokens: &mut Vec<TokenWithSpan>) -> Result<Option<RefreshPolicy>> {
    let mut depth = 0usize;
    let mut at = None;
    for (i, t) in tokens.iter().enumerate() {
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            t if depth == 0 && word_is(t, "AS") => break,
            // Not a view named `refresh`.
            t if depth == 0
                && word_is(t, "REFRESH")
                && i > 0
                && !matches!(&tokens[i - 1].token, Token::Period)
                && !word_is(&tokens[i - 1].token, "VIEW")
                && !word_is(&tokens[i - 1].token, "EXISTS")
                && tokens.get(i + 1).is_some_and(|n| n.token != Token::Period) =>
            {
                at = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(at) = at else {
        return Ok(None);
    };
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).with_tokens_with_locations(tokens[at + 1..].to_vec());
    let policy = parse_policy(&mut p)?;
    let used = p.index();
    tokens.drain(at..at + 1 + used);
    Ok(Some(policy))
}

/// `ALTER MATERIALIZED VIEW | FEATURE VIEW [IF EXISTS] v SET REFRESH ...`,
/// when `p` is at one (after the object words).
pub fn parse_alter(p: &mut Parser, feature: bool) -> Result<Option<Stmt>> {
    // ALTER <kind words> [IF EXISTS] name SET REFRESH
    let skip = 3;
    let mut n = skip;
    if peek_word(p, n, "IF") && peek_word(p, n + 1, "EXISTS") {
        n += 2;
    }
    // name: word (. word)*
    loop {
        if !matches!(p.peek_nth_token(n).token, Token::Word(_)) {
            return Ok(None);
        }
        n += 1;
        if p.peek_nth_token(n).token != Token::Period {
            break;
        }
        n += 1;
    }
    if !(peek_word(p, n, "SET") && peek_word(p, n + 1, "REFRESH")) {
        return Ok(None);
    }
    for _ in 0..skip {
        p.next_token();
    }
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let name = p.parse_object_name(false)?;
    p.next_token();
    p.next_token();
    let policy = if peek_word(p, 0, "MANUAL") || peek_word(p, 0, "NONE") {
        p.next_token();
        None
    } else {
        Some(parse_policy(p)?)
    };
    Ok(Some(Stmt::AlterRefresh {
        name,
        feature,
        if_exists,
        policy,
    }))
}

/// The argument of `SELECT sluice.refresh(arg)` or `CALL
/// sluice.refresh(arg)`, when `s` is one.
pub fn refresh_call(s: &Statement) -> Option<Stmt> {
    let function = match s {
        Statement::Call(f) => f,
        Statement::Query(q) => {
            if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() {
                return None;
            }
            let SetExpr::Select(sel) = q.body.as_ref() else {
                return None;
            };
            let plain = sel.from.is_empty()
                && sel.selection.is_none()
                && sel.having.is_none()
                && sel.distinct.is_none()
                && matches!(&sel.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
            if !plain || sel.projection.len() != 1 {
                return None;
            }
            let expr = match &sel.projection[0] {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
                _ => return None,
            };
            let Expr::Function(f) = expr else {
                return None;
            };
            f
        }
        _ => return None,
    };
    let name: Vec<String> = function
        .name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(normalize_ident))
        .collect();
    if name != ["sluice", "refresh"] {
        return None;
    }
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => Some(Stmt::RefreshCall {
            arg: Box::new(e.clone()),
            call: matches!(s, Statement::Call(_)),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::schedule::Trigger;
    use crate::frontend::{Stmt, parse};

    fn one(sql: &str) -> Stmt {
        parse(sql).unwrap().pop().unwrap()
    }

    #[test]
    fn policies_on_create_and_alter() {
        let Stmt::CreateMaterializedView { refresh, cv, .. } = one(
            "CREATE MATERIALIZED VIEW m.v REFRESH EVERY INTERVAL '10 minutes' RETRIES 2 AS SELECT 1 AS x",
        ) else {
            panic!("not a materialized view")
        };
        let p = refresh.unwrap();
        assert_eq!(p.retries, 2);
        assert!(matches!(
            p.trigger,
            Trigger::Every {
                micros: 600_000_000,
                ..
            }
        ));
        assert_eq!(cv.name.to_string(), "m.v");
        let Stmt::CreateMaterializedView { refresh, .. } = one(
            "CREATE MATERIALIZED VIEW v PARTITIONED BY (x) REFRESH ON UPSTREAM AS SELECT 1 AS x",
        ) else {
            panic!("not a materialized view")
        };
        assert_eq!(refresh.unwrap().trigger, Trigger::OnUpstream);
        let Stmt::CreateFeatureView(f) = one(
            "CREATE FEATURE VIEW f ENTITY (k) TIMESTAMP ts REFRESH CRON '*/5 * * * *' ONLINE AS SELECT 1 AS k",
        ) else {
            panic!("not a feature view")
        };
        assert!(f.online);
        assert!(matches!(f.refresh.unwrap().trigger, Trigger::Cron { .. }));
        let Stmt::AlterRefresh {
            name,
            feature,
            if_exists,
            policy,
        } = one("ALTER FEATURE VIEW IF EXISTS s.f SET REFRESH MANUAL")
        else {
            panic!("not an alter")
        };
        assert!(feature && if_exists && policy.is_none());
        assert_eq!(name.to_string(), "s.f");
        let Stmt::AlterRefresh { policy, .. } =
            one("ALTER MATERIALIZED VIEW v SET REFRESH EVERY '5 seconds'")
        else {
            panic!("not an alter")
        };
        assert!(policy.is_some());
    }

    #[test]
    fn bad_policies_are_refused_at_parse() {
        for (sql, says) in [
            (
                "CREATE MATERIALIZED VIEW v REFRESH EVERY INTERVAL '1 month' AS SELECT 1",
                "no fixed length",
            ),
            (
                "CREATE MATERIALIZED VIEW v REFRESH CRON '* * *' AS SELECT 1",
                "expected 5 fields",
            ),
            (
                "CREATE MATERIALIZED VIEW v REFRESH SOMETIMES AS SELECT 1",
                "expected EVERY",
            ),
            (
                "ALTER MATERIALIZED VIEW v SET REFRESH ON DOWNSTREAM",
                "expected UPSTREAM",
            ),
        ] {
            let e = parse(sql).unwrap_err();
            assert!(e.message.contains(says), "{sql}: {}", e.message);
        }
    }

    fn sql(text: &str) -> datafusion::sql::sqlparser::ast::Statement {
        use datafusion::sql::sqlparser::parser::Parser;
        Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            text,
        )
        .unwrap()
        .remove(0)
    }

    #[test]
    fn refresh_calls_are_recognized() {
        for text in [
            "SELECT sluice.refresh('a')",
            "select SLUICE.Refresh($1)",
            "SELECT sluice.refresh('m.v') AS status",
            "CALL sluice.refresh('a')",
        ] {
            assert!(
                super::refresh_call(&sql(text)).is_some(),
                "{text}: {:?}",
                sql(text)
            );
        }
        for text in [
            "SELECT refresh('a')",
            "SELECT sluice.refresh('a'), 1",
            "SELECT sluice.refresh('a') FROM t",
            "SELECT sluice.refresh('a', 'b')",
        ] {
            assert!(super::refresh_call(&sql(text)).is_none(), "{text}");
        }
    }
}
