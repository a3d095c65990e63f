//! REFRESH MATERIALIZED VIEW and EXPLAIN REFRESH MATERIALIZED VIEW.

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::ObjectName;

use super::{Described, Handler};
use crate::engine::access::Role;
use crate::engine::{Output, Session, matview};
use crate::error::Result;

pub struct Refresh {
    pub name: ObjectName,
    pub full: bool,
    pub explain: bool,
}

#[async_trait]
impl Handler for Refresh {
    fn name(&self) -> String {
        if self.explain {
            "EXPLAIN REFRESH MATERIALIZED VIEW".into()
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

    async fn describe(&self, _: &Session) -> Result<Described> {
        Ok(Described {
            params: vec![],
            columns: self.explain.then(matview::explain_schema),
        })
    }

    async fn execute(self: Box<Self>, session: &mut Session, _: &ParamValues) -> Result<Output> {
        matview::refresh(session, &self.name, self.full, self.explain).await
    }
}
