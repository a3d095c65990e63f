//! Tables over HTTP responses: JSON APIs (envelopes, pagination,
//! incremental reads) and CSV files from servers that answer a plain GET
//! only.
//!
//! ```text
//!  plan:     first page(s) ─▶ records ─▶ infer the columns (or take `columns =>`)
//!            the pager, as far as it got, waits for the scan
//!  execute:  records already read, then page after page:
//!            GET ─▶ body ─┬─ NDJSON: line by line (streamed)
//!                         └─ one document: buffered per page ─▶ records => '$.path'
//!            next page: Link header │ cursor in the body │ page / offset parameter
//! ```
//!
//! Memory holds one page of a JSON document (at most [`MAX_PAGE`]), or
//! one batch of NDJSON lines or CSV rows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;
use serde_json::Value;
use url::Url;

use super::http::{ByteStream, Credentials, HttpClient, next_link, redact};
use super::jsonpath::JsonPath;
use super::records::{Columns, Inference, parse_timestamptz};
use super::source::Lines;
use crate::error::{Error, ErrorKind, Result};

/// The largest JSON document (one page) held in memory.
pub const MAX_PAGE: usize = 256 << 20;

/// Records per batch.
const BATCH: usize = 8192;

/// Records read to infer the columns, unless `sample_size =>` says.
pub const DEFAULT_SAMPLE: usize = 1000;

/// How the next page is found.
#[derive(Debug, Clone, PartialEq)]
pub enum Paginate {
    /// One request.
    None,
    /// `Link: <...>; rel="next"` (GitHub, GitLab, RFC 8288).
    Link,
    /// A value in the body: a next-page URL, or a cursor sent back as the
    /// query parameter `param`.
    Cursor { path: JsonPath, param: String },
    /// `?param=1`, `2`, ... until a page has no records.
    Page { param: String, start: i64 },
    /// `?param=0`, then plus the records of each page, until one is empty.
    Offset { param: String },
}

impl Paginate {
    /// `'link'`, `'cursor:$.next'`, `'page:page'` (`'page:p:0'` starts at
    /// 0), `'offset:offset'`.
    pub fn parse(s: &str, cursor_param: Option<&str>) -> Result<Paginate> {
        let bad = || {
            Error::new(
                ErrorKind::InvalidParameter,
                format!(
                    "paginate must be 'link', 'cursor:<JSON path>', 'page:<parameter>' or \
                     'offset:<parameter>', not '{s}'"
                ),
            )
        };
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        Ok(
            match (kind.trim().to_ascii_lowercase().as_str(), rest.trim()) {
                ("none", "") => Paginate::None,
                ("link", "") => Paginate::Link,
                ("cursor", path) if !path.is_empty() => Paginate::Cursor {
                    path: JsonPath::parse(path)?,
                    param: cursor_param.unwrap_or("cursor").to_string(),
                },
                ("page", spec) if !spec.is_empty() => {
                    let (param, start) = match spec.split_once(':') {
                        Some((p, n)) => (p, n.trim().parse().map_err(|_| bad())?),
                        None => (spec, 1),
                    };
                    Paginate::Page {
                        param: param.to_string(),
                        start,
                    }
                }
                ("offset", param) if !param.is_empty() => Paginate::Offset {
                    param: param.to_string(),
                },
                _ => return Err(bad()),
            },
        )
    }
}

/// Pages read when `max_pages` is not given.
const DEFAULT_MAX_PAGES: usize = 10_000;

/// Options of `read_json` over HTTP.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    pub credentials: Credentials,
    pub records: Option<JsonPath>,
    pub paginate: Paginate,
    pub max_pages: Option<usize>,
    /// `Some(true)` NDJSON, `Some(false)` one document; found from the
    /// body when unset.
    pub ndjson: Option<bool>,
    pub since: Option<String>,
    pub since_param: Option<String>,
    pub since_field: Option<String>,
    pub sample: usize,
    pub columns: Option<SchemaRef>,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            credentials: Credentials::ByUrl,
            records: None,
            paginate: Paginate::None,
            max_pages: None,
            ndjson: None,
            since: None,
            since_param: None,
            since_field: None,
            sample: DEFAULT_SAMPLE,
            columns: None,
        }
    }
}

fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let mut u = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.set_query(None);
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair(name, value);
    }
    u
}

/// Is `a` later than `b`? Timestamps as instants, numbers as numbers,
/// anything else as text.
fn later(a: &Value, since: &str) -> bool {
    let text = match a {
        Value::Null => return false,
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            if let (Some(x), Ok(y)) = (n.as_f64(), since.trim().parse::<f64>()) {
                return x > y;
            }
            n.to_string()
        }
        other => other.to_string(),
    };
    let instant = |s: &str| {
        parse_timestamptz(s).or_else(|| {
            datafusion::arrow::compute::kernels::cast_utils::string_to_datetime(&chrono::Utc, s)
                .ok()
                .map(|d| d.timestamp_micros())
        })
    };
    match (instant(&text), instant(since)) {
        (Some(x), Some(y)) => x > y,
        _ => text.as_str() > since,
    }
}

/// The records of the current page.
enum Body {
    Buffered(std::vec::IntoIter<Value>),
    /// NDJSON, line by line; each line's value through the records path.
    Lines(Lines),
}

/// Walks the pages of an API, record by record.
pub struct Pager {
    client: Arc<HttpClient>,
    o: Arc<ApiOptions>,
    /// The page to fetch when the current one is done.
    next: Option<Url>,
    /// The page being read.
    url: Option<Url>,
    body: Option<Body>,
    pages: usize,
    page_records: usize,
    offset: i64,
    page_number: i64,
    /// Next-page URLs already requested: a server that sends the same
    /// cursor again ends the read instead of looping.
    seen: HashSet<String>,
    /// Records per page, so far.
    record_number: u64,
}

impl Pager {
    pub fn new(client: Arc<HttpClient>, url: &Url, o: Arc<ApiOptions>) -> Pager {
        let mut first = url.clone();
        if let (Some(since), Some(param)) = (&o.since, &o.since_param) {
            first = with_param(&first, param, since);
        }
        let (offset, page_number) = match &o.paginate {
            Paginate::Page { param, start } => {
                first = with_param(&first, param, &start.to_string());
                (0, *start)
            }
            Paginate::Offset { param } => {
                first = with_param(&first, param, "0");
                (0, 0)
            }
            _ => (0, 0),
        };
        Pager {
            client,
            o,
            next: Some(first),
            url: None,
            body: None,
            pages: 0,
            page_records: 0,
            offset,
            page_number,
            seen: HashSet::new(),
            record_number: 0,
        }
    }

    fn label(&self) -> String {
        self.url.as_ref().map(redact).unwrap_or_default()
    }

