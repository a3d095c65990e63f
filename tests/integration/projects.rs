//! Model projects: `sluice seed | run | snapshot | test | build` (the real
//! binary) on the fixture projects of `tests/projects/`, checked through a
//! server on the same lake.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Server, rows};

/// A copy of fixture project `name` in a temporary folder.
fn project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/projects")
        .join(name);
    let dst = dir.path().join(name);
    copy_dir(&src, &dst);
    (dir, dst)
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            if e.file_name() != "target" {
                copy_dir(&e.path(), &to);
            }
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

/// Run a project command; its exit success and everything it printed.
fn sluice(lake: &Path, project: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .arg("--lake")
        .arg(lake)
        .arg("--project")
        .arg(project)
        .env("SLUICE_LOG", "warn,deltalake_core=off,buoyant_kernel=off")
        .output()
        .expect("run sluice");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn ok(lake: &Path, project: &Path, args: &[&str]) -> String {
    let (success, text) = sluice(lake, project, args);
    assert!(success, "sluice {args:?} failed:\n{text}");
    text
}

/// Node → status of the newest run recorded in `sluice.runs`.
async fn last_run(c: &tokio_postgres::Client) -> Vec<String> {
    rows(
        c,
        "SELECT split_part(node, '.', 3) || ':' || status FROM sluice.runs \
         WHERE run_id = (SELECT run_id FROM sluice.runs ORDER BY ended_at DESC LIMIT 1) \
         ORDER BY 1",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_builds_every_materialization_and_reruns_incrementally() {
    let (_dir, p) = project("shop");
    let lake = p.parent().unwrap().join("lake");
    let out = ok(&lake, &p, &["build"]);
    assert!(
        out.contains("PASS=18 WARN=1 ERROR=0 SKIP=0 TOTAL=19"),
        "{out}"
    );
    let server = Server::start_on(&lake);
    let c = server.connect().await;

    // Dependency order held: the ephemeral model became a CTE of its reader
    // and never a relation; the macro rendered; the warn test counted.
    assert_eq!(
        rows(&c, "SELECT * FROM shop.customer_totals ORDER BY 1").await,
        ["1|Ada|1|1050", "2|Grace|1|2000", "3|Kurt|1|3025"]
    );
    assert!(
        rows(
            &c,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'open_orders'"
        )
        .await
            == ["0"]
    );
    let kinds = rows(
        &c,
        "SELECT table_name, table_type FROM information_schema.tables \
         WHERE table_schema = 'shop' ORDER BY 1",
    )
    .await;
    assert!(kinds.contains(&"stg_orders|VIEW".to_string()), "{kinds:?}");
    assert!(
        kinds.contains(&"orders_merge|BASE TABLE".to_string()),
        "{kinds:?}"
    );
    assert_eq!(
        rows(
            &c,
            "SELECT count(*) FROM pg_matviews WHERE matviewname = 'status_counts'"
        )
        .await,
        ["1"]
    );
    assert!(
        last_run(&c)
            .await
            .contains(&"accepted_values_customers_country__gb__us:warn".to_string())
    );
    assert_eq!(
        rows(
            &c,
            "SELECT failures FROM sluice.runs WHERE node LIKE '%accepted_values_customers_country%'"
        )
        .await,
        ["1"]
    );
    // A feature view model.
    assert_eq!(
        rows(
            &c,
            "SELECT entity, timestamp_column, ttl, features FROM sluice.feature_views WHERE view_name = 'customer_features'"
        )
        .await,
        ["customer_id|updated_at|30 days|last_amount numeric(12,2)"]
    );
    // Schedules from the folder and the model's own config.
    assert_eq!(
        rows(
            &c,
            "SELECT name, schedule FROM sluice.schedules WHERE schema_name = 'shop' ORDER BY 1"
        )
        .await,
        [
            "customer_features|EVERY INTERVAL '1 day'",
            "status_counts|ON UPSTREAM RETRIES 2"
        ]
    );
    // The DAG is recorded.
    assert_eq!(
        rows(
            &c,
            "SELECT depends_on FROM sluice.models WHERE name = 'customer_totals'"
        )
        .await,
        ["model.shop.open_orders,seed.shop.customers"]
    );

    // Second load: order 2 changed, order 4 is new. Every strategy adds
    // only those rows on the second run.
    std::fs::copy(p.join("loads/orders_2.csv"), p.join("seeds/orders.csv")).unwrap();
    ok(&lake, &p, &["build"]);
    for m in ["orders_merge", "orders_delete_insert"] {
        assert_eq!(
            rows(
                &c,
                &format!("SELECT id, status, loaded_by FROM shop.{m} ORDER BY id")
            )
            .await,
            [
                "1|placed|full",
                "2|shipped|incremental",
                "3|shipped|full",
                "4|placed|incremental"
            ],
            "{m}"
        );
    }
    assert_eq!(
        rows(
            &c,
            "SELECT id, status, loaded_by FROM shop.orders_append ORDER BY id, loaded_by"
        )
        .await,
        [
            "1|placed|full",
            "2|placed|full",
            "2|shipped|incremental",
            "3|shipped|full",
            "4|placed|incremental"
        ]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT status, orders, amount FROM shop.status_counts ORDER BY 1"
        )
        .await,
        ["placed|2|50.50", "shipped|2|55.25"]
    );
    // A table model with expectations: rebuilt through its rules; the
    // failing row went to the quarantine table, not the model.
    assert_eq!(
        rows(&c, "SELECT id FROM shop.valid_orders ORDER BY id").await,
        ["1", "2", "3"]
    );
    let quarantined = rows(&c, "SELECT * FROM shop.valid_orders__quarantine").await;
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(quarantined[0].starts_with("4|1|40.00"), "{quarantined:?}");

    // Third load: order 1 returned, order 3 gone, order 5 new.
    std::fs::copy(p.join("loads/orders_3.csv"), p.join("seeds/orders.csv")).unwrap();
    ok(&lake, &p, &["seed"]);
    ok(&lake, &p, &["snapshot"]);
    // SCD type 2 over three loads: changed rows closed at the new row's
    // updated_at, a deleted row stays current, one current row per key.
    assert_eq!(
        rows(
            &c,
            "SELECT id, status, dbt_valid_from, coalesce(CAST(dbt_valid_to AS text), 'current') \
             FROM shop_history.orders_snapshot ORDER BY id, dbt_valid_from"
        )
        .await,
        [
            "1|placed|2026-11-01 10:00:00|2026-11-03 08:00:00",
            "1|returned|2026-11-03 08:00:00|current",
            "2|placed|2026-11-01 11:00:00|2026-11-02 09:00:00",
            "2|shipped|2026-11-02 09:00:00|current",
            "3|shipped|2026-11-01 12:00:00|current",
            "4|placed|2026-11-02 10:00:00|current",
            "5|placed|2026-11-03 09:00:00|current",
        ]
    );
    // The check strategy versions a row when a checked column changes.
    assert_eq!(
        rows(
            &c,
            "SELECT id, string_agg(status, '>' ORDER BY dbt_valid_from) FROM shop_history.status_snapshot \
             GROUP BY id ORDER BY id"
        )
        .await,
        ["1|placed>returned", "2|placed>shipped", "3|shipped", "4|placed", "5|placed"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT count(*) FROM shop_history.status_snapshot WHERE dbt_valid_to IS NULL"
        )
        .await,
        ["5"]
    );

    // --full-refresh rebuilds the incremental models from scratch.
    ok(
        &lake,
        &p,
        &["run", "--select", "orders_merge", "--full-refresh"],
    );
    assert_eq!(
        rows(&c, "SELECT DISTINCT loaded_by FROM shop.orders_merge").await,
        ["full"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_picks_nodes_as_dbt_does() {
    let (_dir, p) = project("shop");
    let lake = p.parent().unwrap().join("lake");
    ok(&lake, &p, &["seed"]);
    let server = Server::start_on(&lake);
    let c = server.connect().await;
    let cases: &[(&[&str], &[&str])] = &[
        (&["--select", "stg_orders"], &["stg_orders"]),
        (
            &["--select", "+customer_totals"],
            &["customer_totals", "stg_orders"],
        ),
        (
            &["--select", "stg_orders+", "--exclude", "tag:marts"],
            &["stg_orders"],
        ),
        (
            &[
                "--select",
                "tag:marts",
                "--exclude",
                "orders_append",
                "status_counts",
                "valid_orders",
            ],
            &[
                "customer_features",
                "customer_totals",
                "orders_delete_insert",
                "orders_merge",
            ],
        ),
        (&["--select", "path:models/staging"], &["stg_orders"]),
        (
            &["--select", "config.materialized:incremental,orders_m*"],
            &["orders_merge"],
        ),
        // One step down from stg_orders is the ephemeral open_orders (run
        // inside its readers), not customer_totals.
        (
            &["--select", "stg_orders+1"],
            &[
                "customer_features",
                "orders_append",
                "orders_delete_insert",
                "orders_merge",
                "stg_orders",
                "valid_orders",
            ],
        ),
        (
            &["--select", "@stg_orders", "--exclude", "resource_type:seed"],
            &[
                "customer_features",
                "customer_totals",
                "orders_append",
                "orders_delete_insert",
                "orders_merge",
                "stg_orders",
                "valid_orders",
            ],
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        ok(&lake, &p, &a);
        let got: Vec<String> = last_run(&c)
            .await
            .into_iter()
            .map(|s| s.trim_end_matches(":success").to_string())
            .collect();
        assert_eq!(got, *want, "sluice run {args:?}");
    }
    // `sluice test --select m` runs the tests of m only.
    ok(&lake, &p, &["test", "--select", "orders_merge"]);
    assert_eq!(last_run(&c).await, ["unique_orders_merge_id:pass"]);
    let (success, out) = sluice(&lake, &p, &["run", "--select", "state:modified"]);
    assert!(
        !success && out.contains("selector method `state:`"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_name_their_file_and_skip_only_their_descendants() {
    let (_dir, p) = project("broken");
    let lake = p.parent().unwrap().join("lake");
    let (success, out) = sluice(&lake, &p, &["build", "--threads", "2"]);
    assert!(!success, "{out}");
    for needle in [
        "models/bad_jinja.sql line 3: syntax error",
        "models/unknown_ref.sql line 1: invalid operation: ref('nope') names no model",
        "model cycle_a is on a dependency cycle with cycle_b",
        "models/bad_sql.sql: model bad_sql: ERROR 42703: column \"no_such_column\" does not exist",
        "test unique_dupes_id found 2 failing rows",
        "PASS=4 WARN=0 ERROR=7 SKIP=2 TOTAL=13",
        "model two_statements: ERROR 42601: a model, seed, snapshot or test is one query; this has 2 statements",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let server = Server::start_on(&lake);
    let c = server.connect().await;
    assert_eq!(
        last_run(&c).await,
        [
            "after_bad_sql:skipped",
            "after_dupes:skipped",
            "bad_jinja:error",
            "bad_sql:error",
            "cycle_a:error",
            "cycle_b:error",
            "downstream_of_good:success",
            "dupes:success",
            "good:success",
            "not_null_dupes_id:pass",
            "two_statements:error",
            "unique_dupes_id:fail",
            "unknown_ref:error",
        ]
    );
    // Nothing of a failed model was committed; independent models built.
    assert_eq!(
        rows(
            &c,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'broken' ORDER BY 1"
        )
        .await,
        ["downstream_of_good", "dupes", "good"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT failures FROM sluice.runs WHERE node = 'test.broken.unique_dupes_id'"
        )
        .await,
        ["2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_builds_its_project_before_listening() {
    let (_dir, p) = project("shop");
    let server = Server::start_with_args(&["--project", p.to_str().unwrap()]);
    // The schedule line comes after the build's summary.
    let log = server.wait_for_log("project node(s) run on a schedule");
    assert!(log.contains("building project"), "{log}");
    assert!(log.contains("Done in"), "{log}");
    let c = server.connect().await;
    assert_eq!(
        rows(&c, "SELECT count(*) FROM shop.customer_totals").await,
        ["3"]
    );
    // A scheduled table model runs again when a table it reads changes.
    c.batch_execute("INSERT INTO shop.customers VALUES (9, 'Edsger', 'NL')")
        .await
        .unwrap();
    // The run is recorded in sluice.runs after its table is written, so both
    // are awaited.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let n = rows(&c, "SELECT count(*) FROM shop.customer_totals").await;
        let last = rows(
            &c,
            "SELECT command, status FROM sluice.runs WHERE node = 'model.shop.customer_totals' \
             ORDER BY started_at DESC LIMIT 1",
        )
        .await;
        if n == ["4"] && last == ["run|success"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {n:?}, last run {last:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
