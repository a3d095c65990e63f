//! ASOF joins: random labels and features (ties, NULL keys and times)
//! joined by Sluice agree with a brute-force reference and with DuckDB's
//! ASOF JOIN on the same rows.

use std::fmt::Write as _;

use crate::common::{Server, python, rows};

/// A small deterministic generator (xorshift), so a failure reproduces.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    /// `None` one time in `one_in`.
    pub fn maybe(&mut self, one_in: u64, v: u64) -> Option<u64> {
        (self.below(one_in) != 0).then_some(v)
    }
}

pub struct Label {
    pub id: u64,
    pub k: Option<u64>,
    pub k2: &'static str,
    pub t: Option<u64>,
}

pub struct Feature {
    pub k: Option<u64>,
    pub k2: &'static str,
    pub t: Option<u64>,
}

impl Feature {
    /// The value is a function of key and time, so rows tied on both carry
    /// the same value and any of them is the right answer.
    pub fn v(&self) -> u64 {
        self.k.unwrap_or(0) * 100_000 + self.t.unwrap_or(0) * 10 + u64::from(self.k2 == "b")
    }
}

/// A time in seconds as a timestamp literal of 2026-01-01.
pub fn ts(t: u64) -> String {
    format!(
        "2026-01-01 {:02}:{:02}:{:02}",
        t / 3600,
        (t / 60) % 60,
        t % 60
    )
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The expected rows (`id|v`, sorted by id) of `l ASOF [LEFT] JOIN f` on
/// both keys with `l.t <op> f.t`.
fn reference(labels: &[Label], feats: &[Feature], op: &str, left: bool) -> Vec<String> {
    let mut out = Vec::new();
    for l in labels {
        let found = match (l.k, l.t) {
            (Some(k), Some(t)) => {
                let candidates = feats.iter().filter(|f| {
                    f.k == Some(k)
                        && f.k2 == l.k2
                        && f.t.is_some_and(|ft| match op {
                            ">=" => t >= ft,
                            ">" => t > ft,
                            "<=" => t <= ft,
                            _ => t < ft,
                        })
                });
                if op.starts_with('>') {
                    candidates.max_by_key(|f| f.t)
                } else {
                    candidates.min_by_key(|f| f.t)
                }
            }
            _ => None,
        };
        match found {
            Some(f) => out.push(format!("{}|{}", l.id, f.v())),
            None if left => out.push(format!("{}|NULL", l.id)),
            None => {}
        }
    }
    out
}

const OPS: [&str; 4] = [">=", ">", "<=", "<"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asof_join_agrees_with_brute_force_and_duckdb() {
    let server = Server::start();
    let c = server.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(20261201);
    let labels: Vec<Label> = (0..400)
        .map(|id| Label {
            id,
            k: rng.maybe(25, rng.0 % 20),
            k2: if rng.below(2) == 0 { "a" } else { "b" },
            t: rng.maybe(30, rng.0 % 260),
        })
        .collect();
    let feats: Vec<Feature> = (0..1500)
        .map(|_| Feature {
            k: rng.maybe(20, rng.0 % 22),
            k2: if rng.below(2) == 0 { "a" } else { "b" },
            t: rng.maybe(30, rng.0 % 240 + 10),
        })
        .collect();
    let mut lcsv = String::new();
    for l in &labels {
        let stamp = l.t.map(ts).unwrap_or_default();
        writeln!(lcsv, "{},{},{},{},{stamp}", l.id, opt(l.k), l.k2, opt(l.t)).unwrap();
    }
    let mut fcsv = String::new();
    for f in &feats {
        let stamp = f.t.map(ts).unwrap_or_default();
        writeln!(fcsv, "{},{},{},{stamp},{}", opt(f.k), f.k2, opt(f.t), f.v()).unwrap();
    }
    let (lpath, fpath) = (dir.path().join("labels.csv"), dir.path().join("feats.csv"));
    std::fs::write(&lpath, lcsv).unwrap();
    std::fs::write(&fpath, fcsv).unwrap();
    c.batch_execute(&format!(
        "CREATE TABLE labels (id bigint, k bigint, k2 text, t bigint, ts timestamp);
         CREATE TABLE feats (k bigint, k2 text, t bigint, ts timestamp, v bigint);
         COPY labels FROM '{}' WITH (FORMAT csv);
         COPY feats FROM '{}' WITH (FORMAT csv);",
        lpath.display(),
        fpath.display()
    ))
    .await
    .unwrap();

    let mut duck_queries = Vec::new();
    for op in OPS {
        for left in [false, true] {
            let expected = reference(&labels, &feats, op, left);
            let join = if left { "ASOF LEFT JOIN" } else { "ASOF JOIN" };
            // Snowflake's form on the integer times, DuckDB's on the timestamps.
            let snowflake = format!(
                "SELECT l.id, f.v FROM labels l {join} feats f MATCH_CONDITION (l.t {op} f.t) \
                 ON l.k = f.k AND l.k2 = f.k2 ORDER BY l.id"
            );
            let duckdb = format!(
                "SELECT l.id, f.v FROM labels l {join} feats f \
                 ON l.k = f.k AND l.k2 = f.k2 AND l.ts {op} f.ts ORDER BY l.id"
            );
            assert_eq!(rows(&c, &snowflake).await, expected, "{snowflake}");
            assert_eq!(rows(&c, &duckdb).await, expected, "{duckdb}");
            // DuckDB matches a NULL key or time (it sorts NULL as a
            // value); in SQL a NULL matches nothing. DuckDB gets the rows
            // without NULLs, and is held to those.
            let valid: Vec<String> = expected
                .into_iter()
                .filter(|r| {
                    let id: usize = r.split('|').next().unwrap().parse().unwrap();
                    labels[id].k.is_some() && labels[id].t.is_some()
                })
                .collect();
            duck_queries.push((duckdb, valid));
        }
    }

    // DuckDB, on the same rows.
    let script = format!(
        r#"
import duckdb, json, sys
con = duckdb.connect()
con.execute("CREATE TABLE labels AS SELECT * FROM read_csv('{l}', header=false, columns={{'id':'BIGINT','k':'BIGINT','k2':'VARCHAR','t':'BIGINT','ts':'TIMESTAMP'}}) WHERE k IS NOT NULL AND ts IS NOT NULL")
con.execute("CREATE TABLE feats AS SELECT * FROM read_csv('{f}', header=false, columns={{'k':'BIGINT','k2':'VARCHAR','t':'BIGINT','ts':'TIMESTAMP','v':'BIGINT'}}) WHERE k IS NOT NULL AND ts IS NOT NULL")
out = []
for q in json.load(sys.stdin):
    out.append(["|".join("NULL" if v is None else str(v) for v in r) for r in con.execute(q).fetchall()])
print(json.dumps(out))
"#,
        l = lpath.display(),
        f = fpath.display()
    );
    let queries: Vec<&String> = duck_queries.iter().map(|(q, _)| q).collect();
    let input = serde_json::to_string(&queries).unwrap();
    let mut child = std::process::Command::new(python())
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python of the test virtualenv");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<Vec<String>> = serde_json::from_slice(&output.stdout).unwrap();
    for ((q, expected), duck) in duck_queries.iter().zip(answers) {
        assert_eq!(
            &duck, expected,
            "DuckDB disagrees with the reference on {q}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asof_join_shapes_and_errors() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE l (k int, d date, ts timestamp, x text);
         CREATE TABLE r (k int, d date, ts timestamp, y text);
         INSERT INTO l VALUES (1, '2026-01-05', '2026-01-05 12:00:00', 'l1'), (2, '2026-01-05', '2026-01-05 12:00:00', 'l2');
         INSERT INTO r VALUES (1, '2026-01-01', '2026-01-01 00:00:00', 'r1'), (1, '2026-01-04', '2026-01-04 00:00:00', 'r2'), (2, '2026-01-09', '2026-01-09 00:00:00', 'r3');",
    )
    .await
    .unwrap();
    // Dates, a view, a CTE and a subquery on the right.
    assert_eq!(
        rows(&c, "SELECT l.x, r.y FROM l ASOF LEFT JOIN r MATCH_CONDITION (l.d >= r.d) ON l.k = r.k ORDER BY 1").await,
        ["l1|r2", "l2|NULL"]
    );
    c.batch_execute(
        "CREATE VIEW latest AS SELECT l.x, r.y FROM l ASOF JOIN r ON l.k = r.k AND l.ts >= r.ts",
    )
    .await
    .unwrap();
    assert_eq!(rows(&c, "SELECT * FROM latest").await, ["l1|r2"]);
    assert_eq!(
        rows(&c, "WITH rr AS (SELECT * FROM r WHERE y <> 'r2') SELECT l.x, rr.y FROM l ASOF JOIN (SELECT * FROM rr) rr ON l.k = rr.k AND l.ts >= rr.ts").await,
        ["l1|r1"]
    );
    // Without keys: the latest row of all.
    assert_eq!(
        rows(
            &c,
            "SELECT l.x, r.y FROM l ASOF JOIN r MATCH_CONDITION (l.ts <= r.ts) ORDER BY 1"
        )
        .await,
        ["l1|r3", "l2|r3"]
    );
    // Shapes an ASOF join cannot take, each with a clear error; the
    // connection stays usable.
    for (sql, state) in [
        ("SELECT * FROM l ASOF JOIN r ON l.k = r.k", "42601"),
        (
            "SELECT * FROM l ASOF JOIN r ON l.k = r.k AND l.x <> r.y AND l.ts >= r.ts",
            "0A000",
        ),
        ("SELECT * FROM l ASOF JOIN r USING (k)", "0A000"),
        ("SELECT * FROM l ASOF RIGHT JOIN r ON l.k = r.k", "42601"),
        ("SELECT * FROM l ASOF JOIN r WHERE true", "42601"),
    ] {
        let e = c.simple_query(sql).await.unwrap_err();
        let code = crate::common::sqlstate(&e);
        assert_eq!(code, state, "{sql}: {e:?}");
    }
    assert_eq!(rows(&c, "SELECT count(*) FROM l").await, ["2"]);
}

/// `training_set` against a brute-force reference: a value joins a label
/// only when its event time and its creation time are at or before the
/// label time, and while it is within the TTL. Then the same training set
/// is rebuilt, after the features changed, from the version it read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_set_is_point_in_time_and_reproducible() {
    const TTL: u64 = 300;
    let server = Server::start();
    let c = server.connect().await;
    let mut rng = Rng::new(7);
    // (user, event time, created time); the value is a function of user
    // and event time, so ties agree.
    let feats: Vec<(Option<u64>, u64, u64)> = (0..600)
        .map(|_| {
            let t = rng.below(3000) + 100;
            (
                rng.maybe(30, rng.0 % 15),
                t,
                t + rng.below(4) * rng.below(120),
            )
        })
        .collect();
    let labels: Vec<(u64, Option<u64>, u64)> = (0..300)
        .map(|id| (id, rng.maybe(30, rng.0 % 16), rng.below(3300)))
        .collect();
    let value = |u: u64, t: u64| u * 10_000 + t;
    let mut sql = String::from(
        "CREATE TABLE src (user_id bigint, ts timestamp, created timestamp, v bigint);
         CREATE TABLE labels (id bigint, user_id bigint, ts timestamp);
         INSERT INTO src VALUES ",
    );
    let values: Vec<String> = feats
        .iter()
        .map(|(u, t, cr)| {
            let user = u.map(|u| u.to_string()).unwrap_or("NULL".into());
            let v = u.map(|u| value(u, *t).to_string()).unwrap_or("NULL".into());
            format!("({user}, '{}', '{}', {v})", ts(*t), ts(*cr))
        })
        .collect();
    sql.push_str(&values.join(", "));
    sql.push_str("; INSERT INTO labels VALUES ");
    let values: Vec<String> = labels
        .iter()
        .map(|(id, u, t)| {
            let user = u.map(|u| u.to_string()).unwrap_or("NULL".into());
            format!("({id}, {user}, '{}')", ts(*t))
        })
        .collect();
    sql.push_str(&values.join(", "));
    sql.push_str(&format!(
        "; CREATE FEATURE VIEW user_f ENTITY (user_id) TIMESTAMP event_ts CREATED_AT created TTL '{TTL} seconds'
           AS SELECT user_id, ts AS event_ts, created, v FROM src;
         CREATE FEATURE SERVICE svc AS user_f (v);"
    ));
    c.batch_execute(&sql).await.unwrap();

    let expected: Vec<String> = labels
        .iter()
        .map(|(id, u, t)| {
            let found = u.and_then(|u| {
                feats
                    .iter()
                    .filter(|(fu, ft, cr)| *fu == Some(u) && ft <= t && cr <= t)
                    .max_by_key(|(_, ft, _)| *ft)
                    .filter(|(_, ft, _)| t - ft <= TTL)
                    .map(|(_, ft, _)| value(u, *ft).to_string())
            });
            format!("{id}|{}", found.unwrap_or("NULL".into()))
        })
        .collect();
    let query = "SELECT id, user_f__v FROM training_set('svc', 'SELECT id, user_id, ts FROM labels') ORDER BY id";
    assert_eq!(rows(&c, query).await, expected);

    // Kept as a table, then the features change.
    c.batch_execute(
        "CREATE TABLE train AS SELECT * FROM training_set('svc', 'SELECT id, user_id, ts FROM labels')",
    )
    .await
    .unwrap();
    let version = rows(
        &c,
        "SELECT version FROM sluice.feature_views WHERE view_name = 'user_f'",
    )
    .await
    .remove(0);
    assert_eq!(
        rows(&c, "SELECT table_name, service, label_query, as_of, feature_versions FROM sluice.training_sets").await,
        [format!("train|svc|SELECT id, user_id, ts FROM labels|NULL|public.user_f@{version}")]
    );
    c.batch_execute(
        "INSERT INTO src SELECT user_id, ts - INTERVAL '1 second', created - INTERVAL '1 second', v + 1 FROM src;
         UPDATE src SET v = v + 7 WHERE user_id < 5;
         REFRESH FEATURE VIEW user_f;",
    )
    .await
    .unwrap();
    let differs = |q: &str| {
        format!("SELECT count(*) FROM (SELECT * FROM train EXCEPT ALL SELECT * FROM {q}) a")
    };
    let now = "training_set('svc', 'SELECT id, user_id, ts FROM labels') n";
    assert_ne!(
        rows(&c, &differs(now)).await,
        ["0"],
        "the features did change"
    );
    let then =
        format!("training_set('svc', 'SELECT id, user_id, ts FROM labels', as_of => {version}) t");
    assert_eq!(rows(&c, &differs(&then)).await, ["0"]);
    let back =
        format!("SELECT count(*) FROM (SELECT * FROM {then} EXCEPT ALL SELECT * FROM train) a");
    assert_eq!(rows(&c, &back).await, ["0"]);
}

/// Feature views and services: creation checks, the system tables,
/// refresh, and drops that keep services consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feature_views_and_services() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE txns (user_id int, ts timestamp, amount int);
         INSERT INTO txns VALUES (1, '2026-01-01 10:00:00', 10), (1, '2026-01-01 11:00:00', 20);
         CREATE MATERIALIZED VIEW plain AS SELECT * FROM txns;
         CREATE FEATURE VIEW user_txn ENTITY (user_id) TIMESTAMP event_ts TTL INTERVAL '1 day' ONLINE AS
           SELECT user_id, ts AS event_ts, sum(amount) OVER (PARTITION BY user_id ORDER BY ts) AS total FROM txns;
         CREATE FEATURE SERVICE s1 AS user_txn (total);",
    )
    .await
    .unwrap();
    for (sql, state) in [
        (
            "CREATE FEATURE VIEW b ENTITY (nope) TIMESTAMP ts AS SELECT user_id, ts, amount FROM txns",
            "42703",
        ),
        (
            "CREATE FEATURE VIEW b ENTITY (user_id) TIMESTAMP amount AS SELECT user_id, amount, ts FROM txns",
            "42804",
        ),
        (
            "CREATE FEATURE VIEW b ENTITY (user_id) TIMESTAMP ts TTL '1 month' AS SELECT user_id, ts, amount FROM txns",
            "22023",
        ),
        (
            "CREATE FEATURE VIEW b ENTITY (user_id) TIMESTAMP ts AS SELECT user_id, ts FROM txns",
            "42601",
        ),
        ("CREATE FEATURE SERVICE s2 AS user_txn (nope)", "42703"),
        ("CREATE FEATURE SERVICE s2 AS plain", "42809"),
        ("CREATE FEATURE SERVICE s1 AS user_txn", "42710"),
        ("REFRESH FEATURE VIEW plain", "42809"),
        ("DROP FEATURE VIEW plain", "42809"),
        ("DROP FEATURE VIEW user_txn", "2BP01"),
        ("DROP FEATURE SERVICE nope", "42704"),
    ] {
        let e = c.simple_query(sql).await.unwrap_err();
        assert_eq!(crate::common::sqlstate(&e), state, "{sql}: {e:?}");
    }
    assert_eq!(
        rows(&c, "SELECT entity, timestamp_column, ttl, online, features, version FROM sluice.feature_views").await,
        ["user_id|event_ts|1 day|t|total bigint|0"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT service_name, view_name, features FROM sluice.feature_services"
        )
        .await,
        ["s1|user_txn|total"]
    );
    c.batch_execute(
        "INSERT INTO txns VALUES (1, '2026-01-02 10:00:00', 5); REFRESH FEATURE VIEW user_txn;",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "SELECT max(total), count(*) FROM user_txn").await,
        ["35|3"]
    );
    // Expectations hold on a feature view like on a table.
    c.batch_execute(
        "INSERT INTO txns VALUES (2, '2026-01-02 10:00:00', -5);
         CREATE FEATURE VIEW checked ENTITY (user_id) TIMESTAMP ts
           CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION QUARANTINE
           AS SELECT user_id, ts, amount FROM txns;",
    )
    .await
    .unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM checked").await, ["3"]);
    assert_eq!(
        rows(&c, "SELECT amount FROM checked__quarantine").await,
        ["-5"]
    );
    c.batch_execute("DROP FEATURE VIEW user_txn CASCADE; DROP FEATURE VIEW checked")
        .await
        .unwrap();
    assert!(
        rows(&c, "SELECT * FROM sluice.feature_services")
            .await
            .is_empty()
    );
    assert!(
        rows(&c, "SELECT * FROM sluice.feature_views")
            .await
            .is_empty()
    );
}

