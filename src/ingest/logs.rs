//! Logs as tables: `read_text` gives one row per line, `read_log` parses
//! access logs, JSON lines or any regex with named groups into typed
//! columns. A line that does not parse is a row with NULL fields and the
//! reason in `_error`; it never stops the read.
//!
//! ```text
//!  read_text(path)                     filename, line_number, line
//!  read_log(path, format => 'common')  filename, line_number, remote_addr, ident, remote_user,
//!                                      time, method, path, protocol, status, bytes, _error
//!           format => 'combined'       ... and referer, user_agent
//!           format => 'json'           filename, line_number, <fields of the first lines>, _error
//!           format => 'regex:<re>'     filename, line_number, <named groups>, _error
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Builder, Int64Array, Int64Builder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;

use super::files::literal_str;
use super::http::Credentials;
use super::records::{Columns, Inference, parse_clf_time, timestamptz};
use super::source::{LineParser, LinePartition, Located, locate, sample_lines};
use crate::error::{Error, ErrorKind, Result};
use crate::lake::Lake;

/// Lines read to infer the columns of `json` and `regex:` logs.
const SAMPLE_LINES: usize = 1000;

fn plan_error(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(Error::new(ErrorKind::InvalidParameter, message)))
}

fn head_fields() -> Vec<Field> {
    vec![
        Field::new("filename", DataType::Utf8, false),
        Field::new("line_number", DataType::Int64, false),
    ]
}

fn error_field() -> Field {
    Field::new("_error", DataType::Utf8, true)
}

fn numbers(lines: &[(u64, String)]) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(
        lines.iter().map(|(n, _)| *n as i64),
    ))
}

fn names(file: &str, n: usize) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(file, n)))
}

fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::internal(format!("log batch: {e}")))
}

/// `read_text`: the lines as they are.
#[derive(Debug)]
struct TextLines {
    schema: SchemaRef,
}

impl LineParser for TextLines {
    fn parse(&self, file: &str, lines: &[(u64, String)]) -> Result<RecordBatch> {
        let text = StringArray::from_iter_values(lines.iter().map(|(_, l)| l.as_str()));
        batch(
            &self.schema,
            vec![names(file, lines.len()), numbers(lines), Arc::new(text)],
        )
    }
}

/// Apache / nginx access logs: `common` is
/// `%h %l %u %t "%r" %>s %b`, `combined` adds `"%{Referer}i" "%{User-agent}i"`.
#[derive(Debug)]
struct AccessLog {
    schema: SchemaRef,
    combined: bool,
}

/// The fields of one access log line.
#[derive(Debug, Default, PartialEq)]
pub struct AccessLine<'a> {
    pub remote_addr: &'a str,
    pub ident: Option<&'a str>,
    pub remote_user: Option<&'a str>,
    /// Microseconds since the epoch, UTC.
    pub time: i64,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub status: i32,
    pub bytes: Option<i64>,
    pub referer: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
}

/// A cursor over a line, for the access log grammar.
struct Cursor<'a> {
    s: &'a str,
}

impl<'a> Cursor<'a> {
    fn token(&mut self, what: &str) -> std::result::Result<&'a str, String> {
        let s = self.s.trim_start_matches(' ');
        let end = s.find(' ').unwrap_or(s.len());
        if end == 0 {
            return Err(format!("{what} is missing"));
        }
        self.s = &s[end..];
        Ok(&s[..end])
    }

    fn bracketed(&mut self, what: &str) -> std::result::Result<&'a str, String> {
        let s = self.s.trim_start_matches(' ');
        let body = s
            .strip_prefix('[')
            .ok_or_else(|| format!("{what} in [brackets] expected"))?;
        let end = body
            .find(']')
            .ok_or_else(|| format!("{what} has no closing ]"))?;
        self.s = &body[end + 1..];
        Ok(&body[..end])
    }

    /// A `"quoted"` field; `\"` and `\\` inside are escapes (nginx and
    /// Apache both write them).
    fn quoted(&mut self, what: &str) -> std::result::Result<&'a str, String> {
        let s = self.s.trim_start_matches(' ');
        let body = s
            .strip_prefix('"')
            .ok_or_else(|| format!("{what} in \"quotes\" expected"))?;
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    self.s = &body[i + 1..];
                    return Ok(&body[..i]);
                }
                _ => i += 1,
            }
        }
        Err(format!("{what} has no closing quote"))
    }

    fn rest(&self) -> &'a str {
        self.s.trim()
    }
}

