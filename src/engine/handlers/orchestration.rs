//! LISTEN, UNLISTEN, NOTIFY, and `SELECT sluice.refresh('v')` /
//! `CALL sluice.refresh('v')`: a refresh run now, as the scheduler runs
//! it (retries, run history, the views downstream), answered with its
//! status, or its error when it failed.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::sql::sqlparser::ast::{Expr, Statement, Value};

use super::{Described, Handler};
use crate::engine::access::Role;
use crate::engine::{Output, Session, normalize_ident};
use crate::error::{Error, ErrorKind, Result, ResultFuture};

/// `LISTEN ch`, `UNLISTEN ch | *`, `NOTIFY ch [, 'payload']`.
pub struct Channel(pub Statement);

impl Handler for Channel {
    fn name(&self) -> String {
        super::first_words(&self.0.to_string(), 1)
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
            let listening = session.listening();
            match self.0 {
                Statement::LISTEN { channel } => {
                    listening
                        .lock()
                        .expect("listen set")
                        .insert(normalize_ident(&channel));
                    Ok(Output::command("LISTEN"))
                }
                Statement::UNLISTEN { channel } => {
                    let mut set = listening.lock().expect("listen set");
                    if channel.value == "*" && channel.quote_style.is_none() {
                        set.clear();
                    } else {
                        set.remove(&normalize_ident(&channel));
                    }
                    Ok(Output::command("UNLISTEN"))
                }
                Statement::NOTIFY { channel, payload } => {
                    let payload = payload.unwrap_or_default();
                    // PostgreSQL's limit on a payload.
                    if payload.len() >= 8000 {
                        return Err(Error::new(
                            ErrorKind::InvalidParameter,
                            "payload string too long",
                        ));
                    }
                    session.engine.notifier().notify(
                        session.pid(),
                        &normalize_ident(&channel),
                        &payload,
                    );
                    Ok(Output::command("NOTIFY"))
                }
                other => Err(Error::internal(format!("not a channel statement: {other}"))),
            }
        })
    }
}

/// `SELECT sluice.refresh('v')` (one row: the run's status) or `CALL
/// sluice.refresh('v')`.
pub struct RefreshCall {
    pub arg: Expr,
    pub call: bool,
}

fn status_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "refresh",
        DataType::Utf8,
        true,
    )]))
}

impl RefreshCall {
    /// The view's name, from a literal or a parameter.
    fn view_name(&self, params: &ParamValues) -> Result<String> {
        let bad = || {
            Error::new(
                ErrorKind::UndefinedFunction,
                "function sluice.refresh takes the name of a materialized or feature view as text",
            )
        };
        match &self.arg {
            Expr::Value(v) if !matches!(v.value, Value::Placeholder(_)) => match &v.value {
                Value::SingleQuotedString(s) => Ok(s.clone()),
                _ => Err(bad()),
            },
            Expr::Cast { expr, .. } => RefreshCall {
                arg: (**expr).clone(),
                call: self.call,
            }
            .view_name(params),
            _ => match self.param_index() {
                Some(n) => match params {
                    ParamValues::List(list) => match list.get(n - 1).map(|p| &p.value) {
                        Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s))) => {
                            Ok(s.clone())
                        }
                        Some(ScalarValue::Utf8View(Some(s))) => Ok(s.clone()),
                        _ => Err(bad()),
                    },
                    ParamValues::Map(_) => Err(bad()),
                },
                None => Err(bad()),
            },
        }
    }

    fn param_index(&self) -> Option<usize> {
        match &self.arg {
            Expr::Value(v) => match &v.value {
                Value::Placeholder(p) => p.strip_prefix('$')?.parse().ok(),
                _ => None,
            },
            _ => None,
        }
    }
}

impl Handler for RefreshCall {
    fn name(&self) -> String {
        "sluice.refresh".into()
    }

    fn role(&self) -> Role {
        Role::Writer
    }

    fn describe<'a>(&'a self, _: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move {
            let params = match self.param_index() {
                Some(n) => vec![Some(DataType::Utf8); n],
                None => vec![],
            };
            Ok(Described {
                params,
                columns: (!self.call).then(status_schema),
            })
        })
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        params: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            let name = self.view_name(params)?;
            let object_name = crate::frontend::names::parse_object_name(&name)?;
            let snapshot = session.engine.catalog().snapshot();
            let system = session.system_tables();
            let object = session
                .resolver(&snapshot, &system)
                .object(&object_name, crate::catalog::Kind::MaterializedView)?;
            let orchestrator = session.engine.orchestrator().cloned().ok_or_else(|| {
                Error::not_supported("sluice.refresh without a scheduler (run it in sluice serve)")
            })?;
            let run = orchestrator.refresh_now(object).await?;
            if self.call {
                return Ok(Output::command("CALL"));
            }
            let batch = RecordBatch::try_new(
                status_schema(),
                vec![Arc::new(StringArray::from(vec![run.status])) as ArrayRef],
            )?;
            Output::batches(status_schema(), vec![batch], "SELECT")
        })
    }
}
