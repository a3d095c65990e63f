//! HTTP(S) sources as servers really are: a plain GET whose body is
//! streamed (no Range or HEAD needed), gzip/deflate, redirects with a
//! limit, timeouts, retries with backoff on 429 and 5xx honouring
//! `Retry-After`, credentials from the config file by name, and errors
//! that name the URL without its secrets.
//!
//! ```text
//!  HttpClient::get(url, credentials)
//!    per hop:  check the host (no link-local / metadata address) ─▶ headers of the
//!              header set whose base URL covers this URL ─▶ GET
//!    429, 5xx, dropped connection ─▶ wait (Retry-After or backoff), again
//!    3xx ─▶ next hop (at most max_redirects)      2xx ─▶ Response (body streamed)
//! ```
//!
//! Redirects are followed here rather than by the client library so that
//! every hop is checked and credentials go only to the URLs their header
//! set covers (an API redirecting a download to a storage bucket does not
//! get the bucket the API's token).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use datafusion::catalog::Session;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::config::{HeaderSet, HttpConfig};
use crate::error::{Error, ErrorKind, Result};

/// A body (or file) as a stream of byte chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// The HTTP client every source of one engine shares.
#[derive(Debug)]
pub struct HttpClient {
    config: HttpConfig,
    client: reqwest::Client,
    /// Where statements may read (`[files] roots`).
    roots: super::roots::Roots,
}

/// Which credentials a request carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    /// `headers => 'name'`: that header set, on the URLs under its base URL.
    Named(String),
    /// The header set whose base URL covers the URL, if any.
    ByUrl,
}

/// The engine's client, kept in the session configuration; a default one
/// (no header sets) when the engine was opened without a config file.
pub fn client_of(session: &dyn Session) -> Arc<HttpClient> {
    if let Some(c) = session.config().get_extension::<HttpClient>() {
        return c;
    }
    static DEFAULT: OnceLock<Arc<HttpClient>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            Arc::new(
                HttpClient::new(HttpConfig::default(), Default::default())
                    .expect("default HTTP client"),
            )
        })
        .clone()
}

/// Link-local and cloud metadata addresses: where instance credentials live.
pub fn forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.is_link_local();
            }
            let s = v6.segments();
            // fe80::/10, and AWS's IPv6 metadata endpoint fd00:ec2::254.
            (s[0] & 0xffc0) == 0xfe80
                || v6 == "fd00:ec2::254".parse::<std::net::Ipv6Addr>().unwrap()
        }
    }
}

/// Resolves names for the client, dropping forbidden addresses, so no
/// connection reaches one even if DNS changes between the check of a
/// request and its connection.
struct GuardedResolver {
    allow_link_local: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_link_local;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow || !forbidden_address(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no address that may be reached").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// `url` fit for a message: no user or password, and the values of its
/// query parameters (tokens travel there) replaced by `***`.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        let names: Vec<String> = url
            .query_pairs()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.into_owned()
                } else {
                    format!("{k}=***")
                }
            })
            .collect();
        u.set_query(None);
        let mut s = u.to_string();
        if !names.is_empty() {
            s.push('?');
            s.push_str(&names.join("&"));
        }
        return s;
    }
    u.to_string()
}

/// A server response whose status was a success; the body is not read yet.
pub struct Response {
    /// The URL that answered (after redirects).
    pub url: Url,
    pub headers: HeaderMap,
    inner: reqwest::Response,
    /// Secrets the request carried, scrubbed from any text we show.
    secrets: Vec<String>,
    /// What asking for the rest of the body again takes.
    again: Again,
}

/// The request that gave a response, to send again for the rest of its
/// body when the connection drops part way.
#[derive(Clone)]
struct Again {
    client: reqwest::Client,
    headers: HeaderMap,
    retries: u32,
}

impl Response {
    /// The body, decompressed as `Content-Encoding` says (or as its first
    /// bytes say: a `.gz` file served as is).
    pub fn body(self) -> ByteStream {
        let encoding = match self
            .headers
            .get(reqwest::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("gzip" | "x-gzip") => Encoding::Gzip,
            Some("deflate") => Encoding::Deflate,
            _ => Encoding::Sniff,
        };
        let label = redact(&self.url);
        let raw = resumed(self);
        decompress(raw, encoding, label)
    }

