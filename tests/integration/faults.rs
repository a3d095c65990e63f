//! A lake on S3 that misbehaves: a storage outage, a corrupt commit in one
//! table's log, wrong credentials, a missing bucket. Each failure is the
//! statement's (or the start's) with a message naming the table or lake;
//! the server keeps serving, and secrets never show.

use std::process::Command;

use crate::common::{Server, sqlstate};
use crate::s3::{SECRET_KEY, start_s3, start_s3_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_faults_fail_the_statement_and_the_server_stays_up() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("lakes")).unwrap();
    let mut s3 = start_s3(root.path());
    let port = s3.port;
    // Storage options from the config file: fail fast when S3 is gone.
    let config = root.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[lake.\"s3://lakes/faulty\"]\nmax_retries = 1\nretry_timeout = \"3s\"\n",
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut server = Server::start_on_url_with_args("s3://lakes/faulty", &s3.env(), &args);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE good (a integer); INSERT INTO good VALUES (1);
         CREATE TABLE bad (a integer); INSERT INTO bad VALUES (1);",
    )
    .await
    .unwrap();

    // Another writer leaves a commit that is not JSON in one table's log.
    let log = root.path().join("lakes/faulty/public/bad/_delta_log");
    assert!(log.join("00000000000000000001.json").exists());
    std::fs::write(log.join("00000000000000000002.json"), "{not json\n").unwrap();
    let e = c.query("SELECT * FROM bad", &[]).await.unwrap_err();
    let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap();
    assert!(msg.contains("s3://lakes/faulty/public/bad"), "{msg}");
    // Nothing is written on top of it, and other tables are unaffected.
    assert!(c.execute("INSERT INTO bad VALUES (2)", &[]).await.is_err());
    assert!(!log.join("00000000000000000003.json").exists());
    let n: i64 = c
        .query_one("SELECT count(*) FROM good", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // Storage outage: queries on what this server holds go on (the
    // versions it last saw), writes fail within the configured time with
    // 58030 naming what they could not reach, and the server stays.
    assert_eq!(crate::common::rows(&c, "SELECT a FROM good").await, ["1"]);
    s3.stop();
    // Past the lake's freshness window (1 s on S3), a statement asks storage.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let other = server.connect().await;
    let write = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        c.execute("INSERT INTO good VALUES (3)", &[]),
    )
    .await
    .expect("a write during the outage fails in bounded time");
    let e = write.unwrap_err();
    let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap();
    assert!(msg.contains("s3://lakes/faulty/"), "{msg}");
    assert!(!msg.contains(SECRET_KEY), "{msg}");
    assert_eq!(sqlstate(&e), "58030", "{e:?}");
    assert_eq!(
        crate::common::rows(&other, "SELECT a FROM good").await,
        ["1"]
    );
    assert!(server.is_running());
    // Back again: the same connection carries on.
    let _s3 = start_s3_on(root.path(), port);
    c.execute("INSERT INTO good VALUES (2)", &[]).await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM good", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let env = _s3.env();
    drop(c);
    server.stop();

    // A restart with one unreadable table starts, says which, and serves
    // the others.
    let server = Server::start_on_url_with_args("s3://lakes/faulty", &env, &args);
    let log = server.wait_for_log("table public.bad cannot be read");
    assert!(!log.contains("table public.good"), "{log}");
    let c = server.connect().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM good", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    // Settings and the log never show the secret.
    for row in c.simple_query("SHOW ALL").await.unwrap() {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = row {
            assert!(!r.get(1).unwrap_or("").contains(SECRET_KEY));
        }
    }
    assert!(!server.wait_for_log("").contains(SECRET_KEY));

    // Wrong credentials and a missing bucket stop the start, naming the
    // lake, never the secret.
    for (lake, secret) in [
        ("s3://lakes/faulty", "wrong-secret-value"),
        ("s3://missing-bucket/lake", SECRET_KEY),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--lake", lake, "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{lake}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("cannot open the lake at {lake}")),
            "{err}"
        );
        assert!(!err.contains(secret), "{err}");
    }
}
