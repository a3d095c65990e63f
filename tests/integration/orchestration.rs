//! Orchestration over the wire: schedules that fire by themselves, refreshes
//! that follow upstream commits and flow downstream, retries and failures
//! in `sluice.runs`, `sluice.refresh(...)` as an orchestrator's task calls
//! it, LISTEN notifications, two servers sharing one lake's leases, and the
//! Prometheus endpoint.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::common::{Server, rows, sqlstate};

/// Fast ticks and retries, so the tests take seconds.
fn quick() -> Vec<(&'static str, String)> {
    vec![
        ("SLUICE_SCHEDULER_TICK_MS", "200".to_string()),
        ("SLUICE_RETRY_BASE_MS", "300".to_string()),
    ]
}

/// Poll `sql` until its rows equal `want` (20 s at most).
async fn eventually(c: &Client, sql: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = rows(c, sql).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: still {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A connection whose notifications arrive on the returned channel.
async fn listener(
    s: &Server,
) -> (
    Client,
    tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>,
) {
    let (client, mut conn) = tokio_postgres::connect(&s.url(), NoTls).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let AsyncMessage::Notification(n) = m {
                let _ = tx.send(n);
            }
        }
    });
    (client, rx)
}

#[tokio::test]
async fn schedules_upstream_triggers_and_notifications() {
    let s = Server::start_with_env(&quick());
    let c = s.connect().await;
    c.batch_execute(
        "CREATE TABLE events (id bigint, amount bigint);
         INSERT INTO events VALUES (1, 10);
         CREATE MATERIALIZED VIEW ticking REFRESH EVERY INTERVAL '1 second' AS
           SELECT count(*) AS n FROM events;
         CREATE MATERIALIZED VIEW totals REFRESH ON UPSTREAM AS
           SELECT sum(amount) AS total FROM events;
         CREATE MATERIALIZED VIEW doubled AS SELECT total * 2 AS twice FROM totals;
         CREATE FEATURE VIEW latest_amount ENTITY (id) TIMESTAMP ts ONLINE REFRESH ON UPSTREAM AS
           SELECT id, CAST('2026-01-01 00:00:00' AS timestamp) AS ts, amount FROM events;",
    )
    .await
    .unwrap();
    let (l, mut notes) = listener(&s).await;
    l.batch_execute("LISTEN sluice_refresh").await.unwrap();

    // The schedules as the server sees them.
    let listed = rows(
        &c,
        "SELECT name, schedule, next_run IS NOT NULL, reason FROM sluice.schedules ORDER BY name",
    )
    .await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed[0].starts_with("latest_amount|ON UPSTREAM|f|"),
        "{listed:?}"
    );
    assert!(
        listed[1].starts_with("ticking|EVERY INTERVAL '1 second'|t|1 second after"),
        "{listed:?}"
    );
    assert!(
        listed[2].starts_with("totals|ON UPSTREAM|f|when a table it reads"),
        "{listed:?}"
    );

    // An append: the interval view catches up by itself, the upstream
    // view at once, and the view reading it follows in the same wave.
    c.batch_execute("INSERT INTO events VALUES (2, 5)")
        .await
        .unwrap();
    eventually(&c, "SELECT n FROM ticking", &["2"]).await;
    eventually(&c, "SELECT total FROM totals", &["15"]).await;
    eventually(&c, "SELECT twice FROM doubled", &["30"]).await;
    // A feature view follows too, and its online rows with it.
    eventually(
        &c,
        "SELECT amount FROM online.latest_amount WHERE id = 2",
        &["5"],
    )
    .await;

    // Each refresh that committed was announced to the listener.
    let mut announced = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while announced.len() < 4 {
        let n = tokio::time::timeout_at(deadline.into(), notes.recv())
            .await
            .expect("notifications for ticking, totals, doubled and latest_amount")
            .unwrap();
        assert_eq!(n.channel(), "sluice_refresh");
        let payload: serde_json::Value = serde_json::from_str(n.payload()).unwrap();
        assert!(payload["version"].as_i64().unwrap() >= 1, "{payload}");
        announced.insert(payload["object"].as_str().unwrap().to_string());
    }
    assert!(announced.contains("public.doubled"), "{announced:?}");
    assert!(announced.contains("public.latest_amount"), "{announced:?}");

    // The run history says what ran, why, and what it consumed.
    eventually(
        &c,
        "SELECT node, status, trigger FROM sluice.runs
          WHERE node = 'public.doubled' AND status = 'succeeded' LIMIT 1",
        &["public.doubled|succeeded|after public.totals"],
    )
    .await;
    let upstream = rows(
        &c,
        "SELECT trigger, method, sources FROM sluice.runs
          WHERE node = 'public.totals' AND rows > 0 ORDER BY started_at LIMIT 1",
    )
    .await;
    // The version the trigger saw is the one the refresh consumed.
    let (trigger, rest) = upstream[0].split_once('|').unwrap();
    let version = trigger
        .strip_prefix("upstream: public.events version ")
        .unwrap_or_else(|| panic!("{upstream:?}"));
    assert!(
        rest.ends_with(&format!(r#"{{"public.events":{version}}}"#)),
        "{upstream:?}"
    );
    let scheduled = rows(
        &c,
        "SELECT count(*) > 0 FROM sluice.runs
          WHERE node = 'public.ticking' AND trigger LIKE 'schedule: EVERY%' AND attempt = 1",
    )
    .await;
    assert_eq!(scheduled, ["t"]);

    // A notification sent by hand reaches only the channel's listeners.
    l.batch_execute("LISTEN \"Other\"; UNLISTEN sluice_refresh")
        .await
        .unwrap();
    c.batch_execute("NOTIFY \"Other\", 'hello'").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = notes.recv().await.unwrap();
            if n.channel() == "Other" {
                return n;
            }
        }
    })
    .await
    .expect("NOTIFY delivered");
    assert_eq!(n.payload(), "hello");

    // Schedules change and stop with ALTER.
    c.batch_execute(
        "ALTER MATERIALIZED VIEW ticking SET REFRESH CRON '0 3 * * *' RETRIES 2;
         ALTER MATERIALIZED VIEW totals SET REFRESH MANUAL",
    )
    .await
    .unwrap();
    c.batch_execute("ALTER FEATURE VIEW latest_amount SET REFRESH MANUAL")
        .await
        .unwrap();
    assert_eq!(
        rows(&c, "SELECT name, schedule, retries FROM sluice.schedules").await,
        ["ticking|CRON '0 3 * * *' RETRIES 2|2"]
    );
    // SET REFRESH on a materialized view that is not a feature view.
    let e = c
        .simple_query("ALTER FEATURE VIEW totals SET REFRESH ON UPSTREAM")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42809", "{e:?}");
    c.batch_execute("INSERT INTO events VALUES (3, 1)")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rows(&c, "SELECT total FROM totals").await, ["15"]);
    assert_eq!(rows(&c, "SELECT n FROM ticking").await, ["2"]);
}

