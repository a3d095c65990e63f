//! The config file: storage options per lake, and what HTTP sources may
//! reach and with which credentials.
//!
//! ```toml
//! [lake."s3://warehouse/sluice"]
//! AWS_ENDPOINT_URL = "http://minio:9000"
//! AWS_ACCESS_KEY_ID = "sluice"
//! AWS_SECRET_ACCESS_KEY = "..."
//! AWS_REGION = "us-east-1"
//! AWS_ALLOW_HTTP = true
//! max_retries = 3
//! retry_timeout = "30s"
//!
//! [http]
//! allow_link_local = false     # 169.254.0.0/16, fe80::/10, fd00:ec2::254
//! timeout = "30s"              # longest wait for the next bytes of a response
//! max_retries = 5              # 429, 5xx and dropped connections
//! max_download = "10GB"        # largest body read_parquet copies to TMPDIR
//!
//! [http."orders-api"]          # a header set, named in SQL: headers => 'orders-api'
//! base_url = "https://api.example.com/v1/"
//! bearer_token = "..."
//! headers = { "X-Tenant" = "acme" }
//!
//! [files]
//! roots = ["/srv/landing", "s3://partner-drop/in/", "https://api.example.com/"]
//!
//! [postgres."crm"]             # a connection, named in SQL: postgres_query('crm', ...)
//! url = "postgresql://reporter:...@crm.internal/crm?sslmode=verify-full"
//! ```
//!
//! The section whose name is the lake URL applies to that lake; its values
//! win over the `AWS_*` environment variables. A header set applies to the
//! URLs under its `base_url` only, so SQL names it and never holds the
//! secret; so does a `[postgres."name"]` connection. `[files] roots` is the allow-list of what statements may read
//! outside the lake (`COPY ... FROM 'path'`, `read_*`, external tables);
//! without it every path and URL may be read by those allowed to read
//! server files. The file holds secrets, so no error about it ever quotes
//! a value.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use object_store::aws::AmazonS3ConfigKey;
use url::Url;

use crate::error::{Error, ErrorKind, Result};

/// Options delta-rs reads that are not object_store keys.
const DELTA_KEYS: &[&str] = &[
    "max_retries",
    "retry_timeout",
    "aws_s3_locking_provider",
    "aws_force_credential_load",
    "aws_s3_pool_idle_timeout_seconds",
    "aws_sts_pool_idle_timeout_seconds",
    "aws_s3_get_internal_server_error_retries",
];

/// Options that would let two writers overwrite each other's commits.
const UNSAFE_KEYS: &[&str] = &["aws_s3_allow_unsafe_rename"];

fn bad(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        format!("config file {}: {what}", path.display()),
    )
}

/// Storage options per lake URL.
type LakeSections = Vec<(String, HashMap<String, String>)>;

/// Everything the config file says.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Storage options per lake URL (without a trailing `/`).
    lakes: LakeSections,
    pub http: HttpConfig,
    /// `[files] roots`: `None` when the file sets none (no restriction).
    pub roots: Option<Vec<String>>,
    /// `[postgres."name"]`: connections `postgres_query` may name.
    pub postgres: PgConnections,
}

impl Config {
    /// Read and check the config file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| bad(path, e))?;
        Config::parse(&text).map_err(|what| bad(path, what))
    }

    fn parse(text: &str) -> std::result::Result<Config, String> {
        let doc = parse_toml(text)?;
        let mut config = Config::default();
        for (key, item) in doc.iter() {
            match key {
                "lake" => config.lakes = parse_lakes(item)?,
                "http" => config.http = parse_http(item)?,
                "files" => config.roots = parse_files(item)?,
                "postgres" => config.postgres = parse_postgres(item)?,
                _ => {
                    return Err(format!(
                        "unknown section [{key}] (expected [lake.\"URL\"], [http], [files] \
                         or [postgres.\"name\"])"
                    ));
                }
            }
        }
        Ok(config)
    }

    /// The storage options for `lake` (empty when the file has no section
    /// for it).
    pub fn lake_options(&self, lake: &str) -> HashMap<String, String> {
        let want = lake.trim_end_matches('/');
        self.lakes
            .iter()
            .find(|(url, _)| url == want)
            .map(|(_, o)| o.clone())
            .unwrap_or_default()
    }
}

