//! The front door: SCRAM-SHA-256 logins from a users file, roles, TLS, and
//! no listening beyond loopback without users.

use std::path::Path;
use std::process::Command;

use tokio_postgres::NoTls;

use crate::common::{Server, sqlstate};

fn add_user(file: &Path, name: &str, role: &str, password: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["user", "add", name, "--role", role, "--users"])
        .arg(file)
        .env("SLUICE_PASSWORD", password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

async fn login(
    server: &Server,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let url = format!(
        "host=127.0.0.1 port={} user={user} password='{password}' dbname=sluice",
        server.port
    );
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

async fn count(c: &tokio_postgres::Client) -> i64 {
    c.query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn users_log_in_with_scram_and_act_within_their_roles() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    add_user(&users, "ann", "admin", "admin pw");
    add_user(&users, "walt", "writer", "writer-pw");
    add_user(&users, "rita", "reader", "reader-pw");
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        !text.contains("admin pw") && !text.contains("writer-pw"),
        "{text}"
    );

    // TLS with a throwaway self-signed certificate.
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let server = Server::start_with_args(&["--users", users.to_str().unwrap()]);

    // Passwords: right, wrong, unknown user, unknown database.
    let admin = login(&server, "ann", "admin pw").await.unwrap();
    let e = login(&server, "ann", "wrong").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28P01", "{e:?}");
    let e = login(&server, "mallory", "x").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28P01", "{e:?}");
    // Each failure from one address makes the next answer slower.
    server.wait_for_log("failed login from 127.0.0.1 (2 in a row); answering in 400 ms");
    let url = format!(
        "host=127.0.0.1 port={} user=ann password='admin pw' dbname=nope",
        server.port
    );
    let e = tokio_postgres::connect(&url, NoTls).await.err().unwrap();
    assert_eq!(sqlstate(&e), "3D000", "{e:?}");

    // Roles: each allowed statement works, each denied one is 42501 and
    // changes nothing.
    admin
        .batch_execute("CREATE TABLE t (a integer); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let writer = login(&server, "walt", "writer-pw").await.unwrap();
    let reader = login(&server, "rita", "reader-pw").await.unwrap();
    assert_eq!(count(&reader).await, 1);
    // Each session is its user, in every spelling.
    for (client, name) in [(&admin, "ann"), (&writer, "walt"), (&reader, "rita")] {
        let row = client
            .query_one("SELECT current_user, session_user, user, current_role", &[])
            .await
            .unwrap();
        for i in 0..4 {
            assert_eq!(row.get::<_, String>(i), name);
        }
        assert_eq!(row.columns()[0].name(), "current_user");
    }
    for sql in [
        "INSERT INTO t VALUES (2)",
        "DELETE FROM t",
        "COPY t FROM STDIN",
        "CREATE TABLE r (a int)",
    ] {
        let e = reader.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e:?}");
    }
    writer
        .execute("INSERT INTO t VALUES (2)", &[])
        .await
        .unwrap();
    writer
        .execute("UPDATE t SET a = 3 WHERE a = 2", &[])
        .await
        .unwrap();
    for sql in ["CREATE TABLE w (a int)", "DROP TABLE t", "VACUUM t"] {
        let e = writer.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e:?}");
    }
    assert_eq!(count(&admin).await, 2);
    let e = admin.simple_query("SELECT * FROM w").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42P01");
    // A denied statement aborts a transaction block like any error.
    reader.batch_execute("BEGIN").await.unwrap();
    let e = reader.simple_query("DELETE FROM t").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    let e = reader.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    reader.batch_execute("ROLLBACK").await.unwrap();

    // pg_stat_activity lists everyone; another user's statement text only
    // an admin sees, and only an admin may signal another user's backend.
    let walt: i32 = writer
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let text = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    };
    let sql = "SELECT query FROM pg_stat_activity WHERE pid = $1";
    assert_eq!(
        text(reader.query(sql, &[&walt]).await.unwrap()),
        ["<insufficient privilege>"]
    );
    assert_eq!(
        text(admin.query(sql, &[&walt]).await.unwrap()),
        ["SELECT pg_backend_pid()"]
    );
    let e = reader
        .simple_query(&format!("SELECT pg_cancel_backend({walt})"))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    let e = reader
        .simple_query(&format!("SELECT pg_terminate_backend({walt})"))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    let ok: bool = admin
        .query_one(&format!("SELECT pg_cancel_backend({walt})"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(ok);
    // Nothing was running there: the writer goes on.
    assert_eq!(count(&writer).await, 2);

    // With TLS configured, plaintext is refused before any password is
    // sent; psql gets in over TLS, required and verified.
    let server = Server::start_with_args(&[
        "--users",
        users.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let e = login(&server, "rita", "reader-pw").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28000", "{e:?}");
    let out = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=rita dbname=sluice sslmode=disable",
            server.port
        ))
        .args(["-X", "-c", "SELECT 1"])
        .env("PGPASSWORD", "reader-pw")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS connections only"),
        "{out:?}"
    );
    for mode in [
        "sslmode=require".to_string(),
        format!("sslmode=verify-full sslrootcert={}", cert.display()),
    ] {
        let out = Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={} user=rita dbname=sluice {mode}",
                server.port
            ))
            .args(["-X", "-A", "-t", "-c", "SELECT 1 + 1"])
            .env("PGPASSWORD", "reader-pw")
            .output()
            .unwrap();
        assert!(out.status.success(), "{mode}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
    }
}

#[test]
fn the_front_door_stays_shut_without_users_and_with_bad_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--lake"])
            .arg(dir.path().join("lake"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0"), "{err}");

    let key = dir.path().join("key.pem");
    std::fs::write(&key, "not a key").unwrap();
    let out = run(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");

    // A lake that cannot be reached stops the start, naming the lake and
    // never the secret.
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--lake",
            "s3://nobucket/lake",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("AWS_ACCESS_KEY_ID", "key")
        .env("AWS_SECRET_ACCESS_KEY", "very-secret-value")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_MAX_RETRIES", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the lake at s3://nobucket/lake"),
        "{err}"
    );
    assert!(!err.contains("very-secret-value"), "{err}");
}
