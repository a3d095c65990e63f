//! Getting data in from files and databases: read_csv / read_json /
//! read_parquet, COPY FROM server-side files, postgres_query, upserts.

use std::path::Path;

use tokio_postgres::Client;

use crate::common::{Server, rows, sqlstate, start_s3};

fn write(lake: &Path, rel: &str, body: &str) {
    let p = lake.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

async fn versions(c: &Client, table: &str) -> usize {
    rows(c, &format!("DESCRIBE HISTORY {table}")).await.len()
}

#[tokio::test]
async fn files_are_read_and_copied_from_the_lake() {
    let server = Server::start();
    let lake = server.lake.clone();
    let c = server.connect().await;

    write(
        &lake,
        "landing/orders/a.csv",
        "id,item,amount\n1,apple,1.50\n2,\"pear, green\",\n",
    );
    write(&lake, "landing/orders/b.csv", "id,item,amount\n3,plum,2\n");
    write(&lake, "landing/raw.txt", "1;x\n2;y\n");

    // Globs, header, inference widened across files (1.50 and 2).
    assert_eq!(
        rows(
            &c,
            "SELECT id, item, amount FROM read_csv('landing/orders/*.csv') ORDER BY id"
        )
        .await,
        ["1|apple|1.5", "2|pear, green|NULL", "3|plum|2"]
    );
    // A folder is every file in it; options by name; an explicit schema.
    assert_eq!(
        rows(
            &c,
            "SELECT a + 1, b FROM read_csv('landing/raw.txt', header => false, delimiter => ';', \
             columns => 'a integer, b text') ORDER BY a"
        )
        .await,
        ["2|x", "3|y"]
    );
    assert_eq!(
        rows(&c, "SELECT count(*) FROM read_csv('landing/orders')").await,
        ["3"]
    );
    // Files added later are seen by the next statement.
    write(
        &lake,
        "landing/orders/c.csv",
        "id,item,amount\n4,fig,0.25\n",
    );
    assert_eq!(
        rows(&c, "SELECT count(*) FROM read_csv('landing/orders/*.csv')").await,
        ["4"]
    );

    // JSON: newline-delimited and one array, found from the data.
    write(
        &lake,
        "landing/ev.json",
        "{\"id\": 1, \"tags\": [\"a\"]}\n{\"id\": 2, \"tags\": []}\n",
    );
    write(
        &lake,
        "landing/arr.json",
        "[{\"id\": 5, \"s\": \"x\"}, {\"id\": 6, \"s\": null}]",
    );
    assert_eq!(
        rows(
            &c,
            "SELECT id, tags FROM read_json('landing/ev.json') ORDER BY id"
        )
        .await,
        ["1|{a}", "2|{}"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT id, s FROM read_json('landing/arr.json') ORDER BY id"
        )
        .await,
        ["5|x", "6|NULL"]
    );

    // COPY FROM files: CSV through the COPY decoder (quoted empty vs NULL),
    // all files one commit.
    c.batch_execute(
        "CREATE TABLE orders (id bigint NOT NULL, item varchar(20), amount numeric(8,2))",
    )
    .await
    .unwrap();
    let n = c
        .execute(
            "COPY orders FROM 'landing/orders/*.csv' WITH (FORMAT csv, HEADER)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(versions(&c, "orders").await, 2);
    assert_eq!(
        rows(&c, "SELECT id, item, amount FROM orders ORDER BY id").await,
        [
            "1|apple|1.50",
            "2|pear, green|NULL",
            "3|plum|2.00",
            "4|fig|0.25"
        ]
    );

    // A bad value in one of the files: named by file, line and column;
    // nothing from the other files is committed.
    write(
        &lake,
        "landing/orders/d.csv",
        "id,item,amount\n5,kiwi,1\n6,lime,cheap\n",
    );
    let e = c
        .execute(
            "COPY orders FROM 'landing/orders/*.csv' WITH (FORMAT csv, HEADER)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22P02");
    let db = e.as_db_error().unwrap();
    let ctx = db.where_().unwrap_or_default();
    assert!(
        ctx.contains("d.csv") && ctx.contains("line 3") && ctx.contains("amount"),
        "{ctx}"
    );
    assert_eq!(versions(&c, "orders").await, 2);
    assert_eq!(rows(&c, "SELECT count(*) FROM orders").await, ["4"]);

    // ... unless bad rows are to be skipped.
    let n = c
        .execute(
            "COPY orders FROM 'landing/orders/d.csv' WITH (FORMAT csv, HEADER, ON_ERROR ignore)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);

    // JSON and Parquet files: matched by column name.
    c.batch_execute("CREATE TABLE ev (tags text[], id integer)")
        .await
        .unwrap();
    let n = c
        .execute("COPY ev FROM 'landing/ev.json' (FORMAT json)", &[])
        .await
        .unwrap();
    assert_eq!(n, 2);
    c.batch_execute("CREATE TABLE orders2 (id bigint, item text, amount numeric(8,2))")
        .await
        .unwrap();
    let n = c
        .execute("COPY orders2 FROM 'public/orders' (FORMAT parquet)", &[])
        .await
        .unwrap();
    assert_eq!(n, 5);
    assert_eq!(
        rows(
            &c,
            "SELECT count(*), sum(amount) FROM read_parquet('public/orders2')"
        )
        .await,
        ["5|4.75"]
    );

    // Bad input: no files, unknown option, bad path for the format.
    let e = c
        .simple_query("SELECT * FROM read_csv('landing/none/*.csv')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42704");
    let e = c
        .simple_query("SELECT * FROM read_csv('landing/raw.txt', colour => 'red')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22023");
    let e = c
        .execute("COPY orders FROM 'landing/none.csv' (FORMAT csv)", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42704");
    // The connection is still fine.
    assert_eq!(rows(&c, "SELECT count(*) FROM orders").await, ["5"]);

    // External tables: schema on read, persisted, never owning the files.
    c.batch_execute(
        "CREATE EXTERNAL TABLE ext_orders (id bigint, item text, amount text) STORED AS CSV \
         LOCATION 'landing/orders/' OPTIONS ('format.has_header' 'true');
         CREATE EXTERNAL TABLE ext_events STORED AS JSON LOCATION 'landing/ev.json'",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*), max(amount) FROM ext_orders").await,
        ["6|cheap"]
    );
    write(&lake, "landing/orders/e.csv", "id,item,amount\n7,date,3\n");
    assert_eq!(rows(&c, "SELECT count(*) FROM ext_orders").await, ["7"]);
    assert_eq!(rows(&c, "SELECT sum(id) FROM ext_events").await, ["3"]);
    let e = c
        .batch_execute("CREATE EXTERNAL TABLE ext_none STORED AS CSV LOCATION 'landing/none/'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42704");
    let e = c
        .batch_execute("CREATE EXTERNAL TABLE ext_orders STORED AS CSV LOCATION 'landing/orders/'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P07");
    c.batch_execute("DROP TABLE ext_orders, ext_events")
        .await
        .unwrap();
    assert!(lake.join("landing/orders/e.csv").exists());
    assert!(lake.join("landing/ev.json").exists());
}

#[tokio::test]
async fn postgres_query_extracts_and_loads() {
    let Ok(pg_url) = std::env::var("SLUICE_TEST_PG_URL") else {
        panic!("SLUICE_TEST_PG_URL is not set: run the suite with scripts/test.sh");
    };
    let (pg, conn) = tokio_postgres::connect(&pg_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(conn);
    pg.batch_execute(
        "DROP TABLE IF EXISTS ingest_pq_src;
         CREATE TABLE ingest_pq_src (id integer PRIMARY KEY, amount numeric(12,2), ts timestamptz,
             tags text[], doc jsonb, raw bytea, note varchar(10), ok boolean, d date, f float8);
         INSERT INTO ingest_pq_src VALUES
           (1, 12345.67, '2024-01-01 10:00:00+02', '{a,\"b c\"}', '{\"k\": [1, 2]}', '\\x00ff', 'hé', true, '2024-02-29', 0.1),
           (2, -0.05, NULL, '{}', NULL, NULL, NULL, false, NULL, NULL),
           (3, NULL, NULL, NULL, NULL, NULL, '', NULL, NULL, 'NaN');",
    )
    .await
    .unwrap();

    let server = Server::start();
    let c = server.connect().await;
    let src = format!(
        "postgres_query('{}', 'SELECT * FROM ingest_pq_src')",
        pg_url.replace('\'', "''")
    );
    c.batch_execute(&format!("CREATE TABLE pq AS SELECT * FROM {src}"))
        .await
        .unwrap();
    let ours = rows(&c, "SELECT * FROM pq ORDER BY id").await;
    // PostgreSQL's own text for the same rows (jsonb and timestamptz as
    // PostgreSQL prints them in UTC).
    pg.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    let theirs = rows(&pg, "SELECT * FROM ingest_pq_src ORDER BY id").await;
    assert_eq!(ours, theirs);
    // Upsert from the source: changed rows update, new rows insert.
    pg.batch_execute(
        "UPDATE ingest_pq_src SET note = 'changed' WHERE id = 2;
         INSERT INTO ingest_pq_src (id, note) VALUES (4, 'new');",
    )
    .await
    .unwrap();
    let n = c
        .execute(
            &format!(
                "INSERT INTO pq SELECT * FROM {src} ON CONFLICT (id) DO UPDATE SET note = excluded.note"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        rows(&c, "SELECT id, note FROM pq WHERE id IN (2, 4) ORDER BY id").await,
        ["2|changed", "4|new"]
    );

    // Unreachable server: 08001, and the password is never shown.
    let e = c
        .simple_query(
            "SELECT * FROM postgres_query('postgresql://etl:s3cretpw@127.0.0.1:1/shop', 'SELECT 1')",
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "08001");
    let text = format!("{e:?}");
    assert!(
        !text.contains("s3cretpw") && !text.contains("etl"),
        "{text}"
    );
    // A failing remote query: HV000 with the remote SQLSTATE.
    let bad = format!(
        "SELECT * FROM postgres_query('{}', 'SELECT nope FROM ingest_pq_src')",
        pg_url.replace('\'', "''")
    );
    let e = c.simple_query(&bad).await.unwrap_err();
    assert_eq!(sqlstate(&e), "HV000");
    assert!(
        e.as_db_error()
            .unwrap()
            .detail()
            .unwrap_or_default()
            .contains("42703")
    );
    // Types without a mapping say how to get them.
    let e = c
        .simple_query(&format!(
            "SELECT * FROM postgres_query('{}', 'SELECT point(1, 2) AS p')",
            pg_url.replace('\'', "''")
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    assert_eq!(rows(&c, "SELECT count(*) FROM pq").await, ["4"]);
    pg.batch_execute("DROP TABLE ingest_pq_src").await.unwrap();
}

/// A throwaway CA and a server certificate it signed for 127.0.0.1 only:
/// (ca.pem, cert.pem, key.pem).
fn test_ca(dir: &Path) -> (String, String, String) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=Sluice test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

#[tokio::test]
async fn postgres_query_over_tls_follows_sslmode() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(dir.path());
    // The remote side: a server that refuses plaintext.
    let remote = Server::start_with_args(&["--tls-cert", &cert, "--tls-key", &key]);
    let at = |host: &str, rest: &str| {
        format!(
            "host={host} port={} user=sluice dbname=sluice {rest}",
            remote.port
        )
    };
    // A named connection keeps its password in the config file.
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[postgres.\"remote\"]\nurl = \"{} password=hunter22\"\n",
            at(
                "127.0.0.1",
                &format!("sslmode=verify-full sslrootcert={ca}")
            )
        ),
    )
    .unwrap();
    let server = Server::start_with_args(&["--config", config.to_str().unwrap()]);
    let c = server.connect().await;
    let query = |conn: String| {
        format!(
            "SELECT * FROM postgres_query('{}', 'SELECT 1 AS one')",
            conn.replace('\'', "''")
        )
    };

    // Connections that must succeed: verified chain and name, verified
    // chain only, encrypted only, and the default (prefer: TLS when offered).
    for conn in [
        at(
            "127.0.0.1",
            &format!("sslmode=verify-full sslrootcert={ca}"),
        ),
        at("localhost", &format!("sslmode=verify-ca sslrootcert={ca}")),
        at("127.0.0.1", "sslmode=require"),
        at("127.0.0.1", ""),
        format!(
            "postgresql://sluice@127.0.0.1:{}/sluice?sslmode=verify-full&sslrootcert={ca}",
            remote.port
        ),
    ] {
        let got = c.simple_query(&query(conn.clone())).await;
        assert!(got.is_ok(), "{conn}: {got:?}");
        assert_eq!(rows(&c, &query(conn)).await, ["1"]);
    }
    // Connections that must fail, before any query is sent.
    for (conn, state, says) in [
        (
            at(
                "localhost",
                &format!("sslmode=verify-full sslrootcert={ca}"),
            ),
            "08001",
            "certificate",
        ),
        (
            at("127.0.0.1", "sslmode=verify-full"),
            "08001",
            "certificate",
        ),
        (at("127.0.0.1", "sslmode=disable"), "HV000", "TLS"),
        (at("127.0.0.1", "sslmode=sometimes"), "22023", "sslmode"),
        (
            at(
                "127.0.0.1",
                "sslmode=verify-ca sslrootcert=/nonexistent/ca.pem",
            ),
            "22023",
            "/nonexistent/ca.pem",
        ),
    ] {
        let e = c.simple_query(&query(conn.clone())).await.unwrap_err();
        assert_eq!(sqlstate(&e), state, "{conn}: {e:?}");
        let text = format!("{e:?}");
        assert!(text.contains(says), "{conn}: {text}");
        assert!(!text.contains("hunter22"), "{text}");
    }

    // By name: works in a view, and the password is nowhere to be seen.
    c.batch_execute(
        "CREATE VIEW remote_one AS SELECT * FROM postgres_query('remote', 'SELECT 1 AS one')",
    )
    .await
    .unwrap();
    assert_eq!(rows(&c, "SELECT one FROM remote_one").await, ["1"]);
    for sql in [
        "SELECT view_definition FROM information_schema.views WHERE table_name = 'remote_one'",
        "SELECT definition FROM pg_views WHERE viewname = 'remote_one'",
        "EXPLAIN VERBOSE SELECT * FROM remote_one",
    ] {
        let text = rows(&c, sql).await.join("\n");
        assert!(!text.contains("hunter22"), "{sql}: {text}");
    }
    let e = c
        .simple_query("SELECT * FROM postgres_query('nope', 'SELECT 1')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42704", "{e:?}");
    assert!(format!("{e:?}").contains("nope"));
}

/// A small HTTP/1.1 server on loopback serving `files` (path → body), with
/// HEAD and single byte ranges, as object stores expect.
fn serve_http(files: Vec<(&'static str, Vec<u8>)>) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let files = files.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut range: Option<(usize, Option<usize>)> = None;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        let lower = h.to_ascii_lowercase();
                        if let Some(r) = lower.strip_prefix("range: bytes=") {
                            let (a, b) = r.trim().split_once('-').unwrap();
                            range = Some((a.parse().unwrap(), b.parse().ok()));
                        }
                    }
                    let mut parts = request.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let path = parts.next().unwrap_or("").to_string();
                    let body = files
                        .iter()
                        .find(|(p, _)| *p == path)
                        .map(|(_, b)| b.clone());
                    let response = match body {
                        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                        Some(b) => {
                            let (status, slice, extra) = match range {
                                Some((a, end)) => {
                                    let e = end.map(|e| e + 1).unwrap_or(b.len()).min(b.len());
                                    (
                                        "206 Partial Content",
                                        b[a..e].to_vec(),
                                        format!(
                                            "Content-Range: bytes {a}-{}/{}\r\n",
                                            e - 1,
                                            b.len()
                                        ),
                                    )
                                }
                                None => ("200 OK", b.clone(), String::new()),
                            };
                            let mut r = format!(
                                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}\
                                 Last-Modified: Thu, 26 Nov 2026 10:00:00 GMT\r\n\r\n",
                                slice.len()
                            )
                            .into_bytes();
                            if method != "HEAD" {
                                r.extend(slice);
                            }
                            r
                        }
                    };
                    if stream.write_all(&response).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn files_are_read_over_http() {
    let port = serve_http(vec![
        (
            "/api/events.json",
            b"[{\"id\": 1, \"kind\": \"click\"}, {\"id\": 2, \"kind\": \"view\"}]".to_vec(),
        ),
        ("/exports/users.csv", b"id,name\n1,ann\n2,bob\n".to_vec()),
    ]);
    let server = Server::start();
    let c = server.connect().await;
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        rows(
            &c,
            &format!("SELECT id, kind FROM read_json('{base}/api/events.json') ORDER BY id")
        )
        .await,
        ["1|click", "2|view"]
    );
    assert_eq!(
        rows(
            &c,
            &format!("SELECT name FROM read_csv('{base}/exports/users.csv') ORDER BY id")
        )
        .await,
        ["ann", "bob"]
    );
    c.batch_execute("CREATE TABLE events (id bigint, kind text)")
        .await
        .unwrap();
    let n = c
        .execute(
            &format!("COPY events FROM '{base}/api/events.json' (FORMAT json)"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    c.batch_execute("CREATE TABLE users (id int, name text)")
        .await
        .unwrap();
    let n = c
        .execute(
            &format!("COPY users FROM '{base}/exports/users.csv' (FORMAT csv, HEADER)"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    // A missing file and an unreachable server fail cleanly.
    let e = c
        .simple_query(&format!("SELECT * FROM read_json('{base}/api/none.json')"))
        .await
        .unwrap_err();
    assert!(e.as_db_error().is_some(), "{e}");
    let e = c
        .simple_query("SELECT * FROM read_json('http://127.0.0.1:1/x.json')")
        .await
        .unwrap_err();
    assert!(e.as_db_error().is_some(), "{e}");
    assert_eq!(rows(&c, "SELECT count(*) FROM events").await, ["2"]);
}

#[tokio::test]
async fn files_are_read_and_copied_from_s3() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "landing/2026/11/a.csv",
        "id,amount\n1,2.50\n2,3\n",
    );
    write(root.path(), "landing/2026/11/b.csv", "id,amount\n3,4.25\n");
    write(
        root.path(),
        "landing/events.json",
        "{\"id\": 1, \"kind\": \"click\"}\n{\"id\": 2, \"kind\": \"view\"}\n",
    );
    let s3 = start_s3(root.path());
    let server = Server::start_with_env(&s3.env());
    let c = server.connect().await;
    assert_eq!(
        rows(
            &c,
            "SELECT count(*), sum(amount) FROM read_csv('s3://landing/2026/11/*.csv')"
        )
        .await,
        ["3|9.75"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT kind FROM read_json('s3://landing/events.json') ORDER BY id"
        )
        .await,
        ["click", "view"]
    );
    c.batch_execute("CREATE TABLE t (id int, amount numeric(6,2))")
        .await
        .unwrap();
    let n = c
        .execute(
            "COPY t FROM 's3://landing/2026/11/*.csv' WITH (FORMAT csv, HEADER)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(rows(&c, "SELECT sum(amount) FROM t").await, ["9.75"]);
    // A bucket that is not there fails cleanly.
    let e = c
        .simple_query("SELECT * FROM read_csv('s3://no-such-bucket/x.csv')")
        .await
        .unwrap_err();
    assert!(e.as_db_error().is_some(), "{e}");
    assert_eq!(rows(&c, "SELECT count(*) FROM t").await, ["3"]);
}
