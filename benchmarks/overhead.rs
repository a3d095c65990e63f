//! Statement overhead: one-row statements through the wire, Sluice and
//! PostgreSQL side by side in one run.
//!
//! ```text
//! cargo run --release --example overhead -- --sluice URL --pg URL [--reps 10000] [--rows 100000]
//! ```
//!
//! Both sides get the same table (`bench_kv`, `rows` rows keyed by `id`) and
//! an empty `bench_sink`. Then, `reps` times each and interleaved (one
//! statement on one side, then the same on the other, the order swapping
//! every repetition, so a slow spell of the machine falls on both):
//!
//! - a prepared `SELECT $1::bigint + 1`, which reads no table: the fixed
//!   cost of a statement (protocol, parsing of the Bind, planning or plan
//!   reuse, execution set-up),
//! - a prepared `SELECT v FROM bench_kv WHERE id = $1`,
//! - a prepared one-row `INSERT INTO bench_sink VALUES ($1, $2)`.
//!
//! Prints p50, p99 and mean latency per side, the ratios Sluice ÷
//! PostgreSQL, and Sluice's requests to lake storage per statement (from
//! `sluice.storage_requests`). Timings are reported, never asserted; the
//! program fails only when a statement fails or returns a wrong row.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls, Statement};

struct Args {
    sluice: String,
    pg: String,
    reps: usize,
    rows: i64,
}

fn args() -> Args {
    let mut a = Args {
        sluice: String::new(),
        pg: String::new(),
        reps: 10_000,
        rows: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--sluice" => a.sluice = value(),
            "--pg" => a.pg = value(),
            "--reps" => a.reps = value().parse().expect("--reps is a number"),
            "--rows" => a.rows = value().parse().expect("--rows is a number"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        !a.sluice.is_empty() && !a.pg.is_empty(),
        "usage: overhead --sluice URL --pg URL [--reps N] [--rows N]"
    );
    a
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("connection: {e}");
        }
    });
    client
}

async fn setup(c: &Client, rows: i64) {
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS bench_kv;
         DROP TABLE IF EXISTS bench_sink;
         CREATE TABLE bench_kv (id bigint PRIMARY KEY, v text);
         INSERT INTO bench_kv SELECT i, 'value ' || i FROM generate_series(1, {rows}) AS s(i);
         CREATE TABLE bench_sink (id bigint, v text);"
    ))
    .await
    .expect("setup");
}

