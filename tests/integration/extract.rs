//! Extract from HTTP APIs and logs as they really are: HTTP servers
//! started here that answer a plain GET only, paginate, rate-limit, need a
//! bearer token or send gzip; access, JSON and regex log files with
//! malformed lines; incremental loads run twice.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio_postgres::{Client, NoTls};

use crate::common::{Server, canceled, rows, sqlstate};

/// A request as the test server saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    /// Path and query.
    target: String,
    headers: HashMap<String, String>,
}

impl Request {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn param(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| v.to_string())
        })
    }
}

struct Reply {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Close the connection after this many bytes of the body (whose
    /// full length the Content-Length header still announces).
    cut: Option<usize>,
    /// After the body, one more byte a second for five minutes (of a
    /// Content-Length that announces them all): a server that is slow.
    trickle: bool,
}

fn reply(status: &'static str, body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        status,
        headers: vec![],
        body: body.into(),
        cut: None,
        trickle: false,
    }
}

impl Reply {
    fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    fn cut(mut self, at: usize) -> Reply {
        self.cut = Some(at);
        self
    }

    fn trickle(mut self) -> Reply {
        self.trickle = true;
        self
    }
}

/// N of a request's `Range: bytes=N-`.
fn range_start(r: &Request) -> Option<usize> {
    r.headers
        .get("range")
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok())
}

/// `body` as a server that answers ranges sends it: from the `Range:
/// bytes=N-` of the request on (206), or whole (200).
fn ranged(r: &Request, body: &[u8]) -> Reply {
    match range_start(r) {
        Some(from) if from < body.len() => reply("206 Partial Content", &body[from..]).header(
            "Content-Range",
            &format!("bytes {from}-{}/{}", body.len() - 1, body.len()),
        ),
        _ => reply("200 OK", body),
    }
}

/// A Parquet file of `n` rows: id, name, at.
fn parquet_file(n: i64) -> Vec<u8> {
    use datafusion::arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::arrow::record_batch::RecordBatch;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("row {i}")),
            )),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                (0..n).map(|i| 1_767_225_600_000_000 + i * 60_000_000),
            )),
        ],
    )
    .unwrap();
    let mut out = Vec::new();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// An HTTP/1.1 server on loopback: one response per connection, no HEAD,
/// no Range (a Range header is ignored: the whole body comes back with
/// 200, as most API servers do). Returns the port and the requests seen.
fn serve(handler: Arc<Handler>) -> (u16, Arc<Mutex<Vec<Request>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let handler = handler.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("").to_string();
                let mut headers = HashMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let req = Request {
                    method,
                    target,
                    headers,
                };
                log.lock().unwrap().push(req.clone());
                let r = if req.method == "GET" {
                    handler(&req)
                } else {
                    reply("405 Method Not Allowed", "GET only")
                };
                const TRICKLE: &[u8] = b"a";
                let length = r.body.len() + if r.trickle { 300 * TRICKLE.len() } else { 0 };
                let mut out = format!(
                    "HTTP/1.1 {}\r\nContent-Length: {length}\r\nConnection: close\r\n",
                    r.status,
                );
                for (k, v) in &r.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                let end = r.cut.unwrap_or(r.body.len());
                bytes.extend_from_slice(&r.body[..end]);
                let _ = stream.write_all(&bytes);
                let _ = stream.flush();
                for _ in 0..if r.trickle { 300 } else { 0 } {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    if stream.write_all(TRICKLE).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, seen)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    // gzip(1) is there wherever the tests run; no compression crate needed.
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    assert!(child.wait().unwrap().success());
    out
}