    async fn open_page(&mut self, url: Url) -> Result<()> {
        self.seen.insert(url.as_str().to_string());
        let resp = self.client.get(&url, &self.o.credentials).await?;
        self.pages += 1;
        self.page_records = 0;
        let label = redact(&resp.url);
        let link = next_link(&resp.headers, &resp.url);
        let answered = resp.url.clone();
        self.url = Some(url.clone());
        let mut body = resp.body();
        // Enough of the start to tell NDJSON from one document.
        let mut head = BytesMut::new();
        let ndjson = match self.o.ndjson {
            Some(n) => n,
            None => loop {
                // A first line this long is one document, read bounded below.
                if head.len() > 1 << 20 {
                    break false;
                }
                if let Some(i) = memchr::memchr(b'\n', &head) {
                    let first = &head[..i];
                    let rest_blank = head[i..].iter().all(|b| b.is_ascii_whitespace());
                    let complete = serde_json::from_slice::<Value>(first).is_ok();
                    if complete && !rest_blank {
                        break true;
                    }
                    if !complete || head.len() > 1 << 20 {
                        break false;
                    }
                }
                match body.next().await {
                    Some(chunk) => head.extend_from_slice(&chunk?),
                    None => break false,
                }
            },
        };
        let cursor_paging = matches!(self.o.paginate, Paginate::Cursor { .. });
        if ndjson && !cursor_paging {
            let rest: ByteStream = futures::stream::once(async move { Ok(head.freeze()) })
                .chain(body)
                .boxed();
            self.body = Some(Body::Lines(Lines::new(rest)));
            self.next = match &self.o.paginate {
                Paginate::Link => link,
                _ => None,
            };
            return Ok(());
        }
        // One document per page: read it whole (bounded).
        let mut all = head;
        while let Some(chunk) = body.next().await {
            all.extend_from_slice(&chunk?);
            if all.len() > MAX_PAGE {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!(
                        "{label}: a JSON document larger than {} MiB; serve NDJSON (one record \
                         per line) to stream it, or ask the API for smaller pages",
                        MAX_PAGE >> 20
                    ),
                ));
            }
        }
        let values = parse_values(&all).map_err(|e| {
            Error::new(
                ErrorKind::InvalidText,
                format!("{label}: the response is not JSON: {e}"),
            )
        })?;
        let mut cursor = None;
        let mut records = Vec::new();
        for doc in values {
            if let Paginate::Cursor { path, .. } = &self.o.paginate
                && cursor.is_none()
            {
                cursor = path.select_one(&doc).cloned();
            }
            records.extend(self.records_of(doc));
        }
        self.next = match &self.o.paginate {
            Paginate::Link => link,
            Paginate::Cursor { param, .. } => match cursor {
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s))
                    if s.starts_with("http://")
                        || s.starts_with("https://")
                        || s.starts_with('/')
                        || s.starts_with('?') =>
                {
                    answered.join(&s).ok()
                }
                Some(Value::String(s)) => Some(with_param(&url, param, &s)),
                Some(Value::Number(n)) => Some(with_param(&url, param, &n.to_string())),
                Some(Value::Bool(_)) | Some(_) | None => None,
            },
            _ => None,
        };
        if records.is_empty() && cursor_paging {
            // An empty page ends a cursor walk even if a cursor came back.
            self.next = None;
        }
        self.body = Some(Body::Buffered(records.into_iter()));
        Ok(())
    }

    fn records_of(&self, doc: Value) -> Vec<Value> {
        match &self.o.records {
            Some(p) => p.records(doc),
            None => match doc {
                Value::Array(a) => a,
                Value::Null => vec![],
                other => vec![other],
            },
        }
    }

    /// Where the page after the current one is, once it is read.
    fn after_page(&mut self) {
        let base = self.url.clone();
        match (&self.o.paginate, base) {
            (Paginate::Page { param, .. }, Some(u)) if self.page_records > 0 => {
                self.page_number += 1;
                self.next = Some(with_param(&u, param, &self.page_number.to_string()));
            }
            (Paginate::Offset { param }, Some(u)) if self.page_records > 0 => {
                self.offset += self.page_records as i64;
                self.next = Some(with_param(&u, param, &self.offset.to_string()));
            }
            (Paginate::Page { .. } | Paginate::Offset { .. }, _) => self.next = None,
            _ => {}
        }
    }

    /// Up to `max` more records; empty at the end.
    pub async fn next_records(&mut self, max: usize) -> Result<Vec<Value>> {
        loop {
            let mut out = Vec::new();
            match &mut self.body {
                Some(Body::Buffered(it)) => out.extend(it.take(max)),
                Some(Body::Lines(lines)) => {
                    let got = lines.next_lines(max).await?;
                    let ended = got.is_empty();
                    let label = self.url.as_ref().map(redact).unwrap_or_default();
                    for (n, line) in got {
                        if line.trim().is_empty() {
                            continue;
                        }
                        let v: Value = serde_json::from_str(&line).map_err(|e| {
                            Error::new(
                                ErrorKind::InvalidText,
                                format!("{label}, line {n}: not JSON: {e}"),
                            )
                        })?;
                        out.extend(self.records_of(v));
                    }
                    if out.is_empty() && !ended {
                        continue;
                    }
                }
                None => {}
            }
            if !out.is_empty() {
                self.page_records += out.len();
                if let (Some(field), Some(since)) = (&self.o.since_field, &self.o.since) {
                    out.retain(|r| r.get(field).is_some_and(|v| later(v, since)));
                    if out.is_empty() {
                        continue;
                    }
                }
                return Ok(out);
            }
            // The page is done.
            if self.body.take().is_some() {
                self.after_page();
            }
            let Some(next) = self.next.take() else {
                return Ok(Vec::new());
            };
            // A server that ignores the page parameter would page forever.
            if self.pages >= self.o.max_pages.unwrap_or(DEFAULT_MAX_PAGES)
                || (self.pages > 0 && self.seen.contains(next.as_str()))
            {
                return Ok(Vec::new());
            }
            self.open_page(next).await?;
        }
    }

    /// Records as a batch of `schema`; a value that does not fit its
    /// column fails the read, naming the record and the field.
    fn batch(&mut self, schema: &SchemaRef, records: &[Value]) -> Result<RecordBatch> {
        let mut c = Columns::new(schema.clone());
        let first = self.record_number;
        self.record_number += records.len() as u64;
        for (i, r) in records.iter().enumerate() {
            match r {
                Value::Object(o) => c.set_record(o),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidText,
                        format!(
                            "{}: record {} is not a JSON object: {}",
                            self.label(),
                            first + i as u64 + 1,
                            short(&r.to_string())
                        ),
                    ));
                }
            }
            c.end_row();
        }
        let (columns, bad) = c.finish();
        if let Some(b) = bad.first() {
            return Err(Error::new(
                ErrorKind::InvalidText,
                format!("{}: record {}: {b}", self.label(), first + b.row as u64 + 1),
            )
            .with_hint("name the columns and their types with columns => '...'"));
        }
        RecordBatch::try_new(schema.clone(), columns)
            .map_err(|e| Error::internal(format!("read_json batch: {e}")))
    }
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Every JSON value in `bytes`: one document, or several one after the
/// other.
fn parse_values(bytes: &[u8]) -> serde_json::Result<Vec<Value>> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .collect()
}