    /// The whole body, at most `limit` bytes (a page of an API).
    pub async fn bytes(self, limit: usize) -> Result<Bytes> {
        let label = redact(&self.url);
        let mut body = self.body();
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
            if out.len() > limit {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!(
                        "{label}: the response is larger than {} MiB; read it without records => \
                         (streamed) or ask the API for smaller pages",
                        limit >> 20
                    ),
                ));
            }
        }
        Ok(out.freeze())
    }
}

/// The raw bytes of a response's body. When the connection drops part
/// way, the rest is asked for again (with backoff, up to `max_retries`
/// times in all): `Range: bytes=N-` when the server said it answers
/// ranges, and the whole body again otherwise, its first N bytes skipped.
/// Either way the server must show it is the same body (the same strong
/// `ETag` or `Last-Modified`, or for a whole body without them the same
/// length); a body that changed, or that nothing identifies, fails the
/// read instead of splicing two different documents.
fn resumed(resp: Response) -> BoxStream<'static, Result<Bytes>> {
    struct State {
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        /// Bytes of the body given out so far.
        offset: u64,
        /// Bytes of the current answer to drop (a whole body sent again).
        skip: u64,
        failures: u32,
        done: bool,
        first: Identity,
        url: Url,
        again: Again,
        secrets: Vec<String>,
    }
    let first = Identity::of(&resp.headers);
    let state = State {
        body: resp.inner.bytes_stream().boxed(),
        offset: 0,
        skip: 0,
        failures: 0,
        done: false,
        first,
        url: resp.url,
        again: resp.again,
        secrets: resp.secrets,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            let failure = match s.body.next().await {
                // An answer may end cleanly short of the length announced
                // (a 206 with less than asked for): the rest is still due.
                None => match s.first.length {
                    Some(total) if s.offset < total => {
                        format!("the answer ended after {} of {total} bytes", s.offset)
                    }
                    _ => return None,
                },
                Some(Ok(mut chunk)) => {
                    if s.skip > 0 {
                        let n = s.skip.min(chunk.len() as u64);
                        s.skip -= n;
                        let _ = chunk.split_to(n as usize);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    s.offset += chunk.len() as u64;
                    return Some((Ok(chunk), s));
                }
                Some(Err(e)) => describe(&e.without_url()),
            };
            // The connection dropped: ask for the rest until it comes or
            // the retries are spent.
            let mut why = failure;
            loop {
                if s.failures >= s.again.retries {
                    s.done = true;
                    let e = Error::new(
                        ErrorKind::ConnectionFailure,
                        scrub(
                            &format!(
                                "reading {}: {why} (after {} bytes and {} attempts)",
                                redact(&s.url),
                                s.offset,
                                s.failures + 1
                            ),
                            &s.secrets,
                        ),
                    );
                    return Some((Err(e), s));
                }
                let wait = backoff(s.failures);
                s.failures += 1;
                tracing::warn!(
                    "reading {}: {why} after {} bytes; asking for the rest in {wait:?}",
                    redact(&s.url),
                    s.offset
                );
                tokio::time::sleep(wait).await;
                match rest_of(&s.url, &s.again, &s.first, s.offset).await {
                    Rest::Body { body, skip } => {
                        s.body = body;
                        s.skip = skip;
                        break;
                    }
                    Rest::Again(reason) => why = reason,
                    Rest::Fail(e) => {
                        s.done = true;
                        return Some((Err(e), s));
                    }
                }
            }
        }
    })
    .boxed()
}

/// What tells one version of a body from another.
#[derive(Debug, Clone, PartialEq)]
struct Identity {
    /// A strong `ETag`, or else `Last-Modified`: usable in `If-Range`.
    validator: Option<HeaderValue>,
    length: Option<u64>,
    ranges: bool,
}

impl Identity {
    fn of(headers: &HeaderMap) -> Identity {
        let get = |h| headers.get(h).filter(|v| !v.is_empty()).cloned();
        let etag = get(reqwest::header::ETAG).filter(|v| !v.as_bytes().starts_with(b"W/"));
        Identity {
            validator: etag.or_else(|| get(reqwest::header::LAST_MODIFIED)),
            length: headers
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.trim().parse().ok()),
            ranges: headers
                .get(reqwest::header::ACCEPT_RANGES)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("bytes")),
        }
    }
}

enum Rest {
    /// The rest comes in `body`, after its first `skip` bytes.
    Body {
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        skip: u64,
    },
    /// A passing failure: try again.
    Again(String),
    Fail(Error),
}

