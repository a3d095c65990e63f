//! Two `sluice serve` processes on one lake, many clients writing at once:
//! no acknowledged write is lost, none is applied twice, and a write that
//! could not be applied says so. Run on a local folder (a commit is an
//! atomic create-if-absent file) and on S3 (a conditional PUT with
//! `If-None-Match: *`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Server, sqlstate, start_s3};

const CLIENTS_PER_SERVER: usize = 8;
const RUN_FOR: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_local_lake_lose_no_write() {
    let root = tempfile::tempdir().unwrap();
    let lake = root.path().join("lake");
    race(&Server::start_on(&lake), &Server::start_on(&lake)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_s3_lake_lose_no_write() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("lakes")).unwrap();
    let s3 = start_s3(root.path());
    let a = Server::start_on_url("s3://lakes/shared", &s3.env());
    let b = Server::start_on_url("s3://lakes/shared", &s3.env());
    race(&a, &b).await;
}

async fn race(a: &Server, b: &Server) {
    a.connect()
        .await
        .batch_execute(
            "CREATE TABLE events (client integer, seq integer);
             CREATE TABLE counters (id integer, n integer);
             INSERT INTO counters VALUES (1, 0);",
        )
        .await
        .unwrap();

    // Appends: every acknowledged INSERT must be there exactly once.
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (s, server) in [a, b].into_iter().enumerate() {
        for k in 0..CLIENTS_PER_SERVER {
            let client = server.connect().await;
            let (acked, failed) = (acked.clone(), failed.clone());
            let id = (s * CLIENTS_PER_SERVER + k) as i32;
            tasks.push(tokio::spawn(async move {
                let start = Instant::now();
                let mut seq = 0;
                while start.elapsed() < RUN_FOR {
                    let sql = format!(
                        "INSERT INTO events VALUES ({id}, {seq}), ({id}, {})",
                        seq + 1
                    );
                    match client.execute(&sql, &[]).await {
                        Ok(2) => {
                            acked.fetch_add(2, Ordering::SeqCst);
                        }
                        Ok(n) => panic!("INSERT reported {n} rows"),
                        Err(e) => {
                            // Only a serialization failure may refuse an append.
                            assert_eq!(sqlstate(&e), "40001", "{e:?}");
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    seq += 2;
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.load(Ordering::SeqCst);
    assert!(acked > 0);
    let c = b.connect().await;
    let row = c
        .query_one(
            "SELECT count(*), count(DISTINCT (client, seq)) FROM events",
            &[],
        )
        .await
        .unwrap();
    let (total, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(total as u64, acked, "rows in the table = rows acknowledged");
    assert_eq!(total, distinct, "no row applied twice");
    eprintln!(
        "race: {acked} rows acknowledged, {total} stored, {} appends refused with 40001",
        failed.load(Ordering::SeqCst)
    );

    // Conflicting UPDATEs of one row: each either took effect or its
    // client got an error; none is lost.
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for server in [a, b] {
        for _ in 0..4 {
            let client = server.connect().await;
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    match client
                        .execute("UPDATE counters SET n = n + 1 WHERE id = 1", &[])
                        .await
                    {
                        Ok(1) => {
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(n) => panic!("UPDATE reported {n} rows"),
                        Err(e) => assert_eq!(sqlstate(&e), "40001", "{e:?}"),
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n: i32 = c
        .query_one("SELECT n FROM counters WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as u64, done.load(Ordering::SeqCst));

    // Conflicting MERGEs, each retried on 40001 as a client should: every
    // one lands once, in the end.
    let mut tasks = Vec::new();
    let retries = Arc::new(AtomicU64::new(0));
    for server in [a, b] {
        for _ in 0..4 {
            let client = server.connect().await;
            let retries = retries.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..3 {
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        match client
                            .execute(
                                "MERGE INTO counters USING (SELECT 1 AS id) s ON counters.id = s.id \
                                 WHEN MATCHED THEN UPDATE SET n = counters.n + 1",
                                &[],
                            )
                            .await
                        {
                            Ok(1) => break,
                            Ok(n) => panic!("MERGE reported {n} rows"),
                            Err(e) => {
                                assert_eq!(sqlstate(&e), "40001", "{e:?}");
                                assert!(attempts < 100, "a MERGE never got through");
                                retries.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(
                                    fastrand::u64(5..50) * attempts.min(10),
                                ))
                                .await;
                            }
                        }
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after: i32 = c
        .query_one("SELECT n FROM counters WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, n + 24, "every retried MERGE landed exactly once");
    eprintln!(
        "race: 24 MERGEs landed after {} retries on 40001",
        retries.load(Ordering::SeqCst)
    );

    // Two servers creating one table at once: one succeeds, the other is
    // told it exists.
    let (ca, cb) = (a.connect().await, b.connect().await);
    for round in 0..3 {
        let sql = format!("CREATE TABLE raced_{round} (a integer)");
        let (ra, rb) = tokio::join!(ca.simple_query(&sql), cb.simple_query(&sql));
        let codes: Vec<String> = [&ra, &rb]
            .iter()
            .map(|r| match r {
                Ok(_) => "ok".to_string(),
                Err(e) => sqlstate(e),
            })
            .collect();
        let mut sorted = codes.clone();
        sorted.sort();
        assert_eq!(sorted, ["42P07", "ok"], "round {round}: {ra:?} {rb:?}");
    }
}

/// Two servers on one lake, four clients each calling `nextval` and
/// inserting into a `bigserial` table: no value is handed out twice, and a
/// server started again continues past every value handed out before and
/// starts from a value set with `setval(…, false)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_never_hand_out_a_sequence_value_twice() {
    let root = tempfile::tempdir().unwrap();
    let lake = root.path().join("lake");
    let (a, b) = (Server::start_on(&lake), Server::start_on(&lake));
    a.connect()
        .await
        .batch_execute("CREATE SEQUENCE ids; CREATE TABLE rows (id bigserial, server integer);")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (s, server) in [&a, &b].into_iter().enumerate() {
        for _ in 0..4 {
            let client = server.connect().await;
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..40 {
                    let v: i64 = client
                        .query_one("SELECT nextval('ids')", &[])
                        .await
                        .unwrap()
                        .get(0);
                    got.push(v);
                }
                client
                    .execute(
                        &format!(
                            "INSERT INTO rows (server) SELECT {s} FROM generate_series(1, 50)"
                        ),
                        &[],
                    )
                    .await
                    .unwrap();
                got
            }));
        }
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "a sequence value was handed out twice");
    let c = b.connect().await;
    let row = c
        .query_one("SELECT count(*), count(DISTINCT id) FROM rows", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (400, 400));
    let before = *all.last().unwrap();
    drop(c);
    drop(a);
    drop(b);
    let again = Server::start_on(&lake);
    let next: i64 = again
        .connect()
        .await
        .query_one("SELECT nextval('ids')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(next > before, "{next} after {before}");
    // A value set and not yet handed out is the next one, for any server.
    again
        .connect()
        .await
        .query_one("SELECT setval('ids', 7000, false)", &[])
        .await
        .unwrap();
    drop(again);
    let last = Server::start_on(&lake);
    let c = last.connect().await;
    let row = c
        .query_one("SELECT last_value, is_called FROM ids", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, bool>(1)), (7000, false));
    let next: i64 = c
        .query_one("SELECT nextval('ids')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, 7000);
}
