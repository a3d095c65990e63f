//! Expectations: `CONSTRAINT name EXPECT (condition) [ON VIOLATION FAIL |
//! DROP ROW | QUARANTINE]`.
//!
//! A row "fails" an expectation when its condition is false (NULL passes,
//! as for CHECK). Without an action the row is kept and counted; FAIL
//! rejects the statement (23514); DROP ROW leaves the row out; QUARANTINE
//! leaves it out of the table and writes it to `<table>__quarantine` with
//! the names of the rules it broke and the time. Every write records, per
//! expectation, how many rows passed and failed in
//! `sluice.expectation_results`.
//!
//! In INSERT and COPY the expectations are one filter in the write plan;
//! the rows it quarantines go, as it finds them, to a second writer whose
//! commit is the last step before the table's own (see `guard`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::Column;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::{CheckDef, plan_check};
use crate::catalog::TableDef;
pub use crate::catalog::rules::{Action, ExpectDef};
use crate::error::{Error, ErrorKind, Result};

/// (name, action) of each expectation, in declaration order.
fn rules(expectations: &[ExpectDef]) -> Vec<(String, Action)> {
    expectations
        .iter()
        .map(|e| (e.name.clone(), e.action))
        .collect()
}

/// Does some expectation of `def` quarantine rows?
pub fn quarantines(def: &TableDef) -> bool {
    def.expectations
        .iter()
        .any(|e| e.action == Action::Quarantine)
}

/// SQL over a row's columns: it passes every DROP ROW and QUARANTINE rule
/// of `def`, so a statement writes it (`TRUE` without such rules).
pub fn kept_sql(def: &TableDef) -> String {
    let kept: Vec<String> = def
        .expectations
        .iter()
        .filter(|e| matches!(e.action, Action::Drop | Action::Quarantine))
        .map(|e| format!("({}) IS NOT FALSE", e.expr))
        .collect();
    if kept.is_empty() {
        return "TRUE".into();
    }
    kept.join(" AND ")
}

/// Name of the table that holds a table's quarantined rows.
pub fn quarantine_table(table: &str) -> String {
    format!("{table}__quarantine")
}

/// Extra columns of a quarantine table, after the table's own.
pub const BROKEN_RULES: &str = "broken_rules";
pub const QUARANTINED_AT: &str = "quarantined_at";

/// Passed/failed counts per expectation of one write, in `def` order.
#[derive(Debug, Default)]
pub struct Tally {
    pub counts: Vec<(AtomicU64, AtomicU64)>,
}

impl Tally {
    pub fn new(n: usize) -> Arc<Tally> {
        Arc::new(Tally {
            counts: (0..n)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
        })
    }

    /// (passed, failed) of expectation `i`.
    pub fn get(&self, i: usize) -> (u64, u64) {
        let (p, f) = &self.counts[i];
        (p.load(Ordering::Relaxed), f.load(Ordering::Relaxed))
    }
}

/// What the quarantine writer receives: batches of the table's columns
/// plus `broken_rules` and `quarantined_at`, then `End` once the statement's
/// input is complete. A channel closed without `End` fails its write.
pub enum QMsg {
    Batch(RecordBatch),
    End,
}

pub type QuarantineSink = tokio::sync::mpsc::Sender<QMsg>;

/// Quarantined batches in flight to the quarantine writer: a slow writer
/// holds up the filter rather than letting memory grow.
const QUARANTINE_BACKLOG: usize = 4;

/// The schema of a table's quarantine rows.
pub fn quarantine_schema(table: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = table
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    fields.push(Field::new(
        BROKEN_RULES,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    ));
    fields.push(Field::new(
        QUARANTINED_AT,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    ));
    Arc::new(Schema::new(fields))
}

/// `df` (the table's columns, in order) with the table's expectations
/// applied, counting into `tally` and sending quarantined rows to `sink`.
pub fn apply(
    ctx: &SessionContext,
    df: DataFrame,
    def: &TableDef,
    table: &str,
    tally: Arc<Tally>,
    sink: Option<QuarantineSink>,
) -> Result<DataFrame> {
    if def.expectations.is_empty() {
        return Ok(df);
    }
    let mut args = Vec::new();
    for e in &def.expectations {
        let as_check = CheckDef {
            name: e.name.clone(),
            expr: e.expr.clone(),
        };
        args.push(plan_check(ctx, &as_check, df.schema())?);
    }
    args.extend(
        def.columns
            .iter()
            .map(|c| Expr::Column(Column::new_unqualified(&c.name))),
    );
    let udf = ScalarUDF::new_from_impl(Expect {
        signature: Signature::variadic_any(Volatility::Volatile),
        table: table.to_string(),
        rules: rules(&def.expectations),
        state: Arc::new(Shared {
            tally,
            sink: Mutex::new(sink),
            quarantine_schema: quarantine_schema(&def.arrow_schema()),
        }),
    });
    Ok(df.filter(udf.call(args))?)
}

