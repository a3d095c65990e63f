//! Start and stop a real server for a test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

pub struct Server {
    child: Child,
    pub port: u16,
    pub lake: PathBuf,
    /// What the server wrote to stderr so far (also passed on to ours).
    log: Arc<Mutex<String>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh temporary lake.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = dir.path().join("lake");
        let mut s = Server::start_on(&lake);
        s._dir = Some(dir);
        s
    }

    /// A server on a fresh temporary lake with extra environment variables.
    pub fn start_with_env(env: &[(&str, String)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = dir.path().join("lake");
        let mut s = Server::start_on_with_env(&lake, env);
        s._dir = Some(dir);
        s
    }

    /// A server on an existing lake folder (kept when the server stops).
    pub fn start_on(lake: &Path) -> Server {
        Server::start_on_with_env(lake, &[])
    }

    pub fn start_on_with_env(lake: &Path, env: &[(&str, String)]) -> Server {
        Server::start_lake(lake.as_os_str(), lake, env, &[])
    }

    /// A server on a fresh temporary lake with extra `serve` arguments.
    pub fn start_with_args(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = dir.path().join("lake");
        let mut s = Server::start_lake(lake.as_os_str(), &lake, &[], args);
        s._dir = Some(dir);
        s
    }

    /// A server on a lake given by URL (`s3://bucket/prefix`).
    pub fn start_on_url(url: &str, env: &[(&str, String)]) -> Server {
        Server::start_on_url_with_args(url, env, &[])
    }

    pub fn start_on_url_with_args(url: &str, env: &[(&str, String)], args: &[&str]) -> Server {
        Server::start_lake(std::ffi::OsStr::new(url), Path::new(url), env, args)
    }

    fn start_lake(
        lake_arg: &std::ffi::OsStr,
        lake: &Path,
        env: &[(&str, String)],
        args: &[&str],
    ) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["serve", "--lake"])
            .arg(lake_arg)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice serve");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                eprintln!("{line}");
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from server: {line:?}"));
        Server {
            child,
            port,
            lake: lake.to_path_buf(),
            log,
            _dir: None,
        }
    }

    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=sluice dbname=sluice",
            self.port
        )
    }

    pub async fn connect(&self) -> Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), NoTls)
            .await
            .expect("connect to sluice");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// Stop with SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }

    /// Wait up to 20 s for the server to write `needle` to stderr; all it
    /// wrote so far, or a panic naming what was missing.
    pub fn wait_for_log(&self, needle: &str) -> String {
        for _ in 0..400 {
            let log = self.log.lock().unwrap().clone();
            if log.contains(needle) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server never logged {needle:?}");
    }

    /// The address of the metrics endpoint of a server started with
    /// `--metrics 127.0.0.1:0`.
    pub fn metrics_addr(&self) -> String {
        let log = self.wait_for_log("metrics at http://");
        log.lines()
            .find_map(|l| l.strip_prefix("metrics at http://"))
            .and_then(|l| l.strip_suffix("/metrics"))
            .expect("metrics address in the log")
            .to_string()
    }

    /// kill -9: no shutdown, no flush, nothing.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rows of a simple query, each as its text values joined by `|`
/// (NULL as `NULL`); panics naming the statement when it fails.
pub async fn rows(c: &Client, sql: &str) -> Vec<String> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}

/// The line of `EXPLAIN ANALYZE query` that scans the files of table
/// `table` (its `DataSourceExec`, with its metrics).
pub async fn analyzed_scan(c: &Client, query: &str, table: &str) -> String {
    let plan = c
        .simple_query(&format!("EXPLAIN ANALYZE {query}"))
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN ANALYZE {query}: {e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(1).map(str::to_string),
            _ => None,
        })
        .collect::<String>();
    plan.lines()
        .find(|l| l.contains("DataSourceExec") && l.contains(&format!("/{table}/")))
        .unwrap_or_else(|| panic!("no scan of {table} in\n{plan}"))
        .to_string()
}

/// The value of metric `name` in a line of [`analyzed_scan`].
pub fn scan_metric(scan: &str, name: &str) -> String {
    scan.split(&format!("{name}="))
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no {name} in\n{scan}"))
        .to_string()
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

/// The Python interpreter of the test virtualenv.
pub fn python() -> String {
    std::env::var("SLUICE_TEST_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/sluice-venv/bin/python")
    })
}

/// A real S3 HTTP server over a folder (buckets are sub-folders).
pub use crate::s3::start_s3;

/// Runs `query` while `cancel` is sent every 200 ms (a cancel that
/// arrives before the statement starts is ignored, as in PostgreSQL);
/// the error the statement ended with. A statement still running after
/// two minutes fails the test: the cancel did not reach it.
pub async fn canceled<F, Fut>(
    query: impl std::future::Future<Output = Result<(), tokio_postgres::Error>>,
    cancel: F,
) -> tokio_postgres::Error
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    tokio::pin!(query);
    let limit = tokio::time::sleep(std::time::Duration::from_secs(120));
    tokio::pin!(limit);
    loop {
        tokio::select! {
            r = &mut query => return r.expect_err("the statement ended without being canceled"),
            _ = &mut limit => panic!("a canceled statement was still running after 120 s"),
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => cancel().await,
        }
    }
}

/// `GET /metrics` at `addr`: the response's head and body.
pub async fn scrape_metrics(addr: &str) -> (String, String) {
    let addr = addr.to_string();
    let body = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        sock.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    let (head, text) = body.split_once("\r\n\r\n").expect("an HTTP response");
    (head.to_string(), text.to_string())
}

/// The value of the sample whose line starts with `name` in Prometheus
/// text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
}