fn dash(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

/// `\"` and `\\` undone; borrowed when there are none (most lines).
fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Parse one access log line; the error says what did not fit.
pub fn parse_access_line(
    line: &str,
    combined: bool,
) -> std::result::Result<AccessLine<'_>, String> {
    let mut c = Cursor { s: line };
    let remote_addr = c.token("the remote address")?;
    let ident = dash(c.token("the ident field")?);
    let remote_user = dash(c.token("the user field")?);
    let time_text = c.bracketed("the time")?;
    let time =
        parse_clf_time(time_text.as_bytes()).ok_or_else(|| format!("bad time [{time_text}]"))?;
    let request = c.quoted("the request")?;
    let (method, path, protocol) = {
        let mut parts = request.split(' ').filter(|p| !p.is_empty());
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(p), proto, None) => (Some(m), Some(p), proto),
            // "-" (a connection closed before a request) or garbage: the
            // line is still a line of the log.
            _ => (None, None, None),
        }
    };
    let status_text = c.token("the status")?;
    let status = status_text
        .parse::<i32>()
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| format!("bad status \"{status_text}\""))?;
    let bytes_text = c.token("the size")?;
    let bytes = match bytes_text {
        "-" => None,
        b => Some(
            b.parse::<i64>()
                .map_err(|_| format!("bad size \"{bytes_text}\""))?,
        ),
    };
    let mut out = AccessLine {
        remote_addr,
        ident,
        remote_user,
        time,
        method,
        path,
        protocol,
        status,
        bytes,
        ..Default::default()
    };
    if combined {
        out.referer = dash(c.quoted("the referer")?).map(unescape);
        out.user_agent = dash(c.quoted("the user agent")?).map(unescape);
        // nginx and others append fields of their own: not an error.
    } else if !c.rest().is_empty() && !c.rest().starts_with('"') {
        return Err(format!(
            "unexpected text after the size: \"{}\"",
            short(c.rest())
        ));
    }
    Ok(out)
}