/// Sluice's storage requests so far: (operation, count).
async fn requests(c: &Client) -> Vec<(String, i64)> {
    c.query(
        "SELECT operation, requests FROM sluice.storage_requests ORDER BY operation",
        &[],
    )
    .await
    .expect("sluice.storage_requests")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

struct Side {
    client: Client,
    trivial: Statement,
    select: Statement,
    insert: Statement,
    trivial_times: Vec<Duration>,
    select_times: Vec<Duration>,
    insert_times: Vec<Duration>,
}

impl Side {
    async fn new(url: &str, rows: i64) -> Side {
        let client = connect(url).await;
        setup(&client, rows).await;
        let trivial = client
            .prepare("SELECT $1::bigint + 1")
            .await
            .expect("prepare SELECT $1 + 1");
        let select = client
            .prepare("SELECT v FROM bench_kv WHERE id = $1")
            .await
            .expect("prepare SELECT");
        let insert = client
            .prepare("INSERT INTO bench_sink VALUES ($1, $2)")
            .await
            .expect("prepare INSERT");
        Side {
            client,
            trivial,
            select,
            insert,
            trivial_times: Vec::new(),
            select_times: Vec::new(),
            insert_times: Vec::new(),
        }
    }

    async fn trivial_once(&mut self, id: i64) {
        let t = Instant::now();
        let row = self
            .client
            .query_one(&self.trivial, &[&id])
            .await
            .expect("SELECT $1 + 1");
        self.trivial_times.push(t.elapsed());
        assert_eq!(row.get::<_, i64>(0), id + 1);
    }

    async fn select_once(&mut self, id: i64) {
        let t = Instant::now();
        let row = self
            .client
            .query_one(&self.select, &[&id])
            .await
            .expect("SELECT by key");
        self.select_times.push(t.elapsed());
        assert_eq!(row.get::<_, String>(0), format!("value {id}"));
    }

    async fn insert_once(&mut self, id: i64) {
        let t = Instant::now();
        let n = self
            .client
            .execute(&self.insert, &[&id, &"x"])
            .await
            .expect("INSERT");
        self.insert_times.push(t.elapsed());
        assert_eq!(n, 1);
    }
}

fn percentile(times: &[Duration], p: f64) -> f64 {
    let mut us: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((us.len() as f64 - 1.0) * p).round() as usize;
    us[i]
}

fn mean(times: &[Duration]) -> f64 {
    times.iter().map(|d| d.as_secs_f64() * 1e6).sum::<f64>() / times.len() as f64
}

fn per_statement(before: &[(String, i64)], after: &[(String, i64)], n: usize) -> String {
    let parts: Vec<String> = after
        .iter()
        .zip(before)
        .map(|((op, a), (_, b))| format!("{op} {:.3}", (a - b) as f64 / n as f64))
        .collect();
    parts.join(", ")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let mut sluice = Side::new(&a.sluice, a.rows).await;
    let mut pg = Side::new(&a.pg, a.rows).await;
    let key = |i: usize| (i as i64 * 7919) % a.rows + 1;

    // Warm up both sides (plans, caches, connections).
    for i in 0..100 {
        for side in [&mut sluice, &mut pg] {
            side.trivial_once(key(i)).await;
            side.select_once(key(i)).await;
        }
    }
    // A local lake's log folders are trusted unchanged (and no longer
    // listed per statement) once they have been still for two seconds:
    // the reads are measured on a lake nothing wrote to lately.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    for i in 0..10 {
        for side in [&mut sluice, &mut pg] {
            side.trivial_once(key(i)).await;
            side.select_once(key(i)).await;
        }
    }
    for side in [&mut sluice, &mut pg] {
        side.trivial_times.clear();
        side.select_times.clear();
    }

    let before_trivial = requests(&sluice.client).await;
    for i in 0..a.reps {
        if i % 2 == 0 {
            sluice.trivial_once(key(i)).await;
            pg.trivial_once(key(i)).await;
        } else {
            pg.trivial_once(key(i)).await;
            sluice.trivial_once(key(i)).await;
        }
    }
    let before = requests(&sluice.client).await;
    for i in 0..a.reps {
        if i % 2 == 0 {
            sluice.select_once(key(i)).await;
            pg.select_once(key(i)).await;
        } else {
            pg.select_once(key(i)).await;
            sluice.select_once(key(i)).await;
        }
    }
    let after_select = requests(&sluice.client).await;
    for i in 0..a.reps {
        let id = i as i64;
        if i % 2 == 0 {
            sluice.insert_once(id).await;
            pg.insert_once(id).await;
        } else {
            pg.insert_once(id).await;
            sluice.insert_once(id).await;
        }
    }
    let after_insert = requests(&sluice.client).await;

    for side in [&sluice, &pg] {
        let n: i64 = side
            .client
            .query_one("SELECT count(*) FROM bench_sink", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n as usize, a.reps, "rows in bench_sink");
    }

    println!(
        "statement overhead: {} repetitions each, bench_kv of {} rows",
        a.reps, a.rows
    );
    println!();
    println!("| statement | side | p50 µs | p99 µs | mean µs |");
    println!("|---|---|---:|---:|---:|");
    for (what, s, p) in [
        ("SELECT $1 + 1", &sluice.trivial_times, &pg.trivial_times),
        ("SELECT by key", &sluice.select_times, &pg.select_times),
        ("INSERT one row", &sluice.insert_times, &pg.insert_times),
    ] {
        for (side, t) in [("sluice", s), ("postgres", p)] {
            println!(
                "| {what} | {side} | {:.0} | {:.0} | {:.0} |",
                percentile(t, 0.5),
                percentile(t, 0.99),
                mean(t)
            );
        }
    }
    println!();
    println!("| statement | p50 sluice/postgres | p99 sluice/postgres | target |");
    println!("|---|---:|---:|---|");
    for (what, s, p, target) in [
        (
            "SELECT $1 + 1",
            &sluice.trivial_times,
            &pg.trivial_times,
            "(none)",
        ),
        (
            "SELECT by key",
            &sluice.select_times,
            &pg.select_times,
            "p99 ≤ 3×",
        ),
        (
            "INSERT one row",
            &sluice.insert_times,
            &pg.insert_times,
            "(none)",
        ),
    ] {
        println!(
            "| {what} | {:.2}× | {:.2}× | {target} |",
            percentile(s, 0.5) / percentile(p, 0.5),
            percentile(s, 0.99) / percentile(p, 0.99)
        );
    }
    println!();
    println!("Sluice storage requests per statement:");
    println!(
        "- SELECT $1 + 1: {}",
        per_statement(&before_trivial, &before, a.reps)
    );
    println!(
        "- SELECT by key: {} (target: 0 reads on an unchanged lake)",
        per_statement(&before, &after_select, a.reps)
    );
    println!(
        "- INSERT one row: {}",
        per_statement(&after_select, &after_insert, a.reps)
    );
}
