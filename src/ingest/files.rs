//! Files in the lake or anywhere an object store reaches: the
//! `read_csv` / `read_json` / `read_parquet` table functions and the file
//! side of `COPY ... FROM 'path'`.
//!
//! ```text
//!  'raw/2026/*.csv'          lake-relative (joined to the lake root)
//!  '/data/x.parquet'         absolute local path
//!  'file:///data/x.json'     file URL
//!  's3://bucket/landing/*'   S3 (AWS_* environment variables)
//!  'https://host/x.json'     HTTP(S): one URL (no listing, so no globs), read
//!                            with a plain GET by `super::web` (CSV, JSON)
//! ```
//!
//! Globs (`*`, `?`, `[...]`) select files; a folder means every file in it.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::Expr;
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStoreExt};
use url::Url;

use super::constant_text;
use crate::error::{Error, ErrorKind, Result};
use crate::lake::Lake;
use crate::types::PgType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Csv,
    Json,
    Parquet,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Csv => "read_csv",
            FileKind::Json => "read_json",
            FileKind::Parquet => "read_parquet",
        }
    }
}

/// Options of a `read_*` call (`name => value` arguments).
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub header: Option<bool>,
    pub delimiter: Option<u8>,
    pub quote: Option<u8>,
    pub escape: Option<u8>,
    pub null: Option<String>,
    /// An explicit schema instead of inference: `'id bigint, name text'`.
    pub columns: Option<String>,
    /// JSON: `'newline_delimited'` or `'array'`; found from the data if unset.
    pub json_format: Option<String>,
    /// HTTP(S) sources: credentials, and for JSON the API options.
    pub api: super::web::ApiOptions,
}

/// Where `path` points: lake-relative paths join the lake root.
pub fn resolve_url(lake: &Lake, path: &str) -> Result<Url> {
    let bad = |e: String| {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("bad path \"{path}\": {e}"),
        )
    };
    if path.contains("://") {
        return Url::parse(path).map_err(|e| bad(e.to_string()));
    }
    if path.starts_with('/') {
        return Url::parse(&format!("file://{path}")).map_err(|e| bad(e.to_string()));
    }
    lake.root().join(path).map_err(|e| bad(e.to_string()))
}

/// Make sure the session's runtime can reach `url`'s store.
pub fn register_store(runtime: &RuntimeEnv, lake: &Lake, url: &Url) -> Result<()> {
    match url.scheme() {
        "file" => Ok(()),
        "s3" | "s3a" => {
            let base = Url::parse(&format!("s3://{}", url.host_str().unwrap_or_default()))
                .map_err(|e| Error::internal(e.to_string()))?;
            if runtime.object_store_registry.get_store(&base).is_ok() {
                return Ok(());
            }
            let mut builder =
                object_store::aws::AmazonS3Builder::from_env().with_url(base.as_str());
            for (key, value) in lake.options_for(url) {
                if let Ok(key) = key.to_ascii_lowercase().parse() {
                    builder = builder.with_config(key, value);
                }
            }
            let store = builder.build().map_err(|e| {
                Error::new(
                    ErrorKind::InvalidParameter,
                    format!("cannot reach {base}: {e}"),
                )
            })?;
            runtime.register_object_store(&base, Arc::new(store));
            Ok(())
        }
        "http" | "https" => {
            let origin = url.origin().ascii_serialization();
            let base = Url::parse(&origin).map_err(|e| Error::internal(e.to_string()))?;
            if runtime.object_store_registry.get_store(&base).is_ok() {
                return Ok(());
            }
            // The URL says http: plain HTTP was asked for by name.
            let options =
                object_store::ClientOptions::new().with_allow_http(url.scheme() == "http");
            let store = object_store::http::HttpBuilder::new()
                .with_url(origin.as_str())
                .with_client_options(options)
                .build()
                .map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidParameter,
                        format!("cannot reach {origin}: {e}"),
                    )
                })?;
            runtime.register_object_store(&base, Arc::new(store));
            Ok(())
        }
        other => Err(Error::not_supported(format!("reading {other}:// URLs"))),
    }
}