#[tokio::test]
async fn retries_failures_and_refresh_calls() {
    let s = Server::start_with_env(&quick());
    let c = s.connect().await;
    // `1 / (SELECT count(*) FROM gate)` divides by zero while the gate is
    // empty: a refresh that fails until a row is put back.
    c.batch_execute(
        "CREATE TABLE gate (g bigint);
         INSERT INTO gate VALUES (1);
         CREATE TABLE facts (x bigint);
         INSERT INTO facts VALUES (1), (2);
         CREATE MATERIALIZED VIEW flaky REFRESH EVERY INTERVAL '1 day' RETRIES 6 AS
           SELECT count(*) / (SELECT count(*) FROM gate) AS n FROM facts;
         CREATE MATERIALIZED VIEW after_flaky AS SELECT n + 100 AS m FROM flaky;
         DELETE FROM gate;
         INSERT INTO facts VALUES (3);",
    )
    .await
    .unwrap();

    // Called as an orchestrator's task would: it fails at first, is
    // retried, and once the gate is back it succeeds.
    let url = s.url();
    let call = tokio::spawn(async move {
        let (c2, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(conn);
        c2.query_one("SELECT sluice.refresh($1)", &[&"public.flaky"])
            .await
            .map(|r| r.get::<_, String>(0))
    });
    eventually(
        &c,
        "SELECT DISTINCT status FROM sluice.runs WHERE node = 'public.flaky'",
        &["retrying"],
    )
    .await;
    c.batch_execute("INSERT INTO gate VALUES (1)")
        .await
        .unwrap();
    let status = call
        .await
        .unwrap()
        .expect("the refresh succeeds in the end");
    assert_eq!(status, "succeeded");
    assert_eq!(rows(&c, "SELECT n FROM flaky").await, ["3"]);
    assert_eq!(rows(&c, "SELECT m FROM after_flaky").await, ["103"]);
    let attempts = rows(
        &c,
        "SELECT attempt, status, message IS NOT NULL FROM sluice.runs
          WHERE node = 'public.flaky' ORDER BY attempt",
    )
    .await;
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert_eq!(attempts[0], "1|retrying|t");
    assert!(
        attempts.last().unwrap().ends_with("|succeeded|f"),
        "{attempts:?}"
    );
    let run_ids = rows(
        &c,
        "SELECT count(DISTINCT run_id) FROM sluice.runs
          WHERE node IN ('public.flaky', 'public.after_flaky')",
    )
    .await;
    assert_eq!(run_ids, ["1"], "one wave, one run id");

    // One that always fails: marked failed after its retries, the caller
    // gets the cause's SQLSTATE, the view downstream is skipped, and the
    // previous version stays readable.
    c.batch_execute(
        "ALTER MATERIALIZED VIEW flaky SET REFRESH EVERY INTERVAL '1 day' RETRIES 1;
         DELETE FROM gate;
         INSERT INTO facts VALUES (4);",
    )
    .await
    .unwrap();
    let e = c
        .simple_query("SELECT sluice.refresh('flaky')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22012", "{e:?}");
    let msg = e.as_db_error().unwrap().message().to_string();
    assert!(
        msg.contains("refresh of public.flaky failed after 2 attempts"),
        "{msg}"
    );
    assert_eq!(rows(&c, "SELECT n FROM flaky").await, ["3"]);
    assert_eq!(rows(&c, "SELECT m FROM after_flaky").await, ["103"]);
    let last = rows(
        &c,
        "SELECT node, status, coalesce(attempt, 0) FROM sluice.runs
          WHERE run_id = (SELECT run_id FROM sluice.runs ORDER BY ended_at DESC LIMIT 1)
          ORDER BY ended_at, node",
    )
    .await;
    assert_eq!(
        last,
        [
            "public.flaky|retrying|1",
            "public.flaky|failed|2",
            "public.after_flaky|skipped|0",
        ]
    );
    // The connection is still usable, and CALL works the same way.
    c.batch_execute("INSERT INTO gate VALUES (1)")
        .await
        .unwrap();
    c.batch_execute("CALL sluice.refresh('public.flaky')")
        .await
        .unwrap();
    assert_eq!(rows(&c, "SELECT n FROM flaky").await, ["4"]);

    // Bad input is refused where it is written.
    for (sql, state) in [
        (
            "CREATE MATERIALIZED VIEW v1 REFRESH EVERY INTERVAL 'soon' AS SELECT 1 AS x",
            "22007",
        ),
        (
            "CREATE MATERIALIZED VIEW v1 REFRESH CRON '61 * * * *' AS SELECT 1 AS x",
            "22023",
        ),
        (
            "ALTER MATERIALIZED VIEW flaky SET REFRESH EVERY '1 month'",
            "22007",
        ),
        ("SELECT sluice.refresh('no_such_view')", "42P01"),
        ("SELECT sluice.refresh('gate')", "42809"),
    ] {
        let e = c.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), state, "{sql}: {e:?}");
    }
    assert_eq!(rows(&c, "SELECT 1").await, ["1"]);
}