fn items(from: usize, to: usize) -> String {
    let rows: Vec<String> = (from..to)
        .map(|i| format!(r#"{{"id": {i}, "name": "item {i}", "price": {i}.5}}"#))
        .collect();
    format!("[{}]", rows.join(","))
}

const TOKEN: &str = "tok-s3cret-123";

fn api(rate_limited: Arc<AtomicUsize>) -> Arc<Handler> {
    // Requests seen per path of the dropped-connection cases.
    let asked: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let parquet = parquet_file(5000);
    let users: String = std::iter::once("id,name\n".to_string())
        .chain((1..=20000).map(|i| format!("{i},user {i}\n")))
        .collect();
    Arc::new(move |r: &Request| {
        let nth = || {
            let mut m = asked.lock().unwrap();
            let n = m.entry(r.path().to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let half = users.len() / 2;
        let page = |name: &str| r.param(name).and_then(|p| p.parse::<usize>().ok());
        match r.path() {
            "/plain/items.json" => reply("200 OK", items(1, 4)),
            "/plain/items.ndjson" => reply(
                "200 OK",
                "{\"id\": 1, \"at\": \"2026-01-01T00:00:00Z\"}\n{\"id\": 2, \"at\": \"2026-01-02T00:00:00Z\"}\n",
            ),
            "/plain/users.csv" => reply("200 OK", "id,name\n1,ann\n2,bob\n3,cy\n"),
            "/plain/app.log" => reply("200 OK", "first\nsecond\r\nthird"),
            "/redirect/items.json" => {
                reply("302 Found", "").header("Location", "/plain/items.json?from=redirect")
            }
            "/loop" => reply("302 Found", "").header("Location", "/loop"),
            "/fail" => reply("503 Service Unavailable", "down for maintenance"),
            "/missing" => reply("404 Not Found", "no such thing"),
            "/link/items" => {
                let p = page("page").unwrap_or(1);
                let mut rep = reply("200 OK", items(p * 10, p * 10 + 2));
                if p < 3 {
                    rep = rep.header(
                        "Link",
                        &format!(
                            "</link/items?page={}>; rel=\"next\", </link/items?page=3>; rel=\"last\"",
                            p + 1
                        ),
                    );
                }
                rep
            }
            "/cursor/items" => {
                let (rows, next) = match r.param("after").as_deref() {
                    None => (items(1, 3), "\"c2\""),
                    Some("c2") => (items(3, 5), "\"c3\""),
                    Some("c3") => (items(5, 6), "null"),
                    Some(_) => ("[]".to_string(), "null"),
                };
                reply(
                    "200 OK",
                    format!(r#"{{"data": {rows}, "meta": {{"next": {next}}}}}"#),
                )
            }
            "/page/items" => {
                let p = page("page").unwrap_or(1);
                let rows = if p <= 3 {
                    items(p * 100, p * 100 + 3)
                } else {
                    "[]".into()
                };
                reply("200 OK", format!(r#"{{"items": {rows}}}"#))
            }
            "/offset/items" => {
                let o = page("offset").unwrap_or(0);
                let rows = if o < 5 {
                    items(o, (o + 2).min(5))
                } else {
                    "[]".into()
                };
                reply("200 OK", format!(r#"{{"result": {{"rows": {rows}}}}}"#))
            }
            "/limited/items.json" => {
                if rate_limited.fetch_add(1, Ordering::SeqCst) < 2 {
                    reply("429 Too Many Requests", "slow down").header("Retry-After", "1")
                } else {
                    reply("200 OK", items(1, 3))
                }
            }
            "/secure/items.json" => {
                let auth = r.headers.get("authorization").cloned().unwrap_or_default();
                if auth == format!("Bearer {TOKEN}") {
                    reply("200 OK", items(1, 3))
                } else {
                    reply("401 Unauthorized", format!("bad credentials: {auth}"))
                }
            }
            "/secure/denied.json" => {
                let auth = r.headers.get("authorization").cloned().unwrap_or_default();
                reply(
                    "403 Forbidden",
                    format!("you sent {auth} and that is not enough"),
                )
            }
            "/gzip/items.ndjson" => {
                let mut body = String::new();
                for i in 0..2000 {
                    body.push_str(&format!("{{\"id\": {i}, \"tag\": \"t{}\"}}\n", i % 7));
                }
                reply("200 OK", gzip(body.as_bytes())).header("Content-Encoding", "gzip")
            }
            "/gzip/access.log.gz" => reply("200 OK", gzip(COMBINED.as_bytes())),
            "/plain/data.parquet" => reply("200 OK", parquet.clone()),
            "/gzip/data.parquet" => {
                reply("200 OK", gzip(&parquet)).header("Content-Encoding", "gzip")
            }
            "/plain/not.parquet" => reply("200 OK", "id,name\n1,ann\n"),
            // A header line that takes five minutes to end.
            "/slow/trickle.csv" => reply("200 OK", "a").trickle(),
            // Over the config file's max_download (1MB).
            "/plain/big.parquet" => reply("200 OK", parquet_file(100_000)),
            // The connection drops half way through every whole answer.
            "/dropped/ranged.csv" => {
                let rep = if !r.headers.contains_key("range") {
                    reply("200 OK", users.clone()).cut(half)
                } else if r.headers.get("if-range").map(String::as_str) == Some("\"v1\"") {
                    ranged(r, users.as_bytes())
                } else {
                    reply("412 Precondition Failed", "no If-Range")
                };
                rep.header("ETag", "\"v1\"")
                    .header("Accept-Ranges", "bytes")
            }
            // The rest comes in two ranges: the first stops short.
            "/dropped/short.csv" => {
                let three_quarters = users.len() * 3 / 4;
                let rep = match range_start(r) {
                    None => reply("200 OK", users.clone()).cut(half),
                    Some(f) if f < three_quarters => {
                        reply("206 Partial Content", &users.as_bytes()[f..three_quarters]).header(
                            "Content-Range",
                            &format!("bytes {f}-{}/{}", three_quarters - 1, users.len()),
                        )
                    }
                    Some(_) => ranged(r, users.as_bytes()),
                };
                rep.header("ETag", "\"s1\"")
                    .header("Accept-Ranges", "bytes")
            }
            "/dropped/whole.csv" => {
                let rep = reply("200 OK", users.clone()).header("ETag", "\"w1\"");
                if nth() == 1 { rep.cut(half) } else { rep }
            }
            "/dropped/changed.csv" => {
                if nth() == 1 {
                    reply("200 OK", users.clone())
                        .header("ETag", "\"a\"")
                        .cut(half)
                } else {
                    reply("200 OK", users.clone()).header("ETag", "\"b\"")
                }
            }
            "/dropped/always.csv" => reply("200 OK", users.clone())
                .header("ETag", "\"x\"")
                .cut(half),
            "/since/orders" => {
                let all = [
                    (1, "2026-01-01T00:00:00Z"),
                    (2, "2026-01-02T00:00:00Z"),
                    (3, "2026-01-03T00:00:00Z"),
                ];
                let since = r.param("updated_since").map(|s| s.replace("%3A", ":"));
                let rows: Vec<String> = all
                    .iter()
                    .filter(|(_, at)| since.as_deref().is_none_or(|s| *at > s))
                    .map(|(id, at)| format!(r#"{{"id": {id}, "updated_at": "{at}"}}"#))
                    .collect();
                reply("200 OK", format!("[{}]", rows.join(",")))
            }
            _ => reply("404 Not Found", "not found"),
        }
    })
}

const COMBINED: &str = concat!(
    r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#,
    "\n",
    r#"10.0.0.2 - - [10/Oct/2000:13:56:00 +0000] "POST /api/login HTTP/1.1" 401 - "-" "curl/8.0""#,
    "\n",
    "this line is not an access log line\n",
    r#"10.0.0.3 - - [10/Oct/2000:13:57:00 +0000] "GET /x HTTP/1.1" 500 12 "-" "-""#,
    "\n",
);

async fn fails(c: &Client, sql: &str) -> (String, String) {
    let e = c.simple_query(sql).await.map(|_| ()).expect_err(sql);
    let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e:?}"));
    let text = format!(
        "{} {} {}",
        db.message(),
        db.detail().unwrap_or(""),
        db.hint().unwrap_or("")
    );
    (sqlstate(&e), text)
}

fn write_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("sluice.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[http]
max_retries = 3
max_retry_wait = "5s"
timeout = "10s"
max_download = "1MB"

[http."local-api"]
base_url = "http://127.0.0.1:{port}/secure/"
bearer_token = "{TOKEN}"
headers = {{ "X-Tenant" = "acme" }}
"#
        ),
    )
    .unwrap();
    path
}

struct Api {
    server: Server,
    base: String,
    seen: Arc<Mutex<Vec<Request>>>,
    _dir: tempfile::TempDir,
}

async fn start_api() -> (Api, Client) {
    let (port, seen) = serve(api(Arc::new(AtomicUsize::new(0))));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), port);
    let server = Server::start_with_args(&["--config", config.to_str().unwrap()]);
    let c = server.connect().await;
    (
        Api {
            server,
            base: format!("http://127.0.0.1:{port}"),
            seen,
            _dir: dir,
        },
        c,
    )
}

#[tokio::test]
async fn files_are_read_from_servers_without_range_or_head() {
    let (api, c) = start_api().await;
    let b = &api.base;
    assert_eq!(
        rows(
            &c,
            &format!("SELECT id, name, price FROM read_json('{b}/plain/items.json') ORDER BY id")
        )
        .await,
        ["1|item 1|1.5", "2|item 2|2.5", "3|item 3|3.5"]
    );
    // NDJSON, with timestamps inferred.
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT id, at + interval '1 hour', extract(day from at) FROM read_json('{b}/plain/items.ndjson') ORDER BY id"
            )
        )
        .await,
        ["1|2026-01-01 01:00:00+00|1", "2|2026-01-02 01:00:00+00|2"]
    );
    assert_eq!(
        rows(
            &c,
            &format!("SELECT name FROM read_csv('{b}/plain/users.csv') WHERE id >= 2 ORDER BY id")
        )
        .await,
        ["bob", "cy"]
    );
    assert_eq!(
        rows(&c, &format!("SELECT id + 1 FROM read_csv('{b}/plain/users.csv', columns => 'id int, name text') ORDER BY 1 LIMIT 1")).await,
        ["2"]
    );
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT filename, line_number, line FROM read_text('{b}/plain/app.log') ORDER BY 2"
            )
        )
        .await,
        [
            format!("{b}/plain/app.log|1|first"),
            format!("{b}/plain/app.log|2|second"),
            format!("{b}/plain/app.log|3|third")
        ]
    );
    // Redirects are followed; endless ones stop.
    assert_eq!(
        rows(
            &c,
            &format!("SELECT count(*) FROM read_json('{b}/redirect/items.json')")
        )
        .await,
        ["3"]
    );
    let (state, msg) = fails(&c, &format!("SELECT * FROM read_json('{b}/loop')")).await;
    assert_eq!(state, "HV000", "{msg}");
    assert!(msg.contains("redirects") && msg.contains("/loop"), "{msg}");
    // COPY from such a server, CSV and JSON.
    c.batch_execute("CREATE TABLE users (id int, name text); CREATE TABLE items (id bigint, name text, price float8)")
        .await
        .unwrap();
    let n = c
        .execute(
            &format!("COPY users FROM '{b}/plain/users.csv' (FORMAT csv, HEADER)"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    let n = c
        .execute(
            &format!("COPY items FROM '{b}/plain/items.json' (FORMAT json)"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    // Errors name the URL without query values, and the status.
    let (state, msg) = fails(
        &c,
        &format!("SELECT * FROM read_json('{b}/missing?api_key=hunter2')"),
    )
    .await;
    assert_eq!(state, "58P01", "{msg}");
    assert!(
        msg.contains("/missing?api_key=***") && msg.contains("404"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
    let (state, msg) = fails(&c, &format!("SELECT * FROM read_json('{b}/fail')")).await;
    assert_eq!(state, "HV000", "{msg}");
    assert!(msg.contains("503") && msg.contains("4 attempts"), "{msg}");
    let (state, _) = fails(&c, "SELECT * FROM read_json('http://127.0.0.1:1/x.json')").await;
    assert_eq!(state, "08001");
    // No HEAD and no Range request was needed.
    let seen = api.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|r| r.method == "GET"), "{seen:?}");
    assert!(
        seen.iter().all(|r| !r.headers.contains_key("range")),
        "{seen:?}"
    );
    drop(api.server);
}

#[tokio::test]
async fn dropped_connections_resume_and_parquet_needs_no_range() {
    let (api, c) = start_api().await;
    let b = &api.base;
    let whole = ["20000|200010000"];
    // The connection drops half way: the rest is asked for with a Range
    // (the server answers ranges), or as the whole body again, its first
    // half skipped (it does not); the same ETag shows it is the same body.
    for path in [
        "/dropped/ranged.csv",
        "/dropped/short.csv",
        "/dropped/whole.csv",
    ] {
        assert_eq!(
            rows(
                &c,
                &format!("SELECT count(*), sum(id) FROM read_csv('{b}{path}')")
            )
            .await,
            whole,
            "{path}"
        );
    }
    let n = c
        .execute(
            &format!("CREATE TABLE users AS SELECT * FROM read_csv('{b}/dropped/ranged.csv')"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 20000);
    {
        let seen = api.seen.lock().unwrap();
        let asks: Vec<&Request> = seen
            .iter()
            .filter(|r| r.path() == "/dropped/ranged.csv")
            .collect();
        // Two statements, each a whole answer cut short and the rest.
        assert_eq!(asks.len(), 4, "{asks:?}");
        for rest in [asks[1], asks[3]] {
            let range = rest.headers.get("range").expect("a Range request");
            let from: usize = range["bytes=".len()..range.len() - 1].parse().unwrap();
            assert!(from > 0, "{range}");
        }
        assert!(
            seen.iter()
                .filter(|r| r.path() == "/dropped/whole.csv")
                .all(|r| !r.headers.contains_key("range"))
        );
    }
    // A body that changed between the two answers is never spliced.
    let (state, msg) = fails(
        &c,
        &format!("SELECT count(*) FROM read_csv('{b}/dropped/changed.csv')"),
    )
    .await;
    assert_eq!(state, "HV000", "{msg}");
    assert!(
        msg.contains("not the same") && msg.contains("/dropped/changed.csv"),
        "{msg}"
    );
    // A connection that always drops fails after the configured retries.
    let (state, msg) = fails(
        &c,
        &format!("SELECT count(*) FROM read_csv('{b}/dropped/always.csv')"),
    )
    .await;
    assert_eq!(state, "08001", "{msg}");
    assert!(msg.contains("4 attempts"), "{msg}");
    // Parquet from a server without Range or HEAD, plain or gzip-encoded.
    for path in ["/plain/data.parquet", "/gzip/data.parquet"] {
        assert_eq!(
            rows(
                &c,
                &format!(
                    "SELECT count(*), max(name), min(at), sum(id) FROM read_parquet('{b}{path}')"
                )
            )
            .await,
            ["5000|row 999|2026-01-01 00:00:00|12497500"],
            "{path}"
        );
    }
    c.batch_execute(&format!(
        "CREATE TABLE events AS SELECT id, at FROM read_parquet('{b}/plain/data.parquet') WHERE id % 2 = 0"
    ))
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*), max(at) FROM events").await,
        ["2500|2026-01-04 11:18:00"]
    );
    let (state, msg) = fails(
        &c,
        &format!("SELECT * FROM read_parquet('{b}/plain/not.parquet')"),
    )
    .await;
    assert_eq!(state, "22000", "{msg}");
    assert!(
        msg.contains("/plain/not.parquet") && msg.contains("Parquet"),
        "{msg}"
    );
    let (state, _) = fails(
        &c,
        &format!("SELECT * FROM read_parquet('{b}/missing.parquet')"),
    )
    .await;
    assert_eq!(state, "58P01");
    // A copy larger than [http] max_download is refused, and removed.
    let spooled = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("sluice-http-")
            })
            .count()
    };
    let before = spooled();
    let (state, msg) = fails(
        &c,
        &format!("SELECT count(*) FROM read_parquet('{b}/plain/big.parquet')"),
    )
    .await;
    assert_eq!(state, "53400", "{msg}");
    assert!(
        msg.contains("/plain/big.parquet") && msg.contains("max_download (1048576 bytes)"),
        "{msg}"
    );
    assert!(spooled() <= before, "the partial copy stays behind");
    // The connection stays usable, and nothing needed HEAD.
    assert_eq!(rows(&c, "SELECT count(*) FROM users").await, ["20000"]);
    assert!(api.seen.lock().unwrap().iter().all(|r| r.method == "GET"));
    drop(api.server);
}

