//! SQL `PREPARE name [(type, ...)] AS statement` and `EXECUTE name [(value,
//! ...)]`: a statement kept by name in the session, run later with its
//! parameters bound, as the extended protocol's named statements are (the
//! two share one namespace, as in PostgreSQL).

use datafusion::common::{ParamValues, ScalarValue};
use datafusion::sql::sqlparser::ast::{
    DataType as SqlType, Expr, Ident, ObjectName, SelectItem, SetExpr, Statement,
};

use super::{Described, Handler};
use crate::engine::access::Role;
use crate::engine::prepared::SqlPrepared;
use crate::engine::{Output, Session, normalize_ident};
use crate::error::{Error, ErrorKind, Result, ResultFuture};
use crate::frontend::Stmt;
use crate::types::PgType;

/// `PREPARE name [(type, ...)] AS statement`.
pub struct Prepare {
    pub name: Ident,
    pub types: Vec<SqlType>,
    pub statement: Box<Statement>,
}

impl Handler for Prepare {
    fn name(&self) -> String {
        "PREPARE".into()
    }
    fn role(&self) -> Role {
        Role::Reader
    }
    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            // PostgreSQL prepares queries and row writes only (an `EXECUTE`
            // inside would run itself without end).
            if !matches!(
                self.statement.as_ref(),
                Statement::Query(_)
                    | Statement::Insert(_)
                    | Statement::Update(_)
                    | Statement::Delete(_)
            ) {
                return Err(Error::syntax(format!(
                    "PREPARE takes SELECT, VALUES, INSERT, UPDATE or DELETE, not {}",
                    super::first_words(&self.statement.to_string(), 2)
                )));
            }
            let name = normalize_ident(&self.name);
            if session.prepared.contains(&name) {
                return Err(Error::new(
                    ErrorKind::DuplicatePreparedStatement,
                    format!("prepared statement \"{name}\" already exists"),
                ));
            }
            let declared = self
                .types
                .iter()
                .map(PgType::from_sql)
                .collect::<Result<Vec<_>>>()?;
            let text = format!("PREPARE {} AS {}", self.name, self.statement);
            // A query is planned now, as PostgreSQL analyses it at PREPARE:
            // one that cannot plan (a missing table) fails here.
            if let Statement::Query(_) = self.statement.as_ref() {
                session.plan_cached(&self.statement).await?;
            }
            let stmt = Stmt::Sql(self.statement);
            let described = super::handler(stmt.clone()).describe(session).await?;
            let count = described.params.len().max(declared.len());
            let types: Vec<_> = (0..count)
                .map(|i| match declared.get(i) {
                    Some(t) => Some(t.arrow_type()),
                    None => described.params.get(i).cloned().flatten(),
                })
                .collect();
            let names = types
                .iter()
                .map(|t| match t {
                    Some(t) => PgType::from_arrow(t).name,
                    None => "text".to_string(),
                })
                .collect();
            if !session
                .prepared
                .add_sql(&name, &text, names, SqlPrepared { stmt, types })
            {
                return Err(Error::new(
                    ErrorKind::DuplicatePreparedStatement,
                    format!("prepared statement \"{name}\" already exists"),
                ));
            }
            Ok(Output::command("PREPARE"))
        })
    }
}

/// `EXECUTE name [(value, ...)]`.
pub struct Execute {
    pub name: Option<ObjectName>,
    pub values: Vec<Expr>,
}

impl Execute {
    fn statement(&self, session: &Session) -> Result<(String, SqlPrepared)> {
        let name = self
            .name
            .as_ref()
            .and_then(|n| n.0.last())
            .and_then(|p| p.as_ident())
            .map(normalize_ident)
            .ok_or_else(|| Error::syntax("EXECUTE needs the name of a prepared statement"))?;
        match session.prepared.sql(&name) {
            Some(p) => Ok((name, p)),
            None => Err(Error::new(
                ErrorKind::InvalidSqlStatementName,
                format!("prepared statement \"{name}\" does not exist"),
            )),
        }
    }

    /// The parameter values: each expression evaluated (it may be any
    /// constant expression) and cast to its parameter's type.
    async fn values(&self, session: &Session, p: &SqlPrepared) -> Result<Vec<ScalarValue>> {
        if self.values.is_empty() {
            return Ok(vec![]);
        }
        let Statement::Query(mut query) = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            "SELECT NULL",
        )
        .map_err(|e| Error::internal(e.to_string()))?
        .remove(0) else {
            return Err(Error::internal("SELECT did not parse as a query"));
        };
        if let SetExpr::Select(select) = query.body.as_mut() {
            select.projection = self
                .values
                .iter()
                .cloned()
                .map(SelectItem::UnnamedExpr)
                .collect();
        }
        let plan = session.plan(Statement::Query(query)).await?;
        let batches = session
            .ctx
            .execute_logical_plan(plan)
            .await?
            .collect()
            .await?;
        let batch = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .ok_or_else(|| Error::internal("EXECUTE's parameters gave no row"))?;
        let mut out = Vec::with_capacity(batch.num_columns());
        for (i, column) in batch.columns().iter().enumerate() {
            let v = ScalarValue::try_from_array(column, 0)?;
            out.push(match p.types.get(i).cloned().flatten() {
                Some(t) if v.data_type() != t => v.cast_to(&t).map_err(|e| {
                    Error::new(
                        ErrorKind::DatatypeMismatch,
                        format!(
                            "parameter ${} of type {} cannot be coerced to the expected type {}: {e}",
                            i + 1,
                            PgType::from_arrow(&v.data_type()).name,
                            PgType::from_arrow(&t).name
                        ),
                    )
                })?,
                _ => v,
            });
        }
        Ok(out)
    }
}

impl Handler for Execute {
    fn name(&self) -> String {
        "EXECUTE".into()
    }
    fn role(&self) -> Role {
        // The statement it runs is checked against the user's role when
        // it runs.
        Role::Reader
    }
    fn describe<'a>(&'a self, session: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move {
            let (_, p) = self.statement(session)?;
            let inner = super::handler(p.stmt).describe(session).await?;
            Ok(Described {
                params: vec![],
                columns: inner.columns,
            })
        })
    }
    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            let (name, p) = self.statement(session)?;
            if self.values.len() != p.types.len() {
                return Err(Error::syntax(format!(
                    "wrong number of parameters for prepared statement \"{name}\""
                ))
                .with_detail(format!(
                    "Expected {} parameters but got {}.",
                    p.types.len(),
                    self.values.len()
                )));
            }
            let values = self.values(session, &p).await?;
            let params = ParamValues::List(values.into_iter().map(Into::into).collect());
            Box::pin(session.execute(p.stmt, &params)).await
        })
    }
}
