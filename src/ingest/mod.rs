//! Getting data in: COPY's wire formats decoded into Arrow batches, and the
//! table functions that read files, HTTP APIs, logs and other databases.
//!
//! ```text
//!  CopyData pieces ─▶ text::TextDecoder (text, CSV) ─▶ RawRows (text columns)
//!                  ─▶ convert::Converter (column types) ─▶ RecordBatch
//!                  ─▶ binary::BinaryDecoder (binary) ────────────────▶ RecordBatch
//!
//!  read_csv / read_json / read_parquet ─▶ files (object stores, DataFusion readers)
//!                                     └─▶ web (http:// and https://: plain GET, pages)
//!                                     └─▶ http_parquet (a URL's body kept in a temporary file)
//!  read_text / read_log ─▶ source (files or a URL, gzip, lines) ─▶ logs (parsers)
//! ```

pub mod binary;
pub mod convert;
pub mod files;
pub mod http;
pub mod http_parquet;
pub mod jsonpath;
pub mod logs;
pub mod pg_tls;
pub mod postgres;
pub mod records;
pub mod roots;
pub mod source;
pub mod text;
pub mod web;

use std::sync::Arc;

use datafusion::catalog::{Session, TableProvider};
use datafusion::logical_expr::Expr;

/// A table function that takes named arguments
/// (`read_csv('x.csv', header => false)`): positional arguments in order,
/// named ones with their lower-case names. Arguments are constants.
pub trait NamedTableFunction: Send + Sync + std::fmt::Debug {
    fn call_named(
        &self,
        session: &dyn Session,
        positional: &[Expr],
        named: &[(String, Expr)],
    ) -> datafusion::error::Result<Arc<dyn TableProvider>>;
}

/// Sluice's table functions, by name.
pub fn table_functions(
    lake: &Arc<crate::lake::Lake>,
) -> Vec<(&'static str, Arc<dyn NamedTableFunction>)> {
    use files::{FileKind, ReadFiles};
    let mut out: Vec<(&'static str, Arc<dyn NamedTableFunction>)> =
        vec![("postgres_query", Arc::new(postgres::PostgresQuery))];
    for kind in [FileKind::Csv, FileKind::Json, FileKind::Parquet] {
        out.push((
            kind.name(),
            Arc::new(ReadFiles {
                kind,
                lake: lake.clone(),
            }),
        ));
    }
    for log in [false, true] {
        let f = logs::ReadLines {
            log,
            lake: lake.clone(),
        };
        out.push((if log { "read_log" } else { "read_text" }, Arc::new(f)));
    }
    out
}

/// The table functions that read what the server can reach (its files,
/// the network): the role they need is checked before planning.
pub const SERVER_SIDE_READERS: &[&str] = &[
    "read_csv",
    "read_json",
    "read_parquet",
    "read_text",
    "read_log",
    "postgres_query",
];

/// The value of a constant argument as text (`None` for NULL): literals,
/// expressions of literals (`'2026-01-01'::timestamptz`, `now() - interval
/// '1 day'`) and scalar subqueries (`(SELECT max(updated_at) FROM t)`),
/// which run here, while the statement is planned.
pub fn constant_text(session: &dyn Session, e: &Expr) -> crate::error::Result<Option<String>> {
    use crate::error::{Error, ErrorKind};
    use datafusion::common::ScalarValue;
    let not_constant = || {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("table function arguments must be constants or scalar subqueries, not {e}"),
        )
    };
    let value = match e {
        Expr::Literal(v, _) => v.clone(),
        Expr::ScalarSubquery(sq) => crate::interrupt::block_on(async {
            let plan = session.create_physical_plan(&sq.subquery).await?;
            let batches = datafusion::physical_plan::collect(plan, session.task_ctx()).await?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            if rows > 1 {
                return Err(Error::new(
                    ErrorKind::CardinalityViolation,
                    "more than one row returned by a subquery used as an expression",
                ));
            }
            match batches.iter().find(|b| b.num_rows() > 0) {
                Some(b) if b.num_columns() == 1 => Ok(ScalarValue::try_from_array(b.column(0), 0)?),
                Some(_) => Err(Error::syntax("subquery must return only one column")),
                None => Ok(ScalarValue::Null),
            }
        })?,
        other => {
            use datafusion::optimizer::simplify_expressions::{ExprSimplifier, SimplifyContext};
            let context = SimplifyContext::builder()
                .with_config_options(Arc::new(session.config_options().clone()))
                .with_query_execution_start_time(
                    session.execution_props().query_execution_start_time,
                )
                .build();
            let simplifier = ExprSimplifier::new(context);
            let schema = datafusion::common::DFSchema::empty();
            let simple = simplifier
                .coerce(other.clone(), &schema)
                .and_then(|x| simplifier.simplify(x))
                .map_err(|_| not_constant())?;
            match simple {
                Expr::Literal(v, _) => v,
                _ => return Err(not_constant()),
            }
        }
    };
    Ok(scalar_text(&value))
}

/// A constant as the text an API expects: timestamps in RFC 3339.
fn scalar_text(v: &datafusion::common::ScalarValue) -> Option<String> {
    use datafusion::common::ScalarValue as S;
    if v.is_null() {
        return None;
    }
    let micros = match v {
        S::TimestampSecond(Some(x), tz) => Some((*x * 1_000_000, tz.is_some())),
        S::TimestampMillisecond(Some(x), tz) => Some((*x * 1_000, tz.is_some())),
        S::TimestampMicrosecond(Some(x), tz) => Some((*x, tz.is_some())),
        S::TimestampNanosecond(Some(x), tz) => Some((*x / 1_000, tz.is_some())),
        _ => None,
    };
    if let Some((m, zoned)) = micros {
        let t = chrono::DateTime::from_timestamp_micros(m)?;
        return Some(if zoned {
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        } else {
            t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string()
        });
    }
    match v {
        S::Utf8(Some(s)) | S::Utf8View(Some(s)) | S::LargeUtf8(Some(s)) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