#[tokio::test]
async fn planning_that_waits_on_a_slow_server_is_canceled_and_timed_out() {
    let (api, c) = start_api().await;
    // Planning reads the file's schema from a server that sends a byte a
    // second, inside a table function that waits synchronously: with the
    // extended protocol as with a simple query, a cancel stops it and
    // statement_timeout bounds it (both used to wait for the server).
    let sql = format!(
        "SELECT count(*) FROM read_csv('{}/slow/trickle.csv')",
        api.base
    );
    for extended in [true, false] {
        let token = c.cancel_token();
        let e = canceled(
            async {
                if extended {
                    c.query(&sql, &[]).await.map(|_| ())
                } else {
                    c.simple_query(&sql).await.map(|_| ())
                }
            },
            || async { token.cancel_query(NoTls).await.unwrap() },
        )
        .await;
        assert_eq!(sqlstate(&e), "57014", "{e}");
        let message = e.as_db_error().map(|d| d.message().to_string());
        assert_eq!(
            message.as_deref(),
            Some("canceling statement due to user request"),
            "extended: {extended}"
        );
        assert_eq!(rows(&c, "SELECT 41 + 1").await, ["42"]);
    }
    c.batch_execute("SET statement_timeout = '500ms'")
        .await
        .unwrap();
    for extended in [true, false] {
        let bounded = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            if extended {
                c.query(&sql, &[]).await.map(|_| ())
            } else {
                c.simple_query(&sql).await.map(|_| ())
            }
        });
        let e = bounded
            .await
            .expect("statement_timeout stops planning")
            .unwrap_err();
        assert_eq!(sqlstate(&e), "57014", "{e}");
        let message = e.as_db_error().map(|d| d.message().to_string());
        assert_eq!(
            message.as_deref(),
            Some("canceling statement due to statement timeout"),
            "extended: {extended}"
        );
    }
    c.batch_execute("SET statement_timeout = 0").await.unwrap();
    assert_eq!(rows(&c, "SELECT 41 + 1").await, ["42"]);
    drop(api.server);
}

