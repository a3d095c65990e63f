//! Running a project's nodes: dependency order, in parallel up to
//! `--threads`, each node one statement (one atomic commit) through an
//! embedded engine session; a failed node skips what depends on it; every
//! node run is recorded in `sluice.runs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ParamValues;
use futures::StreamExt;

use super::render::compile;
use super::{Node, NodeKind, Project, Relation, quote, select, tests};
use crate::catalog::Kind;
use crate::engine::{Engine, Output, Session};
use crate::error::{Error, ErrorKind, Result};

/// The command line's project commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Seed,
    Run,
    Snapshot,
    Test,
    Build,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::Seed => "seed",
            Command::Run => "run",
            Command::Snapshot => "snapshot",
            Command::Test => "test",
            Command::Build => "build",
        }
    }

    fn kinds(self) -> &'static [NodeKind] {
        match self {
            Command::Seed => &[NodeKind::Seed],
            Command::Run => &[NodeKind::Model],
            Command::Snapshot => &[NodeKind::Snapshot],
            Command::Test => &[NodeKind::Test],
            Command::Build => &[
                NodeKind::Seed,
                NodeKind::Model,
                NodeKind::Snapshot,
                NodeKind::Test,
            ],
        }
    }
}

/// How a command runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    pub full_refresh: bool,
    pub threads: usize,
    /// Progress lines on standard error (off in tests of the library).
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            select: vec![],
            exclude: vec![],
            full_refresh: false,
            threads: 4,
            progress: true,
        }
    }
}

/// How one node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
    Skipped,
    Pass,
    Fail,
    Warn,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
        }
    }

    /// Whether nodes after it must not run.
    fn stops(self) -> bool {
        matches!(self, Status::Error | Status::Fail | Status::Skipped)
    }
}

/// One node's run.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub id: String,
    pub name: String,
    pub kind: NodeKind,
    pub path: String,
    pub relation: Option<String>,
    pub materialized: String,
    pub status: Status,
    pub message: String,
    pub rows: Option<i64>,
    pub failures: Option<i64>,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub seconds: f64,
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub run_id: String,
    pub results: Vec<NodeResult>,
    pub seconds: f64,
}

impl Summary {
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    /// Whether anything failed (the command's exit status).
    pub fn failed(&self) -> bool {
        self.results
            .iter()
            .any(|r| matches!(r.status, Status::Error | Status::Fail | Status::Skipped))
    }

    pub fn result(&self, name: &str) -> Option<&NodeResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

/// Nodes to run, and which of them each waits for.
fn plan(
    project: &Project,
    command: Command,
    options: &Options,
) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut chosen = select::select(project, &options.select, &options.exclude, command.kinds())?;
    // Ephemeral models run inside the models that read them.
    chosen.retain(|id| {
        project
            .node(id)
            .is_some_and(|n| n.materialized() != "ephemeral")
    });
    let mut waits: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for id in &chosen {
        // The nearest chosen ancestors, through nodes not chosen.
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = project
            .node(id)
            .map(|n| n.depends_on.clone())
            .unwrap_or_default();
        let mut w = BTreeSet::new();
        while let Some(d) = stack.pop() {
            if !seen.insert(d.clone()) {
                continue;
            }
            if chosen.contains(&d) {
                w.insert(d);
            } else if let Some(n) = project.node(&d) {
                stack.extend(n.depends_on.iter().cloned());
            }
        }
        waits.insert(id.clone(), w);
    }
    if command == Command::Build {
        // What reads a node waits for the node's own tests too.
        let single: Vec<(String, String)> = chosen
            .iter()
            .filter_map(|id| project.node(id))
            .filter(|n| n.kind == NodeKind::Test && n.depends_on.len() == 1)
            .map(|n| (n.id.clone(), n.depends_on[0].clone()))
            .collect();
        for (id, w) in waits.iter_mut() {
            if project.node(id).is_some_and(|n| n.kind == NodeKind::Test) {
                continue;
            }
            let parents: Vec<String> = w.iter().cloned().collect();
            for (test, of) in &single {
                if parents.contains(of) {
                    w.insert(test.clone());
                }
            }
        }
    }
    Ok(waits)
}

/// Nodes on a dependency cycle (Kahn's algorithm leaves them over).
fn cycles(waits: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut left: BTreeMap<&str, usize> =
        waits.iter().map(|(k, w)| (k.as_str(), w.len())).collect();
    let mut ready: Vec<&str> = left
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut done = BTreeSet::new();
    while let Some(x) = ready.pop() {
        done.insert(x);
        for (k, w) in waits {
            if w.contains(x)
                && let Some(n) = left.get_mut(k.as_str())
            {
                *n -= 1;
                if *n == 0 {
                    ready.push(k.as_str());
                }
            }
        }
    }
    waits
        .keys()
        .filter(|k| !done.contains(k.as_str()))
        .cloned()
        .collect()
}

/// Terminal progress: a status line redrawn in place; plain lines otherwise.
struct Progress {
    total: usize,
    done: usize,
    running: BTreeSet<String>,
    started: Instant,
    live: bool,
    enabled: bool,
}

impl Progress {
    fn line(&mut self, text: &str) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.live {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{text}");
        self.status_into(&mut err);
    }

    fn status_into(&self, err: &mut impl Write) {
        if !self.enabled || !self.live {
            return;
        }
        let running: Vec<&str> = self.running.iter().map(|s| s.as_str()).collect();
        let mut shown = running.join(", ");
        if shown.len() > 60 {
            shown.truncate(57);
            shown.push_str("...");
        }
        let _ = write!(
            err,
            "\r\x1b[2K[{}/{} done, {:.1}s] {}",
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64(),
            if shown.is_empty() {
                String::new()
            } else {
                format!("running: {shown}")
            }
        );
        let _ = err.flush();
    }

    fn redraw(&self) {
        self.status_into(&mut std::io::stderr().lock());
    }

