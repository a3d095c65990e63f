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

mod incremental;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{Column, JoinType, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, LogicalPlan, cast, col, lit};
use datafusion::sql::sqlparser::ast::{CreateView, Ident, ObjectName, ObjectType, Statement};
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use url::Url;

use super::ddl::{
    cast_to_columns, duplicate_column, duplicate_relation, free_location, missing_schema,
    query_with_column_names, register, unique_columns,
};
use super::{Output, Session, bind};
use crate::catalog::schedule::RefreshPolicy;
use crate::catalog::{
    ColumnDef, FeatureDef, Kind, MatViewDef, Object, RelName, SYSTEM_SCHEMAS, TableDef, ViewDef,
};
use crate::error::{Error, Result};
use crate::lake::TimeTravel;
use crate::lake::changes::Changes;
use crate::types::PgType;
use crate::write::{AppTransaction, Append, GroupMerge, Target, WriteOptions, merge_groups};
use incremental::not_distinct;

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
) -> Result<(LogicalPlan, Vec<(RelName, String, DeltaTable)>)> {
    let stmt = match crate::frontend::parse(sql)?.pop() {
        Some(crate::frontend::Stmt::Sql(s)) => *s,
        _ => return Err(Error::internal("a materialized view's query is a query")),
    };
    let mut binder = bind::Binder::new(session);
    let plan = session.plan_with(&mut binder, stmt).await?;
    let mut sources = Vec::new();
    for (rel, table) in binder.snapshots() {
        sources.push((rel.clone(), source_app_id(table)?, table.clone()));
    }
    sources.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((plan, sources))
}

fn transactions(sources: &[(RelName, String, DeltaTable)]) -> Vec<AppTransaction> {
    sources
        .iter()
        .map(|(_, app_id, table)| AppTransaction {
            app_id: app_id.clone(),
            version: table.version().unwrap_or(0) as i64,
        })
        .collect()
}

/// What a commit of the view records about the refresh that made it
/// (read by `sluice.materialized_views`).
fn refresh_metadata(
    method: &str,
    new_files: usize,
    sources: &[(RelName, String, DeltaTable)],
) -> Vec<(String, serde_json::Value)> {
    let versions: serde_json::Map<String, serde_json::Value> = sources
        .iter()
        .map(|(rel, _, t)| (rel.to_string(), t.version().unwrap_or(0).into()))
        .collect();
    vec![(
        "sluice.refresh".to_string(),
        serde_json::json!({ "method": method, "new_files": new_files, "sources": versions }),
    )]
}

/// The definition `CREATE MATERIALIZED VIEW v AS query` would store for
/// `query` now (names resolved): equal to a view's stored definition when
/// creating it again would make the same view.
pub fn definition_of(session: &Session, query: &str) -> Result<String> {
    let mut stmt = match crate::frontend::parse(query)?.pop() {
        Some(crate::frontend::Stmt::Sql(s)) if matches!(*s, Statement::Query(_)) => *s,
        _ => {
            return Err(Error::syntax(
                "a materialized view's definition must be one query",
            ));
        }
    };
    session.qualify_query(&mut stmt)?;
    Ok(stmt.to_string())
}