/// The URL DataFusion lists: a glob in the path becomes a pattern over
/// the names below the last folder before it; a local folder ends in `/`.
fn listing_url(url: &Url) -> Result<ListingTableUrl> {
    let path = percent_decode(url.path());
    if let Some(first) = path.find(['*', '?', '[']) {
        let cut = path[..first].rfind('/').map(|i| i + 1).unwrap_or(0);
        let mut base = url.clone();
        base.set_path(&path[..cut]);
        let pattern = glob::Pattern::new(&path[cut..]).map_err(|e| {
            Error::new(
                ErrorKind::InvalidParameter,
                format!("bad glob \"{path}\": {e}"),
            )
        })?;
        return ListingTableUrl::try_new(base, Some(pattern)).map_err(Error::from);
    }
    let mut url = url.clone();
    if url.scheme() == "file" && std::path::Path::new(&path).is_dir() && !path.ends_with('/') {
        url.set_path(&format!("{path}/"));
    }
    ListingTableUrl::try_new(url, None).map_err(Error::from)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The files `path` selects, in name order.
pub async fn list_files(
    session: &dyn Session,
    lake: &Lake,
    path: &str,
) -> Result<(Arc<dyn object_store::ObjectStore>, Vec<ObjectMeta>)> {
    let url = resolve_url(lake, path)?;
    let client = super::http::client_of(session);
    client.check_location(&url, path).await?;
    register_store(session.runtime_env(), lake, &url)?;
    let listing = listing_url(&url)?;
    let store = session.runtime_env().object_store(&listing)?;
    let mut files: Vec<ObjectMeta> = listing
        .list_all_files(session, store.as_ref(), "")
        .await?
        .try_collect()
        .await?;
    files.sort_by(|a, b| a.location.cmp(&b.location));
    if files.is_empty() {
        return Err(Error::new(
            ErrorKind::UndefinedObject,
            format!("no files found at \"{path}\""),
        ));
    }
    if url.scheme() == "file" && client.roots().restricted() {
        // A file the glob found may be a link out of the root.
        for f in &files {
            client
                .roots()
                .check_file(Path::new(&format!("/{}", f.location)))?;
        }
    }
    Ok((store, files))
}

/// Parse `'a int, b text'` into a schema with the Arrow types of those
/// PostgreSQL types.
pub fn parse_columns(columns: &str) -> Result<SchemaRef> {
    use datafusion::sql::sqlparser::ast::Statement;
    let sql = format!("CREATE TABLE t ({columns})");
    let stmts = datafusion::sql::sqlparser::parser::Parser::parse_sql(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
        &sql,
    )
    .map_err(|e| Error::syntax(format!("bad column list \"{columns}\": {e}")))?;
    let Some(Statement::CreateTable(ct)) = stmts.first() else {
        return Err(Error::syntax(format!("bad column list \"{columns}\"")));
    };
    let fields = ct
        .columns
        .iter()
        .map(|c| {
            Ok(Field::new(
                crate::frontend::names::normalize_ident(&c.name),
                PgType::from_sql(&c.data_type)?.arrow_type(),
                true,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// First bytes of the first file: does this JSON hold one array?
async fn json_is_array(
    store: &Arc<dyn object_store::ObjectStore>,
    first: &ObjectMeta,
) -> Result<bool> {
    let end = first.size.min(4096);
    let head = store
        .get_range(&first.location, 0..end)
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("reading {}: {e}", first.location)))?;
    Ok(head
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'['))
}

/// A table over the files at `path`, read as `kind`.
pub async fn file_table(
    session: &dyn Session,
    lake: &Lake,
    path: &str,
    kind: FileKind,
    o: &ReadOptions,
) -> Result<Arc<dyn TableProvider>> {
    if super::source::is_http(path) {
        return http_table(session, path, kind, o).await;
    }
    if o.api.credentials != super::http::Credentials::ByUrl {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "headers => applies to http:// and https:// URLs only",
        ));
    }
    let (store, files) = list_files(session, lake, path).await?;
    let format: Arc<dyn FileFormat> = match kind {
        FileKind::Csv => {
            let mut f = CsvFormat::default()
                .with_has_header(o.header.unwrap_or(true))
                .with_delimiter(o.delimiter.unwrap_or(b','))
                .with_quote(o.quote.unwrap_or(b'"'))
                .with_escape(o.escape)
                .with_newlines_in_values(true);
            if let Some(n) = &o.null {
                f = f.with_null_regex(Some(format!("^{}$", regex_escape(n))));
            }
            Arc::new(f)
        }
        FileKind::Json => {
            let array = match o.json_format.as_deref() {
                Some("array") => true,
                Some("newline_delimited" | "ndjson") => false,
                Some(other) => {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        format!(
                            "read_json format must be 'array' or 'newline_delimited', not '{other}'"
                        ),
                    ));
                }
                None => json_is_array(&store, &files[0]).await?,
            };
            Arc::new(JsonFormat::default().with_newline_delimited(!array))
        }
        FileKind::Parquet => Arc::new(ParquetFormat::default()),
    };
    let url = listing_url(&resolve_url(lake, path)?)?;
    let options = ListingOptions::new(format).with_file_extension("");
    let schema = match &o.columns {
        Some(c) => parse_columns(c)?,
        None => {
            // Per file, then widened: one file's integers and another's
            // decimals make a float column, not an error.
            let mut merged: Option<Schema> = None;
            for f in files.iter().filter(|f| f.size > 0) {
                let one = options
                    .format
                    .infer_schema(session, &store, std::slice::from_ref(f))
                    .await?;
                merged = Some(match merged {
                    None => one.as_ref().clone(),
                    Some(m) => widen(&m, &one),
                });
            }
            Arc::new(merged.ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidParameter,
                    format!("all files at \"{path}\" are empty"),
                )
            })?)
        }
    };
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// A file from an HTTP(S) URL: one streaming GET, no Range or HEAD.
async fn http_table(
    session: &dyn Session,
    path: &str,
    kind: FileKind,
    o: &ReadOptions,
) -> Result<Arc<dyn TableProvider>> {
    let url = Url::parse(path.trim()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("bad URL: {e} (URLs are read one at a time: no globs over HTTP)"),
        )
    })?;
    let client = super::http::client_of(session);
    let columns = o.columns.as_deref().map(parse_columns).transpose()?;
    match kind {
        FileKind::Json => {
            let mut api = o.api.clone();
            api.columns = columns;
            api.ndjson = match o.json_format.as_deref() {
                None => None,
                Some("array") => Some(false),
                Some("newline_delimited" | "ndjson") => Some(true),
                Some(other) => {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        format!(
                            "read_json format must be 'array' or 'newline_delimited', not '{other}'"
                        ),
                    ));
                }
            };
            super::web::api_table(client, &url, api).await
        }
        FileKind::Parquet => {
            if columns.is_some() {
                return Err(Error::not_supported(
                    "columns => with read_parquet over HTTP (a Parquet file names its own columns)",
                ));
            }
            super::http_parquet::parquet_table(client, &url, o.api.credentials.clone()).await
        }
        FileKind::Csv => {
            let options = super::web::CsvOptions {
                header: o.header.unwrap_or(true),
                delimiter: o.delimiter.unwrap_or(b','),
                quote: o.quote.unwrap_or(b'"'),
                escape: o.escape,
                null: o.null.clone(),
                columns,
            };
            super::web::csv_table(client, &url, o.api.credentials.clone(), options).await
        }
    }
}