#[tokio::test]
async fn apis_paginate_every_way() {
    let (api, c) = start_api().await;
    let b = &api.base;
    assert_eq!(
        rows(&c, &format!("SELECT string_agg(id::text, ',' ORDER BY id) FROM read_json('{b}/link/items', paginate => 'link')")).await,
        ["10,11,20,21,30,31"]
    );
    assert_eq!(
        rows(&c, &format!("SELECT count(*) FROM read_json('{b}/link/items', paginate => 'link', max_pages => 2)")).await,
        ["4"]
    );
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT string_agg(id::text, ',' ORDER BY id) FROM read_json('{b}/cursor/items', \
                 records => '$.data', paginate => 'cursor:$.meta.next', cursor_param => 'after')"
            )
        )
        .await,
        ["1,2,3,4,5"]
    );
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT count(*), min(id), max(id) FROM read_json('{b}/page/items', \
                 records => '$.items', paginate => 'page:page')"
            )
        )
        .await,
        ["9|100|302"]
    );
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT string_agg(id::text, ',' ORDER BY id) FROM read_json('{b}/offset/items', \
                 records => '$.result.rows', paginate => 'offset:offset')"
            )
        )
        .await,
        ["0,1,2,3,4"]
    );
    // Explicit columns override inference.
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT sum(price) FROM read_json('{b}/page/items', \
                 records => '$.items', paginate => 'page:page', columns => 'id bigint, price numeric(10,2)')"
            )
        )
        .await,
        ["1813.50"]
    );
    let pages: Vec<String> = api
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path() == "/page/items")
        .map(|r| r.target.clone())
        .collect();
    // Inference read the pages once: the scan went on from there, so each
    // page was fetched once per statement (two statements).
    assert_eq!(pages.len(), 8, "{pages:?}");
    let (state, msg) = fails(
        &c,
        &format!("SELECT * FROM read_json('{b}/page/items', paginate => 'pages')"),
    )
    .await;
    assert_eq!(state, "22023", "{msg}");
    drop(api.server);
}