/// `CREATE MATERIALIZED VIEW [IF NOT EXISTS] v [(names)] [PARTITIONED BY
/// (columns)] AS query`
pub async fn create(
    session: &mut Session,
    cv: CreateView,
    partition_by: Vec<String>,
    expectations: Vec<crate::frontend::Expectation>,
    feature: Option<FeatureDef>,
    refresh: Option<RefreshPolicy>,
) -> Result<Output> {
    let feature_view = feature.is_some();
    let tag = if feature_view {
        "CREATE FEATURE VIEW"
    } else {
        "CREATE MATERIALIZED VIEW"
    };
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
            return Ok(Output::command(tag));
        }
        return Err(duplicate_relation(&name));
    }
    // Names resolved now, as for a view.
    let mut stmt = Statement::Query(query_with_column_names(&cv)?);
    let depends_on = session.qualify_query(&mut stmt)?;
    let Statement::Query(mut query) = stmt else {
        unreachable!("built as a query")
    };
    let mut sql = query.to_string();
    let (mut plan, mut sources) = plan_following(session, &sql).await?;
    // Its columns are named as PostgreSQL names them (`count(*)` is
    // `count`), in the kept query too, which refreshes plan again.
    let output = session.output_schema(&plan)?;
    if let Some(named) =
        crate::engine::names::pg_result_names(&Statement::Query(query.clone()), output.as_arrow())
    {
        unique_columns(named.fields().iter().map(|f| f.name().as_str()))?;
    }
    crate::engine::names::alias_pg_names(&mut query, output.as_arrow());
    if query.to_string() != sql {
        sql = query.to_string();
        (plan, sources) = plan_following(session, &sql).await?;
    }
    let mut columns: Vec<ColumnDef> = Vec::new();
    for f in session.output_schema(&plan)?.fields() {
        if columns.iter().any(|c| &c.name == f.name()) {
            return Err(duplicate_column(f.name()));
        }
        columns.push(ColumnDef::plain(
            f.name(),
            PgType::from_arrow(f.data_type()),
        ));
    }
    for p in &partition_by {
        if !columns.iter().any(|c| &c.name == p) {
            return Err(Error::new(
                crate::error::ErrorKind::UndefinedColumn,
                format!("partition column \"{p}\" is not a column of materialized view \"{name}\""),
            ));
        }
    }
    if let Some(f) = &feature {
        check_feature_columns(f, &columns, &name)?;
    }
    let location = free_location(session, &schema, &name);
    let mut table_def = TableDef::new(columns.clone(), location.clone());
    table_def.partition_by = partition_by.clone();
    let lake = session.engine.lake().clone();
    let url = lake.url_for(&location)?;
    if lake.exists(&url).await? {
        // Left behind by a DROP that did not finish: no object owns it.
        lake.remove_all(&url).await?;
    }
    for x in &expectations {
        let e = super::ddl::new_expectation(
            session,
            &table_def,
            &name,
            Some(x.name.clone()),
            x.condition.to_string(),
            x.action,
        )?;
        table_def.expectations.push(e);
    }
    let df = datafusion::dataframe::DataFrame::new(session.ctx.state(), plan);
    let df = cast_to_columns(df, &table_def)?;
    let txns = transactions(&sources);
    let metadata = refresh_metadata("full", 0, &sources);
    let checked = !table_def.expectations.is_empty();
    // Rows written: PostgreSQL answers `SELECT n`, as for CREATE TABLE AS.
    let mut rows = 0;
    if checked {
        // Rows go in through the write path, which applies the
        // expectations; the table and its quarantine exist first.
        let arrow = table_def.arrow_schema();
        lake.create_with_checks(&url, &arrow, &partition_by, &name, &[])
            .await?;
    } else {
        // One commit creates the table with the rows.
        let fresh = deltalake::DeltaTableBuilder::from_url(url.clone())?.build()?;
        let written = crate::write::write_plan(
            session.context().state(),
            lake.clone(),
            fresh,
            df.clone().into_unoptimized_plan(),
            SaveMode::ErrorIfExists,
            WriteOptions {
                partition_by,
                txns: txns.clone(),
                metadata: metadata.clone(),
                ..Default::default()
            },
        )
        .await;
        match written {
            Ok(outcome) => rows = outcome.rows,
            Err(e) => {
                let _ = lake.remove_all(&url).await;
                return Err(e);
            }
        }
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
            table: table_def.clone(),
            feature,
            refresh,
        },
    );
    if let Err(e) = register(session, entry).await {
        let _ = lake.remove_all(&url).await;
        return Err(e);
    }
    if checked {
        let filled = async {
            super::ddl::ensure_quarantine(session, &schema, &name, &table_def).await?;
            let wc = session.write_context();
            let target = Target {
                schema: schema.clone(),
                name: name.clone(),
                alias: None,
                def: Arc::new(table_def.clone()),
                table: lake.table(&url).await?,
            };
            Append::new(&wc, &target)
                .app_transactions(txns)
                .metadata(metadata)
                .run(df)
                .await
        };
        match filled.await {
            Ok(outcome) => rows = outcome.rows,
            Err(e) => {
                // Nothing of the view stays, its quarantine table included.
                let named = |n: &str| ObjectName::from(vec![Ident::new(&schema), Ident::new(n)]);
                let quarantine = crate::quality::expect::quarantine_table(&name);
                for (kind, n) in [
                    (ObjectType::MaterializedView, name.as_str()),
                    (ObjectType::Table, quarantine.as_str()),
                ] {
                    let _ = Box::pin(super::ddl::drop(session, kind, true, vec![named(n)], false))
                        .await;
                }
                session.notices.clear();
                return Err(e);
            }
        }
    }
    Ok(if feature_view {
        Output::command(tag)
    } else {
        Output::count("SELECT", rows)
    })
}

