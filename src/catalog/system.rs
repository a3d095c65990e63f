//! The `sluice` schema: Sluice's own records, each a Delta table under
//! `<lake>/_sluice/` (absent until something is recorded: then it reads as
//! empty). A new system table is one entry in [`SYSTEM_TABLES`].

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// One table of the `sluice` schema.
#[derive(Debug, Clone, Copy)]
pub struct SystemTable {
    pub name: &'static str,
    /// Where its Delta table lives, relative to the lake root.
    pub location: &'static str,
    pub schema: fn() -> SchemaRef,
}

/// Passed/failed counts per expectation of every write.
pub const EXPECTATION_RESULTS: SystemTable = SystemTable {
    name: "expectation_results",
    location: "_sluice/expectation_results",
    schema: expectation_results_schema,
};

/// Every table of the `sluice` schema.
pub const SYSTEM_TABLES: &[SystemTable] = &[EXPECTATION_RESULTS];

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
