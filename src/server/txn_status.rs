//! The transaction status a connection reports (ReadyForQuery) is the
//! session's: pgwire tracks its own from the kinds of responses, and it has
//! no way back from an aborted block to "in a block", which ROLLBACK TO
//! SAVEPOINT takes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Sink;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::ProtocolVersion;
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::SecretKey;
use pgwire::tokio::tokio_rustls::rustls::pki_types::CertificateDer;
use tokio::sync::Mutex;

use crate::engine::{Session, TxnState};

/// The wire's name for a transaction block state.
pub fn wire_status(txn: TxnState) -> TransactionStatus {
    match txn {
        TxnState::Idle => TransactionStatus::Idle,
        TxnState::InBlock => TransactionStatus::Transaction,
        TxnState::Failed => TransactionStatus::Error,
    }
}

/// A client whose ReadyForQuery messages carry the session's state.
pub struct SessionStatus<'a, C> {
    pub client: &'a mut C,
    pub session: &'a Mutex<Session>,
}

impl<C> SessionStatus<'_, C> {
    /// The session's state; pgwire's when a statement still holds the
    /// session (it never does once a simple query's statements ran).
    fn status(&self, pgwire: TransactionStatus) -> TransactionStatus {
        match self.session.try_lock() {
            Ok(s) => wire_status(s.txn_state()),
            Err(_) => pgwire,
        }
    }
}

impl<C: Sink<PgWireBackendMessage> + Unpin> Sink<PgWireBackendMessage> for SessionStatus<'_, C> {
    type Error = C::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Pin::new(&mut *self.client).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: PgWireBackendMessage) -> Result<(), C::Error> {
        let item = match item {
            PgWireBackendMessage::ReadyForQuery(r) => {
                PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(self.status(r.status)))
            }
            other => other,
        };
        Pin::new(&mut *self.client).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Pin::new(&mut *self.client).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Pin::new(&mut *self.client).poll_close(cx)
    }
}

impl<C: ClientPortalStore> ClientPortalStore for SessionStatus<'_, C> {
    type PortalStore = C::PortalStore;

    fn portal_store(&self) -> &C::PortalStore {
        self.client.portal_store()
    }
}

impl<C: ClientInfo> ClientInfo for SessionStatus<'_, C> {
    fn socket_addr(&self) -> SocketAddr {
        self.client.socket_addr()
    }
    fn is_secure(&self) -> bool {
        self.client.is_secure()
    }
    fn protocol_version(&self) -> ProtocolVersion {
        self.client.protocol_version()
    }
    fn set_protocol_version(&mut self, version: ProtocolVersion) {
        self.client.set_protocol_version(version)
    }
    fn pid_and_secret_key(&self) -> (i32, SecretKey) {
        self.client.pid_and_secret_key()
    }
    fn set_pid_and_secret_key(&mut self, pid: i32, secret_key: SecretKey) {
        self.client.set_pid_and_secret_key(pid, secret_key)
    }
    fn state(&self) -> PgWireConnectionState {
        self.client.state()
    }
    fn set_state(&mut self, new_state: PgWireConnectionState) {
        self.client.set_state(new_state)
    }
    fn transaction_status(&self) -> TransactionStatus {
        self.client.transaction_status()
    }
    fn set_transaction_status(&mut self, new_status: TransactionStatus) {
        let status = self.status(new_status);
        self.client.set_transaction_status(status)
    }
    fn metadata(&self) -> &HashMap<String, String> {
        self.client.metadata()
    }
    fn metadata_mut(&mut self) -> &mut HashMap<String, String> {
        self.client.metadata_mut()
    }
    fn session_extensions(&self) -> &pgwire::api::SessionExtensions {
        self.client.session_extensions()
    }
    fn sni_server_name(&self) -> Option<&str> {
        self.client.sni_server_name()
    }
    fn client_certificates<'a>(&self) -> Option<&[CertificateDer<'a>]> {
        self.client.client_certificates()
    }
}