/// Ask for the body of `url` from byte `offset` on.
async fn rest_of(url: &Url, again: &Again, first: &Identity, offset: u64) -> Rest {
    let label = redact(url);
    let mut request = again.client.get(url.clone()).headers(again.headers.clone());
    // A range only with a validator: `If-Range` makes the server send the
    // whole (new) body when it changed, instead of a piece of it.
    if let (true, true, Some(v)) = (first.ranges, offset > 0, &first.validator) {
        request = request
            .header(reqwest::header::RANGE, format!("bytes={offset}-"))
            .header(reqwest::header::IF_RANGE, v.clone());
    }
    let resp = match request.send().await {
        Ok(r) => r,
        Err(e) => return Rest::Again(describe(&e.without_url())),
    };
    let status = resp.status();
    let now = Identity::of(resp.headers());
    let changed = || {
        Rest::Fail(Error::new(
            ErrorKind::RemoteError,
            format!(
                "reading {label}: the connection dropped after {offset} bytes and the body \
                 asked for again is not the same (it changed, or the server gives no ETag, \
                 Last-Modified or length to tell); read it again"
            ),
        ))
    };
    if status == StatusCode::PARTIAL_CONTENT {
        // `bytes START-END/TOTAL`
        let range = resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("bytes "))
            .map(str::to_string)
            .unwrap_or_default();
        let (span, total) = range.split_once('/').unwrap_or((&range, "*"));
        let starts = span
            .split('-')
            .next()
            .and_then(|v| v.trim().parse::<u64>().ok());
        let total = total.trim().parse::<u64>().ok();
        // A 206 need not repeat Last-Modified; `If-Range` already vouched.
        let other_validator = now.validator.is_some() && now.validator != first.validator;
        let other_length = matches!((total, first.length), (Some(t), Some(n)) if t != n);
        if starts != Some(offset) || other_validator || other_length {
            return changed();
        }
        return Rest::Body {
            body: resp.bytes_stream().boxed(),
            skip: 0,
        };
    }
    if status.is_success() {
        // The whole body again: the same one only if the server says so
        // (or if none of the first was given out).
        let same = offset == 0
            || match (&first.validator, &first.length) {
                (Some(v), _) => now.validator.as_ref() == Some(v),
                (None, Some(n)) => now.length == Some(*n),
                (None, None) => false,
            };
        if !same {
            return changed();
        }
        return Rest::Body {
            body: resp.bytes_stream().boxed(),
            skip: offset,
        };
    }
    if retryable(status) {
        return Rest::Again(format!("HTTP {status}"));
    }
    Rest::Fail(Error::new(
        ErrorKind::RemoteError,
        format!("reading {label}: asking for the rest after {offset} bytes: HTTP {status}"),
    ))
}

/// What the body is compressed with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Encoding {
    Gzip,
    Deflate,
    /// gzip if the first two bytes are gzip's magic number, else none.
    Sniff,
}

enum Inflate {
    Plain,
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    Raw(flate2::write::DeflateDecoder<Vec<u8>>),
}

impl Inflate {
    fn choose(encoding: Encoding, head: &[u8]) -> Inflate {
        let gzip = || Inflate::Gzip(flate2::write::MultiGzDecoder::new(Vec::new()));
        match encoding {
            Encoding::Gzip => gzip(),
            Encoding::Sniff if head.starts_with(&[0x1f, 0x8b]) => gzip(),
            Encoding::Sniff => Inflate::Plain,
            // "deflate" is zlib by the standard, raw deflate by some servers.
            Encoding::Deflate
                if head.len() >= 2
                    && head[0] & 0x0f == 8
                    && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0 =>
            {
                Inflate::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
            }
            Encoding::Deflate => Inflate::Raw(flate2::write::DeflateDecoder::new(Vec::new())),
        }
    }

    fn feed(&mut self, data: Bytes) -> std::io::Result<Bytes> {
        use std::io::Write;
        let out = match self {
            Inflate::Plain => return Ok(data),
            Inflate::Gzip(d) => {
                d.write_all(&data)?;
                d.get_mut()
            }
            Inflate::Zlib(d) => {
                d.write_all(&data)?;
                d.get_mut()
            }
            Inflate::Raw(d) => {
                d.write_all(&data)?;
                d.get_mut()
            }
        };
        Ok(Bytes::from(std::mem::take(out)))
    }

