//! INSERT, UPDATE, DELETE, MERGE and COPY.

use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::Statement;

use super::{Described, Handler, first_words};
use crate::engine::access::Role;
use crate::engine::{Output, Session, copy, dml, params};
use crate::error::ResultFuture;
use crate::frontend::{MergeStmt, Overriding, Stmt, copy::CopyStmt};

/// INSERT (and INSERT ... ON CONFLICT, with its OVERRIDING clause),
/// UPDATE, DELETE.
pub struct Dml(pub Statement, pub Option<Overriding>);

impl Handler for Dml {
    fn name(&self) -> String {
        first_words(&self.0.to_string(), 2)
    }

    fn role(&self) -> Role {
        Role::Writer
    }

    fn describe<'a>(&'a self, session: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move {
            // DataFusion plans DML without RETURNING: the parameter types come
            // from the rest of the statement, the result columns from ours.
            let mut probe = self.0.clone();
            match &mut probe {
                Statement::Insert(i) => i.returning = None,
                Statement::Update(u) => u.returning = None,
                Statement::Delete(d) => d.returning = None,
                _ => {}
            }
            let params = match session.plan(probe).await {
                Ok(plan) => super::query::parameter_types(&plan),
                Err(_) => vec![None; params::count_placeholders(&self.0)],
            };
            let columns = dml::returning_schema(session, &self.0).await.ok().flatten();
            Ok(Described { params, columns })
        })
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        params: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            let Stmt::Sql(s) = params::bind(Stmt::Sql(Box::new(self.0)), params)? else {
                unreachable!("bound as it came")
            };
            match *s {
                Statement::Insert(mut ins) => {
                    // The source is bound when it is planned; ON CONFLICT runs
                    // as a MERGE, whose parts are qualified there.
                    if ins.on.is_some() {
                        session.qualify_dml(&mut ins)?;
                    }
                    dml::insert(session, ins, self.1).await
                }
                Statement::Update(mut up) => {
                    session.qualify_dml(&mut up)?;
                    dml::update(session, up).await
                }
                Statement::Delete(mut del) => {
                    session.qualify_dml(&mut del)?;
                    dml::delete(session, del).await
                }
                _ => unreachable!("dispatched for DML only"),
            }
        })
    }
}

/// MERGE.
pub struct Merge(pub Box<MergeStmt>);

impl Handler for Merge {
    fn name(&self) -> String {
        "MERGE".into()
    }

    fn role(&self) -> Role {
        Role::Writer
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        params: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            let mut m = *self.0;
            params::bind_merge(&mut m, params)?;
            let wc = session.write_context();
            session.qualify_merge(&mut m)?;
            let outcome = crate::write::merge::merge(&wc, m, false).await?;
            Ok(Output::count("MERGE", outcome.rows))
        })
    }
}

/// COPY, both ways.
pub struct Copy(pub Box<CopyStmt>);

impl Handler for Copy {
    fn name(&self) -> String {
        if self.0.from { "COPY FROM" } else { "COPY TO" }.into()
    }

    fn role(&self) -> Role {
        if self.0.from {
            Role::Writer
        } else {
            Role::Reader
        }
    }

    fn server_files(&self) -> bool {
        matches!(
            self.0.endpoint,
            crate::frontend::copy::CopyEndpoint::File(_)
        )
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move { copy::execute(session, *self.0).await })
    }
}

/// TRUNCATE [TABLE] name [, ...]: every row of each table removed, one
/// Delta commit per table (the files are dropped from the log, not read).
pub struct Truncate(pub datafusion::sql::sqlparser::ast::Truncate);

impl Handler for Truncate {
    fn name(&self) -> String {
        "TRUNCATE".into()
    }

    fn role(&self) -> Role {
        Role::Writer
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            // What it cannot honour is refused, not ignored: a PARTITION clause
            // ignored would empty the whole table.
            if self.0.partitions.is_some() {
                return Err(crate::error::Error::not_supported("TRUNCATE ... PARTITION"));
            }
            let restart = matches!(
                self.0.identity,
                Some(datafusion::sql::sqlparser::ast::TruncateIdentityOption::Restart)
            );
            let wc = session.write_context();
            // Every table resolved and opened, and the sequences to restart
            // found, before any table is emptied.
            let mut targets = Vec::new();
            for t in &self.0.table_names {
                let (schema, table, def) = session.resolve_table(&t.name)?;
                targets.push(crate::write::Target::open(&wc, &schema, &table, def, None).await?);
            }
            let snap = session.engine().catalog().snapshot();
            let owned: Vec<&crate::catalog::SequenceDef> = if restart {
                targets
                    .iter()
                    .flat_map(|t| snap.owned_sequences(&t.schema, &t.name))
                    .map(|(_, d, _)| d.as_ref())
                    .collect()
            } else {
                vec![]
            };
            // One commit per table: a failure part-way leaves the tables
            // before it empty and the rest as they were, as a client that
            // truncated them one by one would.
            for target in &targets {
                crate::write::delete::delete(&wc, target, None, false).await?;
            }
            // The sequences start again in one commit after the tables are
            // empty: a failure before it leaves values that only skip.
            session.engine().sequences().restart(&owned).await?;
            Ok(Output::Command {
                tag: "TRUNCATE TABLE".into(),
                rows: None,
            })
        })
    }
}
