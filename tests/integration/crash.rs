//! Crash safety: kill -9 the server at random moments while a client
//! writes, restart it on the same lake, and check what survived.
//!
//! Each trial runs a random mix of COPY, INSERT ... SELECT, UPDATE, MERGE
//! into a table with a QUARANTINE rule, DELETE with ON DELETE CASCADE,
//! OPTIMIZE, VACUUM, CREATE/DROP TABLE and REFRESH MATERIALIZED VIEW, kills
//! the server after a random delay, restarts it and checks:
//!
//! - every table opens and every file of its current version is there
//!   (each column of each row is read);
//! - every acknowledged statement is fully present;
//! - the statement in flight is fully present or fully absent, except the
//!   multi-table states a crash can leave (docs/security.md, "Crashes"):
//!   the quarantine rows of a write whose own commit did not land, and
//!   children deleted by ON DELETE CASCADE whose parent's delete did not
//!   land. The next statement repairs the second (the DELETE is repeated
//!   here and must finish the work).
//!
//! `SLUICE_CRASH_TRIALS` (default 3) trials on one lake; `SLUICE_CRASH_SEED`
//! repeats a run. The benchmark run uses 100 trials
//! (`benchmarks/crash/run.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::Client;

use crate::common::Server;

const EV_ROWS: i64 = 400;
const MERGE_ROWS: i64 = 60;
const MERGE_BAD: i64 = 6;
const CHILDREN: i64 = 20;

#[derive(Debug, Clone)]
enum Op {
    Copy(i64),
    InsertSelect(i64),
    Update(i64),
    Merge(i64),
    AddParent(i64),
    DeleteParent(i64),
    Optimize,
    Vacuum,
    Create(i64),
    Drop(i64),
    Refresh,
}

enum Outcome {
    Started,
    Acked,
    Rejected(String),
}

/// What the lake must hold, as far as the client knows.
#[derive(Default)]
struct Model {
    /// Batches of `ev`: acknowledged, or unknown (0 or all).
    ev: BTreeMap<i64, bool>,
    /// The values `up.v` may have: the last acknowledged, plus one in flight.
    up: BTreeSet<i64>,
    merged: BTreeMap<i64, bool>,
    parents: BTreeMap<i64, bool>,
    deleted: BTreeMap<i64, bool>,
    tables: BTreeMap<i64, bool>,
    dropped: BTreeMap<i64, bool>,
    next: i64,
}

/// What the checks saw, over all trials.
#[derive(Default, Debug)]
struct Seen {
    in_flight_present: usize,
    in_flight_absent: usize,
    quarantine_without_commit: usize,
    cascade_half_done: usize,
    statements_acknowledged: usize,
}

fn pick(rng: &mut fastrand::Rng, m: &mut Model) -> Op {
    m.next += 1;
    let k = m.next;
    let live_parent = m
        .parents
        .keys()
        .copied()
        .find(|p| !m.deleted.contains_key(p));
    let live_table = m
        .tables
        .keys()
        .copied()
        .find(|t| !m.dropped.contains_key(t));
    match rng.u8(..11) {
        0 | 1 => Op::Copy(k),
        2 => Op::InsertSelect(k),
        3 => Op::Update(k),
        4 => Op::Merge(k),
        5 => Op::AddParent(k),
        6 => live_parent
            .map(Op::DeleteParent)
            .unwrap_or(Op::AddParent(k)),
        7 => Op::Optimize,
        8 => Op::Vacuum,
        9 => match live_table {
            Some(t) if rng.bool() => Op::Drop(t),
            _ => Op::Create(k),
        },
        _ => Op::Refresh,
    }
}

