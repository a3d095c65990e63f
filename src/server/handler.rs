//! pgwire handlers for one connection.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use futures::future::BoxFuture;
use futures::{Sink, SinkExt, StreamExt, stream};
use pgwire::api::auth::StartupHandler;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, METADATA_DATABASE,
    PgWireServerHandlers, Type,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::NoticeResponse;
use pgwire::types::format::FormatOptions;
use tokio::sync::Mutex;

use super::auth::{ITERATIONS, UserAuthSource, Users};
use super::copy::{CopyReceiver, CopySlot, copy_in_response, send_copy_out};
use super::sqlstate::{error_info, to_pgwire};
use super::txn_status::SessionStatus;
use crate::catalog::DATABASE;
use crate::engine::{Output, Prepared, Session};
use crate::error::{Error, ErrorKind, ResultFuture};
use crate::frontend::Stmt;
use pgwire::api::auth::DefaultServerParameterProvider;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;

/// Everything pgwire needs for one connection; the session is its own.
pub struct Connection {
    session: Arc<Mutex<Session>>,
    parser: Arc<Parser>,
    manager: Arc<ConnectionManager>,
    copy: CopySlot,
    /// Who may connect; `None` is a loopback-only server without passwords.
    users: Option<Arc<Users>>,
    /// The server has TLS: a connection that did not negotiate it is refused.
    tls_required: bool,
}

impl Connection {
    /// This connection's session; locked while a statement runs.
    pub fn session(&self) -> Arc<Mutex<Session>> {
        self.session.clone()
    }

    pub fn new(
        session: Session,
        manager: Arc<ConnectionManager>,
        users: Option<Arc<Users>>,
        tls_required: bool,
    ) -> Self {
        let session = Arc::new(Mutex::new(session));
        Connection {
            parser: Arc::new(Parser {
                session: session.clone(),
            }),
            session,
            manager,
            copy: CopySlot::default(),
            users,
            tls_required,
        }
    }

    fn handler(&self) -> Arc<Handler> {
        Arc::new(Handler {
            session: self.session.clone(),
            parser: self.parser.clone(),
            copy: self.copy.clone(),
            users: self.users.clone(),
        })
    }
}

pub struct Startup {
    manager: Arc<ConnectionManager>,
}

/// The startup of a connection: open (loopback only) or SCRAM-SHA-256,
/// over TLS when the server has it.
pub struct Front {
    tls_required: bool,
    auth: Auth,
}

enum Auth {
    Open(Startup),
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
}

#[async_trait]
impl StartupHandler for Front {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.tls_required
            && !client.is_secure()
            && matches!(message, pgwire::messages::PgWireFrontendMessage::Startup(_))
        {
            // Never fall back to plaintext: a client that did not ask for
            // TLS is told so before it can send a password.
            return Err(PgWireError::UserError(Box::new(
                pgwire::error::ErrorInfo::new(
                    "FATAL".into(),
                    "28000".into(),
                    "this server accepts TLS connections only (use sslmode=require)".into(),
                ),
            )));
        }
        match &self.auth {
            Auth::Open(s) => s.on_startup(client, message).await,
            Auth::Scram(s) => s.on_startup(client, message).await,
        }
    }
}

/// Process ids for connections, unique on this server whatever the login
/// (a generator per SCRAM handler gave every connection the same one).
static PIDS: std::sync::LazyLock<Arc<pgwire::api::RandomPidSecretKeyGenerator>> =
    std::sync::LazyLock::new(Default::default);

#[async_trait]
impl NoopStartupHandler for Startup {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.manager.clone())
    }

    fn pid_secret_key_generator(&self) -> &dyn pgwire::api::PidSecretKeyGenerator {
        PIDS.as_ref()
    }

    async fn post_startup<C>(
        &self,
        client: &mut C,
        _message: pgwire::messages::PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let db = client.metadata().get(METADATA_DATABASE).cloned();
        if let Some(db) = db
            && db != DATABASE
            && db != "postgres"
        {
            return Err(PgWireError::UserError(Box::new(
                pgwire::error::ErrorInfo::new(
                    "FATAL".into(),
                    "3D000".into(),
                    format!("database \"{db}\" does not exist"),
                ),
            )));
        }
        Ok(())
    }
}

