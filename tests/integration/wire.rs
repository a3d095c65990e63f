//! The wire protocol as drivers use it: extended queries with typed
//! parameters, binary results, command tags, errors, timeouts.

use crate::common::{Server, canceled, sqlstate};

/// Ten billion rows: runs far longer than any test waits.
const SLOW_QUERY: &str =
    "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b";

#[tokio::test]
async fn extended_protocol_with_typed_parameters_and_binary_results() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE SCHEMA app;
         CREATE TABLE app.items (id bigint NOT NULL, name text, price numeric(10,2),
                                 qty integer, ok boolean, day date, at timestamp);",
    )
    .await
    .unwrap();
    let stmt = c
        .prepare("INSERT INTO app.items (id, name, qty, ok) VALUES ($1, $2, $3, $4)")
        .await
        .unwrap();
    assert_eq!(stmt.params().len(), 4);
    for i in 0..3i64 {
        let n = c
            .execute(
                &stmt,
                &[&i, &format!("item {i}"), &(i as i32 * 10), &(i % 2 == 0)],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    // Binary results with real types.
    let rows = c
        .query(
            "SELECT id, name, qty, ok FROM app.items WHERE id >= $1 ORDER BY id",
            &[&1i64],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let id: i64 = rows[0].get(0);
    let name: String = rows[0].get(1);
    let qty: i32 = rows[0].get(2);
    let ok: bool = rows[0].get(3);
    assert_eq!((id, name.as_str(), qty, ok), (1, "item 1", 10, false));
    // Describe reports PostgreSQL type OIDs.
    let s = c
        .prepare("SELECT id, name, qty FROM app.items")
        .await
        .unwrap();
    let types = column_types(&s);
    assert_eq!(types, vec!["int8", "text", "int4"]);
    // A parameter cast directly takes the cast's type, as in PostgreSQL.
    let s = c
        .prepare("SELECT $1::bigint + 1, $2::integer")
        .await
        .unwrap();
    let params: Vec<_> = s.params().iter().map(|t| t.name().to_string()).collect();
    assert_eq!(params, vec!["int8", "int4"]);
    let row = c.query_one(&s, &[&41i64, &4i32]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i32>(1)), (42, 4));
    // The array of `x op ANY/ALL ($n)` is an array of x's type, and a
    // NULL element makes an unmatched ANY NULL, as in PostgreSQL.
    let s = c
        .prepare("SELECT id, qty = ANY($1), id < ALL($2) FROM app.items ORDER BY id")
        .await
        .unwrap();
    let params: Vec<_> = s.params().iter().map(|t| t.name().to_string()).collect();
    assert_eq!(params, vec!["_int4", "_int8"]);
    let rows = c
        .query(&s, &[&vec![Some(10i32), None], &vec![2i64, 5]])
        .await
        .unwrap();
    let got: Vec<(i64, Option<bool>, Option<bool>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, None, Some(true)),
            (1, Some(true), Some(true)),
            (2, None, Some(false))
        ]
    );
}

/// A value's bytes as the server sent them, whatever its type.
struct Raw(Vec<u8>);

impl<'a> postgres_types::FromSql<'a> for Raw {
    fn from_sql(
        _: &postgres_types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &postgres_types::Type) -> bool {
        true
    }
}