/// [`plan_query`], after turning on the change data feed of every source
/// that has it off, so a later UPDATE, DELETE or MERGE of one is refreshed
/// from the rows it changed (the versions returned include that commit).
/// A source that cannot take it (a store refusing) only means full
/// refreshes after such changes.
async fn plan_following(
    session: &Session,
    sql: &str,
) -> Result<(LogicalPlan, Vec<(RelName, String, DeltaTable)>)> {
    let (plan, sources) = plan_query(session, sql).await?;
    let lake = session.engine.lake();
    let mut turned_on = false;
    for (rel, _, table) in &sources {
        match crate::lake::enable_change_data_feed(lake, table).await {
            Ok(changed) => turned_on |= changed,
            Err(e) => tracing::warn!("could not turn on the change data feed of {rel}: {e}"),
        }
    }
    if turned_on {
        return plan_query(session, sql).await;
    }
    Ok((plan, sources))
}

/// What a refresh of a view does.
enum Work {
    None,
    Full,
    Incremental(Box<incremental::Delta>),
}

/// What a refresh of a view would do, and why.
struct Decision {
    method: &'static str,
    reason: String,
    work: Work,
    /// New source files the incremental plan reads.
    new_files: usize,
}

impl Decision {
    fn full(reason: String) -> Decision {
        Decision {
            method: "full",
            reason: format!(
                "{reason}; the query is recomputed and its result replaces the view's rows in \
                 one commit"
            ),
            work: Work::Full,
            new_files: 0,
        }
    }
}

/// A source table the view reads, as of now, and the version of it the
/// view consumed last.
struct Source {
    rel: RelName,
    app_id: String,
    table: DeltaTable,
    version: i64,
    applied: Option<i64>,
}

impl Source {
    fn transaction(&self) -> AppTransaction {
        AppTransaction {
            app_id: self.app_id.clone(),
            version: self.version,
        }
    }
}

/// The sources whose newest version the view has not consumed yet. A
/// source already consumed at its version is left out, so that a FULL
/// refresh is not taken for a retry of an earlier write.
async fn changed_sources(
    view: &DeltaTable,
    sources: Vec<(RelName, String, DeltaTable)>,
) -> Result<Vec<Source>> {
    let mut changed = Vec::new();
    for (rel, app_id, table) in sources {
        let version = table.version().unwrap_or(0) as i64;
        let applied = crate::write::applied_version(view, &app_id).await?;
        if applied == Some(version) {
            continue;
        }
        changed.push(Source {
            rel,
            app_id,
            table,
            version,
            applied,
        });
    }
    Ok(changed)
}

fn describe(s: &Source) -> String {
    match s.applied {
        Some(v) => format!("{} (version {v} → {})", s.rel, s.version),
        None => format!("{} (new source, version {})", s.rel, s.version),
    }
}

