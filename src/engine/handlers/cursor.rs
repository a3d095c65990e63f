//! SQL cursors: `DECLARE name [BINARY] [NO SCROLL] CURSOR [WITH[OUT] HOLD]
//! FOR query`, `FETCH [FORWARD] [n | ALL | NEXT] [FROM | IN] name`,
//! `CLOSE name | ALL`. A cursor keeps its query's result stream in the
//! session and hands out the next rows on each FETCH, so a client reads a
//! large result in pieces (psycopg's named cursors) with only the rows of
//! one FETCH in memory. Cursors only move forward.

use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::{
    CloseCursor, Declare, FetchDirection, Query as SqlQuery, Statement, Value,
};

use super::{Described, Handler};
use crate::engine::access::Role;
use crate::engine::{Output, Session};
use crate::error::{Error, ErrorKind, Result, ResultFuture};

pub struct DeclareCursor {
    name: String,
    hold: bool,
    query: Box<SqlQuery>,
}

impl DeclareCursor {
    pub fn new(d: &Declare) -> Result<DeclareCursor> {
        let (Some(query), [name]) = (&d.for_query, d.names.as_slice()) else {
            return Err(Error::not_supported(
                "DECLARE other than DECLARE name CURSOR FOR query",
            ));
        };
        if d.scroll == Some(true) {
            return Err(Error::not_supported(
                "SCROLL cursors (cursors move forward only)",
            ));
        }
        Ok(DeclareCursor {
            name: crate::frontend::names::normalize_ident(name),
            hold: d.hold == Some(true),
            query: query.clone(),
        })
    }

    fn query(&self) -> Box<dyn Handler> {
        super::sql_handler(Statement::Query(self.query.clone()))
    }
}

impl Handler for DeclareCursor {
    fn name(&self) -> String {
        "DECLARE CURSOR".into()
    }

    fn role(&self) -> Role {
        Role::Reader
    }

    fn describe<'a>(&'a self, session: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move {
            let query = self.query().describe(session).await?;
            Ok(Described {
                params: query.params,
                columns: None,
            })
        })
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        params: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            if !self.hold && !session.in_transaction_block() {
                return Err(Error::new(
                    ErrorKind::NoActiveTransaction,
                    "DECLARE CURSOR can only be used in transaction blocks",
                ));
            }
            if session.cursors.contains(&self.name) {
                return Err(Error::new(
                    ErrorKind::DuplicateCursor,
                    format!("cursor \"{}\" already exists", self.name),
                ));
            }
            let (name, hold) = (self.name.clone(), self.hold);
            match self.query().execute(session, params).await? {
                Output::Rows { schema, stream, .. } => {
                    session.cursors.open(name, schema, stream, hold);
                    Ok(Output::command("DECLARE CURSOR"))
                }
                _ => Err(Error::internal("a cursor's query returned no rows")),
            }
        })
    }
}

/// How many rows a FETCH asks for: `None` for all that are left.
fn fetch_count(direction: &FetchDirection) -> Result<Option<usize>> {
    let number = |v: &Value| -> Result<i64> {
        match v {
            Value::Number(n, _) => n
                .parse()
                .map_err(|_| Error::syntax(format!("invalid FETCH count {n}"))),
            other => Err(Error::syntax(format!("invalid FETCH count {other}"))),
        }
    };
    let backward = || {
        Error::new(
            ErrorKind::ObjectNotInPrerequisiteState,
            "cursor can only scan forward",
        )
        .with_hint("Declare it with SCROLL option to enable backward scan.")
    };
    Ok(match direction {
        FetchDirection::Next => Some(1),
        FetchDirection::All | FetchDirection::ForwardAll => None,
        FetchDirection::Forward { limit: None } => Some(1),
        FetchDirection::Count { limit } | FetchDirection::Forward { limit: Some(limit) } => {
            let n = number(&limit.value)?;
            if n < 0 {
                return Err(backward());
            }
            Some(n as usize)
        }
        FetchDirection::Relative { limit } if number(&limit.value)? >= 0 => {
            Some(number(&limit.value)? as usize)
        }
        _ => return Err(backward()),
    })
}

pub struct Fetch {
    name: String,
    count: Result<Option<usize>>,
}

impl Fetch {
    pub fn new(name: &datafusion::sql::sqlparser::ast::Ident, direction: &FetchDirection) -> Self {
        Fetch {
            name: crate::frontend::names::normalize_ident(name),
            count: fetch_count(direction),
        }
    }
}

fn no_cursor(name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidCursorName,
        format!("cursor \"{name}\" does not exist"),
    )
}

impl Handler for Fetch {
    fn name(&self) -> String {
        "FETCH".into()
    }

    fn role(&self) -> Role {
        Role::Reader
    }

    fn fresh_catalog(&self) -> bool {
        false
    }

    fn describe<'a>(&'a self, session: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move {
            let schema = session
                .cursors
                .schema(&self.name)
                .ok_or_else(|| no_cursor(&self.name))?;
            Ok(Described {
                params: vec![],
                columns: Some(schema),
            })
        })
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            let count = self.count?;
            let (schema, stream) = session
                .cursors
                .fetch(&self.name, count)
                .await
                .ok_or_else(|| no_cursor(&self.name))??;
            Ok(Output::Rows {
                schema,
                stream,
                tag: "FETCH",
            })
        })
    }
}

pub struct Close(pub CloseCursor);

impl Handler for Close {
    fn name(&self) -> String {
        "CLOSE CURSOR".into()
    }

    fn role(&self) -> Role {
        Role::Reader
    }

    fn fresh_catalog(&self) -> bool {
        false
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            match &self.0 {
                CloseCursor::All => session.cursors.close_all(),
                CloseCursor::Specific { name } => {
                    let name = crate::frontend::names::normalize_ident(name);
                    if !session.cursors.close(&name) {
                        return Err(no_cursor(&name));
                    }
                }
            }
            Ok(Output::command(match &self.0 {
                CloseCursor::All => "CLOSE CURSOR ALL",
                CloseCursor::Specific { .. } => "CLOSE CURSOR",
            }))
        })
    }
}
