//! `postgres_query('postgresql://...', 'SELECT ...')`: rows streamed from
//! an operational PostgreSQL into a query.
//!
//! ```text
//!  plan:     connect, PREPARE the query ─▶ column types ─▶ Arrow schema
//!  execute:  connect, run it ─▶ rows in binary format ─▶ BinaryColumns ─▶ batches
//! ```
//!
//! Values arrive in PostgreSQL's binary send format and are decoded by the
//! same column builders as binary COPY, so numeric, timestamptz, arrays,
//! jsonb and NULLs keep their meaning. The connection string is never shown:
//! messages name the host and database only.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;
use postgres_types::{FromSql, Type};
use tokio_postgres::Client;

use super::binary::BinaryColumns;
use super::files::literal_str;
use super::pg_tls::Target;
use crate::error::{Error, ErrorKind, Result};

const BATCH_ROWS: usize = 8192;

/// A value as the server sent it, whatever its type.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn remote_error(target: &Target, e: tokio_postgres::Error) -> Error {
    let shown = target.shown();
    match e.as_db_error() {
        Some(db) => Error::new(
            ErrorKind::RemoteError,
            format!("postgres_query on {shown}: {}", db.message()),
        )
        .with_detail(format!("remote SQLSTATE {}", db.code().code())),
        None => {
            let cause = std::error::Error::source(&e)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            Error::new(
                ErrorKind::ConnectionFailure,
                format!("postgres_query could not reach {shown}: {e}{cause}"),
            )
        }
    }
}

async fn connect(target: &Target) -> Result<Client> {
    let (client, connection) = target
        .config
        .connect(target.tls()?)
        .await
        .map_err(|e| remote_error(target, e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres_query connection ended: {e}");
        }
    });
    Ok(client)
}

/// The connection `postgres_query`'s first argument names: a connection
/// string, or the name of a `[postgres."name"]` section of the config file.
fn target_of(session: &dyn datafusion::catalog::Session, conn: &str) -> Result<Target> {
    let is_string = conn.contains('=') || conn.contains("://");
    if is_string || conn.is_empty() {
        return Target::parse(conn);
    }
    let named = session
        .config()
        .get_extension::<crate::config::PgConnections>();
    match named.as_deref().and_then(|c| c.get(conn)) {
        Some(url) => Target::parse(url),
        None => Err(Error::new(
            ErrorKind::UndefinedObject,
            format!("postgres_query: no connection named \"{conn}\""),
        )
        .with_hint(
            "Give a connection string, or name a [postgres.\"name\"] section of the config file.",
        )),
    }
}

/// The Arrow type a PostgreSQL column becomes; `None` when not supported.
fn arrow_type(ty: &Type, typmod: i32) -> Option<DataType> {
    let scalar = |t: &Type| -> Option<DataType> {
        Some(match *t {
            Type::BOOL => DataType::Boolean,
            Type::INT2 => DataType::Int16,
            Type::INT4 => DataType::Int32,
            Type::INT8 => DataType::Int64,
            Type::FLOAT4 => DataType::Float32,
            Type::FLOAT8 => DataType::Float64,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB => {
                DataType::Utf8
            }
            Type::DATE => DataType::Date32,
            Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
            Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Type::BYTEA => DataType::Binary,
            Type::NUMERIC => {
                if typmod >= 4 {
                    let p = (((typmod - 4) >> 16) & 0xffff) as u8;
                    let s = ((typmod - 4) & 0xffff) as i8;
                    DataType::Decimal128(p.clamp(1, 38), s)
                } else {
                    DataType::Decimal128(38, 10)
                }
            }
            _ => return None,
        })
    };
    match ty.kind() {
        postgres_types::Kind::Array(elem) => Some(DataType::List(Arc::new(Field::new(
            "element",
            scalar(elem)?,
            true,
        )))),
        _ => scalar(ty),
    }
}

/// The query's columns, from preparing it on the server.
async fn describe(target: &Target, sql: &str) -> Result<(SchemaRef, Vec<bool>)> {
    let client = connect(target).await?;
    let stmt = client
        .prepare(sql)
        .await
        .map_err(|e| remote_error(target, e))?;
    let mut fields = Vec::new();
    let mut jsonb = Vec::new();
    for c in stmt.columns() {
        let t = arrow_type(c.type_(), c.type_modifier()).ok_or_else(|| {
            Error::not_supported(format!(
                "postgres_query column \"{}\" of type {}",
                c.name(),
                c.type_()
            ))
            .with_hint("Cast it to text in the remote query, e.g. col::text.")
        })?;
        fields.push(Field::new(c.name(), t, true));
        jsonb.push(*c.type_() == Type::JSONB);
    }
    Ok((Arc::new(Schema::new(fields)), jsonb))
}

/// Run the query and stream its rows as batches. Its Debug form (in
/// plans) shows host and database only.
#[derive(Debug)]
struct RemoteQuery {
    conn: Target,
    sql: String,
    schema: SchemaRef,
    jsonb: Vec<bool>,
}