    fn finish(&mut self) -> std::io::Result<Bytes> {
        let out = match self {
            Inflate::Plain => return Ok(Bytes::new()),
            Inflate::Gzip(d) => {
                d.try_finish()?;
                d.get_mut()
            }
            Inflate::Zlib(d) => {
                d.try_finish()?;
                d.get_mut()
            }
            Inflate::Raw(d) => {
                d.try_finish()?;
                d.get_mut()
            }
        };
        Ok(Bytes::from(std::mem::take(out)))
    }
}

/// Compressed bytes fed to the decoder at a time. Deflate expands at
/// most about 1032 times, so what one step gives out stays within a few
/// MiB however the input was chunked and whatever it expands to (a small
/// body that inflates to gigabytes streams, it is never held whole).
const INFLATE_STEP: usize = 4096;

/// Decompress a stream of chunks as it flows; `label` names it in errors.
pub fn decompress(input: ByteStream, encoding: Encoding, label: String) -> ByteStream {
    struct State {
        input: ByteStream,
        inflate: Option<Inflate>,
        /// Bytes held until there are two to sniff.
        head: Vec<u8>,
        /// Input not yet fed to the decoder.
        pending: Bytes,
        done: bool,
    }
    let state = State {
        input,
        inflate: None,
        head: Vec::new(),
        pending: Bytes::new(),
        done: false,
    };
    futures::stream::unfold(state, move |mut s| {
        let label = label.clone();
        async move {
            let bad = |e: std::io::Error| {
                Error::new(
                    ErrorKind::DataException,
                    format!("{label}: cannot decompress: {e}"),
                )
            };
            loop {
                if s.done {
                    return None;
                }
                if !s.pending.is_empty() {
                    let inflate = s.inflate.as_mut().expect("chosen");
                    let step = if matches!(inflate, Inflate::Plain) {
                        s.pending.len()
                    } else {
                        s.pending.len().min(INFLATE_STEP)
                    };
                    match inflate.feed(s.pending.split_to(step)) {
                        Ok(out) if out.is_empty() => continue,
                        Ok(out) => return Some((Ok(out), s)),
                        Err(e) => {
                            s.done = true;
                            return Some((Err(bad(e)), s));
                        }
                    }
                }
                match s.input.next().await {
                    Some(Ok(chunk)) => {
                        s.pending = if s.inflate.is_none() {
                            s.head.extend_from_slice(&chunk);
                            if s.head.len() < 2 {
                                continue;
                            }
                            s.inflate = Some(Inflate::choose(encoding, &s.head));
                            Bytes::from(std::mem::take(&mut s.head))
                        } else {
                            chunk
                        };
                    }
                    Some(Err(e)) => {
                        s.done = true;
                        return Some((Err(e), s));
                    }
                    None => {
                        s.done = true;
                        let inflate = s
                            .inflate
                            .get_or_insert_with(|| Inflate::choose(encoding, &s.head));
                        let mut out = match inflate.feed(Bytes::from(std::mem::take(&mut s.head))) {
                            Ok(b) => b.to_vec(),
                            Err(e) => return Some((Err(bad(e)), s)),
                        };
                        match inflate.finish() {
                            Ok(rest) => out.extend_from_slice(&rest),
                            Err(e) => return Some((Err(bad(e)), s)),
                        }
                        if out.is_empty() {
                            return None;
                        }
                        return Some((Ok(Bytes::from(out)), s));
                    }
                }
            }
        }
    })
    // Readers may ask again after the end (sniffing, then reading on).
    .fuse()
    .boxed()
}

/// A reqwest error and its causes, without the URL (which may hold a
/// token): "operation timed out", "connection refused".
fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if e.is_timeout() {
        parts.push("timed out".to_string());
    }
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

