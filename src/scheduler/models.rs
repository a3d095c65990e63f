//! Models of a served project that run by themselves: a `table`,
//! `incremental` or snapshot node with a `schedule` config is run again
//! (with the nodes downstream of it in the project, as `sluice run
//! --select node+` does) when its schedule says so.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Scheduler, Why};
use crate::catalog::RelName;
use crate::catalog::schedule::{RefreshPolicy, Trigger};
use crate::error::{Error, Result};
use crate::lake::lease::TTL_MS;
use crate::project::{NodeKind, Project};

/// One scheduled node.
#[derive(Clone)]
pub struct ModelJob {
    project: Arc<Project>,
    /// `model.<project>.<name>`
    id: String,
    name: String,
    policy: RefreshPolicy,
    /// The stored relations it reads (through views), for ON UPSTREAM.
    sources: Vec<RelName>,
    /// When scheduling began: the start of its first interval.
    since: DateTime<Utc>,
}

impl ModelJob {
    fn lease_key(&self) -> String {
        format!("model.{}", self.id)
    }
}

/// The scheduled nodes of `project` (materialized and feature views are
/// scheduled through their own policies, set by the build).
pub fn jobs(project: &Arc<Project>) -> Result<Vec<ModelJob>> {
    let mut out = Vec::new();
    for node in &project.nodes {
        let runs_again = match node.kind {
            NodeKind::Model => matches!(node.materialized(), "table" | "incremental"),
            NodeKind::Snapshot => true,
            _ => false,
        };
        let Some(schedule) = node.config_str("schedule").filter(|_| runs_again) else {
            continue;
        };
        let retries = node.config_str("retries");
        let policy =
            RefreshPolicy::from_config(&schedule, retries.as_deref()).map_err(|e| Error {
                message: format!("{}: {}", node.path.display(), e.message),
                ..e
            })?;
        let Some(policy) = policy else { continue };
        // What it reads: the nodes it depends on and its sources.
        let mut sources: Vec<RelName> = node
            .sources
            .iter()
            .map(|r| RelName::new(&r.schema, &r.name))
            .collect();
        for dep in &node.depends_on {
            if let Some(r) = project
                .nodes
                .iter()
                .find(|n| &n.id == dep)
                .and_then(|n| n.relation.as_ref())
            {
                sources.push(RelName::new(&r.schema, &r.name));
            }
        }
        out.push(ModelJob {
            project: project.clone(),
            id: node.id.clone(),
            name: node.name.clone(),
            policy,
            sources,
            since: Utc::now(),
        });
    }
    Ok(out)
}

impl Scheduler {
    /// Run the scheduled nodes of `project` from now on.
    pub fn schedule_models(&self, project: Arc<Project>) -> Result<usize> {
        let jobs = jobs(&project)?;
        let n = jobs.len();
        self.models.lock().unwrap().extend(jobs);
        Ok(n)
    }

    /// Start the model runs that are due (part of a tick).
    pub(super) async fn tick_models(self: &Arc<Self>) -> Result<()> {
        let jobs: Vec<ModelJob> = self.models.lock().unwrap().clone();
        if jobs.is_empty() {
            return Ok(());
        }
        let snapshot = self.engine.catalog().snapshot();
        let now = Utc::now();
        for job in jobs {
            let rel = RelName::new("model", &job.id);
            if self.running.lock().unwrap().contains(&rel) {
                continue;
            }
            let why = match &job.policy.trigger {
                Trigger::Every { .. } | Trigger::Cron { .. } => {
                    let latest = self.leases.latest(&job.lease_key()).await?;
                    if latest
                        .as_ref()
                        .is_some_and(|(_, r)| r.running && r.expires_ms > now.timestamp_millis())
                    {
                        continue;
                    }
                    let last = latest
                        .and_then(|(_, r)| DateTime::<Utc>::from_timestamp_millis(r.started_ms))
                        .unwrap_or(job.since);
                    match job.policy.next_after(last) {
                        Some(at) if at <= now => Some((
                            Why::Schedule(job.policy.describe()),
                            Some(last.timestamp_millis()),
                        )),
                        _ => None,
                    }
                }
                Trigger::OnUpstream => {
                    let now_versions = self.versions_of(&snapshot, &job.sources).await?;
                    let mut seen = self.model_seen.lock().unwrap();
                    let before = seen
                        .entry(job.id.clone())
                        .or_insert_with(|| now_versions.clone());
                    let changed: Vec<String> = now_versions
                        .iter()
                        .filter(|(r, v)| before.get(*r).is_none_or(|b| b < *v))
                        .map(|(r, v)| format!("{r} version {v}"))
                        .collect();
                    *before = now_versions;
                    (!changed.is_empty()).then(|| (Why::Upstream(changed.join(", ")), None))
                }
            };
            let Some((why, based_on)) = why else { continue };
            self.running.lock().unwrap().insert(rel.clone());
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.run_model(&job, &why, based_on).await {
                    tracing::warn!("scheduled run of {}: {}", job.id, e.message);
                }
                me.running.lock().unwrap().remove(&rel);
            });
        }
        Ok(())
    }

    /// The versions of `sources` now (those that are stored tables).
    async fn versions_of(
        &self,
        snapshot: &crate::catalog::Snapshot,
        sources: &[RelName],
    ) -> Result<HashMap<RelName, i64>> {
        let lake = self.engine.lake();
        let mut out = HashMap::new();
        for rel in super::stored_sources(snapshot, sources) {
            let Some(stored) = snapshot
                .relation(&rel.schema, &rel.name)
                .and_then(|o| o.stored())
            else {
                continue;
            };
            if let Ok(t) = lake.table(&lake.url_for(&stored.location)?).await {
                out.insert(rel, t.version().unwrap_or(0) as i64);
            }
        }
        Ok(out)
    }

    /// Run the node and its descendants with the job's retries, holding
    /// the node's lease.
    async fn run_model(&self, job: &ModelJob, why: &Why, based_on: Option<i64>) -> Result<()> {
        let mut attempt = 1;
        loop {
            let Some(held) = self
                .take_lease(&job.lease_key(), false, based_on.filter(|_| attempt == 1))
                .await?
            else {
                return Ok(());
            };
            tracing::info!("running {} ({}, attempt {attempt})", job.id, why.label());
            let options = crate::project::Options {
                select: vec![format!("{}+", job.name)],
                exclude: vec![],
                full_refresh: false,
                threads: 4,
                progress: false,
            };
            let run = async {
                let summary = crate::project::run(
                    &self.engine,
                    job.project.clone(),
                    crate::project::Command::Run,
                    &options,
                )
                .await?;
                if summary.failed() {
                    let why = summary
                        .results
                        .iter()
                        .find(|r| !r.message.is_empty() && r.status.name() == "error")
                        .map(|r| format!("{}: {}", r.id, r.message))
                        .unwrap_or_else(|| "a node failed".to_string());
                    return Err(Error::new(crate::error::ErrorKind::DataException, why));
                }
                Ok(())
            };
            let (result, _) = self.leases.holding(held, TTL_MS, run).await;
            let last = attempt > job.policy.retries;
            let status = super::attempt_status(result.is_ok(), last);
            crate::metrics::refresh_finished(status);
            match result {
                Ok(()) => return Ok(()),
                Err(e) if last => return Err(e),
                Err(e) => {
                    self.wait_to_retry(&format!("run of {}", job.id), attempt, &e)
                        .await;
                    attempt += 1;
                }
            }
        }
    }
}
