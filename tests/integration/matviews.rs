//! Materialized views refreshed incrementally give what their query gives
//! run fresh: generated appends (and now and then an UPDATE or DELETE)
//! over views of every shape, compared after each refresh; the method each
//! refresh chose and the files it read are checked too. A refresh killed
//! mid-way leaves the previous version, and the next one is right.

use crate::common::Server;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// (view name, query, method expected after appends only: `a/b` is `a`
/// when one source changed and `b` when both did)
const VIEWS: &[(&str, &str, &str)] = &[
    (
        "m_filter",
        "SELECT id, k, v * 2 AS v2 FROM mv.f WHERE v > 20 OR v IS NULL",
        "append",
    ),
    (
        "m_union",
        "SELECT id, k FROM mv.f WHERE g = 1 UNION ALL SELECT 0, k FROM mv.d",
        "append",
    ),
    (
        "m_join",
        "SELECT f.id, f.v, d.label FROM mv.f JOIN mv.d ON f.k = d.k",
        "append",
    ),
    (
        "m_left",
        "SELECT f.id, d.label FROM mv.f LEFT JOIN mv.d ON f.k = d.k",
        // d changes in some rounds: then a full refresh
        "",
    ),
    (
        "m_groups",
        "SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi, \
         avg(v) AS mean, count(DISTINCT g) AS gs FROM mv.f GROUP BY k",
        "groups",
    ),
    (
        "m_expr_key",
        "SELECT g % 3 AS bucket, k, sum(v) AS s FROM mv.f GROUP BY g % 3, k",
        "combine",
    ),
    (
        "m_minmax",
        "SELECT k, min(v) AS lo, max(v) AS hi, count(v) AS nv, count(*) AS n, sum(v) AS s \
         FROM mv.f GROUP BY k ORDER BY k",
        "combine",
    ),
    (
        "m_having",
        "SELECT k, count(*) AS n FROM mv.f GROUP BY k HAVING count(*) BETWEEN 2 AND 6",
        "groups",
    ),
    (
        "m_join_groups",
        "SELECT d.label, count(*) AS n, sum(f.v) AS s FROM mv.f JOIN mv.d ON f.k = d.k \
         GROUP BY d.label",
        "combine/groups",
    ),
    (
        "m_over_view",
        "SELECT k, count(*) AS n FROM mv.big GROUP BY k",
        "combine",
    ),
    (
        "m_window",
        "SELECT id, row_number() OVER (PARTITION BY k ORDER BY id) AS r FROM mv.f",
        "full",
    ),
    (
        "m_total",
        "SELECT count(*) AS n, sum(v) AS s FROM mv.f",
        "full",
    ),
];

async fn scalar(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

fn value(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "NULL".into(),
        _ => (rng.below(100) as i64 - 10).to_string(),
    }
}

