//! CREATE MATERIALIZED VIEW ... PARTITIONED BY, REFRESH MATERIALIZED VIEW, EXPLAIN REFRESH MATERIALIZED VIEW and
//! ALTER MATERIALIZED VIEW ... RENAME TO.

use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::ObjectName;

use super::{Described, Handler};
use crate::engine::access::Role;
use crate::engine::{Output, Session, matview};
use crate::error::ResultFuture;

pub struct Refresh {
    pub name: ObjectName,
    pub full: bool,
    pub explain: bool,
    /// `REFRESH FEATURE VIEW`: the view must be a feature view.
    pub feature: bool,
}

impl Handler for Refresh {
    fn name(&self) -> String {
        if self.explain {
            "EXPLAIN REFRESH MATERIALIZED VIEW".into()
        } else if self.feature {
            "REFRESH FEATURE VIEW".into()
        } else {
            "REFRESH MATERIALIZED VIEW".into()
        }
    }

    fn role(&self) -> Role {
        if self.explain {
            Role::Reader
        } else {
            Role::Writer
        }
    }

    fn describe<'a>(&'a self, _: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move {
            Ok(Described {
                params: vec![],
                columns: self.explain.then(matview::explain_schema),
            })
        })
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            if self.feature {
                let snapshot = session.engine.catalog().snapshot();
                let system = session.system_tables();
                let o = session
                    .resolver(&snapshot, &system)
                    .object(&self.name, crate::catalog::Kind::MaterializedView)?;
                if o.feature().is_none() {
                    return Err(crate::error::Error::new(
                        crate::error::ErrorKind::WrongObjectType,
                        format!("\"{}\" is not a feature view", o.name),
                    ));
                }
                matview::refresh(session, &self.name, self.full, false).await?;
                return Ok(Output::command("REFRESH FEATURE VIEW"));
            }
            matview::refresh(session, &self.name, self.full, self.explain).await
        })
    }
}

pub struct Rename {
    pub name: ObjectName,
    pub if_exists: bool,
    pub new_name: ObjectName,
}

impl Handler for Rename {
    fn name(&self) -> String {
        "ALTER MATERIALIZED VIEW".into()
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
            matview::rename(session, &self.name, self.if_exists, &self.new_name).await
        })
    }
}

/// `CREATE MATERIALIZED VIEW` with `PARTITIONED BY`, expectations or a
/// refresh policy (without them it is an ordinary CREATE VIEW statement).
pub struct Create {
    pub cv: Box<datafusion::sql::sqlparser::ast::CreateView>,
    pub partition_by: Vec<String>,
    pub expectations: Vec<crate::frontend::Expectation>,
    pub refresh: Option<crate::catalog::schedule::RefreshPolicy>,
}

impl Handler for Create {
    fn name(&self) -> String {
        "CREATE MATERIALIZED VIEW".into()
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
            matview::create(
                session,
                *self.cv,
                self.partition_by,
                self.expectations,
                None,
                self.refresh,
            )
            .await
        })
    }
}

/// `ALTER MATERIALIZED VIEW | FEATURE VIEW v SET REFRESH ...`
pub struct SetRefresh {
    pub name: ObjectName,
    pub feature: bool,
    pub if_exists: bool,
    pub policy: Option<crate::catalog::schedule::RefreshPolicy>,
}

impl Handler for SetRefresh {
    fn name(&self) -> String {
        if self.feature {
            "ALTER FEATURE VIEW".into()
        } else {
            "ALTER MATERIALIZED VIEW".into()
        }
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
            matview::set_refresh(
                session,
                &self.name,
                self.feature,
                self.if_exists,
                self.policy,
            )
            .await
        })
    }
}
