//! The `sluice` schema: Sluice's own records, each a Delta table under
//! `<lake>/_sluice/` (absent until something is recorded: then it reads as
//! empty), and live views of the running server. A new system table is one
//! entry in [`SYSTEM_TABLES`].

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// One table of the `sluice` schema.
#[derive(Debug, Clone, Copy)]
pub struct SystemTable {
    pub name: &'static str,
    /// Where its Delta table lives, relative to the lake root; empty for a
    /// live table, whose rows [`SystemTable::live`] makes when it is read.
    pub location: &'static str,
    pub schema: fn() -> SchemaRef,
    pub live: Option<fn() -> RecordBatch>,
}

/// Passed/failed counts per expectation of every write.
pub const EXPECTATION_RESULTS: SystemTable = SystemTable {
    name: "expectation_results",
    location: "_sluice/expectation_results",
    schema: expectation_results_schema,
    live: None,
};

/// Requests this server has made to lake storage since it started.
pub const STORAGE_REQUESTS: SystemTable = SystemTable {
    name: "storage_requests",
    location: "",
    schema: storage_requests_schema,
    live: Some(storage_requests),
};

/// Every table of the `sluice` schema.
pub const SYSTEM_TABLES: &[SystemTable] = &[EXPECTATION_RESULTS, STORAGE_REQUESTS];

pub fn find(name: &str) -> Option<&'static SystemTable> {
    SYSTEM_TABLES.iter().find(|t| t.name == name)
}

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn expectation_results_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table_schema", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, true),
        Field::new("expectation", DataType::Utf8, true),
        Field::new("action", DataType::Utf8, true),
        Field::new("table_version", DataType::Int64, true),
        Field::new("rows_passed", DataType::Int64, true),
        Field::new("rows_failed", DataType::Int64, true),
        Field::new("recorded_at", utc(), true),
    ]))
}

fn storage_requests_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("operation", DataType::Utf8, false),
        Field::new("requests", DataType::Int64, false),
    ]))
}

fn storage_requests() -> RecordBatch {
    let counts = crate::lake::io::requests();
    let ops = StringArray::from_iter_values(counts.iter().map(|(op, _)| op.name()));
    let n = Int64Array::from_iter_values(counts.iter().map(|(_, n)| *n as i64));
    RecordBatch::try_new(storage_requests_schema(), vec![Arc::new(ops), Arc::new(n)])
        .expect("storage_requests columns match its schema")
}