async fn decide(
    session: &Session,
    plan: &LogicalPlan,
    expectations: bool,
    full: bool,
    changed: &[Source],
    all: &[(RelName, String, DeltaTable)],
) -> Result<Decision> {
    if full {
        return Ok(Decision::full("FULL was asked for".into()));
    }
    let plan = match incremental::inline_views(plan.clone()) {
        Ok(p) => p,
        Err(reason) => return Ok(Decision::full(reason)),
    };
    if let Some(what) = incremental::untracked(&plan) {
        return Ok(Decision::full(format!(
            "the query reads {what}, whose changes no Delta log records"
        )));
    }
    if changed.is_empty() {
        let at: Vec<String> = all
            .iter()
            .map(|(r, _, t)| format!("{r} at version {}", t.version().unwrap_or(0)))
            .collect();
        let reason = if at.is_empty() {
            "the query reads no table; nothing to refresh".to_string()
        } else {
            format!(
                "no source changed since the last refresh ({})",
                at.join(", ")
            )
        };
        return Ok(Decision {
            method: "none",
            reason,
            work: Work::None,
            new_files: 0,
        });
    }
    let what: Vec<String> = changed.iter().map(describe).collect();
    let what = what.join(", ");
    let lake = session.engine.lake();
    let mut deltas: HashMap<Url, incremental::Changed> = HashMap::new();
    let mut appended = Vec::new();
    let mut new_files = 0;
    let mut feed = false;
    for s in changed {
        let Some(applied) = s.applied else {
            return Ok(Decision::full(format!(
                "changed since the last refresh: {what}"
            )));
        };
        match crate::lake::changes::since(&s.table, applied, s.version).await? {
            Changes::Other(why) => {
                return Ok(Decision::full(format!(
                    "{}: {why} (only appended rows, or changes recorded in the table's \
                     change data feed, are refreshed incrementally)",
                    s.rel
                )));
            }
            Changes::Feed => {
                appended.push(format!(
                    "{} changed rows, read from its change data feed (version {applied} → {})",
                    s.rel, s.version
                ));
                feed = true;
                let like = crate::lake::provider(&s.table).await?.schema();
                deltas.insert(
                    s.table.table_url().clone(),
                    incremental::Changed {
                        version: s.version as u64,
                        delta: crate::lake::provider_of_changes(
                            &s.table, applied, s.version, &like,
                        )
                        .await?,
                        old: None,
                    },
                );
            }
            Changes::Appended(paths) => {
                appended.push(format!(
                    "{} gained {} file{} (version {applied} → {})",
                    s.rel,
                    paths.len(),
                    if paths.len() == 1 { "" } else { "s" },
                    s.version
                ));
                if paths.is_empty() {
                    continue;
                }
                new_files += paths.len();
                deltas.insert(
                    s.table.table_url().clone(),
                    incremental::Changed {
                        version: s.version as u64,
                        delta: crate::lake::provider_of_files(&s.table, paths).await?,
                        old: None,
                    },
                );
            }
        }
    }
    let appended = appended.join(", ");
    if deltas.is_empty() {
        return Ok(Decision {
            method: "none",
            reason: format!("no rows were added since the last refresh: {appended}"),
            work: Work::None,
            new_files: 0,
        });
    }
    let mut derived = incremental::Deriver {
        changed: &deltas,
        feed,
    }
    .derive(&plan);
    if matches!(derived, Err(incremental::Refused::NeedsOld)) {
        for s in changed {
            let url = s.table.table_url().clone();
            if let (Some(c), Some(applied)) = (deltas.get_mut(&url), s.applied) {
                let old = lake.table_at(&url, &TimeTravel::Version(applied)).await?;
                c.old = Some(crate::lake::provider(&old).await?);
            }
        }
        derived = incremental::Deriver {
            changed: &deltas,
            feed,
        }
        .derive(&plan);
    }
    if expectations
        && matches!(
            derived,
            Ok(incremental::Delta::Combine { .. } | incremental::Delta::Groups { .. })
        )
    {
        return Ok(Decision::full(format!(
            "{appended}; the view has expectations, which are checked on appended rows or a \
             whole result, not on merged groups"
        )));
    }
    Ok(match derived {
        Ok(delta @ incremental::Delta::Append(_)) => Decision {
            method: "append",
            reason: format!(
                "only rows were appended ({appended}); the query maps each new row to its own \
                 result rows, so only the new files are read and their result is appended"
            ),
            work: Work::Incremental(Box::new(delta)),
            new_files,
        },
        Ok(delta @ incremental::Delta::Combine { .. }) => Decision {
            method: "combine",
            reason: format!(
                "only rows were appended ({appended}); every column is a group key, count, sum, \
                 min or max: the new rows are aggregated alone and combined with the groups \
                 the view holds"
            ),
            work: Work::Incremental(Box::new(delta)),
            new_files,
        },
        Ok(
            delta @ incremental::Delta::Groups {
                partitions: true, ..
            },
        ) => Decision {
            method: "partitions",
            reason: format!(
                "{appended}; the window functions are partitioned by columns of the view: \
                 every row of the partitions the {} rows touch is recomputed from the \
                 sources and replaces that partition's rows",
                if feed { "changed" } else { "new" }
            ),
            work: Work::Incremental(Box::new(delta)),
            new_files,
        },
        Ok(delta @ incremental::Delta::Groups { .. }) if feed => Decision {
            method: "groups",
            reason: format!(
                "{appended}; the groups the changed rows were or are in are recomputed from \
                 the sources and merged into the view (groups left empty are deleted)"
            ),
            work: Work::Incremental(Box::new(delta)),
            new_files,
        },
        Ok(delta @ incremental::Delta::Groups { .. }) => Decision {
            method: "groups",
            reason: format!(
                "only rows were appended ({appended}); the groups the new rows touch are \
                 recomputed from the sources and merged into the view"
            ),
            work: Work::Incremental(Box::new(delta)),
            new_files,
        },
        Err(incremental::Refused::Reason(why)) => Decision::full(format!("{appended}; {why}")),
        Err(incremental::Refused::NeedsOld) => Decision::full(format!(
            "{appended}; an earlier version of a source is not readable"
        )),
    })
}

