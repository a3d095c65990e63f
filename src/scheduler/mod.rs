//! The scheduler: keeps materialized and feature views fresh by their
//! refresh policies, refreshes what depends on a refreshed view, retries
//! failures, and records every attempt in `sluice.runs`.
//!
//! ```text
//!  tick (every SLUICE_SCHEDULER_TICK_MS) ──▶ due by EVERY / CRON? a source's new version (ON UPSTREAM)?
//!        │                                           │
//!  sluice.refresh('v') ──────────────────────────────┴──▶ wave: v, then every view downstream, in DAG order
//!                                                            each: lease ▶ refresh ▶ release ▶ run row
//!                                                            failed (after retries): downstream skipped
//! ```
//!
//! State lives in the lake, not in the process: leases (`lake::lease`)
//! keep two servers from refreshing one view at once and tell each when
//! the other last ran it, and the run history is a Delta table.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;

use crate::catalog::schedule::{Standing, Trigger, lease_key};
use crate::catalog::{Def, MatViewDef, Object, RelName};
use crate::engine::Engine;
use crate::engine::events::{Orchestrator, RunStatus};
use crate::error::{Error, Result, ResultFuture};
use crate::lake::lease::{Held, Leases};

mod history;
mod models;

/// How often the scheduler looks at the schedules (ms).
fn tick_interval() -> Result<Duration> {
    env_ms("SLUICE_SCHEDULER_TICK_MS", 1000)
}

/// The first retry waits about this long; each later one twice as long.
fn retry_base() -> Result<Duration> {
    env_ms("SLUICE_RETRY_BASE_MS", 1000)
}

fn env_ms(var: &str, default: u64) -> Result<Duration> {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| {
                Error::new(
                    crate::error::ErrorKind::InvalidParameter,
                    format!("{var} must be a positive number of milliseconds, not \"{v}\""),
                )
            }),
        Err(_) => Ok(Duration::from_millis(default)),
    }
}

use crate::lake::lease::TTL_MS as LEASE_TTL_MS;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// A scheduled view's standing as last read, and its next run then.
#[derive(Clone)]
struct Planned {
    policy: crate::catalog::schedule::RefreshPolicy,
    standing: Standing,
    next: Option<chrono::DateTime<Utc>>,
    read: std::time::Instant,
}

/// How long a standing read from the lake is trusted.
const STANDING_MAX_AGE: Duration = Duration::from_secs(60);

/// The tables one tick opened, by location (each opened once per tick).
#[derive(Default)]
struct Versions(HashMap<url::Url, Option<deltalake::DeltaTable>>);

impl Versions {
    async fn table(
        &mut self,
        lake: &crate::lake::Lake,
        url: &url::Url,
    ) -> Option<deltalake::DeltaTable> {
        if let Some(t) = self.0.get(url) {
            return t.clone();
        }
        let t = lake.table(url).await.ok();
        self.0.insert(url.clone(), t.clone());
        t
    }
}

/// Why a refresh ran (`sluice.runs.trigger`).
#[derive(Debug, Clone)]
enum Why {
    Schedule(String),
    Upstream(String),
    Manual,
    /// Downstream of a view refreshed in the same wave.
    After(RelName),
}

impl Why {
    fn label(&self) -> String {
        match self {
            Why::Schedule(s) => format!("schedule: {s}"),
            Why::Upstream(s) => format!("upstream: {s}"),
            Why::Manual => "manual".to_string(),
            Why::After(r) => format!("after {r}"),
        }
    }
}

pub struct Scheduler {
    engine: Arc<Engine>,
    leases: Leases,
    /// This server's name in lease records.
    holder: String,
    retry_base: Duration,
    /// Views with a run in flight in this process.
    running: Mutex<HashSet<RelName>>,
    /// The source versions each ON UPSTREAM view was last seen against.
    seen: Mutex<HashMap<RelName, HashMap<RelName, i64>>>,
    /// The views whose freshness the metrics show.
    reported: Mutex<HashSet<RelName>>,
    /// Where each scheduled view stood when last read from the lake.
    planned: Mutex<HashMap<RelName, Planned>>,
    /// Nodes of a served project that run by themselves.
    models: Mutex<Vec<models::ModelJob>>,
    /// The source versions each ON UPSTREAM node was last seen against.
    model_seen: Mutex<HashMap<String, HashMap<RelName, i64>>>,
}