/// A right side larger than the memory pool: the join spills its
/// partitions to disk in pieces and answers what an unlimited server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asof_join_spills_within_the_memory_pool() {
    let roomy = Server::start();
    let tight =
        Server::start_on_with_env(&roomy.lake, &[("SLUICE_MEMORY_LIMIT", "24MB".to_string())]);
    let c = roomy.connect().await;
    c.batch_execute(
        "CREATE TABLE f AS SELECT v % 20011 AS k, v AS t, v * 7 AS x, 'feature ' || v AS note
           FROM generate_series(1::bigint, 1200000) AS g(v);
         CREATE TABLE l AS SELECT (v * 7919) % 20011 AS k, (v * 104729) % 1300000 AS t
           FROM generate_series(1::bigint, 300000) AS g(v);",
    )
    .await
    .unwrap();
    let q = "SELECT count(*), count(f.x), sum(f.x), max(length(f.note)) \
             FROM l ASOF LEFT JOIN f ON l.k = f.k AND l.t >= f.t";
    let expected = rows(&c, q).await;
    let t = tight.connect().await;
    assert_eq!(rows(&t, q).await, expected);
    let plan = rows(&t, &format!("EXPLAIN ANALYZE {q}")).await.join("\n");
    let line = plan
        .lines()
        .find(|l| l.contains("AsofJoinExec"))
        .unwrap_or_else(|| panic!("no AsofJoinExec in {plan}"));
    assert!(
        line.contains("spill_count=") && !line.contains("spill_count=0,"),
        "the join did not spill: {line}"
    );
    // The roomy server joined in memory.
    let plan = rows(&c, &format!("EXPLAIN ANALYZE {q}")).await.join("\n");
    assert!(plan.contains("AsofJoinExec"), "{plan}");
}

