//! One handler per statement kind: the role it needs, what it returns (for
//! Describe, before it runs), and how it runs.
//!
//! ```text
//!  Stmt ──handler()──▶ Box<dyn Handler> ──role()──▶ access check
//!                                        ├─describe()─▶ parameter types, result columns
//!                                        └─execute()──▶ Output
//! ```
//!
//! A new statement is its handler (a file here, or a type in one) and one
//! line in [`handler`].

mod cursor;
mod ddl;
mod features;
mod lakehouse;
mod matview;
mod orchestration;
mod prepare;
mod query;
mod session;
mod write;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::Statement;

use super::access::Role;
use super::{Output, Session};
use crate::error::{Error, ResultFuture};
use crate::frontend::Stmt;

/// What Describe reports of a statement before it runs.
#[derive(Debug, Clone, Default)]
pub struct Described {
    /// Parameter types, `$1` first (`None`: unknown, sent as text).
    pub params: Vec<Option<DataType>>,
    /// The columns it returns, when it returns rows.
    pub columns: Option<SchemaRef>,
}

pub trait Handler: Send + Sync {
    /// The statement's name in messages (`DROP TABLE`).
    fn name(&self) -> String;
    /// The least role that may run it.
    fn role(&self) -> Role;
    /// Does it read the server's files or the network, which needs the
    /// `server_files` privilege on top of the role?
    fn server_files(&self) -> bool {
        false
    }
    /// Does it need the newest catalog before it runs? An online lookup
    /// reads the store's own (kept up by its poller), and plans nothing.
    fn fresh_catalog(&self) -> bool {
        true
    }
    /// Its parameters and result columns, without running it.
    fn describe<'a>(&'a self, _session: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move { Ok(Described::default()) })
    }
    /// Run it. `params` are the extended protocol's parameter values.
    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        params: &'a ParamValues,
    ) -> ResultFuture<'a, Output>;
}

/// The handler of `stmt`: the one place statements are dispatched.
pub fn handler(stmt: Stmt) -> Box<dyn Handler> {
    match stmt {
        Stmt::Sql(s) => sql_handler(*s),
        Stmt::InsertOverriding { insert, overriding } => {
            Box::new(write::Dml(*insert, Some(overriding)))
        }
        Stmt::CreateTable { ct, expectations } => Box::new(ddl::CreateTable(ct, expectations)),
        Stmt::AddExpectation { table, expectation } => {
            Box::new(ddl::AddExpectation(table, expectation))
        }
        Stmt::CreateExternalTable(t) => Box::new(ddl::CreateExternal(t)),
        Stmt::Merge(m) => Box::new(write::Merge(m)),
        Stmt::Copy(c) => Box::new(write::Copy(c)),
        Stmt::CreateMaterializedView {
            cv,
            partition_by,
            expectations,
            refresh,
        } => Box::new(matview::Create {
            cv,
            partition_by,
            expectations,
            refresh,
        }),
        Stmt::RefreshCall { arg, call } => Box::new(orchestration::RefreshCall { arg: *arg, call }),
        Stmt::AlterRefresh {
            name,
            feature,
            if_exists,
            policy,
        } => Box::new(matview::SetRefresh {
            name,
            feature,
            if_exists,
            policy,
        }),
        Stmt::RefreshMaterializedView {
            name,
            full,
            explain,
            feature,
        } => Box::new(matview::Refresh {
            name,
            full,
            explain,
            feature,
        }),
        Stmt::CreateFeatureView(v) => Box::new(features::CreateView(v)),
        Stmt::CreateFeatureService(s) => Box::new(features::CreateService(s)),
        Stmt::DropFeature {
            what,
            names,
            if_exists,
            cascade,
        } => Box::new(features::Drop {
            what,
            names,
            if_exists,
            cascade,
        }),
        Stmt::AlterSequence(a) => Box::new(ddl::AlterSequence(a)),
        Stmt::RenameMaterializedView {
            name,
            if_exists,
            new_name,
        } => Box::new(matview::Rename {
            name,
            if_exists,
            new_name,
        }),
        s @ (Stmt::DescribeHistory { .. }
        | Stmt::Optimize { .. }
        | Stmt::Vacuum { .. }
        | Stmt::Analyze { .. }
        | Stmt::Restore { .. }) => Box::new(lakehouse::Lakehouse(s)),
    }
}