/// The storage options for `lake` from the config file at `path` (empty
/// when the file has no section for it).
pub fn lake_options(path: &Path, lake: &str) -> Result<HashMap<String, String>> {
    Ok(Config::load(path)?.lake_options(lake))
}

fn scalar(value: &toml_edit::Item) -> Option<String> {
    value.as_value().and_then(|v| {
        if let Some(s) = v.as_str() {
            Some(s.to_string())
        } else if let Some(b) = v.as_bool() {
            Some(b.to_string())
        } else {
            v.as_integer().map(|i| i.to_string())
        }
    })
}

fn parse_lakes(lakes: &toml_edit::Item) -> std::result::Result<LakeSections, String> {
    let lakes = lakes
        .as_table_like()
        .ok_or("`lake` must be a table of [lake.\"URL\"] sections")?;
    let mut out = Vec::new();
    for (url, section) in lakes.iter() {
        let want = url.trim_end_matches('/').to_string();
        let section = section
            .as_table_like()
            .ok_or_else(|| format!("[lake.\"{want}\"] must be a table"))?;
        let mut options = HashMap::new();
        for (key, value) in section.iter() {
            let lower = key.to_ascii_lowercase();
            if UNSAFE_KEYS.contains(&lower.as_str()) {
                return Err(format!(
                    "[lake.\"{want}\"] {key}: unsafe renames can lose commits between writers; \
                     Sluice commits with conditional writes only"
                ));
            }
            let known =
                DELTA_KEYS.contains(&lower.as_str()) || AmazonS3ConfigKey::from_str(&lower).is_ok();
            if !known {
                return Err(format!("[lake.\"{want}\"] unknown option {key}"));
            }
            let value = scalar(value).ok_or_else(|| {
                format!("[lake.\"{want}\"] {key} must be a string, integer or boolean")
            })?;
            options.insert(key.to_string(), value);
        }
        out.push((want, options));
    }
    Ok(out)
}

/// How HTTP sources behave, and the header sets they may use.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Reach hosts that resolve to link-local or cloud metadata addresses.
    pub allow_link_local: bool,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub timeout: Duration,
    /// Retries of one request after 429, 5xx or a dropped connection.
    pub max_retries: u32,
    /// Longest `Retry-After` honoured; a server asking for more fails the
    /// request instead of stalling the statement.
    pub max_retry_wait: Duration,
    /// Redirects followed per request.
    pub max_redirects: usize,
    /// Largest body `read_parquet` copies into the temporary folder.
    pub max_download: u64,
    pub header_sets: Vec<HeaderSet>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            allow_link_local: false,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_retries: 5,
            max_retry_wait: Duration::from_secs(120),
            max_redirects: 10,
            max_download: 10 << 30,
            header_sets: Vec::new(),
        }
    }
}

impl HttpConfig {
    pub fn header_set(&self, name: &str) -> Option<&HeaderSet> {
        self.header_sets.iter().find(|s| s.name == name)
    }

    /// The header set with the longest base URL that `url` is under.
    pub fn header_set_for(&self, url: &Url) -> Option<&HeaderSet> {
        self.header_sets
            .iter()
            .filter(|s| s.applies_to(url))
            .max_by_key(|s| s.base_url.as_str().len())
    }
}

/// `[http."name"]`: headers (and a bearer token) sent to the URLs under
/// `base_url`. Its Debug form never shows a value.
#[derive(Clone)]
pub struct HeaderSet {
    pub name: String,
    pub base_url: Url,
    pub headers: Vec<(String, String)>,
    pub bearer_token: Option<String>,
}

impl std::fmt::Debug for HeaderSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderSet")
            .field("name", &self.name)
            .field("base_url", &self.base_url.as_str())
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl HeaderSet {
    /// Is `url` under the base URL: same scheme, host and port, and a path
    /// below the base path (`/v1` covers `/v1/x`, not `/v10`)?
    pub fn applies_to(&self, url: &Url) -> bool {
        url_under(&self.base_url, url)
    }

    /// Every secret this set holds, to scrub from text a server sends back.
    pub fn secrets(&self) -> Vec<&str> {
        self.headers
            .iter()
            .map(|(_, v)| v.as_str())
            .chain(self.bearer_token.as_deref())
            .filter(|v| v.len() >= 4)
            .collect()
    }
}