/// A feature view's entity keys and times are columns of its query, the
/// times of a time type.
fn check_feature_columns(f: &FeatureDef, columns: &[ColumnDef], view: &str) -> Result<()> {
    let find = |c: &str, role: &str| {
        columns.iter().find(|x| x.name == c).ok_or_else(|| {
            Error::new(
                crate::error::ErrorKind::UndefinedColumn,
                format!("{role} column \"{c}\" is not a column of feature view \"{view}\""),
            )
        })
    };
    for k in &f.entity {
        find(k, "entity")?;
    }
    let times = std::iter::once((&f.timestamp, "TIMESTAMP"))
        .chain(f.created_at.as_ref().map(|c| (c, "CREATED_AT")));
    for (c, role) in times {
        let col = find(c, role)?;
        if !matches!(
            col.ty.arrow_type(),
            DataType::Timestamp(..) | DataType::Date32
        ) {
            return Err(Error::new(
                crate::error::ErrorKind::DatatypeMismatch,
                format!(
                    "{role} column \"{c}\" of feature view \"{view}\" must be a timestamp or date, not {}",
                    col.ty.display()
                ),
            ));
        }
    }
    if f.features(columns).next().is_none() {
        return Err(Error::syntax(format!(
            "feature view \"{view}\" has no feature columns besides its entity and times"
        )));
    }
    Ok(())
}

/// What a refresh did.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// The method it took (`none`, `full`, `append`, `combine`, `groups`,
    /// `partitions`).
    pub method: &'static str,
    /// The view's version after it (unchanged for `none`).
    pub version: i64,
    /// Rows it wrote.
    pub rows: usize,
    pub bytes: u64,
    /// Every source and the version of it the view is now up to.
    pub sources: Vec<(RelName, i64)>,
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
    if explain {
        let prepared = prepare_refresh(session, &object, full).await?;
        return explain_output(&prepared.decision);
    }
    // The scheduler's lease: a refresh by hand waits for a scheduled one
    // (of any server on the lake) instead of racing it.
    use crate::lake::lease::{Leases, TTL_MS};
    let leases = Leases::new(session.engine.lake())?;
    let key = crate::catalog::schedule::lease_key(&object.rel_name());
    let holder = format!("statement-{}", uuid::Uuid::new_v4());
    let patience = std::time::Duration::from_millis(2 * TTL_MS as u64);
    let (held, _) = leases
        .acquire_waiting(&key, &holder, TTL_MS, patience)
        .await?;
    let (done, _) = leases
        .holding(held, TTL_MS, refresh_view(session, &object, full))
        .await;
    done?;
    Ok(Output::command("REFRESH MATERIALIZED VIEW"))
}