#[tokio::test]
async fn rate_limits_tokens_gzip_and_metadata_addresses() {
    let (api, c) = start_api().await;
    let b = &api.base;
    // 429 twice with Retry-After: 1, then the rows.
    let t = std::time::Instant::now();
    assert_eq!(
        rows(
            &c,
            &format!("SELECT count(*) FROM read_json('{b}/limited/items.json')")
        )
        .await,
        ["2"]
    );
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
    // The bearer token comes from the config file, by name or by base URL.
    let sql =
        format!("SELECT count(*) FROM read_json('{b}/secure/items.json', headers => 'local-api')");
    assert_eq!(rows(&c, &sql).await, ["2"]);
    assert_eq!(
        rows(
            &c,
            &format!("SELECT count(*) FROM read_json('{b}/secure/items.json')")
        )
        .await,
        ["2"]
    );
    let sent = api.seen.lock().unwrap().clone();
    let secure: Vec<&Request> = sent
        .iter()
        .filter(|r| r.path().starts_with("/secure"))
        .collect();
    assert!(
        secure
            .iter()
            .all(|r| r.headers.get("x-tenant").map(String::as_str) == Some("acme"))
    );
    // Other URLs never get it.
    assert!(
        sent.iter()
            .filter(|r| !r.path().starts_with("/secure"))
            .all(|r| !r.headers.contains_key("authorization"))
    );
    // A server that echoes the token: the error shows the status, never the token.
    let (state, msg) = fails(
        &c,
        &format!("SELECT * FROM read_json('{b}/secure/denied.json', headers => 'local-api')"),
    )
    .await;
    assert_eq!(state, "HV000", "{msg}");
    assert!(
        msg.contains("403") && msg.contains("/secure/denied.json"),
        "{msg}"
    );
    assert!(!msg.contains(TOKEN), "{msg}");
    let (state, msg) = fails(
        &c,
        &format!("SELECT * FROM read_json('{b}/plain/items.json', headers => 'local-api')"),
    )
    .await;
    assert_eq!(state, "22023", "{msg}");
    let (state, msg) = fails(
        &c,
        &format!("SELECT * FROM read_json('{b}/secure/items.json', headers => 'nope')"),
    )
    .await;
    assert_eq!(state, "42704", "{msg}");
    assert!(!api.server.wait_for_log("").contains(TOKEN));
    // gzip as Content-Encoding, and a .gz file served as it is.
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT count(*), count(DISTINCT tag) FROM read_json('{b}/gzip/items.ndjson')"
            )
        )
        .await,
        ["2000|7"]
    );
    assert_eq!(
        rows(&c, &format!("SELECT count(*), count(_error) FROM read_log('{b}/gzip/access.log.gz', format => 'combined')")).await,
        ["4|1"]
    );
    // Cloud metadata addresses are refused before any connection.
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x",
    ] {
        let (state, msg) = fails(&c, &format!("SELECT * FROM read_json('{url}')")).await;
        assert_eq!(state, "42501", "{msg}");
        assert!(msg.contains("allow_link_local"), "{msg}");
    }
    drop(api.server);
}