#[tokio::test]
async fn declared_types_reach_row_descriptions_and_binary_values() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE docs (id uuid PRIMARY KEY, body jsonb, raw json, code varchar(8),
                            amount numeric(12,2));
         INSERT INTO docs VALUES ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
                                  '{\"b\": 1, \"a\": [1, 2.50]}', '{\"k\" : 1}', 'x', 1.5);",
    )
    .await
    .unwrap();
    let s = c
        .prepare("SELECT d.id, body, raw, code, amount, body -> 'a', id::text AS t FROM docs d")
        .await
        .unwrap();
    let types = column_types(&s);
    assert_eq!(
        types,
        [
            "uuid", "jsonb", "json", "varchar", "numeric", "jsonb", "text"
        ]
    );
    // Binary values in each type's own binary form.
    let row = &c.query(&s, &[]).await.unwrap()[0];
    let uuid: Raw = row.get(0);
    assert_eq!(
        uuid.0,
        [
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11
        ]
    );
    let body: Raw = row.get(1);
    assert_eq!(body.0, b"\x01{\"a\": [1, 2.50], \"b\": 1}");
    let raw: Raw = row.get(2);
    assert_eq!(raw.0, b"{\"k\" : 1}");
    // Text values, and the checks on the way in.
    let text = c
        .simple_query("SELECT id, body ->> 'b', raw -> 'k' FROM docs")
        .await
        .unwrap();
    let tokio_postgres::SimpleQueryMessage::Row(r) = &text[1] else {
        panic!("no row: {text:?}")
    };
    assert_eq!(r.get(0), Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
    assert_eq!(r.get(1), Some("1"));
    assert_eq!(r.get(2), Some("1"));
    for (bad, message) in [
        (
            "INSERT INTO docs (id) VALUES ('not-a-uuid')",
            "invalid input syntax for type uuid",
        ),
        (
            "INSERT INTO docs (id, body) VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '{')",
            "invalid input syntax for type json",
        ),
        ("SELECT '[1'::json", "invalid input syntax for type json"),
    ] {
        let e = c.batch_execute(bad).await.unwrap_err();
        assert_eq!(sqlstate(&e), "22P02", "{bad}: {e:?}");
        assert!(format!("{e:?}").contains(message), "{bad}: {e:?}");
    }
    let n: i64 = c
        .query_one("SELECT count(*) FROM docs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// character(n): described as bpchar, sent padded to n in text, binary and
/// COPY, and a padded value read back finds its row again as a parameter
/// (PostgreSQL ignores a character value's trailing spaces when comparing).
#[tokio::test]
async fn character_values_go_out_padded_and_are_found_by_the_value_read_back() {
    use futures::TryStreamExt;
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE codes (k char(4) PRIMARY KEY, n integer);
         INSERT INTO codes VALUES ('ab', 1), ('xyz ', 2), ('q      ', 3);",
    )
    .await
    .unwrap();
    let s = c
        .prepare("SELECT k, n, k::text AS t FROM codes ORDER BY n")
        .await
        .unwrap();
    assert_eq!(column_types(&s), ["bpchar", "int4", "text"]);
    let rows = c.query(&s, &[]).await.unwrap();
    let binary: Vec<Vec<u8>> = rows.iter().map(|r| r.get::<_, Raw>(0).0).collect();
    assert_eq!(
        binary,
        [b"ab  ".to_vec(), b"xyz ".to_vec(), b"q   ".to_vec()]
    );
    let texts: Vec<String> = rows.iter().map(|r| r.get(2)).collect();
    assert_eq!(texts, ["ab", "xyz", "q"]);
    let text = c
        .simple_query("SELECT k FROM codes ORDER BY n")
        .await
        .unwrap();
    assert_eq!(rows_of(&text), ["ab  ", "xyz ", "q   "]);
    // The value as read, passed back: the row it came from.
    for r in &rows {
        let k: String = r.get(0);
        let n: i32 = r.get(1);
        let found = c
            .query("SELECT n FROM codes WHERE k = $1", &[&k])
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{k:?}");
        assert_eq!(found[0].get::<_, i32>(0), n);
        let updated = c
            .execute("UPDATE codes SET n = n + 10 WHERE k = $1", &[&k])
            .await
            .unwrap();
        assert_eq!(updated, 1, "{k:?}");
    }
    // A key written with or without its spaces is the same key.
    let e = c
        .batch_execute("INSERT INTO codes VALUES ('ab ', 9)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505", "{e:?}");
    c.batch_execute(
        "INSERT INTO codes VALUES ('xyz', 9) ON CONFLICT (k) DO UPDATE SET n = excluded.n",
    )
    .await
    .unwrap();
    let copied: Vec<u8> = c
        .copy_out("COPY codes TO STDOUT")
        .await
        .unwrap()
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .unwrap();
    let mut lines: Vec<&str> = std::str::from_utf8(&copied).unwrap().lines().collect();
    lines.sort();
    assert_eq!(lines, ["ab  \t11", "q   \t13", "xyz \t9"]);
}

/// The type names of a prepared statement's result columns.
fn column_types(s: &tokio_postgres::Statement) -> Vec<String> {
    s.columns()
        .iter()
        .map(|c| c.type_().name().to_string())
        .collect()
}

fn rows_of(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect()
}

/// Result columns may repeat a name, as in PostgreSQL, and JSON results
/// built by functions are described as json/jsonb (drivers parse them).
#[tokio::test]
async fn repeated_result_names_and_built_json_are_described_as_postgres_does() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE ev (id integer, body jsonb);
         INSERT INTO ev VALUES (1, '{\"tags\": [\"a\", \"b\"]}'), (2, '{\"tags\": []}');",
    )
    .await
    .unwrap();
    let s = c
        .prepare("SELECT id, id, 1, 1, e.body, e.* FROM ev e ORDER BY id")
        .await
        .unwrap();
    let names: Vec<_> = s.columns().iter().map(|c| c.name().to_string()).collect();
    assert_eq!(
        names,
        ["id", "id", "?column?", "?column?", "body", "id", "body"]
    );
    let rows = c.query(&s, &[]).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].get::<_, i32>(5), 2);

    let s = c
        .prepare(
            "SELECT jsonb_agg(t.value ORDER BY t.value) AS tags, \
                    jsonb_build_object('n', count(*)) AS meta, \
                    json_agg(e.id ORDER BY e.id) AS ids \
             FROM ev e, jsonb_array_elements(e.body -> 'tags') AS t",
        )
        .await
        .unwrap();
    let types = column_types(&s);
    assert_eq!(types, ["jsonb", "jsonb", "json"]);
    // Binary values: jsonb with its version byte, json as its text.
    let row = c.query_one(&s, &[]).await.unwrap();
    let json = |i: usize, prefix: &[u8]| -> serde_json::Value {
        let raw: Raw = row.get(i);
        let text = raw.0.strip_prefix(prefix).expect("jsonb version byte");
        serde_json::from_slice(text).unwrap()
    };
    assert_eq!(json(0, &[1]), serde_json::json!(["a", "b"]));
    assert_eq!(json(1, &[1]), serde_json::json!({"n": 2}));
    assert_eq!(json(2, &[]), serde_json::json!([1, 1]));
}

