//! `training_set('service', 'label query' [, as_of => version | 'timestamp']
//! [, timestamp => 'column'])`: every feature of a feature service joined
//! to each label row as it was known at the label's time.
//!
//! The call is replaced, where it stands in FROM, by a query: the label
//! query, then one point-in-time join per feature view of the service,
//!
//! ```text
//!  SELECT __label.*, v.f AS "v__f", ...
//!  FROM (label query) __label
//!  ASOF LEFT JOIN v [VERSION AS OF n | TIMESTAMP AS OF 't']
//!       -- v.event_ts <= label time, v.created_at <= label time, within the TTL
//!       ON __label.key = v.key ...
//! ```
//!
//! so the names it reads are resolved, bound and planned like any query's.
//! The label query names its time column `ts` (or the one `timestamp =>`
//! gives) and has a column for each entity key of every view.

use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, Query, SetExpr, Statement, TableAlias, TableFactor, Value,
};

use crate::catalog::{FeatureServiceDef, Object};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::Stmt;
use crate::frontend::asof::MATCH_MARKER;
use crate::frontend::names::function_argument;

/// The name the function is called by.
pub const NAME: &str = "training_set";

/// How the catalog is asked for a service and its views.
pub trait FeatureCatalog {
    fn service(&self, name: &str) -> Result<(String, std::sync::Arc<FeatureServiceDef>)>;
    fn feature_view(&self, schema: &str, name: &str) -> Result<Object>;
}

/// The query a `training_set(...)` call stands for, as a derived table
/// named by `alias` (or `training_set`).
pub fn expand(
    catalog: &dyn FeatureCatalog,
    args: &[FunctionArg],
    alias: Option<TableAlias>,
) -> Result<TableFactor> {
    let mut positional = Vec::new();
    let mut as_of = None;
    let mut time_column = "ts".to_string();
    for a in args {
        match function_argument(a) {
            Some((None, e)) => positional.push(e),
            Some((Some(name), e)) => match name.as_str() {
                "as_of" => as_of = Some(e.clone()),
                "timestamp" => time_column = string(e, "timestamp")?,
                other => {
                    return Err(Error::syntax(format!(
                        "training_set has no argument \"{other}\" (as_of, timestamp)"
                    )));
                }
            },
            None => {
                return Err(Error::syntax(format!(
                    "unsupported argument {a} of training_set"
                )));
            }
        }
    }
    let [service, labels] = positional.as_slice() else {
        return Err(Error::syntax(
            "training_set takes a feature service name and a label query",
        ));
    };
    let service = string(service, "the feature service")?;
    let label_sql = string(labels, "the label query")?;
    let label_query = one_query(&label_sql, "the label query")?;
    let (_, def) = catalog.service(&service)?;
    let at = match &as_of {
        None => String::new(),
        Some(SqlExpr::Value(v)) => match &v.value {
            Value::Number(n, _) => format!(" VERSION AS OF {n}"),
            Value::SingleQuotedString(s) => format!(" TIMESTAMP AS OF {}", literal(s)),
            _ => return Err(bad_as_of()),
        },
        Some(_) => return Err(bad_as_of()),
    };

    let label = "__label";
    let time = format!("{label}.{}", ident(&time_column));
    let mut select = vec![format!("{label}.*")];
    let mut joins = String::new();
    for (i, sv) in def.views.iter().enumerate() {
        let o = catalog.feature_view(&sv.view.schema, &sv.view.name)?;
        let f = o
            .feature()
            .ok_or_else(|| Error::internal("a feature service names a view without features"))?;
        let v = format!("__f{i}");
        for feature in &sv.features {
            select.push(format!(
                "{v}.{} AS {}",
                ident(feature),
                ident(&format!("{}__{feature}", sv.view.name))
            ));
        }
        let cutoff = f
            .created_at
            .as_ref()
            .map(|c| format!("{v}.{}", ident(c)))
            .unwrap_or_else(|| "NULL".into());
        let ttl = f
            .ttl_micros
            .map(|t| t.to_string())
            .unwrap_or_else(|| "NULL".into());
        let keys: String = f
            .entity
            .iter()
            .map(|k| format!(" AND {label}.{k} = {v}.{k}", k = ident(k)))
            .collect();
        joins.push_str(&format!(
            " LEFT JOIN {}.{}{at} AS {v} ON {MATCH_MARKER}({time} >= {v}.{}, {cutoff}, {ttl}){keys}",
            ident(&sv.view.schema),
            ident(&sv.view.name),
            ident(&f.timestamp),
        ));
    }
    let skeleton = format!(
        "SELECT {} FROM (SELECT 1) AS {label}{joins}",
        select.join(", ")
    );
    let mut query = one_query(&skeleton, "training_set")?;
    // The label query goes in as parsed, never as text.
    if let SetExpr::Select(s) = query.body.as_mut()
        && let Some(from) = s.from.first_mut()
        && let TableFactor::Derived { subquery, .. } = &mut from.relation
    {
        **subquery = label_query;
    } else {
        return Err(Error::internal("training_set: unexpected skeleton"));
    }
    Ok(TableFactor::Derived {
        lateral: false,
        subquery: Box::new(query),
        alias: Some(alias.unwrap_or_else(|| TableAlias {
            explicit: true,
            name: datafusion::sql::sqlparser::ast::Ident::new(NAME),
            columns: vec![],
            at: None,
        })),
        sample: None,
    })
}

