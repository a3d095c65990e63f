//! One connection's message loop: pgwire's handling of each message over a
//! socket that sends a batch of replies in one write.
//!
//! pgwire flushes its socket after most replies (ParseComplete,
//! BindComplete, CommandComplete, ReadyForQuery), which costs a system call
//! and a TCP segment each: four for a prepared lookup where PostgreSQL
//! sends one. [`Batched`] holds replies back until the connection next
//! waits for the client: the message loop reads the socket only once it
//! has handled every message already received, so whatever a client is
//! waiting for has been answered by then, and goes out in one write. A
//! large reply goes out as it grows.
//!
//! ```text
//!  replies ──write──▶ held ──(the loop reads the socket, or 64 KiB held)──▶ one write
//! ```

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::collections::VecDeque;
use std::sync::Arc;

use futures::{FutureExt, SinkExt, StreamExt};
use pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::PgWireError;
use pgwire::messages::response::NotificationResponse;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::panic::AssertUnwindSafe;
use tokio::sync::broadcast::error::RecvError;

use crate::engine::Session;
use crate::engine::events::Notification;
use pgwire::tokio::server::{
    PgWireMessageServerCodec, negotiate_tls, process_error, process_message,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

/// A client that has not finished startup within this is dropped.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Replies are written out once this many bytes wait.
const HIGH_WATER: usize = 64 * 1024;

/// A socket that holds replies back until the connection reads again.
pub struct Batched<T> {
    inner: T,
    out: Vec<u8>,
    /// How much of `out` the socket took so far.
    sent: usize,
}

impl<T: AsyncWrite + Unpin> Batched<T> {
    fn new(inner: T) -> Batched<T> {
        Batched {
            inner,
            out: Vec::new(),
            sent: 0,
        }
    }

    /// Write out everything held, and flush the socket.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.out[self.sent..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.out.clear();
        self.sent = 0;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Batched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // The loop waits for the client: send what it is waiting for. A
        // client that does not read yet still gets read from (the write
        // wakes this task when the socket takes more).
        if !this.out.is_empty()
            && let Poll::Ready(Err(e)) = this.poll_drain(cx)
        {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Batched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() >= HIGH_WATER {
            match this.poll_drain(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // Hold at most twice the mark while the client reads.
                Poll::Pending if this.out.len() >= 2 * HIGH_WATER => return Poll::Pending,
                Poll::Pending => {}
            }
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.out.len() < HIGH_WATER {
            return Poll::Ready(Ok(()));
        }
        this.poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// What a connection delivers besides replies: the notifications of the
/// channels its session LISTENs on.
pub struct Events {
    pub rx: tokio::sync::broadcast::Receiver<Notification>,
    pub session: Arc<tokio::sync::Mutex<Session>>,
    /// The server is at its connection limit: the client is told so
    /// after its startup message (53300), as PostgreSQL does.
    pub refuse: bool,
}

const TERMINATED: &str = "terminating connection due to administrator command";

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serve one client connection to its end.
pub async fn process<H>(
    tcp: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: H,
    events: Events,
) -> io::Result<()>
where
    H: PgWireServerHandlers,
{
    crate::metrics::connection_opened();
    let result = serve_connection(tcp, tls, handlers, events).await;
    crate::metrics::connection_closed();
    result
}

async fn serve_connection<H>(
    tcp: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: H,
    mut events: Events,
) -> io::Result<()>
where
    H: PgWireServerHandlers,
{
    let client = tcp.peer_addr().ok();
    let peer = client.map(|a| a.ip());
    let startup_deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_deadline);
    let negotiated = tokio::select! {
        _ = &mut startup_deadline => return Ok(()),
        s = negotiate_tls(tcp, tls) => s?,
    };
    // A direct TLS handshake without TLS configured: nothing to serve.
    let Some(socket) = negotiated else {
        return Ok(());
    };
    let state = socket.state();
    let parts = socket.into_parts();
    let mut rebuilt = FramedParts::new(Batched::new(parts.io), parts.codec);
    rebuilt.read_buf = parts.read_buf;
    rebuilt.write_buf = parts.write_buf;
    let mut socket: Framed<_, PgWireMessageServerCodec<_>> = Framed::from_parts(rebuilt);
    socket.set_state(state);

    let startup = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let errors = handlers.error_handler();
    if events.refuse {
        // Read the startup message first: a client expects its answer.
        let _ = tokio::time::timeout(STARTUP_TIMEOUT, next_message(&mut socket)).await;
        fatal(&mut socket, "53300", "sorry, too many clients already").await?;
        SinkExt::<PgWireBackendMessage>::close(&mut socket)
            .await
            .ok();
        return Ok(());
    }
    let listening = events.session.lock().await.listening();
    let mut pid_known = false;
    // In pg_stat_activity from login to the end; with the task that
    // carries pg_cancel_backend to the statement in progress.
    let mut registered: Option<(crate::engine::activity::Registered, AbortOnDrop)> = None;
    let mut pending: VecDeque<Notification> = VecDeque::new();
    let mut events_open = true;
    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let msg = if starting {
            tokio::select! {
                _ = &mut startup_deadline => None,
                m = next_message(&mut socket) => m,
            }
        } else {
            if !pid_known {
                let (pid, _) = socket.pid_and_secret_key();
                let meta = |key: &str| socket.metadata().get(key).cloned().unwrap_or_default();
                let (user, app) = (
                    meta(pgwire::api::METADATA_USER),
                    meta(pgwire::api::METADATA_APPLICATION_NAME),
                );
                let mut session = events.session.lock().await;
                session.set_pid(pid);
                let reg = session
                    .engine()
                    .activity()
                    .register(pid, &user, &app, client);
                session.set_backend(reg.backend.clone());
                drop(session);
                let handle = socket
                    .session_extensions()
                    .get::<Arc<pgwire::api::ConnectionHandle>>();
                let backend = reg.backend.clone();
                let forward = tokio::spawn(async move {
                    loop {
                        backend.cancel.notified().await;
                        if let Some(h) = &handle
                            && backend.take_cancel()
                        {
                            h.cancel().await;
                        }
                    }
                });
                registered = Some((reg, AbortOnDrop(forward)));
                pid_known = true;
                super::auth::login_succeeded(peer);
            }
            // Idle in a transaction block: the connection may wait so long.
            let idle_limit = match socket.state() {
                PgWireConnectionState::ReadyForQuery => events.session.lock().await.idle_limit(),
                _ => None,
            };
            let idle_deadline = tokio::time::sleep(idle_limit.unwrap_or(Duration::ZERO));
            tokio::pin!(idle_deadline);
            loop {
                // Delivered while the connection is idle, as PostgreSQL
                // does; held through a query or COPY in progress.
                if matches!(socket.state(), PgWireConnectionState::ReadyForQuery) {
                    while let Some(n) = pending.pop_front() {
                        socket
                            .send(PgWireBackendMessage::NotificationResponse(
                                NotificationResponse::new(n.pid, n.channel, n.payload),
                            ))
                            .await?;
                    }
                }
                let terminate = async {
                    match &registered {
                        Some((r, _)) => r.backend.terminate.notified().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    m = next_message(&mut socket) => break m,
                    _ = terminate => {
                        fatal(&mut socket, "57P01", TERMINATED).await?;
                        break None;
                    }
                    _ = &mut idle_deadline, if idle_limit.is_some() => {
                        // As PostgreSQL: the transaction is rolled back
                        // (its session goes) and the client told why.
                        fatal(
                            &mut socket,
                            "25P03",
                            "terminating connection due to idle-in-transaction timeout",
                        )
                        .await?;
                        break None;
                    }
                    n = events.rx.recv(), if events_open => match n {
                        Ok(n) if listening.lock().expect("listen set").contains(&n.channel) => {
                            pending.push_back(n);
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(missed)) => {
                            tracing::warn!("a listening connection fell behind by {missed} notifications");
                        }
                        Err(RecvError::Closed) => events_open = false,
                    },
                }
            }
        };
        let msg = match msg {
            Some(Ok(Ok(msg))) => msg,
            Some(Err(Malformed)) => {
                // As PostgreSQL: a protocol violation ends the connection.
                let _ = fatal(
                    &mut socket,
                    "08P01",
                    "invalid frontend message: malformed body or length",
                )
                .await;
                break;
            }
            _ => break,
        };
        // Terminate: the client waits for the connection to close.
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let wait_for_sync = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let processed = AssertUnwindSafe(process_message(
            msg,
            &mut socket,
            startup.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        ))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            // A bug, not the client's fault: the statement fails, the
            // connection and the server go on.
            Err(PgWireError::UserError(Box::new(
                pgwire::error::ErrorInfo::new(
                    "ERROR".into(),
                    "XX000".into(),
                    "internal error: the statement failed unexpectedly (the server log has the \
                     details)"
                        .into(),
                ),
            )))
        });
        if let Err(mut e) = processed {
            use pgwire::api::ErrorHandler as _;
            // Every error is a UserError from here on.
            errors.on_error(&socket, &mut e);
            if starting && matches!(&e, PgWireError::UserError(info) if info.code == "28P01") {
                tokio::time::sleep(super::auth::failed_login(peer)).await;
            }
            let fatal = matches!(&e, PgWireError::UserError(info) if info.severity == "FATAL");
            process_error(&mut socket, e, wait_for_sync).await?;
            if fatal {
                break;
            }
            if !starting {
                // An error pgwire met (a Bind, a row stream) aborts the
                // block as one the session met.
                events.session.lock().await.mark_failed();
            }
        }
        // The session's transaction state is what the next ReadyForQuery
        // reports (ROLLBACK TO SAVEPOINT leaves an aborted block).
        if !starting && !matches!(socket.state(), PgWireConnectionState::CopyInProgress(_)) {
            let txn = events.session.lock().await.txn_state();
            socket.set_transaction_status(super::txn_status::wire_status(txn));
        }
        // pg_terminate_backend during a statement: it was canceled, now
        // the connection ends.
        if registered
            .as_ref()
            .is_some_and(|(r, _)| r.backend.terminating())
        {
            fatal(&mut socket, "57P01", TERMINATED).await?;
            break;
        }
    }
    // Whatever is still held goes out before the socket closes.
    SinkExt::<PgWireBackendMessage>::close(&mut socket)
        .await
        .ok();
    // Its temporary tables go with it.
    events.session.lock().await.end().await;
    Ok(())
}

/// Tell the client why its connection ends (FATAL `code`).
async fn fatal<S>(socket: &mut S, code: &str, message: &str) -> io::Result<()>
where
    S: futures::Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    let info = pgwire::error::ErrorInfo::new("FATAL".into(), code.into(), message.into());
    socket
        .send(PgWireBackendMessage::ErrorResponse(info.into()))
        .await
}

