//! What each role may run. A server with users checks every statement
//! against the role of the user who sent it; without users (loopback only)
//! and in `sluice sql` everything is allowed.

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
    use datafusion::sql::sqlparser::ast::visit_relations;
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
}
