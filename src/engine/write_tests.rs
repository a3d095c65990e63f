//! The write builders driven directly, on a `memory://` lake: what each
//! commits, what it refuses, and that a writer's application transaction
//! is applied exactly once.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use futures::TryStreamExt;

use super::{Engine, Output, Session};
use crate::error::ErrorKind;
use crate::write::{AppTransaction, Append, Target, WriteContext};

/// A fresh engine on its own in-memory lake.
async fn session(lake: &str) -> Session {
    let engine = Engine::open(&format!("memory://{lake}/")).await.unwrap();
    engine.session()
}

async fn run(s: &mut Session, sql: &str) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for stmt in s.parse(sql).unwrap() {
        match s.execute(stmt, &ParamValues::List(vec![])).await.unwrap() {
            Output::Rows { stream, .. } => out = stream.try_collect().await.unwrap(),
            _ => out.clear(),
        }
    }
    out
}

async fn scalar(s: &mut Session, sql: &str) -> i64 {
    let batches = run(s, sql).await;
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("a bigint result")
        .value(0)
}

async fn target(s: &Session, table: &str) -> (WriteContext, Target) {
    let wc = s.write_context();
    let (schema, name, def) = s
        .resolve_table(&datafusion::sql::sqlparser::ast::ObjectName::from(vec![
            datafusion::sql::sqlparser::ast::Ident::new(table),
        ]))
        .unwrap();
    let t = Target::open(&wc, &schema, &name, def, None).await.unwrap();
    (wc, t)
}

fn expr(sql: &str) -> Expr {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .unwrap()
        .parse_expr()
        .unwrap()
}

fn txn(app_id: &str, version: i64) -> Vec<AppTransaction> {
    vec![AppTransaction {
        app_id: app_id.into(),
        version,
    }]
}

#[tokio::test]
async fn append_commits_once_per_writer_version() {
    let mut s = session("append-once").await;
    run(&mut s, "CREATE TABLE t (id bigint PRIMARY KEY, v text)").await;
    let (wc, t) = target(&s, "t").await;
    let rows = || async {
        wc.ctx
            .sql("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS x(id, v)")
            .await
            .unwrap()
    };
    let first = Append::new(&wc, &t)
        .app_transactions(txn("loader", 1))
        .run(rows().await)
        .await
        .unwrap();
    assert_eq!(first.rows, 2);
    assert!(first.files_added >= 1 && first.bytes_added > 0);

    // The same writer and version again: nothing is written.
    let (wc, t) = target(&s, "t").await;
    let again = Append::new(&wc, &t)
        .app_transactions(txn("loader", 1))
        .run(rows().await)
        .await
        .unwrap();
    assert_eq!((again.rows, again.version), (0, first.version));
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM t").await, 2);

    // Its next version is new input.
    let next = wc
        .ctx
        .sql("SELECT * FROM (VALUES (3, 'c')) AS x(id, v)")
        .await
        .unwrap();
    let third = Append::new(&wc, &t)
        .app_transactions(txn("loader", 2))
        .run(next)
        .await
        .unwrap();
    assert_eq!((third.rows, third.version), (1, first.version + 1));
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM t").await, 3);
}

#[tokio::test]
async fn two_writers_with_one_transaction_commit_once() {
    let mut s = session("append-race").await;
    run(&mut s, "CREATE TABLE t (id bigint, v text)").await;
    // Both open the same snapshot, as two servers retrying one load would.
    let (wc, a) = target(&s, "t").await;
    let (_, b) = target(&s, "t").await;
    let df = || async {
        wc.ctx
            .sql("SELECT * FROM (VALUES (1, 'a')) AS x(id, v)")
            .await
            .unwrap()
    };
    Append::new(&wc, &a)
        .app_transactions(txn("w", 7))
        .run(df().await)
        .await
        .unwrap();
    let err = Append::new(&wc, &b)
        .app_transactions(txn("w", 7))
        .run(df().await)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::SerializationFailure, "{err:?}");
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM t").await, 1);
}

#[tokio::test]
async fn append_refuses_rows_that_break_rules_and_commits_nothing() {
    let mut s = session("append-rules").await;
    run(
        &mut s,
        "CREATE TABLE t (id bigint PRIMARY KEY, n integer NOT NULL CHECK (n > 0))",
    )
    .await;
    let (wc, t) = target(&s, "t").await;
    let before = t.table.version();
    for (rows, kind) in [
        (
            "SELECT * FROM (VALUES (1, 5), (1, 6)) AS x(id, n)",
            ErrorKind::UniqueViolation,
        ),
        (
            "SELECT * FROM (VALUES (1, CAST(NULL AS integer))) AS x(id, n)",
            ErrorKind::NotNullViolation,
        ),
        (
            "SELECT * FROM (VALUES (1, -1)) AS x(id, n)",
            ErrorKind::CheckViolation,
        ),
    ] {
        let df = wc.ctx.sql(rows).await.unwrap();
        let err = Append::new(&wc, &t).run(df).await.unwrap_err();
        assert_eq!(err.kind, kind, "{rows}: {err:?}");
    }
    let (_, t) = target(&s, "t").await;
    assert_eq!(t.table.version(), before);
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM t").await, 0);
}

#[tokio::test]
async fn update_and_delete_report_rows_and_keep_references() {
    let mut s = session("update-delete").await;
    run(
        &mut s,
        "CREATE TABLE p (id bigint PRIMARY KEY, n integer CHECK (n < 100));
         CREATE TABLE c (id bigint, p_id bigint REFERENCES p (id) ON DELETE CASCADE);
         INSERT INTO p VALUES (1, 10), (2, 20), (3, 30);
         INSERT INTO c VALUES (10, 1), (11, 1), (20, 2);",
    )
    .await;

    let (wc, p) = target(&s, "p").await;
    let (updated, _) = crate::write::update::update(
        &wc,
        &p,
        &[("n".to_string(), expr("n + 1"))],
        Some(&expr("id >= 2")),
        None,
        false,
    )
    .await
    .unwrap();
    assert_eq!(updated.rows, 2);
    assert_eq!(scalar(&mut s, "SELECT sum(n) FROM p").await, 62);

    // An update that breaks the CHECK commits nothing.
    let (wc, p) = target(&s, "p").await;
    let err = crate::write::update::update(
        &wc,
        &p,
        &[("n".to_string(), expr("n * 10"))],
        None,
        None,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::CheckViolation, "{err:?}");
    assert_eq!(scalar(&mut s, "SELECT sum(n) FROM p").await, 62);

    // Deleting a parent cascades to its children.
    let (wc, p) = target(&s, "p").await;
    let (deleted, _) = crate::write::delete::delete(&wc, &p, Some(&expr("id = 1")), false)
        .await
        .unwrap();
    assert_eq!(deleted.rows, 1);
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM c").await, 1);
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM p").await, 2);
}

#[tokio::test]
async fn a_memory_lake_keeps_its_tables_across_engines() {
    let mut s = session("reopen").await;
    run(
        &mut s,
        "CREATE TABLE t (id bigint); INSERT INTO t VALUES (1), (2);",
    )
    .await;
    let engine: Arc<Engine> = Engine::open("memory://reopen/").await.unwrap();
    let mut again = engine.session();
    assert_eq!(scalar(&mut again, "SELECT count(*) FROM t").await, 2);
}
