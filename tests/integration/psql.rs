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
    // The commands whose catalog queries need more than the basics:
    // sizes, privileges, roles, types, storage details.
    for cmd in [
        "\\dt+ raw.*",
        "\\d+ raw.events",
        "\\dp raw.*",
        "\\du",
        "\\dT",
    ] {
        let (ok, out) = psql(&server, &["-v", "ON_ERROR_STOP=1", "-c", cmd]);
        assert!(ok && !out.contains("ERROR"), "{cmd}:\n{out}");
    }
    let (_, out) = psql(&server, &["-c", "\\dp raw.*"]);
    assert!(out.contains("events"), "{out}");
    // Functions: their types, definitions and ambiguity, as PostgreSQL's.
    let (ok, out) = psql(&server, &["-v", "ON_ERROR_STOP=1", "-c", "\\df+ upper"]);
    assert!(ok && out.contains("| text             | text  "), "{out}");
    assert!(
        out.contains("uppercase") && out.contains("anyrange"),
        "{out}"
    );
    let (ok, out) = psql(&server, &["-c", "\\sf upper(text)"]);
    assert!(
        ok && out.contains("CREATE OR REPLACE FUNCTION pg_catalog.upper(text)\n RETURNS text\n"),
        "{out}"
    );
    // A built-in SQL function shows its SQL-standard body, in \sf and in
    // \df+'s source column.
    let (ok, out) = psql(&server, &["-c", "\\sf lpad(text,integer)"]);
    assert!(
        ok && out
            .contains(" IMMUTABLE PARALLEL SAFE STRICT COST 1\nRETURN lpad($1, $2, ' '::text)\n"),
        "{out}"
    );
    let (ok, out) = psql(&server, &["-v", "ON_ERROR_STOP=1", "-c", "\\df+ rpad"]);
    assert!(
        ok && out.contains("RETURN rpad($1, $2, ' '::text)"),
        "{out}"
    );
    // information_schema's functions are found in its schema, and its
    // relations are views.
    let (ok, out) = psql(
        &server,
        &[
            "-c",
            "\\df information_schema.*",
            "-c",
            "\\dv information_schema.*",
        ],
    );
    assert!(
        ok && out.contains("information_schema | _pg_expandarray")
            && out.lines().any(|l| {
                l.starts_with(" information_schema | columns ") && l.contains("| view")
            }),
        "{out}"
    );
    let (ok, out) = psql(&server, &["-c", "\\sf lower"]);
    assert!(
        !ok && out.contains("more than one function named \"lower\""),
        "{out}"
    );
    // An error leaves psql's session usable for the next command.
    let (ok, out) = psql(
        &server,
        &["-c", "SELECT * FROM raw.missing", "-c", "SELECT 1 AS one"],
    );
    assert!(!ok || out.contains("one"), "{out}");
    assert!(out.contains("does not exist"), "{out}");
}

#[tokio::test]
async fn psql_describe_lists_constraints() {
    let server = Server::start();
    let (ok, out) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE TABLE accounts (id bigint PRIMARY KEY, handle text UNIQUE, \
             credit numeric(10,2) CONSTRAINT credit_floor CHECK (credit >= 0), \
             tier varchar(8) DEFAULT 'basic', note text DEFAULT 'n/a')",
            "-c",
            "CREATE SCHEMA shop",
            "-c",
            "CREATE TABLE shop.orders (order_id bigint PRIMARY KEY, \
             account_id bigint REFERENCES accounts (id) ON DELETE CASCADE)",
        ],
    );
    assert!(ok, "{out}");
    // The sections psql prints for a PostgreSQL table, in its wording.
    let (ok, out) = psql(&server, &["-v", "ON_ERROR_STOP=1", "-c", "\\d accounts"]);
    assert!(ok, "{out}");
    for line in [
        // Declared types and defaults, as PostgreSQL prints them.
        " credit | numeric(10,2)        |",
        " tier   | character varying(8) |           |          | 'basic'::character varying",
        " note   | text                 |           |          | 'n/a'::text",
        "Indexes:",
        "\"accounts_pkey\" PRIMARY KEY, delta (id)",
        "\"accounts_handle_key\" UNIQUE CONSTRAINT, delta (handle)",
        "Check constraints:",
        "\"credit_floor\" CHECK (credit >= 0::numeric)",
        "Referenced by:",
        "TABLE \"shop.orders\" CONSTRAINT \"orders_account_id_fkey\" FOREIGN KEY (account_id) \
         REFERENCES public.accounts(id) ON DELETE CASCADE",
    ] {
        assert!(out.contains(line), "\\d accounts shows {line}:\n{out}");
    }
    let (ok, out) = psql(&server, &["-v", "ON_ERROR_STOP=1", "-c", "\\d shop.orders"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Foreign-key constraints:")
            && out.contains("\"orders_account_id_fkey\" FOREIGN KEY (account_id)"),
        "{out}"
    );
    // pg_constraint itself, as drivers read it.
    let (ok, out) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-A",
            "-t",
            "-c",
            "SELECT conname, contype, conkey FROM pg_catalog.pg_constraint \
             WHERE conrelid = 'accounts'::regclass ORDER BY conname",
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "accounts_handle_key|u|{2}\naccounts_pkey|p|{1}\ncredit_floor|c|{3}",
        "{out}"
    );
    // A dropped constraint is gone from \d.
    let (ok, out) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "ALTER TABLE accounts DROP CONSTRAINT credit_floor",
            "-c",
            "\\d accounts",
        ],
    );
    assert!(ok && !out.contains("credit_floor"), "{out}");
}
