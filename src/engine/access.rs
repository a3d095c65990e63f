//! What each role may run. A server with users checks every statement
//! against the role of the user who sent it; without users (loopback only)
//! and in `sluice sql` everything is allowed.
//!
//! Reading the server's own files and the network (`COPY ... FROM 'path'`,
//! `read_csv`, `read_log`, `postgres_query`, ...) also needs the
//! `server_files` privilege, as PostgreSQL's `pg_read_server_files`: an
//! admin has it, anyone else only when the users file grants it. Where
//! such reads may go is the `[files] roots` allow-list (`ingest::roots`).

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Queries, SHOW/SET, transactions, COPY TO.
    Reader,
    /// Also INSERT, UPDATE, DELETE, MERGE and COPY FROM.
    Writer,
    /// Also DDL and table maintenance.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role> {
        Ok(match s {
            "reader" => Role::Reader,
            "writer" => Role::Writer,
            "admin" => Role::Admin,
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("unknown role \"{other}\" (reader, writer or admin)"),
                ));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

/// Does `s` call a table function that reads the server's files or the
/// network (`read_csv`, `read_log`, `postgres_query`, ...)? Like COPY FROM
/// a file, that needs role writer: a reader may only read the lake's
/// tables.
pub fn reads_server_side(s: &datafusion::sql::sqlparser::ast::Statement) -> bool {
    use crate::visit::visit_relations;
    use std::ops::ControlFlow;
    let found = visit_relations(s, |name| {
        let last = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_ascii_lowercase());
        match last {
            Some(n) if crate::ingest::SERVER_SIDE_READERS.contains(&n.as_str()) => {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        }
    });
    found.is_break()
}

/// Who runs a session's statements, with what rights.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user: String,
    pub role: Role,
    /// May read server files and URLs (always true for an admin).
    pub server_files: bool,
}

impl Grant {
    pub fn new(user: &str, role: Role, server_files: bool) -> Grant {
        Grant {
            user: user.to_string(),
            role,
            server_files: server_files || role == Role::Admin,
        }
    }

    /// Fail with 42501 unless this grant may run a statement that needs
    /// role `need` (and the `server_files` privilege when `files`).
    pub fn allow(&self, need: Role, files: bool, what: &str) -> Result<()> {
        check(&self.user, self.role, need, what)?;
        if files && !self.server_files {
            return Err(Error::new(
                ErrorKind::InsufficientPrivilege,
                format!(
                    "permission denied: {what} needs the server_files privilege, which user \"{}\" \
                     does not have",
                    self.user
                ),
            )
            .with_hint(
                "an administrator grants it in the users file: sluice user add NAME --role writer \
                 --server-files",
            ));
        }
        Ok(())
    }
}

/// Fail with 42501 unless `role` may run a statement that needs `need`.
pub fn check(user: &str, role: Role, need: Role, what: &str) -> Result<()> {
    if role >= need {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InsufficientPrivilege,
        format!(
            "permission denied: user \"{user}\" has role {}, and {what} needs role {}",
            role.name(),
            need.name()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role_of(sql: &str) -> Role {
        crate::engine::handlers::handler(crate::frontend::parse(sql).unwrap().remove(0)).role()
    }

    #[test]
    fn statements_need_the_roles_they_should() {
        assert_eq!(role_of("SELECT 1"), Role::Reader);
        assert_eq!(role_of("COPY t TO STDOUT"), Role::Reader);
        assert_eq!(role_of("SET search_path = raw"), Role::Reader);
        assert_eq!(role_of("INSERT INTO t VALUES (1)"), Role::Writer);
        assert_eq!(role_of("COPY t FROM STDIN"), Role::Writer);
        assert_eq!(role_of("EXPLAIN ANALYZE DELETE FROM t"), Role::Writer);
        assert_eq!(role_of("CREATE TABLE t (a int)"), Role::Admin);
        assert_eq!(role_of("DROP TABLE t"), Role::Admin);
        assert_eq!(role_of("VACUUM t"), Role::Admin);
        assert_eq!(
            role_of("SELECT * FROM read_csv('/etc/passwd')"),
            Role::Writer
        );
        assert_eq!(
            role_of("SELECT 1 FROM t JOIN read_log('x.log', format => 'json') l ON true"),
            Role::Writer
        );
        assert_eq!(
            role_of("WITH x AS (SELECT * FROM read_text('http://h/')) SELECT * FROM x"),
            Role::Writer
        );
        assert_eq!(role_of("SELECT * FROM read_csv_notes"), Role::Reader);
        let e = check("ann", Role::Reader, role_of("DELETE FROM t"), "DELETE").unwrap_err();
        assert_eq!(e.kind, ErrorKind::InsufficientPrivilege);
    }

    fn needs_files(sql: &str) -> bool {
        crate::engine::handlers::handler(crate::frontend::parse(sql).unwrap().remove(0))
            .server_files()
    }

    #[test]
    fn server_files_is_a_privilege_of_its_own() {
        assert!(needs_files("SELECT * FROM read_csv('/etc/passwd')"));
        assert!(needs_files("COPY t FROM '/data/x.csv'"));
        assert!(needs_files(
            "INSERT INTO t SELECT * FROM read_json('http://h/x')"
        ));
        assert!(!needs_files("COPY t FROM STDIN"));
        assert!(!needs_files("SELECT * FROM t"));
        let walt = Grant::new("walt", Role::Writer, false);
        assert!(walt.allow(Role::Writer, false, "INSERT").is_ok());
        let e = walt.allow(Role::Writer, true, "COPY FROM").unwrap_err();
        assert_eq!(e.kind, ErrorKind::InsufficientPrivilege);
        assert!(e.message.contains("server_files"), "{}", e.message);
        assert!(
            Grant::new("w", Role::Writer, true)
                .allow(Role::Writer, true, "x")
                .is_ok()
        );
        assert!(
            Grant::new("a", Role::Admin, false)
                .allow(Role::Writer, true, "x")
                .is_ok()
        );
        // The privilege does not lift the role: a reader still may not write.
        let r = Grant::new("r", Role::Reader, true);
        assert!(r.allow(Role::Writer, true, "COPY FROM").is_err());
    }
}
