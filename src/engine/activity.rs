//! The server's connections as PostgreSQL shows them: `pg_stat_activity`,
//! and `pg_cancel_backend(pid)` / `pg_terminate_backend(pid)` to stop what
//! one of them is doing.
//!
//! Each connection registers a [`Backend`] once it has logged in and holds
//! the [`Registered`] guard that removes it when the connection ends. A
//! statement marks its backend active (with its text) and idle again when
//! it returns. As in PostgreSQL, everyone sees every connection, but the
//! text of another user's statement only an admin sees; a user may cancel
//! or terminate its own connections, an admin anyone's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use tokio::sync::Notify;

use super::access::{Grant, Role};

/// How much of a statement's text `pg_stat_activity` keeps.
const QUERY_TEXT_BYTES: usize = 1024;

/// What a backend is doing, as `pg_stat_activity.state` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Active,
    Idle,
    IdleInTransaction,
    IdleInTransactionAborted,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Idle => "idle",
            State::IdleInTransaction => "idle in transaction",
            State::IdleInTransactionAborted => "idle in transaction (aborted)",
        }
    }
}

struct Now {
    state: State,
    query: String,
    query_start: Option<SystemTime>,
    xact_start: Option<SystemTime>,
    state_change: SystemTime,
}

/// One client connection.
pub struct Backend {
    pub pid: i32,
    pub user: String,
    pub application_name: String,
    pub client: Option<SocketAddr>,
    start: SystemTime,
    now: Mutex<Now>,
    /// Asks the connection to cancel its statement in progress.
    pub cancel: Notify,
    /// Statements begun so far, and the one a cancel was asked for
    /// (`u64::MAX`: none): a cancel that arrives while the connection is
    /// idle, or reaches it only after that statement ended, is ignored, as
    /// PostgreSQL ignores the signal when no query runs.
    statements: AtomicU64,
    cancel_target: AtomicU64,
    terminating: AtomicBool,
    /// Asks the connection to end (after canceling its statement).
    pub terminate: Notify,
    /// The statement whose rows are going out (0: none): it has returned
    /// its result stream, and the work that stream does (a join, an
    /// aggregate) runs while the rows are sent. A cancel then stops the
    /// stream, through `cancels`.
    rows: AtomicU64,
    /// Each cancel asked for, as the number of the statement it is for:
    /// what a statement waiting inside synchronous code listens to (see
    /// [`crate::interrupt`]).
    cancels: tokio::sync::watch::Sender<u64>,
}

impl Backend {
    /// The number of the statement begun last.
    pub fn statement(&self) -> u64 {
        self.statements.load(Ordering::SeqCst)
    }

    /// The cancels asked for from now on (see [`Backend::cancels`]).
    pub fn cancel_requests(&self) -> tokio::sync::watch::Receiver<u64> {
        self.cancels.subscribe()
    }

    pub fn terminating(&self) -> bool {
        self.terminating.load(Ordering::SeqCst)
    }

    /// A statement begins (`query` is what the client sent).
    pub fn started(&self, query: &str) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        let at = SystemTime::now();
        if now.state == State::Idle {
            now.xact_start = Some(at);
        }
        now.state = State::Active;
        self.statements.fetch_add(1, Ordering::SeqCst);
        // As PostgreSQL's track_activity_query_size: the first 1 kB.
        let mut end = query.len().min(QUERY_TEXT_BYTES);
        while !query.is_char_boundary(end) {
            end -= 1;
        }
        now.query.clear();
        now.query.push_str(&query[..end]);
        now.query_start = Some(at);
        now.state_change = at;
    }

    /// Ask for the statement in progress to be canceled (nothing when
    /// none is).
    pub fn request_cancel(&self) {
        let now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if now.state == State::Active {
            let n = self.statements.load(Ordering::SeqCst);
            self.cancel_target.store(n, Ordering::SeqCst);
            drop(now);
            self.cancels.send_replace(n);
            self.cancel.notify_one();
            return;
        }
        let rows = self.rows.load(Ordering::SeqCst);
        if rows != 0 {
            drop(now);
            self.cancels.send_replace(rows);
        }
    }

    /// The rows of the statement that just returned begin to go out; its
    /// number, for [`Backend::cancel_requests`] and [`Backend::rows_sent`].
    pub fn rows_started(&self) -> u64 {
        let n = self.statements.load(Ordering::SeqCst);
        self.rows.store(n, Ordering::SeqCst);
        n
    }

    /// The rows of statement `n` are all out (or dropped).
    pub fn rows_sent(&self, n: u64) {
        let _ = self
            .rows
            .compare_exchange(n, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Is the statement a cancel was asked for still the one in progress?
    /// (Clears the request.)
    pub fn take_cancel(&self) -> bool {
        let now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        let target = self.cancel_target.swap(u64::MAX, Ordering::SeqCst);
        now.state == State::Active && target == self.statements.load(Ordering::SeqCst)
    }

    /// The statement was dropped before it returned (canceled): no longer
    /// active.
    pub fn interrupted(&self) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if now.state == State::Active {
            now.state = State::Idle;
            now.state_change = SystemTime::now();
        }
    }

    /// The statement returned; the session is now in `state`.
    pub fn finished(&self, state: State) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        now.state = state;
        now.state_change = SystemTime::now();
        if state == State::Idle {
            now.xact_start = None;
        }
    }
}

