//! DESCRIBE HISTORY, OPTIMIZE, VACUUM, RESTORE, ANALYZE.

use datafusion::common::ParamValues;

use super::{Described, Handler};
use crate::engine::access::Role;
use crate::engine::{Output, Session, lakehouse};
use crate::error::ResultFuture;
use crate::frontend::Stmt;

pub struct Lakehouse(pub Stmt);

impl Handler for Lakehouse {
    fn name(&self) -> String {
        match &self.0 {
            Stmt::DescribeHistory { .. } => "DESCRIBE HISTORY",
            Stmt::Optimize { .. } => "OPTIMIZE",
            Stmt::Vacuum { .. } => "VACUUM",
            Stmt::Analyze { .. } => "ANALYZE",
            _ => "RESTORE",
        }
        .into()
    }

    fn role(&self) -> Role {
        match &self.0 {
            Stmt::DescribeHistory { .. } | Stmt::Analyze { .. } => Role::Reader,
            _ => Role::Admin,
        }
    }

    fn describe<'a>(&'a self, _: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move {
            Ok(Described {
                params: vec![],
                columns: lakehouse::result_schema(&self.0),
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
                Stmt::DescribeHistory { table, limit } => {
                    lakehouse::history(session, &table, limit).await
                }
                Stmt::Optimize { table, zorder } => {
                    lakehouse::optimize(session, &table, zorder).await
                }
                Stmt::Vacuum {
                    table,
                    retain_hours,
                    dry_run,
                } => lakehouse::vacuum(session, &table, retain_hours, dry_run).await,
                Stmt::Restore { table, at } => lakehouse::restore(session, &table, at).await,
                Stmt::Analyze { tables } => lakehouse::analyze(session, &tables),
                _ => unreachable!("dispatched for lakehouse statements only"),
            }
        })
    }
}
