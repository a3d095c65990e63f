//! COPY: rows in from the client or from files, rows out to the client.
//!
//! ```text
//!  COPY t FROM STDIN
//!   CopyData ─▶ CopyIn::feed ─▶ decoder ─▶ converter ─▶ channel (2 batches)
//!                                                          │
//!            write task: INSERT-like plan over the channel ◀┘ ─▶ one Delta commit
//! ```
//!
//! The write runs while data still arrives, so memory holds a few batches,
//! not the load. It commits only after the end of the data was seen: a
//! client that disconnects, a CopyFail or a bad row leave the table as it
//! was (the files already written are referenced by no version).

use std::sync::{Arc, Mutex as SyncMutex};

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::sql::sqlparser::ast::Statement;
use deltalake::protocol::SaveMode;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::last_ident;
use super::{Output, Session};
use crate::error::{Error, ErrorKind, Result, ResultFuture};
use crate::frontend::copy::{CopyEndpoint, CopyFormat, CopyOptions, CopyRelation, CopyStmt};
use crate::frontend::names::quote_ident as ident;
use crate::ingest::binary::BinaryDecoder;
use crate::ingest::convert::Converter;
use crate::ingest::files::{FileKind, ReadOptions, file_table};
use crate::ingest::http::Credentials;
use crate::ingest::source::{Located, locate};
use crate::ingest::text::TextDecoder;
use crate::write::{
    AppTransaction, Append, Outcome, Target, WriteOptions, applied_version, write_plan,
};
use futures::StreamExt;

/// Rows per batch handed to the writer.
const BATCH_ROWS: usize = 16 * 1024;

enum Msg {
    Batch(RecordBatch),
    /// The input is complete; only now may the write commit.
    End,
}

/// The write side's input: batches as the connection decodes them. Ends
/// with an error unless [`Msg::End`] arrived, so an abandoned COPY fails
/// its write instead of committing part of the data.
#[derive(Debug)]
struct ChannelPartition {
    schema: SchemaRef,
    rx: SyncMutex<Option<mpsc::Receiver<Msg>>>,
}

impl PartitionStream for ChannelPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rx = self.rx.lock().expect("not poisoned").take();
        let stream = futures::stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(Msg::Batch(b)) => Some((Ok(b), Some(rx))),
                Some(Msg::End) => None,
                None => Some((
                    Err(DataFusionError::External(Box::new(Error::new(
                        ErrorKind::QueryCanceled,
                        "COPY was abandoned before the end of its data",
                    )))),
                    None,
                )),
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// Bytes of COPY data into batches of the target columns.
// One per COPY, so the size difference of the variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Decoder {
    Text(TextDecoder, Converter),
    Binary(BinaryDecoder),
}

impl Decoder {
    fn feed(&mut self, data: &[u8]) -> Result<Vec<RecordBatch>> {
        match self {
            Decoder::Text(d, c) => d.feed(data)?.into_iter().map(|r| c.convert(r)).collect(),
            Decoder::Binary(d) => d.feed(data),
        }
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        match self {
            Decoder::Text(d, c) => d.finish()?.into_iter().map(|r| c.convert(r)).collect(),
            Decoder::Binary(d) => d.finish(),
        }
    }

    /// Flush what is left of one file and start the next one.
    fn next_file(&mut self, label: String) -> Result<Vec<RecordBatch>> {
        let rest = self.finish()?;
        match self {
            Decoder::Text(d, c) => {
                c.set_label(label.clone());
                d.start_file(label);
            }
            Decoder::Binary(d) => d.start_file(label),
        }
        Ok(rest)
    }

    fn position(&self) -> String {
        match self {
            Decoder::Text(d, _) => d.position(),
            Decoder::Binary(d) => d.position(),
        }
    }

    fn skipped(&self) -> u64 {
        match self {
            Decoder::Text(_, c) => c.skipped,
            Decoder::Binary(_) => 0,
        }
    }
}

/// A COPY FROM in progress: fed with the bytes of the data, finished once.
pub struct CopyIn {
    decoder: Decoder,
    tx: Option<mpsc::Sender<Msg>>,
    writer: Option<JoinHandle<Result<Outcome>>>,
    /// The table's expectations, recorded once the write committed.
    run: Option<crate::write::Run>,
    /// 0 text, 1 binary: what CopyInResponse announces.
    pub wire_format: i8,
    pub columns: usize,
    /// When the statement's `statement_timeout` runs out: data arriving
    /// later fails the COPY (57014) and nothing is committed.
    pub deadline: Option<tokio::time::Instant>,
}