crate::send_sync::send_sync_by_fields!(Scheduler {
    engine,
    leases,
    holder,
    retry_base,
    running,
    seen,
    reported,
    planned,
    models,
    model_seen
});

/// How one view of a wave ended.
enum Ended {
    Succeeded(RunStatus),
    Failed(Error),
    Skipped,
}

impl Scheduler {
    /// A scheduler for `engine`, answering `sluice.refresh(...)` from now
    /// on (schedules run once [`Scheduler::start`] is called).
    pub fn install(engine: &Arc<Engine>) -> Result<Arc<Scheduler>> {
        let s = Arc::new(Scheduler {
            engine: engine.clone(),
            leases: Leases::new(engine.lake())?,
            holder: format!("sluice-{}", uuid::Uuid::new_v4()),
            retry_base: retry_base()?,
            running: Default::default(),
            seen: Default::default(),
            reported: Default::default(),
            planned: Default::default(),
            models: Default::default(),
            model_seen: Default::default(),
        });
        engine.set_orchestrator(s.clone());
        Ok(s)
    }

    /// Run the schedules in the background, for as long as the process.
    fn run_schedules(self: &Arc<Self>) -> Result<()> {
        let every = tick_interval()?;
        let me = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // Nothing a tick meets may end the loop.
                let me2 = me.clone();
                let ticked = tokio::spawn(async move { me2.tick().await }).await;
                match ticked {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!("scheduler: {}", e.message),
                    Err(e) => tracing::error!("scheduler tick failed: {e}"),
                }
            }
        });
        Ok(())
    }

    /// Start every run that is due.
    async fn tick(self: &Arc<Self>) -> Result<()> {
        let snapshot = self.engine.catalog().refresh().await?;
        let now = Utc::now();
        let mut scheduled = HashSet::new();
        // Each table's version is read once per tick, however many views
        // read it.
        let mut versions = Versions::default();
        for o in snapshot.objects() {
            let Def::MaterializedView(def) = &o.def else {
                continue;
            };
            let Some(policy) = &def.refresh else {
                continue;
            };
            let rel = o.rel_name();
            scheduled.insert(rel.clone());
            if self.running.lock().unwrap().contains(&rel) {
                continue;
            }
            let standing = self.standing(o, def, policy, now).await?;
            crate::metrics::set_freshness_lag(
                &rel.to_string(),
                standing
                    .last_ms
                    .map(|ms| (now.timestamp_millis() - ms).max(0) as f64 / 1000.0),
            );
            let why = match &policy.trigger {
                Trigger::Every { .. } | Trigger::Cron { .. } => {
                    if standing.running {
                        continue;
                    }
                    match standing.next(policy) {
                        (Some(at), _) if at <= now => {
                            Some((Why::Schedule(policy.describe()), standing.last_ms))
                        }
                        _ => None,
                    }
                }
                Trigger::OnUpstream => self
                    .upstream_changed(&snapshot, o, def, &mut versions)
                    .await?
                    .map(|what| (Why::Upstream(what), None)),
            };
            if let Some((why, based_on)) = why {
                let me = self.clone();
                let object = o.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.wave(object, why, based_on).await {
                        tracing::warn!("scheduled refresh: {}", e.message);
                    }
                });
            }
        }
        self.announce_others(&snapshot, &mut versions).await;
        if let Err(e) = self.tick_models().await {
            tracing::warn!("scheduler (project models): {}", e.message);
        }
        // Views no longer scheduled: forget what was seen of them.
        self.seen
            .lock()
            .unwrap()
            .retain(|r, _| scheduled.contains(r));
        self.planned
            .lock()
            .unwrap()
            .retain(|r, _| scheduled.contains(r));
        let mut reported = self.reported.lock().unwrap();
        for gone in reported.difference(&scheduled) {
            crate::metrics::set_freshness_lag(&gone.to_string(), None);
        }
        *reported = scheduled;
        Ok(())
    }

    /// Announce refreshes another server (or process) committed: every
    /// materialized view's version is compared with the one announced.
    async fn announce_others(&self, snapshot: &crate::catalog::Snapshot, versions: &mut Versions) {
        let lake = self.engine.lake();
        let notifier = self.engine.notifier();
        for o in snapshot.objects() {
            let Def::MaterializedView(def) = &o.def else {
                continue;
            };
            let Ok(url) = lake.url_for(&def.table.location) else {
                continue;
            };
            let Some(table) = versions.table(lake, &url).await else {
                continue;
            };
            let version = table.version().unwrap_or(0) as i64;
            let rel = o.rel_name().to_string();
            match notifier.announced(&rel) {
                None => notifier.note(&rel, version),
                Some(v) if v < version => {
                    // Only refreshes (their commits say so) are announced.
                    let info = crate::lake::last_commit_info(&table).await;
                    let method = info
                        .as_ref()
                        .and_then(|i| i.get("sluice.refresh"))
                        .and_then(|r| r.get("method"))
                        .and_then(|m| m.as_str());
                    match method {
                        Some(m) => notifier.refreshed(0, &rel, version, m, None),
                        None => notifier.note(&rel, version),
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// The tables `def` reads (through plain views), with their versions
    /// now.
    async fn source_versions(
        &self,
        snapshot: &crate::catalog::Snapshot,
        def: &MatViewDef,
        versions: &mut Versions,
    ) -> Result<HashMap<RelName, i64>> {
        let lake = self.engine.lake();
        let mut out = HashMap::new();
        for rel in stored_sources(snapshot, &def.query.depends_on) {
            let Some(o) = snapshot.relation(&rel.schema, &rel.name) else {
                continue;
            };
            let Some(stored) = o.stored() else { continue };
            let url = lake.url_for(&stored.location)?;
            if let Some(t) = versions.table(lake, &url).await {
                out.insert(rel, t.version().unwrap_or(0) as i64);
            }
        }
        Ok(out)
    }

    /// Where a scheduled view stands. Read from the lake when first seen,
    /// when its policy changed, when it is due (another server may have
    /// run it), and at least once a minute; else as last read, so an idle
    /// schedule costs no storage request.
    async fn standing(
        &self,
        o: &Object,
        def: &MatViewDef,
        policy: &crate::catalog::schedule::RefreshPolicy,
        now: chrono::DateTime<Utc>,
    ) -> Result<Standing> {
        let rel = o.rel_name();
        let cached = self.planned.lock().unwrap().get(&rel).cloned();
        if let Some(p) = cached
            && &p.policy == policy
            && p.read.elapsed() < STANDING_MAX_AGE
            && p.next.is_none_or(|at| at > now)
        {
            return Ok(p.standing);
        }
        let standing = Standing::of(self.engine.lake(), &self.leases, o, def).await?;
        let (next, _) = standing.next(policy);
        self.planned.lock().unwrap().insert(
            rel,
            Planned {
                policy: policy.clone(),
                standing: standing.clone(),
                next,
                read: std::time::Instant::now(),
            },
        );
        Ok(standing)
    }

    /// A source of an ON UPSTREAM view that has a version the view was
    /// not seen against yet (the first look only notes the versions).
    async fn upstream_changed(
        &self,
        snapshot: &crate::catalog::Snapshot,
        o: &Object,
        def: &MatViewDef,
        versions: &mut Versions,
    ) -> Result<Option<String>> {
        let now = self.source_versions(snapshot, def, versions).await?;
        let rel = o.rel_name();
        let known = self.seen.lock().unwrap().get(&rel).cloned();
        let before = match known {
            Some(b) => b,
            // First look: against what the view last consumed, so that a
            // commit made before the scheduler looked is not missed.
            None => self.consumed(def).await.unwrap_or_else(|| now.clone()),
        };
        let mut seen = self.seen.lock().unwrap();
        let mut changed: Vec<String> = now
            .iter()
            .filter(|(r, v)| before.get(*r).is_none_or(|b| b < *v))
            .map(|(r, v)| format!("{r} version {v}"))
            .collect();
        changed.sort();
        seen.insert(rel, now);
        Ok((!changed.is_empty()).then(|| changed.join(", ")))
    }

    /// The source versions the view's last commit says it consumed.
    async fn consumed(&self, def: &MatViewDef) -> Option<HashMap<RelName, i64>> {
        let lake = self.engine.lake();
        let table = lake
            .table(&lake.url_for(&def.table.location).ok()?)
            .await
            .ok()?;
        let info = crate::lake::last_refresh_info(&table).await?;
        let sources = info.get("sluice.refresh")?.get("sources")?.as_object()?;
        Some(
            sources
                .iter()
                .filter_map(|(rel, v)| {
                    let (schema, name) = rel.split_once('.')?;
                    Some((RelName::new(schema, name), v.as_i64()?))
                })
                .collect(),
        )
    }

    /// Refresh `root`, then every view downstream of it in DAG order,
    /// each once; a view whose upstream failed is skipped. The root's
    /// run, or its error.
    async fn wave(&self, root: Object, why: Why, based_on: Option<i64>) -> Result<RunStatus> {
        let snapshot = self.engine.catalog().snapshot();
        let order = downstream(&snapshot, &root.rel_name());
        let run_id = uuid::Uuid::new_v4().to_string();
        let mut failed: Vec<RelName> = Vec::new();
        let mut result = None;
        let manual = matches!(why, Why::Manual);
        for (i, rel) in order.iter().enumerate() {
            let Some(object) = snapshot.relation(&rel.schema, &rel.name).cloned() else {
                continue;
            };
            let why_here = if i == 0 {
                why.clone()
            } else {
                Why::After(root.rel_name())
            };
            let blocked = upstream_of(&snapshot, rel)
                .into_iter()
                .find(|u| failed.contains(u));
            let ended = match blocked {
                Some(u) => {
                    history::record_skip(&self.engine, &run_id, &object, &why_here, &u).await;
                    Ended::Skipped
                }
                None => {
                    // Only the root of a scheduled wave may find its run
                    // already done by another server.
                    let based_on = if i == 0 { based_on } else { None };
                    self.attempts(&run_id, &object, &why_here, manual || i > 0, based_on)
                        .await
                }
            };
            let ok = matches!(ended, Ended::Succeeded(_));
            if !ok {
                failed.push(rel.clone());
            }
            if i == 0 {
                result = Some(ended);
            }
        }
        match result {
            Some(Ended::Succeeded(s)) => Ok(s),
            Some(Ended::Failed(e)) => Err(e),
            Some(Ended::Skipped) | None => Err(Error::new(
                crate::error::ErrorKind::SerializationFailure,
                format!("refresh of {} was not run", root.rel_name()),
            )),
        }
    }

    /// Refresh one view with its retries. `wait`: wait for a lease
    /// another server holds (else leave the run to it).
    async fn attempts(
        &self,
        run_id: &str,
        object: &Object,
        why: &Why,
        wait: bool,
        based_on: Option<i64>,
    ) -> Ended {
        let rel = object.rel_name();
        // A run of it in flight here: a scheduled one leaves it be, one
        // that must run waits for its lease (and leaves the flag to it).
        let mine = self.running.lock().unwrap().insert(rel.clone());
        if !mine && !wait {
            return Ended::Skipped;
        }
        let ended = self
            .attempts_inner(run_id, object, why, wait, based_on)
            .await;
        if mine {
            self.running.lock().unwrap().remove(&rel);
        }
        // Its standing changed: read it again at the next tick.
        self.planned.lock().unwrap().remove(&rel);
        ended
    }

    async fn attempts_inner(
        &self,
        run_id: &str,
        object: &Object,
        why: &Why,
        wait: bool,
        based_on: Option<i64>,
    ) -> Ended {
        let retries = match &object.def {
            Def::MaterializedView(d) => d.refresh.as_ref().map_or(0, |p| p.retries),
            _ => 0,
        };
        let rel = object.rel_name();
        let key = lease_key(&rel);
        let mut attempt = 1u32;
        loop {
            let held = match self
                .take_lease(&key, wait, based_on.filter(|_| attempt == 1))
                .await
            {
                Ok(Some(h)) => h,
                Ok(None) => return Ended::Skipped,
                Err(e) => return Ended::Failed(e),
            };
            let started = Utc::now();
            let (outcome, ended_at) = self
                .leases
                .holding(held, LEASE_TTL_MS, self.refresh_once(object))
                .await;
            let last = attempt > retries;
            let status = attempt_status(outcome.is_ok(), last);
            crate::metrics::refresh_finished(status);
            history::record(
                &self.engine,
                history::Attempt {
                    run_id,
                    object,
                    why: &why.label(),
                    attempt,
                    status,
                    started,
                    ended: ended_at,
                    outcome: &outcome,
                },
            )
            .await;
            match outcome {
                Ok(r) => {
                    return Ended::Succeeded(RunStatus {
                        run_id: run_id.to_string(),
                        status: status.to_string(),
                        attempts: attempt,
                        version: r.version,
                        rows: r.rows as i64,
                        method: r.method.to_string(),
                    });
                }
                Err(e) if last => {
                    let mut e = e;
                    e.message = format!(
                        "refresh of {rel} failed after {attempt} attempt{}: {}",
                        if attempt == 1 { "" } else { "s" },
                        e.message
                    );
                    return Ended::Failed(e);
                }
                Err(e) => {
                    self.wait_to_retry(&format!("refresh of {rel}"), attempt, &e)
                        .await;
                    attempt += 1;
                }
            }
        }
    }

    /// Take the view's lease. `None`: another server holds it (and
    /// `wait` is off), or it ran the refresh since `based_on` (the start
    /// of the run the schedule counted from).
    async fn take_lease(
        &self,
        key: &str,
        wait: bool,
        based_on: Option<i64>,
    ) -> Result<Option<Held>> {
        let got = if wait {
            let patience = Duration::from_millis(2 * LEASE_TTL_MS as u64);
            Some(
                self.leases
                    .acquire_waiting(key, &self.holder, LEASE_TTL_MS, patience)
                    .await?,
            )
        } else {
            self.leases.acquire(key, &self.holder, LEASE_TTL_MS).await?
        };
        let Some((held, before)) = got else {
            return Ok(None);
        };
        if let (Some(b), Some(previous)) = (based_on, before)
            && previous.started_ms > b
        {
            // Someone ran it meanwhile: put their record back.
            self.leases.restore(held, previous).await?;
            return Ok(None);
        }
        Ok(Some(held))
    }

    /// One refresh of the newest definition of `object`.
    async fn refresh_once(&self, object: &Object) -> Result<crate::engine::matview::Refreshed> {
        let snapshot = self.engine.catalog().refresh().await?;
        let current = snapshot
            .relation(&object.schema, &object.name)
            .filter(|o| matches!(o.def, Def::MaterializedView(_)))
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    crate::error::ErrorKind::UndefinedTable,
                    format!("materialized view {} no longer exists", object.rel_name()),
                )
            })?;
        let session = self.engine.session();
        let run = std::panic::AssertUnwindSafe(crate::engine::matview::refresh_view(
            &session, &current, false,
        ));
        match futures::FutureExt::catch_unwind(run).await {
            Ok(r) => r,
            Err(_) => Err(Error::internal(format!(
                "the refresh of {} panicked",
                object.rel_name()
            ))),
        }
    }
}

impl Orchestrator for Scheduler {
    fn refresh_now(self: Arc<Self>, view: Object) -> ResultFuture<'static, RunStatus> {
        Box::pin(async move {
            // The wave runs as its own task: a client that goes away does
            // not cut a refresh (or its run record) short.
            tokio::spawn(async move { self.wave(view, Why::Manual, None).await })
                .await
                .map_err(|e| Error::internal(format!("refresh task failed: {e}")))?
        })
    }

    fn start(self: Arc<Self>) -> Result<()> {
        self.run_schedules()
    }
}

