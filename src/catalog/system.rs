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
    /// For a table made from the catalog and the lake when it is read.
    pub of_catalog: Option<OfCatalog>,
}

/// Rows made from the catalog and the lake.
pub type OfCatalog =
    for<'a> fn(
        &'a super::Catalog,
    ) -> futures::future::BoxFuture<'a, crate::error::Result<RecordBatch>>;

/// Passed/failed counts per expectation of every write.
pub const EXPECTATION_RESULTS: SystemTable = SystemTable {
    name: "expectation_results",
    location: "_sluice/expectation_results",
    schema: expectation_results_schema,
    live: None,
    of_catalog: None,
};

/// Requests this server has made to lake storage since it started.
pub const STORAGE_REQUESTS: SystemTable = SystemTable {
    name: "storage_requests",
    location: "",
    schema: storage_requests_schema,
    live: Some(storage_requests),
    of_catalog: None,
};

/// Every materialized view, with what its last refresh did and the source
/// versions it has consumed.
pub const MATERIALIZED_VIEWS: SystemTable = SystemTable {
    name: "materialized_views",
    location: "",
    schema: materialized_views_schema,
    live: None,
    of_catalog: Some(|c| Box::pin(materialized_views(c))),
};

/// Every node run of `sluice run | build | seed | test | snapshot`, and
/// every refresh attempt the scheduler made (`sluice.refresh`, schedules).
pub const RUNS: SystemTable = SystemTable {
    name: "runs",
    location: "_sluice/runs",
    schema: runs_schema,
    live: None,
    of_catalog: None,
};

/// The nodes of each model project last run on this lake, with what they
/// read (the DAG).
pub const MODELS: SystemTable = SystemTable {
    name: "models",
    location: "_sluice/models",
    schema: models_schema,
    live: None,
    of_catalog: None,
};

/// Every feature view: its entity, times, TTL, features and freshness.
pub const FEATURE_VIEWS: SystemTable = SystemTable {
    name: "feature_views",
    location: "",
    schema: feature_views_schema,
    live: None,
    of_catalog: Some(|c| Box::pin(feature_views(c))),
};

/// Every feature service and the features it serves, one row per view.
pub const FEATURE_SERVICES: SystemTable = SystemTable {
    name: "feature_services",
    location: "",
    schema: feature_services_schema,
    live: None,
    of_catalog: Some(|c| Box::pin(feature_services(c))),
};

/// Every table made with `CREATE TABLE ... AS ... training_set(...)`: the
/// feature view versions it read, to rebuild it with `as_of`.
pub const TRAINING_SETS: SystemTable = SystemTable {
    name: "training_sets",
    location: "_sluice/training_sets",
    schema: training_sets_schema,
    live: None,
    of_catalog: None,
};

/// Every view that refreshes by itself: its policy, its last run, and
/// when it runs next and why.
pub const SCHEDULES: SystemTable = SystemTable {
    name: "schedules",
    location: "",
    schema: schedules_schema,
    live: None,
    of_catalog: Some(|c| Box::pin(schedules(c))),
};

/// Every table of the `sluice` schema.
pub const SYSTEM_TABLES: &[SystemTable] = &[
    EXPECTATION_RESULTS,
    FEATURE_SERVICES,
    FEATURE_VIEWS,
    MATERIALIZED_VIEWS,
    MODELS,
    RUNS,
    SCHEDULES,
    STORAGE_REQUESTS,
    TRAINING_SETS,
];

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

fn runs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("command", DataType::Utf8, false),
        Field::new("project", DataType::Utf8, false),
        Field::new("node", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("relation", DataType::Utf8, true),
        Field::new("materialized", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("started_at", utc(), false),
        Field::new("ended_at", utc(), false),
        Field::new("duration_s", DataType::Float64, false),
        Field::new("rows", DataType::Int64, true),
        Field::new("failures", DataType::Int64, true),
        Field::new("message", DataType::Utf8, true),
        // Refreshes the scheduler ran (null for project commands).
        Field::new("trigger", DataType::Utf8, true),
        Field::new("attempt", DataType::Int64, true),
        Field::new("version", DataType::Int64, true),
        Field::new("method", DataType::Utf8, true),
        Field::new("sources", DataType::Utf8, true),
    ]))
}