fn sql_handler(s: Statement) -> Box<dyn Handler> {
    // An online lookup reads only its `online.` relation: no server file.
    if let Some(l) = crate::features::lookup::recognize(&s) {
        return Box::new(query::Query::new(s, Some(l)));
    }
    if super::access::reads_server_side(&s) {
        return Box::new(ServerSide(plain_sql_handler(s)));
    }
    plain_sql_handler(s)
}

/// A statement that reads the server's files or the network through a
/// table function: at least role writer and the `server_files`
/// privilege, like COPY FROM a file.
struct ServerSide(Box<dyn Handler>);

impl Handler for ServerSide {
    fn name(&self) -> String {
        "reading server-side files or URLs (read_csv, read_json, read_log, ...)".into()
    }
    fn role(&self) -> Role {
        self.0.role().max(Role::Writer)
    }
    fn server_files(&self) -> bool {
        true
    }
    fn describe<'a>(&'a self, session: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move { self.0.describe(session).await })
    }
    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        params: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move { self.0.execute(session, params).await })
    }
}

fn plain_sql_handler(s: Statement) -> Box<dyn Handler> {
    match s {
        Statement::LISTEN { .. } | Statement::UNLISTEN { .. } | Statement::NOTIFY { .. } => {
            Box::new(orchestration::Channel(s))
        }
        // Not an online lookup: `sql_handler` looked first.
        Statement::Query(_) | Statement::Explain { .. } => Box::new(query::Query::new(s, None)),
        Statement::Declare { stmts } if stmts.len() == 1 => {
            match cursor::DeclareCursor::new(&stmts[0]) {
                Ok(d) => Box::new(d),
                Err(e) => Box::new(Failing(e)),
            }
        }
        Statement::Fetch {
            name,
            direction,
            into: None,
            ..
        } => Box::new(cursor::Fetch::new(&name, &direction)),
        Statement::Close { cursor } => Box::new(cursor::Close(cursor)),
        Statement::ExplainTable { table_name, .. } => Box::new(query::DescribeTable(table_name)),
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
            Box::new(write::Dml(s, None))
        }
        Statement::Truncate(t) => Box::new(write::Truncate(t)),
        Statement::Prepare {
            name,
            data_types,
            statement,
        } => Box::new(prepare::Prepare {
            name,
            types: data_types,
            statement,
        }),
        Statement::Execute {
            name,
            parameters,
            immediate: false,
            into,
            using,
            output: false,
            default: false,
            ..
        } if into.is_empty() && using.is_empty() => Box::new(prepare::Execute {
            name,
            values: parameters,
        }),
        Statement::CreateSchema { .. }
        | Statement::CreateView(_)
        | Statement::CreateSequence {
            temporary: false, ..
        }
        | Statement::Drop { .. }
        | Statement::AlterTable(_)
        | Statement::CreateIndex(_)
        | Statement::Comment { .. } => Box::new(ddl::Ddl(s)),
        Statement::Set(_)
        | Statement::ShowVariable { .. }
        | Statement::Reset(_)
        | Statement::Discard { .. }
        | Statement::Deallocate { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => Box::new(session::SessionStatement(s)),
        other => Box::new(Unsupported(other)),
    }
}

/// The first words of a statement, for messages.
pub fn first_words(sql: &str, n: usize) -> String {
    sql.split_whitespace().take(n).collect::<Vec<_>>().join(" ")
}

/// A statement whose form was refused when it was read: fails with that.
struct Failing(Error);

impl Handler for Failing {
    fn name(&self) -> String {
        "statement".into()
    }
    fn role(&self) -> Role {
        Role::Reader
    }
    fn describe<'a>(&'a self, _: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move { Err(self.0.clone()) })
    }
    fn execute<'a>(
        self: Box<Self>,
        _: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move { Err(self.0) })
    }
}

/// A statement sqlparser knows and Sluice does not run: 0A000.
struct Unsupported(Statement);

impl Handler for Unsupported {
    fn name(&self) -> String {
        first_words(&self.0.to_string(), 2)
    }
    fn role(&self) -> Role {
        Role::Admin
    }
    fn execute<'a>(
        self: Box<Self>,
        _: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            Err(Error::not_supported(format!(
                "statement \"{}\"",
                first_words(&self.0.to_string(), 3)
            )))
        })
    }
}