impl CopyIn {
    pub async fn start(session: &Session, stmt: &CopyStmt) -> Result<CopyIn> {
        CopyIn::start_recording(session, stmt, Vec::new()).await
    }

    /// Start a copy whose commit records `txns` (the files it loads).
    async fn start_recording(
        session: &Session,
        stmt: &CopyStmt,
        txns: Vec<AppTransaction>,
    ) -> Result<CopyIn> {
        let CopyRelation::Table { name, columns } = &stmt.relation else {
            return Err(Error::syntax("COPY (query) can only be used with TO"));
        };
        let o = &stmt.options;
        match o.format {
            CopyFormat::Text | CopyFormat::Csv | CopyFormat::Binary => {}
            CopyFormat::Json | CopyFormat::Parquet => {
                return Err(Error::new(
                    ErrorKind::FeatureNotSupported,
                    "COPY FROM STDIN takes FORMAT text, csv or binary; json and parquet are \
                     read from files",
                ));
            }
        }
        let wc = session.write_context();
        let (schema_name, table_name, def) = session.resolve_table(name)?;
        let target = Target::open(&wc, &schema_name, &table_name, def, None).await?;
        let targets = target.copy_columns(columns)?;
        let typed: Vec<(String, crate::types::PgType)> = targets
            .iter()
            .map(|n| (n.clone(), target.def.column(n).expect("checked").ty.clone()))
            .collect();
        let schema: SchemaRef = Arc::new(Schema::new(
            typed
                .iter()
                .map(|(n, t)| Field::new(n, t.arrow_type(), true))
                .collect::<Vec<_>>(),
        ));
        let label = target.name.clone();
        let decoder = if o.format == CopyFormat::Binary {
            let jsonb: Vec<bool> = typed.iter().map(|(_, t)| t.name == "jsonb").collect();
            Decoder::Binary(BinaryDecoder::new(
                schema.clone(),
                &jsonb,
                &label,
                BATCH_ROWS,
            )?)
        } else {
            Decoder::Text(
                TextDecoder::new(o, targets.clone(), &label, BATCH_ROWS)?,
                Converter::new(&label, typed, schema.clone(), o.skip_bad_rows),
            )
        };

        let (tx, rx) = mpsc::channel(2);
        let source = StreamingTable::try_new(
            schema.clone(),
            vec![Arc::new(ChannelPartition {
                schema: schema.clone(),
                rx: SyncMutex::new(Some(rx)),
            })],
        )?;
        let df = session.ctx.read_table(Arc::new(source))?;
        let (df, run) = Append::new(&wc, &target)
            .columns(targets.clone())
            .label(label.clone())
            .plan(df)
            .await?;
        let plan = df.into_unoptimized_plan();
        let writer = tokio::spawn(write_plan(
            session.ctx.state(),
            session.engine.lake().clone(),
            target.table,
            plan,
            SaveMode::Append,
            WriteOptions {
                txns,
                unique_columns: target.def.unique_columns(),
                ..Default::default()
            },
        ));
        Ok(CopyIn {
            decoder,
            tx: Some(tx),
            writer: Some(writer),
            run,
            wire_format: i8::from(o.format == CopyFormat::Binary),
            columns: targets.len(),
            deadline: None,
        })
    }

    /// `COPY t, line n`: where the data stands now.
    pub fn position(&self) -> String {
        self.decoder.position()
    }

    /// Decode `data` and pass the full batches on to the writer.
    pub async fn feed(&mut self, data: &[u8]) -> Result<()> {
        for batch in self.decoder.feed(data)? {
            self.send(batch).await?;
        }
        Ok(())
    }

    async fn send(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let tx = self.tx.as_ref().expect("not finished");
        if tx.send(Msg::Batch(batch)).await.is_err() {
            // The writer stopped early: its error says why.
            return Err(self
                .writer_result()
                .await
                .err()
                .unwrap_or_else(|| Error::internal("COPY writer stopped without an error")));
        }
        Ok(())
    }

