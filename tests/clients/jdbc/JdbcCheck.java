// pgjdbc (the driver DBeaver, Metabase and most JVM BI tools use) against a
// PostgreSQL-wire server: DatabaseMetaData, prepared statements past
// prepareThreshold (server-side prepared), batches, result types, fetch-size
// portals, errors. Expectations are PostgreSQL 15's; tests/clients/python/
// test_jdbc.py runs this against PostgreSQL and against Sluice.
//
//   java -cp .:/usr/share/java/postgresql.jar JdbcCheck JDBC_URL
//
// Prints "ok <check>" per passed check; on the first failure prints
// "FAIL <check>: <why>" and exits 1.

import java.math.BigDecimal;
import java.sql.*;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.*;

public class JdbcCheck {
    static String current = "connect";

    static void check(boolean cond, String why) {
        if (!cond) throw new AssertionError(why);
    }

    static void eq(Object want, Object got, String what) {
        if (!Objects.equals(want, got)) {
            throw new AssertionError(what + ": want <" + want + "> got <" + got + ">");
        }
    }

    static List<Map<String, Object>> rows(ResultSet rs) throws SQLException {
        List<Map<String, Object>> out = new ArrayList<>();
        ResultSetMetaData md = rs.getMetaData();
        while (rs.next()) {
            Map<String, Object> row = new LinkedHashMap<>();
            for (int i = 1; i <= md.getColumnCount(); i++) row.put(md.getColumnLabel(i).toUpperCase(), rs.getObject(i));
            out.add(row);
        }
        rs.close();
        return out;
    }

    interface Check { void run() throws Exception; }