    fn finish(&self) {
        if self.enabled && self.live {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// Run `command` over `project` on `engine`.
pub async fn run(
    engine: &Arc<Engine>,
    project: Arc<Project>,
    command: Command,
    options: &Options,
) -> Result<Summary> {
    let started = Instant::now();
    let run_id = uuid::Uuid::new_v4().to_string();
    let waits = plan(&project, command, options)?;
    let cyclic = cycles(&waits);
    record_models(engine, &project).await;

    let total = waits.len();
    let progress = Arc::new(Mutex::new(Progress {
        total,
        done: 0,
        running: BTreeSet::new(),
        started,
        live: std::io::stderr().is_terminal(),
        enabled: options.progress,
    }));
    if total == 0 {
        progress
            .lock()
            .expect("progress")
            .line("nothing to do: no node matches the selection");
    } else {
        progress.lock().expect("progress").line(&format!(
            "{} {}: {total} node{} of project {} with {} thread{}",
            command.name(),
            project.root.display(),
            if total == 1 { "" } else { "s" },
            project.name,
            options.threads.max(1),
            if options.threads.max(1) == 1 { "" } else { "s" },
        ));
    }
    let ticker = {
        let p = progress.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                p.lock().expect("progress").redraw();
            }
        })
    };

    let mut pending = waits.clone();
    let mut results: Vec<NodeResult> = Vec::new();
    let mut outcome: BTreeMap<String, Status> = BTreeMap::new();
    let sessions: Arc<Mutex<Vec<Session>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    let mut order = 0usize;
    let threads = options.threads.max(1);
    let full_refresh = options.full_refresh;

    for id in &cyclic {
        let node = project.node(id).expect("planned node");
        let others: Vec<&str> = cyclic
            .iter()
            .filter(|c| waits[*c].contains(id) || waits[id].contains(*c))
            .filter_map(|c| project.node(c).map(|n| n.name.as_str()))
            .collect();
        let r = finished(
            node,
            Status::Error,
            format!(
                "{}: {} {} is on a dependency cycle with {}",
                node.path.display(),
                node.kind.label(),
                node.name,
                others.join(", ")
            ),
            Utc::now(),
        );
        pending.remove(id);
        outcome.insert(id.clone(), Status::Error);
        order += 1;
        report(&progress, order, total, &r);
        results.push(r);
    }

    loop {
        // Skip what waits on a failure; start what is ready.
        let mut skip = Vec::new();
        let mut ready = Vec::new();
        for (id, w) in &pending {
            if let Some(bad) = w
                .iter()
                .find(|d| outcome.get(*d).is_some_and(|s| s.stops()))
            {
                skip.push((id.clone(), bad.clone()));
            } else if w.iter().all(|d| outcome.contains_key(d)) {
                ready.push(id.clone());
            }
        }
        for (id, bad) in skip {
            pending.remove(&id);
            let node = project.node(&id).expect("planned node");
            let upstream = project.node(&bad).map(|n| n.name.clone()).unwrap_or(bad);
            let r = finished(
                node,
                Status::Skipped,
                format!("skipped: upstream {upstream} did not succeed"),
                Utc::now(),
            );
            outcome.insert(id.clone(), Status::Skipped);
            order += 1;
            report(&progress, order, total, &r);
            results.push(r);
        }
        for id in ready {
            if tasks.len() >= threads {
                break;
            }
            pending.remove(&id);
            let project = project.clone();
            let engine = engine.clone();
            let sessions = sessions.clone();
            progress.lock().expect("progress").running.insert(
                project
                    .node(&id)
                    .map(|n| n.name.clone())
                    .unwrap_or_default(),
            );
            if !progress.lock().expect("progress").live && options.progress {
                let node = project.node(&id).expect("planned node");
                progress.lock().expect("progress").line(&format!(
                    "  START {} {}",
                    describe_kind(node),
                    node.relation
                        .as_ref()
                        .map(|r| r.sql())
                        .unwrap_or_else(|| node.name.clone())
                ));
            }
            tasks.spawn(async move {
                let session = sessions.lock().expect("sessions").pop();
                let mut session = session.unwrap_or_else(|| engine.session());
                let node = project.node(&id).expect("planned node").clone();
                let r = run_node(&mut session, &project, &node, full_refresh).await;
                sessions.lock().expect("sessions").push(session);
                r
            });
        }
        if tasks.is_empty() {
            if pending.is_empty() {
                break;
            }
            // Nothing runs and nothing can start: only skips remain, which
            // the next pass handles; guard against a stuck plan.
            let stuck: Vec<String> = pending
                .iter()
                .filter(|(_, w)| !w.iter().any(|d| outcome.get(d).is_some_and(|s| s.stops())))
                .map(|(id, _)| id.clone())
                .collect();
            if !stuck.is_empty() && stuck.len() == pending.len() {
                for id in stuck {
                    pending.remove(&id);
                    let node = project.node(&id).expect("planned node");
                    results.push(finished(
                        node,
                        Status::Error,
                        "could not be scheduled (its inputs never finished)".into(),
                        Utc::now(),
                    ));
                }
            }
            continue;
        }
        if let Some(joined) = tasks.join_next().await {
            let r = match joined {
                Ok(r) => r,
                Err(e) => {
                    ticker.abort();
                    progress.lock().expect("progress").finish();
                    return Err(Error::internal(format!("a node's task failed: {e}")));
                }
            };
            outcome.insert(r.id.clone(), r.status);
            {
                let mut p = progress.lock().expect("progress");
                p.running.remove(&r.name);
            }
            order += 1;
            report(&progress, order, total, &r);
            results.push(r);
        }
    }
    ticker.abort();
    progress.lock().expect("progress").finish();
    let summary = Summary {
        run_id,
        results,
        seconds: started.elapsed().as_secs_f64(),
    };
    if let Err(e) = record_runs(engine, &project, command, &summary).await {
        tracing::warn!("the run finished but could not be recorded in sluice.runs: {e}");
    }
    Ok(summary)
}

fn describe_kind(node: &Node) -> String {
    match node.kind {
        NodeKind::Model => format!("{} model", node.materialized()),
        NodeKind::Seed => "seed".into(),
        NodeKind::Snapshot => "snapshot".into(),
        NodeKind::Test => "test".into(),
    }
}