#[tokio::test]
async fn incremental_reads_pass_since_and_copy_loads_new_files_once() {
    let (api, c) = start_api().await;
    let b = &api.base;
    c.batch_execute("CREATE TABLE orders (id bigint, updated_at timestamptz)")
        .await
        .unwrap();
    let load = format!(
        "INSERT INTO orders SELECT id, updated_at FROM read_json('{b}/since/orders', \
         since => (SELECT max(updated_at) FROM orders), since_param => 'updated_since', \
         columns => 'id bigint, updated_at timestamptz')"
    );
    c.batch_execute(&load).await.unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM orders").await, ["3"]);
    // Nothing newer: the API gets the high-water mark and returns nothing.
    c.batch_execute(&load).await.unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM orders").await, ["3"]);
    let last = api
        .seen
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r.path() == "/since/orders")
        .unwrap()
        .clone();
    assert!(
        last.param("updated_since")
            .unwrap()
            .starts_with("2026-01-03T00"),
        "{last:?}"
    );
    // Filtering on the client side by a field.
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT id FROM read_json('{b}/since/orders', since => '2026-01-01T12:00:00Z'::timestamptz, \
                 since_field => 'updated_at') ORDER BY id"
            )
        )
        .await,
        ["2", "3"]
    );
    let (state, _) = fails(
        &c,
        &format!("SELECT * FROM read_json('{b}/since/orders', since => 1)"),
    )
    .await;
    assert_eq!(state, "22023");

    // COPY ... NEW_FILES_ONLY: run twice, new rows once.
    let landing = api.server.lake.join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    std::fs::write(landing.join("a.csv"), "id,name\n1,a\n2,b\n").unwrap();
    std::fs::write(landing.join("b.csv"), "id,name\n3,c\n").unwrap();
    c.batch_execute("CREATE TABLE landed (id int, name text)")
        .await
        .unwrap();
    let copy = "COPY landed FROM 'landing/*.csv*' WITH (FORMAT csv, HEADER, NEW_FILES_ONLY)";
    assert_eq!(c.execute(copy, &[]).await.unwrap(), 3);
    let history = rows(&c, "DESCRIBE HISTORY landed").await.len();
    assert_eq!(c.execute(copy, &[]).await.unwrap(), 0);
    // Nothing new: not even an empty commit.
    assert_eq!(rows(&c, "DESCRIBE HISTORY landed").await.len(), history);
    std::fs::write(landing.join("c.csv.gz"), gzip(b"id,name\n4,d\n5,e\n")).unwrap();
    assert_eq!(c.execute(copy, &[]).await.unwrap(), 2);
    assert_eq!(c.execute(copy, &[]).await.unwrap(), 0);
    assert_eq!(
        rows(
            &c,
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM landed"
        )
        .await,
        ["1,2,3,4,5"]
    );
    // JSON files too; a plain COPY still loads everything.
    std::fs::write(landing.join("x.json"), "{\"id\": 7, \"name\": \"g\"}\n").unwrap();
    let copy = "COPY landed FROM 'landing/*.json' WITH (FORMAT json, NEW_FILES_ONLY)";
    assert_eq!(c.execute(copy, &[]).await.unwrap(), 1);
    assert_eq!(c.execute(copy, &[]).await.unwrap(), 0);
    assert_eq!(
        c.execute("COPY landed FROM 'landing/*.json' WITH (FORMAT json)", &[])
            .await
            .unwrap(),
        1
    );
    let (state, _) = fails(&c, "COPY landed FROM STDIN WITH (NEW_FILES_ONLY)").await;
    assert_eq!(state, "22023");
    drop(api.server);
}

