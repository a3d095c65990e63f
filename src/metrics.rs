//! Process-wide metrics and the Prometheus endpoint that exposes them.
//!
//! The server counts connections and statements, the write path counts rows
//! and bytes, and the scheduler reports refresh runs and how stale each
//! object is. Everything lives in statics, so callers record a value with one
//! function call and need no handle. `sluice serve --metrics HOST:PORT` runs
//! [`serve`], which answers `GET /metrics` with [`render`] in the Prometheus
//! text format 0.0.4.
//!
//! The per-statement paths touch atomics only; the maps behind the labelled
//! scheduler families take a lock, which is fine at their rate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

static CONNECTIONS_OPEN: AtomicI64 = AtomicI64::new(0);
static CONNECTIONS_TOTAL: AtomicU64 = AtomicU64::new(0);
static QUERIES_OK: AtomicU64 = AtomicU64::new(0);
static QUERIES_ERROR: AtomicU64 = AtomicU64::new(0);
static QUERY_DURATION: Histogram = Histogram::new();
static KEY_READS: AtomicU64 = AtomicU64::new(0);
static ROWS_WRITTEN: AtomicU64 = AtomicU64::new(0);
static BYTES_WRITTEN: AtomicU64 = AtomicU64::new(0);
static REFRESH_RUNS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
static FRESHNESS_LAG: Mutex<BTreeMap<String, f64>> = Mutex::new(BTreeMap::new());

/// A client connection was accepted.
pub fn connection_opened() {
    CONNECTIONS_OPEN.fetch_add(1, Ordering::Relaxed);
    CONNECTIONS_TOTAL.fetch_add(1, Ordering::Relaxed);
}

/// A client connection ended, whichever side closed it.
pub fn connection_closed() {
    CONNECTIONS_OPEN.fetch_sub(1, Ordering::Relaxed);
}

/// A statement finished, successfully or not, after `elapsed`.
pub fn query_finished(ok: bool, elapsed: Duration) {
    let outcome = if ok { &QUERIES_OK } else { &QUERIES_ERROR };
    outcome.fetch_add(1, Ordering::Relaxed);
    QUERY_DURATION.observe(elapsed);
}

/// A lookup by key was answered by the key reader, without planning.
pub fn key_read() {
    KEY_READS.fetch_add(1, Ordering::Relaxed);
}

/// Rows and bytes were committed to a table.
pub fn written(rows: u64, bytes: u64) {
    ROWS_WRITTEN.fetch_add(rows, Ordering::Relaxed);
    BYTES_WRITTEN.fetch_add(bytes, Ordering::Relaxed);
}

/// A scheduled refresh run ended with `status` (succeeded, failed, ...).
pub fn refresh_finished(status: &str) {
    let mut runs = lock(&REFRESH_RUNS);
    match runs.get_mut(status) {
        Some(count) => *count += 1,
        None => {
            runs.insert(status.to_owned(), 1);
        }
    }
}

/// Sets how many seconds `object` (`schema.name`) lags behind its sources.
/// `None` drops the series, for objects that were removed or are no longer
/// scheduled, so a stale lag does not linger in dashboards.
pub fn set_freshness_lag(object: &str, seconds: Option<f64>) {
    let mut lags = lock(&FRESHNESS_LAG);
    match seconds {
        Some(seconds) => {
            lags.insert(object.to_owned(), seconds);
        }
        None => {
            lags.remove(object);
        }
    }
}