fn bad_as_of() -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        "training_set's as_of is a table version (a number) or a timestamp ('2026-01-01 00:00:00')",
    )
}

fn string(e: &SqlExpr, what: &str) -> Result<String> {
    if let SqlExpr::Value(v) = e {
        match &v.value {
            Value::SingleQuotedString(s) => return Ok(s.clone()),
            Value::DollarQuotedString(d) => return Ok(d.value.clone()),
            _ => {}
        }
    }
    Err(Error::syntax(format!("{what} must be a string literal")))
}

fn one_query(sql: &str, what: &str) -> Result<Query> {
    let mut stmts = crate::frontend::parse(sql)?;
    match (stmts.pop(), stmts.is_empty()) {
        (Some(Stmt::Sql(s)), true) => match *s {
            Statement::Query(q) => Ok(*q),
            _ => Err(Error::syntax(format!("{what} must be a query"))),
        },
        _ => Err(Error::syntax(format!("{what} must be one query"))),
    }
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A `training_set(...)` call as written: service, label query, `as_of`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub service: String,
    pub labels: String,
    pub as_of: Option<String>,
}

/// The `training_set` calls of a query, before they are expanded.
pub fn calls(query: &Query) -> Vec<Call> {
    use std::ops::ControlFlow;
    struct V(Vec<Call>);
    impl datafusion::sql::sqlparser::ast::Visitor for V {
        type Break = ();
        fn pre_visit_table_factor(&mut self, f: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name,
                args: Some(args),
                ..
            } = f
                && crate::frontend::names::name_parts(name).as_slice() == [NAME]
            {
                let arguments = args.args.iter().filter_map(function_argument);
                let mut strings = arguments
                    .clone()
                    .filter(|(name, _)| name.is_none())
                    .filter_map(|(_, e)| string(e, "").ok());
                let as_of = arguments
                    .filter(|(name, _)| name.as_deref() == Some("as_of"))
                    .map(|(_, e)| match e {
                        SqlExpr::Value(v) => match &v.value {
                            Value::SingleQuotedString(s) => s.clone(),
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    })
                    .next();
                if let (Some(service), Some(labels)) = (strings.next(), strings.next()) {
                    self.0.push(Call {
                        service,
                        labels,
                        as_of,
                    });
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = V(Vec::new());
    let _ = crate::visit::walk(query, &mut v);
    v.0
}
