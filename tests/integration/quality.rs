//! Constraints and expectations through the wire: every write path keeps a
//! table's rules, a rejected statement leaves the table's Delta version
//! unchanged, quarantined rows land in `<table>__quarantine`, and
//! `sluice.expectation_results` counts each rule of each write.

use tokio_postgres::Client;

use crate::common::{Server, sqlstate};
use crate::copy::copy_in;

async fn version(c: &Client, table: &str) -> i64 {
    let rows = c
        .query(&format!("DESCRIBE HISTORY {table}"), &[])
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<_, i64>("version"))
        .max()
        .unwrap()
}

async fn ids(c: &Client, sql: &str) -> Vec<i64> {
    c.query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// (expectation, rows passed, rows failed) recorded for `version`.
async fn results(c: &Client, version: i64) -> Vec<(String, i64, i64)> {
    c.query(
        "SELECT expectation, rows_passed, rows_failed FROM sluice.expectation_results \
         WHERE table_name = 'txn' AND table_version = $1 ORDER BY expectation",
        &[&version],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// Assert the counts `txn`'s latest write recorded, per expectation
/// (name order); returns that version.
async fn recorded(c: &Client, expected: &[(&str, i64, i64)]) -> i64 {
    let v = version(c, "txn").await;
    let want: Vec<(String, i64, i64)> = expected
        .iter()
        .map(|(n, p, f)| (n.to_string(), *p, *f))
        .collect();
    assert_eq!(
        results(c, v).await,
        want,
        "expectation results of version {v}"
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_path_keeps_the_rules() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE txn (
           id bigint PRIMARY KEY,
           currency text,
           amount numeric(12,2) CHECK (amount <> 0),
           CONSTRAINT known_currency EXPECT (currency IN ('USD', 'EUR')) ON VIOLATION QUARANTINE,
           CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION DROP ROW,
           CONSTRAINT sane EXPECT (amount < 1000),
           CONSTRAINT small_id EXPECT (id < 1000) ON VIOLATION FAIL
         )",
    )
    .await
    .unwrap();

    // INSERT: one of each fate.
    let n = c
        .execute(
            "INSERT INTO txn VALUES (1, 'USD', 10), (2, 'GBP', 5), (3, 'EUR', -1), \
             (4, 'USD', 5000), (5, 'XXX', -3)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 2, "kept: 1 and 4");
    assert_eq!(ids(&c, "SELECT id FROM txn ORDER BY id").await, [1, 4]);
    assert_eq!(
        ids(&c, "SELECT id FROM txn__quarantine ORDER BY id").await,
        [2, 5]
    );
    let broken: String = c
        .query_one(
            "SELECT array_to_string(broken_rules, ',') FROM txn__quarantine WHERE id = 5",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(broken, "known_currency,positive");
    let v = recorded(
        &c,
        &[
            ("known_currency", 3, 2),
            ("positive", 3, 2),
            ("sane", 4, 1),
            ("small_id", 5, 0),
        ],
    )
    .await;

    // Rejected statements change nothing: FAIL, CHECK, NOT NULL, key.
    for (sql, state) in [
        (
            "INSERT INTO txn VALUES (7, 'USD', 1), (2000, 'USD', 1)",
            "23514",
        ),
        ("INSERT INTO txn VALUES (8, 'USD', 0)", "23514"),
        ("INSERT INTO txn VALUES (NULL, 'USD', 1)", "23502"),
        ("INSERT INTO txn VALUES (1, 'USD', 1)", "23505"),
        (
            "INSERT INTO txn VALUES (9, 'XXX', 1), (9, 'USD', 2), (9, 'EUR', 3)",
            "23505",
        ),
    ] {
        let e = c.execute(sql, &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e), state, "{sql}: {e:?}");
    }
    // Drivers read the constraint, table and column from the error's fields.
    for (sql, constraint, column) in [
        (
            "INSERT INTO txn VALUES (8, 'USD', 0)",
            Some("txn_amount_check"),
            None,
        ),
        ("INSERT INTO txn VALUES (NULL, 'USD', 1)", None, Some("id")),
        (
            "INSERT INTO txn VALUES (1, 'USD', 1)",
            Some("txn_pkey"),
            None,
        ),
    ] {
        let e = c.execute(sql, &[]).await.unwrap_err();
        let db = e.as_db_error().unwrap();
        assert_eq!(db.constraint(), constraint, "{sql}");
        assert_eq!(db.column(), column, "{sql}");
        if constraint != Some("txn_pkey") {
            assert_eq!(db.table(), Some("txn"), "{sql}");
        }
    }
    assert_eq!(version(&c, "txn").await, v, "no commit after a rejection");
    assert_eq!(
        ids(&c, "SELECT id FROM txn__quarantine ORDER BY id").await,
        [2, 5],
        "a rejected statement quarantines nothing"
    );
    let e = c
        .execute("INSERT INTO txn VALUES (2000, 'USD', 1)", &[])
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(
        db.message(),
        "new row for relation \"txn\" violates expectation \"small_id\""
    );
    assert_eq!(db.detail(), Some("Failing row contains (2000, USD, 1.00)."));

    // COPY: the same rules on the same path.
    let n = copy_in(
        &c,
        "COPY txn FROM STDIN (FORMAT csv)",
        b"10,USD,1\n11,JPY,2\n12,EUR,-2\n",
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    assert_eq!(ids(&c, "SELECT id FROM txn ORDER BY id").await, [1, 4, 10]);
    assert_eq!(
        ids(&c, "SELECT id FROM txn__quarantine ORDER BY id").await,
        [2, 5, 11]
    );
    let v = recorded(
        &c,
        &[
            ("known_currency", 2, 1),
            ("positive", 2, 1),
            ("sane", 3, 0),
            ("small_id", 3, 0),
        ],
    )
    .await;
    let e = copy_in(
        &c,
        "COPY txn FROM STDIN (FORMAT csv)",
        b"13,USD,1\n5000,USD,1\n",
    )
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&e), "23514");
    assert_eq!(version(&c, "txn").await, v);

    // UPDATE: the new values meet the rules; refused rows keep the old.
    let n = c
        .execute("UPDATE txn SET currency = 'JPY' WHERE id = 10", &[])
        .await
        .unwrap();
    assert_eq!(n, 0);
    let cur: String = c
        .query_one("SELECT currency FROM txn WHERE id = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(cur, "USD");
    assert_eq!(
        ids(&c, "SELECT id FROM txn__quarantine ORDER BY id").await,
        [2, 5, 10, 11]
    );
    let n = c
        .execute("UPDATE txn SET amount = amount * 100", &[])
        .await
        .unwrap();
    assert_eq!(n, 3);
    let v = recorded(
        &c,
        &[
            ("known_currency", 3, 0),
            ("positive", 3, 0),
            ("sane", 1, 2),
            ("small_id", 3, 0),
        ],
    )
    .await;
    let e = c
        .execute("UPDATE txn SET amount = 0 WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23514");
    // An UPDATE that rewrites the table (a key column, a subquery) keeps
    // the rules as well.
    let e = c
        .execute("UPDATE txn SET id = 5000 WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23514", "small_id fails the new key");
    assert_eq!(version(&c, "txn").await, v);
    let n = c
        .execute(
            "UPDATE txn SET id = id + 100 WHERE id IN (SELECT id FROM txn WHERE id > 5)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let e = c
        .execute("UPDATE txn SET id = 4 WHERE id = 110", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    assert_eq!(ids(&c, "SELECT id FROM txn ORDER BY id").await, [1, 4, 110]);

    // MERGE: each fate, for updates and inserts alike. A refused update
    // leaves the row as it was.
    let q = ids(&c, "SELECT id FROM txn__quarantine ORDER BY id").await;
    assert_eq!(q, [2, 5, 10, 11]);
    let n = c
        .execute(
            "MERGE INTO txn t USING (VALUES (1, 'USD', 7.0), (4, 'GBP', 9.0), \
             (110, 'EUR', -4.0), (25, 'EUR', 3.0), (21, 'JPY', 1.0), (22, 'USD', -1.0)) \
             AS s(id, currency, amount) ON t.id = s.id \
             WHEN MATCHED THEN UPDATE SET currency = s.currency, amount = s.amount \
             WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.currency, s.amount)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 2, "1 updated, 25 inserted");
    let rows: Vec<(i64, String, String)> = c
        .query(
            "SELECT id, currency, amount::text FROM txn ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expect = [
        (1, "USD", "7.00"),
        (4, "USD", "500000.00"),
        (25, "EUR", "3.00"),
        (110, "USD", "100.00"),
    ];
    assert_eq!(
        rows,
        expect
            .iter()
            .map(|(i, c, a)| (*i, c.to_string(), a.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&c, "SELECT id FROM txn__quarantine ORDER BY id").await,
        [2, 4, 5, 10, 11, 21]
    );
    let v = recorded(
        &c,
        &[
            ("known_currency", 4, 2),
            ("positive", 4, 2),
            ("sane", 6, 0),
            ("small_id", 6, 0),
        ],
    )
    .await;
    let e = c
        .execute(
            "MERGE INTO txn t USING (VALUES (30, 'XXX', 1.0), (2000, 'USD', 1.0)) \
             AS s(id, currency, amount) ON t.id = s.id \
             WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.currency, s.amount)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23514");
    assert_eq!(version(&c, "txn").await, v);
    assert_eq!(
        ids(&c, "SELECT id FROM txn__quarantine ORDER BY id").await,
        [2, 4, 5, 10, 11, 21],
        "a rejected MERGE quarantines nothing"
    );

    // A target row two source rows would change fails the MERGE (21000)
    // before its quarantine append commits.
    let e = c
        .execute(
            "MERGE INTO txn t USING (VALUES (1, 'XXX'), (1, 'USD')) AS s(id, currency) \
             ON t.id = s.id WHEN MATCHED THEN UPDATE SET currency = s.currency",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "21000");
    assert_eq!(version(&c, "txn").await, v);
    assert_eq!(
        ids(&c, "SELECT id FROM txn__quarantine ORDER BY id").await,
        [2, 4, 5, 10, 11, 21]
    );

    // Upsert is a MERGE: the same rules.
    let n = c
        .execute(
            "INSERT INTO txn VALUES (1, 'XXX', 2), (40, 'EUR', 4) \
             ON CONFLICT (id) DO UPDATE SET currency = excluded.currency",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "40 inserted; the update of 1 quarantined");
    let cur: String = c
        .query_one("SELECT currency FROM txn WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(cur, "USD");
    assert_eq!(
        ids(
            &c,
            "SELECT id FROM txn__quarantine WHERE currency = 'XXX' ORDER BY id"
        )
        .await,
        [1, 5]
    );

    // ALTER TABLE: add and drop an expectation.
    c.batch_execute(
        "ALTER TABLE txn ADD CONSTRAINT no_yen EXPECT (currency <> 'JPY') ON VIOLATION DROP ROW",
    )
    .await
    .unwrap();
    let n = c
        .execute("INSERT INTO txn VALUES (20, 'USD', 1)", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    c.batch_execute("ALTER TABLE txn DROP CONSTRAINT no_yen")
        .await
        .unwrap();
    let listed: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.table_constraints WHERE table_name = 'txn'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(listed, 2, "the key and the CHECK");
}

/// CREATE TABLE with typed columns and rules AS a query: the rows go in
/// through INSERT, with every rule; a broken rule leaves no table behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_as_keeps_declared_rules() {
    let server = Server::start();
    let c = server.connect().await;
    let n = c
        .execute(
            "CREATE TABLE scores (id int PRIMARY KEY, points int CHECK (points >= 0), \
             CONSTRAINT capped EXPECT (points <= 100) ON VIOLATION QUARANTINE) \
             AS SELECT * FROM (VALUES (1, 50), (2, 500), (3, 7)) AS s(a, b)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        ids(&c, "SELECT id::bigint AS k FROM scores ORDER BY k").await,
        [1, 3]
    );
    assert_eq!(
        ids(&c, "SELECT id::bigint FROM scores__quarantine").await,
        [2]
    );
    let ty: String = c
        .query_one(
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'scores' AND column_name = 'points'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ty, "integer");
    // RENAME COLUMN carries the rules and the quarantine table along.
    c.batch_execute(
        "ALTER TABLE scores RENAME COLUMN points TO score;
         INSERT INTO scores VALUES (4, 400), (5, 5);",
    )
    .await
    .unwrap();
    assert_eq!(
        ids(
            &c,
            "SELECT id::bigint AS k FROM scores__quarantine WHERE score = 400"
        )
        .await,
        [4]
    );
    let e = c
        .execute("INSERT INTO scores VALUES (5, 1)", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    // RENAME TO takes the quarantine table along, rows and all.
    c.batch_execute(
        "ALTER TABLE scores RENAME TO results;
         INSERT INTO results VALUES (6, 600);",
    )
    .await
    .unwrap();
    assert_eq!(
        ids(
            &c,
            "SELECT id::bigint AS k FROM results__quarantine ORDER BY k"
        )
        .await,
        [2, 4, 6]
    );
    let e = c
        .execute("SELECT * FROM scores__quarantine", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P01");
    for (sql, state) in [
        (
            "CREATE TABLE broken (id int PRIMARY KEY, points int CHECK (points >= 0), \
             CONSTRAINT capped EXPECT (points <= 100) ON VIOLATION QUARANTINE) \
             AS SELECT * FROM (VALUES (1, 500), (2, -1)) AS s(a, b)",
            "23514",
        ),
        (
            "CREATE TABLE broken (id int PRIMARY KEY) AS SELECT * FROM (VALUES (1), (1)) AS s(a)",
            "23505",
        ),
    ] {
        let e = c.execute(sql, &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e), state, "{sql}");
        let left: i64 = c
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'broken%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "nothing left behind by {sql}");
    }
}