/// All metrics in the Prometheus text exposition format 0.0.4.
pub fn render() -> String {
    let mut out = String::with_capacity(4096);

    family(
        &mut out,
        "sluice_connections",
        "gauge",
        "Client connections open now.",
    );
    sample(
        &mut out,
        "sluice_connections",
        &[],
        &CONNECTIONS_OPEN.load(Ordering::Relaxed).to_string(),
    );

    family(
        &mut out,
        "sluice_connections_total",
        "counter",
        "Client connections accepted since the server started.",
    );
    counter_sample(
        &mut out,
        "sluice_connections_total",
        &[],
        &CONNECTIONS_TOTAL,
    );

    family(
        &mut out,
        "sluice_queries_total",
        "counter",
        "Statements finished, by outcome.",
    );
    counter_sample(
        &mut out,
        "sluice_queries_total",
        &[("status", "ok")],
        &QUERIES_OK,
    );
    counter_sample(
        &mut out,
        "sluice_queries_total",
        &[("status", "error")],
        &QUERIES_ERROR,
    );

    family(
        &mut out,
        "sluice_key_reads_total",
        "counter",
        "Lookups by key answered from the pages that may hold the key, without planning a query.",
    );
    counter_sample(&mut out, "sluice_key_reads_total", &[], &KEY_READS);

    family(
        &mut out,
        "sluice_query_duration_seconds",
        "histogram",
        "Time taken by each statement, in seconds.",
    );
    QUERY_DURATION.render(&mut out, "sluice_query_duration_seconds");

    family(
        &mut out,
        "sluice_rows_written_total",
        "counter",
        "Rows committed to tables.",
    );
    counter_sample(&mut out, "sluice_rows_written_total", &[], &ROWS_WRITTEN);

    family(
        &mut out,
        "sluice_bytes_written_total",
        "counter",
        "Bytes committed to tables.",
    );
    counter_sample(&mut out, "sluice_bytes_written_total", &[], &BYTES_WRITTEN);

    family(
        &mut out,
        "sluice_refresh_runs_total",
        "counter",
        "Scheduled refresh runs finished, by status.",
    );
    // Copy out first so rendering never holds the lock the scheduler wants.
    let runs = lock(&REFRESH_RUNS).clone();
    for (status, count) in &runs {
        sample(
            &mut out,
            "sluice_refresh_runs_total",
            &[("status", status)],
            &count.to_string(),
        );
    }

    family(
        &mut out,
        "sluice_freshness_lag_seconds",
        "gauge",
        "How far each scheduled object lags behind its sources, in seconds.",
    );
    let lags = lock(&FRESHNESS_LAG).clone();
    for (object, seconds) in &lags {
        sample(
            &mut out,
            "sluice_freshness_lag_seconds",
            &[("object", object)],
            &format_float(*seconds),
        );
    }

    out
}

/// Upper bounds of the duration buckets: nanoseconds for counting, so the
/// inclusive `le` comparison is exact, and the label text as published.
const BUCKETS: [(u64, &str); 14] = [
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
    (2_500_000_000, "2.5"),
    (5_000_000_000, "5"),
    (10_000_000_000, "10"),
];