/// The schema holding the columns of both: a column in only one is
/// nullable; differing types widen (integers to floats, else to text).
fn widen(a: &Schema, b: &Schema) -> Schema {
    use datafusion::arrow::datatypes::DataType;
    let mut fields: Vec<Field> = Vec::new();
    for fa in a.fields() {
        let f = match b.field_with_name(fa.name()) {
            Ok(fb) if fb.data_type() == fa.data_type() => fa.as_ref().clone(),
            Ok(fb) => {
                let (x, y) = (fa.data_type(), fb.data_type());
                let t = if *x == DataType::Null {
                    y.clone()
                } else if *y == DataType::Null {
                    x.clone()
                } else if x.is_numeric() && y.is_numeric() {
                    DataType::Float64
                } else {
                    DataType::Utf8
                };
                Field::new(fa.name(), t, true)
            }
            Err(_) => fa.as_ref().clone().with_nullable(true),
        };
        fields.push(f);
    }
    for fb in b.fields() {
        if a.field_with_name(fb.name()).is_err() {
            fields.push(fb.as_ref().clone().with_nullable(true));
        }
    }
    Schema::new(fields)
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(crate) fn literal_str(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => {
            Some(s.clone())
        }
        _ => None,
    }
}

fn literal_bool(e: &Expr) -> Option<bool> {
    match e {
        Expr::Literal(ScalarValue::Boolean(Some(b)), _) => Some(*b),
        _ => literal_str(e).and_then(|s| match s.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Some(true),
            "false" | "off" | "no" | "0" => Some(false),
            _ => None,
        }),
    }
}

