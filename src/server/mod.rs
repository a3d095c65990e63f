//! The PostgreSQL wire protocol front door: accepts connections, gives each
//! its own [`Session`](crate::engine::Session), and maps results and errors
//! to protocol messages.

pub mod auth;
mod binary_rows;
mod conn;
pub mod copy;
mod handler;
pub mod sqlstate;
mod text;
mod txn_status;
mod wire_types;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use pgwire::tokio::TlsAcceptor;

use tokio::net::TcpListener;

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
pub use handler::Connection;

/// Accept connections until `shutdown` resolves. Prints
/// `listening on HOST:PORT` once the socket is bound.
/// TLS from a PEM certificate chain and private key. Any problem stops
/// the server before it listens: a server asked for TLS never runs without.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("TLS {what} {}: {e}", path.display()),
        )
    };
    let cert_pem = std::fs::read(cert).map_err(|e| bad("certificate", cert, &e))?;
    let key_pem = std::fs::read(key).map_err(|e| bad("key", key, &e))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", cert, &e))?;
    if chain.is_empty() {
        return Err(bad("certificate", cert, &"no PEM certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad("key", key, &e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("setup for", cert, &e))?
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .map_err(|e| bad("certificate and key", cert, &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

pub async fn serve(
    engine: Arc<Engine>,
    listen: &str,
    users: Option<Arc<auth::Users>>,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let addr: SocketAddr = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidParameter,
                format!("bad listen address {listen}: {e}"),
            )
        })?
        .next()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidParameter,
                format!("bad listen address {listen}"),
            )
        })?;
    if !addr.ip().is_loopback() && users.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            format!(
                "refusing to listen on {addr} without credentials: only loopback addresses \
                 are allowed unless users are configured (--users FILE)"
            ),
        ));
    }
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("listening on {local}");
    // Serve even when some tables cannot be read, and say which.
    let check = engine.clone();
    tokio::spawn(async move {
        for (table, e) in check.unreadable_tables().await {
            tracing::warn!("table {table} cannot be read: {}", e.message);
        }
    });
    // Views with a refresh policy refresh by themselves from now on (the
    // scheduler was installed with the engine).
    if let Some(scheduler) = engine.orchestrator() {
        scheduler.clone().start()?;
    }
    // Online feature views: indexed now, and kept up with every commit,
    // this server's or another's.
    engine.online().start_polling(
        engine.catalog().clone(),
        crate::features::online::poll_interval()?,
    );
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(release_freed_memory());
    let manager = Arc::new(pgwire::api::ConnectionManager::new());
    let max_connections = max_connections()?;
    let open_connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::pin!(shutdown);
    let tasks = tokio_util_tasks::Tasks::default();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => { tracing::warn!("accept failed: {e}"); continue; }
                };
                if !peer.ip().is_loopback() && users.is_none() {
                    tracing::warn!("refused connection from {peer}: not loopback");
                    continue;
                }
                let _ = socket.set_nodelay(true);
                let conn = Arc::new(Connection::new(
                    engine.session(),
                    manager.clone(),
                    users.clone(),
                    tls.is_some(),
                ));
                let tls = tls.clone();
                // Counted from here to the task's end, refused or not.
                let open = OpenGuard::new(&open_connections);
                let events = conn::Events {
                    rx: engine.notifier().subscribe(),
                    session: conn.session(),
                    refuse: open.count > max_connections,
                };
                tasks.spawn(conn.session(), async move {
                    let _open = open;
                    if let Err(e) = conn::process(socket, tls, conn, events).await {
                        tracing::debug!("connection from {peer} ended: {e}");
                    }
                });
            }
        }
    }
    // Stop accepting; let statements in flight finish their commits.
    drop(listener);
    tasks.shutdown(std::time::Duration::from_secs(30)).await;
    Ok(())
}

/// glibc keeps memory freed after a peak (many connections replaying
/// Delta logs at once) in its arenas, so resident memory only ever rises;
/// every 10 s what is free is handed back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
async fn release_freed_memory() {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        // SAFETY: malloc_trim only trims the allocator's own free lists
        // and may be called from any thread at any time.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}

/// glibc gives each thread that meets contention its own arena, up to
/// eight per core, and each keeps its own freed memory: with many
/// connections (and DataFusion's threads) resident memory grows with the
/// arenas. One arena per core, unless `MALLOC_ARENA_MAX` says otherwise;
/// called before the runtime starts its threads. Under the 64-connection
/// load (debug build) anonymous memory after two minutes was 152 MiB with
/// two arenas against 207 MiB with glibc's default (benchmarks/README.md,
/// "Load").
pub fn limit_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets a tunable of the allocator; before any
        // thread but this one exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.clamp(1, 64) as libc::c_int);
        }
    }
}

/// How many client connections a server serves at once
/// (`SLUICE_MAX_CONNECTIONS`, default 100 as PostgreSQL's
/// `max_connections`); one more is refused with 53300.
fn max_connections() -> crate::error::Result<usize> {
    match std::env::var("SLUICE_MAX_CONNECTIONS") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                crate::error::Error::new(
                    crate::error::ErrorKind::InvalidParameter,
                    format!("SLUICE_MAX_CONNECTIONS must be a positive number, not \"{v}\""),
                )
            }),
        Err(_) => Ok(100),
    }
}

/// One open connection, counted while it lives.
struct OpenGuard {
    open: Arc<std::sync::atomic::AtomicUsize>,
    /// Open connections with this one.
    count: usize,
}

impl OpenGuard {
    fn new(open: &Arc<std::sync::atomic::AtomicUsize>) -> OpenGuard {
        let count = open.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        OpenGuard {
            open: open.clone(),
            count,
        }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

mod tokio_util_tasks {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::task::JoinHandle;

    use crate::engine::Session;

    /// Open connections with their sessions. A statement holds its
    /// session's lock while it runs, so taking the lock means none is
    /// in flight on that connection.
    #[derive(Default, Clone)]
    pub struct Tasks(Arc<Mutex<Vec<OpenConnection>>>);

    type OpenConnection = (JoinHandle<()>, Arc<tokio::sync::Mutex<Session>>);

    impl Tasks {
        pub fn spawn(
            &self,
            session: Arc<tokio::sync::Mutex<Session>>,
            f: impl std::future::Future<Output = ()> + Send + 'static,
        ) {
            let mut v = self.0.lock().unwrap();
            v.retain(|(h, _)| !h.is_finished());
            v.push((tokio::spawn(f), session));
        }

        /// Let statements in flight finish (up to `limit` in all), then
        /// close every connection before it can start another.
        pub async fn shutdown(&self, limit: Duration) {
            let open: Vec<_> = std::mem::take(&mut *self.0.lock().unwrap());
            let deadline = tokio::time::Instant::now() + limit;
            for (task, session) in open {
                let idle = tokio::time::timeout_at(deadline, session.lock()).await;
                task.abort();
                drop(idle);
            }
        }
    }
}