#[tokio::test]
async fn logs_become_typed_rows_and_bad_lines_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    std::fs::write(logs.join("access.log"), COMBINED).unwrap();
    std::fs::write(logs.join("access.log.1"), COMBINED.lines().next().unwrap()).unwrap();
    std::fs::write(logs.join("access.log.2.gz"), gzip(COMBINED.as_bytes())).unwrap();
    let common: String = COMBINED
        .lines()
        .map(|l| {
            format!(
                "{}\n",
                l.split(" \"http")
                    .next()
                    .unwrap()
                    .split(" \"-\"")
                    .next()
                    .unwrap()
            )
        })
        .collect();
    std::fs::write(logs.join("common.log"), common).unwrap();
    std::fs::write(
        logs.join("app.jsonl"),
        "{\"ts\": \"2026-03-01T10:00:00Z\", \"level\": \"info\", \"ms\": 12}\n\
         {\"ts\": \"2026-03-01T10:00:01Z\", \"level\": \"warn\", \"ms\": 250, \"user\": \"ann\"}\n\
         not json at all\n\
         {\"ts\": \"2026-03-01T10:00:02Z\", \"level\": \"info\", \"ms\": \"slow\"}\n",
    )
    .unwrap();
    std::fs::write(
        logs.join("app.txt"),
        "2026-03-01 10:00:00 INFO [main] started in 120ms\n\
         2026-03-01 10:00:05 ERROR [db] connection lost\n\
         garbage\n",
    )
    .unwrap();
    let server = Server::start();
    let c = server.connect().await;
    let d = logs.display();

    let all = format!("read_log('{d}/access.log*', format => 'combined')");
    assert_eq!(
        rows(
            &c,
            &format!("SELECT count(*), count(_error), count(DISTINCT filename) FROM {all}")
        )
        .await,
        ["9|2|3"]
    );
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT remote_addr, remote_user, time, method, path, protocol, status + 0, bytes, referer, user_agent \
                 FROM {all} WHERE filename LIKE '%access.log' AND line_number = 1"
            )
        )
        .await,
        ["127.0.0.1|frank|2000-10-10 20:55:36+00|GET|/apache_pb.gif|HTTP/1.0|200|2326|http://www.example.com/start.html|Mozilla/4.08 [en] (Win98; I ;Nav)"]
    );
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT line_number, remote_addr, status, _error FROM {all} \
                 WHERE filename LIKE '%.gz' AND (status >= 400 OR _error IS NOT NULL) ORDER BY line_number"
            )
        )
        .await,
        [
            "2|10.0.0.2|401|NULL",
            "3|NULL|NULL|not a combined log line: the time in [brackets] expected",
            "4|10.0.0.3|500|NULL"
        ]
    );
    assert_eq!(
        rows(&c, &format!("SELECT count(*), count(_error), sum(bytes) FROM read_log('{d}/common.log', format => 'common')")).await,
        ["4|1|2338"]
    );
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT line_number, level, ms, \"user\", _error IS NOT NULL FROM read_log('{d}/app.jsonl', format => 'json') ORDER BY 1"
            )
        )
        .await,
        ["1|info|12|NULL|f", "2|warn|250|ann|f", "3|NULL|NULL|NULL|t", "4|info|slow|NULL|f"]
    );
    let re = r"regex:^(?P<at>\S+ \S+) (?P<level>[A-Z]+) \[(?P<component>\w+)\] (?P<message>.*)$";
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT line_number, at + interval '1 hour', level, component, _error FROM read_log('{d}/app.txt', format => '{re}') ORDER BY 1"
            )
        )
        .await,
        [
            "1|2026-03-01 11:00:00|INFO|main|NULL",
            "2|2026-03-01 11:00:05|ERROR|db|NULL",
            "3|NULL|NULL|NULL|the line does not match the pattern"
        ]
    );
    assert_eq!(
        rows(
            &c,
            &format!("SELECT count(*) FROM read_text('{d}/access.log*')")
        )
        .await,
        ["9"]
    );
    // Loaded into a table with COPY-like INSERT ... SELECT, bad lines included.
    c.batch_execute(&format!("CREATE TABLE hits AS SELECT * FROM {all}; "))
        .await
        .unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*) FROM hits WHERE _error IS NULL").await,
        ["7"]
    );
    // Or bad lines go to quarantine through an expectation on _error.
    c.batch_execute(&format!(
        "CREATE TABLE statuses (line_number bigint, status int, _error text, \
           CONSTRAINT parsed EXPECT (_error IS NULL) ON VIOLATION QUARANTINE); \
         INSERT INTO statuses SELECT line_number, status, _error FROM {all}"
    ))
    .await
    .unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM statuses").await, ["7"]);
    assert_eq!(
        rows(&c, "SELECT count(*) FROM statuses__quarantine").await,
        ["2"]
    );
    let (state, _) = fails(
        &c,
        &format!("SELECT * FROM read_log('{d}/app.txt', format => 'apache')"),
    )
    .await;
    assert_eq!(state, "22023");
    let (state, _) = fails(
        &c,
        &format!("SELECT * FROM read_log('{d}/app.txt', format => 'regex:(\\d+)')"),
    )
    .await;
    assert_eq!(state, "22023");
}