/// A histogram updated with two relaxed atomic adds per observation.
///
/// Each slot counts only its own bucket; the cumulative counts and `_count`
/// are summed at render time, so a scrape that races with observations still
/// shows buckets that never decrease and a `_count` equal to `+Inf`.
struct Histogram {
    /// One slot per bound in [`BUCKETS`], and a last one for `+Inf`.
    slots: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Self {
            slots: [const { AtomicU64::new(0) }; BUCKETS.len() + 1],
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.slots[bucket_index(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (slot, (_, le)) in self.slots.iter().zip(BUCKETS.iter()) {
            cumulative += slot.load(Ordering::Relaxed);
            sample(out, &bucket, &[("le", le)], &cumulative.to_string());
        }
        cumulative += self.slots[BUCKETS.len()].load(Ordering::Relaxed);
        sample(out, &bucket, &[("le", "+Inf")], &cumulative.to_string());
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        sample(out, &format!("{name}_sum"), &[], &format_float(sum));
        sample(out, &format!("{name}_count"), &[], &cumulative.to_string());
    }
}

/// The slot an observation of `nanos` falls into; bounds are inclusive.
fn bucket_index(nanos: u64) -> usize {
    BUCKETS.partition_point(|&(bound, _)| bound < nanos)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a map that is still
    // consistent (every update is a single insert or increment), so keep
    // counting rather than take the metrics down with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter_sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &AtomicU64) {
    sample(
        out,
        name,
        labels,
        &value.load(Ordering::Relaxed).to_string(),
    );
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, text)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(out, text);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Rust's `Display` for floats never uses an exponent, which Prometheus
/// parses; only the non-finite values need Prometheus's own spelling.
fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

/// Longest request head accepted; a scrape request is a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to accept the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long unread request bytes are drained after responding.
const LINGER: Duration = Duration::from_secs(1);

/// Serves `/metrics` on `listener` until the process exits. Each connection
/// carries one request and is then closed; a failing connection only ends
/// itself.
pub async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle_connection(stream));
            }
            // Usually out of file descriptors; retrying at once would spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn handle_connection(mut stream: TcpStream) {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        _ => return,
    };
    let response = respond(&head);
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    // Closing with unread input (say a POST body) makes the kernel send a
    // reset, which can destroy the response before the client reads it.
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 1024];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Reads up to and including the blank line that ends the request head.
/// `None` when the peer closes first, fails, or sends too much.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..]).await.ok()?;
        if n == 0 {
            return None;
        }
        let from = len.saturating_sub(3);
        len += n;
        if let Some(at) = find(&buf[from..len], b"\r\n\r\n") {
            buf.truncate(from + at + 4);
            return Some(buf);
        }
        if len == MAX_HEAD {
            return None;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The whole HTTP response, status line to body, for one request head.
fn respond(head: &[u8]) -> Vec<u8> {
    let request = match parse_head(head) {
        Some(request) => request,
        None => return response(400, "Bad Request", &[], "bad request\n", true),
    };
    let with_body = request.method != "HEAD";
    if request.method != "GET" {
        return response(
            405,
            "Method Not Allowed",
            &[("Allow", "GET")],
            "method not allowed\n",
            with_body,
        );
    }
    if request.path != "/metrics" {
        return response(404, "Not Found", &[], "not found\n", true);
    }
    let body = render();
    response(200, "OK", &[], &body, true)
}

struct Request<'a> {
    method: &'a str,
    path: &'a str,
}

