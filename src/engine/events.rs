//! What the engine tells sessions and the scheduler about: notifications
//! (`LISTEN` / `NOTIFY`, and `sluice_refresh` when a refresh commits), and
//! the scheduler that runs `sluice.refresh(...)`.
//!
//! ```text
//!  NOTIFY ch, 'x' ─┐
//!  refresh commit ─┴─▶ Engine::notify ──broadcast──▶ every connection LISTENing on ch
//!  SELECT sluice.refresh('v') ──▶ Orchestrator (installed by the scheduler)
//! ```

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::catalog::Object;
use crate::error::{Result, ResultFuture};

/// The channel refreshes notify on; the payload is JSON with the object,
/// its new version and the refresh method.
pub const REFRESH_CHANNEL: &str = "sluice_refresh";

/// Notifications a slow listener may fall behind by before it loses some.
const BACKLOG: usize = 1024;

/// One notification, as PostgreSQL's NotificationResponse carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The process id of the session that sent it (0: the server itself).
    pub pid: i32,
    pub channel: String,
    pub payload: String,
}

/// Where notifications go out from.
pub struct Notifier {
    tx: broadcast::Sender<Notification>,
    /// The newest version of each view a refresh notification announced
    /// (so that a commit seen twice, made here and then polled, is
    /// announced once).
    announced: Mutex<std::collections::HashMap<String, i64>>,
}

impl Default for Notifier {
    fn default() -> Notifier {
        Notifier {
            tx: broadcast::channel(BACKLOG).0,
            announced: Default::default(),
        }
    }
}

impl Notifier {
    /// Send to every listener of `channel` on this server. Nobody
    /// listening is not an error.
    pub fn notify(&self, pid: i32, channel: &str, payload: &str) {
        let _ = self.tx.send(Notification {
            pid,
            channel: channel.to_string(),
            payload: payload.to_string(),
        });
    }

    /// Announce on [`REFRESH_CHANNEL`] that `object` (`schema.name`)
    /// reached `version`, unless that version (or a later one) was
    /// announced already.
    pub fn refreshed(
        &self,
        pid: i32,
        object: &str,
        version: i64,
        method: &str,
        rows: Option<usize>,
    ) {
        {
            let mut seen = self.announced.lock().expect("announced versions");
            if seen.get(object).is_some_and(|v| *v >= version) {
                return;
            }
            seen.insert(object.to_string(), version);
        }
        let payload = serde_json::json!({
            "object": object,
            "version": version,
            "method": method,
            "rows": rows,
        });
        self.notify(pid, REFRESH_CHANNEL, &payload.to_string());
    }

    /// The version of `object` announced last, if any.
    pub fn announced(&self, object: &str) -> Option<i64> {
        self.announced
            .lock()
            .expect("announced versions")
            .get(object)
            .copied()
    }

    /// Note `version` of `object` as known without announcing it (what a
    /// server finds when it starts, or a commit that was no refresh).
    pub fn note(&self, object: &str, version: i64) {
        let mut seen = self.announced.lock().expect("announced versions");
        let v = seen.entry(object.to_string()).or_insert(version);
        *v = (*v).max(version);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.tx.subscribe()
    }
}

/// The channels one session listens on (shared with its connection,
/// which delivers the notifications).
pub type Listening = Arc<Mutex<BTreeSet<String>>>;

/// What a run of `sluice.refresh('v')` came to.
#[derive(Debug, Clone)]
pub struct RunStatus {
    pub run_id: String,
    /// `succeeded` (a failed run is an error).
    pub status: String,
    pub attempts: u32,
    /// The view's version after the run.
    pub version: i64,
    pub rows: i64,
    /// The refresh method (`append`, `full`, `none`, ...).
    pub method: String,
}

/// Runs refreshes as the scheduler does (retries, run history, the
/// objects downstream).
pub trait Orchestrator: Send + Sync {
    /// Refresh `view` now, then every object that depends on it.
    fn refresh_now(self: Arc<Self>, view: Object) -> ResultFuture<'static, RunStatus>;
    /// Run the schedules from now on (in a server).
    fn start(self: Arc<Self>) -> Result<()>;
}