#[tokio::test]
async fn ranks_extract_and_date_functions_are_described_as_postgres_does() {
    let server = Server::start();
    let c = server.connect().await;
    let s = c
        .prepare(
            "SELECT ntile(2) OVER (ORDER BY x), row_number() OVER (), \
                    rank() OVER (ORDER BY x), dense_rank() OVER (ORDER BY x), \
                    EXTRACT(SECOND FROM TIMESTAMP '2024-01-01 10:00:01.5'), \
                    date_part('second', TIMESTAMP '2024-01-01 10:00:01.5'), \
                    date_trunc('month', DATE '2024-02-10'), to_timestamp(0), \
                    to_char(x, 'FM000'), to_date('04/07/2026', 'DD/MM/YYYY'), \
                    INTERVAL '1 day' * x \
             FROM (VALUES (1), (2)) v(x) ORDER BY x",
        )
        .await
        .unwrap();
    let types = column_types(&s);
    assert_eq!(
        types,
        [
            "int4",
            "int8",
            "int8",
            "int8",
            "numeric",
            "float8",
            "timestamptz",
            "timestamptz",
            "text",
            "date",
            "interval"
        ]
    );
    let rows = crate::common::rows(
        &c,
        "SELECT ntile(2) OVER (ORDER BY x), EXTRACT(SECOND FROM TIMESTAMP '2024-01-01 10:00:01.5'), \
                to_char(x * 1234.5, 'FM9,999.00'), INTERVAL '1 month' * 1.5 \
         FROM (VALUES (1), (2)) v(x) ORDER BY x",
    )
    .await;
    assert_eq!(
        rows,
        [
            "1|1.500000|1,234.50|1 mon 15 days",
            "2|1.500000|2,469.00|1 mon 15 days"
        ]
    );
    // SQL PREPARE / EXECUTE, through the simple protocol.
    c.batch_execute(
        "CREATE TABLE pe (id integer, name text);
         PREPARE ins (integer, text) AS INSERT INTO pe VALUES ($1, $2);
         EXECUTE ins(1, 'a'); EXECUTE ins(1 + 1, 'b' || 'c');
         PREPARE get AS SELECT name FROM pe WHERE id = $1;",
    )
    .await
    .unwrap();
    let rows = rows_of(&c.simple_query("EXECUTE get(2)").await.unwrap());
    assert_eq!(rows, ["bc"]);
    let e = c.simple_query("EXECUTE get(1, 2)").await.unwrap_err();
    assert_eq!(e.code().unwrap().code(), "42601");
    let e = c.simple_query("PREPARE get AS SELECT 1").await.unwrap_err();
    assert_eq!(e.code().unwrap().code(), "42P05");
    // Only queries and row writes: a prepared EXECUTE would run itself.
    let e = c
        .simple_query("PREPARE again AS EXECUTE again")
        .await
        .unwrap_err();
    assert_eq!(e.code().unwrap().code(), "42601");
    let e = c
        .simple_query("PREPARE bad AS SELECT * FROM nosuch")
        .await
        .unwrap_err();
    assert_eq!(e.code().unwrap().code(), "42P01");
    c.batch_execute("DEALLOCATE get").await.unwrap();
    let e = c.simple_query("EXECUTE get(2)").await.unwrap_err();
    assert_eq!(e.code().unwrap().code(), "26000");
}