    static void step(String name, Check c) {
        current = name;
        try {
            c.run();
            System.out.println("ok " + name);
        } catch (Throwable e) {
            System.out.println("FAIL " + name + ": " + e);
            if (e instanceof SQLException) {
                SQLException s = (SQLException) e;
                System.out.println("  SQLSTATE " + s.getSQLState());
            }
            System.exit(1);
        }
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        Properties props = new Properties();
        props.setProperty("prepareThreshold", "5");
        final Connection[] holder = new Connection[1];
        step("connect", () -> holder[0] = DriverManager.getConnection(url, props));
        Connection conn = holder[0];

        step("setup", () -> {
            try (Statement st = conn.createStatement()) {
                st.execute("CREATE SCHEMA jdbc_check");
                st.execute("CREATE TABLE jdbc_check.items (id bigint PRIMARY KEY, name varchar(20) NOT NULL,"
                        + " price numeric(12,2), created timestamptz, flag boolean, day date, note text DEFAULT 'n/a')");
                st.execute("CREATE TABLE jdbc_check.child (id bigint PRIMARY KEY,"
                        + " item_id bigint REFERENCES jdbc_check.items (id), qty integer)");
                st.execute("CREATE VIEW jdbc_check.cheap AS SELECT id, name FROM jdbc_check.items WHERE price < 10");
            }
        });

        DatabaseMetaData md = conn.getMetaData();
        step("metadata.product", () -> {
            eq("PostgreSQL", md.getDatabaseProductName(), "getDatabaseProductName");
            check(md.getDatabaseMajorVersion() >= 9, "major version " + md.getDatabaseMajorVersion());
            check(md.getIdentifierQuoteString().equals("\""), "quote string");
        });
        step("metadata.getSchemas", () -> {
            Set<String> names = new TreeSet<>();
            for (Map<String, Object> r : rows(md.getSchemas())) names.add((String) r.get("TABLE_SCHEM"));
            check(names.containsAll(List.of("jdbc_check", "public", "pg_catalog", "information_schema")), "schemas " + names);
            List<Map<String, Object>> one = rows(md.getSchemas(null, "jdbc%"));
            eq(1, one.size(), "getSchemas(null, 'jdbc%') rows");
        });
        step("metadata.getTables", () -> {
            List<String> got = new ArrayList<>();
            for (Map<String, Object> r : rows(md.getTables(null, "jdbc_check", "%", new String[] {"TABLE", "VIEW"})))
                got.add(r.get("TABLE_NAME") + ":" + r.get("TABLE_TYPE"));
            eq(List.of("child:TABLE", "items:TABLE", "cheap:VIEW"), got, "getTables(jdbc_check)");
            List<Map<String, Object>> only = rows(md.getTables(null, "jdbc_check", "it%", new String[] {"TABLE"}));
            eq(1, only.size(), "getTables(TABLE, 'it%') rows");
        });
        step("metadata.getColumns", () -> {
            List<String> got = new ArrayList<>();
            for (Map<String, Object> r : rows(md.getColumns(null, "jdbc_check", "items", "%"))) {
                got.add(r.get("COLUMN_NAME") + " " + r.get("TYPE_NAME") + " " + r.get("DATA_TYPE") + " "
                        + r.get("COLUMN_SIZE") + " " + r.get("DECIMAL_DIGITS") + " " + r.get("NULLABLE")
                        + " " + r.get("COLUMN_DEF") + " " + r.get("ORDINAL_POSITION") + " " + r.get("IS_AUTOINCREMENT"));
            }
            eq(List.of(
                    "id int8 -5 19 0 0 null 1 NO",
                    "name varchar 12 20 0 0 null 2 NO",
                    "price numeric 2 12 2 1 null 3 NO",
                    "created timestamptz 93 35 6 1 null 4 NO",
                    "flag bool -7 1 0 1 null 5 NO",
                    "day date 91 13 0 1 null 6 NO",
                    "note text 12 2147483647 0 1 'n/a'::text 7 NO"), got, "getColumns(items)");
        });
        step("metadata.getPrimaryKeys", () -> {
            List<Map<String, Object>> pk = rows(md.getPrimaryKeys(null, "jdbc_check", "items"));
            eq(1, pk.size(), "primary key columns");
            eq("id", pk.get(0).get("COLUMN_NAME"), "pk column");
            eq("items_pkey", pk.get(0).get("PK_NAME"), "pk name");
        });
        step("metadata.getImportedKeys", () -> {
            List<Map<String, Object>> fk = rows(md.getImportedKeys(null, "jdbc_check", "child"));
            eq(1, fk.size(), "imported keys");
            Map<String, Object> r = fk.get(0);
            eq("items", r.get("PKTABLE_NAME"), "PKTABLE_NAME");
            eq("id", r.get("PKCOLUMN_NAME"), "PKCOLUMN_NAME");
            eq("item_id", r.get("FKCOLUMN_NAME"), "FKCOLUMN_NAME");
            eq("child_item_id_fkey", r.get("FK_NAME"), "FK_NAME");
            eq("items_pkey", r.get("PK_NAME"), "PK_NAME");
            List<Map<String, Object>> exported = rows(md.getExportedKeys(null, "jdbc_check", "items"));
            eq(1, exported.size(), "exported keys");
        });
        step("metadata.getIndexInfo", () -> {
            List<String> got = new ArrayList<>();
            for (Map<String, Object> r : rows(md.getIndexInfo(null, "jdbc_check", "items", false, true)))
                got.add(r.get("INDEX_NAME") + " " + r.get("NON_UNIQUE") + " " + r.get("COLUMN_NAME"));
            eq(List.of("items_pkey false id"), got, "getIndexInfo(items)");
        });
        step("metadata.getTypeInfo", () -> {
            Set<String> names = new HashSet<>();
            for (Map<String, Object> r : rows(md.getTypeInfo())) names.add((String) r.get("TYPE_NAME"));
            check(names.containsAll(List.of("int8", "int4", "numeric", "text", "varchar", "bool", "date", "timestamptz", "float8", "bytea")),
                    "getTypeInfo misses types: " + names);
        });

        step("prepared.insert_past_threshold", () -> {
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO jdbc_check.items (id, name, price, created, flag, day) VALUES (?, ?, ?, ?, ?, ?)")) {
                for (int i = 1; i <= 12; i++) {
                    ps.setLong(1, i);
                    ps.setString(2, "item " + i);
                    ps.setBigDecimal(3, new BigDecimal(i).add(new BigDecimal("0.25")));
                    ps.setObject(4, OffsetDateTime.of(2026, 11, 1, 12, 0, 0, 0, ZoneOffset.UTC).plusHours(i));
                    ps.setBoolean(5, i % 2 == 0);
                    ps.setObject(6, LocalDate.of(2026, 11, i));
                    eq(1, ps.executeUpdate(), "insert " + i + " update count");
                }
            }
        });
        step("prepared.select_past_threshold", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT id, name, price, flag FROM jdbc_check.items WHERE id = ?")) {
                for (int i = 1; i <= 10; i++) {
                    ps.setLong(1, i);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next(), "row " + i + " missing (execution " + i + ")");
                        eq((long) i, rs.getLong(1), "id");
                        eq("item " + i, rs.getString(2), "name");
                        eq(new BigDecimal(i).add(new BigDecimal("0.25")), rs.getBigDecimal(3), "price");
                        eq(i % 2 == 0, rs.getBoolean(4), "flag");
                        check(!rs.next(), "one row expected");
                    }
                }
            }
        });
        step("prepared.timestamp_parameters", () -> {
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT count(*) FROM jdbc_check.items WHERE created >= ? AND day <= ?")) {
                for (int i = 0; i < 7; i++) {
                    ps.setTimestamp(1, Timestamp.from(OffsetDateTime.of(2026, 11, 1, 18, 0, 0, 0, ZoneOffset.UTC).toInstant()));
                    ps.setDate(2, java.sql.Date.valueOf("2026-11-10"));
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        eq(5L, rs.getLong(1), "items created >= 18:00 with day <= 11-10 (execution " + (i + 1) + ")");
                    }
                }
            }
        });
        step("batch.executeBatch", () -> {
            try (PreparedStatement ps = conn.prepareStatement("INSERT INTO jdbc_check.child (id, item_id, qty) VALUES (?, ?, ?)")) {
                for (int i = 1; i <= 50; i++) {
                    ps.setLong(1, i);
                    ps.setLong(2, (i % 12) + 1);
                    ps.setInt(3, i);
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                eq(50, counts.length, "batch result count");
                for (int c : counts) check(c == 1 || c == Statement.SUCCESS_NO_INFO, "batch update count " + c);
            }
            try (Statement st = conn.createStatement()) {
                st.addBatch("INSERT INTO jdbc_check.child (id, item_id, qty) VALUES (1001, 1, 1)");
                st.addBatch("INSERT INTO jdbc_check.child (id, item_id, qty) VALUES (1002, 2, 2)");
                eq(2, st.executeBatch().length, "statement batch");
                try (ResultSet rs = st.executeQuery("SELECT count(*), sum(qty) FROM jdbc_check.child")) {
                    rs.next();
                    eq(52L, rs.getLong(1), "child rows");
                    eq(1278L, rs.getLong(2), "sum(qty)");
                }
            }
        });
        step("result.types", () -> {
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery("SELECT i.id, name, price, created, flag, day, note, qty"
                         + " FROM jdbc_check.items i JOIN jdbc_check.child c ON c.item_id = i.id WHERE c.id = 1")) {
                ResultSetMetaData m = rs.getMetaData();
                List<String> types = new ArrayList<>();
                for (int i = 1; i <= m.getColumnCount(); i++) types.add(m.getColumnTypeName(i) + "/" + m.getColumnType(i));
                eq(List.of("int8/-5", "varchar/12", "numeric/2", "timestamptz/93", "bool/-7", "date/91", "text/12", "int4/4"), types, "column types");
                eq(12, m.getPrecision(3), "numeric precision");
                eq(2, m.getScale(3), "numeric scale");
                eq(20, m.getPrecision(2), "varchar precision");
                eq(ResultSetMetaData.columnNoNulls, m.isNullable(1), "id nullability");
                eq("items", m.getTableName(1), "getTableName");
                check(rs.next(), "row");
                eq(Long.class, rs.getObject(1).getClass(), "int8 class");
                eq(String.class, rs.getObject(2).getClass(), "varchar class");
                eq(BigDecimal.class, rs.getObject(3).getClass(), "numeric class");
                eq(Timestamp.class, rs.getObject(4).getClass(), "timestamptz class");
                eq(Boolean.class, rs.getObject(5).getClass(), "bool class");
                eq(java.sql.Date.class, rs.getObject(6).getClass(), "date class");
                eq(Integer.class, rs.getObject(8).getClass(), "int4 class");
                eq(OffsetDateTime.of(2026, 11, 1, 14, 0, 0, 0, ZoneOffset.UTC), rs.getObject(4, OffsetDateTime.class), "created");
            }
        });
        step("fetch_size.portal", () -> {
            conn.setAutoCommit(false);
            try (Statement st = conn.createStatement()) {
                st.setFetchSize(7);
                try (ResultSet rs = st.executeQuery("SELECT g FROM generate_series(1, 100) AS g ORDER BY g")) {
                    long sum = 0, n = 0;
                    while (rs.next()) { sum += rs.getLong(1); n++; }
                    eq(100L, n, "rows through a 7-row portal");
                    eq(5050L, sum, "sum");
                }
            }
            conn.commit();
            conn.setAutoCommit(true);
        });
        step("transaction", () -> {
            conn.setAutoCommit(false);
            try (Statement st = conn.createStatement()) {
                st.executeUpdate("INSERT INTO jdbc_check.child (id, item_id, qty) VALUES (2001, 1, 0)");
            }
            conn.commit();
            conn.setAutoCommit(true);
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM jdbc_check.child WHERE id = 2001")) {
                rs.next();
                eq(1L, rs.getLong(1), "committed row");
            }
        });
        step("errors", () -> {
            try (Statement st = conn.createStatement()) {
                try {
                    st.executeQuery("SELECT * FROM jdbc_check.nope");
                    throw new AssertionError("no error for a missing table");
                } catch (SQLException e) {
                    eq("42P01", e.getSQLState(), "SQLSTATE of a missing table");
                }
                try (PreparedStatement ps = conn.prepareStatement("INSERT INTO jdbc_check.items (id, name) VALUES (?, ?)")) {
                    ps.setLong(1, 1);
                    ps.setString(2, "dup");
                    ps.executeUpdate();
                    throw new AssertionError("no error for a duplicate key");
                } catch (SQLException e) {
                    eq("23505", e.getSQLState(), "SQLSTATE of a duplicate key");
                }
                try (ResultSet rs = st.executeQuery("SELECT 1")) {
                    check(rs.next() && rs.getInt(1) == 1, "connection unusable after errors");
                }
            }
        });
        conn.close();
        System.out.println("all checks passed");
    }
}