struct QuietErrors;

impl ErrorHandler for QuietErrors {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        tracing::debug!("sending error: {error}");
        // pgwire's own errors may quote what the client sent.
        let taken = std::mem::replace(error, PgWireError::InvalidStartupMessage);
        let mut info = pgwire::error::ErrorInfo::from(taken);
        super::sqlstate::printable(&mut info);
        *error = PgWireError::UserError(Box::new(info));
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handler()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.handler()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        Arc::new(CopyReceiver {
            slot: self.copy.clone(),
            session: self.session.clone(),
        })
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        let auth = match &self.users {
            None => Auth::Open(Startup {
                manager: self.manager.clone(),
            }),
            Some(users) => {
                let mut scram = ScramAuth::new(Arc::new(UserAuthSource {
                    users: users.clone(),
                }));
                scram.set_iterations(ITERATIONS);
                Auth::Scram(
                    SASLAuthStartupHandler::new(
                        Arc::new(DefaultServerParameterProvider::default()),
                    )
                    .with_scram(scram)
                    .with_pid_secret_key_generator(PIDS.clone())
                    .with_connection_manager(self.manager.clone()),
                )
            }
        };
        Arc::new(Front {
            tls_required: self.tls_required,
            auth,
        })
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::new(Cancel {
            manager: self.manager.clone(),
            session: self.session.clone(),
        })
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(QuietErrors)
    }
}

/// A CancelRequest: pgwire cancels a statement still being planned; the
/// backend, a statement whose rows are going out.
struct Cancel {
    manager: Arc<ConnectionManager>,
    session: Arc<Mutex<Session>>,
}

#[async_trait]
impl CancelHandler for Cancel {
    async fn on_cancel_request(&self, request: pgwire::messages::cancel::CancelRequest) {
        if !self.manager.cancel(request.pid, &request.secret_key).await {
            return;
        }
        let activity = self.session.lock().await.engine().activity().clone();
        if let Some(backend) = activity.get(request.pid) {
            backend.request_cancel();
        }
    }
}

pub struct Handler {
    session: Arc<Mutex<Session>>,
    parser: Arc<Parser>,
    copy: CopySlot,
    users: Option<Arc<Users>>,
}

impl Handler {
    /// Give the session the role of the user who authenticated, once.
    fn bind_user<C: ClientInfo>(&self, session: &mut Session, client: &C) -> PgWireResult<()> {
        let name = client
            .metadata()
            .get(pgwire::api::METADATA_USER)
            .cloned()
            .unwrap_or_default();
        session.set_login(&name);
        let Some(users) = &self.users else {
            return Ok(());
        };
        if session.has_user() {
            return Ok(());
        }
        match users.get(&name) {
            Some(u) => {
                session.set_user(crate::engine::access::Grant::new(
                    &name,
                    u.role,
                    u.server_files,
                ));
                Ok(())
            }
            None => Err(to_pgwire(&Error::new(
                ErrorKind::InsufficientPrivilege,
                format!("user \"{name}\" is not known"),
            ))),
        }
    }
}

use crate::interrupt::Interrupt;

async fn send_notices<C>(client: &mut C, notices: Vec<String>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for n in notices {
        let (severity, code) = if n.contains("cannot undo") {
            ("WARNING", "01000")
        } else {
            ("NOTICE", "00000")
        };
        let mut info = pgwire::error::ErrorInfo::new(severity.into(), code.into(), n);
        super::sqlstate::printable(&mut info);
        client
            .send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
                info,
            )))
            .await?;
    }
    Ok(())
}

/// The error a failed pgwire step reports to the client.
fn pg_error_info(e: PgWireError) -> pgwire::error::ErrorInfo {
    match e {
        PgWireError::UserError(info) => *info,
        other => pgwire::error::ErrorInfo::new("ERROR".into(), "XX000".into(), other.to_string()),
    }
}