/// Every connection of this server, by pid.
#[derive(Default)]
pub struct Activity {
    backends: Mutex<BTreeMap<i32, Arc<Backend>>>,
}

/// Removes its backend from the registry when dropped.
pub struct Registered {
    activity: Arc<Activity>,
    pub backend: Arc<Backend>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.activity
            .backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.backend.pid);
    }
}

impl Activity {
    pub fn register(
        self: &Arc<Self>,
        pid: i32,
        user: &str,
        application_name: &str,
        client: Option<SocketAddr>,
    ) -> Registered {
        let at = SystemTime::now();
        let backend = Arc::new(Backend {
            pid,
            user: user.to_string(),
            application_name: application_name.to_string(),
            client,
            start: at,
            now: Mutex::new(Now {
                state: State::Idle,
                query: String::new(),
                query_start: None,
                xact_start: None,
                state_change: at,
            }),
            cancel: Notify::new(),
            statements: AtomicU64::new(0),
            cancel_target: AtomicU64::new(u64::MAX),
            terminating: AtomicBool::new(false),
            terminate: Notify::new(),
            rows: AtomicU64::new(0),
            cancels: tokio::sync::watch::Sender::new(0),
        });
        self.backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid, backend.clone());
        Registered {
            activity: self.clone(),
            backend,
        }
    }

    pub fn get(&self, pid: i32) -> Option<Arc<Backend>> {
        self.backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<Backend>> {
        self.backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Who is asking, in a client session: set by the session once the
/// connection has logged in. `user` is `None` on a server without users
/// (everyone is an admin there).
#[derive(Default)]
pub struct Caller {
    inner: RwLock<(i32, Option<Grant>)>,
}

impl Caller {
    pub fn set(&self, pid: i32, user: Option<Grant>) {
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = (pid, user);
    }

    fn may_see_or_signal(&self, backend: &Backend) -> bool {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        match &inner.1 {
            None => true,
            Some(g) => g.role == Role::Admin || g.user == backend.user,
        }
    }
}

const INSUFFICIENT: &str = "<insufficient privilege>";

fn micros(t: Option<SystemTime>) -> Option<i64> {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as i64)
}

fn schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("datid", DataType::Int32, true),
        Field::new("datname", DataType::Utf8, true),
        Field::new("pid", DataType::Int32, false),
        Field::new("leader_pid", DataType::Int32, true),
        Field::new("usesysid", DataType::Int32, true),
        Field::new("usename", DataType::Utf8, true),
        Field::new("application_name", DataType::Utf8, true),
        Field::new("client_addr", DataType::Utf8, true),
        Field::new("client_hostname", DataType::Utf8, true),
        Field::new("client_port", DataType::Int32, true),
        Field::new("backend_start", ts(), true),
        Field::new("xact_start", ts(), true),
        Field::new("query_start", ts(), true),
        Field::new("state_change", ts(), true),
        Field::new("wait_event_type", DataType::Utf8, true),
        Field::new("wait_event", DataType::Utf8, true),
        Field::new("state", DataType::Utf8, true),
        Field::new("backend_xid", DataType::Utf8, true),
        Field::new("backend_xmin", DataType::Utf8, true),
        Field::new("query_id", DataType::Int64, true),
        Field::new("query", DataType::Utf8, true),
        Field::new("backend_type", DataType::Utf8, true),
    ]))
}

