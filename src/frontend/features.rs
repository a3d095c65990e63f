//! The feature store's statements:
//!
//! ```text
//!  CREATE FEATURE VIEW [IF NOT EXISTS] v ENTITY (k, ...) TIMESTAMP col
//!      [CREATED_AT col] [TTL [INTERVAL] 'text'] [ONLINE] [REFRESH ...]
//!      [CONSTRAINT c EXPECT (cond) [ON VIOLATION ...]] ... AS query
//!  REFRESH FEATURE VIEW v [FULL]
//!  ALTER FEATURE VIEW [IF EXISTS] v SET REFRESH ... | MANUAL
//!  DROP FEATURE VIEW [IF EXISTS] v [, ...] [CASCADE | RESTRICT]
//!  CREATE FEATURE SERVICE [IF NOT EXISTS] s AS v (feature, ...) [, w [(...)]] ...
//!  DROP FEATURE SERVICE [IF EXISTS] s [, ...]
//! ```

use datafusion::sql::sqlparser::ast::{ObjectName, Query};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::names::normalize_ident;
use super::{Stmt, peek_word};
use crate::error::{Error, Result};

/// `CREATE FEATURE VIEW`, as written.
#[derive(Debug, Clone)]
pub struct FeatureViewStmt {
    pub name: ObjectName,
    pub if_not_exists: bool,
    pub entity: Vec<String>,
    pub timestamp: String,
    pub created_at: Option<String>,
    /// The TTL as written (`7 days`).
    pub ttl: Option<String>,
    pub online: bool,
    pub refresh: Option<crate::catalog::schedule::RefreshPolicy>,
    pub expectations: Vec<super::Expectation>,
    pub query: Box<Query>,
}

/// `CREATE FEATURE SERVICE`: each feature view with the features it takes
/// (empty: all of them).
#[derive(Debug, Clone)]
pub struct FeatureServiceStmt {
    pub name: ObjectName,
    pub if_not_exists: bool,
    pub views: Vec<(ObjectName, Vec<String>)>,
}

/// What a `DROP FEATURE ...` drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureObject {
    View,
    Service,
}

/// The statement `p` is at, when it is one of the feature store's.
pub fn parse(p: &mut Parser) -> Result<Option<Stmt>> {
    let at = |n: usize, w: &str| peek_word(p, n, w);
    if at(0, "CREATE") && at(1, "FEATURE") && at(2, "VIEW") {
        skip(p, 3);
        return create_view(p).map(Some);
    }
    if at(0, "CREATE") && at(1, "FEATURE") && at(2, "SERVICE") {
        skip(p, 3);
        return create_service(p).map(Some);
    }
    if at(0, "ALTER") && at(1, "FEATURE") && at(2, "VIEW") {
        return match super::schedule::parse_alter(p, true)? {
            Some(stmt) => Ok(Some(stmt)),
            None => Err(Error::not_supported(
                "ALTER FEATURE VIEW other than SET REFRESH (drop and create it again)",
            )),
        };
    }
    if at(0, "REFRESH") && at(1, "FEATURE") && at(2, "VIEW") {
        skip(p, 3);
        let name = p.parse_object_name(false)?;
        let full = p.parse_keyword(Keyword::FULL);
        return Ok(Some(Stmt::RefreshMaterializedView {
            name,
            full,
            explain: false,
            feature: true,
        }));
    }
    if at(0, "DROP") && at(1, "FEATURE") && (at(2, "VIEW") || at(2, "SERVICE")) {
        let what = if at(2, "VIEW") {
            FeatureObject::View
        } else {
            FeatureObject::Service
        };
        skip(p, 3);
        let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let names = p.parse_comma_separated(|p| p.parse_object_name(false))?;
        let cascade = p.parse_keyword(Keyword::CASCADE);
        if !cascade {
            let _ = p.parse_keyword(Keyword::RESTRICT);
        }
        return Ok(Some(Stmt::DropFeature {
            what,
            names,
            if_exists,
            cascade,
        }));
    }
    Ok(None)
}

fn skip(p: &mut Parser, n: usize) {
    for _ in 0..n {
        p.next_token();
    }
}

fn identifier(p: &mut Parser) -> Result<String> {
    Ok(normalize_ident(&p.parse_identifier()?))
}