/// The view's table, its query's plan, its sources now and what a
/// refresh would do.
struct Prepared {
    view: DeltaTable,
    plan: LogicalPlan,
    sources: Vec<(RelName, String, DeltaTable)>,
    changed: Vec<Source>,
    decision: Decision,
}

async fn prepare_refresh(session: &Session, object: &Object, full: bool) -> Result<Prepared> {
    let crate::catalog::Def::MaterializedView(def) = &object.def else {
        return Err(Error::new(
            crate::error::ErrorKind::WrongObjectType,
            format!("\"{}\" is not a materialized view", object.name),
        ));
    };
    let lake = session.engine.lake().clone();
    let view = lake.table(&lake.url_for(&def.table.location)?).await?;
    let (plan, sources) = plan_following(session, &def.query.sql).await?;
    let changed = changed_sources(&view, sources.clone()).await?;
    let expectations = !def.table.expectations.is_empty();
    let decision = decide(session, &plan, expectations, full, &changed, &sources).await?;
    Ok(Prepared {
        view,
        plan,
        sources,
        changed,
        decision,
    })
}

/// Refresh the materialized (or feature) view `object`: one commit, or
/// none when no source changed. A refresh that commits notifies
/// `sluice_refresh` listeners.
pub async fn refresh_view(session: &Session, object: &Object, full: bool) -> Result<Refreshed> {
    let prepared = prepare_refresh(session, object, full).await?;
    let (sources, changed) = (&prepared.sources, &prepared.changed);
    let crate::catalog::Def::MaterializedView(def) = &object.def else {
        unreachable!("checked by prepare_refresh")
    };
    let mut consumed: Vec<(RelName, i64)> = Vec::new();
    for (rel, app_id, table) in sources {
        let version = match changed.iter().find(|c| &c.app_id == app_id) {
            Some(c) => c.version,
            None => table.version().unwrap_or(0) as i64,
        };
        consumed.push((rel.clone(), version));
    }
    let method = prepared.decision.method;
    let before = prepared.view.version().unwrap_or(0) as i64;
    let outcome = apply(session, object, def, prepared).await?;
    let (version, rows, bytes) = match &outcome {
        Some(o) => (o.version, o.rows, o.bytes_added),
        None => (before, 0, 0),
    };
    if outcome.is_some() && version != before {
        session.engine.notifier().refreshed(
            session.pid(),
            &object.rel_name().to_string(),
            version,
            method,
            Some(rows),
        );
    }
    // Lookups see the refresh as soon as it returns (the poller would
    // catch up later; a failure here is left to it).
    if def.feature.as_ref().is_some_and(|f| f.online)
        && let Err(e) = session.engine.online().sync(object).await
    {
        tracing::warn!(view = %object.rel_name(), "online index not brought forward: {e}");
    }
    Ok(Refreshed {
        method,
        version,
        rows,
        bytes,
        sources: consumed,
    })
}

