//! SET, SHOW, RESET, DISCARD and the transaction statements.

use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::Statement;

use super::{Described, Handler, first_words};
use crate::engine::access::Role;
use crate::engine::{Output, Session, settings};
use crate::error::{Error, ErrorKind, ResultFuture};
use crate::frontend::names::normalize_ident;

pub struct SessionStatement(pub Statement);

impl Handler for SessionStatement {
    fn name(&self) -> String {
        first_words(&self.0.to_string(), 1)
    }

    fn role(&self) -> Role {
        Role::Reader
    }

    fn describe<'a>(&'a self, _: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move {
            Ok(Described {
                params: vec![],
                columns: match &self.0 {
                    Statement::ShowVariable { variable } => Some(settings::show_schema(variable)),
                    _ => None,
                },
            })
        })
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            match self.0 {
                Statement::Set(set) => {
                    let out = settings::set(session, set)?;
                    session.sync_default_schema();
                    Ok(out)
                }
                Statement::ShowVariable { variable } => settings::show(session, &variable),
                Statement::Reset(r) => {
                    let out = settings::reset(session, r)?;
                    session.sync_default_schema();
                    Ok(out)
                }
                Statement::Discard { .. } => {
                    // As PostgreSQL's DISCARD ALL: UNLISTEN *, CLOSE ALL and
                    // DEALLOCATE ALL too.
                    session.listening().lock().expect("listen set").clear();
                    session.cursors.close_all();
                    session.prepared.clear();
                    Ok(Output::command("DISCARD ALL"))
                }
                // The statements the connection prepared by name (the
                // connection drops them from its protocol state too).
                Statement::Deallocate { name, .. } => {
                    if name.value.eq_ignore_ascii_case("all") && name.quote_style.is_none() {
                        session.prepared.clear();
                        return Ok(Output::command("DEALLOCATE ALL"));
                    }
                    let name = normalize_ident(&name);
                    if !session.prepared.remove(&name) {
                        return Err(Error::new(
                            ErrorKind::InvalidSqlStatementName,
                            format!("prepared statement \"{name}\" does not exist"),
                        ));
                    }
                    Ok(Output::command("DEALLOCATE"))
                }
                Statement::StartTransaction { .. } => {
                    session.begin();
                    Ok(Output::TransactionStart)
                }
                Statement::Commit { .. } => Ok(Output::TransactionEnd(session.end_block(false))),
                Statement::Rollback {
                    savepoint: Some(name),
                    ..
                } => {
                    session.rollback_to_savepoint(&normalize_ident(&name))?;
                    Ok(Output::command("ROLLBACK"))
                }
                Statement::Rollback { .. } => Ok(Output::TransactionEnd(session.end_block(true))),
                Statement::Savepoint { name } => {
                    session.savepoint(&normalize_ident(&name))?;
                    Ok(Output::command("SAVEPOINT"))
                }
                Statement::ReleaseSavepoint { name } => {
                    session.release_savepoint(&normalize_ident(&name))?;
                    Ok(Output::command("RELEASE"))
                }
                _ => unreachable!("dispatched for session statements only"),
            }
        })
    }
}
