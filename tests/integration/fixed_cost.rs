//! What a statement costs in requests to lake storage, on S3 (the real
//! HTTP server of `s3.rs`), read from `sluice.storage_requests`.
//!
//! On an unchanged lake, within the freshness window, reading a row by key
//! must not ask storage anything: the catalog and table states are known,
//! the plan is kept, the file footers and pages are cached. A prepared
//! INSERT pays for its own writes (data file and commit) and nothing else.

use tokio_postgres::Client;

use crate::common::{Server, start_s3};

const REPEAT: usize = 200;

/// Requests per operation so far.
async fn requests(c: &Client) -> Vec<(String, i64)> {
    c.query(
        "SELECT operation, requests FROM sluice.storage_requests ORDER BY operation",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn diff(before: &[(String, i64)], after: &[(String, i64)]) -> Vec<(String, i64)> {
    after
        .iter()
        .zip(before)
        .map(|((op, a), (_, b))| (op.clone(), a - b))
        .filter(|(_, n)| *n != 0)
        .collect()
}

#[tokio::test]
async fn repeated_statements_on_an_unchanged_s3_lake_cost_no_reads() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("lakes")).unwrap();
    let s3 = start_s3(root.path());
    let mut env = s3.env();
    // A window longer than the test: what is measured is the statements'
    // own cost, not how often the window runs out.
    env.retain(|(k, _)| *k != "SLUICE_FRESHNESS_MS");
    env.push(("SLUICE_FRESHNESS_MS", "600000".to_string()));
    let server = Server::start_on_url("s3://lakes/cost", &env);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE kv (id bigint PRIMARY KEY, v text);
         INSERT INTO kv SELECT i, 'v' || i FROM generate_series(1, 1000) AS s(i);",
    )
    .await
    .unwrap();

    // Point reads by key, prepared once.
    let select = c.prepare("SELECT v FROM kv WHERE id = $1").await.unwrap();
    for i in 1..=10i64 {
        c.query_one(&select, &[&i]).await.unwrap();
    }
    let before = requests(&c).await;
    for i in 0..REPEAT as i64 {
        let row = c.query_one(&select, &[&(i % 1000 + 1)]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), format!("v{}", i % 1000 + 1));
    }
    let after = requests(&c).await;
    let select_cost = diff(&before, &after);
    eprintln!("{REPEAT} point SELECTs: {select_cost:?}");

    // Prepared one-row INSERTs into a table without keys.
    c.batch_execute("CREATE TABLE log (id bigint, v text)")
        .await
        .unwrap();
    let insert = c.prepare("INSERT INTO log VALUES ($1, $2)").await.unwrap();
    let before = requests(&c).await;
    for i in 0..REPEAT as i64 {
        c.execute(&insert, &[&i, &"x"]).await.unwrap();
    }
    let after = requests(&c).await;
    let insert_cost = diff(&before, &after);
    eprintln!("{REPEAT} INSERTs: {insert_cost:?}");
    let n: i64 = c
        .query_one("SELECT count(*) FROM log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, REPEAT as i64);

    assert!(
        select_cost.is_empty(),
        "repeated point SELECTs asked storage: {select_cost:?}"
    );
    // Each INSERT writes its data file and its commit (and every 100th
    // commit a checkpoint). Delta's commit protocol then reads: a listing
    // for the newest version before the commit, a listing and the new
    // commit after it (delta-rs reads that twice), and Sluice reads the
    // commit's metrics once. Before the fixed cost was cut this was four
    // listings per INSERT.
    let per = |op: &str| {
        insert_cost
            .iter()
            .find(|(o, _)| o == op)
            .map_or(0.0, |(_, n)| *n as f64 / REPEAT as f64)
    };
    assert!(per("put") <= 2.1, "writes per INSERT: {insert_cost:?}");
    assert!(per("list") <= 2.1, "listings per INSERT: {insert_cost:?}");
    assert!(
        per("get") + per("head") <= 5.5,
        "reads per INSERT: {insert_cost:?}"
    );
    assert_eq!(per("delete") + per("copy"), 0.0, "{insert_cost:?}");
}

/// On a local lake (no freshness window) a statement on an unchanged table
/// asks storage nothing once the log folders have been still for a while,
/// unless `SLUICE_FRESHNESS_MS` is set; a commit by another server is seen
/// by the very next statement.
#[tokio::test]
async fn an_unchanged_local_lake_is_not_listed_and_another_servers_commit_is_seen_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let a = Server::start_on(&lake);
    let c = a.connect().await;
    c.batch_execute(
        "CREATE TABLE kv (id bigint PRIMARY KEY, v text);
         INSERT INTO kv SELECT i, 'v' || i FROM generate_series(1, 100) AS s(i);",
    )
    .await
    .unwrap();
    let count = c.prepare("SELECT count(*) FROM kv").await.unwrap();
    let n = |r: tokio_postgres::Row| r.get::<_, i64>(0);
    assert_eq!(n(c.query_one(&count, &[]).await.unwrap()), 100);

    // Until the folders are still, every statement lists; after, none.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    c.query_one(&count, &[]).await.unwrap();
    let before = requests(&c).await;
    for _ in 0..20 {
        assert_eq!(n(c.query_one(&count, &[]).await.unwrap()), 100);
    }
    let cost = diff(&before, &requests(&c).await);
    assert!(
        cost.is_empty(),
        "reads of an unchanged table asked storage: {cost:?}"
    );
    // A window set explicitly is the only rule: every statement lists.
    let listing = Server::start_on_with_env(&lake, &[("SLUICE_FRESHNESS_MS", "0".to_string())]);
    let l = listing.connect().await;
    l.query_one("SELECT count(*) FROM kv", &[]).await.unwrap();
    let before = requests(&l).await;
    for _ in 0..5 {
        l.query_one("SELECT count(*) FROM kv", &[]).await.unwrap();
    }
    let cost = diff(&before, &requests(&l).await);
    assert!(
        cost.iter().any(|(op, n)| op == "list" && *n >= 5),
        "with SLUICE_FRESHNESS_MS=0 reads did not list: {cost:?}"
    );

    // Another server's commit changes the folder: seen at once, twice in
    // a row (the second within the same second as the first).
    let b = Server::start_on(&lake);
    let o = b.connect().await;
    for expected in [101, 102] {
        o.batch_execute(&format!("INSERT INTO kv VALUES ({expected}, 'x')"))
            .await
            .unwrap();
        assert_eq!(n(c.query_one(&count, &[]).await.unwrap()), expected);
    }
}