/// `text` with every secret replaced by `***`.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Exponential backoff with jitter: about 0.25 s, 0.5 s, 1 s ... at most 10 s.
fn backoff(attempt: u32) -> Duration {
    let base = 250u64.saturating_mul(1 << attempt.min(6)).min(10_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

impl HttpClient {
    pub fn new(config: HttpConfig, roots: super::roots::Roots) -> Result<HttpClient> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.timeout)
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow_link_local: config.allow_link_local,
            }))
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient {
            config,
            client,
            roots,
        })
    }

    /// The allow-list of what statements may read.
    pub fn roots(&self) -> &super::roots::Roots {
        &self.roots
    }

    /// May a statement read at `url` (not an HTTP request of this
    /// client: a file, an object prefix, a URL object_store reads)?
    /// Under a root, and for http(s), not a link-local host.
    pub async fn check_location(&self, url: &Url, shown: &str) -> Result<()> {
        self.roots.check(url, shown)?;
        if matches!(url.scheme(), "http" | "https") {
            self.check_host(url).await?;
        }
        Ok(())
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Check `credentials` against the URL a statement starts from: a
    /// named set must exist and cover it.
    pub fn check_credentials(&self, url: &Url, credentials: &Credentials) -> Result<()> {
        if let Credentials::Named(name) = credentials {
            let set = self.config.header_set(name).ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedObject,
                    format!("no header set \"{name}\" in the config file ([http.\"{name}\"])"),
                )
            })?;
            if !set.applies_to(url) {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!(
                        "header set \"{name}\" is for URLs under {}, not {}",
                        set.base_url,
                        redact(url)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn header_set(&self, url: &Url, credentials: &Credentials) -> Option<&HeaderSet> {
        match credentials {
            Credentials::Named(name) => self
                .config
                .header_set(name)
                .filter(|set| set.applies_to(url)),
            Credentials::ByUrl => self.config.header_set_for(url),
        }
    }

    fn headers_for(&self, set: Option<&HeaderSet>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate"),
        );
        if let Some(set) = set {
            for (k, v) in &set.headers {
                // Checked when the config file was read.
                if let (Ok(k), Ok(mut v)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(v),
                ) {
                    v.set_sensitive(true);
                    h.insert(k, v);
                }
            }
            if let Some(t) = &set.bearer_token
                && let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {t}"))
            {
                v.set_sensitive(true);
                h.insert(reqwest::header::AUTHORIZATION, v);
            }
        }
        h
    }

    /// Refuse a host that is, or resolves to, a link-local or metadata
    /// address, unless the config file allows it.
    async fn check_host(&self, url: &Url) -> Result<()> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::not_supported(format!(
                "reading {}:// URLs over HTTP",
                url.scheme()
            )));
        }
        if self.config.allow_link_local {
            return Ok(());
        }
        let redacted = redact(url);
        let refused = |ip: IpAddr| {
            Error::new(
                ErrorKind::InsufficientPrivilege,
                format!(
                    "refusing to read {redacted}: its host is the link-local or cloud metadata \
                     address {ip}"
                ),
            )
            .with_hint(
                "to allow it, set allow_link_local = true in the [http] section of the config file",
            )
        };
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(url::Host::Domain(d)) => {
                let port = url.port_or_known_default().unwrap_or(80);
                tokio::net::lookup_host((d, port))
                    .await
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::ConnectionFailure,
                            format!("cannot resolve the host of {redacted}: {e}"),
                        )
                    })?
                    .map(|a| a.ip())
                    .collect()
            }
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("{redacted} has no host"),
                ));
            }
        };
        if let Some(ip) = host.into_iter().find(|ip| forbidden_address(*ip)) {
            return Err(refused(ip));
        }
        Ok(())
    }

    /// GET `url`: redirects followed, transient failures retried. Fails
    /// with the status for anything but a success.
    pub async fn get(&self, url: &Url, credentials: &Credentials) -> Result<Response> {
        let mut url = url.clone();
        let mut hops = 0usize;
        let mut attempt = 0u32;
        loop {
            // Every hop: a redirect must not lead out of the roots, nor to
            // a metadata address.
            self.check_location(&url, &redact(&url)).await?;
            let set = self.header_set(&url, credentials);
            let secrets: Vec<String> = set
                .map(|s| s.secrets().into_iter().map(String::from).collect())
                .unwrap_or_default();
            let redacted = redact(&url);
            let headers = self.headers_for(set);
            let sent = self
                .client
                .get(url.clone())
                .headers(headers.clone())
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    if attempt < self.config.max_retries {
                        let wait = backoff(attempt);
                        tracing::warn!(
                            "GET {redacted}: {}; retrying in {wait:?}",
                            describe(&e.without_url())
                        );
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(Error::new(
                        ErrorKind::ConnectionFailure,
                        scrub(
                            &format!(
                                "GET {redacted} failed after {} attempts: {}",
                                attempt + 1,
                                describe(&e.without_url())
                            ),
                            &secrets,
                        ),
                    ));
                }
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(Response {
                    url,
                    headers: resp.headers().clone(),
                    inner: resp,
                    secrets,
                    again: Again {
                        client: self.client.clone(),
                        headers,
                        retries: self.config.max_retries,
                    },
                });
            }
            if status.is_redirection()
                && let Some(location) = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
            {
                hops += 1;
                if hops > self.config.max_redirects {
                    return Err(Error::new(
                        ErrorKind::RemoteError,
                        format!(
                            "GET {redacted}: more than {} redirects",
                            self.config.max_redirects
                        ),
                    ));
                }
                url = url.join(location).map_err(|e| {
                    Error::new(
                        ErrorKind::RemoteError,
                        format!("GET {redacted}: bad redirect location: {e}"),
                    )
                })?;
                continue;
            }
            if retryable(status) && attempt < self.config.max_retries {
                let wait = retry_after(resp.headers()).unwrap_or_else(|| backoff(attempt));
                if wait > self.config.max_retry_wait {
                    return Err(Error::new(
                        ErrorKind::RemoteError,
                        format!(
                            "GET {redacted}: HTTP {status}; the server asks to wait {} s, more \
                             than max_retry_wait ({} s)",
                            wait.as_secs(),
                            self.config.max_retry_wait.as_secs()
                        ),
                    ));
                }
                tracing::warn!("GET {redacted}: HTTP {status}; retrying in {wait:?}");
                drop(resp);
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Err(status_error(&redacted, status, resp, &secrets, attempt).await);
        }
    }
}

