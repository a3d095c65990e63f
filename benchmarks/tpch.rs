//! TPC-H, side by side: the 22 queries through Sluice (over the PostgreSQL
//! wire and in process, on Delta tables), on raw DataFusion over the same
//! data as Parquet, and on DuckDB over the same Parquet, in one run.
//!
//! ```text
//! python benchmarks/tpch/gen.py --sf 1
//! cargo run --release --example tpch -- --data benchmarks/data/sf1 --lake /tmp/tpch-lake
//! ```
//!
//! The lake is loaded once (`CREATE TABLE tpch.<t> AS SELECT ...` from the
//! Parquet files) and reused by later runs. Every query runs `--reps` times
//! per engine and the best time is kept; each repetition runs the query on
//! every engine in turn, so the machine's slow spells fall on all of them. The process exits non-zero when a
//! query fails on Sluice or when Sluice and DataFusion disagree on a row
//! count; the timings are never asserted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use datafusion::common::ParamValues;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;
use sluice::engine::{Engine, Output, Session};
use tokio_postgres::{NoTls, SimpleQueryMessage};

const TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];
const QUERIES: usize = 22;
/// Targets from the design document (section 8).
const TARGET_VS_DUCKDB: f64 = 1.0;
const TARGET_VS_DATAFUSION: f64 = 1.10;

#[derive(Parser, Debug)]
#[command(about = "TPC-H: Sluice vs raw DataFusion vs DuckDB on the same data")]
struct Args {
    /// Folder with the eight <table>.parquet files (benchmarks/tpch/gen.py).
    #[arg(long)]
    data: PathBuf,
    /// Sluice lake folder; loaded from --data when it has no `tpch` schema.
    #[arg(long)]
    lake: String,
    /// Runs per query and engine; the best is kept.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Do not run DuckDB.
    #[arg(long)]
    skip_duckdb: bool,
    /// Only these queries, e.g. `--only 1,6,22`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<usize>,
    /// Folder with q01.sql .. q22.sql.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/benchmarks/tpch/queries"))]
    queries: PathBuf,
    /// Python interpreter with duckdb installed.
    #[arg(long, env = "SLUICE_BENCH_PYTHON")]
    python: Option<PathBuf>,
}

/// One engine's result for one query: best time and row count, or the error.
type Measure = Result<(Duration, usize), String>;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("tpch: {e}");
            std::process::exit(2);
        }
    }
}

async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let data = std::fs::canonicalize(&args.data)
        .map_err(|e| format!("data folder {}: {e}", args.data.display()))?;
    for t in TABLES {
        let f = data.join(format!("{t}.parquet"));
        if !f.is_file() {
            return Err(format!("missing {} (run benchmarks/tpch/gen.py)", f.display()).into());
        }
    }
    let numbers: Vec<usize> = if args.only.is_empty() {
        (1..=QUERIES).collect()
    } else {
        args.only.clone()
    };
    let mut queries = Vec::new();
    for &n in &numbers {
        let path = args.queries.join(format!("q{n:02}.sql"));
        let sql = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        queries.push((n, sql));
    }
    let reps = args.reps.max(1);

    // a. Load the lake.
    let engine = Engine::open(&args.lake).await?;
    let t0 = Instant::now();
    load(&engine, &data).await?;
    println!(
        "lake ready in {:.1}s: {}",
        t0.elapsed().as_secs_f64(),
        args.lake
    );

    // b. The engines, all ready before the first query: raw DataFusion
    // over the Parquet files, Sluice in process, Sluice through the wire,
    // and DuckDB in a child process.
    let raw = SessionContext::new();
    for t in TABLES {
        raw.register_parquet(
            t,
            path_str(&data.join(format!("{t}.parquet"))),
            ParquetReadOptions::default(),
        )
        .await?;
    }
    let mut session = engine.session();
    run_sql(&mut session, "SET search_path = tpch").await?;
    let port = free_port()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let listen = format!("127.0.0.1:{port}");
    let server_engine = engine.clone();
    let server = tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
        };
        if let Err(e) = sluice::server::serve(server_engine, &listen, None, None, stop).await {
            eprintln!("warning: server ended: {e}");
        }
    });
    let client = connect(port).await?;
    client
        .simple_query("SET search_path = tpch")
        .await
        .map_err(pg_error)?;
    let mut duck = if args.skip_duckdb {
        None
    } else {
        match DuckDb::start(&args, &data) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("warning: DuckDB did not start, its column stays empty: {e}");
                None
            }
        }
    };

    // c. Each repetition runs the query on every engine in turn, so a
    // slow spell of the machine falls on all of them alike.
    let mut datafusion: BTreeMap<usize, Measure> = BTreeMap::new();
    let mut inproc: BTreeMap<usize, Measure> = BTreeMap::new();
    let mut wire: BTreeMap<usize, Measure> = BTreeMap::new();
    let mut duckdb: BTreeMap<usize, Option<f64>> = BTreeMap::new();
    for (n, sql) in &queries {
        let (mut m_raw, mut m_proc, mut m_wire): (Measure, Measure, Measure) = (
            Err("not run".into()),
            Err("not run".into()),
            Err("not run".into()),
        );
        let mut m_duck: Measure = Err("not run".into());
        for _ in 0..reps {
            timed(&mut m_raw, || async {
                let batches = raw.sql(sql).await?.collect().await?;
                Ok::<_, datafusion::error::DataFusionError>(
                    batches.iter().map(|b| b.num_rows()).sum(),
                )
            })
            .await;
            timed(&mut m_proc, || run_sql(&mut session, sql)).await;
            timed(&mut m_wire, || async {
                let msgs = client.simple_query(sql).await.map_err(pg_error)?;
                Ok::<_, String>(
                    msgs.iter()
                        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                        .count(),
                )
            })
            .await;
            if let Some(d) = duck.as_mut()
                && !failed(&m_duck)
            {
                m_duck = d.run(*n).map(|(t, rows)| better(&m_duck, t, rows));
            }
        }
        report("datafusion", *n, &m_raw);
        report("sluice(proc)", *n, &m_proc);
        report("sluice(wire)", *n, &m_wire);
        datafusion.insert(*n, m_raw);
        inproc.insert(*n, m_proc);
        wire.insert(*n, m_wire);
        if duck.is_some() {
            report("duckdb", *n, &m_duck);
            duckdb.insert(*n, m_duck.ok().map(|(t, _)| t.as_secs_f64()));
        }
    }
    drop(client);
    let _ = stop_tx.send(());
    let _ = server.await;

    // e. The table.
    Ok(print_table(
        &numbers,
        &wire,
        &inproc,
        &datafusion,
        &duckdb,
        reps,
        &data,
    ))
}