fn short(s: &str) -> &str {
    let mut end = s.len().min(60);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn access_schema(combined: bool) -> SchemaRef {
    let mut f = head_fields();
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    f.extend([
        text("remote_addr"),
        text("ident"),
        text("remote_user"),
        Field::new("time", timestamptz(), true),
        text("method"),
        text("path"),
        text("protocol"),
        Field::new("status", DataType::Int32, true),
        Field::new("bytes", DataType::Int64, true),
    ]);
    if combined {
        f.extend([text("referer"), text("user_agent")]);
    }
    f.push(error_field());
    Arc::new(Schema::new(f))
}

impl LineParser for AccessLog {
    fn parse(&self, file: &str, lines: &[(u64, String)]) -> Result<RecordBatch> {
        let n = lines.len();
        let mut text: Vec<StringBuilder> = (0..6).map(|_| StringBuilder::new()).collect();
        let mut time = TimestampMicrosecondBuilder::with_capacity(n);
        let mut status = Int32Builder::with_capacity(n);
        let mut size = Int64Builder::with_capacity(n);
        let mut referer = StringBuilder::new();
        let mut agent = StringBuilder::new();
        let mut error = StringBuilder::new();
        for (_, line) in lines {
            match parse_access_line(line, self.combined) {
                Ok(a) => {
                    text[0].append_value(a.remote_addr);
                    text[1].append_option(a.ident);
                    text[2].append_option(a.remote_user);
                    text[3].append_option(a.method);
                    text[4].append_option(a.path);
                    text[5].append_option(a.protocol);
                    time.append_value(a.time);
                    status.append_value(a.status);
                    size.append_option(a.bytes);
                    referer.append_option(a.referer.as_deref());
                    agent.append_option(a.user_agent.as_deref());
                    error.append_null();
                }
                Err(why) => {
                    for t in &mut text {
                        t.append_null();
                    }
                    time.append_null();
                    status.append_null();
                    size.append_null();
                    referer.append_null();
                    agent.append_null();
                    let format = if self.combined { "combined" } else { "common" };
                    error.append_value(format!("not a {format} log line: {why}"));
                }
            }
        }
        let mut t = text
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef);
        let mut next = || t.next().expect("six text columns");
        let mut columns: Vec<ArrayRef> = vec![names(file, n), numbers(lines)];
        columns.extend([next(), next(), next()]);
        columns.push(Arc::new(time.finish().with_timezone("UTC")));
        columns.extend([next(), next(), next()]);
        columns.push(Arc::new(status.finish()));
        columns.push(Arc::new(size.finish()));
        if self.combined {
            columns.push(Arc::new(referer.finish()));
            columns.push(Arc::new(agent.finish()));
        }
        columns.push(Arc::new(error.finish()));
        batch(&self.schema, columns)
    }
}

/// Columns typed by inference, filled per line by `fill`: JSON lines and
/// regex captures. Values that do not fit their column's type are NULL
/// and named in `_error`.
fn typed_batch(
    schema: &SchemaRef,
    fields: &SchemaRef,
    file: &str,
    lines: &[(u64, String)],
    mut fill: impl FnMut(&str, &mut Columns) -> std::result::Result<(), String>,
) -> Result<RecordBatch> {
    let mut columns = Columns::new(fields.clone());
    let mut errors: Vec<Option<String>> = Vec::with_capacity(lines.len());
    for (_, line) in lines {
        errors.push(fill(line, &mut columns).err());
        columns.end_row();
    }
    let (typed, bad) = columns.finish();
    for b in bad {
        let e = &mut errors[b.row];
        match e {
            Some(text) => {
                text.push_str("; ");
                text.push_str(&b.to_string());
            }
            None => *e = Some(b.to_string()),
        }
    }
    let mut out: Vec<ArrayRef> = vec![names(file, lines.len()), numbers(lines)];
    out.extend(typed);
    out.push(Arc::new(StringArray::from(errors)));
    batch(schema, out)
}

fn with_head_and_error(fields: &SchemaRef) -> SchemaRef {
    let mut f = head_fields();
    f.extend(
        fields
            .fields()
            .iter()
            .filter(|x| !matches!(x.name().as_str(), "filename" | "line_number" | "_error"))
            .map(|x| x.as_ref().clone()),
    );
    f.push(error_field());
    Arc::new(Schema::new(f))
}

/// One JSON object per line.
#[derive(Debug)]
struct JsonLines {
    schema: SchemaRef,
    fields: SchemaRef,
}

impl LineParser for JsonLines {
    fn parse(&self, file: &str, lines: &[(u64, String)]) -> Result<RecordBatch> {
        typed_batch(
            &self.schema,
            &self.fields,
            file,
            lines,
            |line, c| match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(o)) => {
                    c.set_record(&o);
                    Ok(())
                }
                Ok(_) => Err("not a JSON object".to_string()),
                Err(e) => Err(format!("not JSON: {e}")),
            },
        )
    }
}

/// Any regex with named groups.
#[derive(Debug)]
struct RegexLines {
    schema: SchemaRef,
    fields: SchemaRef,
    regex: regex::Regex,
}