#[tokio::test]
async fn cursors_fetch_in_pieces_and_prepared_statements_are_listed() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE seq (n bigint); INSERT INTO seq SELECT * FROM generate_series(1, 10)",
    )
    .await
    .unwrap();
    let e = c
        .batch_execute("DECLARE c CURSOR FOR SELECT n FROM seq")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "25P01", "{e:?}");
    c.batch_execute("BEGIN; DECLARE c CURSOR FOR SELECT n FROM seq ORDER BY n")
        .await
        .unwrap();
    let first = c.simple_query("FETCH 3 FROM c").await.unwrap();
    assert_eq!(rows_of(&first), ["1", "2", "3"]);
    assert!(matches!(
        first.last(),
        Some(tokio_postgres::SimpleQueryMessage::CommandComplete(3))
    ));
    assert_eq!(
        rows_of(&c.simple_query("FETCH NEXT FROM c").await.unwrap()),
        ["4"]
    );
    // Over the extended protocol too, described by the cursor's columns.
    let rows = c.query("FETCH FORWARD 2 FROM c", &[]).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(),
        [5, 6]
    );
    let e = c
        .batch_execute("FETCH BACKWARD 1 FROM c")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "55000", "{e:?}");
    c.batch_execute("ROLLBACK").await.unwrap();
    let e = c
        .batch_execute("BEGIN; DECLARE d CURSOR FOR SELECT 1; DECLARE d CURSOR FOR SELECT 2")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P03", "{e:?}");
    c.batch_execute("ROLLBACK").await.unwrap();
    // A cursor without HOLD closes with its block; one WITH HOLD stays.
    c.batch_execute(
        "BEGIN; DECLARE gone CURSOR FOR SELECT n FROM seq;
         DECLARE held CURSOR WITH HOLD FOR SELECT n FROM seq WHERE n > 8 ORDER BY n; COMMIT",
    )
    .await
    .unwrap();
    let e = c.batch_execute("FETCH 1 FROM gone").await.unwrap_err();
    assert_eq!(sqlstate(&e), "34000", "{e:?}");
    assert_eq!(
        rows_of(&c.simple_query("FETCH ALL FROM held").await.unwrap()),
        ["9", "10"]
    );
    assert!(rows_of(&c.simple_query("FETCH ALL FROM held").await.unwrap()).is_empty());
    c.batch_execute("CLOSE held").await.unwrap();
    let e = c.batch_execute("CLOSE held").await.unwrap_err();
    assert_eq!(sqlstate(&e), "34000", "{e:?}");

    // Statements prepared by name are listed until closed or deallocated.
    let stmt = c.prepare("SELECT n FROM seq WHERE n = $1").await.unwrap();
    let listed = || async {
        c.query_one(
            "SELECT count(*), max(parameter_types[1]) FROM pg_prepared_statements \
             WHERE statement = 'SELECT n FROM seq WHERE n = $1'",
            &[],
        )
        .await
        .unwrap()
    };
    let row = listed().await;
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, String>(1), "int8");
    drop(stmt); // tokio-postgres closes it
    assert_eq!(listed().await.get::<_, i64>(0), 0);
    let e = c
        .batch_execute("DEALLOCATE nothing_here")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "26000", "{e:?}");
    c.batch_execute("DEALLOCATE ALL").await.unwrap();
}

#[tokio::test]
async fn command_tags_report_affected_rows() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE t (a integer, b text)")
        .await
        .unwrap();
    assert_eq!(
        c.execute("INSERT INTO t VALUES (1,'x'),(2,'y'),(3,'z')", &[])
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        c.execute("UPDATE t SET b = 'w' WHERE a >= 2", &[])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        c.execute("DELETE FROM t WHERE a IN (SELECT 1)", &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        c.execute("DELETE FROM t WHERE a = 42", &[]).await.unwrap(),
        0
    );
    // Simple protocol, several statements in one message.
    let msgs = c
        .simple_query("INSERT INTO t VALUES (9, 'q'); SELECT count(*) FROM t; DELETE FROM t")
        .await
        .unwrap();
    let tags: Vec<String> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(tags, vec!["1", "1", "3"]);
}

#[tokio::test]
async fn errors_carry_sqlstate_and_leave_the_connection_usable() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE t (a integer NOT NULL); \
         CREATE TABLE k (a int, b text, PRIMARY KEY (a, b))",
    )
    .await
    .unwrap();
    let cases = [
        ("SELEC 1", "42601"),
        // A cast the optimizer folds is still the input error it is.
        (
            "INSERT INTO t SELECT extract(year FROM 'bad'::timestamptz)::int",
            "22007",
        ),
        // The rows RETURNING reads back are found by their key.
        (
            "INSERT INTO k VALUES (1, 'x') ON CONFLICT (a, b) DO UPDATE SET b = 'y' RETURNING *",
            "0A000",
        ),
        ("SELECT * FROM nope", "42P01"),
        ("SELECT zz FROM t", "42703"),
        ("CREATE TABLE t (b int)", "42P07"),
        ("SELECT 1/0", "22012"),
        ("SELECT 'abc'::integer", "22P02"),
        ("INSERT INTO t VALUES (NULL)", "23502"),
        ("INSERT INTO t VALUES ('x')", "22P02"),
        ("CREATE SCHEMA public", "42P06"),
        (
            "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
            "0A000",
        ),
        // Settings Sluice would accept and then ignore are refused: times
        // are computed and shown in UTC, dates as ISO.
        ("SET TIME ZONE 'America/New_York'", "0A000"),
        ("SET timezone = 'Nowhere/Atlantis'", "22023"),
        ("SET DateStyle = 'German'", "0A000"),
        ("SET IntervalStyle = 'iso_8601'", "0A000"),
        // A LATERAL subquery limited per outer row whose correlation is
        // not an equality is not planned yet.
        (
            "SELECT * FROM t x LEFT JOIN LATERAL \
             (SELECT a FROM t y WHERE y.a > x.a ORDER BY a LIMIT 1) s ON true",
            "0A000",
        ),
    ];
    for (sql, code) in cases {
        let e = c.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), code, "{sql}: {e}");
    }
    // UTC in any spelling is taken, and the session kept UTC throughout.
    c.batch_execute("SET TIME ZONE 'Etc/UTC'; SET timezone = 'GMT'; SET DateStyle = 'ISO, MDY'")
        .await
        .unwrap();
    let tz: String = c.query_one("SHOW TimeZone", &[]).await.unwrap().get(0);
    assert_eq!(tz, "UTC");
    // Nothing was written by the failed inserts.
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let history = c.simple_query("DESCRIBE HISTORY t").await.unwrap();
    let versions = history
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(versions, 1, "a failed statement must not commit");
}