/// Carry out `decision`: the commit's outcome, `None` when there was
/// nothing to write.
async fn apply(
    session: &Session,
    object: &Object,
    def: &MatViewDef,
    prepared: Prepared,
) -> Result<Option<crate::write::Outcome>> {
    let Prepared {
        view,
        plan,
        sources,
        changed,
        decision,
    } = prepared;
    let txns: Vec<AppTransaction> = changed.iter().map(Source::transaction).collect();
    let wc = session.write_context();
    let target = Target {
        schema: object.schema.clone(),
        name: object.name.clone(),
        alias: None,
        def: Arc::new(def.table.clone()),
        table: view,
    };
    let metadata = refresh_metadata(decision.method, decision.new_files, &sources);
    let state = session.ctx.state();
    let outcome = match decision.work {
        Work::None => return Ok(None),
        Work::Full => {
            let df = DataFrame::new(state, plan);
            let df = cast_to_columns(df, &target.def)?;
            Append::new(&wc, &target)
                .replacing_all()
                .app_transactions(txns)
                .metadata(metadata)
                .run(df)
                .await?
        }
        Work::Incremental(delta) => match *delta {
            incremental::Delta::Append(delta) => {
                let df = cast_to_columns(DataFrame::new(state, delta), &target.def)?;
                Append::new(&wc, &target)
                    .app_transactions(txns)
                    .metadata(metadata)
                    .run(df)
                    .await?
            }
            incremental::Delta::Groups {
                rows,
                touched,
                key_columns,
                partitions: true,
            } => {
                // Marker rows (one per touched key) delete the partition's
                // stored rows; the recomputed rows are inserted.
                let columns = &target.def.columns;
                let keys = key_pairs(&key_columns, columns);
                let marker = |is: bool| lit(is).alias(PRESENT);
                let deletes = DataFrame::new(state.clone(), touched).select(
                    touched_keys(&key_columns, columns)
                        .into_iter()
                        .chain(columns.iter().map(|c| {
                            cast(lit(ScalarValue::Null), c.ty.arrow_type()).alias(&c.name)
                        }))
                        .chain([marker(true)])
                        .collect::<Vec<_>>(),
                )?;
                let inserts = cast_to_columns(DataFrame::new(state, rows), &target.def)?;
                let inserts = inserts.select(
                    key_columns
                        .iter()
                        .enumerate()
                        .map(|(k, &c)| {
                            col(Column::new_unqualified(&columns[c].name))
                                .alias(incremental::key_name(k))
                        })
                        .chain(
                            columns
                                .iter()
                                .map(|c| col(Column::new_unqualified(&c.name))),
                        )
                        .chain([marker(false)])
                        .collect::<Vec<_>>(),
                )?;
                let source = deletes.union(inserts)?;
                let how = GroupMerge::ReplacePartitions {
                    marker: PRESENT.to_string(),
                };
                merge_groups(&wc, &target, source, &keys, how, &txns, metadata).await?
            }
            incremental::Delta::Groups {
                rows,
                touched,
                key_columns,
                partitions: false,
            } => {
                let rows = cast_to_columns(DataFrame::new(state.clone(), rows), &target.def)?
                    .with_column(PRESENT, lit(true))?;
                let columns = &target.def.columns;
                let keys =
                    DataFrame::new(state, touched).select(touched_keys(&key_columns, columns))?;
                let on: Vec<Expr> = key_columns
                    .iter()
                    .enumerate()
                    .map(|(k, &c)| {
                        not_distinct(
                            col(Column::new_unqualified(incremental::key_name(k))),
                            col(Column::new_unqualified(&columns[c].name)),
                        )
                    })
                    .collect();
                let source = keys.join_on(rows, JoinType::Left, on)?;
                let keys = key_pairs(&key_columns, columns);
                let how = GroupMerge::Replace {
                    present: PRESENT.to_string(),
                };
                merge_groups(&wc, &target, source, &keys, how, &txns, metadata).await?
            }
            incremental::Delta::Combine {
                rows,
                key_columns,
                combine,
            } => {
                let source = cast_to_columns(DataFrame::new(state, rows), &target.def)?;
                let columns = &target.def.columns;
                let keys: Vec<(String, String)> = key_columns
                    .iter()
                    .map(|&c| (columns[c].name.clone(), columns[c].name.clone()))
                    .collect();
                let set = columns
                    .iter()
                    .zip(&combine)
                    .filter(|(_, how)| **how != incremental::Combine::Key)
                    .map(|(c, how)| (c.name.clone(), combined(&c.name, *how)))
                    .collect();
                let how = GroupMerge::Combine { set };
                merge_groups(&wc, &target, source, &keys, how, &txns, metadata).await?
            }
        },
    };
    Ok(Some(outcome))
}

/// The touched keys (columns `key_name(k)`), each cast to the type of the
/// view column it is.
fn touched_keys(key_columns: &[usize], columns: &[crate::catalog::ColumnDef]) -> Vec<Expr> {
    key_columns
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let key = incremental::key_name(k);
            cast(
                col(Column::new_unqualified(&key)),
                columns[c].ty.arrow_type(),
            )
            .alias(key)
        })
        .collect()
}

/// `(view column, key_name(k))` of each key, as a group merge matches them.
fn key_pairs(
    key_columns: &[usize],
    columns: &[crate::catalog::ColumnDef],
) -> Vec<(String, String)> {
    key_columns
        .iter()
        .enumerate()
        .map(|(k, &c)| (columns[c].name.clone(), incremental::key_name(k)))
        .collect()
}