fn report(progress: &Arc<Mutex<Progress>>, order: usize, total: usize, r: &NodeResult) {
    let mut p = progress.lock().expect("progress");
    p.done += 1;
    let label = match r.status {
        Status::Success => "OK",
        Status::Pass => "PASS",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Error => "ERROR",
        Status::Skipped => "SKIP",
    };
    let what = match r.kind {
        NodeKind::Model => format!("{} model", r.materialized),
        k => k.label().to_string(),
    };
    let target = r.relation.clone().unwrap_or_else(|| r.name.clone());
    let detail = match (r.status, r.rows, r.failures) {
        (Status::Skipped, _, _) => String::new(),
        (Status::Error, _, _) => format!(" [ERROR in {:.2}s]", r.seconds),
        (_, _, Some(f)) if f > 0 => format!(
            " [{f} failing row{} in {:.2}s]",
            if f == 1 { "" } else { "s" },
            r.seconds
        ),
        (_, Some(n), _) => format!(
            " [{n} row{} in {:.2}s]",
            if n == 1 { "" } else { "s" },
            r.seconds
        ),
        _ => format!(" [{:.2}s]", r.seconds),
    };
    let width = total.to_string().len();
    p.line(&format!(
        "{order:>width$} of {total} {label:<5} {what} {target}{detail}"
    ));
}

fn finished(node: &Node, status: Status, message: String, started: DateTime<Utc>) -> NodeResult {
    let ended = Utc::now();
    NodeResult {
        id: node.id.clone(),
        name: node.name.clone(),
        kind: node.kind,
        path: node.path.to_string_lossy().to_string(),
        relation: node.relation.as_ref().map(|r| r.sql()),
        materialized: node.materialized().to_string(),
        status,
        message,
        rows: None,
        failures: None,
        started,
        ended,
        seconds: (ended - started).num_microseconds().unwrap_or(0) as f64 / 1e6,
    }
}

/// What running one node made.
#[derive(Default)]
struct Done {
    rows: Option<i64>,
    failures: Option<i64>,
    status: Option<Status>,
    message: String,
}

async fn run_node(
    session: &mut Session,
    project: &Project,
    node: &Node,
    full_refresh: bool,
) -> NodeResult {
    let started = Utc::now();
    let result = match &node.error {
        Some(e) => Err(e.clone()),
        None => match node.kind {
            NodeKind::Seed => seed(session, project, node).await,
            NodeKind::Model => model(session, project, node, full_refresh).await,
            NodeKind::Snapshot => snapshot(session, project, node).await,
            NodeKind::Test => test(session, project, node).await,
        },
    };
    match result {
        Ok(done) => {
            let status = done.status.unwrap_or(Status::Success);
            let mut r = finished(node, status, done.message, started);
            r.rows = done.rows;
            r.failures = done.failures;
            r
        }
        Err(message) => finished(node, Status::Error, message, started),
    }
}

/// A failure of a node's statement, naming the node's file (and where its
/// compiled SQL was written).
fn sql_error(project: &Project, node: &Node, e: Error) -> String {
    let compiled = compiled_path(project, node);
    format!(
        "{}: {} {}: ERROR {}: {} (compiled SQL: {})",
        node.path.display(),
        node.kind.label(),
        node.name,
        crate::server::sqlstate::sqlstate(e.kind),
        e,
        compiled.display()
    )
}

fn compiled_path(project: &Project, node: &Node) -> std::path::PathBuf {
    let mut p = project
        .root
        .join("target")
        .join("compiled")
        .join(&project.name);
    match node.kind {
        NodeKind::Test if node.generic.is_some() => {
            p.join("generic_tests").join(format!("{}.sql", node.name))
        }
        NodeKind::Snapshot => {
            p.push(&node.path);
            p.set_file_name(format!("{}.sql", node.name));
            p
        }
        _ => p.join(&node.path),
    }
}

fn write_compiled(project: &Project, node: &Node, sql: &str) {
    let p = compiled_path(project, node);
    if let Some(dir) = p.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&p, sql);
}

/// The one statement of `sql`: a model's text with a second statement in
/// it (`select ...; drop table ...`) is refused before anything runs.
fn one_statement(session: &Session, sql: &str) -> Result<crate::frontend::Stmt> {
    let mut stmts = session.parse(sql)?;
    if stmts.len() != 1 {
        return Err(Error::syntax(format!(
            "a model, seed, snapshot or test is one query; this has {} statements",
            stmts.len()
        )));
    }
    Ok(stmts.remove(0))
}

/// Run the one statement of `sql`; rows are read to the end and counted.
async fn exec(session: &mut Session, sql: &str) -> Result<Option<i64>> {
    let stmt = one_statement(session, sql)?;
    let count = match session.execute(stmt, &ParamValues::List(vec![])).await? {
        Output::Rows { mut stream, .. } => {
            let mut n = 0i64;
            while let Some(b) = stream.next().await {
                n += b?.num_rows() as i64;
            }
            Some(n)
        }
        Output::Command { rows, .. } => rows.map(|r| r as i64),
        _ => None,
    };
    let _ = session.take_notices();
    Ok(count)
}

/// The rows of one query (small results only: counts, schemas).
async fn query(session: &mut Session, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let stmt = one_statement(session, sql)?;
    match session.execute(stmt, &ParamValues::List(vec![])).await? {
        Output::Rows {
            schema, mut stream, ..
        } => {
            let mut out = Vec::new();
            while let Some(b) = stream.next().await {
                out.push(b?);
            }
            Ok((schema, out))
        }
        _ => Err(Error::syntax("expected a query")),
    }
}

/// The columns (name, SQL type) a query returns.
async fn columns_of(session: &mut Session, sql: &str) -> Result<Vec<(String, String)>> {
    let (schema, _) = query(
        session,
        &format!("SELECT * FROM (\n{sql}\n) AS __sluice_q LIMIT 0"),
    )
    .await?;
    Ok(schema
        .fields()
        .iter()
        .map(|f| {
            (
                f.name().clone(),
                crate::types::PgType::from_arrow(f.data_type()).display(),
            )
        })
        .collect())
}