#[tokio::test]
async fn cancel_stops_a_statement_whose_rows_are_being_computed() {
    let server = Server::start();
    let c = server.connect().await;
    // A CancelRequest on its own connection, as psql's Ctrl-C sends it;
    // the cross join runs while its one row is being produced. The client
    // does not wait for a CancelRequest to be handled, so one sent as the
    // statement ends may reach the next statement, as in PostgreSQL; here
    // each waits for the server to close the request's connection, which
    // it does once the request is handled: none is on its way afterwards.
    let token = c.cancel_token();
    let port = server.port;
    let e = canceled(
        async { c.simple_query(SLOW_QUERY).await.map(|_| ()) },
        || async {
            use tokio::io::AsyncReadExt;
            let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            token
                .cancel_query_raw(&mut socket, tokio_postgres::NoTls)
                .await
                .unwrap();
            let _ = socket.read_to_end(&mut Vec::new()).await;
        },
    )
    .await;
    assert_eq!(sqlstate(&e), "57014", "{e}");
    let message = e.as_db_error().map(|d| d.message().to_string());
    assert_eq!(
        message.as_deref(),
        Some("canceling statement due to user request")
    );
    let n: i32 = c.query_one("SELECT 41 + 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 42);

    // pg_cancel_backend from another connection, of a statement sent with
    // the extended protocol inside a transaction block: the block is
    // aborted, as in PostgreSQL, and ROLLBACK ends it.
    let admin = server.connect().await;
    let pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    c.batch_execute("BEGIN").await.unwrap();
    let e = canceled(
        async { c.query(SLOW_QUERY, &[]).await.map(|_| ()) },
        || async {
            admin
                .query_one(&format!("SELECT pg_cancel_backend({pid})"), &[])
                .await
                .unwrap();
        },
    )
    .await;
    assert_eq!(sqlstate(&e), "57014", "{e}");
    let e = c.query_one("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02", "{e}");
    c.batch_execute("ROLLBACK").await.unwrap();
    let n: i32 = c.query_one("SELECT 41 + 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 42);
}

#[tokio::test]
async fn union_all_gives_its_branches_in_order() {
    // PostgreSQL's Append reads its branches one after the other; the
    // branches run in parallel here, and their rows used to interleave.
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE ua (x int); INSERT INTO ua VALUES (1), (2), (3); \
         CREATE TABLE ub (x int); INSERT INTO ub VALUES (10), (20);",
    )
    .await
    .unwrap();
    for _ in 0..20 {
        let rows = c
            .query(
                "SELECT x FROM ua UNION ALL SELECT x * 2 FROM ub UNION ALL SELECT 99",
                &[],
            )
            .await
            .unwrap();
        let xs: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(xs, [1, 2, 3, 20, 40, 99]);
        let rows = c.simple_query("SELECT 1 UNION ALL SELECT 2").await.unwrap();
        let xs: Vec<&str> = rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0),
                _ => None,
            })
            .collect();
        assert_eq!(xs, ["1", "2"]);
    }
}

#[tokio::test]
async fn statement_timeout_cancels_with_57014() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute("SET statement_timeout = '200ms'")
        .await
        .unwrap();
    let e = c.simple_query(SLOW_QUERY).await.unwrap_err();
    assert_eq!(sqlstate(&e), "57014", "{e}");
    // pg_sleep waits asynchronously: the timeout ends it.
    let e = c.simple_query("SELECT pg_sleep(60)").await.unwrap_err();
    assert_eq!(sqlstate(&e), "57014", "{e}");
    let v: String = c
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "200ms");
    c.batch_execute("SET statement_timeout = 0").await.unwrap();
    let n: i32 = c.query_one("SELECT 41 + 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 42);

    // COPY FROM STDIN: the data is part of the statement. Data that comes
    // after the timeout fails the COPY, and nothing of it is committed.
    use futures::SinkExt;
    c.batch_execute("CREATE TABLE slow_copy (a int); SET statement_timeout = '300ms'")
        .await
        .unwrap();
    let mut sink = Box::pin(
        c.copy_in::<_, bytes::Bytes>("COPY slow_copy FROM STDIN")
            .await
            .unwrap(),
    );
    sink.send(bytes::Bytes::from_static(b"1\n2\n"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let sent = sink.send(bytes::Bytes::from_static(b"3\n")).await;
    let e = match sent {
        Err(e) => e,
        Ok(()) => sink.as_mut().finish().await.unwrap_err(),
    };
    assert_eq!(sqlstate(&e), "57014", "{e}");
    drop(sink);
    c.batch_execute("SET statement_timeout = 0").await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM slow_copy", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn idle_in_transaction_timeout_closes_the_connection() {
    let server = Server::start();
    let setup = server.connect().await;
    setup
        .batch_execute("CREATE TABLE idle_t (a int)")
        .await
        .unwrap();
    let (c, conn) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    c.batch_execute("SET idle_in_transaction_session_timeout = '400ms'")
        .await
        .unwrap();
    // Idle outside a transaction block: no limit.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    c.batch_execute("BEGIN; INSERT INTO idle_t VALUES (1)")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    let e = conn.await.unwrap().unwrap_err();
    assert_eq!(sqlstate(&e), "25P03", "{e:?}");
    assert!(c.batch_execute("COMMIT").await.is_err());
    let n: i64 = setup
        .query_one("SELECT count(*) FROM idle_t", &[])
        .await
        .unwrap()
        .get(0);
    // Each statement committed when it returned (docs/sql.md).
    assert_eq!(n, 1);
    let n: i64 = setup.query_one("SELECT 1::int8", &[]).await.unwrap().get(0);
    assert_eq!(n, 1, "the server serves the others");
}

#[tokio::test]
async fn transaction_block_reports_aborted_state() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE t (a integer); BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let e = c.simple_query("SELECT * FROM missing").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42P01");
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n, 1,
        "statements commit on their own until real transactions exist"
    );
}

