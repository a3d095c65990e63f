//! Online lookups over the wire: `online.<view or service>` read by entity
//! keys with tokio-postgres prepared statements, kept up with refreshes of
//! this server and commits of another one, with TTL expiry, batches and the
//! planned fallback agreeing with the lookup.

use std::time::Duration;

use crate::common::{Server, rows, sqlstate};

/// A timestamp `secs_ago` seconds before now, as SQL (the server's clock,
/// in UTC like the TTL check).
fn ago(secs_ago: u64) -> String {
    format!("CAST(now() - INTERVAL '{secs_ago} seconds' AS timestamp)")
}

/// The `amount` column of each row, in order.
fn amounts(rows: &[tokio_postgres::Row]) -> Vec<(i64, f64)> {
    rows.iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, f64>(1)))
        .collect()
}

#[tokio::test]
async fn online_lookups_follow_refreshes_ttl_and_other_servers() {
    let env = [("SLUICE_ONLINE_POLL_MS", "200".to_string())];
    let a = Server::start_with_env(&env);
    let b = Server::start_on_with_env(&a.lake, &env);
    let c = a.connect().await;
    c.batch_execute(&format!(
        "CREATE TABLE events (user_id bigint, ts timestamp, amount double precision);
         INSERT INTO events VALUES
           (1, {old}, 1.0), (1, {older}, 0.5),
           (2, {recent}, 2.0), (2, {older}, 9.0),
           (3, {recent}, 3.0), (NULL, {recent}, 7.0);
         CREATE FEATURE VIEW user_amounts ENTITY (user_id) TIMESTAMP ts TTL '1 hour' ONLINE AS
           SELECT user_id, ts, amount FROM events;
         CREATE TABLE merchants (merchant_id text, ts timestamp, risk double precision);
         INSERT INTO merchants VALUES ('m1', {recent}, 0.25);
         CREATE FEATURE VIEW merchant_risk ENTITY (merchant_id) TIMESTAMP ts ONLINE AS
           SELECT merchant_id, ts, risk FROM merchants;
         CREATE FEATURE VIEW offline_only ENTITY (user_id) TIMESTAMP ts AS
           SELECT user_id, ts, amount FROM events;
         CREATE FEATURE SERVICE scoring AS user_amounts (amount), merchant_risk (risk);",
        old = ago(2 * 3600),
        older = ago(3 * 3600),
        recent = ago(60),
    ))
    .await
    .unwrap();

    // One entity by a prepared statement; the expired one and an unknown
    // one find nothing.
    let one = c
        .prepare("SELECT user_id, amount FROM online.user_amounts WHERE user_id = $1")
        .await
        .unwrap();
    assert_eq!(one.params(), &[tokio_postgres::types::Type::INT8]);
    assert_eq!(amounts(&c.query(&one, &[&2i64]).await.unwrap()), [(2, 2.0)]);
    assert!(c.query(&one, &[&1i64]).await.unwrap().is_empty(), "expired");
    assert!(c.query(&one, &[&99i64]).await.unwrap().is_empty());

    // A batch: every entity asked for that has a live row.
    let batch = c
        .prepare("SELECT user_id, amount FROM online.user_amounts WHERE user_id = ANY($1)")
        .await
        .unwrap();
    let mut got = amounts(&c.query(&batch, &[&vec![3i64, 2, 1, 99, 3]]).await.unwrap());
    got.sort_by_key(|r| r.0);
    assert_eq!(got, [(2, 2.0), (3, 3.0)]);
    // A batch is a page of entities, not a table's worth.
    let many: Vec<i64> = (0..100_001).collect();
    let e = c.query(&batch, &[&many]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "22023", "{e:?}");

    // The same questions planned as queries (shapes a lookup is not) agree.
    assert_eq!(
        rows(
            &c,
            "SELECT user_id, amount FROM online.user_amounts ORDER BY user_id"
        )
        .await,
        ["2|2", "3|3"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT amount FROM online.user_amounts WHERE user_id + 0 = 2"
        )
        .await,
        ["2"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT a.amount AS x FROM online.user_amounts a WHERE a.user_id = '3'"
        )
        .await,
        ["3"]
    );

    // A refresh of this server is visible when it returns.
    c.batch_execute(&format!(
        "INSERT INTO events VALUES (2, {}, 20.0), (4, {}, 4.0);
         REFRESH FEATURE VIEW user_amounts;",
        ago(30),
        ago(30)
    ))
    .await
    .unwrap();
    assert_eq!(
        amounts(&c.query(&one, &[&2i64]).await.unwrap()),
        [(2, 20.0)]
    );
    assert_eq!(amounts(&c.query(&one, &[&4i64]).await.unwrap()), [(4, 4.0)]);

    // Another server's commit is noticed by polling.
    let other = b.connect().await;
    other
        .batch_execute(&format!(
            "INSERT INTO events VALUES (3, {}, 33.0); REFRESH FEATURE VIEW user_amounts;",
            ago(10)
        ))
        .await
        .unwrap();
    let mut seen = vec![];
    for _ in 0..100 {
        seen = amounts(&c.query(&one, &[&3i64]).await.unwrap());
        if seen == [(3, 33.0)] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen,
        [(3, 33.0)],
        "the other server's refresh never arrived"
    );

    // A service: one row per combination asked for, NULL where a view has
    // no live row.
    let svc = c
        .prepare(
            "SELECT user_id, merchant_id, user_amounts__amount, merchant_risk__risk \
             FROM online.scoring WHERE user_id = $1 AND merchant_id = $2",
        )
        .await
        .unwrap();
    let r = c.query(&svc, &[&2i64, &"m1"]).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].get::<_, f64>(2), 20.0);
    assert_eq!(r[0].get::<_, f64>(3), 0.25);
    let r = c.query(&svc, &[&1i64, &"m9"]).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].get::<_, Option<f64>>(2), None);
    assert_eq!(r[0].get::<_, Option<f64>>(3), None);
    assert_eq!(
        rows(
            &c,
            "SELECT * FROM online.scoring WHERE merchant_id IN ('m1') AND user_id IN (4, 2)"
        )
        .await,
        ["4|m1|4|0.25", "2|m1|20|0.25"]
    );

    // Errors name what is wrong and leave the connection usable.
    for (sql, state) in [
        (
            "SELECT * FROM online.offline_only WHERE user_id = 1",
            "42809",
        ),
        ("SELECT * FROM online.offline_only", "42809"),
        (
            "SELECT * FROM online.user_amounts WHERE user_id = 'x'",
            "22P02",
        ),
        ("SELECT * FROM online.scoring WHERE user_id = 1", "0A000"),
        ("SELECT * FROM online.nope WHERE user_id = 1", "42P01"),
    ] {
        let e = c.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), state, "{sql}: {e:?}");
    }
    assert_eq!(
        amounts(&c.query(&one, &[&2i64]).await.unwrap()),
        [(2, 20.0)]
    );

    // Dropped: the lookup goes with it.
    c.batch_execute("DROP FEATURE SERVICE scoring; DROP FEATURE VIEW user_amounts")
        .await
        .unwrap();
    let e = c
        .query("SELECT * FROM online.user_amounts WHERE user_id = 2", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P01", "{e:?}");
}