/// `training_set` over a service of two views with different entities and
/// random TTLs, against the brute-force reference, for several seeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_set_joins_every_view_of_a_service() {
    let server = Server::start();
    let c = server.connect().await;
    for seed in 1..=4u64 {
        let mut rng = Rng::new(seed * 7919);
        let ttl_u = [60, 400, 5000][rng.below(3) as usize];
        let ttl_m = [30, 900][rng.below(2) as usize];
        // (key, event time, created time)
        let mut gen_rows = |n: usize, keys: u64, late: bool| -> Vec<(Option<u64>, u64, u64)> {
            (0..n)
                .map(|_| {
                    let t = rng.below(3000);
                    let k = rng.maybe(25, rng.0 % keys);
                    let cr = if late {
                        t + rng.below(3) * rng.below(200)
                    } else {
                        t
                    };
                    (k, t, cr)
                })
                .collect()
        };
        let users = gen_rows(400, 12, true);
        let merchants = gen_rows(300, 6, false);
        let labels: Vec<(u64, Option<u64>, Option<u64>, u64)> = (0..200)
            .map(|id| {
                (
                    id,
                    rng.maybe(20, rng.0 % 13),
                    rng.maybe(20, rng.0 % 7),
                    rng.below(3200),
                )
            })
            .collect();
        let key = |k: Option<u64>| k.map(|k| k.to_string()).unwrap_or("NULL".into());
        let value = |k: u64, t: u64| k * 10_000 + t;
        let insert = |table: &str, rows: &[(Option<u64>, u64, u64)]| {
            let values: Vec<String> = rows
                .iter()
                .map(|(k, t, cr)| {
                    let v = k.map(|k| value(k, *t).to_string()).unwrap_or("NULL".into());
                    format!("({}, '{}', '{}', {v})", key(*k), ts(*t), ts(*cr))
                })
                .collect();
            format!("INSERT INTO {table} VALUES {};", values.join(", "))
        };
        let labels_sql: Vec<String> = labels
            .iter()
            .map(|(id, u, m, t)| format!("({id}, {}, {}, '{}')", key(*u), key(*m), ts(*t)))
            .collect();
        c.batch_execute(&format!(
            "CREATE SCHEMA s{seed}; SET search_path = s{seed};
             CREATE TABLE u (user_id bigint, ts timestamp, created timestamp, v bigint);
             CREATE TABLE m (merchant_id bigint, ts timestamp, created timestamp, v bigint);
             CREATE TABLE labels (id bigint, user_id bigint, merchant_id bigint, ts timestamp);
             {} {} INSERT INTO labels VALUES {};
             CREATE FEATURE VIEW uf ENTITY (user_id) TIMESTAMP ts CREATED_AT created TTL '{ttl_u} seconds'
               AS SELECT user_id, ts, created, v AS uv FROM u;
             CREATE FEATURE VIEW mf ENTITY (merchant_id) TIMESTAMP ts TTL '{ttl_m} seconds'
               AS SELECT merchant_id, ts, v AS mv FROM m;
             CREATE FEATURE SERVICE svc AS uf (uv), mf (mv);",
            insert("u", &users),
            insert("m", &merchants),
            labels_sql.join(", ")
        ))
        .await
        .unwrap();
        let pick = |rows: &[(Option<u64>, u64, u64)], k: Option<u64>, t: u64, ttl: u64| {
            k.and_then(|k| {
                rows.iter()
                    .filter(|(rk, rt, cr)| *rk == Some(k) && *rt <= t && *cr <= t)
                    .max_by_key(|(_, rt, _)| *rt)
                    .filter(|(_, rt, _)| t - rt <= ttl)
                    .map(|(_, rt, _)| value(k, *rt).to_string())
            })
            .unwrap_or("NULL".into())
        };
        let expected: Vec<String> = labels
            .iter()
            .map(|(id, u, m, t)| {
                format!(
                    "{id}|{}|{}",
                    pick(&users, *u, *t, ttl_u),
                    pick(&merchants, *m, *t, ttl_m)
                )
            })
            .collect();
        let got = rows(
            &c,
            "SELECT id, uf__uv, mf__mv FROM training_set('svc', 'SELECT id, user_id, merchant_id, ts FROM labels') ORDER BY id",
        )
        .await;
        assert_eq!(got, expected, "seed {seed}, TTLs {ttl_u}/{ttl_m}");
    }
}

