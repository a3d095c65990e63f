//! Leases kept in the lake, so that two servers on one lake never run the
//! same job at once, and each sees when the other last ran it.
//!
//! ```text
//!  <lake>/_sluice/leases/<key>/00000000000000000007.json   {"holder": .., "running": true, "expires_ms": ..}
//!                             00000000000000000008.json   {"holder": .., "running": false, "status": "succeeded", ..}
//! ```
//!
//! Each change of a lease is a new record, written only if no record of
//! that number exists (a conditional put, atomic on a local disk and on
//! S3): of two servers taking the lease at once, one writes the next
//! record and the other finds it written. A lease not renewed before it
//! expires may be taken by anyone, so a server that died holding it
//! blocks nobody for long.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::Lake;
use crate::error::{Error, ErrorKind, Result};

/// A lease lasts this long without renewal; a holder renews it every
/// third.
pub const TTL_MS: i64 = 60_000;

/// Older records kept beside the newest (the rest are removed).
const KEEP: u64 = 8;

/// One state of a lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Who wrote it (a server's id).
    pub holder: String,
    /// Held (a job runs) or free.
    pub running: bool,
    /// Until when a held lease holds without renewal (ms since the epoch).
    pub expires_ms: i64,
    /// When the job that took the lease started.
    pub started_ms: i64,
    /// When it ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    /// How it ended (`succeeded`, `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The leases of one lake.