#[tokio::test]
async fn savepoints_recover_an_aborted_block_as_drivers_use_them() {
    let server = Server::start();
    let mut c = server.connect().await;
    c.batch_execute("CREATE TABLE t (a integer)").await.unwrap();
    // Outside a block, as PostgreSQL: 25P01.
    for sql in [
        "SAVEPOINT a",
        "RELEASE SAVEPOINT a",
        "ROLLBACK TO SAVEPOINT a",
    ] {
        let e = c.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "25P01", "{sql}");
    }
    c.batch_execute("BEGIN; SAVEPOINT one").await.unwrap();
    let e = c.simple_query("RELEASE SAVEPOINT two").await.unwrap_err();
    assert_eq!(sqlstate(&e), "3B001");
    assert_eq!(
        e.as_db_error().unwrap().message(),
        "savepoint \"two\" does not exist"
    );
    // The unknown name aborted the block; ROLLBACK TO brings it back.
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    let e = c.simple_query("RELEASE SAVEPOINT one").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    c.batch_execute("ROLLBACK TO SAVEPOINT one; INSERT INTO t VALUES (1); RELEASE one; COMMIT")
        .await
        .unwrap();

    // tokio-postgres' own savepoints (SAVEPOINT, ROLLBACK TO, RELEASE over
    // the extended protocol for the statements in between).
    let mut tx = c.transaction().await.unwrap();
    {
        let sp = tx.savepoint("sp").await.unwrap();
        let e = sp.query("SELECT * FROM missing", &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42P01");
        sp.rollback().await.unwrap();
    }
    tx.execute("INSERT INTO t VALUES (2)", &[]).await.unwrap();
    tx.commit().await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);

    // psycopg 3 reads the state ReadyForQuery reports: after the inner
    // block's error is rolled back to its savepoint, the outer block is
    // usable ('INTRANS'), not aborted. SQLAlchemy's psycopg dialect opens
    // and rolls back a savepoint on its first connection.
    let script = r#"
import sys, json, psycopg, sqlalchemy as sa
out = {}
with psycopg.connect(sys.argv[1]) as conn:
    with conn.transaction():
        conn.execute("INSERT INTO t VALUES (3)")
        try:
            with conn.transaction():
                conn.execute("SELECT * FROM missing")
        except psycopg.errors.UndefinedTable:
            pass
        out["after_inner"] = conn.info.transaction_status.name
        conn.execute("INSERT INTO t VALUES (4)")
    out["after_outer"] = conn.info.transaction_status.name
    out["count"] = conn.execute("SELECT count(*) FROM t").fetchone()[0]
url = "postgresql+psycopg://" + sys.argv[1].split("://", 1)[1]
eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
with eng.connect() as sc:
    out["sqlalchemy"] = sc.execute(sa.text("SELECT 1")).scalar()
print(json.dumps(out))
"#;
    let out = std::process::Command::new(crate::common::python())
        .args(["-c", script])
        .arg(format!(
            "postgresql://sluice@127.0.0.1:{}/sluice",
            server.port
        ))
        .output()
        .expect("run the test virtualenv's python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"after_inner": "INTRANS", "after_outer": "IDLE", "count": 4, "sqlalchemy": 1})
    );
}