    async fn writer_result(&mut self) -> Result<Outcome> {
        match self.writer.take() {
            Some(h) => h
                .await
                .map_err(|e| Error::internal(format!("COPY writer failed: {e}")))?,
            None => Err(Error::internal("COPY writer already finished")),
        }
    }

    /// Load `files` in order as one COPY.
    async fn feed_files(&mut self, table: &str, files: &[Located]) -> Result<()> {
        for f in files {
            // The previous file's last rows go out before this one starts.
            let label = format!("COPY {table}, file '{}'", f.name());
            for batch in self.decoder.next_file(label)? {
                self.send(batch).await?;
            }
            let mut bytes = f.open().await?;
            while let Some(chunk) = bytes.next().await {
                self.feed(&chunk?).await?;
            }
        }
        Ok(())
    }

    /// The data is complete: write what is left and commit. Returns the
    /// rows written and the rows skipped by `ON_ERROR ignore`. (Boxed: the
    /// wire's generic COPY handler awaits it, see [`ResultFuture`].)
    pub fn finish(mut self) -> ResultFuture<'static, (usize, u64)> {
        Box::pin(async move {
            for batch in self.decoder.finish()? {
                self.send(batch).await?;
            }
            let tx = self.tx.take().expect("not finished");
            // If the writer is gone this fails; its result below says why.
            let _ = tx.send(Msg::End).await;
            drop(tx);
            let outcome = self.writer_result().await?;
            if let Some(run) = self.run.take() {
                run.record(outcome.version).await;
            }
            let n = outcome.rows;
            Ok((n, self.decoder.skipped()))
        })
    }
}

/// `COPY ... TO STDOUT`: the rows to send, and how to format them.
pub struct CopyOut {
    pub options: CopyOptions,
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
}

async fn copy_out(session: &mut Session, stmt: CopyStmt) -> Result<Output> {
    let query = match stmt.relation {
        CopyRelation::Query(q) => Statement::Query(q),
        CopyRelation::Table { name, columns } => {
            let (schema, table, def) = session.resolve_table(&name)?;
            let target_cols = crate::write::copy_columns(&def, &table, &columns)?;
            let list: Vec<String> = target_cols.iter().map(|c| ident(c)).collect();
            let sql = format!(
                "SELECT {} FROM {}.{}",
                list.join(", "),
                ident(&schema),
                ident(&table)
            );
            let mut stmts = session.parse(&sql)?;
            match stmts.pop() {
                Some(crate::frontend::Stmt::Sql(s)) => *s,
                _ => return Err(Error::internal("COPY could not build its query")),
            }
        }
    };
    match session.query(query).await? {
        Output::Rows { schema, stream, .. } => Ok(Output::CopyOut(CopyOut {
            options: stmt.options,
            schema,
            stream,
        })),
        _ => Err(Error::internal("COPY query returned no rows")),
    }
}

/// How a table remembers that a COPY loaded a file: a Delta application
/// transaction with this id, committed with the rows.
fn loaded_file_id(file: &Located) -> String {
    format!("sluice.copy {}", file.name())
}

/// The files `path` selects; with `NEW_FILES_ONLY` only those the table
/// has not loaded before, and the transactions that record them.
async fn files_to_load(
    session: &Session,
    stmt: &CopyStmt,
    path: &str,
) -> Result<(Vec<Located>, Vec<AppTransaction>)> {
    let CopyRelation::Table { name, .. } = &stmt.relation else {
        return Err(Error::syntax("COPY (query) can only be used with TO"));
    };
    let state = session.ctx.state();
    let files = locate(&state, session.engine.lake(), path, &Credentials::ByUrl).await?;
    if !stmt.options.new_files_only {
        return Ok((files, Vec::new()));
    }
    let wc = session.write_context();
    let (schema_name, table_name, def) = session.resolve_table(name)?;
    let target = Target::open(&wc, &schema_name, &table_name, def, None).await?;
    let mut new = Vec::new();
    let mut txns = Vec::new();
    for f in files {
        let app_id = loaded_file_id(&f);
        if applied_version(&target.table, &app_id).await?.is_none() {
            txns.push(AppTransaction { app_id, version: 1 });
            new.push(f);
        }
    }
    Ok((new, txns))
}