/// The new value of a view column `c` from its stored value and the new
/// rows' value.
fn combined(c: &str, how: incremental::Combine) -> Expr {
    use crate::write::merge::{GROUP_SOURCE, GROUP_TARGET};
    use datafusion::functions::core::expr_fn::{coalesce, greatest, least};
    let t = col(Column::new(Some(GROUP_TARGET), c));
    let s = col(Column::new(Some(GROUP_SOURCE), c));
    match how {
        incremental::Combine::Key => t,
        incremental::Combine::Count => t + s,
        incremental::Combine::Sum => coalesce(vec![t.clone() + s.clone(), t, s]),
        incremental::Combine::Min => least(vec![t, s]),
        incremental::Combine::Max => greatest(vec![t, s]),
    }
}

/// The column of a group-replacing source that says the group still has
/// a row (null: the group is gone, its row is deleted).
const PRESENT: &str = "__sluice_present";

/// `ALTER MATERIALIZED VIEW [IF EXISTS] v RENAME TO w`: the view keeps
/// its table (and folder); views that read it follow the new name.
pub async fn rename(
    session: &mut Session,
    name: &ObjectName,
    if_exists: bool,
    new_name: &ObjectName,
) -> Result<Output> {
    const TAG: &str = "ALTER MATERIALIZED VIEW";
    let Some(object) = resolve_if_exists(session, name, if_exists)? else {
        return Ok(Output::command(TAG));
    };
    let new = crate::frontend::names::last_ident(new_name);
    super::ddl::rename_relation(
        session,
        Kind::MaterializedView,
        &object.schema,
        &object.name,
        &new,
        None,
    )
    .await?;
    Ok(Output::command(TAG))
}

/// The materialized view `name`; `None` (with PostgreSQL's notice) when
/// it does not exist and `IF EXISTS` was written.
fn resolve_if_exists(
    session: &mut Session,
    name: &ObjectName,
    if_exists: bool,
) -> Result<Option<Object>> {
    let snapshot = session.engine.catalog().snapshot();
    let system = session.system_tables();
    let found = session
        .resolver(&snapshot, &system)
        .object(name, Kind::MaterializedView);
    match found {
        Ok(o) => Ok(Some(o)),
        Err(e) if if_exists && e.kind == crate::error::ErrorKind::UndefinedTable => {
            session.notice(format!(
                "relation \"{}\" does not exist, skipping",
                crate::frontend::names::last_ident(name)
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `ALTER MATERIALIZED VIEW | FEATURE VIEW [IF EXISTS] v SET REFRESH
/// ...`: the view's refresh policy (`None`: refreshed only when asked).
pub async fn set_refresh(
    session: &mut Session,
    name: &ObjectName,
    feature: bool,
    if_exists: bool,
    policy: Option<RefreshPolicy>,
) -> Result<Output> {
    let tag = if feature {
        "ALTER FEATURE VIEW"
    } else {
        "ALTER MATERIALIZED VIEW"
    };
    let Some(object) = resolve_if_exists(session, name, if_exists)? else {
        return Ok(Output::command(tag));
    };
    if feature && object.feature().is_none() {
        return Err(Error::new(
            crate::error::ErrorKind::WrongObjectType,
            format!("\"{}\" is not a feature view", object.name),
        ));
    }
    let (schema, view) = (object.schema.clone(), object.name.clone());
    session
        .engine
        .catalog()
        .mutate(move |objects| {
            let o = objects
                .iter_mut()
                .find(|o| {
                    o.schema == schema && o.name == view && o.kind() == Kind::MaterializedView
                })
                .ok_or_else(|| {
                    Error::new(
                        crate::error::ErrorKind::UndefinedTable,
                        format!("materialized view \"{view}\" does not exist"),
                    )
                })?;
            let crate::catalog::Def::MaterializedView(def) = &o.def else {
                unreachable!("found as a materialized view")
            };
            let mut def = (**def).clone();
            def.refresh = policy.clone();
            o.def = crate::catalog::Def::MaterializedView(Arc::new(def));
            Ok(())
        })
        .await?;
    Ok(Output::command(tag))
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
