//! Materialized views: a query whose result is kept as a Delta table.
//!
//! ```text
//!  CREATE MATERIALIZED VIEW v AS q ──bind q──▶ plan ──write──▶ Delta table (version 0)
//!  REFRESH MATERIALIZED VIEW v     ──bind q──▶ sources changed? ──▶ overwrite, one commit
//! ```
//!
//! Each commit of the view's table records, as Delta application
//! transactions (`sluice.source.<source table id>`, version), the version
//! of every source table it consumed. A refresh compares them with the
//! sources' newest versions: nothing changed, nothing is written. Two
//! refreshes racing write the same application ids, so Delta's conflict
//! check lets only one of them commit. A refresh that fails leaves the
//! previous version in place.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{CreateView, ObjectName, Statement};
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;

use super::ddl::{
    cast_to_columns, duplicate_relation, free_location, missing_schema, query_with_column_names,
};
use super::{Output, Session, bind};
use crate::catalog::{
    ColumnDef, Kind, MatViewDef, Object, RelName, SYSTEM_SCHEMAS, TableDef, ViewDef,
};
use crate::error::{Error, Result};
use crate::types::PgType;
use crate::write::{AppTransaction, Append, Target, WriteOptions};

/// The application id under which a view's commits record how far they
/// consumed the source table `table` (its Delta table id: a table dropped
/// and created again under the same name is a new source).
fn source_app_id(table: &DeltaTable) -> Result<String> {
    Ok(format!(
        "sluice.source.{}",
        table.snapshot()?.metadata().id()
    ))
}

/// The view's query planned over the newest snapshot of every table it
/// reads, and those snapshots: (source, app id, version).
async fn plan_query(
    session: &Session,
    sql: &str,
) -> Result<(
    datafusion::logical_expr::LogicalPlan,
    Vec<(RelName, String, i64)>,
)> {
    let stmt = match crate::frontend::parse(sql)?.pop() {
        Some(crate::frontend::Stmt::Sql(s)) => *s,
        _ => return Err(Error::internal("a materialized view's query is a query")),
    };
    let mut binder = bind::Binder::new(session);
    let plan = session.plan_with(&mut binder, stmt).await?;
    let mut sources = Vec::new();
    for (rel, table) in binder.snapshots() {
        sources.push((
            rel.clone(),
            source_app_id(table)?,
            table.version().unwrap_or(0) as i64,
        ));
    }
    sources.sort();
    Ok((plan, sources))
}

fn transactions(sources: &[(RelName, String, i64)]) -> Vec<AppTransaction> {
    sources
        .iter()
        .map(|(_, app_id, version)| AppTransaction {
            app_id: app_id.clone(),
            version: *version,
        })
        .collect()
}

fn refresh_metadata(method: &str) -> Vec<(String, serde_json::Value)> {
    vec![(
        "sluice.refresh".to_string(),
        serde_json::json!({ "method": method }),
    )]
}

/// `CREATE MATERIALIZED VIEW [IF NOT EXISTS] v [(names)] AS query`
pub async fn create(session: &mut Session, cv: CreateView) -> Result<Output> {
    const TAG: &str = "CREATE MATERIALIZED VIEW";
    let (schema, name) = session.qualify(&cv.name)?;
    let snap = session.engine.catalog().snapshot();
    if !snap.schema_exists(&schema) || SYSTEM_SCHEMAS.contains(&schema.as_str()) {
        return Err(missing_schema(&schema));
    }
    if cv.or_replace {
        return Err(Error::syntax(
            "syntax error at or near \"MATERIALIZED\" (CREATE OR REPLACE MATERIALIZED VIEW)",
        ));
    }
    if snap.relation(&schema, &name).is_some() {
        if cv.if_not_exists {
            session.notice(format!("relation \"{name}\" already exists, skipping"));
            return Ok(Output::command(TAG));
        }
        return Err(duplicate_relation(&name));
    }
    // Names resolved now, as for a view.
    let mut stmt = Statement::Query(query_with_column_names(&cv)?);
    let depends_on = session.qualify_query(&mut stmt)?;
    let Statement::Query(query) = stmt else {
        unreachable!("built as a query")
    };
    let sql = query.to_string();
    let (plan, sources) = plan_query(session, &sql).await?;
    let mut columns: Vec<ColumnDef> = Vec::new();
    for f in plan.schema().fields() {
        if columns.iter().any(|c| &c.name == f.name()) {
            return Err(Error::new(
                crate::error::ErrorKind::DuplicateColumn,
                format!("column \"{}\" specified more than once", f.name()),
            ));
        }
        columns.push(ColumnDef::plain(
            f.name(),
            PgType::from_arrow(f.data_type()),
        ));
    }
    let location = free_location(session, &schema, &name);
    let table_def = TableDef::new(columns.clone(), location.clone());
    let lake = session.engine.lake().clone();
    let url = lake.url_for(&location)?;
    if lake.exists(&url).await? {
        // Left behind by a DROP that did not finish: no object owns it.
        lake.remove_all(&url).await?;
    }
    let df = datafusion::dataframe::DataFrame::new(session.ctx.state(), plan);
    let df = cast_to_columns(df, &table_def)?;
    let fresh = deltalake::DeltaTableBuilder::from_url(url.clone())?.build()?;
    let written = crate::write::write_plan(
        session.context().state(),
        lake.clone(),
        fresh,
        df.into_unoptimized_plan(),
        SaveMode::ErrorIfExists,
        WriteOptions {
            txns: transactions(&sources),
            metadata: refresh_metadata("full"),
            ..Default::default()
        },
    )
    .await;
    if let Err(e) = written {
        let _ = lake.remove_all(&url).await;
        return Err(e);
    }
    let entry = Object::materialized_view(
        &schema,
        &name,
        MatViewDef {
            query: ViewDef {
                sql,
                columns,
                depends_on: depends_on.into_iter().collect(),
            },
            table: table_def,
        },
    );
    let registered = session
        .engine
        .catalog()
        .mutate(move |entries| {
            if entries
                .iter()
                .any(|e| e.is_relation(&entry.schema, &entry.name))
            {
                return Err(duplicate_relation(&entry.name));
            }
            entries.push(entry.clone());
            Ok(())
        })
        .await;
    if let Err(e) = registered {
        let _ = lake.remove_all(&url).await;
        return Err(e);
    }
    Ok(Output::command(TAG))
}