/// What planning read already: the pager and the records it gave.
struct Started {
    pager: Pager,
    records: Vec<Value>,
}

/// The one partition of an API read.
pub struct ApiPartition {
    schema: SchemaRef,
    client: Arc<HttpClient>,
    url: Url,
    options: Arc<ApiOptions>,
    started: Mutex<Option<Started>>,
}

impl std::fmt::Debug for ApiPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiPartition({})", redact(&self.url))
    }
}

impl PartitionStream for ApiPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        // The first scan continues where planning stopped; another scan
        // of the same plan starts over.
        let (pager, records) = match self.started.lock().expect("not poisoned").take() {
            Some(s) => (s.pager, s.records),
            None => (
                Pager::new(self.client.clone(), &self.url, self.options.clone()),
                Vec::new(),
            ),
        };
        let schema = self.schema.clone();
        let stream = futures::stream::try_unfold(
            (pager, records, schema.clone()),
            |(mut pager, mut pending, schema)| async move {
                if pending.is_empty() {
                    pending = pager.next_records(BATCH).await?;
                    if pending.is_empty() {
                        return Ok(None);
                    }
                }
                let take = pending.len().min(BATCH);
                let rest = pending.split_off(take);
                let batch = pager.batch(&schema, &pending)?;
                Ok(Some((batch, (pager, rest, schema))))
            },
        )
        .map(|r: Result<RecordBatch>| r.map_err(|e| DataFusionError::External(Box::new(e))));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// The table of `read_json('http...', ...)`.