/// Is `url` under `base`: same scheme, host and port, and a path below
/// the base path (`/v1` covers `/v1/x`, not `/v10`)?
pub fn url_under(base: &Url, url: &Url) -> bool {
    if url.scheme() != base.scheme()
        || url.host_str() != base.host_str()
        || url.port_or_known_default() != base.port_or_known_default()
    {
        return false;
    }
    let prefix = base.path();
    let path = url.path();
    prefix.ends_with('/') && path.starts_with(prefix)
        || path == prefix
        || path.starts_with(&format!("{prefix}/"))
}

/// Connection strings by name, for `postgres_query('name', ...)`: the
/// password stays in the config file, out of SQL text, view definitions
/// and `pg_stat_activity`. Its Debug form shows names only.
#[derive(Clone, Default)]
pub struct PgConnections(Vec<(String, String)>);

impl PgConnections {
    /// (name, connection string) of each.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, u)| (n.as_str(), u.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, url)| url.as_str())
    }
}

impl std::fmt::Debug for PgConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// `[postgres."name"] url = "postgresql://..."` (or `host=... dbname=...`).
fn parse_postgres(item: &toml_edit::Item) -> std::result::Result<PgConnections, String> {
    let table = item
        .as_table_like()
        .ok_or("`postgres` must hold [postgres.\"name\"] sections")?;
    let mut out = Vec::new();
    for (name, section) in table.iter() {
        let section = section
            .as_table_like()
            .ok_or_else(|| format!("[postgres.\"{name}\"] must be a section with url = \"...\""))?;
        let mut url = None;
        for (key, value) in section.iter() {
            match key {
                "url" => {
                    url = Some(
                        value
                            .as_str()
                            .ok_or_else(|| format!("[postgres.\"{name}\"] url must be a string"))?,
                    )
                }
                _ => return Err(format!("[postgres.\"{name}\"] unknown option {key}")),
            }
        }
        let url = url.ok_or_else(|| format!("[postgres.\"{name}\"] needs url"))?;
        out.push((name.to_string(), url.to_string()));
    }
    Ok(PgConnections(out))
}

/// `[files] roots = ["/abs/dir", "s3://bucket/prefix/", "https://host/path/"]`.
fn parse_files(item: &toml_edit::Item) -> std::result::Result<Option<Vec<String>>, String> {
    let table = item
        .as_table_like()
        .ok_or("`files` must be a table: [files] roots = [...]")?;
    let mut roots = None;
    for (key, value) in table.iter() {
        match key {
            "roots" => {
                let list = value
                    .as_array()
                    .ok_or("[files] roots must be a list of paths and URLs")?;
                let mut out = Vec::new();
                for v in list.iter() {
                    let s = v
                        .as_str()
                        .ok_or("[files] roots must be a list of paths and URLs")?;
                    if !(s.starts_with('/') || s.contains("://")) {
                        return Err(format!(
                            "[files] root \"{s}\" must be an absolute path or a URL"
                        ));
                    }
                    out.push(s.to_string());
                }
                roots = Some(out);
            }
            _ => return Err(format!("[files] unknown option {key}")),
        }
    }
    Ok(roots)
}

/// `512MB`, `2 GB`, `1.5GiB`, `1048576`: bytes (KB, MB, GB are powers of 1024,
/// as PostgreSQL's memory settings).
pub fn parse_bytes(text: &str) -> Option<usize> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "kib" | "k" => 1024.0,
        "mb" | "mib" | "m" => 1024.0 * 1024.0,
        "gb" | "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tb" | "tib" | "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * factor;
    (bytes >= 1.0 && bytes < usize::MAX as f64).then_some(bytes as usize)
}

/// `"30s"`, `"500ms"`, `"2m"` or a number of seconds.
fn duration(item: &toml_edit::Item) -> Option<Duration> {
    if let Some(i) = item.as_integer() {
        return u64::try_from(i).ok().map(Duration::from_secs);
    }
    let s = item.as_str()?.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let n: f64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
}