fn one_byte(fun: &str, name: &str, e: &Expr) -> datafusion::error::Result<u8> {
    match literal_str(e) {
        Some(s) if s.len() == 1 => Ok(s.as_bytes()[0]),
        _ => Err(plan_error(format!(
            "{fun}: {name} must be a single one-byte character"
        ))),
    }
}

fn plan_error(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(Error::new(ErrorKind::InvalidParameter, message)))
}

/// `read_csv(path, ...)`, `read_json(path, ...)`, `read_parquet(path)`.
#[derive(Debug)]
pub struct ReadFiles {
    pub kind: FileKind,
    pub lake: Arc<Lake>,
}

impl TableFunctionImpl for ReadFiles {
    fn call_with_args(
        &self,
        args: TableFunctionArgs,
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        super::NamedTableFunction::call_named(self, args.session(), args.exprs(), &[])
    }
}

impl super::NamedTableFunction for ReadFiles {
    fn call_named(
        &self,
        session: &dyn Session,
        positional: &[Expr],
        named: &[(String, Expr)],
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        let fun = self.kind.name();
        let path = match positional {
            [p] => literal_str(p),
            _ => None,
        }
        .ok_or_else(|| plan_error(format!("{fun} takes a path: {fun}('raw/x.*', ...)")))?;
        let mut o = ReadOptions::default();
        let text = |name: &str, v: &Expr| {
            literal_str(v).ok_or_else(|| plan_error(format!("{fun}: {name} must be a string")))
        };
        let mut paginate = None;
        let mut cursor_param = None;
        let mut api_only = Vec::new();
        for (name, v) in named {
            if matches!(self.kind, FileKind::Json)
                && matches!(
                    name.as_str(),
                    "records"
                        | "paginate"
                        | "cursor_param"
                        | "max_pages"
                        | "since"
                        | "since_param"
                        | "since_field"
                        | "sample_size"
                )
            {
                api_only.push(name.clone());
            }
            match (self.kind, name.as_str()) {
                (FileKind::Csv, "header") => o.header = literal_bool(v),
                (FileKind::Csv, "delimiter" | "delim" | "sep") => {
                    o.delimiter = Some(one_byte(fun, name, v)?)
                }
                (FileKind::Csv, "quote") => o.quote = Some(one_byte(fun, name, v)?),
                (FileKind::Csv, "escape") => o.escape = Some(one_byte(fun, name, v)?),
                (FileKind::Csv, "null" | "nullstr") => o.null = literal_str(v),
                (FileKind::Json, "format") => o.json_format = literal_str(v),
                (FileKind::Csv | FileKind::Json, "columns") => o.columns = literal_str(v),
                (FileKind::Csv | FileKind::Json, "headers") => {
                    o.api.credentials = super::http::Credentials::Named(text(name, v)?)
                }
                (FileKind::Json, "records") => {
                    o.api.records = Some(super::jsonpath::JsonPath::parse(&text(name, v)?)?)
                }
                (FileKind::Json, "paginate") => paginate = Some(text(name, v)?),
                (FileKind::Json, "cursor_param") => cursor_param = Some(text(name, v)?),
                (FileKind::Json, "max_pages" | "sample_size") => {
                    let n = constant_text(session, v)?
                        .and_then(|t| t.parse::<usize>().ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            plan_error(format!("{fun}: {name} must be a positive integer"))
                        })?;
                    if name == "max_pages" {
                        o.api.max_pages = Some(n);
                    } else {
                        o.api.sample = n;
                    }
                }
                (FileKind::Json, "since") => o.api.since = constant_text(session, v)?,
                (FileKind::Json, "since_param") => o.api.since_param = Some(text(name, v)?),
                (FileKind::Json, "since_field") => o.api.since_field = Some(text(name, v)?),
                _ => {
                    return Err(plan_error(format!("{fun} has no option \"{name}\"")));
                }
            }
        }
        if let Some(p) = paginate {
            o.api.paginate = super::web::Paginate::parse(&p, cursor_param.as_deref())?;
        }
        if !api_only.is_empty() && !super::source::is_http(&path) {
            return Err(plan_error(format!(
                "{fun}: {} apply to http:// and https:// URLs only",
                api_only.join(", ")
            )));
        }
        crate::interrupt::block_on(file_table(session, &self.lake, &path, self.kind, &o))
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }
}