/// How an attempt ended, as `sluice.runs.status` and the metrics say it.
fn attempt_status(ok: bool, last: bool) -> &'static str {
    match (ok, last) {
        (true, _) => "succeeded",
        (false, true) => "failed",
        (false, false) => "retrying",
    }
}

impl Scheduler {
    /// Sleep the backoff after failed attempt `attempt` of `what`.
    async fn wait_to_retry(&self, what: &str, attempt: u32, e: &Error) {
        let wait = backoff(self.retry_base, attempt);
        tracing::info!(
            "{what} failed (attempt {attempt}), retrying in {:.1}s: {}",
            wait.as_secs_f64(),
            e.message
        );
        tokio::time::sleep(wait).await;
    }
}

/// The wait before attempt `attempt + 1`: `base * 2^(attempt-1)`, with
/// jitter of ±50% so that servers retrying together spread out.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << (attempt - 1).min(16));
    let jitter = 0.5 + fastrand::f64();
    exp.mul_f64(jitter).min(MAX_BACKOFF)
}

/// The stored relations (tables, materialized views) `names` read,
/// looking through plain views.
fn stored_sources(snapshot: &crate::catalog::Snapshot, names: &[RelName]) -> Vec<RelName> {
    let mut out = Vec::new();
    let mut stack: Vec<RelName> = names.to_vec();
    let mut visited = HashSet::new();
    while let Some(r) = stack.pop() {
        if !visited.insert(r.clone()) {
            continue;
        }
        match snapshot.relation(&r.schema, &r.name).map(|o| &o.def) {
            Some(Def::View(v)) => stack.extend(v.depends_on.iter().cloned()),
            Some(_) => out.push(r),
            None => {}
        }
    }
    out.sort();
    out
}