#[tokio::test]
async fn a_dropped_client_does_not_hurt_the_server() {
    let mut server = Server::start();
    {
        let c = server.connect().await;
        c.batch_execute("CREATE TABLE t (a bigint)").await.unwrap();
        let slow = tokio::spawn(async move {
            let _ = c.simple_query(SLOW_QUERY).await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        slow.abort();
    }
    let c2 = server.connect().await;
    assert_eq!(
        c2.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap(),
        1
    );
    assert!(server.is_running());
    // Garbage on a raw socket is answered or dropped, never fatal.
    use tokio::io::AsyncWriteExt;
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let _ = raw.write_all(b"\x00\x00\x00\x08garbage!").await;
    drop(raw);
    let n: i64 = c2
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert!(server.is_running());
}

#[tokio::test]
async fn a_write_on_one_connection_is_visible_on_the_next_statement_of_another() {
    let server = Server::start();
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE t (a integer)").await.unwrap();
    for i in 0..3 {
        a.execute("INSERT INTO t VALUES ($1)", &[&i]).await.unwrap();
        let n: i64 = b
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, i as i64 + 1);
    }
}

#[tokio::test]
async fn returning_works_over_the_extended_protocol() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE t (id bigint NOT NULL, v text);
         INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');
         CREATE TABLE keep (id bigint); INSERT INTO keep VALUES (1);",
    )
    .await
    .unwrap();
    // Describe must announce the RETURNING columns, or the driver rejects the rows.
    let rows = c
        .query(
            "UPDATE t SET v = upper(v) WHERE id >= $1 RETURNING id, v",
            &[&2i64],
        )
        .await
        .unwrap();
    let mut got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    got.sort();
    assert_eq!(got, vec![(2, "B".into()), (3, "C".into())]);
    let rows = c
        .query(
            "DELETE FROM t WHERE id NOT IN (SELECT id FROM keep) RETURNING id",
            &[],
        )
        .await
        .unwrap();
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort();
    assert_eq!(ids, vec![2, 3]);
    let left: Vec<(i64, String)> = c
        .query("SELECT id, v FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(left, vec![(1, "a".into())]);
    // NOT NULL holds on the rewrite path too; nothing is committed.
    let e = c
        .execute(
            "UPDATE t SET id = NULL WHERE id IN (SELECT id FROM keep)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23502", "{e}");
}

#[tokio::test]
async fn a_failed_create_table_as_leaves_no_table_and_no_files() {
    let server = Server::start();
    let c = server.connect().await;
    let e = c
        .batch_execute(
            "CREATE TABLE t AS SELECT 1 / (x - 500) AS y FROM generate_series(1, 1000) g(x)",
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22012", "{e}");
    assert!(
        !server.lake.join("public/t").exists(),
        "no files left behind"
    );
    c.batch_execute("CREATE TABLE t AS SELECT 1 AS y")
        .await
        .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// A join whose build side holds a few keys filters the other table's
/// Parquet rows while decoding them, and still answers exactly.
#[tokio::test]
async fn a_join_on_few_keys_filters_the_probe_scan_while_decoding() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE fact AS SELECT v % 5000 AS k, v AS x FROM generate_series(1, 200000) AS t(v);
         CREATE TABLE dim AS SELECT v AS k, 'n' || v AS name FROM generate_series(1, 5000) AS t(v);",
    )
    .await
    .unwrap();
    let query = "SELECT count(*), sum(f.x) FROM fact f JOIN dim d ON f.k = d.k \
                 WHERE d.name IN ('n7', 'n42')";
    let row = c.query_one(query, &[]).await.unwrap();
    // k = 7 and k = 42 each match 40 rows: x = k + 5000 j, j = 0..39.
    assert_eq!(row.get::<_, i64>(0), 80);
    assert_eq!(row.get::<_, i64>(1), 7_801_960);

    let fact_scan = crate::common::analyzed_scan(&c, query, "fact").await;
    // The rows the page index keeps are decoded and filtered: 80 are left.
    let metric = |name| crate::common::scan_metric(&fact_scan, name);
    assert_eq!(
        (
            metric("pushdown_rows_matched").as_str(),
            metric("pushdown_rows_pruned") != "0"
        ),
        ("80", true),
        "the scan of fact did not filter while decoding:\n{fact_scan}"
    );
}