#[derive(Debug)]
struct Shared {
    tally: Arc<Tally>,
    sink: Mutex<Option<QuarantineSink>>,
    quarantine_schema: SchemaRef,
}

#[derive(Debug)]
struct Expect {
    signature: Signature,
    table: String,
    rules: Vec<(String, Action)>,
    state: Arc<Shared>,
}

impl PartialEq for Expect {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }
}

impl Eq for Expect {}

impl std::hash::Hash for Expect {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.table.hash(state);
        self.rules.hash(state);
    }
}

fn external(e: Error) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(e))
}

impl ScalarUDFImpl for Expect {
    fn name(&self) -> &str {
        "sluice_expect"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let rows = args.number_rows;
        let n = self.rules.len();
        // failed[i][r]: row r breaks rule i.
        let mut failed: Vec<Vec<bool>> = Vec::with_capacity(n);
        for (i, (name, action)) in self.rules.iter().enumerate() {
            let ok = args.args[i].to_array(rows)?;
            let ok = ok.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| {
                external(Error::new(
                    ErrorKind::DatatypeMismatch,
                    format!("expectation \"{name}\" must be a boolean condition"),
                ))
            })?;
            let f: Vec<bool> = (0..rows).map(|r| ok.is_valid(r) && !ok.value(r)).collect();
            let bad = f.iter().filter(|b| **b).count() as u64;
            if *action == Action::Fail && bad > 0 {
                let r = f.iter().position(|b| *b).expect("counted");
                let row = super::failing_row(&args.args[n..], r, rows);
                return Err(external(
                    Error::new(
                        ErrorKind::CheckViolation,
                        format!(
                            "new row for relation \"{}\" violates expectation \"{name}\"",
                            self.table
                        ),
                    )
                    .with_detail(format!("Failing row contains ({row}).")),
                ));
            }
            let (p, fl) = &self.state.tally.counts[i];
            p.fetch_add(rows as u64 - bad, Ordering::Relaxed);
            fl.fetch_add(bad, Ordering::Relaxed);
            failed.push(f);
        }
        let leaves = |i: usize| matches!(self.rules[i].1, Action::Drop | Action::Quarantine);
        let keep: Vec<bool> = (0..rows)
            .map(|r| !(0..n).any(|i| leaves(i) && failed[i][r]))
            .collect();
        let quarantined: Vec<bool> = (0..rows)
            .map(|r| (0..n).any(|i| self.rules[i].1 == Action::Quarantine && failed[i][r]))
            .collect();
        if quarantined.iter().any(|q| *q) {
            self.quarantine(&args.args[n..], rows, &failed, &quarantined)?;
        }
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(keep))))
    }
}

impl Expect {
    fn quarantine(
        &self,
        columns: &[ColumnarValue],
        rows: usize,
        failed: &[Vec<bool>],
        quarantined: &[bool],
    ) -> datafusion::error::Result<()> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len() + 2);
        for c in columns {
            arrays.push(c.to_array(rows)?);
        }
        // The rules each row broke, in declaration order.
        let mut broken: Vec<Vec<&str>> = vec![Vec::new(); rows];
        for ((name, _), f) in self.rules.iter().zip(failed) {
            for (names, bad) in broken.iter_mut().zip(f) {
                if *bad {
                    names.push(name);
                }
            }
        }
        let mut rules = ListBuilder::new(StringBuilder::new());
        for names in broken {
            for n in names {
                rules.values().append_value(n);
            }
            rules.append(true);
        }
        arrays.push(Arc::new(rules.finish()));
        let now = chrono::Utc::now().timestamp_micros();
        arrays.push(Arc::new(
            TimestampMicrosecondArray::from(vec![now; rows]).with_timezone("UTC"),
        ));
        // Table columns arrive as the write plan typed them; the quarantine
        // table keeps the same types, all nullable.
        let schema = self.state.quarantine_schema.clone();
        let arrays = arrays
            .into_iter()
            .zip(schema.fields())
            .map(|(a, f)| {
                if a.data_type() == f.data_type() {
                    Ok(a)
                } else {
                    datafusion::arrow::compute::cast(&a, f.data_type())
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(schema, arrays)?;
        let mut mask = BooleanBuilder::with_capacity(rows);
        for q in quarantined {
            mask.append_value(*q);
        }
        let batch = filter_record_batch(&batch, &mask.finish())?;
        let tx = self.state.sink.lock().expect("not poisoned").clone();
        let sent = match tx {
            // The filter runs inside the runtime: wait for room without
            // holding a worker (multi-threaded runtimes; a current-thread
            // one cannot wait here, so a full backlog is an error there).
            Some(tx) => match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                    tokio::task::block_in_place(|| tx.blocking_send(QMsg::Batch(batch))).is_ok()
                }
                _ => tx.try_send(QMsg::Batch(batch)).is_ok(),
            },
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(external(Error::internal(format!(
                "the quarantine of \"{}\" is not accepting rows",
                self.table
            ))))
        }
    }
}