/// `pg_catalog.pg_stat_activity`: the connections as of the scan.
#[derive(Debug)]
pub struct StatActivity {
    activity: Arc<Activity>,
    caller: Arc<Caller>,
    database: String,
}

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Activity")
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Caller")
    }
}

impl StatActivity {
    fn batch(&self) -> DfResult<RecordBatch> {
        let backends = self.activity.all();
        let n = backends.len();
        let mut pid = Vec::with_capacity(n);
        let (mut user, mut app, mut addr, mut port) = (vec![], vec![], vec![], vec![]);
        let (mut start, mut xact, mut qstart, mut change) = (vec![], vec![], vec![], vec![]);
        let (mut state, mut query) = (vec![], vec![]);
        for b in &backends {
            let visible = self.caller.may_see_or_signal(b);
            let now = b.now.lock().unwrap_or_else(|e| e.into_inner());
            pid.push(b.pid);
            user.push(Some(b.user.clone()));
            app.push(Some(b.application_name.clone()));
            addr.push(b.client.map(|a| a.ip().to_string()));
            port.push(b.client.map(|a| a.port() as i32));
            start.push(micros(Some(b.start)));
            if visible {
                xact.push(micros(now.xact_start));
                qstart.push(micros(now.query_start));
                change.push(micros(Some(now.state_change)));
                state.push(Some(now.state.name().to_string()));
                query.push(Some(now.query.clone()));
            } else {
                xact.push(None);
                qstart.push(None);
                change.push(None);
                state.push(None);
                query.push(Some(INSUFFICIENT.to_string()));
            }
        }
        let ts = |v: Vec<Option<i64>>| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
        };
        let text = |v: Vec<Option<String>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
        let nulls_text = || -> ArrayRef { Arc::new(StringArray::from(vec![None::<&str>; n])) };
        let nulls_int = || -> ArrayRef { Arc::new(Int32Array::from(vec![None; n])) };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![Some(1); n])),
            text(vec![Some(self.database.clone()); n]),
            Arc::new(Int32Array::from(pid)),
            nulls_int(),
            nulls_int(),
            text(user),
            text(app),
            text(addr),
            nulls_text(),
            Arc::new(Int32Array::from(port)),
            ts(start),
            ts(xact),
            ts(qstart),
            ts(change),
            nulls_text(),
            nulls_text(),
            text(state),
            nulls_text(),
            nulls_text(),
            Arc::new(Int64Array::from(vec![None; n])),
            text(query),
            text(vec![Some("client backend".to_string()); n]),
        ];
        Ok(RecordBatch::try_new(schema(), columns)?)
    }
}

impl TableProvider for StatActivity {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }
    crate::send_sync::scan_by!(Self::scan_boxed);
}

impl StatActivity {
    /// `TableProvider::scan` (see `crate::send_sync::scan_by`).
    fn scan_boxed<'a>(
        &'a self,
        state: &'a dyn Session,
        projection: Option<&'a Vec<usize>>,
        filters: &'a [Expr],
        limit: Option<usize>,
    ) -> futures::future::BoxFuture<'a, DfResult<Arc<dyn ExecutionPlan>>> {
        Box::pin(async move {
            let table = MemTable::try_new(schema(), vec![vec![self.batch()?]])?;
            table.scan(state, projection, filters, limit).await
        })
    }
}

/// `pg_cancel_backend(pid)` and `pg_terminate_backend(pid [, timeout])`.
#[derive(Debug)]
struct Signal {
    name: &'static str,
    terminate: bool,
    activity: Arc<Activity>,
    caller: Arc<Caller>,
    signature: Signature,
}

