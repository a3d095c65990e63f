//! Delta-only statements: DESCRIBE HISTORY, OPTIMIZE, VACUUM, RESTORE.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::sql::sqlparser::ast::ObjectName;
use deltalake::operations::optimize::OptimizeType;
use futures::TryStreamExt;

use super::{Output, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::Stmt;
use crate::lake::{TimeTravel, parse_timestamp};

fn history_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("version", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("operation", DataType::Utf8, true),
        Field::new("operation_parameters", DataType::Utf8, true),
        Field::new("operation_metrics", DataType::Utf8, true),
        Field::new("read_version", DataType::Int64, true),
    ]))
}

fn optimize_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("files_added", DataType::Int64, false),
        Field::new("files_removed", DataType::Int64, false),
        Field::new("partitions_optimized", DataType::Int64, false),
        Field::new("version", DataType::Int64, true),
    ]))
}

fn vacuum_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("path", DataType::Utf8, false)]))
}

fn restore_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("restored_files", DataType::Int64, false),
        Field::new("removed_files", DataType::Int64, false),
        Field::new("version", DataType::Int64, true),
    ]))
}

/// Result columns of a lakehouse statement, for Describe.
pub fn result_schema(stmt: &Stmt) -> Option<SchemaRef> {
    Some(match stmt {
        Stmt::DescribeHistory { .. } => history_schema(),
        Stmt::Optimize { .. } => optimize_schema(),
        Stmt::Vacuum { .. } => vacuum_schema(),
        Stmt::Restore { .. } => restore_schema(),
        _ => return None,
    })
}

async fn open(session: &Session, name: &ObjectName) -> Result<deltalake::DeltaTable> {
    let (_, _, def) = session.resolve_table(name)?;
    let lake = session.engine.lake();
    let url = lake.url_for(&def.location)?;
    lake.table(&url).await
}

/// The Delta table of a table or a materialized view, for what reads its
/// log or removes unreferenced files (neither changes a row).
async fn open_stored(session: &Session, name: &ObjectName) -> Result<deltalake::DeltaTable> {
    let snapshot = session.engine.catalog().snapshot();
    let system = session.system_tables();
    let not_table = |n: &str| {
        Error::new(
            ErrorKind::WrongObjectType,
            format!("\"{n}\" is not a table"),
        )
    };
    let object = match session.resolver(&snapshot, &system).resolve(name)? {
        super::bind::Resolved::Object(o) => o,
        super::bind::Resolved::System(r) => return Err(not_table(&r.name)),
        super::bind::Resolved::Online(o) => return Err(not_table(&format!("online.{}", o.name))),
    };
    let def = object.stored().ok_or_else(|| not_table(&object.name))?;
    let lake = session.engine.lake();
    lake.table(&lake.url_for(&def.location)?).await
}

fn int(v: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from(v))
}

pub async fn history(
    session: &mut Session,
    name: &ObjectName,
    limit: Option<u64>,
) -> Result<Output> {
    let table = open_stored(session, name).await?;
    let latest = table.version().unwrap_or(0) as i64;
    let infos: Vec<_> = table
        .history(limit.map(|l| l as usize))
        .try_collect()
        .await?;
    // Commits come newest first; versions count down from the latest.
    let mut versions = Vec::new();
    let mut ts = Vec::new();
    let mut ops = Vec::new();
    let mut params = Vec::new();
    let mut metrics = Vec::new();
    let mut reads = Vec::new();
    for (i, c) in infos.iter().enumerate() {
        versions.push(Some(latest - i as i64));
        ts.push(c.timestamp);
        ops.push(c.operation.clone());
        params.push(
            c.operation_parameters
                .as_ref()
                .map(|p| serde_json::to_string(p).unwrap_or_default()),
        );
        metrics.push(c.info.get("operationMetrics").map(|m| m.to_string()));
        reads.push(c.read_version.map(|v| v as i64));
    }
    let schema = history_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            int(versions),
            Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
            Arc::new(StringArray::from(ops)),
            Arc::new(StringArray::from(params)),
            Arc::new(StringArray::from(metrics)),
            int(reads),
        ],
    )?;
    Output::batches(schema, vec![batch], "SELECT")
}