/// The error for a response that is not a success: the status, and the
/// start of what the server said (with our secrets scrubbed from it).
async fn status_error(
    redacted: &str,
    status: StatusCode,
    resp: reqwest::Response,
    secrets: &[String],
    attempt: u32,
) -> Error {
    let kind = match status.as_u16() {
        404 | 410 => ErrorKind::UndefinedFile,
        _ => ErrorKind::RemoteError,
    };
    let tries = if attempt > 0 {
        format!(" (after {} attempts)", attempt + 1)
    } else {
        String::new()
    };
    let mut e = Error::new(kind, format!("GET {redacted}: HTTP {status}{tries}"));
    // Only the start of the error body is shown: read no more than that.
    let start = async {
        let mut resp = resp;
        let mut out = Vec::new();
        while out.len() < 300 {
            match resp.chunk().await {
                Ok(Some(chunk)) => out.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    };
    let body = tokio::time::timeout(Duration::from_secs(5), start).await;
    if let Ok(Ok(body)) = body {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() {
            e = e.with_detail(format!("the server said: {}", scrub(&text, secrets)));
        }
    }
    e
}

/// The `rel="next"` target of a `Link` header, resolved against `base`.
pub fn next_link(headers: &HeaderMap, base: &Url) -> Option<Url> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_link_header)
        .find(|(_, rels)| rels.iter().any(|r| r.eq_ignore_ascii_case("next")))
        .and_then(|(target, _)| base.join(&target).ok())
}