/// What [`Run::start`] gives: the plan with the expectations applied, the
/// run, and the quarantine's end-of-input hook (when a rule quarantines).
pub type Started = (DataFrame, Run, Option<Box<dyn super::guard::InputHook>>);

/// The expectations of one write: counts as rows pass, the quarantine
/// writer, and the results row per rule once the write has committed.
pub struct Run {
    lake: Arc<crate::lake::Lake>,
    schema: String,
    table: String,
    rules: Vec<(String, Action)>,
    tally: Arc<Tally>,
}

impl Run {
    /// Start the expectations of a write into `schema.table`; `quarantine`
    /// is the quarantine table's state when some rule quarantines. Returns
    /// `df` with the expectations applied and the hook that commits the
    /// quarantined rows at the end of the input.
    pub fn start(
        state: datafusion::execution::SessionState,
        lake: Arc<crate::lake::Lake>,
        (schema, table): (&str, &str),
        def: &TableDef,
        df: DataFrame,
        quarantine: Option<deltalake::DeltaTable>,
    ) -> Result<Started> {
        let ctx = SessionContext::new_with_state(state.clone());
        let tally = Tally::new(def.expectations.len());
        let (sink, hook) = match quarantine {
            Some(qtable) => {
                let (tx, rx) = tokio::sync::mpsc::channel::<QMsg>(QUARANTINE_BACKLOG);
                let qschema = quarantine_schema(&def.arrow_schema());
                let source = datafusion::catalog::streaming::StreamingTable::try_new(
                    qschema.clone(),
                    vec![Arc::new(QuarantineInput {
                        schema: qschema,
                        rx: Mutex::new(Some(rx)),
                    })],
                )?;
                let qdf = ctx.read_table(Arc::new(source))?;
                let writer = tokio::spawn(crate::engine::dml::write_with(
                    state,
                    lake.clone(),
                    qtable,
                    qdf.into_unoptimized_plan(),
                    deltalake::protocol::SaveMode::Append,
                    vec![],
                    false,
                ));
                let hook: Box<dyn super::guard::InputHook> = Box::new(QuarantineHook {
                    tx: Some(tx.clone()),
                    writer: Some(writer),
                });
                (Some(tx), Some(hook))
            }
            None => (None, None),
        };
        let df = apply(&ctx, df, def, table, tally.clone(), sink)?;
        let run = Run {
            lake,
            schema: schema.to_string(),
            table: table.to_string(),
            rules: rules(&def.expectations),
            tally,
        };
        Ok((df, run, hook))
    }

    /// Append this write's counts to `sluice.expectation_results`, against
    /// the table version the write produced (see [`ExpectRecord::record`]).
    pub async fn record(self, version: i64) {
        let counts: Vec<(u64, u64)> = (0..self.rules.len()).map(|i| self.tally.get(i)).collect();
        ExpectRecord {
            lake: self.lake,
            schema: self.schema,
            table: self.table,
            rules: self.rules,
            counts,
        }
        .record(version)
        .await
    }
}

/// Counts per expectation of one write, to record once it committed.
pub struct ExpectRecord {
    lake: Arc<crate::lake::Lake>,
    schema: String,
    table: String,
    rules: Vec<(String, Action)>,
    counts: Vec<(u64, u64)>,
}

impl ExpectRecord {
    pub fn new(
        lake: Arc<crate::lake::Lake>,
        schema: &str,
        table: &str,
        rules: &[ExpectDef],
        counts: Vec<(u64, u64)>,
    ) -> ExpectRecord {
        ExpectRecord {
            lake,
            schema: schema.to_string(),
            table: table.to_string(),
            rules: self::rules(rules),
            counts,
        }
    }