pub async fn api_table(
    client: Arc<HttpClient>,
    url: &Url,
    options: ApiOptions,
) -> Result<Arc<dyn TableProvider>> {
    client.check_credentials(url, &options.credentials)?;
    if options.since.is_some() && options.since_param.is_none() && options.since_field.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "read_json: since => needs since_param => 'name' (sent as a query parameter) or \
             since_field => 'name' (records whose field is later are kept)",
        ));
    }
    let options = Arc::new(options);
    let (schema, started) = match &options.columns {
        Some(columns) => (columns.clone(), None),
        None => {
            let mut pager = Pager::new(client.clone(), url, options.clone());
            let mut records = Vec::new();
            while records.len() < options.sample {
                let got = pager.next_records(options.sample - records.len()).await?;
                if got.is_empty() {
                    break;
                }
                records.extend(got);
            }
            let mut inf = Inference::default();
            for r in &records {
                inf.add_record(r);
            }
            let schema = if inf.is_empty() {
                // No records (an empty page, or all older than since):
                // no columns to infer, so no rows either.
                Arc::new(Schema::empty())
            } else {
                inf.schema()
            };
            (schema, Some(Started { pager, records }))
        }
    };
    let partition = ApiPartition {
        schema: schema.clone(),
        client,
        url: url.clone(),
        options,
        started: Mutex::new(started),
    };
    Ok(Arc::new(StreamingTable::try_new(
        schema,
        vec![Arc::new(partition)],
    )?))
}

/// CSV options for [`csv_table`].
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub header: bool,
    pub delimiter: u8,
    pub quote: u8,
    pub escape: Option<u8>,
    pub null: Option<String>,
    pub columns: Option<SchemaRef>,
}

/// The bytes read to infer CSV columns.
const CSV_SAMPLE: usize = 1 << 20;

fn csv_builder(schema: SchemaRef, o: &CsvOptions) -> Result<datafusion::arrow::csv::ReaderBuilder> {
    let mut b = datafusion::arrow::csv::ReaderBuilder::new(schema)
        .with_header(o.header)
        .with_delimiter(o.delimiter)
        .with_quote(o.quote)
        .with_batch_size(BATCH);
    if let Some(e) = o.escape {
        b = b.with_escape(e);
    }
    if let Some(n) = &o.null {
        let re = regex::Regex::new(&format!("^{}$", regex::escape(n)))
            .map_err(|e| Error::internal(e.to_string()))?;
        b = b.with_null_regex(re);
    }
    Ok(b)
}

struct CsvStarted {
    body: ByteStream,
    head: Bytes,
}

/// A CSV file over HTTP, decoded as it streams.
pub struct CsvPartition {
    schema: SchemaRef,
    client: Arc<HttpClient>,
    url: Url,
    credentials: Credentials,
    options: CsvOptions,
    started: Mutex<Option<CsvStarted>>,
}

impl std::fmt::Debug for CsvPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CsvPartition({})", redact(&self.url))
    }
}