/// Run a statement (`text` as the client sent it) under the session's
/// statement_timeout.
///
/// The future is boxed here, where proving it `Send` is cheap, rather than
/// in pgwire's generic handler methods that await it (see
/// [`crate::error::ResultFuture`]); so are those of [`respond`] and
/// [`prepare`].
fn run<'a>(
    session: &'a mut Session,
    stmt: Stmt,
    params: &'a ParamValues,
    text: &'a str,
) -> ResultFuture<'a, Output> {
    Box::pin(async move {
        let started = std::time::Instant::now();
        session.activity_started(text);
        let _idle = Finished(session.backend_handle());
        let result = interrupt_of(session)
            .run(session.execute(stmt, params))
            .await;
        session.activity_finished();
        crate::metrics::query_finished(result.is_ok(), started.elapsed());
        result
    })
}

/// Prepare `sql` (Parse) under the session's statement_timeout.
fn prepare<'a>(
    session: &'a mut Session,
    sql: &'a str,
    declared: &'a [Option<&'a str>],
) -> ResultFuture<'a, Option<Prepared>> {
    Box::pin(async move {
        session.activity_started(sql);
        let _idle = Finished(session.backend_handle());
        let prepared = interrupt_of(session)
            .run(session.prepare(sql, declared))
            .await;
        session.activity_finished();
        prepared
    })
}

/// What ends the statement `session` has just begun early: its cancels,
/// and statement_timeout from now.
fn interrupt_of(session: &Session) -> Interrupt {
    let deadline = session
        .statement_timeout()
        .map(|l| tokio::time::Instant::now() + l);
    let backend = session.backend_handle();
    Interrupt::new(
        deadline,
        backend.map(|b| (b.cancel_requests(), b.statement())),
    )
}

/// Marks the connection no longer active when a statement is dropped
/// unfinished (canceled); one that returns says its state itself.
struct Finished(Option<Arc<crate::engine::activity::Backend>>);

impl Drop for Finished {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.interrupted();
        }
    }
}

/// The rows of statement `.1` of a backend are going out; sent (or
/// dropped) when this is dropped.
struct Sending(Arc<crate::engine::activity::Backend>, u64);

impl Drop for Sending {
    fn drop(&mut self) {
        self.0.rows_sent(self.1);
    }
}

/// Encode a statement's output as a pgwire response.
fn respond<'a>(
    output: Output,
    format: &'a Format,
    params: &'a [Option<Type>],
    options: Arc<FormatOptions>,
    session: &'a Session,
    copy: &'a CopySlot,
) -> BoxFuture<'a, PgWireResult<Response>> {
    Box::pin(respond_now(output, format, params, options, session, copy))
}

async fn respond_now(
    output: Output,
    format: &Format,
    params: &[Option<Type>],
    options: Arc<FormatOptions>,
    session: &Session,
    copy: &CopySlot,
) -> PgWireResult<Response> {
    let timeout = session.statement_timeout();
    let failed = session.stream_failure_flag();
    Ok(match output {
        Output::Rows {
            schema,
            stream,
            tag,
        } => {
            let fields = Arc::new(super::wire_types::fields(
                &schema,
                format,
                Some(options),
                params,
            )?);
            let rows = encode_rows(
                stream,
                fields.clone(),
                timeout,
                failed,
                session.backend_handle(),
            );
            let mut resp = QueryResponse::new(fields, rows);
            resp.set_command_tag(tag);
            Response::Query(resp)
        }
        Output::Command { tag, rows } => {
            let mut t = Tag::new(&tag);
            if tag == "INSERT" {
                t = t.with_oid(0);
            }
            if let Some(n) = rows {
                t = t.with_rows(n);
            }
            Response::Execution(t)
        }
        Output::TransactionStart => Response::TransactionStart(Tag::new("BEGIN")),
        Output::TransactionEnd(tag) => Response::TransactionEnd(Tag::new(tag)),
        Output::CopyIn(mut c) => {
            // The data that follows is part of the statement.
            c.deadline = timeout.map(|t| tokio::time::Instant::now() + t);
            copy_in_response(c, copy).await
        }
        // Sent by the caller, which holds the connection.
        Output::CopyOut(_) => {
            return Err(to_pgwire(&Error::internal("COPY TO reached respond")));
        }
    })
}