fn schedules_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("schema_name", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("schedule", DataType::Utf8, false),
        Field::new("retries", DataType::Int64, false),
        Field::new("running", DataType::Boolean, false),
        Field::new("last_run", utc(), true),
        Field::new("last_status", DataType::Utf8, true),
        Field::new("next_run", utc(), true),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

async fn schedules(catalog: &super::Catalog) -> crate::error::Result<RecordBatch> {
    use datafusion::arrow::array::{BooleanArray, TimestampMicrosecondArray};
    let snapshot = catalog.snapshot();
    let lake = catalog.lake();
    let leases = crate::lake::lease::Leases::new(lake)?;
    let mut rows = Vec::new();
    for o in snapshot.objects() {
        let super::Def::MaterializedView(def) = &o.def else {
            continue;
        };
        let Some(policy) = &def.refresh else {
            continue;
        };
        let standing = super::schedule::Standing::of(lake, &leases, o, def).await?;
        let (next, reason) = standing.next(policy);
        rows.push((o, policy, standing, next, reason, def.feature.is_some()));
    }
    let text = |f: &dyn Fn(usize) -> String| {
        Arc::new(StringArray::from_iter_values((0..rows.len()).map(f)))
    };
    let micros =
        |v: Vec<Option<i64>>| Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"));
    Ok(RecordBatch::try_new(
        schedules_schema(),
        vec![
            text(&|i| rows[i].0.schema.clone()),
            text(&|i| rows[i].0.name.clone()),
            text(&|i| {
                if rows[i].5 {
                    "feature_view"
                } else {
                    "materialized_view"
                }
                .to_string()
            }),
            text(&|i| rows[i].1.describe()),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.1.retries as i64),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|r| Some(r.2.running)),
            )),
            micros(rows.iter().map(|r| r.2.last_ms.map(|m| m * 1000)).collect()),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.2.last_status.clone()),
            )),
            micros(
                rows.iter()
                    .map(|r| r.3.map(|t| t.timestamp_micros()))
                    .collect(),
            ),
            text(&|i| rows[i].4.clone()),
        ],
    )?)
}

fn models_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("project", DataType::Utf8, false),
        Field::new("node", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("relation", DataType::Utf8, true),
        Field::new("materialized", DataType::Utf8, true),
        Field::new("depends_on", DataType::Utf8, true),
        Field::new("path", DataType::Utf8, false),
        Field::new("tags", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        Field::new("updated_at", utc(), false),
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

fn materialized_views_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("schema_name", DataType::Utf8, false),
        Field::new("view_name", DataType::Utf8, false),
        Field::new("version", DataType::Int64, true),
        Field::new("last_refresh", utc(), true),
        Field::new("last_method", DataType::Utf8, true),
        Field::new("new_files_read", DataType::Int64, true),
        Field::new("sources", DataType::Utf8, true),
        Field::new("definition", DataType::Utf8, false),
    ]))
}

/// One row per materialized view; what its newest commit recorded about
/// the refresh that made it (`sluice.refresh` in its commitInfo).
async fn materialized_views(catalog: &super::Catalog) -> crate::error::Result<RecordBatch> {
    use datafusion::arrow::array::TimestampMicrosecondArray;
    let snapshot = catalog.snapshot();
    let lake = catalog.lake();
    let (
        mut schemas,
        mut names,
        mut versions,
        mut at,
        mut methods,
        mut files,
        mut sources,
        mut defs,
    ) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for o in snapshot.objects() {
        let super::Def::MaterializedView(def) = &o.def else {
            continue;
        };
        let table = lake.table(&lake.url_for(&def.table.location)?).await.ok();
        let info = match &table {
            Some(t) => crate::lake::last_refresh_info(t).await,
            None => None,
        };
        let refresh = info.as_ref().and_then(|i| i.get("sluice.refresh"));
        schemas.push(o.schema.clone());
        names.push(o.name.clone());
        versions.push(table.as_ref().and_then(|t| t.version()).map(|v| v as i64));
        at.push(
            info.as_ref()
                .and_then(|i| i.get("timestamp"))
                .and_then(|t| t.as_i64())
                .map(|ms| ms * 1000),
        );
        methods.push(
            refresh
                .and_then(|r| r.get("method"))
                .and_then(|m| m.as_str())
                .map(str::to_string),
        );
        files.push(
            refresh
                .and_then(|r| r.get("new_files"))
                .and_then(|n| n.as_i64()),
        );
        sources.push(
            refresh
                .and_then(|r| r.get("sources"))
                .and_then(|s| s.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(rel, v)| format!("{rel}@{v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }),
        );
        defs.push(def.query.sql.clone());
    }
    Ok(RecordBatch::try_new(
        materialized_views_schema(),
        vec![
            Arc::new(StringArray::from(schemas)),
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from(versions)),
            Arc::new(TimestampMicrosecondArray::from(at).with_timezone("UTC")),
            Arc::new(StringArray::from(methods)),
            Arc::new(Int64Array::from(files)),
            Arc::new(StringArray::from(sources)),
            Arc::new(StringArray::from(defs)),
        ],
    )?)
}

fn feature_views_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("schema_name", DataType::Utf8, false),
        Field::new("view_name", DataType::Utf8, false),
        Field::new("entity", DataType::Utf8, false),
        Field::new("timestamp_column", DataType::Utf8, false),
        Field::new("created_at_column", DataType::Utf8, true),
        Field::new("ttl", DataType::Utf8, true),
        Field::new("online", DataType::Boolean, false),
        Field::new("features", DataType::Utf8, false),
        Field::new("version", DataType::Int64, true),
        Field::new("latest_event", utc(), true),
        Field::new("last_refresh", utc(), true),
        Field::new("lag_seconds", DataType::Float64, true),
    ]))
}