fn create_view(p: &mut Parser) -> Result<Stmt> {
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = p.parse_object_name(false)?;
    let mut entity = None;
    let mut timestamp = None;
    let mut created_at = None;
    let mut ttl = None;
    let mut online = false;
    let mut refresh = None;
    let mut expectations = Vec::new();
    loop {
        if peek_word(p, 0, "ENTITY") {
            p.next_token();
            p.expect_token(&Token::LParen)?;
            entity =
                Some(p.parse_comma_separated(|p| Ok(normalize_ident(&p.parse_identifier()?)))?);
            p.expect_token(&Token::RParen)?;
        } else if peek_word(p, 0, "TIMESTAMP") {
            p.next_token();
            timestamp = Some(identifier(p)?);
        } else if peek_word(p, 0, "CREATED_AT") {
            p.next_token();
            created_at = Some(identifier(p)?);
        } else if peek_word(p, 0, "TTL") {
            p.next_token();
            let _ = p.parse_keyword(Keyword::INTERVAL);
            ttl = Some(p.parse_literal_string()?);
        } else if peek_word(p, 0, "ONLINE") {
            p.next_token();
            online = true;
        } else if peek_word(p, 0, "CONSTRAINT") && peek_word(p, 2, "EXPECT") {
            p.next_token();
            let name = identifier(p)?;
            p.next_token();
            expectations.push(super::expect::parse_after_expect(p, name)?);
        } else if peek_word(p, 0, "REFRESH") {
            p.next_token();
            refresh = Some(super::schedule::parse_policy(p)?);
        } else {
            break;
        }
    }
    p.expect_keyword(Keyword::AS)?;
    let query = p.parse_query()?;
    let entity = entity
        .filter(|e| !e.is_empty())
        .ok_or_else(|| Error::syntax("CREATE FEATURE VIEW needs ENTITY (key, ...)"))?;
    let timestamp =
        timestamp.ok_or_else(|| Error::syntax("CREATE FEATURE VIEW needs TIMESTAMP column"))?;
    Ok(Stmt::CreateFeatureView(Box::new(FeatureViewStmt {
        name,
        if_not_exists,
        entity,
        timestamp,
        created_at,
        ttl,
        online,
        refresh,
        expectations,
        query,
    })))
}

fn create_service(p: &mut Parser) -> Result<Stmt> {
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = p.parse_object_name(false)?;
    p.expect_keyword(Keyword::AS)?;
    let views = p.parse_comma_separated(|p| {
        let view = p.parse_object_name(false)?;
        let features = if p.consume_token(&Token::LParen) {
            let f = p.parse_comma_separated(|p| Ok(normalize_ident(&p.parse_identifier()?)))?;
            p.expect_token(&Token::RParen)?;
            f
        } else {
            vec![]
        };
        Ok((view, features))
    })?;
    Ok(Stmt::CreateFeatureService(Box::new(FeatureServiceStmt {
        name,
        if_not_exists,
        views,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::parse as parse_sql;

    #[test]
    fn feature_view_clauses_in_any_order() {
        let s = parse_sql(
            "CREATE FEATURE VIEW f.u ENTITY (user_id, Merchant) TIMESTAMP event_ts TTL INTERVAL '7 days' ONLINE CREATED_AT created CONSTRAINT pos EXPECT (x > 0) ON VIOLATION DROP ROW AS SELECT 1",
        )
        .unwrap();
        let Stmt::CreateFeatureView(v) = &s[0] else {
            panic!("{s:?}")
        };
        assert_eq!(v.entity, ["user_id", "merchant"]);
        assert_eq!(v.timestamp, "event_ts");
        assert_eq!(v.created_at.as_deref(), Some("created"));
        assert_eq!(v.ttl.as_deref(), Some("7 days"));
        assert!(v.online);
        assert_eq!(v.expectations.len(), 1);
        assert_eq!(v.expectations[0].name, "pos");
        assert!(parse_sql("CREATE FEATURE VIEW v TIMESTAMP t AS SELECT 1").is_err());
        assert!(parse_sql("CREATE FEATURE VIEW v ENTITY (k) AS SELECT 1").is_err());
    }

    #[test]
    fn services_and_drops() {
        let s = parse_sql("CREATE FEATURE SERVICE s AS a (x, y), b; DROP FEATURE VIEW IF EXISTS a CASCADE; DROP FEATURE SERVICE s").unwrap();
        let Stmt::CreateFeatureService(svc) = &s[0] else {
            panic!()
        };
        assert_eq!(svc.views.len(), 2);
        assert_eq!(svc.views[0].1, ["x", "y"]);
        assert!(svc.views[1].1.is_empty());
        assert!(matches!(
            &s[1],
            Stmt::DropFeature {
                what: FeatureObject::View,
                if_exists: true,
                cascade: true,
                ..
            }
        ));
        assert!(matches!(
            &s[2],
            Stmt::DropFeature {
                what: FeatureObject::Service,
                ..
            }
        ));
    }
}
