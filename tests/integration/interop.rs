//! Tables written by Sluice are plain Delta tables: an independent reader
//! (delta-rs for Python, and DuckDB's delta extension) sees the same rows.

use std::process::Command;

use crate::common::{Server, python};

/// Run `script` with the test virtualenv's python on `table`; its output
/// is one JSON value.
fn run_python(script: &str, table: &std::path::Path) -> serde_json::Value {
    let out = Command::new(python())
        .args(["-c", script])
        .arg(table)
        .output()
        .expect("run the test virtualenv's python (scripts/setup-test-env.sh creates it)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The answer is the last line: DuckDB may draw a progress bar on
    // stdout first when a query runs long.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: python printed {stdout:?}"))
}

#[tokio::test]
async fn python_deltalake_and_duckdb_read_what_sluice_wrote() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE SCHEMA raw;
         CREATE TABLE raw.orders (id bigint NOT NULL, customer text, amount numeric(12,2),
                                  placed date, tags text[]);
         INSERT INTO raw.orders VALUES
           (1, 'ada', 10.50, '2026-01-02', ARRAY['new']),
           (2, 'bob', 3.25, '2026-01-03', NULL),
           (3, 'cyd', NULL, NULL, ARRAY['vip','new']);
         UPDATE raw.orders SET amount = 4.00 WHERE id = 2;
         DELETE FROM raw.orders WHERE id = 3;",
    )
    .await
    .unwrap();
    let table = server.lake.join("raw/orders");
    let script = r#"
import sys, json
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1])
t = dt.to_pyarrow_table().sort_by("id")
rows = [[r["id"], r["customer"], str(r["amount"]), str(r["placed"])] for r in t.to_pylist()]
import duckdb, glob, os, importlib.util
spec = importlib.util.find_spec("duckdb_ext")
ext = None
for root in (spec.submodule_search_locations or []):
    hits = glob.glob(os.path.join(root, "**", "delta.duckdb_extension"), recursive=True)
    if hits: ext = hits[0]
con = duckdb.connect()
con.execute(f"LOAD '{ext}'")
duck = con.execute(f"SELECT id, customer, CAST(amount AS VARCHAR) FROM delta_scan('{sys.argv[1]}') ORDER BY id").fetchall()
print(json.dumps({"version": dt.version(), "rows": rows, "duck": [list(r) for r in duck]}))
"#;
    let v = run_python(script, &table);
    assert_eq!(v["version"], 3);
    assert_eq!(
        v["rows"],
        serde_json::json!([
            [1, "ada", "10.50", "2026-01-02"],
            [2, "bob", "4.00", "2026-01-03"]
        ])
    );
    assert_eq!(
        v["duck"],
        serde_json::json!([[1, "ada", "10.50"], [2, "bob", "4.00"]])
    );
}

/// CHECK constraints are stored as Delta constraints, so another Delta
/// writer (delta-rs for Python) enforces them too, with PostgreSQL's NULL
/// semantics kept.
#[tokio::test]
async fn another_delta_writer_keeps_sluice_checks() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE prices (sku text, amount numeric(10,2) CHECK (amount >= 0));
         ALTER TABLE prices ADD CONSTRAINT short_sku CHECK (length(sku) < 6);
         INSERT INTO prices VALUES ('a', 1);",
    )
    .await
    .unwrap();
    let table = server.lake.join("public/prices");
    let script = r#"
import sys, json, decimal
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
path = sys.argv[1]
schema = DeltaTable(path).schema().to_arrow()
def append(sku, amount):
    batch = pa.table({"sku": [sku], "amount": pa.array([amount], pa.decimal128(10, 2))})
    try:
        write_deltalake(path, batch, mode="append")
        return "ok"
    except Exception as e:
        return "refused"
out = {
    "constraints": sorted(k for k in DeltaTable(path).metadata().configuration if k.startswith("delta.constraints.")),
    "negative": append("b", decimal.Decimal("-1")),
    "long": append("bbbbbbbb", decimal.Decimal("1")),
    "null": append("c", None),
    "good": append("d", decimal.Decimal("2")),
}
print(json.dumps(out))
"#;
    let v = run_python(script, &table);
    assert_eq!(
        v,
        serde_json::json!({
            "constraints": ["delta.constraints.prices_amount_check", "delta.constraints.short_sku"],
            "negative": "refused",
            "long": "refused",
            "null": "ok",
            "good": "ok",
        })
    );
    // Sluice reads what the other writer added.
    let n: i64 = c
        .query_one("SELECT count(*) FROM prices", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
}