async fn run(c: &Client, op: &Op) -> Result<(), tokio_postgres::Error> {
    match op {
        Op::Copy(k) => {
            let mut data = String::new();
            for i in 0..EV_ROWS {
                data.push_str(&format!("{k}\t{i}\tpad-{k}-{i}\n"));
            }
            let sink = c.copy_in::<_, Bytes>("COPY ev FROM STDIN").await?;
            let mut sink = Box::pin(sink);
            for piece in data.as_bytes().chunks(4096) {
                sink.send(Bytes::copy_from_slice(piece)).await?;
            }
            sink.as_mut().finish().await.map(|_| ())
        }
        Op::InsertSelect(k) => {
            c.batch_execute(&format!(
                "INSERT INTO ev SELECT {k}, g, 'pad-' || g FROM generate_series(0, {}) g",
                EV_ROWS - 1
            ))
            .await
        }
        Op::Update(k) => c.batch_execute(&format!("UPDATE up SET v = {k}")).await,
        Op::Merge(k) => {
            c.batch_execute(&format!(
                "MERGE INTO q USING (SELECT {k} AS k, g - {MERGE_BAD} AS x \
                 FROM generate_series(1, {MERGE_ROWS}) g) s ON q.k = s.k AND q.x = s.x \
                 WHEN NOT MATCHED THEN INSERT VALUES (s.k, s.x)"
            ))
            .await
        }
        Op::AddParent(k) => {
            c.batch_execute(&format!(
                "INSERT INTO parent VALUES ({k}); \
                 INSERT INTO child SELECT g, {k} FROM generate_series(1, {CHILDREN}) g"
            ))
            .await
        }
        Op::DeleteParent(p) => {
            c.batch_execute(&format!("DELETE FROM parent WHERE id = {p}"))
                .await
        }
        Op::Optimize => c.batch_execute("OPTIMIZE ev").await,
        Op::Vacuum => {
            c.batch_execute("SET sluice.vacuum_retention_check = off; VACUUM ev RETAIN 0 HOURS")
                .await
        }
        Op::Create(k) => {
            c.batch_execute(&format!("CREATE TABLE ddl_{k} (a int)"))
                .await
        }
        Op::Drop(t) => c.batch_execute(&format!("DROP TABLE ddl_{t}")).await,
        Op::Refresh => c.batch_execute("REFRESH MATERIALIZED VIEW mv").await,
    }
}

/// Note `op` as acknowledged (`true`) or in flight (`false`).
fn note(m: &mut Model, op: &Op, acked: bool) {
    match op {
        Op::Copy(k) | Op::InsertSelect(k) => {
            m.ev.insert(*k, acked);
        }
        Op::Update(k) => {
            if acked {
                m.up.clear();
            }
            m.up.insert(*k);
        }
        Op::Merge(k) => {
            m.merged.insert(*k, acked);
        }
        Op::AddParent(k) => {
            // Two statements: acknowledged means both were.
            m.parents.insert(*k, acked);
        }
        Op::DeleteParent(p) => {
            m.deleted.insert(*p, acked);
        }
        Op::Create(k) => {
            m.tables.insert(*k, acked);
        }
        Op::Drop(t) => {
            m.dropped.insert(*t, acked);
        }
        Op::Optimize | Op::Vacuum | Op::Refresh => {}
    }
}