/// Stream record batches as data rows, mapping errors to SQLSTATEs and
/// enforcing the statement timeout while rows are produced. A cancel
/// (CancelRequest, `pg_cancel_backend`) of `backend` stops the stream, and
/// with it the work that produces the rows.
fn encode_rows(
    stream: SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
    timeout: Option<Duration>,
    failed: Arc<std::sync::atomic::AtomicBool>,
    backend: Option<Arc<crate::engine::activity::Backend>>,
) -> impl futures::Stream<Item = PgWireResult<pgwire::messages::data::DataRow>> + Send + 'static {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let sending = backend.map(|b| {
        let n = b.rows_started();
        Arc::new(Sending(b, n))
    });
    let interrupt = Interrupt::new(
        deadline,
        sending.as_ref().map(|s| (s.0.cancel_requests(), s.1)),
    );
    let batches = stream::unfold(Some(stream), move |state| {
        // The rows are going out while the stream lives.
        let _sending = &sending;
        let failed = failed.clone();
        let interrupt = interrupt.clone();
        async move {
            let mut s = state?;
            let fail = |e: Error| {
                failed.store(true, std::sync::atomic::Ordering::SeqCst);
                to_pgwire(&e)
            };
            match interrupt.run(async { Ok(s.next().await) }).await {
                Err(e) => Some((Err(fail(e)), None)),
                Ok(None) => None,
                Ok(Some(Ok(b))) => Some((Ok(b), Some(s))),
                Ok(Some(Err(e))) => Some((Err(fail(Error::from(e))), None)),
            }
        }
    });
    batches
        .map(move |b: PgWireResult<RecordBatch>| {
            let rows: Box<dyn Iterator<Item = PgWireResult<_>> + Send + Sync> = match b {
                Ok(b) => {
                    let b = super::text::pg_text(b, &fields);
                    arrow_pg::datatypes::encode_recordbatch(fields.clone(), b)
                }
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
            stream::iter(rows)
        })
        .flatten()
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    /// pgwire's cycle, with ReadyForQuery reporting the session's state.
    async fn on_query<C>(
        &self,
        client: &mut C,
        query: pgwire::messages::simplequery::Query,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut client = SessionStatus {
            client,
            session: &self.session,
        };
        self._on_query(&mut client, query).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session.lock().await;
        self.bind_user(&mut session, client)?;
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let stmts = match session.parse(query) {
            Ok(s) => s,
            Err(e) => {
                session.mark_failed();
                return Ok(vec![Response::Error(Box::new(error_info(&e)))]);
            }
        };
        let mut out = Vec::with_capacity(stmts.len());
        let none = ParamValues::List(vec![]);
        for stmt in stmts {
            let forget = forgotten_statements(&stmt, &session);
            let result = run(&mut session, stmt, &none, query).await;
            send_notices(client, session.take_notices()).await?;
            if result.is_ok() {
                for name in forget {
                    client.portal_store().rm_statement(&name);
                }
            }
            match result {
                Ok(Output::CopyOut(c)) => match send_copy_out(client, c, options.clone()).await {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        session.mark_failed();
                        out.push(Response::Error(Box::new(pg_error_info(e))));
                        break;
                    }
                },
                Ok(output) => {
                    let copy_in = matches!(output, Output::CopyIn(_));
                    out.push(
                        respond(
                            output,
                            &Format::UnifiedText,
                            &[],
                            options.clone(),
                            &session,
                            &self.copy,
                        )
                        .await?,
                    );
                    if copy_in {
                        // The data follows this statement; later ones in
                        // the same query string are not run (as in PostgreSQL).
                        break;
                    }
                }
                Err(e) => {
                    out.push(Response::Error(Box::new(error_info(&e))));
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// The prepared statements `stmt` drops (DEALLOCATE, DISCARD ALL), which
/// the connection forgets too when it succeeds.
fn forgotten_statements(stmt: &crate::frontend::Stmt, session: &Session) -> Vec<String> {
    use datafusion::sql::sqlparser::ast::Statement;
    let crate::frontend::Stmt::Sql(s) = stmt else {
        return vec![];
    };
    match s.as_ref() {
        Statement::Deallocate { name, .. }
            if !(name.value.eq_ignore_ascii_case("all") && name.quote_style.is_none()) =>
        {
            vec![crate::frontend::names::normalize_ident(name)]
        }
        Statement::Deallocate { .. } | Statement::Discard { .. } => session.prepared.names(),
        _ => vec![],
    }
}

/// The name of the cursor `stmt` declares.
fn declared_cursor(stmt: &crate::frontend::Stmt) -> Option<String> {
    use datafusion::sql::sqlparser::ast::Statement;
    match stmt {
        crate::frontend::Stmt::Sql(s) => match s.as_ref() {
            Statement::Declare { stmts } => stmts
                .first()
                .and_then(|d| d.names.first())
                .map(crate::frontend::names::normalize_ident),
            _ => None,
        },
        _ => None,
    }
}

/// The protocol portal of cursor `name`: a `FETCH ALL` from it, described
/// by the cursor's columns.
fn cursor_portal(session: &Session, name: &str) -> Option<Portal<PreparedStatement>> {
    let schema = session.cursors.schema(name)?;
    let sql = format!("FETCH ALL FROM \"{}\"", name.replace('"', "\"\""));
    let stmt = session.parse(&sql).ok()?.into_iter().next()?;
    let prepared = Prepared {
        stmt,
        param_types: vec![],
        result_schema: Some(schema),
    };
    let statement = pgwire::api::stmt::StoredStatement::new(
        name.to_string(),
        PreparedStatement(Some(prepared), Arc::from(sql.as_str()), Arc::from(vec![])),
        vec![],
    );
    Some(Portal::new_cursor(name.to_string(), Arc::new(statement)))
}

/// A parsed statement for the extended protocol.
#[derive(Debug, Clone)]
pub struct PreparedStatement(Option<Prepared>, Arc<str>, Arc<[Option<Type>]>);

pub struct Parser {
    session: Arc<Mutex<Session>>,
}

fn wire_type(t: &Option<DataType>) -> Type {
    match t {
        Some(dt) => arrow_pg::datatypes::into_pg_type(dt).unwrap_or(Type::TEXT),
        None => Type::TEXT,
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = PreparedStatement;

    /// Parse plans the statement, which may read a remote file's schema
    /// (`read_csv('https://…')`): like any statement, it is active in
    /// `pg_stat_activity`, a cancel stops it, and statement_timeout bounds it.
    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let declared: Vec<Option<&str>> =
            types.iter().map(|t| t.as_ref().map(|t| t.name())).collect();
        let mut session = self.session.lock().await;
        match prepare(&mut session, sql, &declared).await {
            Ok(p) => Ok(p.map(|p| PreparedStatement(Some(p), Arc::from(sql), Arc::from(types)))),
            Err(e) => Err(to_pgwire(&e)),
        }
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .0
            .as_ref()
            .map(|p| p.param_types.iter().map(wire_type).collect())
            .unwrap_or_default())
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match stmt.0.as_ref().and_then(|p| p.result_schema.clone()) {
            Some(schema) => super::wire_types::fields(
                &schema,
                column_format.unwrap_or(&Format::UnifiedText),
                None,
                &stmt.2,
            ),
            None => Ok(vec![]),
        }
    }
}

/// A statement's Describe reply: NoData whenever it has no result columns.
struct StatementDescription(pgwire::api::results::DescribeStatementResponse);

impl pgwire::api::results::DescribeResponse for StatementDescription {
    fn parameters(&self) -> Option<&[Type]> {
        Some(&self.0.parameters)
    }
    fn fields(&self) -> &[FieldInfo] {
        &self.0.fields
    }
    fn no_data() -> Self {
        StatementDescription(pgwire::api::results::DescribeStatementResponse::no_data())
    }
    fn is_no_data(&self) -> bool {
        self.0.fields.is_empty()
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handler {
    type Statement = PreparedStatement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// pgwire's Parse, and a named statement listed in
    /// `pg_prepared_statements`.
    async fn on_parse<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Parse,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.clone().unwrap_or_default();
        let parser = self.query_parser();
        match pgwire::api::stmt::StoredStatement::parse(client, &message, parser).await? {
            Some(stmt) => {
                if !name.is_empty() {
                    let types = match &stmt.statement.0 {
                        Some(p) => p
                            .param_types
                            .iter()
                            .enumerate()
                            .map(|(i, t)| {
                                let declared = stmt.parameter_types.get(i).cloned().flatten();
                                declared.unwrap_or_else(|| wire_type(t)).name().to_string()
                            })
                            .collect(),
                        None => vec![],
                    };
                    let session = self.session.lock().await;
                    session.prepared.add(&name, &stmt.statement.1, types);
                }
                client.portal_store().put_statement(Arc::new(stmt));
            }
            None => client.portal_store().put_empty_statement(&name),
        }
        client
            .send(PgWireBackendMessage::ParseComplete(
                pgwire::messages::extendedquery::ParseComplete::new(),
            ))
            .await?;
        Ok(())
    }

    /// pgwire's Describe, except that a statement with parameters and no
    /// result columns (`INSERT ... VALUES ($1)`) answers NoData after its
    /// ParameterDescription, as PostgreSQL does; pgwire sends an empty
    /// RowDescription, which pgjdbc takes for a query and then counts a
    /// batch's inserts as 0 rows.
    async fn on_describe<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Describe,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::store::Entry;
        if message.target_type == pgwire::messages::extendedquery::TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or("");
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                let described = self.do_describe_statement(client, &stmt).await?;
                let reply = StatementDescription(described);
                return pgwire::api::query::send_describe_response(client, &reply).await;
            }
        }
        self._on_describe(client, message).await
    }

    /// pgwire's Close; a closed statement leaves `pg_prepared_statements`.
    async fn on_close<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Close,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or("");
        match message.target_type {
            pgwire::messages::extendedquery::TARGET_TYPE_BYTE_STATEMENT => {
                client.portal_store().rm_statement(name);
                self.session.lock().await.prepared.remove(name);
            }
            pgwire::messages::extendedquery::TARGET_TYPE_BYTE_PORTAL => {
                client.portal_store().rm_portal(name);
            }
            _ => {}
        }
        client
            .send(PgWireBackendMessage::CloseComplete(
                pgwire::messages::extendedquery::CloseComplete::new(),
            ))
            .await?;
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(prepared) = portal.statement.statement.0.clone() else {
            return Ok(Response::EmptyQuery);
        };
        let text = portal.statement.statement.1.clone();
        let server_types: Vec<Type> = prepared.param_types.iter().map(wire_type).collect();
        let as_text = super::wire_types::text_parameters(portal, &server_types);
        let typed_portal = as_text.as_ref().unwrap_or(portal);
        let server_refs: Vec<Option<&Type>> = server_types.iter().map(Some).collect();
        let inferred: Vec<Option<&DataType>> =
            prepared.param_types.iter().map(|t| t.as_ref()).collect();
        let params = arrow_pg::datatypes::df::deserialize_parameters_with_server_types(
            typed_portal,
            &inferred,
            &server_refs,
        )?;
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let mut session = self.session.lock().await;
        self.bind_user(&mut session, client)?;
        let declared = declared_cursor(&prepared.stmt);
        let forget = forgotten_statements(&prepared.stmt, &session);
        let result = run(&mut session, prepared.stmt, &params, &text).await;
        send_notices(client, session.take_notices()).await?;
        if result.is_ok() {
            for name in forget {
                client.portal_store().rm_statement(&name);
            }
        }
        if result.is_ok()
            && let Some(name) = declared
        {
            // The cursor is a portal too: Describe reports its columns,
            // Execute fetches its rows.
            if let Some(portal) = cursor_portal(&session, &name) {
                client.portal_store().put_portal(Arc::new(portal));
            }
        }
        match result {
            Ok(Output::CopyOut(c)) => {
                let r = send_copy_out(client, c, options).await;
                if r.is_err() {
                    session.mark_failed();
                }
                r
            }
            Ok(output) => {
                respond(
                    output,
                    &portal.result_column_format,
                    &portal.statement.parameter_types,
                    options,
                    &session,
                    &self.copy,
                )
                .await
            }
            Err(e) => Err(to_pgwire(&e)),
        }
    }
}