fn parse_http(item: &toml_edit::Item) -> std::result::Result<HttpConfig, String> {
    let table = item
        .as_table_like()
        .ok_or("`http` must be a table: [http] and [http.\"name\"] sections")?;
    let mut http = HttpConfig::default();
    for (key, value) in table.iter() {
        if value.is_table_like() {
            http.header_sets.push(parse_header_set(key, value)?);
            continue;
        }
        let bad_value = |what: &str| format!("[http] {key} must be {what}");
        match key {
            "allow_link_local" => {
                http.allow_link_local = value.as_bool().ok_or_else(|| bad_value("a boolean"))?
            }
            "timeout" | "connect_timeout" | "max_retry_wait" => {
                let d = duration(value)
                    .ok_or_else(|| bad_value("a duration such as \"30s\" or \"500ms\""))?;
                match key {
                    "timeout" => http.timeout = d,
                    "connect_timeout" => http.connect_timeout = d,
                    _ => http.max_retry_wait = d,
                }
            }
            "max_retries" | "max_redirects" => {
                let n = value
                    .as_integer()
                    .and_then(|i| u32::try_from(i).ok())
                    .ok_or_else(|| bad_value("a non-negative integer"))?;
                if key == "max_retries" {
                    http.max_retries = n;
                } else {
                    http.max_redirects = n as usize;
                }
            }
            "max_download" => {
                let n = match value.as_integer() {
                    Some(i) => u64::try_from(i).ok().filter(|n| *n > 0),
                    None => value.as_str().and_then(parse_bytes).map(|n| n as u64),
                };
                http.max_download =
                    n.ok_or_else(|| bad_value("a size such as \"10GB\" or \"512MB\""))?;
            }
            _ => return Err(format!("[http] unknown option {key}")),
        }
    }
    Ok(http)
}

fn parse_header_set(name: &str, item: &toml_edit::Item) -> std::result::Result<HeaderSet, String> {
    let section = item.as_table_like().expect("checked");
    let mut base_url = None;
    let mut headers = Vec::new();
    let mut bearer_token = None;
    for (key, value) in section.iter() {
        match key {
            "base_url" => {
                let s = value
                    .as_str()
                    .ok_or_else(|| format!("[http.\"{name}\"] base_url must be a string"))?;
                let url = Url::parse(s)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .ok_or_else(|| {
                        format!("[http.\"{name}\"] base_url must be an http:// or https:// URL")
                    })?;
                if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
                    return Err(format!(
                        "[http.\"{name}\"] base_url must not hold a query or credentials \
                         (put them in headers or bearer_token)"
                    ));
                }
                base_url = Some(url);
            }
            "bearer_token" => {
                bearer_token = Some(
                    value
                        .as_str()
                        .ok_or_else(|| format!("[http.\"{name}\"] bearer_token must be a string"))?
                        .to_string(),
                )
            }
            "headers" => {
                let table = value.as_table_like().ok_or_else(|| {
                    format!("[http.\"{name}\"] headers must be a table of name = \"value\"")
                })?;
                for (h, v) in table.iter() {
                    let v = v
                        .as_str()
                        .ok_or_else(|| format!("[http.\"{name}\"] header {h} must be a string"))?;
                    if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                        return Err(format!("[http.\"{name}\"] {h} is not a valid header name"));
                    }
                    if reqwest::header::HeaderValue::from_str(v).is_err() {
                        return Err(format!(
                            "[http.\"{name}\"] the value of header {h} is not valid in HTTP"
                        ));
                    }
                    headers.push((h.to_string(), v.to_string()));
                }
            }
            _ => return Err(format!("[http.\"{name}\"] unknown option {key}")),
        }
    }
    let base_url = base_url.ok_or_else(|| {
        format!("[http.\"{name}\"] needs base_url: the URLs its headers may be sent to")
    })?;
    if let Some(t) = &bearer_token
        && reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).is_err()
    {
        return Err(format!(
            "[http.\"{name}\"] bearer_token holds characters not valid in HTTP"
        ));
    }
    Ok(HeaderSet {
        name: name.to_string(),
        base_url,
        headers,
        bearer_token,
    })
}