fn key(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => "NULL".into(),
        n => format!("'k{n}'"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_refresh_matches_the_query_run_fresh() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE SCHEMA mv;
         CREATE TABLE mv.f (id bigint, k text, g int, v bigint);
         CREATE TABLE mv.d (k text, label text);
         INSERT INTO mv.f VALUES (1, 'k1', 1, 10), (2, 'k2', 2, 30), (3, NULL, 3, NULL);
         INSERT INTO mv.d VALUES ('k1', 'one'), ('k2', 'two'), ('k3', 'three');
         CREATE VIEW mv.big AS SELECT * FROM mv.f WHERE v >= 0;",
    )
    .await
    .unwrap();
    for (name, query, _) in VIEWS {
        c.batch_execute(&format!("CREATE MATERIALIZED VIEW mv.{name} AS {query}"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut next_id = 100;
    for round in 0..12 {
        let mut inserts = 0;
        let mut d_changed = false;
        let rewrite = round % 5 == 4;
        if rewrite {
            let sql = if rng.below(2) == 0 {
                format!("UPDATE mv.f SET v = v + 1 WHERE id % 7 = {}", rng.below(7))
            } else {
                format!("DELETE FROM mv.f WHERE id % 11 = {}", rng.below(11))
            };
            c.batch_execute(&sql).await.unwrap();
        } else {
            for _ in 0..1 + rng.below(3) {
                let rows: Vec<String> = (0..1 + rng.below(20))
                    .map(|_| {
                        next_id += 1;
                        format!(
                            "({next_id}, {}, {}, {})",
                            key(&mut rng),
                            rng.below(5),
                            value(&mut rng)
                        )
                    })
                    .collect();
                c.batch_execute(&format!("INSERT INTO mv.f VALUES {}", rows.join(", ")))
                    .await
                    .unwrap();
                inserts += 1;
            }
            if rng.below(3) == 0 {
                let n = rng.below(9);
                c.batch_execute(&format!("INSERT INTO mv.d VALUES ('k{n}', 'label{round}')"))
                    .await
                    .unwrap();
                d_changed = true;
            }
        }
        for (name, query, expected) in VIEWS {
            let why: String = c
                .query_one(&format!("EXPLAIN REFRESH MATERIALIZED VIEW mv.{name}"), &[])
                .await
                .unwrap()
                .get(1);
            c.batch_execute(&format!("REFRESH MATERIALIZED VIEW mv.{name}"))
                .await
                .unwrap_or_else(|e| panic!("round {round}, {name}: {e:?}"));
            let diff = scalar(
                &c,
                &format!(
                    "SELECT count(*) FROM ((SELECT * FROM mv.{name} EXCEPT ALL ({query})) \
                     UNION ALL (({query}) EXCEPT ALL SELECT * FROM mv.{name})) AS x"
                ),
            )
            .await;
            assert_eq!(diff, 0, "round {round}: {name} differs from its query");
            let row = c
                .query_one(
                    "SELECT last_method, new_files_read FROM sluice.materialized_views \
                     WHERE schema_name = 'mv' AND view_name = $1",
                    &[name],
                )
                .await
                .unwrap();
            let (method, files): (String, i64) = (row.get(0), row.get(1));
            let reads_d = query.contains("mv.d");
            if rewrite {
                // Rows changed: grouped aggregates follow the source's change
                // data feed (their touched groups recomputed); the rest
                // recompute.
                let grouped = ["groups", "combine", "combine/groups"].contains(expected);
                let want = if grouped { "groups" } else { "full" };
                assert_eq!(
                    method, want,
                    "round {round}: {name} after UPDATE/DELETE: {why}"
                );
            } else if !expected.is_empty() {
                let expected = match expected.split_once('/') {
                    Some((_, both)) if reads_d && d_changed => both,
                    Some((one, _)) => one,
                    None => expected,
                };
                assert_eq!(method, expected, "round {round}: {name}: {why}");
                if method != "full" {
                    // Only the files the inserts of this round added.
                    let want = inserts + (reads_d && d_changed) as i64;
                    assert_eq!(files, want, "round {round}: {name} read other files");
                }
            }
        }
    }
    // Nothing new: nothing written.
    let before = scalar(
        &c,
        "SELECT version FROM sluice.materialized_views WHERE view_name = 'm_groups'",
    )
    .await;
    c.batch_execute("REFRESH MATERIALIZED VIEW mv.m_groups")
        .await
        .unwrap();
    let after = scalar(
        &c,
        "SELECT version FROM sluice.materialized_views WHERE view_name = 'm_groups'",
    )
    .await;
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_killed_midway_leaves_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let server = Server::start_on(&lake);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE f (id bigint, k bigint);
         INSERT INTO f SELECT x, x % 1000 FROM generate_series(1, 200000) AS t(x);
         CREATE MATERIALIZED VIEW per_k AS SELECT k, count(*) AS n FROM f GROUP BY k;
         CREATE MATERIALIZED VIEW copy AS SELECT id, k FROM f;
         INSERT INTO f SELECT x, x % 1000 FROM generate_series(200001, 400000) AS t(x);",
    )
    .await
    .unwrap();
    // Kill while both refreshes run; a few delays so that some land
    // before, during and after the commits.
    let url = server.url();
    let refresh = tokio::spawn(async move {
        let (c2, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let _ = c2
            .batch_execute("REFRESH MATERIALIZED VIEW per_k; REFRESH MATERIALIZED VIEW FULL copy")
            .await;
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    drop(c);
    drop(server);
    let _ = refresh.await;

    let server = Server::start_on(&lake);
    let c = server.connect().await;
    // Each view holds one of its two possible contents, never a part.
    let total = scalar(&c, "SELECT sum(n)::bigint FROM per_k").await;
    assert!(
        total == 200_000 || total == 400_000,
        "per_k sums to {total}"
    );
    let copied = scalar(&c, "SELECT count(*) FROM copy").await;
    assert!(copied == 200_000 || copied == 400_000, "copy has {copied}");
    c.batch_execute("REFRESH MATERIALIZED VIEW per_k; REFRESH MATERIALIZED VIEW copy")
        .await
        .unwrap();
    assert_eq!(
        scalar(&c, "SELECT sum(n)::bigint FROM per_k").await,
        400_000
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM copy").await, 400_000);
    assert_eq!(
        scalar(
            &c,
            "SELECT count(*) FROM (SELECT k, count(*) FROM f GROUP BY k \
             EXCEPT SELECT k, n FROM per_k) AS x"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_incremental_refreshes_never_apply_rows_twice() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE ev (id bigint, k bigint);
         INSERT INTO ev VALUES (0, 0);
         CREATE MATERIALIZED VIEW ev_copy AS SELECT id, k FROM ev;
         CREATE MATERIALIZED VIEW ev_sums AS SELECT k, count(*) AS n, sum(id) AS s FROM ev GROUP BY k;",
    )
    .await
    .unwrap();
    let (a, b) = (server.connect().await, server.connect().await);
    for round in 1..=6_i64 {
        c.batch_execute(&format!(
            "INSERT INTO ev SELECT x, x % 3 FROM generate_series({}, {}) AS t(x)",
            round * 100,
            round * 100 + 49
        ))
        .await
        .unwrap();
        for view in ["ev_copy", "ev_sums"] {
            let sql = format!("REFRESH MATERIALIZED VIEW {view}");
            let (ra, rb) = tokio::join!(a.batch_execute(&sql), b.batch_execute(&sql));
            for r in [ra, rb] {
                if let Err(e) = r {
                    // The loser of the race is told to retry.
                    assert_eq!(crate::common::sqlstate(&e), "40001", "round {round}: {e:?}");
                }
            }
        }
        assert_eq!(
            scalar(&c, "SELECT count(*) FROM ev_copy").await,
            scalar(&c, "SELECT count(*) FROM ev").await,
            "round {round}: ev_copy"
        );
        assert_eq!(
            scalar(
                &c,
                "SELECT count(*) FROM (SELECT k, count(*) AS n, sum(id) AS s FROM ev GROUP BY k \
                 EXCEPT ALL SELECT * FROM ev_sums) AS x"
            )
            .await,
            0,
            "round {round}: ev_sums"
        );
    }
}
