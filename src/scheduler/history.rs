//! The scheduler's rows of `sluice.runs`: one per refresh attempt, and one
//! per view skipped because a view it reads failed.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};

use super::Why;
use crate::catalog::system::RUNS;
use crate::catalog::{Object, RelName};
use crate::engine::Engine;
use crate::engine::matview::Refreshed;
use crate::error::{Error, Result};

/// One attempt to record.
pub struct Attempt<'a> {
    pub run_id: &'a str,
    pub object: &'a Object,
    pub why: &'a str,
    pub attempt: u32,
    pub status: &'a str,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub outcome: &'a Result<Refreshed>,
}

pub async fn record(engine: &Engine, a: Attempt<'_>) {
    let (rows, version, method, sources, message) = match a.outcome {
        Ok(r) => {
            let sources: serde_json::Map<String, serde_json::Value> = r
                .sources
                .iter()
                .map(|(rel, v)| (rel.to_string(), (*v).into()))
                .collect();
            (
                Some(r.rows as i64),
                Some(r.version),
                Some(r.method.to_string()),
                Some(serde_json::Value::Object(sources).to_string()),
                None,
            )
        }
        Err(e) => (None, None, None, None, Some(e.message.clone())),
    };
    let row = Row {
        run_id: a.run_id,
        object: a.object,
        status: a.status,
        started: a.started,
        ended: a.ended,
        rows,
        message,
        trigger: a.why.to_string(),
        attempt: Some(a.attempt as i64),
        version,
        method,
        sources,
    };
    write(engine, row).await;
}

/// A view not refreshed because `failed`, which it reads, failed.
pub async fn record_skip(
    engine: &Engine,
    run_id: &str,
    object: &Object,
    why: &Why,
    failed: &RelName,
) {
    crate::metrics::refresh_finished("skipped");
    let now = Utc::now();
    let row = Row {
        run_id,
        object,
        status: "skipped",
        started: now,
        ended: now,
        rows: None,
        message: Some(format!("not refreshed: {failed}, which it reads, failed")),
        trigger: why.label(),
        attempt: None,
        version: None,
        method: None,
        sources: None,
    };
    write(engine, row).await;
}

struct Row<'a> {
    run_id: &'a str,
    object: &'a Object,
    status: &'a str,
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
    rows: Option<i64>,
    message: Option<String>,
    trigger: String,
    attempt: Option<i64>,
    version: Option<i64>,
    method: Option<String>,
    sources: Option<String>,
}

/// Append the row. The refresh it describes has committed (or failed)
/// already: a failure to record is logged, not returned.
async fn write(engine: &Engine, row: Row<'_>) {
    let rel = row.object.rel_name().to_string();
    if let Err(e) = append(engine, &row).await {
        tracing::warn!("the refresh run of {rel} could not be recorded in sluice.runs: {e}");
    }
}

async fn append(engine: &Engine, r: &Row<'_>) -> Result<()> {
    let rel = r.object.rel_name().to_string();
    let kind = if r.object.feature().is_some() {
        "feature_view"
    } else {
        "materialized_view"
    };
    let text = |v: Option<&str>| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let ts = |t: DateTime<Utc>| {
        Arc::new(TimestampMicrosecondArray::from(vec![t.timestamp_micros()]).with_timezone("UTC"))
            as ArrayRef
    };
    let int = |v: Option<i64>| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
    let seconds = (r.ended - r.started).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let batch = RecordBatch::try_new(
        (RUNS.schema)(),
        vec![
            text(Some(r.run_id)),
            text(Some("refresh")),
            text(Some("")),
            text(Some(&rel)),
            text(Some(kind)),
            text(Some(&rel)),
            text(None),
            text(Some(r.status)),
            ts(r.started),
            ts(r.ended),
            Arc::new(Float64Array::from(vec![seconds])),
            int(r.rows),
            int(None),
            text(r.message.as_deref()),
            text(Some(&r.trigger)),
            int(r.attempt),
            int(r.version),
            text(r.method.as_deref()),
            text(r.sources.as_deref()),
        ],
    )
    .map_err(Error::from)?;
    crate::write::write_system_table(engine.lake(), &RUNS, batch, false).await
}
