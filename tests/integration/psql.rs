//! psql, the simple protocol and its catalog queries.

use std::process::Command;

use crate::common::Server;

fn psql(server: &Server, args: &[&str]) -> (bool, String) {
    let out = Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "sluice",
            "-d",
            "sluice",
        ])
        .args(args)
        .output()
        .expect("psql is installed by scripts/setup-test-env.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn psql_meta_commands_show_sluice_objects() {
    let server = Server::start();
    let (ok, out) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE SCHEMA raw",
            "-c",
            "CREATE TABLE raw.events (id bigint, kind varchar(20), amount numeric(12,2), at timestamptz)",
            "-c",
            "CREATE VIEW raw.kinds AS SELECT DISTINCT kind FROM raw.events",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = psql(&server, &["-c", "\\dn"]);
    assert!(ok && out.contains("raw"), "{out}");
    let (ok, out) = psql(&server, &["-c", "\\dt raw.*"]);
    assert!(
        ok && out.contains("events") && out.contains("table"),
        "{out}"
    );
    let (ok, out) = psql(&server, &["-c", "\\dv raw.*"]);
    assert!(ok && out.contains("kinds") && out.contains("view"), "{out}");
    let (ok, out) = psql(&server, &["-c", "\\d raw.events"]);
    assert!(ok, "{out}");
    for ty in ["bigint", "numeric", "timestamp"] {
        assert!(out.contains(ty), "\\d shows PostgreSQL type {ty}:\n{out}");
    }
    assert!(!out.contains("Int64") && !out.contains("Utf8"), "{out}");
    let (ok, out) = psql(&server, &["-c", "\\l"]);
    assert!(ok && out.contains("sluice"), "{out}");
    let (ok, out) = psql(&server, &["-c", "\\df"]);
    assert!(ok, "{out}");
    // An error leaves psql's session usable for the next command.
    let (ok, out) = psql(
        &server,
        &["-c", "SELECT * FROM raw.missing", "-c", "SELECT 1 AS one"],
    );
    assert!(!ok || out.contains("one"), "{out}");
    assert!(out.contains("does not exist"), "{out}");
}