impl PartialEq for Signal {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Signal {}
impl std::hash::Hash for Signal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl Signal {
    fn signal(&self, pid: i32) -> DfResult<bool> {
        let Some(backend) = self.activity.get(pid) else {
            // As PostgreSQL: a warning there, false here.
            return Ok(false);
        };
        if !self.caller.may_see_or_signal(&backend) {
            return Err(DataFusionError::External(Box::new(
                crate::error::Error::new(
                    crate::error::ErrorKind::InsufficientPrivilege,
                    format!(
                        "permission denied to {} backend {pid}",
                        if self.terminate {
                            "terminate"
                        } else {
                            "cancel the query of"
                        }
                    ),
                )
                .with_detail(format!(
                    "Only an admin or user \"{}\" may signal it.",
                    backend.user
                )),
            )));
        }
        if self.terminate {
            backend.terminating.store(true, Ordering::SeqCst);
            backend.terminate.notify_one();
        }
        backend.request_cancel();
        Ok(true)
    }
}

impl ScalarUDFImpl for Signal {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    /// `(integer)`, and for terminate also `(integer, bigint)` (the
    /// timeout PostgreSQL waits; here the end is asked for, not awaited).
    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        let integer = |t: &DataType| t.is_integer() || matches!(t, DataType::Null | DataType::Utf8);
        match args {
            [pid] if integer(pid) => Ok(vec![DataType::Int32]),
            [pid, wait] if self.terminate && integer(pid) && integer(wait) => {
                Ok(vec![DataType::Int32, DataType::Int64])
            }
            _ => datafusion::common::plan_err!(
                "function {}({}) does not exist",
                self.name,
                args.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let pids = datafusion::arrow::compute::cast(&arrays[0], &DataType::Int32)?;
        let pids = pids
            .as_any()
            .downcast_ref::<Int32Array>()
            .ok_or_else(|| DataFusionError::Internal("pid is not an integer".into()))?;
        let mut out = Vec::with_capacity(pids.len());
        for pid in pids.iter() {
            out.push(match pid {
                Some(pid) => Some(self.signal(pid)?),
                None => None,
            });
        }
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(out))))
    }
}

/// Install `pg_stat_activity` (in `pg_catalog` of `database`) and the
/// signal functions in a client session's context; the session sets the
/// returned [`Caller`] once it knows who it serves.
pub fn install(ctx: &SessionContext, activity: Arc<Activity>, database: &str) -> Arc<Caller> {
    let caller = Arc::new(Caller::default());
    for (name, terminate) in [("pg_cancel_backend", false), ("pg_terminate_backend", true)] {
        let signature = Signature::user_defined(Volatility::Volatile);
        ctx.register_udf(ScalarUDF::new_from_impl(Signal {
            name,
            terminate,
            activity: activity.clone(),
            caller: caller.clone(),
            signature,
        }));
    }
    // The pid clients know the session by (pg_catalog's own answers 1).
    let me = caller.clone();
    ctx.register_udf(datafusion::logical_expr::create_udf(
        "pg_backend_pid",
        vec![],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(move |_| {
            let pid = me.inner.read().unwrap_or_else(|e| e.into_inner()).0;
            Ok(ColumnarValue::Scalar(
                datafusion::scalar::ScalarValue::Int32(Some(pid)),
            ))
        }),
    ));
    let table = Arc::new(StatActivity {
        activity,
        caller: caller.clone(),
        database: database.to_string(),
    });
    if let Some(schema) = ctx.catalog(database).and_then(|c| c.schema("pg_catalog")) {
        let _ = schema.register_table("pg_stat_activity".into(), table);
    }
    caller
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_text_is_kept_to_its_first_kilobyte_on_a_char_boundary() {
        let activity = Arc::new(Activity::default());
        let reg = activity.register(7, "ann", "psql", None);
        let long = format!("SELECT '{}'", "é".repeat(2000));
        reg.backend.started(&long);
        let kept = reg.backend.now.lock().unwrap().query.clone();
        assert!(kept.len() <= QUERY_TEXT_BYTES && kept.len() >= QUERY_TEXT_BYTES - 1);
        assert!(long.starts_with(&kept));
        reg.backend.finished(State::Idle);
        assert_eq!(reg.backend.now.lock().unwrap().state, State::Idle);
        drop(reg);
        assert!(activity.get(7).is_none());
    }
}