pub async fn optimize(
    session: &mut Session,
    name: &ObjectName,
    zorder: Vec<String>,
) -> Result<Output> {
    let (_, tname, def) = session.resolve_table(name)?;
    let mut cols = Vec::new();
    for z in zorder {
        let z = z.to_lowercase();
        if def.column(&z).is_none() {
            return Err(Error::new(
                ErrorKind::UndefinedColumn,
                format!("column \"{z}\" of relation \"{tname}\" does not exist"),
            ));
        }
        if def.partition_by.contains(&z) {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("cannot ZORDER BY partition column \"{z}\""),
            ));
        }
        cols.push(z);
    }
    let table = open(session, name).await?;
    let mut builder = table
        .optimize()
        .with_writer_properties(crate::write::writer_properties(
            deltalake::parquet::basic::Compression::ZSTD(
                deltalake::parquet::basic::ZstdLevel::try_new(4).expect("a valid level"),
            ),
            &def.unique_columns(),
        ));
    if !cols.is_empty() {
        builder = builder.with_type(OptimizeType::ZOrder(cols));
    }
    let (written, m) = builder.await?;
    session.engine.lake().committed(&written).await;
    let schema = optimize_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            int(vec![Some(m.num_files_added as i64)]),
            int(vec![Some(m.num_files_removed as i64)]),
            int(vec![Some(m.partitions_optimized as i64)]),
            int(vec![written.version().map(|v| v as i64)]),
        ],
    )?;
    Output::batches(schema, vec![batch], "SELECT")
}

/// `ANALYZE`: each table named must exist (`42P01`). Sluice plans with
/// the statistics every write records per file in the Delta log, so
/// there is nothing to collect.
pub fn analyze(session: &mut Session, tables: &[ObjectName]) -> Result<Output> {
    let snapshot = session.engine.catalog().snapshot();
    let system = session.system_tables();
    let resolver = session.resolver(&snapshot, &system);
    for name in tables {
        resolver.resolve(name)?;
    }
    Ok(Output::command("ANALYZE"))
}

pub async fn vacuum(
    session: &mut Session,
    name: &ObjectName,
    retain_hours: Option<u64>,
    dry_run: bool,
) -> Result<Output> {
    let table = open_stored(session, name).await?;
    let mut builder = table.vacuum().with_dry_run(dry_run);
    if let Some(h) = retain_hours {
        builder = builder.with_retention_period(chrono::Duration::hours(h as i64));
        let check = session
            .settings
            .get("sluice.vacuum_retention_check")
            .unwrap_or("on");
        if matches!(check, "off" | "false" | "0") {
            builder = builder.with_enforce_retention_duration(false);
        }
    }
    let (written, m) = builder.await.map_err(|e| {
        let msg = e.to_string();
        if msg.contains("retention") {
            Error::new(ErrorKind::InvalidParameter, msg).with_hint(
                "SET sluice.vacuum_retention_check = off to vacuum below the table's retention period",
            )
        } else {
            Error::from(e)
        }
    })?;
    session.engine.lake().committed(&written).await;
    let schema = vacuum_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(m.files_deleted))],
    )?;
    Output::batches(
        schema,
        vec![batch],
        if dry_run { "SELECT" } else { "VACUUM" },
    )
}

pub async fn restore(session: &mut Session, name: &ObjectName, at: TimeTravel) -> Result<Output> {
    let table = open(session, name).await?;
    let builder = table.restore();
    let builder = match &at {
        TimeTravel::Version(v) => builder.with_version_to_restore(*v as u64),
        TimeTravel::Timestamp(ts) => builder.with_datetime_to_restore(parse_timestamp(ts)?),
    };
    let (written, m) = builder
        .await
        .map_err(|e| Error::new(ErrorKind::InvalidParameter, format!("cannot restore: {e}")))?;
    session.engine.lake().committed(&written).await;
    let schema = restore_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            int(vec![Some(m.num_restored_file as i64)]),
            int(vec![Some(m.num_removed_file as i64)]),
            int(vec![written.version().map(|v| v as i64)]),
        ],
    )?;
    Output::batches(schema, vec![batch], "SELECT")
}