impl LineParser for RegexLines {
    fn parse(&self, file: &str, lines: &[(u64, String)]) -> Result<RecordBatch> {
        let names: Vec<&str> = self.regex.capture_names().flatten().collect();
        typed_batch(&self.schema, &self.fields, file, lines, |line, c| {
            let caps = self
                .regex
                .captures(line)
                .ok_or_else(|| "the line does not match the pattern".to_string())?;
            for n in &names {
                c.set_text(n, caps.name(n).map(|m| m.as_str()));
            }
            Ok(())
        })
    }
}

/// What `format =>` asked for.
#[derive(Debug, Clone)]
pub enum LogFormat {
    Common,
    Combined,
    Json,
    Regex(regex::Regex),
}

impl LogFormat {
    pub fn parse(s: &str) -> Result<LogFormat> {
        let bad = |m: String| Error::new(ErrorKind::InvalidParameter, m);
        Ok(match s {
            "common" | "clf" => LogFormat::Common,
            "combined" => LogFormat::Combined,
            "json" | "ndjson" => LogFormat::Json,
            other => {
                let Some(pattern) = other.strip_prefix("regex:") else {
                    return Err(bad(format!(
                        "read_log format must be 'combined', 'common', 'json' or \
                         'regex:<pattern>', not '{other}'"
                    )));
                };
                let regex = regex::Regex::new(pattern)
                    .map_err(|e| bad(format!("read_log: bad regex: {e}")))?;
                if regex.capture_names().flatten().next().is_none() {
                    return Err(bad(
                        "read_log: the regex has no named groups ((?P<name>...) or \
                         (?<name>...)): they name the columns"
                            .into(),
                    ));
                }
                LogFormat::Regex(regex)
            }
        })
    }
}

/// The table of `read_log(files, format)`.
pub async fn log_table(files: Vec<Located>, format: &LogFormat) -> Result<Arc<dyn TableProvider>> {
    let (schema, parser): (SchemaRef, Arc<dyn LineParser>) = match format {
        LogFormat::Common | LogFormat::Combined => {
            let combined = matches!(format, LogFormat::Combined);
            let schema = access_schema(combined);
            (schema.clone(), Arc::new(AccessLog { schema, combined }))
        }
        LogFormat::Json => {
            let mut inf = Inference::default();
            for line in sample_lines(&files, SAMPLE_LINES).await? {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    inf.add_record(&v);
                }
            }
            let fields = with_head_and_error(&inf.schema());
            let only: SchemaRef = Arc::new(Schema::new(
                fields.fields()[2..fields.fields().len() - 1].to_vec(),
            ));
            (
                fields.clone(),
                Arc::new(JsonLines {
                    schema: fields,
                    fields: only,
                }),
            )
        }
        LogFormat::Regex(regex) => {
            let mut inf = Inference::default();
            let groups: Vec<&str> = regex.capture_names().flatten().collect();
            for g in &groups {
                inf.declare(g);
            }
            for line in sample_lines(&files, SAMPLE_LINES).await? {
                if let Some(caps) = regex.captures(&line) {
                    inf.add_texts(
                        groups
                            .iter()
                            .map(|g| (*g, caps.name(g).map(|m| m.as_str()))),
                    );
                }
            }
            let fields = inf.schema();
            let schema = with_head_and_error(&fields);
            if schema.fields().len() != fields.fields().len() + 3 {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    "read_log: a named group may not be called filename, line_number or _error",
                ));
            }
            (
                schema.clone(),
                Arc::new(RegexLines {
                    schema,
                    fields,
                    regex: regex.clone(),
                }),
            )
        }
    };
    partitioned(schema, files, parser)
}

fn partitioned(
    schema: SchemaRef,
    files: Vec<Located>,
    parser: Arc<dyn LineParser>,
) -> Result<Arc<dyn TableProvider>> {
    let partitions = files
        .into_iter()
        .map(|file| {
            Arc::new(LinePartition {
                schema: schema.clone(),
                file,
                parser: parser.clone(),
            }) as Arc<dyn datafusion::physical_plan::streaming::PartitionStream>
        })
        .collect();
    Ok(Arc::new(StreamingTable::try_new(schema, partitions)?))
}