impl PartitionStream for RemoteQuery {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (conn, sql) = (self.conn.clone(), self.sql.clone());
        let (schema, jsonb) = (self.schema.clone(), self.jsonb.clone());
        let batches = futures::stream::once(async move {
            let client = connect(&conn).await?;
            let rows = client
                .query_raw(sql.as_str(), std::iter::empty::<i32>())
                .await
                .map_err(|e| remote_error(&conn, e))?;
            let columns = BinaryColumns::new(schema, &jsonb)?;
            Ok::<_, Error>((client, Box::pin(rows), columns, conn))
        })
        .map(|started| match started {
            Ok(state) => futures::stream::unfold(Some(state), next_batch).left_stream(),
            Err(e) => futures::stream::iter(vec![Err(to_df(e))]).right_stream(),
        })
        .flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

type Running = (
    Client,
    std::pin::Pin<Box<tokio_postgres::RowStream>>,
    BinaryColumns,
    Target,
);

fn to_df(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

async fn next_batch(
    state: Option<Running>,
) -> Option<(datafusion::error::Result<RecordBatch>, Option<Running>)> {
    let (client, mut rows, mut columns, conn) = state?;
    while columns.len() < BATCH_ROWS {
        match rows.next().await {
            Some(Ok(row)) => {
                for c in 0..row.len() {
                    let v = match row.try_get::<_, Raw>(c) {
                        Ok(v) => v.0,
                        Err(e) => return Some((Err(to_df(remote_error(&conn, e))), None)),
                    };
                    if let Err(e) = columns.push(c, v) {
                        let name = row.columns()[c].name().to_string();
                        let e = e.with_context(format!("postgres_query column {name}"));
                        return Some((Err(to_df(e)), None));
                    }
                }
            }
            Some(Err(e)) => return Some((Err(to_df(remote_error(&conn, e))), None)),
            None => break,
        }
    }
    if columns.is_empty() {
        return None;
    }
    let batch = columns.batch().map_err(to_df);
    let done = batch
        .as_ref()
        .map(|b| b.num_rows() < BATCH_ROWS)
        .unwrap_or(true);
    let next = if done {
        // One more call ends the stream; keep nothing open meanwhile.
        drop((client, rows));
        None
    } else {
        Some((client, rows, columns, conn))
    };
    Some((batch, next))
}

/// The `postgres_query` table function.
#[derive(Debug)]
pub struct PostgresQuery;

impl TableFunctionImpl for PostgresQuery {
    fn call_with_args(
        &self,
        args: TableFunctionArgs,
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        super::NamedTableFunction::call_named(self, args.session(), args.exprs(), &[])
    }
}

impl super::NamedTableFunction for PostgresQuery {
    fn call_named(
        &self,
        session: &dyn datafusion::catalog::Session,
        positional: &[datafusion::logical_expr::Expr],
        named: &[(String, datafusion::logical_expr::Expr)],
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        if let Some((name, _)) = named.first() {
            return Err(to_df(Error::new(
                ErrorKind::InvalidParameter,
                format!("postgres_query has no option \"{name}\""),
            )));
        }
        let (Some(conn), Some(sql)) = (
            positional.first().and_then(literal_str),
            positional.get(1).and_then(literal_str),
        ) else {
            return Err(to_df(Error::new(
                ErrorKind::InvalidParameter,
                "postgres_query takes a connection (a string or a configured name) \
                 and a query: postgres_query('postgresql://user@host/db', 'SELECT ...')",
            )));
        };
        let conn = target_of(session, &conn).map_err(to_df)?;
        let (schema, jsonb) = crate::interrupt::block_on(describe(&conn, &sql)).map_err(to_df)?;
        let part = RemoteQuery {
            conn,
            sql,
            schema: schema.clone(),
            jsonb,
        };
        Ok(Arc::new(StreamingTable::try_new(
            schema,
            vec![Arc::new(part)],
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_show_credentials() {
        let t = Target::parse("postgresql://alice:s3cret@db.internal:6432/sales").unwrap();
        assert_eq!(t.shown(), "db.internal:6432/sales");
        assert!(!format!("{t:?}").contains("s3cret"));
        let t = Target::parse("host=db user=bob password=hunter2 dbname=ops").unwrap();
        assert!(!t.shown().contains("hunter2") && !t.shown().contains("bob"));
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn numeric_typmod_gives_precision_and_scale() {
        let typmod = ((12 << 16) | 2) + 4;
        assert_eq!(
            arrow_type(&Type::NUMERIC, typmod),
            Some(DataType::Decimal128(12, 2))
        );
        assert!(matches!(
            arrow_type(&Type::INT4_ARRAY, -1),
            Some(DataType::List(_))
        ));
        assert_eq!(arrow_type(&Type::POINT, -1), None);
    }
}
