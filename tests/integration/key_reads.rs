//! Lookups by key answered without planning (`engine::key_read`,
//! `lake::point`) give exactly what the planned query gives: the same
//! rows, byte for byte in the binary wire format, over tables whose rows
//! are spread over overlapping files, updated, deleted, partitioned,
//! widened with new columns, and keyed by integers of each width or text.
//! Each lookup is also run as `... AND true`, which the key reader does not
//! recognize, and `sluice_key_reads_total` shows which path answered.

use tokio_postgres::types::{FromSql, ToSql, Type};

use crate::common::{Server, metric, scrape_metrics};

/// A column value as the server sent it (any type, binary format).
#[derive(Debug, PartialEq)]
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

type Rows = Vec<Vec<Raw>>;

/// A statement, its parameters, and whether the key reader answers it.
type Case = (&'static str, Vec<Box<dyn ToSql + Sync>>, bool);

async fn rows(c: &tokio_postgres::Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Rows {
    let stmt = c
        .prepare(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out: Rows = c
        .query(&stmt, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, Raw>(i)).collect())
        .collect();
    out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    out
}

async fn key_reads(addr: &str) -> f64 {
    let (_, text) = scrape_metrics(addr).await;
    metric(&text, "sluice_key_reads_total ")
}

#[tokio::test]
async fn lookups_by_key_answer_as_the_planned_query() {
    let s = Server::start_with_args(&["--metrics", "127.0.0.1:0"]);
    let addr = s.metrics_addr();
    let c = s.connect().await;
    c.batch_execute(
        "CREATE TABLE kv (id bigint PRIMARY KEY, v text, n numeric(10,2), d date, t timestamptz);
         -- Odd and even keys in separate files: their ranges overlap.
         INSERT INTO kv SELECT i, 'v' || i, i / 7.0, DATE '2026-01-01' + i::int,
             TIMESTAMPTZ '2026-01-01 00:00:00+00' + i * INTERVAL '1 minute'
           FROM generate_series(1, 20000, 2) AS g(i);
         INSERT INTO kv SELECT i, 'v' || i, NULL, NULL, NULL FROM generate_series(2, 20000, 2) AS g(i);
         INSERT INTO kv VALUES (-5, 'negative', -1.25, DATE '1999-12-31', NULL);
         DELETE FROM kv WHERE id IN (7, 8);
         UPDATE kv SET v = 'updated' WHERE id = 9;
         CREATE TABLE tk (k text PRIMARY KEY, x int);
         INSERT INTO tk VALUES ('a', 1), ('b', 2), ('', 3), ('ü', 4), ('b ', 5);
         INSERT INTO tk SELECT 'key-' || i, i FROM generate_series(1, 3000) AS g(i);
         CREATE TABLE sk (k smallint PRIMARY KEY, x text);
         INSERT INTO sk VALUES (1, 'one'), (-32768, 'min'), (32767, 'max');
         CREATE TABLE uk (u integer UNIQUE, x text);
         INSERT INTO uk VALUES (1, 'one'), (NULL, 'null'), (2, 'two');
         CREATE TABLE pk (id integer PRIMARY KEY, region text, x text) PARTITIONED BY (region);
         INSERT INTO pk VALUES (1, 'eu', 'a'), (2, 'us', 'b');
         CREATE TABLE wide (id bigint PRIMARY KEY, v text);
         INSERT INTO wide VALUES (1, 'old');
         ALTER TABLE wide ADD COLUMN w integer;
         INSERT INTO wide VALUES (2, 'new', 20);
         CREATE TABLE ck (k char(3) PRIMARY KEY, x int);
         INSERT INTO ck VALUES ('a', 1);
         CREATE TABLE ty (id int PRIMARY KEY, j jsonb, u uuid, a int[], ta text[], b bytea,
             f float8, r real, bo boolean, ts timestamp, tz timestamptz, dt date,
             nu numeric(20,4), s varchar(10), js json);
         INSERT INTO ty VALUES (1, '{\"a\":[1,2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
             ARRAY[1,NULL,3], ARRAY['x','y'], '\\xdeadbeef', 1.5, 2.5, true,
             '2026-01-02 03:04:05.123456', '2026-01-02 03:04:05+02', '2026-01-02',
             12345.6789, 'abc', '[1, 2]'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
             NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
    )
    .await
    .unwrap();

    // (statement, parameters, answered by the key reader)
    let cases: Vec<Case> = vec![
        ("SELECT v, n, d, t FROM kv WHERE id = 1", vec![], true),
        // Every column type, in the binary format.
        ("SELECT * FROM ty WHERE id = 1", vec![], true),
        ("SELECT * FROM ty WHERE id = $1", vec![Box::new(2i32)], true),
        ("SELECT * FROM kv WHERE id = 20000", vec![], true),
        ("SELECT * FROM kv k WHERE k.id = -5", vec![], true),
        ("SELECT v AS w, id FROM kv WHERE 9 = id", vec![], true),
        ("SELECT v FROM kv WHERE id = 7", vec![], true),
        ("SELECT v FROM kv WHERE id = 8", vec![], true),
        ("SELECT v FROM kv WHERE id = 0", vec![], true),
        ("SELECT v FROM kv WHERE id = 99999", vec![], true),
        ("SELECT v FROM kv WHERE id = NULL", vec![], true),
        (
            "SELECT v, t FROM kv WHERE id = $1",
            vec![Box::new(4321i64)],
            true,
        ),
        (
            "SELECT v FROM kv WHERE id = $1",
            vec![Box::new(None::<i64>)],
            true,
        ),
        // Out of an int4 column's range: compared as bigint, planned.
        ("SELECT x FROM uk WHERE u = 3000000000", vec![], false),
        ("SELECT x FROM uk WHERE u = 2", vec![], true),
        ("SELECT x FROM uk WHERE u = $1", vec![Box::new(1i32)], true),
        ("SELECT x FROM tk WHERE k = 'b'", vec![], true),
        ("SELECT x FROM tk WHERE k = 'b '", vec![], true),
        ("SELECT x FROM tk WHERE k = ''", vec![], true),
        ("SELECT x FROM tk WHERE k = 'ü'", vec![], true),
        (
            "SELECT x FROM tk WHERE k = $1",
            vec![Box::new("key-2999")],
            true,
        ),
        (
            "SELECT x FROM tk WHERE k = $1",
            vec![Box::new("key-")],
            true,
        ),
        ("SELECT x, k FROM tk WHERE k = 'zzz'", vec![], true),
        ("SELECT x FROM sk WHERE k = -32768", vec![], true),
        (
            "SELECT x FROM sk WHERE k = $1",
            vec![Box::new(32767i16)],
            true,
        ),
        // A partition column is not in the files: planned.
        ("SELECT region, x FROM pk WHERE id = 2", vec![], false),
        // Files written before the column was added lack it: planned.
        ("SELECT v, w FROM wide WHERE id = 1", vec![], false),
        ("SELECT v FROM wide WHERE id = 1", vec![], true),
        // char(n) compares without trailing spaces: planned.
        ("SELECT x FROM ck WHERE k = 'a'", vec![], false),
        // Not a lookup by key.
        ("SELECT id FROM kv WHERE v = 'v10'", vec![], false),
        ("SELECT id + 1 FROM kv WHERE id = 10", vec![], false),
    ];
    for (sql, params, fast) in &cases {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        let before = key_reads(&addr).await;
        let answered = rows(&c, sql, &params).await;
        let after = key_reads(&addr).await;
        let planned = rows(&c, &format!("{sql} AND true"), &params).await;
        assert_eq!(answered, planned, "{sql} {params:?}");
        let taken = after - before;
        // One key read per execution (Describe plans, it reads nothing).
        assert_eq!(
            taken,
            if *fast { 1.0 } else { 0.0 },
            "{sql}: answered by the key reader {taken} times"
        );
        assert_eq!(
            key_reads(&addr).await,
            after,
            "{sql} AND true was a key read"
        );
    }

    // The values themselves, to be sure both paths are not wrong alike.
    let row = c
        .query_one("SELECT v, n::text, d::text FROM kv WHERE id = $1", &[&1i64])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "v1");
    let got = c
        .query("SELECT v FROM kv WHERE id = $1", &[&9i64])
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].get::<_, String>(0), "updated");
    assert!(
        c.query("SELECT v FROM kv WHERE id = $1", &[&7i64])
            .await
            .unwrap()
            .is_empty()
    );
    let got = c
        .query("SELECT x FROM tk WHERE k = $1", &[&"b "])
        .await
        .unwrap();
    assert_eq!(got[0].get::<_, i32>(0), 5);

    // A write between two lookups is seen by the next one.
    let lookup = c.prepare("SELECT v FROM kv WHERE id = $1").await.unwrap();
    assert_eq!(
        c.query_one(&lookup, &[&2i64])
            .await
            .unwrap()
            .get::<_, String>(0),
        "v2"
    );
    c.execute("UPDATE kv SET v = 'again' WHERE id = 2", &[])
        .await
        .unwrap();
    assert_eq!(
        c.query_one(&lookup, &[&2i64])
            .await
            .unwrap()
            .get::<_, String>(0),
        "again"
    );
    c.execute("DELETE FROM kv WHERE id = 2", &[]).await.unwrap();
    assert!(c.query(&lookup, &[&2i64]).await.unwrap().is_empty());
}
