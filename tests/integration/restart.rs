//! State lives in the lake: a restarted server, or a second process on the
//! same lake, sees the same catalog, rows and versions.

use crate::common::Server;

#[tokio::test]
async fn catalog_rows_and_versions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let server = Server::start_on(&lake);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE SCHEMA raw;
         CREATE TABLE raw.t (id bigint, name varchar(10)) PARTITIONED BY (name);
         INSERT INTO raw.t VALUES (1, 'a'), (2, 'b');
         INSERT INTO raw.t VALUES (3, 'a');
         CREATE VIEW raw.v AS SELECT name, count(*) AS n FROM raw.t GROUP BY name;",
    )
    .await
    .unwrap();
    // A second process on the same lake sees the objects at once.
    let other = Server::start_on(&lake);
    let o = other.connect().await;
    let n: i64 = o
        .query_one("SELECT count(*) FROM raw.t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    drop(o);
    other.stop();
    drop(c);
    assert!(server.stop().success(), "clean shutdown on SIGTERM");

    let server = Server::start_on(&lake);
    let c = server.connect().await;
    let rows = c
        .query("SELECT id, name FROM raw.t ORDER BY id", &[])
        .await
        .unwrap();
    let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, vec![(1, "a".into()), (2, "b".into()), (3, "a".into())]);
    let v = c
        .query("SELECT name, n FROM raw.v ORDER BY name", &[])
        .await
        .unwrap();
    assert_eq!(v.len(), 2);
    let old: i64 = c
        .query_one("SELECT count(*) FROM raw.t VERSION AS OF 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(old, 2);
    let history = c.simple_query("DESCRIBE HISTORY raw.t").await.unwrap();
    let versions = history
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(versions, 3);
}