/// One row per feature view. The latest event time is read from the
/// view's rows (its time column only).
async fn feature_views(catalog: &super::Catalog) -> crate::error::Result<RecordBatch> {
    use datafusion::arrow::array::{BooleanArray, Float64Array, TimestampMicrosecondArray};
    use datafusion::arrow::compute::cast;
    let snapshot = catalog.snapshot();
    let lake = catalog.lake();
    let mut rows: Vec<(String, String, super::FeatureDef, String)> = Vec::new();
    let (mut versions, mut latest, mut refreshed) = (vec![], vec![], vec![]);
    for o in snapshot.objects() {
        let (Some(f), Some(stored)) = (o.feature(), o.stored()) else {
            continue;
        };
        let features = f
            .features(&stored.columns)
            .map(|c| format!("{} {}", c.name, c.ty.display()))
            .collect::<Vec<_>>()
            .join(", ");
        let table = lake.table(&lake.url_for(&stored.location)?).await.ok();
        let info = match &table {
            Some(t) => crate::lake::last_commit_info(t).await,
            None => None,
        };
        versions.push(table.as_ref().and_then(|t| t.version()).map(|v| v as i64));
        refreshed.push(
            info.as_ref()
                .and_then(|i| i.get("timestamp"))
                .and_then(|t| t.as_i64())
                .map(|ms| ms * 1000),
        );
        let mut max_event = None;
        if let Some(t) = &table {
            let ctx = datafusion::prelude::SessionContext::new();
            let provider = crate::lake::provider(t).await?;
            let df = ctx.read_table(provider)?.aggregate(
                vec![],
                vec![
                    datafusion::functions_aggregate::expr_fn::max(datafusion::prelude::col(
                        datafusion::common::Column::new_unqualified(&f.timestamp),
                    ))
                    .alias("m"),
                ],
            )?;
            for b in df.collect().await? {
                if b.num_rows() > 0 {
                    let m = cast(b.column(0), &utc())?;
                    let m = m
                        .as_any()
                        .downcast_ref::<TimestampMicrosecondArray>()
                        .expect("cast to microseconds");
                    if m.is_valid(0) {
                        max_event = Some(m.value(0));
                    }
                }
            }
        }
        latest.push(max_event);
        rows.push((o.schema.clone(), o.name.clone(), f.clone(), features));
    }
    let now = chrono::Utc::now().timestamp_micros();
    let lag: Vec<Option<f64>> = latest
        .iter()
        .map(|l| l.map(|l| (now - l) as f64 / 1e6))
        .collect();
    use datafusion::arrow::array::Array;
    Ok(RecordBatch::try_new(
        feature_views_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.0.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.2.entity.join(", ")),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.2.timestamp.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.2.created_at.as_deref()),
            )),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.2.ttl.as_deref()),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|r| Some(r.2.online)),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.3.as_str()),
            )),
            Arc::new(Int64Array::from(versions)),
            Arc::new(TimestampMicrosecondArray::from(latest).with_timezone("UTC")),
            Arc::new(TimestampMicrosecondArray::from(refreshed).with_timezone("UTC")),
            Arc::new(Float64Array::from(lag)),
        ],
    )?)
}

fn feature_services_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("schema_name", DataType::Utf8, false),
        Field::new("service_name", DataType::Utf8, false),
        Field::new("view_schema", DataType::Utf8, false),
        Field::new("view_name", DataType::Utf8, false),
        Field::new("features", DataType::Utf8, false),
    ]))
}

async fn feature_services(catalog: &super::Catalog) -> crate::error::Result<RecordBatch> {
    let snapshot = catalog.snapshot();
    let mut rows: Vec<[String; 5]> = Vec::new();
    for o in snapshot.objects() {
        let super::Def::FeatureService(s) = &o.def else {
            continue;
        };
        for v in &s.views {
            rows.push([
                o.schema.clone(),
                o.name.clone(),
                v.view.schema.clone(),
                v.view.name.clone(),
                v.features.join(", "),
            ]);
        }
    }
    let column = |i: usize| -> datafusion::arrow::array::ArrayRef {
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r[i].as_str()),
        ))
    };
    Ok(RecordBatch::try_new(
        feature_services_schema(),
        (0..5).map(column).collect(),
    )?)
}

pub fn training_sets_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table_schema", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("service", DataType::Utf8, false),
        Field::new("label_query", DataType::Utf8, false),
        Field::new("as_of", DataType::Utf8, true),
        Field::new("feature_versions", DataType::Utf8, false),
        Field::new("created_at", utc(), false),
    ]))
}