/// Checks the request line and header lines just enough to refuse what is
/// not HTTP/1.x, and extracts the method and the path without its query.
fn parse_head(head: &[u8]) -> Option<Request<'_>> {
    let head = std::str::from_utf8(head).ok()?;
    let head = head.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?;
    for header in lines {
        let (name, _) = header.split_once(':')?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return None;
        }
        if header.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return None;
        }
    }

    let mut parts = request_line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return None;
    }
    if !version.starts_with("HTTP/1.") || version.len() != 8 {
        return None;
    }
    if !version.as_bytes()[7].is_ascii_digit() {
        return None;
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }

    // Absolute-form targets come from clients that talk through a proxy.
    let origin = ["http://", "https://"]
        .iter()
        .find_map(|scheme| target.strip_prefix(scheme))
        .map(|rest| rest.find('/').map_or("/", |at| &rest[at..]))
        .unwrap_or(target);
    let path = origin.split(['?', '#']).next().unwrap_or(origin);
    Some(Request { method, path })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn response(
    code: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &str,
    with_body: bool,
) -> Vec<u8> {
    let content_type = if code == 200 {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.push_str("\r\n");
    if with_body {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILIES: [(&str, &str); 8] = [
        ("sluice_connections", "gauge"),
        ("sluice_connections_total", "counter"),
        ("sluice_queries_total", "counter"),
        ("sluice_query_duration_seconds", "histogram"),
        ("sluice_rows_written_total", "counter"),
        ("sluice_bytes_written_total", "counter"),
        ("sluice_refresh_runs_total", "counter"),
        ("sluice_freshness_lag_seconds", "gauge"),
    ];

    /// One sample line: name, labels in order, value.
    type Sample = (String, Vec<(String, String)>, f64);

    fn parse_value(text: &str) -> Option<f64> {
        match text {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            "NaN" => Some(f64::NAN),
            _ if text
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
            {
                text.parse().ok()
            }
            _ => None,
        }
    }

    fn is_name(name: &str, first_extra: &[u8]) -> bool {
        let mut bytes = name.bytes();
        matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || first_extra.contains(&b))
            && bytes.all(|b| b.is_ascii_alphanumeric() || first_extra.contains(&b))
    }

    /// Parses `name{label="value",...} value` or `name value`, strictly.
    fn parse_sample(line: &str) -> Option<Sample> {
        let name_end = line.find(['{', ' '])?;
        let name = &line[..name_end];
        if !is_name(name, b"_:") {
            return None;
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(mut inner) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = inner.strip_prefix('}') {
                    rest = after;
                    break;
                }
                if !labels.is_empty() {
                    inner = inner.strip_prefix(',')?;
                }
                let (label, after) = inner.split_once("=\"")?;
                if !is_name(label, b"_") {
                    return None;
                }
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    let (i, c) = chars.next()?;
                    match c {
                        '"' => break i,
                        '\\' => match chars.next()?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            _ => return None,
                        },
                        '\n' => return None,
                        c => value.push(c),
                    }
                };
                labels.push((label.to_owned(), value));
                inner = &after[end + 1..];
            }
        }
        let value = parse_value(rest.strip_prefix(' ')?)?;
        Some((name.to_owned(), labels, value))
    }

    fn samples(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| parse_sample(line).unwrap_or_else(|| panic!("bad line: {line:?}")))
            .collect()
    }

    fn value_of(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        samples(text).into_iter().find_map(|(n, l, v)| {
            let same = n == name
                && l.len() == labels.len()
                && l.iter().zip(labels).all(|(a, b)| a.0 == b.0 && a.1 == b.1);
            same.then_some(v)
        })
    }

    fn buckets(text: &str, name: &str) -> Vec<(String, f64)> {
        let bucket = format!("{name}_bucket");
        samples(text)
            .into_iter()
            .filter(|(n, _, _)| *n == bucket)
            .map(|(_, labels, v)| {
                assert_eq!(labels.len(), 1);
                assert_eq!(labels[0].0, "le");
                (labels[0].1.clone(), v)
            })
            .collect()
    }

    #[test]
    fn every_family_has_help_and_type() {
        let text = render();
        for (name, kind) in FAMILIES {
            assert!(text.contains(&format!("# HELP {name} ")), "{name} help");
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} type"
            );
        }
    }

    #[test]
    fn every_sample_line_parses_and_belongs_to_a_declared_family() {
        refresh_finished("parser \"check\"");
        set_freshness_lag("parser.check", Some(12.5));
        let text = render();
        assert!(text.ends_with('\n'));
        let mut declared: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(comment) = line.strip_prefix("# ") {
                let mut words = comment.splitn(3, ' ');
                let (keyword, name) = (words.next().unwrap(), words.next().unwrap());
                assert!(keyword == "HELP" || keyword == "TYPE", "{line}");
                if keyword == "TYPE" {
                    declared.push((name.to_owned(), words.next().unwrap().to_owned()));
                }
                continue;
            }
            let (name, _, _) = parse_sample(line).unwrap_or_else(|| panic!("bad line {line:?}"));
            let (family, kind) = declared.last().expect("sample before any TYPE");
            let suffixes: &[&str] = if kind == "histogram" {
                &["_bucket", "_sum", "_count"]
            } else {
                &[""]
            };
            assert!(
                suffixes.iter().any(|s| name == format!("{family}{s}")),
                "{name} outside family {family}"
            );
        }
        set_freshness_lag("parser.check", None);
    }

    #[test]
    fn float_formatting() {
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(0.0005), "0.0005");
        assert_eq!(format_float(3.0), "3");
        assert_eq!(parse_value(&format_float(1e300)), Some(1e300));
        assert_eq!(parse_value(&format_float(1e-12)), Some(1e-12));
    }

    #[test]
    fn bucket_bounds_are_inclusive() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(500_000), 0);
        assert_eq!(bucket_index(500_001), 1);
        assert_eq!(bucket_index(10_000_000_000), BUCKETS.len() - 1);
        assert_eq!(bucket_index(10_000_000_001), BUCKETS.len());
        assert_eq!(bucket_index(u64::MAX), BUCKETS.len());
    }

    #[test]
    fn local_histogram_is_cumulative() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_micros(300));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(60));
        histogram.observe(Duration::MAX);
        let mut text = String::new();
        histogram.render(&mut text, "h");
        let got = buckets(&text, "h");
        let le: Vec<&str> = got.iter().map(|(le, _)| le.as_str()).collect();
        let mut expected_le: Vec<&str> = BUCKETS.iter().map(|(_, le)| *le).collect();
        expected_le.push("+Inf");
        assert_eq!(le, expected_le);
        let counts: Vec<f64> = got.iter().map(|(_, v)| *v).collect();
        assert_eq!(
            counts,
            [1., 1., 1., 3., 3., 3., 3., 3., 3., 3., 3., 3., 3., 3., 5.]
        );
        assert_eq!(value_of(&text, "h_count", &[]), Some(5.0));
        let sum = value_of(&text, "h_sum", &[]).unwrap();
        assert!(sum > 60.0 && sum.is_finite());
    }

    #[test]
    fn global_histogram_counts_queries() {
        let name = "sluice_query_duration_seconds";
        let before = render();
        query_finished(true, Duration::from_millis(3));
        query_finished(false, Duration::from_secs(20));
        let after = render();

        for text in [&before, &after] {
            let got = buckets(text, name);
            assert_eq!(got.len(), BUCKETS.len() + 1);
            assert!(got.windows(2).all(|w| w[0].1 <= w[1].1), "not cumulative");
            let (le, inf) = got.last().unwrap();
            assert_eq!(le, "+Inf");
            assert_eq!(value_of(text, &format!("{name}_count"), &[]), Some(*inf));
        }

        let delta = |le: &str| {
            let find = |text: &str| {
                buckets(text, name)
                    .into_iter()
                    .find(|(l, _)| l == le)
                    .unwrap()
                    .1
            };
            find(&after) - find(&before)
        };
        assert!(delta("0.005") >= 1.0);
        assert!(delta("+Inf") >= 2.0);
        let queries = |text: &str, status| {
            value_of(text, "sluice_queries_total", &[("status", status)]).unwrap()
        };
        assert!(queries(&after, "ok") - queries(&before, "ok") >= 1.0);
        assert!(queries(&after, "error") - queries(&before, "error") >= 1.0);
    }

    #[test]
    fn counters_move() {
        let before = render();
        connection_opened();
        written(10, 1000);
        refresh_finished("succeeded");
        let after = render();
        connection_closed();
        let delta = |name, labels: &[(&str, &str)]| {
            value_of(&after, name, labels).unwrap() - value_of(&before, name, labels).unwrap_or(0.0)
        };
        assert!(delta("sluice_connections_total", &[]) >= 1.0);
        assert!(delta("sluice_rows_written_total", &[]) >= 10.0);
        assert!(delta("sluice_bytes_written_total", &[]) >= 1000.0);
        assert!(delta("sluice_refresh_runs_total", &[("status", "succeeded")]) >= 1.0);
    }

    #[test]
    fn label_values_are_escaped() {
        let object = "we\"ird\\sch\nema.t";
        set_freshness_lag(object, Some(1.5));
        refresh_finished("odd \"status\"");
        let text = render();
        assert!(
            text.contains(
                "sluice_freshness_lag_seconds{object=\"we\\\"ird\\\\sch\\nema.t\"} 1.5\n"
            ),
            "{text}"
        );
        assert!(text.contains("sluice_refresh_runs_total{status=\"odd \\\"status\\\"\"} "));
        assert_eq!(
            value_of(&text, "sluice_freshness_lag_seconds", &[("object", object)]),
            Some(1.5)
        );
        set_freshness_lag(object, None);
    }

    #[test]
    fn freshness_lag_none_removes_the_series() {
        set_freshness_lag("lag.removed", Some(42.0));
        set_freshness_lag("lag.removed", Some(7.25));
        let text = render();
        assert_eq!(
            value_of(
                &text,
                "sluice_freshness_lag_seconds",
                &[("object", "lag.removed")]
            ),
            Some(7.25)
        );
        set_freshness_lag("lag.removed", None);
        let text = render();
        assert!(!text.contains("lag.removed"));
        assert!(text.contains("# TYPE sluice_freshness_lag_seconds gauge\n"));
    }

    #[test]
    fn request_heads() {
        fn path(head: &str) -> Option<(&str, &str)> {
            parse_head(head.as_bytes()).map(|r| (r.method, r.path))
        }
        assert_eq!(
            path("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            path("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            path("GET http://h:9/metrics HTTP/1.1\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(path("GET http://h:9 HTTP/1.1\r\n\r\n"), Some(("GET", "/")));
        assert_eq!(path("GET /metrics HTTP/2.0\r\n\r\n"), None);
        assert_eq!(path("GET /metrics\r\n\r\n"), None);
        assert_eq!(path("GET  /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(path("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n"), None);
        assert_eq!(path("GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n"), None);
        assert_eq!(path("G(T /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(path("\r\n\r\n"), None);
        assert!(parse_head(b"GET /\xff HTTP/1.1\r\n\r\n").is_none());
    }

    async fn start() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener));
        addr
    }

    /// Sends `request` raw and returns the status code, headers and body.
    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("no head");
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, head.to_owned(), body.to_owned())
    }

    #[tokio::test]
    async fn endpoint_serves_metrics() {
        let addr = start().await;
        let (code, head, body) = exchange(
            addr,
            b"GET /metrics?name[]=x HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
        )
        .await;
        assert_eq!(code, 200);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"));
        assert!(head.contains("\r\nConnection: close"));
        assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
        for (name, kind) in FAMILIES {
            assert!(body.contains(&format!("# TYPE {name} {kind}\n")));
        }
        samples(&body);
    }

    #[tokio::test]
    async fn endpoint_refuses_other_requests() {
        let addr = start().await;
        let (code, _, _) = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(code, 404);
        let (code, _, _) = exchange(addr, b"GET /metricsx HTTP/1.1\r\n\r\n").await;
        assert_eq!(code, 404);

        let (code, head, _) = exchange(
            addr,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await;
        assert_eq!(code, 405);
        assert!(head.contains("\r\nAllow: GET"));

        let (code, _, body) = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert_eq!(code, 405);
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn endpoint_survives_garbage() {
        let addr = start().await;
        let (code, _, _) = exchange(addr, b"\x00\xff\xfe garbage\x01\r\n\r\n").await;
        assert_eq!(code, 400);
        let (code, _, _) = exchange(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        assert_eq!(code, 400);

        // A peer that hangs up early, and one that sends an oversized head,
        // get no answer but must not disturb anyone else.
        drop(TcpStream::connect(addr).await.unwrap());
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _ = stream.write_all(&[b'a'; MAX_HEAD + 100]).await;
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        assert!(rest.is_empty());

        let (code, _, body) = exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n").await;
        assert_eq!(code, 200);
        assert!(body.contains("# TYPE sluice_connections gauge\n"));
    }
}
