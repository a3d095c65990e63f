//! sqllogictest files in tests/slt, run through the wire. Files named
//! `pg_compat_*.slt` also run against a real PostgreSQL 15 when
//! `SLUICE_TEST_PG_URL` points at one (scripts/test.sh starts it).

use std::path::PathBuf;

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::common::Server;

struct Wire {
    client: Client,
    engine: &'static str,
}

#[derive(Debug)]
struct WireError {
    state: Option<String>,
    text: String,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for WireError {}

async fn connect(url: &str, engine: &'static str) -> Result<Wire, WireError> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| WireError {
            state: None,
            text: e.to_string(),
        })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Wire { client, engine })
}

fn render(v: Option<&str>) -> String {
    match v {
        None => "NULL".into(),
        Some("") => "(empty)".into(),
        Some(s) => s.to_string(),
    }
}

#[async_trait]
impl AsyncDB for Wire {
    type Error = WireError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let msgs = self.client.simple_query(sql).await.map_err(|e| {
            let (state, msg) = match e.as_db_error() {
                Some(d) => (Some(d.code().code().to_string()), d.message().to_string()),
                None => (None, e.to_string()),
            };
            WireError {
                text: format!("{}: {msg}", state.clone().unwrap_or_default()),
                state,
            }
        })?;
        let mut rows = Vec::new();
        let mut width = None;
        let mut count = 0;
        for m in msgs {
            match m {
                SimpleQueryMessage::RowDescription(cols) => width = Some(cols.len()),
                SimpleQueryMessage::Row(r) => {
                    width = Some(r.len());
                    rows.push((0..r.len()).map(|i| render(r.get(i))).collect::<Vec<_>>());
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        match width {
            Some(w) => Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; w],
                rows,
            }),
            None => Ok(DBOutput::StatementComplete(count)),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        self.engine
    }

    fn error_sql_state(err: &Self::Error) -> Option<String> {
        err.state.clone()
    }
}

fn slt_files(prefix: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "slt")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no {prefix}*.slt files in {}",
        dir.display()
    );
    files
}

async fn run_files(url: String, engine: &'static str, files: Vec<PathBuf>) {
    let mut failures = Vec::new();
    for f in files {
        let u = url.clone();
        let mut runner = Runner::new(move || {
            let u = u.clone();
            async move { connect(&u, engine).await }
        });
        runner.add_label(engine);
        if let Err(e) = runner.run_file_async(&f).await {
            failures.push(format!("{}: {e}", f.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} file(s) failed on {engine}:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn slt_files_pass_on_sluice() {
    let server = Server::start();
    run_files(server.url(), "sluice", slt_files("")).await;
}

/// The same files with the lake on S3 (s3s-fs, a real S3 HTTP server).
#[tokio::test]
async fn slt_files_pass_on_an_s3_lake() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("lakes")).unwrap();
    let s3 = crate::common::start_s3(root.path());
    let server = Server::start_on_url("s3://lakes/sluice", &s3.env());
    run_files(server.url(), "sluice on S3", slt_files("")).await;
}

#[tokio::test]
async fn pg_compat_files_pass_on_postgres() {
    let Ok(url) = std::env::var("SLUICE_TEST_PG_URL") else {
        panic!("SLUICE_TEST_PG_URL is not set: run the suite with scripts/test.sh");
    };
    run_files(url, "postgres", slt_files("pg_compat_")).await;
}