fn add_user(file: &Path, name: &str, role: &str, password: &str, server_files: bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(["user", "add", name, "--role", role, "--users"])
        .arg(file);
    if server_files {
        cmd.arg("--server-files");
    }
    let out = cmd.env("SLUICE_PASSWORD", password).output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn reading_server_files_and_urls_needs_the_server_files_privilege() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    add_user(&users, "rita", "reader", "reader-pw", false);
    add_user(&users, "walt", "writer", "writer-pw", false);
    add_user(&users, "fay", "writer", "files-pw", true);
    std::fs::write(dir.path().join("x.log"), "hello\n").unwrap();
    let server = Server::start_with_args(&["--users", users.to_str().unwrap()]);
    let connect = |user: &'static str, pw: &'static str| {
        let conn = format!(
            "host=127.0.0.1 port={} user={user} password={pw} dbname=sluice",
            server.port
        );
        async move {
            let (client, conn) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
            tokio::spawn(conn);
            client
        }
    };
    let reader = connect("rita", "reader-pw").await;
    let writer = connect("walt", "writer-pw").await;
    let files = connect("fay", "files-pw").await;
    let d = dir.path().display();
    let reads = [
        format!("SELECT * FROM read_text('{d}/x.log')"),
        format!("SELECT * FROM (SELECT 1) s, read_log('{d}/x.log', format => 'json')"),
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT * FROM read_json('http://127.0.0.1:1/x')".to_string(),
    ];
    for sql in &reads {
        let (state, msg) = fails(&reader, sql).await;
        assert_eq!(state, "42501", "{sql}: {msg}");
        // A writer without the privilege: refused too, naming it.
        let (state, msg) = fails(&writer, sql).await;
        assert_eq!(state, "42501", "{sql}: {msg}");
        assert!(msg.contains("server_files"), "{msg}");
    }
    writer
        .batch_execute("BEGIN; ROLLBACK")
        .await
        .expect("the connection stays usable");
    let (state, msg) = fails(&writer, &format!("COPY t FROM '{d}/x.log'")).await;
    assert_eq!(state, "42501", "{msg}");
    assert_eq!(
        rows(&files, &format!("SELECT line FROM read_text('{d}/x.log')")).await,
        ["hello"]
    );
}

/// `[files] roots`: reads stay under the listed folders (and the lake),
/// whatever `..` or a symlink says.
#[tokio::test]
async fn server_file_reads_stay_under_the_configured_roots() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    std::fs::write(landing.join("a.csv"), "id,name\n1,ann\n").unwrap();
    std::fs::write(dir.path().join("secret.csv"), "id,name\n9,secret\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.csv"), landing.join("link.csv")).unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!("[files]\nroots = [\"{}\"]\n", landing.display()),
    )
    .unwrap();
    let server = Server::start_with_args(&["--config", config.to_str().unwrap()]);
    let client = server.connect().await;
    let l = landing.display();
    let d = dir.path().display();
    assert_eq!(
        rows(&client, &format!("SELECT name FROM read_csv('{l}/a.csv')")).await,
        ["ann"]
    );
    client
        .batch_execute(&format!(
            "CREATE TABLE t (id int, name text); COPY t FROM '{l}/a.csv' WITH (FORMAT csv, HEADER)"
        ))
        .await
        .unwrap();
    for sql in [
        format!("SELECT * FROM read_csv('{d}/secret.csv')"),
        format!("SELECT * FROM read_csv('{l}/../secret.csv')"),
        format!("SELECT * FROM read_csv('{l}/link.csv')"),
        // The glob finds the link too: refused, not skipped silently.
        format!("SELECT * FROM read_csv('{l}/*.csv')"),
        format!("SELECT * FROM read_text('{d}/secret.csv')"),
        format!("COPY t FROM '{d}/secret.csv' WITH (FORMAT csv, HEADER)"),
        format!("CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{d}/secret.csv'"),
        "SELECT * FROM read_json('http://127.0.0.1:1/x')".to_string(),
        "SELECT * FROM read_parquet('http://169.254.169.254/x.parquet')".to_string(),
        "SELECT * FROM read_csv('../../../../../../etc/passwd')".to_string(),
    ] {
        let (state, msg) = fails(&client, &sql).await;
        assert_eq!(state, "42501", "{sql}: {msg}");
    }
    // Nothing of the refused COPY landed.
    assert_eq!(rows(&client, "SELECT count(*)::text FROM t").await, ["1"]);
}