/// The files of an external table, read by the table function of its
/// format with its options.
pub fn external_table(
    x: &crate::catalog::ExternalDef,
    lake: &Arc<Lake>,
    session: &dyn Session,
) -> Result<Arc<dyn TableProvider>> {
    use super::NamedTableFunction;
    use datafusion::logical_expr::lit;
    let kind = match x.format.as_str() {
        "json" | "ndjson" => FileKind::Json,
        "parquet" => FileKind::Parquet,
        _ => FileKind::Csv,
    };
    let mut named: Vec<(String, Expr)> = x
        .options
        .iter()
        .map(|(k, v)| {
            let value = match (k.as_str(), v.as_str()) {
                ("header", "true") => lit(true),
                ("header", "false") => lit(false),
                _ => lit(v.clone()),
            };
            (k.clone(), value)
        })
        .collect();
    if x.format == "ndjson" {
        named.push(("format".into(), lit("newline_delimited")));
    }
    if let Some(c) = &x.columns {
        named.push(("columns".into(), lit(c.clone())));
    }
    let reader = ReadFiles {
        kind,
        lake: lake.clone(),
    };
    reader
        .call_named(session, &[lit(x.location.clone())], &named)
        .map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_lake() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let u = resolve_url(&lake, "raw/in/*.csv").unwrap();
        assert!(u.as_str().starts_with(lake.root().as_str()), "{u}");
        assert_eq!(
            resolve_url(&lake, "/data/x.csv").unwrap().as_str(),
            "file:///data/x.csv"
        );
        assert_eq!(
            resolve_url(&lake, "s3://b/k/x.json").unwrap().as_str(),
            "s3://b/k/x.json"
        );
    }

    #[test]
    fn column_lists_become_schemas() {
        let s = parse_columns("id bigint, \"Name\" text, amt numeric(10,2)").unwrap();
        assert_eq!(s.fields().len(), 3);
        assert_eq!(s.field(1).name(), "Name");
    }
}
