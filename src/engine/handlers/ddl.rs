//! CREATE, DROP and ALTER of schemas, tables, views, indexes and external tables.

use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::{ObjectName, Statement};

use super::{Handler, first_words};
use crate::engine::access::Role;
use crate::engine::{Output, Session, ddl};
use crate::error::ResultFuture;
use crate::frontend::{Expectation, ExternalTable};

/// CREATE SCHEMA, CREATE VIEW, DROP, ALTER TABLE.
pub struct Ddl(pub Statement);

impl Handler for Ddl {
    fn name(&self) -> String {
        first_words(&self.0.to_string(), 2)
    }

    fn role(&self) -> Role {
        Role::Admin
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            match self.0 {
                Statement::CreateSchema {
                    schema_name,
                    if_not_exists,
                    ..
                } => ddl::create_schema(session, &schema_name, if_not_exists).await,
                Statement::CreateView(cv) => ddl::create_view(session, cv).await,
                Statement::Drop {
                    object_type,
                    if_exists,
                    names,
                    cascade,
                    ..
                } => ddl::drop(session, object_type, if_exists, names, cascade).await,
                Statement::AlterTable(at) => ddl::alter_table(session, at).await,
                Statement::CreateIndex(ci) => {
                    crate::engine::indexes::create_index(session, ci).await
                }
                Statement::CreateSequence {
                    temporary: false,
                    if_not_exists,
                    name,
                    data_type,
                    sequence_options,
                    owned_by,
                } => {
                    crate::engine::sequences::create_sequence(
                        session,
                        if_not_exists,
                        &name,
                        data_type.as_ref(),
                        &sequence_options,
                        owned_by.as_ref(),
                    )
                    .await
                }
                Statement::Comment {
                    object_type,
                    object_name,
                    comment,
                    if_exists,
                } => ddl::comment(session, object_type, object_name, comment, if_exists).await,
                _ => unreachable!("dispatched for DDL only"),
            }
        })
    }
}

/// CREATE TABLE [AS], with its expectations.
pub struct CreateTable(
    pub Box<datafusion::sql::sqlparser::ast::CreateTable>,
    pub Vec<Expectation>,
);

impl Handler for CreateTable {
    fn name(&self) -> String {
        "CREATE TABLE".into()
    }

    fn role(&self) -> Role {
        Role::Admin
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            let temporary = self.0.temporary;
            let name = self.0.name.clone();
            let out = ddl::create_table(session, *self.0, self.1).await?;
            // Dropped when the session ends; its rows live in the lake
            // as any table's until then.
            if temporary && let Ok((schema, table, _)) = session.resolve_table(&name) {
                session.created_temporary(datafusion::sql::sqlparser::ast::ObjectName::from(vec![
                    datafusion::sql::sqlparser::ast::Ident::with_quote('"', schema),
                    datafusion::sql::sqlparser::ast::Ident::with_quote('"', table),
                ]));
            }
            Ok(out)
        })
    }
}

/// ALTER TABLE t ADD CONSTRAINT c EXPECT (...).
pub struct AddExpectation(pub ObjectName, pub Box<Expectation>);

impl Handler for AddExpectation {
    fn name(&self) -> String {
        "ALTER TABLE".into()
    }

    fn role(&self) -> Role {
        Role::Admin
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move { ddl::add_expectation(session, &self.0, *self.1).await })
    }
}

/// CREATE EXTERNAL TABLE.
pub struct CreateExternal(pub Box<ExternalTable>);

impl Handler for CreateExternal {
    fn name(&self) -> String {
        "CREATE EXTERNAL TABLE".into()
    }

    fn role(&self) -> Role {
        Role::Admin
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move { ddl::create_external_table(session, *self.0).await })
    }
}

/// `ALTER SEQUENCE`.
pub struct AlterSequence(pub Box<crate::frontend::sequence_options::AlterSequence>);

impl Handler for AlterSequence {
    fn name(&self) -> String {
        "ALTER SEQUENCE".into()
    }

    fn role(&self) -> Role {
        Role::Admin
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move { crate::engine::sequences::alter_sequence(session, &self.0).await })
    }
}