/// Create `tpch.<table>` in the lake from the Parquet files, through
/// Sluice's own `CREATE TABLE ... AS SELECT`, for the tables not there yet.
async fn load(engine: &Arc<Engine>, data: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut session = engine.session();
    let file = |t: &str| path_str(&data.join(format!("{t}.parquet"))).replace('\'', "''");
    run_sql(&mut session, "CREATE SCHEMA IF NOT EXISTS tpch").await?;
    for t in TABLES {
        let start = Instant::now();
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS tpch.{t} AS SELECT * FROM read_parquet('{}')",
            file(t)
        );
        run_sql(&mut session, &sql).await?;
        let notices = session.take_notices();
        if notices.is_empty() {
            println!("loaded tpch.{t} in {:.1}s", start.elapsed().as_secs_f64());
        }
    }
    // A lake loaded from another scale factor would make every comparison
    // meaningless: check one table's size against the files.
    let in_lake = count(&mut session, "SELECT count(*) FROM tpch.lineitem").await?;
    let in_files = count(
        &mut session,
        &format!("SELECT count(*) FROM read_parquet('{}')", file("lineitem")),
    )
    .await?;
    if in_lake != in_files {
        return Err(format!(
            "the lake's tpch.lineitem has {in_lake} rows but the Parquet files have {in_files}: \
             use a fresh --lake for this scale factor"
        )
        .into());
    }
    Ok(())
}

/// A wire error with the server's message.
fn pg_error(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Run every statement of `sql` in the session; returns the rows of the last.
async fn run_sql(session: &mut Session, sql: &str) -> sluice::Result<usize> {
    let mut rows = 0;
    for stmt in session.parse(sql)? {
        rows = match session.execute(stmt, &ParamValues::List(vec![])).await? {
            Output::Rows { mut stream, .. } => {
                let mut n = 0;
                while let Some(batch) = stream.next().await {
                    n += batch?.num_rows();
                }
                n
            }
            Output::Command { rows, .. } => rows.unwrap_or(0),
            _ => 0,
        };
    }
    Ok(rows)
}

async fn count(session: &mut Session, sql: &str) -> Result<i64, Box<dyn std::error::Error>> {
    use datafusion::arrow::array::{Array, Int64Array};
    let stmt = session.parse(sql)?.remove(0);
    let Output::Rows { mut stream, .. } = session.execute(stmt, &ParamValues::List(vec![])).await?
    else {
        return Err(format!("{sql}: no rows").into());
    };
    let mut value = None;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() > 0 {
            let col = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or("count(*) is not bigint")?;
            value = Some(col.value(0));
        }
    }
    value.ok_or_else(|| format!("{sql}: no rows").into())
}

