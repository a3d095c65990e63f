//! The statements a connection prepared by name, over the extended protocol
//! or with SQL `PREPARE`, as `pg_catalog.pg_prepared_statements` lists them
//! (psycopg reads it, and `DEALLOCATE` forgets them). One namespace for
//! both, as in PostgreSQL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

/// A statement prepared with SQL `PREPARE`, which `EXECUTE` runs.
#[derive(Debug, Clone)]
pub struct SqlPrepared {
    pub stmt: crate::frontend::Stmt,
    /// Parameter types, `$1` first (`None`: unknown, read as text).
    pub types: Vec<Option<DataType>>,
}

#[derive(Debug, Clone)]
struct Entry {
    statement: String,
    /// Set for a statement prepared with SQL `PREPARE`.
    sql: Option<SqlPrepared>,
    /// Microseconds since the epoch.
    prepared_at: i64,
    parameter_types: Vec<String>,
}

/// One connection's named prepared statements.
#[derive(Debug, Clone, Default)]
pub struct PreparedStatements(Arc<Mutex<BTreeMap<String, Entry>>>);

impl PreparedStatements {
    /// `name` was prepared (again) with this text and parameter types.
    pub fn add(&self, name: &str, statement: &str, parameter_types: Vec<String>) {
        let prepared_at = chrono::Utc::now().timestamp_micros();
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(
            name.to_string(),
            Entry {
                statement: statement.to_string(),
                sql: None,
                prepared_at,
                parameter_types,
            },
        );
    }

    /// `name` was prepared with SQL `PREPARE`; false (and nothing changed)
    /// when a statement of that name exists.
    pub fn add_sql(
        &self,
        name: &str,
        statement: &str,
        parameter_types: Vec<String>,
        prepared: SqlPrepared,
    ) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(name) {
            return false;
        }
        map.insert(
            name.to_string(),
            Entry {
                statement: statement.to_string(),
                sql: Some(prepared),
                prepared_at: chrono::Utc::now().timestamp_micros(),
                parameter_types,
            },
        );
        true
    }

    /// Whether a statement named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(name)
    }

    /// The statement SQL `PREPARE` made under `name`.
    pub fn sql(&self, name: &str) -> Option<SqlPrepared> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .and_then(|e| e.sql.clone())
    }

    /// Forget `name`; whether it was there.
    pub fn remove(&self, name: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .is_some()
    }

    /// Forget all.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The names, in order.
    pub fn names(&self) -> Vec<String> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.keys().cloned().collect()
    }

    fn batch(&self) -> DfResult<RecordBatch> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let n = map.len();
        let mut types = ListBuilder::new(StringBuilder::new());
        for e in map.values() {
            for t in &e.parameter_types {
                types.values().append_value(t);
            }
            types.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(map.keys())),
            Arc::new(StringArray::from_iter_values(
                map.values().map(|e| e.statement.as_str()),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(map.values().map(|e| e.prepared_at))
                    .with_timezone("UTC"),
            ),
            Arc::new(types.finish()),
            Arc::new(BooleanArray::from_iter(
                map.values().map(|e| Some(e.sql.is_some())),
            )),
            Arc::new(Int64Array::from(vec![0; n])),
            Arc::new(Int64Array::from(vec![0; n])),
        ];
        Ok(RecordBatch::try_new(schema(), columns)?)
    }

    /// Make it `pg_catalog.pg_prepared_statements` of `ctx`.
    pub fn install(&self, ctx: &SessionContext, database: &str) {
        if let Some(schema) = ctx.catalog(database).and_then(|c| c.schema("pg_catalog")) {
            let _ = schema.register_table(
                "pg_prepared_statements".into(),
                Arc::new(Table(self.clone())),
            );
        }
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("statement", DataType::Utf8, false),
        Field::new(
            "prepare_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(
            "parameter_types",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("from_sql", DataType::Boolean, false),
        Field::new("generic_plans", DataType::Int64, false),
        Field::new("custom_plans", DataType::Int64, false),
    ]))
}

#[derive(Debug)]
struct Table(PreparedStatements);

impl TableProvider for Table {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }
    crate::send_sync::scan_by!(Self::scan_boxed);
}

impl Table {
    /// `TableProvider::scan` (see `crate::send_sync::scan_by`).
    fn scan_boxed<'a>(
        &'a self,
        state: &'a dyn Session,
        projection: Option<&'a Vec<usize>>,
        filters: &'a [Expr],
        limit: Option<usize>,
    ) -> futures::future::BoxFuture<'a, DfResult<Arc<dyn ExecutionPlan>>> {
        Box::pin(async move {
            let table = MemTable::try_new(schema(), vec![vec![self.0.batch()?]])?;
            table.scan(state, projection, filters, limit).await
        })
    }
}