impl PartitionStream for CsvPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let started = self.started.lock().expect("not poisoned").take();
        let client = self.client.clone();
        let url = self.url.clone();
        let credentials = self.credentials.clone();
        let schema = self.schema.clone();
        let options = self.options.clone();
        let label = redact(&url);
        let stream = futures::stream::once(async move {
            let (body, head) = match started {
                Some(s) => (s.body, s.head),
                None => (client.get(&url, &credentials).await?.body(), Bytes::new()),
            };
            let decoder = csv_builder(schema, &options)?.build_decoder();
            Ok::<_, Error>((body, BytesMut::from(&head[..]), decoder, false))
        })
        .map(move |r| {
            let label = label.clone();
            let r = r.map(|state| {
                futures::stream::try_unfold(state, move |(mut body, mut buf, mut dec, mut eof)| {
                    let label = label.clone();
                    async move {
                        let bad = |e: datafusion::arrow::error::ArrowError| {
                            Error::new(ErrorKind::BadCopyFormat, format!("{label}: {e}"))
                        };
                        loop {
                            if buf.is_empty() && !eof {
                                match body.next().await {
                                    Some(chunk) => buf.extend_from_slice(&chunk?),
                                    None => eof = true,
                                }
                            }
                            let used = dec.decode(&buf).map_err(bad)?;
                            buf.advance(used);
                            if (used == 0 && (buf.is_empty() || eof)) || dec.capacity() == 0 {
                                if let Some(b) = dec.flush().map_err(bad)? {
                                    return Ok(Some((b, (body, buf, dec, eof))));
                                }
                                if eof && buf.is_empty() {
                                    return Ok(None);
                                }
                            }
                        }
                    }
                })
            });
            match r {
                Ok(s) => s.boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .map(|r: Result<RecordBatch>| r.map_err(|e| DataFusionError::External(Box::new(e))));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// The table of `read_csv('http...')`.
pub async fn csv_table(
    client: Arc<HttpClient>,
    url: &Url,
    credentials: Credentials,
    options: CsvOptions,
) -> Result<Arc<dyn TableProvider>> {
    client.check_credentials(url, &credentials)?;
    let (schema, started) = match &options.columns {
        Some(c) => (c.clone(), None),
        None => {
            let mut body = client.get(url, &credentials).await?.body();
            let mut head = BytesMut::new();
            let mut eof = false;
            while head.len() < CSV_SAMPLE {
                match body.next().await {
                    Some(chunk) => head.extend_from_slice(&chunk?),
                    None => {
                        eof = true;
                        break;
                    }
                }
            }
            let head = head.freeze();
            // Whole lines only, unless that is all there is.
            let sample = match (eof, memchr::memrchr(b'\n', &head)) {
                (false, Some(i)) => &head[..=i],
                _ => &head[..],
            };
            let mut format = datafusion::arrow::csv::reader::Format::default()
                .with_header(options.header)
                .with_delimiter(options.delimiter)
                .with_quote(options.quote);
            if let Some(e) = options.escape {
                format = format.with_escape(e);
            }
            let (schema, _) = format
                .infer_schema(std::io::Cursor::new(sample), Some(DEFAULT_SAMPLE))
                .map_err(|e| {
                    Error::new(
                        ErrorKind::BadCopyFormat,
                        format!("{}: cannot read as CSV: {e}", redact(url)),
                    )
                })?;
            (Arc::new(schema), Some(CsvStarted { body, head }))
        }
    };
    let partition = CsvPartition {
        schema: schema.clone(),
        client,
        url: url.clone(),
        credentials,
        options,
        started: Mutex::new(started),
    };
    Ok(Arc::new(StreamingTable::try_new(
        schema,
        vec![Arc::new(partition)],
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_styles_parse() {
        assert_eq!(Paginate::parse("link", None).unwrap(), Paginate::Link);
        assert_eq!(
            Paginate::parse("page:page", None).unwrap(),
            Paginate::Page {
                param: "page".into(),
                start: 1
            }
        );
        assert_eq!(
            Paginate::parse("page:p:0", None).unwrap(),
            Paginate::Page {
                param: "p".into(),
                start: 0
            }
        );
        assert_eq!(
            Paginate::parse("offset:skip", None).unwrap(),
            Paginate::Offset {
                param: "skip".into()
            }
        );
        match Paginate::parse("cursor:$.meta.next", Some("after")).unwrap() {
            Paginate::Cursor { path, param } => {
                assert_eq!(path.text(), "$.meta.next");
                assert_eq!(param, "after");
            }
            other => panic!("{other:?}"),
        }
        for bad in ["links", "cursor:", "page:", "page:p:x", "cursor:next"] {
            assert!(Paginate::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_parameters_are_replaced_and_since_compares_by_kind() {
        let u = Url::parse("http://h/items?page=1&per_page=2").unwrap();
        assert_eq!(
            with_param(&u, "page", "2").as_str(),
            "http://h/items?per_page=2&page=2"
        );
        assert!(later(
            &Value::from("2026-01-02T00:00:00Z"),
            "2026-01-01 23:00:00+00"
        ));
        assert!(!later(
            &Value::from("2026-01-01T00:00:00+02:00"),
            "2025-12-31T23:00:00Z"
        ));
        assert!(later(&Value::from(10), "9"));
        assert!(!later(&Value::from(9), "10"));
        assert!(later(&Value::from("b"), "a"));
        assert!(!later(&Value::Null, "a"));
    }

    #[test]
    fn bodies_hold_one_or_many_documents() {
        assert_eq!(parse_values(b"[1, 2]").unwrap().len(), 1);
        assert_eq!(parse_values(b"{\"a\":1}\n{\"a\":2}\n").unwrap().len(), 2);
        assert!(parse_values(b"{\"a\":").is_err());
    }
}