/// A lookup by primary key reads one small page of the key column and
/// decodes the other columns for the one row it keeps; a filter on a
/// column that is no key is applied after decoding, as before.
#[tokio::test]
async fn a_lookup_by_key_filters_its_scan_while_decoding() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE kv (id bigint PRIMARY KEY, v text);
         INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 50000) AS t(g);",
    )
    .await
    .unwrap();
    // The file: pages of at most 4,096 rows, and no dictionary for the key
    // (its values never repeat) that a lookup would have to load whole.
    let file = std::fs::read_dir(server.lake.join("public/kv"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .expect("a data file");
    let reader =
        deltalake::parquet::file::serialized_reader::SerializedFileReader::new_with_options(
            std::fs::File::open(&file).unwrap(),
            deltalake::parquet::file::serialized_reader::ReadOptionsBuilder::new()
                .with_page_index()
                .build(),
        )
        .unwrap();
    use deltalake::parquet::file::reader::FileReader;
    let meta = reader.metadata();
    let group = meta.row_group(0);
    assert!(
        group.column(0).dictionary_page_offset().is_none(),
        "id has a dictionary"
    );
    assert!(
        group.column(1).dictionary_page_offset().is_some(),
        "v lost its dictionary"
    );
    let pages = &meta.offset_index().expect("an offset index")[0][0];
    let first_rows: Vec<i64> = pages
        .page_locations()
        .iter()
        .map(|p| p.first_row_index)
        .collect();
    assert!(
        first_rows.windows(2).all(|w| w[1] - w[0] <= 4096),
        "pages longer than 4,096 rows: {first_rows:?}"
    );
    let lookup = c.prepare("SELECT v FROM kv WHERE id = $1").await.unwrap();
    for id in [1i64, 4097, 31234, 50000] {
        let rows = c.query(&lookup, &[&id]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, String>(0), format!("v{id}"));
    }
    assert!(c.query(&lookup, &[&50001i64]).await.unwrap().is_empty());

    use crate::common::{analyzed_scan, scan_metric as metric};
    let by_key = analyzed_scan(&c, "SELECT v FROM kv WHERE id = 31234", "kv").await;
    assert_eq!(
        metric(&by_key, "pushdown_rows_matched"),
        "1",
        "the lookup did not filter while decoding:\n{by_key}"
    );
    // The page index kept one page of at most 4,096 rows.
    let pruned = metric(&by_key, "pushdown_rows_pruned");
    assert!(
        !pruned.contains('K') || pruned.trim_end_matches(" K").parse::<f64>().unwrap() < 4.1,
        "the lookup read more than one page:\n{by_key}"
    );
    let by_value = analyzed_scan(&c, "SELECT id FROM kv WHERE v = 'v31234'", "kv").await;
    assert_eq!(
        metric(&by_value, "pushdown_rows_matched"),
        "0",
        "a filter on a column that is no key filtered while decoding:\n{by_value}"
    );
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_with_53300() {
    let s = Server::start_with_env(&[("SLUICE_MAX_CONNECTIONS", "2".to_string())]);
    let a = s.connect().await;
    let b = s.connect().await;
    let e = match tokio_postgres::connect(&s.url(), tokio_postgres::NoTls).await {
        Ok(_) => panic!("a third connection was accepted"),
        Err(e) => e,
    };
    assert_eq!(sqlstate(&e), "53300", "{e:?}");
    // The two served go on; once one closes, a new client gets in.
    assert_eq!(crate::common::rows(&a, "SELECT 1").await, ["1"]);
    drop(b);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio_postgres::connect(&s.url(), tokio_postgres::NoTls).await {
            Ok((c, conn)) => {
                tokio::spawn(conn);
                assert_eq!(crate::common::rows(&c, "SELECT 2").await, ["2"]);
                break;
            }
            Err(e) => {
                assert_eq!(sqlstate(&e), "53300", "{e:?}");
                assert!(std::time::Instant::now() < deadline, "never let in");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Connect with an application name, as tools do.
async fn connect_as(server: &Server, app: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(
        &format!("{} application_name={app}", server.url()),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    c
}

/// The rows of pg_stat_activity for connections named `app`:
/// (pid, state, query).
async fn activity_of(c: &tokio_postgres::Client, app: &str) -> Vec<(i32, String, String)> {
    c.query(
        "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = $1",
        &[&app],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

#[tokio::test]
async fn pg_stat_activity_shows_connections_and_signals_stop_them() {
    let server = Server::start();
    let admin = connect_as(&server, "watcher").await;
    let worker = connect_as(&server, "worker").await;
    let pid: i32 = worker
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    // Idle, with its last statement; the watcher sees itself active.
    assert_eq!(
        activity_of(&admin, "worker").await,
        [(
            pid,
            "idle".to_string(),
            "SELECT pg_backend_pid()".to_string()
        )]
    );
    let me = activity_of(&admin, "watcher").await;
    assert_eq!(me.len(), 1);
    assert_eq!(me[0].1, "active");
    assert!(me[0].2.contains("pg_stat_activity"), "{me:?}");
    let (port, start): (Option<i32>, bool) = {
        let r = admin
            .query_one(
                "SELECT client_port, backend_start <= now() FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(port.is_some_and(|p| p > 0) && start);

    // Cancel: nothing is running there, so nothing happens but true.
    let ok: bool = admin
        .query_one(&format!("SELECT pg_cancel_backend({pid})"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(ok);
    // Not ended: the connection goes on.
    let n: i64 = worker
        .query_one("SELECT 7::bigint", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 7);

    // No such backend: false, as PostgreSQL (which also warns).
    let ok: bool = admin
        .query_one("SELECT pg_cancel_backend(424242)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!ok);

    // Terminate: the connection ends with 57P01 and leaves the view.
    let ok: bool = admin
        .query_one(&format!("SELECT pg_terminate_backend({pid})"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(ok);
    let mut gone = false;
    for _ in 0..200 {
        if activity_of(&admin, "worker").await.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(gone, "a terminated connection is still listed");
    let e = worker.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        e.is_closed() || e.as_db_error().is_some_and(|d| d.code().code() == "57P01"),
        "{e:?}"
    );
    // Closed connections leave too; the watcher's is still there.
    assert_eq!(activity_of(&admin, "watcher").await.len(), 1);
}

#[tokio::test]
async fn a_temporary_table_is_dropped_when_its_session_ends() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TEMP TABLE scratch AS SELECT 1 AS x; \
         CREATE TEMPORARY TABLE scratch2 (a integer); INSERT INTO scratch2 VALUES (5)",
    )
    .await
    .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM scratch, scratch2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    drop(c);
    // The session ends when the server sees the connection close.
    let other = server.connect().await;
    let mut left = -1i64;
    for _ in 0..50 {
        left = other
            .query_one(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_name IN ('scratch', 'scratch2')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "temporary tables outlived their session");
}