/// Run `f` once and keep the better of its time and `m`. After an error
/// the query is not run again on that engine.
async fn timed<F, Fut, E>(m: &mut Measure, f: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<usize, E>>,
    E: std::fmt::Display,
{
    if failed(m) {
        return;
    }
    let start = Instant::now();
    *m = match f().await {
        Ok(rows) => Ok(better(m, start.elapsed(), rows)),
        Err(e) => Err(e.to_string()),
    };
}

fn failed(m: &Measure) -> bool {
    matches!(m, Err(e) if e != "not run")
}

fn better(m: &Measure, t: Duration, rows: usize) -> (Duration, usize) {
    match m {
        Ok((best, _)) if *best <= t => (*best, rows),
        _ => (t, rows),
    }
}

fn report(engine: &str, n: usize, m: &Measure) {
    match m {
        Ok((t, rows)) => eprintln!("{engine} q{n}: {:.4}s, {rows} rows", t.as_secs_f64()),
        Err(e) => eprintln!("warning: {engine} q{n} failed: {e}"),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("paths are UTF-8")
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

async fn connect(port: u16) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    let conn_str = format!("host=127.0.0.1 port={port} user=sluice dbname=sluice");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio_postgres::connect(&conn_str, NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        eprintln!("warning: connection ended: {e}");
                    }
                });
                return Ok(client);
            }
            Err(e) if Instant::now() > deadline => {
                return Err(format!("cannot connect on port {port}: {e}").into());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// DuckDB in a child process (`duckdb_run.py --serve`): one query number
/// in on its standard input, its time and row count out, one line each.
struct DuckDb {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl DuckDb {
    fn start(args: &Args, data: &Path) -> Result<DuckDb, Box<dyn std::error::Error>> {
        let python = match &args.python {
            Some(p) => p.clone(),
            None => {
                let home = std::env::var("HOME").map_err(|_| "HOME is not set; pass --python")?;
                PathBuf::from(home).join(".cache/sluice-venv/bin/python")
            }
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benchmarks/tpch/duckdb_run.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg("--data")
            .arg(data)
            .arg("--queries")
            .arg(&args.queries)
            .arg("--serve")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", python.display()))?;
        let input = child.stdin.take().ok_or("no stdin")?;
        let output = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(DuckDb {
            child,
            input,
            output,
        })
    }

    /// Run query `n` once: DuckDB's own time (without the pipe) and rows.
    fn run(&mut self, n: usize) -> Result<(Duration, usize), String> {
        use std::io::{BufRead, Write};
        writeln!(self.input, "{n}")
            .and_then(|_| self.input.flush())
            .map_err(|e| format!("DuckDB process: {e}"))?;
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .map_err(|e| format!("DuckDB process: {e}"))?;
        let reply: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("DuckDB reply {line:?}: {e}"))?;
        if let Some(e) = reply.get("error").and_then(|e| e.as_str()) {
            return Err(e.to_string());
        }
        let rows = reply.get("rows").and_then(|r| r.as_u64()).unwrap_or(0) as usize;
        let seconds = reply
            .get("seconds")
            .and_then(|s| s.as_f64())
            .ok_or_else(|| format!("DuckDB reply without seconds: {line:?}"))?;
        Ok((Duration::from_secs_f64(seconds), rows))
    }
}

impl Drop for DuckDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn secs(m: Option<&Measure>) -> Option<f64> {
    match m {
        Some(Ok((t, _))) => Some(t.as_secs_f64()),
        _ => None,
    }
}

fn cell(v: Option<f64>, width: usize, prec: usize) -> String {
    match v {
        Some(v) => format!("{v:>width$.prec$}"),
        None => format!("{:>width$}", "-"),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn print_table(
    numbers: &[usize],
    wire: &BTreeMap<usize, Measure>,
    inproc: &BTreeMap<usize, Measure>,
    datafusion: &BTreeMap<usize, Measure>,
    duckdb: &BTreeMap<usize, Option<f64>>,
    reps: usize,
    data: &Path,
) -> bool {
    let mut ok = true;
    let mut problems = Vec::new();
    println!();
    println!("TPC-H {} (best of {reps}; seconds)", data.display());
    if cfg!(debug_assertions) {
        println!("(debug build: a smoke run; build with --release for timings worth comparing)");
    }
    println!(
        "{:<5} {:>12} {:>12} {:>12} {:>10} {:>13} {:>17} {:>17} {:>8}",
        "query",
        "sluice(wire)",
        "sluice(proc)",
        "datafusion",
        "duckdb",
        "sluice/duckdb",
        "sluice/datafusion",
        "proc/datafusion",
        "rows"
    );
    // Totals over the queries every engine that ran answered.
    let (mut tw, mut tp, mut tf, mut td) = (0.0, 0.0, 0.0, 0.0);
    let mut counted = 0;
    let have_duckdb = !duckdb.is_empty();
    for &n in numbers {
        let w = secs(wire.get(&n));
        let p = secs(inproc.get(&n));
        let f = secs(datafusion.get(&n));
        let d = duckdb.get(&n).copied().flatten();
        let rows = |m: Option<&Measure>| match m {
            Some(Ok((_, r))) => Some(*r),
            _ => None,
        };
        let (rw, rp, rf) = (
            rows(wire.get(&n)),
            rows(inproc.get(&n)),
            rows(datafusion.get(&n)),
        );
        for (name, m) in [
            ("sluice(wire)", wire.get(&n)),
            ("sluice(proc)", inproc.get(&n)),
            ("datafusion", datafusion.get(&n)),
        ] {
            if let Some(Err(e)) = m {
                problems.push(format!("q{n} failed on {name}: {e}"));
                if name.starts_with("sluice") {
                    ok = false;
                }
            }
        }
        if have_duckdb && d.is_none() {
            problems.push(format!("q{n} failed on duckdb"));
        }
        let mut row_note = rf
            .or(rw)
            .map(|r| r.to_string())
            .unwrap_or_else(|| "-".into());
        for (name, r) in [("wire", rw), ("proc", rp)] {
            if let (Some(r), Some(rf)) = (r, rf)
                && r != rf
            {
                problems.push(format!(
                    "q{n}: sluice({name}) returned {r} rows, datafusion {rf}"
                ));
                row_note = format!("{r}!={rf}");
                ok = false;
            }
        }
        println!(
            "{:<5} {} {} {} {} {} {} {} {:>8}",
            format!("q{n}"),
            cell(w, 12, 4),
            cell(p, 12, 4),
            cell(f, 12, 4),
            cell(d, 10, 4),
            cell(ratio(w, d), 12, 2) + "x",
            cell(ratio(w, f), 16, 2) + "x",
            cell(ratio(p, f), 16, 2) + "x",
            row_note,
        );
        if let (Some(w), Some(p), Some(f)) = (w, p, f)
            && (!have_duckdb || d.is_some())
        {
            tw += w;
            tp += p;
            tf += f;
            td += d.unwrap_or(0.0);
            counted += 1;
        }
    }
    // Nothing to total when no query ran everywhere.
    let any = counted > 0;
    let (tw, tp, tf) = (any.then_some(tw), any.then_some(tp), any.then_some(tf));
    let td_opt = (any && have_duckdb).then_some(td);
    println!(
        "{:<5} {} {} {} {} {} {} {}",
        "total",
        cell(tw, 12, 4),
        cell(tp, 12, 4),
        cell(tf, 12, 4),
        cell(td_opt, 10, 4),
        cell(ratio(tw, td_opt), 12, 2) + "x",
        cell(ratio(tw, tf), 16, 2) + "x",
        cell(ratio(tp, tf), 16, 2) + "x",
    );
    if counted < numbers.len() {
        println!(
            "(totals over the {counted} of {} queries that every engine answered)",
            numbers.len()
        );
    }
    println!();
    let verdict = |r: Option<f64>, target: f64| match r {
        Some(r) if r <= target => format!("{r:.2}x  met"),
        Some(r) => format!("{r:.2}x  NOT met"),
        None => "not measured".to_string(),
    };
    println!(
        "target: total sluice(wire) / duckdb     <= {TARGET_VS_DUCKDB:.2}x : {}",
        verdict(ratio(tw, td_opt), TARGET_VS_DUCKDB)
    );
    println!(
        "target: total sluice(proc) / datafusion <= {TARGET_VS_DATAFUSION:.2}x : {}",
        verdict(ratio(tp, tf), TARGET_VS_DATAFUSION)
    );
    println!(
        "        total sluice(wire) / datafusion <= {TARGET_VS_DATAFUSION:.2}x : {}",
        verdict(ratio(tw, tf), TARGET_VS_DATAFUSION)
    );
    if !problems.is_empty() {
        println!();
        for p in &problems {
            println!("warning: {p}");
        }
    }
    ok
}