fn existing(session: &Session, r: &Relation) -> Option<(Kind, Vec<String>)> {
    let snap = session.engine().catalog().snapshot();
    let o = snap.relation(&r.schema, &r.name)?;
    let cols = o
        .stored()
        .map(|d| d.columns.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    Some((o.kind(), cols))
}

/// The statement dropping what stands at `r`, unless nothing does or it
/// is a `keep`.
fn drop_other(session: &Session, r: &Relation, keep: Option<Kind>) -> Option<String> {
    let (kind, _) = existing(session, r)?;
    if Some(kind) == keep {
        return None;
    }
    Some(match kind {
        Kind::View => format!("DROP VIEW {} CASCADE", r.sql()),
        Kind::MaterializedView => format!("DROP MATERIALIZED VIEW {} CASCADE", r.sql()),
        Kind::External => format!("DROP TABLE {}", r.sql()),
        _ => format!("DROP TABLE {} CASCADE", r.sql()),
    })
}

fn relation_of(node: &Node) -> std::result::Result<Relation, String> {
    node.relation
        .clone()
        .ok_or_else(|| format!("{} has no relation", node.name))
}

async fn ensure_schema(session: &mut Session, schema: &str) -> Result<()> {
    exec(
        session,
        &format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)),
    )
    .await?;
    Ok(())
}

/// The `expectations` config of a table or incremental model (a Sluice
/// extension): `{name: condition}` or a list of `{name, expect,
/// on_violation}`, with `on_violation` as the default action. Returns the
/// expectation names and the table rules of `CREATE TABLE`.
fn expectation_rules(node: &Node) -> std::result::Result<Option<(Vec<String>, String)>, String> {
    let Some(config) = node.config.get("expectations") else {
        return Ok(None);
    };
    let default_action = node.config_str("on_violation");
    let mut rules: Vec<(String, String, Option<String>)> = Vec::new();
    match config {
        serde_json::Value::Object(m) => {
            for (name, cond) in m {
                let Some(c) = cond.as_str() else {
                    return Err(format!(
                        "{}: expectation {name} must be a SQL condition",
                        node.path.display()
                    ));
                };
                rules.push((name.clone(), c.to_string(), default_action.clone()));
            }
        }
        serde_json::Value::Array(a) => {
            for e in a {
                let name = e.get("name").and_then(|v| v.as_str());
                let cond = e.get("expect").and_then(|v| v.as_str());
                let (Some(name), Some(cond)) = (name, cond) else {
                    return Err(format!(
                        "{}: each expectation needs `name` and `expect`",
                        node.path.display()
                    ));
                };
                let action = e
                    .get("on_violation")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .or_else(|| default_action.clone());
                rules.push((name.to_string(), cond.to_string(), action));
            }
        }
        _ => {
            return Err(format!(
                "{}: `expectations` must map names to conditions",
                node.path.display()
            ));
        }
    }
    let mut names = Vec::new();
    let mut clause = Vec::new();
    for (name, cond, action) in rules {
        let action = match action.as_deref().map(|a| a.to_ascii_lowercase()) {
            None => String::new(),
            Some(a) if a == "fail" => " ON VIOLATION FAIL".into(),
            Some(a) if a == "drop" || a == "drop row" => " ON VIOLATION DROP ROW".into(),
            Some(a) if a == "quarantine" => " ON VIOLATION QUARANTINE".into(),
            Some(a) if a == "warn" || a == "none" => String::new(),
            Some(a) => {
                return Err(format!(
                    "{}: on_violation '{a}' of expectation {name} is not one of fail, drop, quarantine, warn",
                    node.path.display()
                ));
            }
        };
        clause.push(format!(
            "CONSTRAINT {} EXPECT ({cond}){action}",
            quote(&name)
        ));
        names.push(name);
    }
    Ok(Some((names, clause.join(", "))))
}