#[tokio::test]
async fn two_servers_never_refresh_one_view_at_once() {
    let a = Server::start_with_env(&quick());
    let b = Server::start_on_with_env(&a.lake, &quick());
    let c = a.connect().await;
    c.batch_execute(
        "CREATE TABLE t (x bigint);
         INSERT INTO t SELECT * FROM generate_series(1, 20000);
         CREATE MATERIALIZED VIEW shared REFRESH EVERY INTERVAL '1 second' AS
           SELECT x % 97 AS k, count(*) AS n, sum(x) AS s FROM t GROUP BY 1;",
    )
    .await
    .unwrap();
    let d = b.connect().await;
    // A listener on server b hears the refreshes server a commits too.
    let (lb, mut notes) = listener(&b).await;
    lb.batch_execute("LISTEN sluice_refresh").await.unwrap();
    // Both servers' schedulers run for a while; writes keep every
    // refresh busy.
    let until = Instant::now() + Duration::from_secs(6);
    let mut i = 0;
    while Instant::now() < until {
        let conn = if i % 2 == 0 { &c } else { &d };
        conn.batch_execute("INSERT INTO t SELECT * FROM generate_series(1, 500)")
            .await
            .unwrap();
        i += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let runs = rows(
        &c,
        "SELECT CAST(started_at AS text), CAST(ended_at AS text) FROM sluice.runs
          WHERE node = 'public.shared' ORDER BY started_at",
    )
    .await;
    assert!(runs.len() >= 3, "the schedule ran: {runs:?}");
    let spans: Vec<(String, String)> = runs
        .iter()
        .map(|r| {
            let (s, e) = r.split_once('|').unwrap();
            (s.to_string(), e.to_string())
        })
        .collect();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "overlapping refreshes: {w:?}");
    }
    // About one run a second between both servers, not one each.
    assert!(runs.len() <= 12, "{} runs in ~8 s: {runs:?}", runs.len());
    // Every committed refresh was announced on b once, whichever server
    // made it.
    let mut versions = Vec::new();
    while let Ok(n) = notes.try_recv() {
        let p: serde_json::Value = serde_json::from_str(n.payload()).unwrap();
        assert_eq!(p["object"], "public.shared", "{p}");
        versions.push(p["version"].as_i64().unwrap());
    }
    let committed = rows(
        &c,
        "SELECT count(*) FROM sluice.runs WHERE node = 'public.shared' AND rows > 0",
    )
    .await;
    assert!(versions.len() >= 2, "{versions:?}");
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert!(
        versions.len() as i64 >= committed[0].parse::<i64>().unwrap() - 1,
        "{versions:?} vs {committed:?} committed refreshes"
    );
    eventually(
        &c,
        "SELECT sum(n) = (SELECT count(*) FROM t) FROM shared",
        &["t"],
    )
    .await;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = Server::start_with_args(&["--metrics", "127.0.0.1:0"]);
    let addr = s.metrics_addr();
    let c = s.connect().await;
    c.batch_execute(
        "CREATE TABLE m (x bigint); INSERT INTO m VALUES (1), (2);
         CREATE MATERIALIZED VIEW mv REFRESH EVERY INTERVAL '1 hour' AS SELECT count(*) AS n FROM m;
         SELECT sluice.refresh('mv');",
    )
    .await
    .unwrap();
    let _ = c.simple_query("SELECT * FROM no_such_table").await;
    let (head, text) = crate::common::scrape_metrics(&addr).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let value = |name: &str| crate::common::metric(&text, name);
    assert!(value("sluice_connections ") >= 1.0);
    assert!(value("sluice_queries_total{status=\"ok\"}") >= 4.0);
    assert!(value("sluice_queries_total{status=\"error\"}") >= 1.0);
    assert!(value("sluice_rows_written_total") >= 2.0);
    assert!(value("sluice_refresh_runs_total{status=\"succeeded\"}") >= 1.0);
    assert!(value("sluice_query_duration_seconds_count") >= 5.0);
    // Every sample line is `name[{labels}] value`.
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let v = l.rsplit(' ').next().unwrap();
        assert!(
            v.parse::<f64>().is_ok() || v == "+Inf" || v == "NaN",
            "bad sample line {l:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_and_leases_work_on_an_s3_lake() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("lakes")).unwrap();
    let s3 = crate::common::start_s3(root.path());
    let mut env = s3.env();
    env.extend(quick());
    let a = Server::start_on_url("s3://lakes/orch", &env);
    let b = Server::start_on_url("s3://lakes/orch", &env);
    let c = a.connect().await;
    c.batch_execute(
        "CREATE TABLE t (x bigint);
         INSERT INTO t VALUES (1), (2);
         CREATE MATERIALIZED VIEW s REFRESH EVERY INTERVAL '1 second' AS SELECT count(*) AS n FROM t;
         INSERT INTO t VALUES (3);",
    )
    .await
    .unwrap();
    eventually(&c, "SELECT n FROM s", &["3"]).await;
    // By hand on the other server, through the same lease.
    let d = b.connect().await;
    d.batch_execute("INSERT INTO t VALUES (4); REFRESH MATERIALIZED VIEW s")
        .await
        .unwrap();
    assert_eq!(rows(&d, "SELECT n FROM s").await, ["4"]);
    assert_eq!(rows(&d, "SELECT sluice.refresh('s')").await, ["succeeded"]);
    eventually(
        &c,
        "SELECT count(*) > 0 FROM sluice.runs WHERE node = 'public.s' AND status = 'succeeded' \
         AND trigger LIKE 'schedule:%'",
        &["t"],
    )
    .await;
}
