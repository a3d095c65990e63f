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
//!  read_text / read_log ─▶ source (files or a URL, gzip, lines) ─▶ logs (parsers)
//! ```

pub mod binary;
pub mod convert;
pub mod files;
pub mod http;
pub mod postgres;
pub mod text;

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
    out
}