/// A table model with expectations: created with its rules, or its rows
/// replaced through them (`INSERT OVERWRITE`) when the columns and
/// expectations are unchanged; recreated otherwise.
async fn checked_table(
    session: &mut Session,
    rel: &Relation,
    sql: &str,
    names: &[String],
    rules: &str,
    replace: bool,
) -> Result<Option<i64>> {
    let cols = columns_of(session, sql).await?;
    let same = {
        let snap = session.engine().catalog().snapshot();
        snap.relation(&rel.schema, &rel.name)
            .and_then(|o| match &o.def {
                crate::catalog::Def::Table(d) => Some(d.clone()),
                _ => None,
            })
            .is_some_and(|d| {
                d.columns.len() == cols.len()
                    && d.columns
                        .iter()
                        .zip(&cols)
                        .all(|(a, (n, t))| &a.name == n && a.ty.display() == *t)
                    && d.expectations
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        == names.iter().map(|n| n.as_str()).collect::<Vec<_>>()
            })
    };
    let list = cols
        .iter()
        .map(|(c, _)| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    if same {
        let verb = if replace {
            "INSERT OVERWRITE"
        } else {
            "INSERT INTO"
        };
        return exec(
            session,
            &format!("{verb} {rel} ({list}) SELECT {list} FROM (\n{sql}\n) AS s"),
        )
        .await;
    }
    if let Some(d) = drop_other(session, rel, None) {
        exec(session, &d).await?;
    }
    let columns = cols
        .iter()
        .map(|(c, t)| format!("{} {t}", quote(c)))
        .collect::<Vec<_>>()
        .join(", ");
    exec(
        session,
        &format!("CREATE TABLE {rel} ({columns}, {rules}) AS\n{sql}"),
    )
    .await
}

async fn model(
    session: &mut Session,
    project: &Project,
    node: &Node,
    full_refresh: bool,
) -> std::result::Result<Done, String> {
    let rel = relation_of(node)?;
    let materialized = node.materialized().to_string();
    let full_refresh = full_refresh && node.config_bool("full_refresh") != Some(false);
    let fail = |e: Error| sql_error(project, node, e);
    ensure_schema(session, &rel.schema).await.map_err(fail)?;
    let incremental_now = materialized == "incremental"
        && !full_refresh
        && existing(session, &rel).is_some_and(|(k, _)| k == Kind::Table);
    let sql = compile(project, &node.id, incremental_now)?;
    write_compiled(project, node, &sql);
    let rules = expectation_rules(node)?;
    let mut done = Done::default();
    match materialized.as_str() {
        "view" => {
            if let Some(d) = drop_other(session, &rel, Some(Kind::View)) {
                exec(session, &d).await.map_err(fail)?;
            }
            exec(session, &format!("CREATE OR REPLACE VIEW {rel} AS\n{sql}"))
                .await
                .map_err(fail)?;
        }
        "table" | "incremental" if !incremental_now && rules.is_some() => {
            let (names, clause) = rules.as_ref().expect("checked above");
            done.rows = checked_table(session, &rel, &sql, names, clause, true)
                .await
                .map_err(fail)?;
        }
        "table" => {
            if let Some(d) = drop_other(session, &rel, Some(Kind::Table)) {
                exec(session, &d).await.map_err(fail)?;
            }
            done.rows = exec(session, &format!("CREATE OR REPLACE TABLE {rel} AS\n{sql}"))
                .await
                .map_err(fail)?;
        }
        "incremental" => {
            if !incremental_now {
                if let Some(d) = drop_other(session, &rel, Some(Kind::Table)) {
                    exec(session, &d).await.map_err(fail)?;
                }
                done.rows = exec(session, &format!("CREATE OR REPLACE TABLE {rel} AS\n{sql}"))
                    .await
                    .map_err(fail)?;
            } else {
                done.rows = incremental(session, node, &rel, &sql).await.map_err(fail)?;
                done.message = "incremental".into();
            }
        }
        "materialized_view" | "feature_view" => {
            let feature = (materialized == "feature_view")
                .then(|| feature_config(node))
                .transpose()?;
            // Refreshed while the definition stands; made again otherwise.
            let unchanged = {
                let snap = session.engine().catalog().snapshot();
                match snap.relation(&rel.schema, &rel.name).map(|o| &o.def) {
                    Some(crate::catalog::Def::MaterializedView(m)) => {
                        crate::engine::matview::definition_of(session, &sql)
                            .is_ok_and(|d| d == m.query.sql)
                            && m.feature.as_ref().map(feature_key)
                                == feature.as_ref().map(feature_key)
                    }
                    _ => false,
                }
            };
            let noun = if feature.is_some() {
                "FEATURE VIEW"
            } else {
                "MATERIALIZED VIEW"
            };
            if unchanged && !full_refresh {
                exec(session, &format!("REFRESH {noun} {rel}"))
                    .await
                    .map_err(fail)?;
                done.message = "refreshed".into();
            } else {
                if let Some(d) = drop_other(session, &rel, None) {
                    exec(session, &d).await.map_err(fail)?;
                }
                let mut head = format!("CREATE {noun} {rel}");
                if let Some(f) = &feature {
                    head.push_str(&feature_clauses(f));
                }
                exec(session, &format!("{head} AS\n{sql}"))
                    .await
                    .map_err(fail)?;
            }
            if let Some(clause) = schedule_clause(node)? {
                exec(session, &format!("ALTER {noun} {rel} SET REFRESH {clause}"))
                    .await
                    .map_err(fail)?;
            }
        }
        "ephemeral" => {}
        other => {
            return Err(format!(
                "{}: materialized='{other}' is not supported (view, table, incremental, \
                 ephemeral, materialized_view, feature_view)",
                node.path.display()
            ));
        }
    }
    Ok(done)
}

/// A materialized or feature view model's `schedule` (`every 10 minutes`,
/// `cron */5 * * * *`, `on upstream`, `manual`) and `retries`, as the
/// clause after `SET REFRESH`.
fn schedule_clause(node: &Node) -> std::result::Result<Option<String>, String> {
    let Some(schedule) = node.config_str("schedule") else {
        return Ok(None);
    };
    let retries = node.config_str("retries");
    match crate::catalog::schedule::RefreshPolicy::from_config(&schedule, retries.as_deref()) {
        Ok(Some(p)) => Ok(Some(p.describe())),
        Ok(None) => Ok(Some("MANUAL".to_string())),
        Err(e) => Err(format!("{}: {}", node.path.display(), e.message)),
    }
}

/// A feature view model's `entity`, `timestamp`, `created_at`, `ttl` and
/// `online` config.
fn feature_config(node: &Node) -> std::result::Result<crate::catalog::FeatureDef, String> {
    let entity = node.config_list("entity");
    let timestamp = node.config_str("timestamp");
    let (false, Some(timestamp)) = (entity.is_empty(), timestamp) else {
        return Err(format!(
            "{}: materialized='feature_view' needs entity= and timestamp= in its config",
            node.path.display()
        ));
    };
    let lower = |s: String| s.to_ascii_lowercase();
    Ok(crate::catalog::FeatureDef {
        entity: entity.into_iter().map(lower).collect(),
        timestamp: lower(timestamp),
        created_at: node.config_str("created_at").map(lower),
        ttl_micros: None,
        ttl: node.config_str("ttl"),
        online: node.config_bool("online").unwrap_or(false),
    })
}

/// What of a feature view's definition a model's config sets.
fn feature_key(
    f: &crate::catalog::FeatureDef,
) -> (&[String], &str, Option<&str>, Option<&str>, bool) {
    (
        &f.entity,
        &f.timestamp,
        f.created_at.as_deref(),
        f.ttl.as_deref(),
        f.online,
    )
}

/// `ENTITY (...) TIMESTAMP ... [CREATED_AT ...] [TTL '...'] [ONLINE]`
fn feature_clauses(f: &crate::catalog::FeatureDef) -> String {
    let keys: Vec<String> = f.entity.iter().map(|k| quote(k)).collect();
    let mut out = format!(
        " ENTITY ({}) TIMESTAMP {}",
        keys.join(", "),
        quote(&f.timestamp)
    );
    if let Some(c) = &f.created_at {
        out.push_str(&format!(" CREATED_AT {}", quote(c)));
    }
    if let Some(t) = &f.ttl {
        out.push_str(&format!(" TTL '{}'", t.replace('\'', "''")));
    }
    if f.online {
        out.push_str(" ONLINE");
    }
    out
}

/// The second and later runs of an incremental model: one MERGE or INSERT.
async fn incremental(
    session: &mut Session,
    node: &Node,
    rel: &Relation,
    sql: &str,
) -> Result<Option<i64>> {
    let keys = node.config_list("unique_key");
    let strategy = node.config_str("incremental_strategy").unwrap_or_else(|| {
        if keys.is_empty() {
            "append"
        } else {
            "delete+insert"
        }
        .to_string()
    });
    let new_cols = columns_of(session, sql).await?;
    let (_, target_cols) = existing(session, rel).unwrap_or((Kind::Table, vec![]));
    let added: Vec<&(String, String)> = new_cols
        .iter()
        .filter(|(c, _)| !target_cols.contains(c))
        .collect();
    let removed: Vec<&String> = target_cols
        .iter()
        .filter(|c| !new_cols.iter().any(|(n, _)| n == *c))
        .collect();
    let on_change = node
        .config_str("on_schema_change")
        .unwrap_or_else(|| "ignore".into());
    let changed = !added.is_empty() || !removed.is_empty();
    match on_change.as_str() {
        "ignore" => {}
        "fail" if changed => {
            return Err(Error::new(
                ErrorKind::DatatypeMismatch,
                format!(
                    "the columns of incremental model {} changed (new: {}; gone: {}) and on_schema_change is 'fail'",
                    node.name,
                    added
                        .iter()
                        .map(|(c, _)| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    removed
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ));
        }
        "fail" => {}
        "append_new_columns" => {
            for (c, ty) in &added {
                exec(
                    session,
                    &format!("ALTER TABLE {rel} ADD COLUMN {} {ty}", quote(c)),
                )
                .await?;
            }
        }
        other => {
            return Err(Error::not_supported(format!(
                "on_schema_change '{other}' (ignore, fail, append_new_columns)"
            )));
        }
    }
    let (_, target_cols) = existing(session, rel).unwrap_or((Kind::Table, vec![]));
    let cols: Vec<String> = new_cols
        .iter()
        .map(|(c, _)| c.clone())
        .filter(|c| target_cols.contains(c))
        .collect();
    let list = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let s_list = cols
        .iter()
        .map(|c| format!("s.{}", quote(c)))
        .collect::<Vec<_>>()
        .join(", ");
    for k in &keys {
        if !cols.contains(k) {
            return Err(Error::new(
                ErrorKind::UndefinedColumn,
                format!(
                    "unique_key column \"{k}\" of model {} is not a column of its query",
                    node.name
                ),
            ));
        }
    }
    let on = keys
        .iter()
        .map(|k| format!("t.{0} = s.{0}", quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let append = format!("INSERT INTO {rel} ({list}) SELECT {list} FROM (\n{sql}\n) AS s");
    let stmt = match strategy.as_str() {
        "append" => append,
        "merge" if keys.is_empty() => append,
        "merge" => {
            let set = cols
                .iter()
                .filter(|c| !keys.contains(c))
                .map(|c| format!("{0} = s.{0}", quote(c)))
                .collect::<Vec<_>>()
                .join(", ");
            let update = if set.is_empty() {
                String::new()
            } else {
                format!("WHEN MATCHED THEN UPDATE SET {set}\n")
            };
            format!(
                "MERGE INTO {rel} AS t USING (\n{sql}\n) AS s ON {on}\n{update}\
                 WHEN NOT MATCHED THEN INSERT ({list}) VALUES ({s_list})"
            )
        }
        "delete+insert" => {
            if keys.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!(
                        "incremental_strategy 'delete+insert' of model {} needs a unique_key",
                        node.name
                    ),
                ));
            }
            // One MERGE: rows tagged for deletion match the stored rows of
            // their keys; the new rows never match and are all inserted.
            let keyed = cols
                .iter()
                .map(|c| {
                    if keys.contains(c) {
                        format!("d.{}", quote(c))
                    } else {
                        format!("NULL AS {}", quote(c))
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "MERGE INTO {rel} AS t USING (\n\
                 SELECT {list}, false AS __sluice_delete FROM (\n{sql}\n) AS n\n\
                 UNION ALL\n\
                 SELECT DISTINCT {keyed}, true AS __sluice_delete FROM (\n{sql}\n) AS d\n\
                 ) AS s ON s.__sluice_delete AND {on}\n\
                 WHEN MATCHED THEN DELETE\n\
                 WHEN NOT MATCHED AND NOT s.__sluice_delete THEN INSERT ({list}) VALUES ({s_list})"
            )
        }
        other => {
            return Err(Error::not_supported(format!(
                "incremental_strategy '{other}' (append, merge, delete+insert)"
            )));
        }
    };
    exec(session, &stmt).await
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The SQL type a seed column gets, as dbt's seed loader infers it.
fn seed_type(dt: &datafusion::arrow::datatypes::DataType) -> &'static str {
    use datafusion::arrow::datatypes::DataType as D;
    match dt {
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 => "integer",
        D::UInt64 => "bigint",
        D::Float16 | D::Float32 | D::Float64 | D::Decimal128(..) | D::Decimal256(..) => "numeric",
        D::Boolean => "boolean",
        D::Date32 | D::Date64 => "date",
        D::Timestamp(_, None) => "timestamp",
        D::Timestamp(_, Some(_)) => "timestamptz",
        _ => "text",
    }
}

async fn seed(
    session: &mut Session,
    project: &Project,
    node: &Node,
) -> std::result::Result<Done, String> {
    let rel = relation_of(node)?;
    let fail = |e: Error| sql_error(project, node, e);
    let path = project.root.join(&node.path);
    let path = path.canonicalize().unwrap_or(path);
    let delimiter = node.config_str("delimiter").unwrap_or_else(|| ",".into());
    let source = format!(
        "read_csv({}, header => true, delimiter => {})",
        sql_string(&path.to_string_lossy()),
        sql_string(&delimiter)
    );
    let (schema, _) = query(session, &format!("SELECT * FROM {source} LIMIT 0"))
        .await
        .map_err(fail)?;
    let types: BTreeMap<String, String> = match node.config.get("column_types") {
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    for k in types.keys() {
        if !schema.fields().iter().any(|f| f.name() == k) {
            return Err(format!(
                "{}: column_types names \"{k}\", which is not a column of the file",
                node.path.display()
            ));
        }
    }
    let select = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = types
                .get(f.name())
                .cloned()
                .unwrap_or_else(|| seed_type(f.data_type()).to_string());
            format!("CAST({0} AS {ty}) AS {0}", quote(f.name()))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {select} FROM {source}");
    write_compiled(project, node, &sql);
    ensure_schema(session, &rel.schema).await.map_err(fail)?;
    if let Some(d) = drop_other(session, &rel, Some(Kind::Table)) {
        exec(session, &d).await.map_err(fail)?;
    }
    let rows = exec(session, &format!("CREATE OR REPLACE TABLE {rel} AS {sql}"))
        .await
        .map_err(fail)?;
    Ok(Done {
        rows,
        ..Default::default()
    })
}

async fn test(
    session: &mut Session,
    project: &Project,
    node: &Node,
) -> std::result::Result<Done, String> {
    let sql = if node.generic.is_some() {
        tests::generic_sql(project, node).map_err(|e| format!("{}: {e}", node.path.display()))?
    } else {
        compile(project, &node.id, false)?
    };
    write_compiled(project, node, &sql);
    let fail = |e: Error| sql_error(project, node, e);
    let count_sql = format!("SELECT count(*) FROM (\n{sql}\n) AS __sluice_failures");
    let (_, batches) = query(session, &count_sql).await.map_err(fail)?;
    let failures = batches
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    if node.config_bool("store_failures") == Some(true) {
        let rel = tests::failures_relation(project, node);
        ensure_schema(session, &rel.schema).await.map_err(fail)?;
        exec(session, &format!("CREATE OR REPLACE TABLE {rel} AS\n{sql}"))
            .await
            .map_err(fail)?;
    }
    let warn = node
        .config_str("severity")
        .is_some_and(|s| s.eq_ignore_ascii_case("warn"));
    let status = match (failures, warn) {
        (0, _) => Status::Pass,
        (_, true) => Status::Warn,
        (_, false) => Status::Fail,
    };
    let message = if failures > 0 {
        format!(
            "{}: test {} found {failures} failing row{} (compiled SQL: {})",
            node.path.display(),
            node.name,
            if failures == 1 { "" } else { "s" },
            compiled_path(project, node).display()
        )
    } else {
        String::new()
    };
    Ok(Done {
        rows: None,
        failures: Some(failures),
        status: Some(status),
        message,
    })
}

/// A snapshot (SCD type 2): the first run copies the query with validity
/// columns; later runs close the changed current rows and insert their new
/// versions and new keys, in one MERGE.
async fn snapshot(
    session: &mut Session,
    project: &Project,
    node: &Node,
) -> std::result::Result<Done, String> {
    let rel = relation_of(node)?;
    let fail = |e: Error| sql_error(project, node, e);
    let keys = node.config_list("unique_key");
    if keys.is_empty() {
        return Err(format!(
            "{}: snapshot {} needs unique_key",
            node.path.display(),
            node.name
        ));
    }
    let strategy = node
        .config_str("strategy")
        .unwrap_or_else(|| "timestamp".into());
    let sql = compile(project, &node.id, false)?;
    write_compiled(project, node, &sql);
    ensure_schema(session, &rel.schema).await.map_err(fail)?;
    let cols = columns_of(session, &sql).await.map_err(fail)?;
    let names: Vec<String> = cols.iter().map(|(c, _)| c.clone()).collect();
    let key_text = keys
        .iter()
        .map(|k| format!("coalesce(CAST(s.{} AS text), '')", quote(k)))
        .collect::<Vec<_>>()
        .join(" || '|' || ");
    let now = format!(
        "CAST({} AS timestamp)",
        sql_string(&Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string())
    );
    let (updated, changed) = match strategy.as_str() {
        "timestamp" => {
            let Some(u) = node.config_str("updated_at") else {
                return Err(format!(
                    "{}: snapshot {} with strategy 'timestamp' needs updated_at",
                    node.path.display(),
                    node.name
                ));
            };
            if !names.contains(&u) {
                return Err(format!(
                    "{}: updated_at column \"{u}\" is not a column of snapshot {}",
                    node.path.display(),
                    node.name
                ));
            }
            let u = quote(&u);
            (format!("s.{u}"), format!("s.{u} > c.dbt_updated_at"))
        }
        "check" => {
            let check: Vec<String> = match node.config.get("check_cols") {
                Some(serde_json::Value::String(s)) if s == "all" => names
                    .iter()
                    .filter(|c| !keys.contains(c))
                    .cloned()
                    .collect(),
                _ => node.config_list("check_cols"),
            };
            if check.is_empty() {
                return Err(format!(
                    "{}: snapshot {} with strategy 'check' needs check_cols",
                    node.path.display(),
                    node.name
                ));
            }
            let cond = check
                .iter()
                .map(|c| format!("s.{0} IS DISTINCT FROM c.{0}", quote(c)))
                .collect::<Vec<_>>()
                .join(" OR ");
            (now.clone(), format!("({cond})"))
        }
        other => {
            return Err(format!(
                "{}: snapshot strategy '{other}' is not supported (timestamp, check)",
                node.path.display()
            ));
        }
    };
    let scd_id = format!("md5({key_text} || '|' || coalesce(CAST({updated} AS text), ''))");
    let src_list = names
        .iter()
        .map(|c| format!("s.{}", quote(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let all_cols = names
        .iter()
        .map(|c| quote(c))
        .chain(
            [
                "dbt_scd_id",
                "dbt_updated_at",
                "dbt_valid_from",
                "dbt_valid_to",
            ]
            .map(String::from),
        )
        .collect::<Vec<_>>()
        .join(", ");
    let Some((kind, _)) = existing(session, &rel) else {
        let rows = exec(
            session,
            &format!(
                "CREATE TABLE {rel} AS SELECT {src_list}, {scd_id} AS dbt_scd_id, {updated} AS dbt_updated_at, \
                 {updated} AS dbt_valid_from, CAST(NULL AS timestamp) AS dbt_valid_to FROM (\n{sql}\n) AS s"
            ),
        )
        .await
        .map_err(fail)?;
        return Ok(Done {
            rows,
            ..Default::default()
        });
    };
    if kind != Kind::Table {
        return Err(format!(
            "{}: {rel} exists and is not a table",
            node.path.display()
        ));
    }
    let join = keys
        .iter()
        .map(|k| format!("s.{0} = c.{0}", quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let current = format!("(SELECT * FROM {rel} WHERE dbt_valid_to IS NULL) AS c");
    let nulls = names
        .iter()
        .map(|c| format!("NULL AS {}", quote(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let first_key = quote(&keys[0]);
    let stmt = format!(
        "MERGE INTO {rel} AS t USING (\n\
         SELECT {src_list}, {scd_id} AS dbt_scd_id, {updated} AS dbt_updated_at, {updated} AS dbt_valid_from, \
         CAST(NULL AS timestamp) AS dbt_valid_to, 'insert' AS __sluice_change\n\
         FROM (\n{sql}\n) AS s LEFT JOIN {current} ON {join}\n\
         WHERE c.{first_key} IS NULL OR {changed}\n\
         UNION ALL\n\
         SELECT {nulls}, c.dbt_scd_id, NULL AS dbt_updated_at, NULL AS dbt_valid_from, {updated} AS dbt_valid_to, 'update' AS __sluice_change\n\
         FROM (\n{sql}\n) AS s JOIN {current} ON {join}\n\
         WHERE {changed}\n\
         ) AS u ON u.__sluice_change = 'update' AND t.dbt_scd_id = u.dbt_scd_id AND t.dbt_valid_to IS NULL\n\
         WHEN MATCHED THEN UPDATE SET dbt_valid_to = u.dbt_valid_to\n\
         WHEN NOT MATCHED AND u.__sluice_change = 'insert' THEN INSERT ({all_cols}) VALUES ({})",
        names
            .iter()
            .map(|c| format!("u.{}", quote(c)))
            .chain(
                [
                    "u.dbt_scd_id",
                    "u.dbt_updated_at",
                    "u.dbt_valid_from",
                    "u.dbt_valid_to"
                ]
                .map(String::from)
            )
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rows = exec(session, &stmt).await.map_err(fail)?;
    Ok(Done {
        rows,
        ..Default::default()
    })
}

/// The project's nodes as `sluice.models` rows (other projects' rows stay).
async fn record_models(engine: &Arc<Engine>, project: &Project) {
    let result: Result<()> = async {
        let lake = engine.lake();
        let url = lake.url_for(crate::catalog::system::MODELS.location)?;
        let mut keep: Vec<RecordBatch> = Vec::new();
        if lake.exists(&url).await? {
            let mut session = engine.session();
            let (_, batches) = query(
                &mut session,
                &format!(
                    "SELECT * FROM sluice.models WHERE project <> {}",
                    sql_string(&project.name)
                ),
            )
            .await?;
            keep = batches;
        }
        let nodes: Vec<&Node> = project.nodes.iter().collect();
        let now = Utc::now().timestamp_micros();
        let text = |f: &dyn Fn(&Node) -> Option<String>| -> Arc<StringArray> {
            Arc::new(StringArray::from(
                nodes.iter().map(|n| f(n)).collect::<Vec<_>>(),
            ))
        };
        let schema = (crate::catalog::system::MODELS.schema)();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                text(&|_| Some(project.name.clone())),
                text(&|n| Some(n.id.clone())),
                text(&|n| Some(n.kind.label().to_string())),
                text(&|n| Some(n.name.clone())),
                text(&|n| n.relation.as_ref().map(|r| r.sql())),
                text(&|n| Some(n.materialized().to_string())),
                text(&|n| Some(n.depends_on.join(","))),
                text(&|n| Some(n.path.to_string_lossy().to_string())),
                text(&|n| Some(n.tags().join(","))),
                text(&|n| n.description.clone()),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![now; nodes.len()]).with_timezone("UTC"),
                ),
            ],
        )?;
        keep.push(batch);
        let all = datafusion::arrow::compute::concat_batches(&schema, &keep)?;
        crate::write::write_system_table(lake, &crate::catalog::system::MODELS, all, true).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!("the project's nodes could not be recorded in sluice.models: {e}");
    }
}

async fn record_runs(
    engine: &Arc<Engine>,
    project: &Project,
    command: Command,
    summary: &Summary,
) -> Result<()> {
    if summary.results.is_empty() {
        return Ok(());
    }
    let rs = &summary.results;
    let text = |f: &dyn Fn(&NodeResult) -> Option<String>| -> Arc<StringArray> {
        Arc::new(StringArray::from(rs.iter().map(f).collect::<Vec<_>>()))
    };
    let ts = |f: &dyn Fn(&NodeResult) -> i64| {
        Arc::new(
            TimestampMicrosecondArray::from(rs.iter().map(f).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let batch = RecordBatch::try_new(
        (crate::catalog::system::RUNS.schema)(),
        vec![
            text(&|_| Some(summary.run_id.clone())) as datafusion::arrow::array::ArrayRef,
            text(&|_| Some(command.name().to_string())),
            text(&|_| Some(project.name.clone())),
            text(&|r| Some(r.id.clone())),
            text(&|r| Some(r.kind.label().to_string())),
            text(&|r| r.relation.clone()),
            text(&|r| Some(r.materialized.clone())),
            text(&|r| Some(r.status.name().to_string())),
            ts(&|r| r.started.timestamp_micros()),
            ts(&|r| r.ended.timestamp_micros()),
            Arc::new(Float64Array::from(
                rs.iter().map(|r| r.seconds).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rs.iter().map(|r| r.rows).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rs.iter().map(|r| r.failures).collect::<Vec<_>>(),
            )),
            text(&|r| (!r.message.is_empty()).then(|| r.message.clone())),
        ]
        .into_iter()
        .chain(
            (crate::catalog::system::RUNS.schema)()
                .fields()
                .iter()
                .skip(14)
                .map(|f| datafusion::arrow::array::new_null_array(f.data_type(), rs.len())),
        )
        .collect(),
    )?;
    crate::write::write_system_table(engine.lake(), &crate::catalog::system::RUNS, batch, false)
        .await
}