/// A frontend message pgwire could not decode without panicking.
struct Malformed;

/// The next message from the client. pgwire's decoder trusts the lengths
/// inside a message body and panics on a short one; that is the client's
/// malformed message, answered with 08P01, not a crash of the task.
async fn next_message<S>(socket: &mut S) -> Option<Result<<S as futures::Stream>::Item, Malformed>>
where
    S: futures::Stream + Unpin,
{
    match AssertUnwindSafe(socket.next()).catch_unwind().await {
        Ok(Some(m)) => Some(Ok(m)),
        Ok(None) => None,
        Err(_) => Some(Err(Malformed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn replies_wait_for_the_next_read_and_go_out_together() {
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let mut s = Batched::new(server);
        s.write_all(b"one").await.unwrap();
        s.flush().await.unwrap();
        s.write_all(b"two").await.unwrap();
        s.flush().await.unwrap();
        // Nothing sent yet: the client sees it when the server reads.
        let mut got = [0u8; 6];
        assert!(
            tokio::time::timeout(Duration::from_millis(50), client.read_exact(&mut got))
                .await
                .is_err()
        );
        client.write_all(b"q").await.unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"onetwo");
    }

    #[tokio::test]
    async fn a_large_reply_goes_out_as_it_grows_and_shutdown_sends_the_rest() {
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let mut s = Batched::new(server);
        let big = vec![7u8; HIGH_WATER + 10];
        s.write_all(&big).await.unwrap();
        s.flush().await.unwrap();
        let mut got = vec![0u8; big.len()];
        client.read_exact(&mut got).await.unwrap();
        s.write_all(b"end").await.unwrap();
        s.shutdown().await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"end");
    }
}