async fn count(c: &Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

fn tolerate(seen: &mut Seen, present: bool) {
    if present {
        seen.in_flight_present += 1;
    } else {
        seen.in_flight_absent += 1;
    }
}

/// Check the restarted server against the model; settle what was in
/// flight to what is there.
async fn check(c: &Client, m: &mut Model, seen: &mut Seen) {
    // Every table opens, every column of every row is read.
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' \
             UNION ALL SELECT 'mv'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in &tables {
        c.simple_query(&format!("SELECT * FROM \"{t}\""))
            .await
            .unwrap_or_else(|e| panic!("table {t} does not read after the crash: {e}"));
    }
    // ev: each batch all or nothing; acknowledged ones all.
    let rows = c
        .query(
            "SELECT k::int8, count(*)::int8, count(DISTINCT i)::int8, min(pad) FROM ev GROUP BY k",
            &[],
        )
        .await
        .unwrap();
    let mut found = BTreeMap::new();
    for r in &rows {
        let (k, n, distinct): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        assert_eq!(
            (n, distinct),
            (EV_ROWS, EV_ROWS),
            "batch {k} of ev is partial or doubled"
        );
        found.insert(k, n);
    }
    for (k, acked) in m.ev.clone() {
        let present = found.contains_key(&k);
        if acked {
            assert!(present, "acknowledged batch {k} of ev is missing");
        } else {
            tolerate(seen, present);
            m.ev.insert(k, true);
            if !present {
                m.ev.remove(&k);
            }
        }
    }
    assert!(
        found.keys().all(|k| m.ev.contains_key(k)),
        "ev holds a batch nobody wrote"
    );
    // up: one value for every row, the last acknowledged or the one in flight.
    let vs: Vec<i64> = c
        .query("SELECT DISTINCT v::int8 FROM up", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(vs.len(), 1, "an UPDATE half applied: {vs:?}");
    if !m.up.is_empty() {
        assert!(
            m.up.contains(&vs[0]),
            "up.v is {} but should be one of {:?}",
            vs[0],
            m.up
        );
    }
    m.up = BTreeSet::from([vs[0]]);
    // q and its quarantine.
    for (k, acked) in m.merged.clone() {
        let good = count(c, &format!("SELECT count(*) FROM q WHERE k = {k}")).await;
        let bad = count(
            c,
            &format!("SELECT count(*) FROM q__quarantine WHERE k = {k}"),
        )
        .await;
        let all = (MERGE_ROWS - MERGE_BAD, MERGE_BAD);
        if good > 0 || acked {
            assert_eq!((good, bad), all, "MERGE {k} (acknowledged: {acked})");
        } else {
            assert_eq!(good, 0);
            assert!(bad == 0 || bad == all.1, "MERGE {k}: {bad} quarantined");
            if bad > 0 {
                seen.quarantine_without_commit += 1;
            }
        }
        if !acked {
            tolerate(seen, good > 0);
        }
        m.merged.insert(k, true);
        if good == 0 {
            m.merged.remove(&k);
        }
    }
    // parent/child: no child without its parent, ever.
    let orphans = count(
        c,
        "SELECT count(*) FROM child WHERE pid NOT IN (SELECT id FROM parent)",
    )
    .await;
    assert_eq!(orphans, 0, "children outlived their parent");
    for (p, acked) in m.parents.clone() {
        let here = count(c, &format!("SELECT count(*) FROM parent WHERE id = {p}")).await;
        let kids = count(c, &format!("SELECT count(*) FROM child WHERE pid = {p}")).await;
        let deleted = m.deleted.get(&p).copied();
        match deleted {
            Some(true) => assert_eq!((here, kids), (0, 0), "deleted parent {p} is back"),
            Some(false) => {
                tolerate(seen, here == 0);
                if here == 1 && kids < CHILDREN {
                    // The children's commit landed, the parent's did not:
                    // the next DELETE finishes it.
                    seen.cascade_half_done += 1;
                    c.batch_execute(&format!("DELETE FROM parent WHERE id = {p}"))
                        .await
                        .unwrap();
                    assert_eq!(
                        count(c, &format!("SELECT count(*) FROM parent WHERE id = {p}")).await,
                        0
                    );
                    m.deleted.insert(p, true);
                } else if here == 0 {
                    m.deleted.insert(p, true);
                } else {
                    m.deleted.remove(&p);
                }
            }
            None if acked => assert_eq!((here, kids), (1, CHILDREN), "parent {p}"),
            None => {
                // In flight: the parent's insert, then its children's.
                assert!(here == 1 || kids == 0, "parent {p}");
                tolerate(seen, here == 1);
                if here == 1 && kids < CHILDREN {
                    assert_eq!(kids, 0, "children of {p} half inserted");
                    c.batch_execute(&format!(
                        "INSERT INTO child SELECT g, {p} FROM generate_series(1, {CHILDREN}) g"
                    ))
                    .await
                    .unwrap();
                }
                if here == 1 {
                    m.parents.insert(p, true);
                } else {
                    m.parents.remove(&p);
                }
            }
        }
    }
    // CREATE / DROP TABLE.
    for (t, acked) in m.tables.clone() {
        let dropped = m.dropped.get(&t).copied();
        let exists = tables.contains(&format!("ddl_{t}"));
        match dropped {
            Some(true) => assert!(!exists, "dropped ddl_{t} is back"),
            None if acked => assert!(exists, "created ddl_{t} is missing"),
            _ => {
                tolerate(seen, exists);
                // Whatever half-state is left, the next statement works.
                if exists {
                    c.batch_execute(&format!("INSERT INTO ddl_{t} VALUES (1)"))
                        .await
                        .unwrap();
                    m.tables.insert(t, true);
                    m.dropped.remove(&t);
                } else {
                    c.batch_execute(&format!("CREATE TABLE ddl_{t} (a int); DROP TABLE ddl_{t}"))
                        .await
                        .unwrap_or_else(|e| panic!("ddl_{t} cannot be made again: {e}"));
                    m.dropped.insert(t, true);
                }
            }
        }
    }
    // The materialized view holds whole batches of some version of ev.
    let partial = count(c, &format!("SELECT count(*) FROM mv WHERE n <> {EV_ROWS}")).await;
    assert_eq!(partial, 0, "mv holds a partial batch");
}

const SCHEMA: &str = "
    CREATE TABLE ev (k int, i int, pad text);
    CREATE TABLE up (id int PRIMARY KEY, v int);
    INSERT INTO up SELECT g, 0 FROM generate_series(1, 50) g;
    CREATE TABLE q (k int, x int, CONSTRAINT pos EXPECT (x > 0) ON VIOLATION QUARANTINE);
    CREATE TABLE parent (id int PRIMARY KEY);
    CREATE TABLE child (id int, pid int REFERENCES parent ON DELETE CASCADE);
    CREATE MATERIALIZED VIEW mv AS SELECT k, count(*) AS n FROM ev GROUP BY k";

#[tokio::test]
async fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let trials: usize = std::env::var("SLUICE_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed = std::env::var("SLUICE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash: SLUICE_CRASH_SEED={seed}, {trials} trials");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut server = Server::start_on(&lake);
    server.connect().await.batch_execute(SCHEMA).await.unwrap();
    let mut model = Model {
        up: BTreeSet::from([0]),
        ..Default::default()
    };
    let mut seen = Seen::default();
    for trial in 0..trials {
        let c = server.connect().await;
        let ops: Vec<Op> = (0..40).map(|_| pick(&mut rng, &mut model)).collect();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = tokio::spawn(async move {
            for op in ops {
                tx.send((op.clone(), Outcome::Started)).unwrap();
                match run(&c, &op).await {
                    Ok(()) => tx.send((op, Outcome::Acked)).unwrap(),
                    Err(e) => match e.as_db_error() {
                        // Refused with a SQLSTATE: nothing of it may land.
                        Some(db) => tx
                            .send((op, Outcome::Rejected(db.message().to_string())))
                            .unwrap(),
                        // The server is gone: this one's fate is unknown.
                        None => break,
                    },
                }
            }
        });
        let delay = Duration::from_millis(rng.u64(100..3000));
        tokio::time::sleep(delay).await;
        server.kill();
        let _ = writer.await;
        let mut last: Option<Op> = None;
        while let Ok((op, outcome)) = rx.try_recv() {
            match outcome {
                Outcome::Started => last = Some(op),
                Outcome::Acked => {
                    seen.statements_acknowledged += 1;
                    note(&mut model, &op, true);
                    last = None;
                }
                Outcome::Rejected(why) => {
                    eprintln!("crash trial {trial}: {op:?} refused: {why}");
                    last = None;
                }
            }
        }
        if let Some(op) = last {
            note(&mut model, &op, false);
        }
        server = Server::start_on(&lake);
        let c = server.connect().await;
        check(&c, &mut model, &mut seen).await;
        eprintln!("crash trial {trial}: killed after {delay:?}; {seen:?}");
    }
    eprintln!("crash: {trials} trials, {seen:?}");
}