/// What a refresh of a view would do, and why.
struct Decision {
    method: &'static str,
    reason: String,
}

/// The sources whose newest version the view has not consumed yet: what
/// changed (for EXPLAIN), and the transactions a refresh records. A
/// source already consumed at its version is left out, so that a FULL
/// refresh is not taken for a retry of an earlier write.
async fn changed_sources(
    view: &DeltaTable,
    sources: &[(RelName, String, i64)],
) -> Result<(Vec<String>, Vec<AppTransaction>)> {
    let mut changed = Vec::new();
    let mut txns = Vec::new();
    for (rel, app_id, version) in sources {
        let applied = crate::write::applied_version(view, app_id).await?;
        match applied {
            Some(v) if v == *version => continue,
            Some(v) => changed.push(format!("{rel} (version {v} → {version})")),
            None => changed.push(format!("{rel} (new source, version {version})")),
        }
        txns.push(AppTransaction {
            app_id: app_id.clone(),
            version: *version,
        });
    }
    Ok((changed, txns))
}

fn decide(full: bool, changed: &[String], sources: &[(RelName, String, i64)]) -> Decision {
    if full {
        return Decision {
            method: "full",
            reason: "FULL was asked for: the query is recomputed and its result replaces the \
                     view's rows in one commit"
                .into(),
        };
    }
    if changed.is_empty() {
        let at: Vec<String> = sources
            .iter()
            .map(|(r, _, v)| format!("{r} at version {v}"))
            .collect();
        let reason = if at.is_empty() {
            "the query reads no table; nothing to refresh".to_string()
        } else {
            format!(
                "no source changed since the last refresh ({})",
                at.join(", ")
            )
        };
        return Decision {
            method: "none",
            reason,
        };
    }
    Decision {
        method: "full",
        reason: format!(
            "changed since the last refresh: {}; the query is recomputed and its result \
             replaces the view's rows in one commit (incremental refresh is not available \
             in this version)",
            changed.join(", ")
        ),
    }
}

/// `[EXPLAIN] REFRESH MATERIALIZED VIEW v [FULL]`
pub async fn refresh(
    session: &mut Session,
    name: &ObjectName,
    full: bool,
    explain: bool,
) -> Result<Output> {
    let snapshot = session.engine.catalog().snapshot();
    let system = session.system_tables();
    let object = session
        .resolver(&snapshot, &system)
        .object(name, Kind::MaterializedView)?;
    let crate::catalog::Def::MaterializedView(def) = &object.def else {
        unreachable!("resolved as a materialized view")
    };
    let lake = session.engine.lake().clone();
    let view = lake.table(&lake.url_for(&def.table.location)?).await?;
    let (plan, sources) = plan_query(session, &def.query.sql).await?;
    let (changed, txns) = changed_sources(&view, &sources).await?;
    let decision = decide(full, &changed, &sources);
    if explain {
        return explain_output(&decision);
    }
    if decision.method == "none" {
        return Ok(Output::command("REFRESH MATERIALIZED VIEW"));
    }
    let wc = session.write_context();
    let target = Target {
        schema: object.schema.clone(),
        name: object.name.clone(),
        alias: None,
        def: Arc::new(def.table.clone()),
        table: view,
    };
    let df = datafusion::dataframe::DataFrame::new(session.ctx.state(), plan);
    let df = cast_to_columns(df, &target.def)?;
    Append::new(&wc, &target)
        .replacing_all()
        .app_transactions(txns)
        .metadata(refresh_metadata(decision.method))
        .run(df)
        .await?;
    Ok(Output::command("REFRESH MATERIALIZED VIEW"))
}

/// The columns `EXPLAIN REFRESH MATERIALIZED VIEW` returns.
pub fn explain_schema() -> datafusion::arrow::datatypes::SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("method", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

fn explain_output(d: &Decision) -> Result<Output> {
    let schema = explain_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![d.method])) as ArrayRef,
            Arc::new(StringArray::from(vec![d.reason.clone()])),
        ],
    )?;
    Output::batches(schema, vec![batch], "EXPLAIN")
}