    /// Append the counts to `sluice.expectation_results`. The write they
    /// describe has committed by now, so a failure here must not turn it
    /// into an error the client would retry: it is logged instead.
    pub async fn record(self, version: i64) {
        let table = format!("{}.{}", self.schema, self.table);
        if let Err(e) = self.append(version).await {
            tracing::warn!(
                "the write of {table} (version {version}) committed, but its expectation \
                 results could not be recorded: {e}"
            );
        }
    }

    async fn append(self, version: i64) -> Result<()> {
        use datafusion::arrow::array::{Int64Array, StringArray};
        let n = self.rules.len();
        let now = chrono::Utc::now().timestamp_micros();
        let counts = self.counts;
        let batch = RecordBatch::try_new(
            results_schema(),
            vec![
                Arc::new(StringArray::from(vec![self.schema.clone(); n])),
                Arc::new(StringArray::from(vec![self.table.clone(); n])),
                Arc::new(StringArray::from_iter_values(
                    self.rules.iter().map(|(r, _)| r.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    self.rules.iter().map(|(_, a)| a.label()),
                )),
                Arc::new(Int64Array::from(vec![version; n])),
                Arc::new(Int64Array::from_iter_values(
                    counts.iter().map(|(p, _)| *p as i64),
                )),
                Arc::new(Int64Array::from_iter_values(
                    counts.iter().map(|(_, f)| *f as i64),
                )),
                Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
            ],
        )?;
        let url = self.lake.url_for(RESULTS_LOCATION)?;
        let table = if self.lake.exists(&url).await? {
            self.lake.table(&url).await?
        } else {
            match self
                .lake
                .create(&url, &results_schema(), &[], "expectation_results")
                .await
            {
                Ok(t) => t,
                // Created by another write meanwhile.
                Err(_) => self.lake.table(&url).await?,
            }
        };
        let written = table
            .write(vec![batch])
            .with_save_mode(deltalake::protocol::SaveMode::Append)
            .with_commit_properties(crate::engine::dml::commit_properties())
            .await?;
        self.lake.remember(&written);
        Ok(())
    }
}

/// Where `sluice.expectation_results` lives, relative to the lake root.
pub const RESULTS_LOCATION: &str = "_sluice/expectation_results";

pub fn results_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table_schema", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, true),
        Field::new("expectation", DataType::Utf8, true),
        Field::new("action", DataType::Utf8, true),
        Field::new("table_version", DataType::Int64, true),
        Field::new("rows_passed", DataType::Int64, true),
        Field::new("rows_failed", DataType::Int64, true),
        Field::new(
            "recorded_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

/// The quarantine writer's input: what the expectation filter sends.
#[derive(Debug)]
struct QuarantineInput {
    schema: SchemaRef,
    rx: Mutex<Option<tokio::sync::mpsc::Receiver<QMsg>>>,
}

impl datafusion::physical_plan::streaming::PartitionStream for QuarantineInput {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(
        &self,
        _ctx: Arc<datafusion::execution::TaskContext>,
    ) -> datafusion::physical_plan::SendableRecordBatchStream {
        let rx = self.rx.lock().expect("not poisoned").take();
        let stream = futures::stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(QMsg::Batch(b)) => Some((Ok(b), Some(rx))),
                Some(QMsg::End) => None,
                None => Some((
                    Err(external(Error::new(
                        ErrorKind::QueryCanceled,
                        "the statement ended before its quarantine was complete",
                    ))),
                    None,
                )),
            }
        });
        Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                self.schema.clone(),
                stream,
            ),
        )
    }
}

type QuarantineWriter = tokio::task::JoinHandle<Result<(deltalake::DeltaTable, usize)>>;

/// At the end of the input: the quarantine's own input ends, and its
/// commit must succeed before the table's may happen.
struct QuarantineHook {
    tx: Option<QuarantineSink>,
    writer: Option<QuarantineWriter>,
}

#[async_trait::async_trait]
impl super::guard::InputHook for QuarantineHook {
    fn batch(&mut self, _: &RecordBatch) -> Result<()> {
        Ok(())
    }

    async fn end(&mut self) -> Result<()> {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(QMsg::End).await;
        }
        match self.writer.take() {
            Some(w) => match w.await {
                Ok(r) => r.map(|_| ()),
                Err(e) => Err(Error::internal(format!("quarantine writer failed: {e}"))),
            },
            None => Ok(()),
        }
    }
}