/// Parse a TOML file that may hold secrets. toml_edit's error quotes the
/// offending line, so only the line number is kept.
pub(crate) fn parse_toml(text: &str) -> std::result::Result<toml_edit::DocumentMut, String> {
    text.parse()
        .map_err(|e: toml_edit::TomlError| match e.span() {
            Some(span) => format!(
                "not valid TOML at line {}",
                text[..span.start].matches('\n').count() + 1
            ),
            None => "not valid TOML".to_string(),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const FILE: &str = r#"
[lake."s3://warehouse/sluice"]
AWS_ENDPOINT_URL = "http://127.0.0.1:9000"
AWS_SECRET_ACCESS_KEY = "s3cr3t"
AWS_ALLOW_HTTP = true
max_retries = 2

[lake."s3://other/"]
AWS_REGION = "eu-west-1"
"#;

    fn parse_lake_options(
        text: &str,
        lake: &str,
    ) -> std::result::Result<HashMap<String, String>, String> {
        Ok(Config::parse(text)?.lake_options(lake))
    }

    #[test]
    fn the_section_of_the_lake_applies() {
        let o = parse_lake_options(FILE, "s3://warehouse/sluice/").unwrap();
        assert_eq!(o["AWS_ENDPOINT_URL"], "http://127.0.0.1:9000");
        assert_eq!(o["AWS_ALLOW_HTTP"], "true");
        assert_eq!(o["max_retries"], "2");
        let o = parse_lake_options(FILE, "s3://other").unwrap();
        assert_eq!(o.len(), 1);
        assert!(parse_lake_options(FILE, "s3://none").unwrap().is_empty());
    }

    #[test]
    fn bad_files_are_refused_without_quoting_values() {
        let e = parse_lake_options(
            "[lake.\"s3://a\"]\nAWS_SECRET_ACCESS_KEY = s3cr3t\n",
            "s3://a",
        )
        .unwrap_err();
        assert_eq!(e, "not valid TOML at line 2");
        let e = parse_lake_options("[lake.\"s3://a\"]\nAWS_SECRET_KEY_TYPO = \"x\"\n", "s3://a")
            .unwrap_err();
        assert!(e.contains("unknown option AWS_SECRET_KEY_TYPO"), "{e}");
        let e = parse_lake_options(
            "[lake.\"s3://a\"]\nAWS_S3_ALLOW_UNSAFE_RENAME = true\n",
            "s3://a",
        )
        .unwrap_err();
        assert!(e.contains("unsafe"), "{e}");
        let e = parse_lake_options("[lakes]\n", "s3://a").unwrap_err();
        assert!(e.contains("unknown section [lakes]"), "{e}");
    }

    const HTTP: &str = r#"
[http]
allow_link_local = true
timeout = "1500ms"
max_retries = 2
max_download = "1.5GB"

[http."orders"]
base_url = "https://api.example.com/v1"
bearer_token = "tok-123456"
headers = { "X-Tenant" = "acme" }

[http."wide"]
base_url = "https://api.example.com/"

[http."other"]
base_url = "http://127.0.0.1:1/"

[http."other".headers]
X-Api-Key = "k-99999"
"#;

    #[test]
    fn http_sections_hold_settings_and_header_sets() {
        let c = Config::parse(HTTP).unwrap();
        let h = &c.http;
        assert!(h.allow_link_local);
        assert_eq!(h.timeout, Duration::from_millis(1500));
        assert_eq!(h.max_retries, 2);
        assert_eq!(h.max_download, 3 << 29);
        assert_eq!(HttpConfig::default().max_download, 10 << 30);
        assert_eq!(
            Config::parse("[http]\nmax_download = 4096\n")
                .unwrap()
                .http
                .max_download,
            4096
        );
        assert_eq!(h.header_sets.len(), 3);
        let orders = h.header_set("orders").unwrap();
        assert_eq!(orders.headers, vec![("X-Tenant".into(), "acme".into())]);
        assert_eq!(orders.bearer_token.as_deref(), Some("tok-123456"));
        let debug = format!("{orders:?}");
        assert!(
            !debug.contains("tok-") && !debug.contains("acme"),
            "{debug}"
        );
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(orders.applies_to(&u("https://api.example.com/v1/orders?x=1")));
        assert!(orders.applies_to(&u("https://api.example.com:443/v1")));
        assert!(!orders.applies_to(&u("https://api.example.com/v10")));
        assert!(!orders.applies_to(&u("http://api.example.com/v1/")));
        assert!(!orders.applies_to(&u("https://api.example.com.evil.net/v1/")));
        // The longest base URL wins.
        let by_url = |s: &str| h.header_set_for(&u(s)).map(|s| s.name.as_str());
        assert_eq!(by_url("https://api.example.com/v1/x"), Some("orders"));
        assert_eq!(by_url("https://api.example.com/v2/x"), Some("wide"));
        assert_eq!(by_url("https://elsewhere.example.com/"), None);
    }

    #[test]
    fn bad_http_sections_stop_the_start_without_quoting_values() {
        let e = Config::parse("[http]\nallow_linklocal = true\n").unwrap_err();
        assert!(e.contains("[http] unknown option allow_linklocal"), "{e}");
        for bad in ["\"lots\"", "0", "-1"] {
            let e = Config::parse(&format!("[http]\nmax_download = {bad}\n")).unwrap_err();
            assert!(e.contains("[http] max_download must be a size"), "{e}");
        }
        let e = Config::parse("[http.\"a\"]\nbase_url = \"https://x/\"\ntoken = \"sekrit\"\n")
            .unwrap_err();
        assert!(e.contains("[http.\"a\"] unknown option token"), "{e}");
        assert!(!e.contains("sekrit"));
        let e = Config::parse("[http.\"a\"]\nbearer_token = \"sekrit\"\n").unwrap_err();
        assert!(e.contains("needs base_url"), "{e}");
        let e = Config::parse("[http.\"a\"]\nbase_url = \"https://u:sekrit@x/\"\n").unwrap_err();
        assert!(e.contains("must not hold") && !e.contains("sekrit"), "{e}");
        let e = Config::parse("[http]\ntimeout = \"soon\"\n").unwrap_err();
        assert!(e.contains("duration"), "{e}");
        let e = Config::parse(
            "[http.\"a\"]\nbase_url = \"https://x/\"\nheaders = { \"X-Key\" = \"sek\\nrit\" }\n",
        )
        .unwrap_err();
        assert!(e.contains("not valid in HTTP") && !e.contains("sek"), "{e}");
    }

    #[test]
    fn files_roots_are_absolute_paths_or_urls() {
        let c = Config::parse("[files]\nroots = [\"/srv/in\", \"s3://b/in/\"]\n").unwrap();
        assert_eq!(c.roots.unwrap(), ["/srv/in", "s3://b/in/"]);
        assert!(Config::parse("").unwrap().roots.is_none());
        let e = Config::parse("[files]\nroots = [\"in\"]\n").unwrap_err();
        assert!(e.contains("absolute path or a URL"), "{e}");
        let e = Config::parse("[files]\nroot = []\n").unwrap_err();
        assert!(e.contains("[files] unknown option root"), "{e}");
    }

    /// `bytes` with a few of them replaced by `noise`, removed, or cut off:
    /// the kinds of damage a hand-edited TOML file sees.
    pub(crate) fn mangle_toml(rng: &mut fastrand::Rng, bytes: &[u8], noise: &[u8]) -> Vec<u8> {
        let mut bytes = bytes.to_vec();
        for _ in 0..rng.usize(1..6) {
            if bytes.len() < 2 {
                break;
            }
            let i = rng.usize(..bytes.len());
            match rng.u8(..3) {
                0 => bytes[i] = noise[rng.usize(..noise.len())],
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.truncate(i.max(1)),
            }
        }
        bytes
    }

    /// Mangled config files: an error naming the file's problem, never a
    /// panic, and never a secret in the message.
    #[test]
    fn mangled_config_files_never_panic() {
        const NOISE: &[u8] = b"[]\"=.,{}\n #0aZ";
        let seed = fastrand::u64(..);
        let mut rng = fastrand::Rng::with_seed(seed);
        let base = format!("{FILE}{HTTP}\n[files]\nroots = [\"s3://b/in/\"]\n");
        for _ in 0..3000 {
            let bytes = mangle_toml(&mut rng, base.as_bytes(), NOISE);
            let text = String::from_utf8_lossy(&bytes);
            if let Err(e) = Config::parse(&text) {
                assert!(!e.contains("s3cr3t"), "seed {seed}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::parse_bytes;

    #[test]
    fn sizes_read_like_postgres_settings() {
        assert_eq!(parse_bytes("512MB"), Some(512 << 20));
        assert_eq!(parse_bytes(" 2 GB "), Some(2 << 30));
        assert_eq!(parse_bytes("1.5GiB"), Some(3 << 29));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("3 parsecs"), None);
    }
}