/// A feature view of window functions per entity refreshes by recomputing
/// only the entities whose rows were appended (late rows included), and
/// ends up as a full recompute would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_feature_views_refresh_the_touched_entities() {
    let server = Server::start();
    let c = server.connect().await;
    let query = "SELECT user_id, ts, amount,
           sum(amount) OVER (PARTITION BY user_id ORDER BY ts) AS total,
           count(*) OVER (PARTITION BY user_id ORDER BY ts RANGE BETWEEN INTERVAL '1 hour' PRECEDING AND CURRENT ROW) AS n_1h,
           lag(amount) OVER (PARTITION BY user_id ORDER BY ts) AS previous
         FROM tx";
    c.batch_execute(&format!(
        "CREATE TABLE tx (user_id int, ts timestamp, amount int);
         INSERT INTO tx VALUES (1, '2026-01-01 10:00:00', 10), (1, '2026-01-01 10:30:00', 20),
           (2, '2026-01-01 10:00:00', 5), (NULL, '2026-01-01 10:00:00', 1), (3, '2026-01-01 09:00:00', 2);
         CREATE FEATURE VIEW fw ENTITY (user_id) TIMESTAMP ts AS {query};"
    ))
    .await
    .unwrap();
    // New rows for user 1 (one of them late: before rows the view holds)
    // and for the NULL entity; users 2 and 3 untouched.
    c.batch_execute(
        "INSERT INTO tx VALUES (1, '2026-01-01 11:00:00', 5), (1, '2026-01-01 10:10:00', 7), (NULL, '2026-01-01 11:00:00', 4);",
    )
    .await
    .unwrap();
    let explain = rows(&c, "EXPLAIN REFRESH MATERIALIZED VIEW fw").await;
    assert!(explain[0].starts_with("partitions|"), "{explain:?}");
    c.batch_execute("REFRESH FEATURE VIEW fw").await.unwrap();
    let diff = |a: &str, b: &str| format!("SELECT count(*) FROM ({a} EXCEPT ALL {b}) d");
    assert_eq!(rows(&c, &diff("SELECT * FROM fw", query)).await, ["0"]);
    assert_eq!(rows(&c, &diff(query, "SELECT * FROM fw")).await, ["0"]);
    assert_eq!(rows(&c, "SELECT count(*) FROM fw").await, ["8"]);
    assert_eq!(
        rows(
            &c,
            "SELECT total, n_1h, previous FROM fw WHERE user_id = 1 ORDER BY ts"
        )
        .await,
        ["10|1|NULL", "17|2|10", "37|3|7", "42|4|20"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT last_method FROM sluice.materialized_views WHERE view_name = 'fw'"
        )
        .await,
        ["partitions"]
    );
}