/// `COPY t FROM 'path'`: text, CSV and binary files go through the same
/// decoder as COPY FROM STDIN; JSON and Parquet through the readers of
/// `read_json` / `read_parquet`. Either way all files are one commit.
/// With `NEW_FILES_ONLY` the commit also records the files it loaded, so
/// a second run loads none of them again (and two runs at once cannot
/// both commit them: their transactions conflict).
async fn copy_from_files(session: &mut Session, stmt: &CopyStmt, path: &str) -> Result<Output> {
    let CopyRelation::Table { name, columns } = &stmt.relation else {
        return Err(Error::syntax("COPY (query) can only be used with TO"));
    };
    let (files, txns) = files_to_load(session, stmt, path).await?;
    if files.is_empty() {
        // NEW_FILES_ONLY and nothing new: no commit at all.
        return Ok(Output::count("COPY", 0));
    }
    let kind = match stmt.options.format {
        CopyFormat::Json => FileKind::Json,
        CopyFormat::Parquet => FileKind::Parquet,
        _ => {
            let mut copy = CopyIn::start_recording(session, stmt, txns).await?;
            let table = last_ident(name);
            copy.feed_files(&table, &files).await?;
            let (n, skipped) = copy.finish().await?;
            if skipped > 0 {
                session.notice(skipped_notice(skipped));
            }
            return Ok(Output::count("COPY", n));
        }
    };
    let wc = session.write_context();
    let (schema_name, table_name, def) = session.resolve_table(name)?;
    let target = Target::open(&wc, &schema_name, &table_name, def, None).await?;
    let targets = target.copy_columns(columns)?;
    let state = session.ctx.state();
    let lake = session.engine.lake();
    let options = ReadOptions::default();
    let df = if stmt.options.new_files_only {
        // Only the new files, each read on its own, columns matched by name.
        let mut all: Option<datafusion::dataframe::DataFrame> = None;
        for f in &files {
            let one = file_table(&state, lake, &f.name(), kind, &options).await?;
            let one = session.ctx.read_table(one)?;
            all = Some(match all {
                None => one,
                Some(a) => a.union_by_name(one)?,
            });
        }
        all.expect("at least one file")
    } else {
        session
            .ctx
            .read_table(file_table(&state, lake, path, kind, &options).await?)?
    };
    // By name when the file has every target column, else by position.
    let file_cols: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let df = if targets.iter().all(|t| file_cols.contains(t)) {
        df.select_columns(&targets.iter().map(|s| s.as_str()).collect::<Vec<_>>())?
    } else if file_cols.len() == targets.len() {
        df
    } else {
        return Err(Error::new(
            ErrorKind::BadCopyFormat,
            format!(
                "the files at '{path}' have columns ({}) that match neither the names nor the \
                 number of the columns of \"{}\" ({})",
                file_cols.join(", "),
                target.name,
                targets.join(", ")
            ),
        ));
    };
    let outcome = Append::new(&wc, &target)
        .columns(targets)
        .app_transactions(txns)
        .run(df)
        .await?;
    Ok(Output::count("COPY", outcome.rows))
}

/// PostgreSQL's NOTICE after `ON_ERROR ignore` skipped rows.
pub fn skipped_notice(skipped: u64) -> String {
    if skipped == 1 {
        "1 row was skipped due to data type incompatibility".to_string()
    } else {
        format!("{skipped} rows were skipped due to data type incompatibility")
    }
}

/// Run a COPY statement: starts a copy-in, or returns the rows to copy out.
pub async fn execute(session: &mut Session, stmt: CopyStmt) -> Result<Output> {
    if stmt.options.new_files_only && (stmt.endpoint == CopyEndpoint::Client || !stmt.from) {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "COPY NEW_FILES_ONLY applies to COPY ... FROM files ('path', 'glob' or URL)",
        ));
    }
    match (&stmt.endpoint, stmt.from) {
        (CopyEndpoint::Client, true) => Ok(Output::CopyIn(Box::new(
            CopyIn::start(session, &stmt).await?,
        ))),
        (CopyEndpoint::Client, false) => {
            if matches!(stmt.options.format, CopyFormat::Json | CopyFormat::Parquet) {
                return Err(Error::not_supported(
                    "COPY TO STDOUT in json or parquet format",
                ));
            }
            copy_out(session, stmt).await
        }
        (CopyEndpoint::File(path), true) => copy_from_files(session, &stmt, path).await,
        (CopyEndpoint::File(_), false) => Err(Error::not_supported(
            "COPY TO a server file (use COPY ... TO STDOUT)",
        )),
    }
}