/// The table of `read_text(files)`.
pub fn text_table(files: Vec<Located>) -> Result<Arc<dyn TableProvider>> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("filename", DataType::Utf8, false),
        Field::new("line_number", DataType::Int64, false),
        Field::new("line", DataType::Utf8, false),
    ]));
    partitioned(schema.clone(), files, Arc::new(TextLines { schema }))
}

/// `read_text(path)` and `read_log(path, format => ...)`.
#[derive(Debug)]
pub struct ReadLines {
    /// `read_log` when set, else `read_text`.
    pub log: bool,
    pub lake: Arc<Lake>,
}

impl ReadLines {
    fn name(&self) -> &'static str {
        if self.log { "read_log" } else { "read_text" }
    }
}

impl TableFunctionImpl for ReadLines {
    fn call_with_args(
        &self,
        args: TableFunctionArgs,
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        super::NamedTableFunction::call_named(self, args.session(), args.exprs(), &[])
    }
}

impl super::NamedTableFunction for ReadLines {
    fn call_named(
        &self,
        session: &dyn Session,
        positional: &[Expr],
        named: &[(String, Expr)],
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        let fun = self.name();
        let path = match positional {
            [p] => literal_str(p),
            _ => None,
        }
        .ok_or_else(|| {
            plan_error(format!(
                "{fun} takes a path, glob or URL: {fun}('logs/*.log')"
            ))
        })?;
        let mut format = None;
        let mut credentials = Credentials::ByUrl;
        for (name, v) in named {
            let text = || {
                literal_str(v).ok_or_else(|| plan_error(format!("{fun}: {name} must be a string")))
            };
            match name.as_str() {
                "format" if self.log => format = Some(LogFormat::parse(&text()?)?),
                "headers" => credentials = Credentials::Named(text()?),
                _ => return Err(plan_error(format!("{fun} has no option \"{name}\""))),
            }
        }
        let lake = self.lake.clone();
        let log = self.log;
        crate::interrupt::block_on(async move {
            let files = locate(session, &lake, &path, &credentials).await?;
            if log {
                let format = format.unwrap_or(LogFormat::Combined);
                log_table(files, &format).await
            } else {
                text_table(files)
            }
        })
        .map_err(|e| DataFusionError::External(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMBINED: &str = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;

    #[test]
    fn access_lines_parse() {
        let a = parse_access_line(COMBINED, true).unwrap();
        assert_eq!(a.remote_addr, "127.0.0.1");
        assert_eq!(a.ident, None);
        assert_eq!(a.remote_user, Some("frank"));
        assert_eq!(a.time, 971_211_336_000_000);
        assert_eq!(
            (a.method, a.path, a.protocol),
            (Some("GET"), Some("/apache_pb.gif"), Some("HTTP/1.0"))
        );
        assert_eq!((a.status, a.bytes), (200, Some(2326)));
        assert_eq!(
            a.referer.as_deref(),
            Some("http://www.example.com/start.html")
        );
        assert_eq!(
            a.user_agent.as_deref(),
            Some("Mozilla/4.08 [en] (Win98; I ;Nav)")
        );
        // common: the same line without the last two fields.
        let common = COMBINED.split(" \"http").next().unwrap();
        let c = parse_access_line(common, false).unwrap();
        assert_eq!((c.status, c.bytes, c.referer), (200, Some(2326), None));
        // Escaped quotes, "-" sizes and requests, IPv6 addresses.
        let odd = r#"::1 - - [01/Jan/2026:00:00:00 +0000] "GET /q?x=\"y\" HTTP/1.1" 304 - "-" "curl \"8\"""#;
        let o = parse_access_line(odd, true).unwrap();
        assert_eq!(o.path, Some(r#"/q?x=\"y\""#));
        assert_eq!((o.bytes, o.referer.as_deref()), (None, None));
        assert_eq!(o.user_agent.as_deref(), Some("curl \"8\""));
        let dash = parse_access_line(
            r#"10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "-" 408 0"#,
            false,
        )
        .unwrap();
        assert_eq!((dash.method, dash.status), (None, 408));
    }

    #[test]
    fn malformed_access_lines_say_why() {
        let e = |l: &str, combined| parse_access_line(l, combined).unwrap_err();
        assert!(e("", false).contains("remote address"));
        assert!(e("garbage", false).contains("ident"));
        assert!(
            e("1.2.3.4 - - 10/Oct/2000 \"GET / HTTP/1.0\" 200 1", false).contains("[brackets]")
        );
        assert!(
            e("1.2.3.4 - - [10/Oct/2000:13:55:36] \"GET /\" 200 1", false).contains("bad time")
        );
        assert!(
            e(
                "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / 200 1",
                false
            )
            .contains("closing quote")
        );
        assert!(
            e(
                "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /\" OK 1",
                false
            )
            .contains("bad status")
        );
        assert!(
            e(
                "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /\" 200 1",
                true
            )
            .contains("referer")
        );
    }

    fn lines(ls: &[&str]) -> Vec<(u64, String)> {
        ls.iter()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l.to_string()))
            .collect()
    }

    #[test]
    fn regex_and_json_lines_keep_going_past_bad_lines() {
        use datafusion::arrow::array::Array;
        use datafusion::arrow::array::cast::AsArray;
        use datafusion::arrow::datatypes::Int64Type;
        let LogFormat::Regex(regex) =
            LogFormat::parse(r"regex:^(?P<level>\w+) (?P<ms>\d+)ms (?P<msg>.*)$").unwrap()
        else {
            panic!()
        };
        let mut inf = Inference::default();
        inf.add_texts(
            [
                ("level", Some("INFO")),
                ("ms", Some("12")),
                ("msg", Some("ok")),
            ]
            .into_iter(),
        );
        let fields = inf.schema();
        let p = RegexLines {
            schema: with_head_and_error(&fields),
            fields,
            regex,
        };
        let b = p
            .parse(
                "app.log",
                &lines(&[
                    "INFO 12ms ok",
                    "nonsense",
                    "WARN 99999999999999999999ms big",
                ]),
            )
            .unwrap();
        assert_eq!(b.num_columns(), 6);
        let ms = b.column(3).as_primitive::<Int64Type>();
        assert_eq!(ms.value(0), 12);
        assert!(ms.is_null(1) && ms.is_null(2));
        let err = b.column(5).as_string::<i32>();
        assert!(err.is_null(0));
        assert_eq!(err.value(1), "the line does not match the pattern");
        assert!(err.value(2).contains("field \"ms\""), "{}", err.value(2));
        assert_eq!(b.column(2).as_string::<i32>().value(2), "WARN");

        let mut inf = Inference::default();
        inf.add_record(&serde_json::json!({"level": "info", "n": 1}));
        let fields = inf.schema();
        let j = JsonLines {
            schema: with_head_and_error(&fields),
            fields,
        };
        let b = j
            .parse(
                "app.json",
                &lines(&[r#"{"level":"info","n":1}"#, "{oops", "[1]", r#"{"n":"x"}"#]),
            )
            .unwrap();
        let err = b.column(4).as_string::<i32>();
        assert!(err.is_null(0));
        assert!(err.value(1).starts_with("not JSON"));
        assert_eq!(err.value(2), "not a JSON object");
        assert!(err.value(3).contains("bigint"));
        assert!(LogFormat::parse("regex:(\\d+)").is_err());
        assert!(LogFormat::parse("apache").is_err());
    }
}