/// `<url>; rel="next last", <url2>; rel=prev` → `[(url, [next, last]), (url2, [prev])]`.
pub fn parse_link_header(value: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let target = rest[open + 1..open + close].trim().to_string();
        rest = &rest[open + close + 1..];
        // Parameters up to the next link: a comma outside quotes.
        let mut end = rest.len();
        let mut quoted = false;
        for (i, c) in rest.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &rest[..end];
        rest = &rest[end..];
        let mut rels = Vec::new();
        for p in params.split(';') {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("rel")
            {
                rels.extend(
                    v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .map(str::to_string),
                );
            }
        }
        out.push((target, rels));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    #[test]
    fn link_headers_give_the_next_page() {
        let links = parse_link_header(
            r#"<https://api.x.com/items?page=3>; rel="next", <https://api.x.com/items?page=9>; rel="last", <https://a/b?q=1,2>; title="a, b"; rel="prev first""#,
        );
        assert_eq!(links.len(), 3);
        assert_eq!(links[0].0, "https://api.x.com/items?page=3");
        assert_eq!(links[0].1, ["next"]);
        assert_eq!(links[2].0, "https://a/b?q=1,2");
        assert_eq!(links[2].1, ["prev", "first"]);
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("</items?page=2&per_page=50>; rel=next"),
        );
        let base = Url::parse("http://127.0.0.1:8080/items?page=1").unwrap();
        assert_eq!(
            next_link(&h, &base).unwrap().as_str(),
            "http://127.0.0.1:8080/items?page=2&per_page=50"
        );
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("</items?page=1>; rel=\"prev\""),
        );
        assert!(next_link(&h, &base).is_none());
        assert!(parse_link_header("garbage").is_empty());
    }

    #[test]
    fn urls_in_messages_hold_no_secrets() {
        let u =
            Url::parse("https://user:pw@api.x.com/v1/items?api_key=s3cr3t&page=2&flag").unwrap();
        let r = redact(&u);
        assert_eq!(r, "https://api.x.com/v1/items?api_key=***&page=***&flag");
        assert!(!r.contains("s3cr3t") && !r.contains("pw"));
        assert_eq!(
            redact(&Url::parse("http://h:81/a").unwrap()),
            "http://h:81/a"
        );
    }

    #[test]
    fn metadata_addresses_are_forbidden() {
        let f = |s: &str| forbidden_address(s.parse().unwrap());
        assert!(f("169.254.169.254"));
        assert!(f("169.254.0.1"));
        assert!(f("fd00:ec2::254"));
        assert!(f("fe80::1"));
        assert!(f("::ffff:169.254.169.254"));
        assert!(!f("127.0.0.1"));
        assert!(!f("10.0.0.1"));
        assert!(!f("::1"));
        assert!(!f("fd00:ec2::253"));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        for a in 0..10 {
            assert!(backoff(a) <= Duration::from_secs(10));
        }
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    async fn inflate(chunks: Vec<Vec<u8>>, encoding: Encoding) -> Result<Vec<u8>> {
        let input = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed();
        let out: Vec<Bytes> = decompress(input, encoding, "test".into())
            .try_collect()
            .await?;
        Ok(out.concat())
    }

    #[tokio::test]
    async fn bodies_are_decompressed_as_they_stream() {
        let text = b"line one\nline two\n".repeat(1000);
        // Two gzip members (a rotated log concatenated), cut into odd pieces.
        let mut both = gz(&text);
        both.extend(gz(b"tail\n"));
        let pieces: Vec<Vec<u8>> = both.chunks(7).map(|c| c.to_vec()).collect();
        let mut want = text.clone();
        want.extend_from_slice(b"tail\n");
        assert_eq!(inflate(pieces, Encoding::Sniff).await.unwrap(), want);
        // Plain bytes pass through, even a single byte.
        assert_eq!(
            inflate(vec![b"a".to_vec()], Encoding::Sniff).await.unwrap(),
            b"a"
        );
        assert_eq!(
            inflate(vec![b"ab".to_vec(), b"c".to_vec()], Encoding::Sniff)
                .await
                .unwrap(),
            b"abc"
        );
        // deflate as zlib, and as raw deflate.
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(b"{\"a\":1}").unwrap();
        assert_eq!(
            inflate(vec![z.finish().unwrap()], Encoding::Deflate)
                .await
                .unwrap(),
            b"{\"a\":1}"
        );
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        d.write_all(b"{\"b\":2}").unwrap();
        assert_eq!(
            inflate(vec![d.finish().unwrap()], Encoding::Deflate)
                .await
                .unwrap(),
            b"{\"b\":2}"
        );
        // Garbage that claims to be gzip fails with a message.
        let e = inflate(vec![vec![0x1f, 0x8b, 1, 2, 3, 4]], Encoding::Sniff)
            .await
            .unwrap_err();
        assert!(e.message.contains("cannot decompress"), "{}", e.message);
    }
    #[tokio::test]
    async fn a_body_that_inflates_hugely_streams_in_bounded_pieces() {
        // 256 MiB of zeros is about 250 KiB of gzip, given as one chunk.
        let zeros = vec![0u8; 1 << 20];
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..256 {
            std::io::Write::write_all(&mut z, &zeros).unwrap();
        }
        let packed = z.finish().unwrap();
        let input = futures::stream::iter([Ok(Bytes::from(packed))]).boxed();
        let mut out = decompress(input, Encoding::Sniff, "bomb".into());
        let (mut total, mut largest) = (0usize, 0usize);
        while let Some(piece) = out.next().await {
            let piece = piece.unwrap();
            assert!(piece.iter().all(|b| *b == 0));
            total += piece.len();
            largest = largest.max(piece.len());
        }
        assert_eq!(total, 256 << 20);
        assert!(largest <= 8 << 20, "a piece of {largest} bytes");
    }
}
