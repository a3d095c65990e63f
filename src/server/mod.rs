//! The PostgreSQL wire protocol front door: accepts connections, gives each
//! its own [`Session`](crate::engine::Session), and maps results and errors
//! to protocol messages.

pub mod copy;
mod handler;
pub mod sqlstate;
mod text;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
pub use handler::Connection;

/// Accept connections until `shutdown` resolves. Prints
/// `listening on HOST:PORT` once the socket is bound.
pub async fn serve(
    engine: Arc<Engine>,
    listen: &str,
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
    if !addr.ip().is_loopback() {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            format!(
                "refusing to listen on {addr} without credentials: only loopback addresses \
                 are allowed until user authentication is configured"
            ),
        ));
    }
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("listening on {local}");
    let manager = Arc::new(pgwire::api::ConnectionManager::new());
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
                if !peer.ip().is_loopback() {
                    tracing::warn!("refused connection from {peer}: not loopback");
                    continue;
                }
                let _ = socket.set_nodelay(true);
                let conn = Arc::new(Connection::new(engine.session(), manager.clone()));
                tasks.spawn(conn.session(), async move {
                    if let Err(e) = pgwire::tokio::process_socket(socket, None, conn).await {
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