#[derive(Clone)]
pub struct Leases {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

/// A lease this process holds: the number of its last record.
#[derive(Debug, Clone)]
pub struct Held {
    pub key: String,
    seq: u64,
    pub record: Record,
}

fn io(e: object_store::Error) -> Error {
    Error::new(ErrorKind::Io, format!("lease store: {e}"))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Leases {
    pub fn new(lake: &Lake) -> Result<Leases> {
        let url = lake.url_for("_sluice/leases")?;
        let (store, root) = lake.store_for(&url)?;
        Ok(Leases { store, root })
    }

    fn dir(&self, key: &str) -> Path {
        self.root.clone().join(key)
    }

    fn record_path(&self, key: &str, seq: u64) -> Path {
        self.dir(key).join(format!("{seq:020}.json").as_str())
    }

    /// The newest record of `key` and its number.
    pub async fn latest(&self, key: &str) -> Result<Option<(u64, Record)>> {
        let dir = self.dir(key);
        let mut numbers: Vec<u64> = self
            .store
            .list(Some(&dir))
            .map_ok(|m| m.location)
            .try_collect::<Vec<_>>()
            .await
            .map_err(io)?
            .iter()
            .filter_map(|p| p.filename()?.strip_suffix(".json")?.parse().ok())
            .collect();
        numbers.sort_unstable();
        // A record listed but removed meanwhile: the one before it.
        while let Some(seq) = numbers.pop() {
            match self.store.get(&self.record_path(key, seq)).await {
                Ok(got) => {
                    let bytes = got.bytes().await.map_err(io)?;
                    let record = serde_json::from_slice(&bytes).map_err(|e| {
                        Error::new(ErrorKind::Io, format!("lease record {key}/{seq}: {e}"))
                    })?;
                    return Ok(Some((seq, record)));
                }
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(io(e)),
            }
        }
        Ok(None)
    }

    /// Write record `seq` unless it exists: whether this call wrote it.
    async fn write(&self, key: &str, seq: u64, record: &Record) -> Result<bool> {
        let body = serde_json::to_vec(record).map_err(|e| Error::internal(e.to_string()))?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.record_path(key, seq), PutPayload::from(body), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    /// Take the lease `key` for `ttl_ms` if it is free (or expired): the
    /// held lease, and the record it replaced.
    pub async fn acquire(
        &self,
        key: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<(Held, Option<Record>)>> {
        let latest = self.latest(key).await?;
        let now = now_ms();
        if let Some((_, r)) = &latest
            && r.running
            && r.expires_ms > now
        {
            return Ok(None);
        }
        let seq = latest.as_ref().map_or(0, |(s, _)| s + 1);
        let record = Record {
            holder: holder.to_string(),
            running: true,
            expires_ms: now + ttl_ms,
            started_ms: now,
            finished_ms: None,
            status: None,
        };
        if !self.write(key, seq, &record).await? {
            return Ok(None);
        }
        if seq > KEEP {
            self.prune(key, seq - KEEP).await;
        }
        Ok(Some((
            Held {
                key: key.to_string(),
                seq,
                record,
            },
            latest.map(|(_, r)| r),
        )))
    }

    /// Hold on for another `ttl_ms`; false when the lease was lost (it
    /// expired and someone took it).
    pub async fn renew(&self, held: &mut Held, ttl_ms: i64) -> Result<bool> {
        let mut record = held.record.clone();
        record.expires_ms = now_ms() + ttl_ms;
        if !self.write(&held.key, held.seq + 1, &record).await? {
            return Ok(false);
        }
        held.seq += 1;
        held.record = record;
        Ok(true)
    }

    /// Free the lease, recording how the job ended.
    pub async fn release(&self, held: Held, status: &str) -> Result<()> {
        let mut record = held.record;
        record.running = false;
        record.finished_ms = Some(now_ms());
        record.status = Some(status.to_string());
        if !self.write(&held.key, held.seq + 1, &record).await? {
            tracing::warn!(
                "lease {} was taken over before it was released (the job outlived it)",
                held.key
            );
        }
        Ok(())
    }

    /// Take the lease `key`, waiting up to `patience` while another holds
    /// it.
    pub async fn acquire_waiting(
        &self,
        key: &str,
        holder: &str,
        ttl_ms: i64,
        patience: std::time::Duration,
    ) -> Result<(Held, Option<Record>)> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(got) = self.acquire(key, holder, ttl_ms).await? {
                return Ok(got);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::SerializationFailure,
                    format!(
                        "{key} is held by another refresh (waited {} s)",
                        patience.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Run `work` holding `held` (renewed every third of `ttl_ms`), then
    /// free the lease with how it ended: its result, and when it ended
    /// (before the lease was free, so the next holder starts later).
    pub async fn holding<T>(
        &self,
        held: Held,
        ttl_ms: i64,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> (Result<T>, chrono::DateTime<chrono::Utc>) {
        let held = Arc::new(tokio::sync::Mutex::new(held));
        let renewer = {
            let held = held.clone();
            let leases = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(ttl_ms as u64 / 3)).await;
                    let mut h = held.lock().await;
                    match leases.renew(&mut h, ttl_ms).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("lease {} lost while its job ran", h.key);
                            return;
                        }
                        Err(e) => tracing::warn!("lease {} not renewed: {}", h.key, e.message),
                    }
                }
            })
        };
        let result = work.await;
        let ended = chrono::Utc::now();
        renewer.abort();
        let _ = renewer.await;
        let held = held.lock().await.clone();
        let status = if result.is_ok() {
            "succeeded"
        } else {
            "failed"
        };
        if let Err(e) = self.release(held, status).await {
            tracing::warn!("lease not released: {}", e.message);
        }
        (result, ended)
    }

    /// Free the lease as `previous` left it: taken only to find the job
    /// already done.
    pub async fn restore(&self, held: Held, previous: Record) -> Result<()> {
        self.write(&held.key, held.seq + 1, &previous).await?;
        Ok(())
    }

    /// Remove records older than `below` (best effort: a failure leaves
    /// them for the next time).
    async fn prune(&self, key: &str, below: u64) {
        for seq in below.saturating_sub(KEEP)..below {
            match self.store.delete(&self.record_path(key, seq)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    tracing::debug!("lease {key}: record {seq} not removed: {e}");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_expired_leases_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let leases = Leases::new(&lake).unwrap();
        let (mut a, before) = leases.acquire("m.v", "a", 60_000).await.unwrap().unwrap();
        assert!(before.is_none());
        assert!(leases.acquire("m.v", "b", 60_000).await.unwrap().is_none());
        assert!(leases.renew(&mut a, 60_000).await.unwrap());
        leases.release(a, "succeeded").await.unwrap();
        let (b, before) = leases.acquire("m.v", "b", 1).await.unwrap().unwrap();
        let before = before.unwrap();
        assert_eq!(before.status.as_deref(), Some("succeeded"));
        assert!(!before.running && before.finished_ms.is_some());
        // b never releases; after its lease expires, c takes it.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (c, before) = leases.acquire("m.v", "c", 60_000).await.unwrap().unwrap();
        assert_eq!(before.unwrap().holder, "b");
        // b's renewal finds the lease gone.
        let mut b = b;
        assert!(!leases.renew(&mut b, 60_000).await.unwrap());
        leases.release(c, "failed").await.unwrap();
        let (_, latest) = leases.latest("m.v").await.unwrap().unwrap();
        assert_eq!(latest.status.as_deref(), Some("failed"));
    }

    #[tokio::test]
    async fn racing_acquirers_get_one_lease() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let leases = Leases::new(&lake).unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let l = leases.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire("k", &format!("h{i}"), 60_000).await.unwrap()
            }));
        }
        let mut won = 0;
        for t in tasks {
            won += t.await.unwrap().is_some() as usize;
        }
        assert_eq!(won, 1);
    }
}