/// The materialized views `rel` reads (directly or through plain views).
fn upstream_of(snapshot: &crate::catalog::Snapshot, rel: &RelName) -> Vec<RelName> {
    match snapshot.relation(&rel.schema, &rel.name).map(|o| &o.def) {
        Some(Def::MaterializedView(d)) => stored_sources(snapshot, &d.query.depends_on),
        _ => vec![],
    }
}

/// `root` and every materialized view downstream of it, each once, each
/// after everything it reads of the set.
fn downstream(snapshot: &crate::catalog::Snapshot, root: &RelName) -> Vec<RelName> {
    let views: Vec<(RelName, Vec<RelName>)> = snapshot
        .objects()
        .iter()
        .filter(|o| matches!(o.def, Def::MaterializedView(_)))
        .map(|o| (o.rel_name(), upstream_of(snapshot, &o.rel_name())))
        .collect();
    // Everything reachable from the root.
    let mut set: HashSet<RelName> = HashSet::from([root.clone()]);
    loop {
        let before = set.len();
        for (v, ups) in &views {
            if ups.iter().any(|u| set.contains(u)) {
                set.insert(v.clone());
            }
        }
        if set.len() == before {
            break;
        }
    }
    // Kahn's order within the set; the root first.
    let mut order = vec![root.clone()];
    let mut placed: HashSet<RelName> = HashSet::from([root.clone()]);
    loop {
        let mut next: Vec<RelName> = views
            .iter()
            .filter(|(v, ups)| {
                set.contains(v)
                    && !placed.contains(v)
                    && ups
                        .iter()
                        .all(|u| !set.contains(u) || placed.contains(u) || u == v)
            })
            .map(|(v, _)| v.clone())
            .collect();
        if next.is_empty() {
            break;
        }
        next.sort();
        for v in next {
            placed.insert(v.clone());
            order.push(v);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let base = Duration::from_millis(100);
        for attempt in 1..=5u32 {
            let w = backoff(base, attempt);
            let exp = 100.0 * 2f64.powi(attempt as i32 - 1);
            let ms = w.as_secs_f64() * 1000.0;
            assert!(
                ms >= exp * 0.5 - 1.0 && ms <= exp * 1.5 + 1.0,
                "{attempt}: {ms}"
            );
        }
        assert!(backoff(Duration::from_secs(10), 30) <= MAX_BACKOFF);
    }
}
