//! Expectations of a write that changes rows in place (UPDATE, MERGE):
//! counted, FAIL enforced and the quarantined rows written, before the
//! write itself commits; and the quarantine writer and results record that
//! every write with expectations uses.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{RecordBatch, TimestampMicrosecondArray};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;

use super::{Target, WriteContext, WriteOptions, conform, write_plan};
use crate::catalog::TableDef;
use crate::catalog::system::EXPECTATION_RESULTS;
use crate::error::{Error, ErrorKind, Result, ResultFuture};
use crate::frontend::names::quote_ident as ident;
use crate::quality::expect::Action;
use crate::quality::expect::{
    ExpectDef, QMsg, QUARANTINE_BACKLOG, QuarantineSink, Tally, apply, quarantine_schema,
};

/// The expectations of an UPDATE or MERGE, over the rows' new values
/// (`changed`: a relation named like the table), before it writes: counts
/// per rule, NOT NULL, CHECKs and FAIL rules checked (23502, 23514), and
/// the append of the rows a QUARANTINE rule refuses to the quarantine,
/// planned for the caller to commit once its own checks passed. Nothing
/// is written here. None when the table has no expectations.
pub async fn expectations_before(
    wc: &WriteContext,
    target: &Target,
    changed: &str,
) -> Result<Option<Expected>> {
    let rules = &target.def.expectations;
    if rules.is_empty() {
        return Ok(None);
    }
    let fails = |e: &crate::quality::expect::ExpectDef| format!("({}) IS FALSE", e.expr);
    // One pass over the changed rows counts the rows that break each hard
    // constraint (NOT NULL, then the CHECKs in name order, as PostgreSQL
    // checks them) and each expectation.
    let mut checks: Vec<&crate::quality::CheckDef> = target.def.checks.iter().collect();
    checks.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hard: Vec<(String, Error)> = Vec::new();
    for c in target.def.columns.iter().filter(|c| c.not_null) {
        hard.push((
            format!("{} IS NULL", ident(&c.name)),
            Error::new(
                ErrorKind::NotNullViolation,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, target.name
                ),
            )
            .with_table(&target.name, Some(&c.name)),
        ));
    }
    for c in &checks {
        hard.push((
            format!("({}) IS FALSE", c.expr),
            Error::new(
                ErrorKind::CheckViolation,
                format!(
                    "new row for relation \"{}\" violates check constraint \"{}\"",
                    target.name, c.name
                ),
            )
            .with_table(&target.name, None)
            .with_constraint(&c.name),
        ));
    }
    let conditions: Vec<String> = hard
        .iter()
        .map(|(c, _)| c.clone())
        .chain(rules.iter().map(fails))
        .collect();
    let mut list = vec!["count(*)".to_string()];
    list.extend(
        conditions
            .iter()
            .map(|c| format!("sum(CASE WHEN {c} THEN 1 ELSE 0 END)")),
    );
    let batches = crate::frontend::generated::query(
        &wc.ctx,
        &format!("SELECT {} FROM {changed}", list.join(", ")),
    )
    .await?
    .collect()
    .await?;
    let value = |i: usize| -> u64 {
        batches
            .first()
            .and_then(|b| ScalarValue::try_from_array(b.column(i), 0).ok())
            .and_then(|v| match v {
                ScalarValue::Int64(Some(n)) => Some(n as u64),
                _ => None,
            })
            .unwrap_or(0)
    };
    // A row breaking the `i`-th condition, for the error's DETAIL.
    let failing_row = |i: usize| {
        let sql = format!(
            "SELECT {} FROM {changed} WHERE {} LIMIT 1",
            target.columns_sql(),
            conditions[i]
        );
        async move {
            let rows = crate::frontend::generated::query(&wc.ctx, &sql)
                .await?
                .collect()
                .await?;
            Ok::<String, Error>(
                rows.iter()
                    .find(|b| b.num_rows() > 0)
                    .map(crate::quality::first_row_text)
                    .unwrap_or_default(),
            )
        }
    };
    // Hard constraints come first, as in INSERT: a row a rule would drop
    // must still not break one.
    for (i, (_, error)) in hard.into_iter().enumerate() {
        if value(i + 1) > 0 {
            let row = failing_row(i).await?;
            return Err(error.with_detail(format!("Failing row contains ({row}).")));
        }
    }
    let checks = conditions.len() - rules.len();
    let total = value(0);
    let mut counts = Vec::new();
    for (i, e) in rules.iter().enumerate() {
        let failed = value(checks + i + 1);
        if e.action == Action::Fail && failed > 0 {
            let row = failing_row(checks + i).await?;
            return Err(Error::new(
                ErrorKind::CheckViolation,
                format!(
                    "new row for relation \"{}\" violates expectation \"{}\"",
                    target.name, e.name
                ),
            )
            .with_detail(format!("Failing row contains ({row}).")));
        }
        counts.push((total - failed, failed));
    }
    let quarantined: Vec<&crate::quality::expect::ExpectDef> = rules
        .iter()
        .filter(|e| e.action == Action::Quarantine)
        .collect();
    let mut quarantine = None;
    if !quarantined.is_empty() {
        let broken = rules
            .iter()
            .map(|e| {
                format!(
                    "CASE WHEN {} THEN '{}' END",
                    fails(e),
                    e.name.replace('\'', "''")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let any = quarantined
            .iter()
            .map(|e| fails(e))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT *, string_to_array(concat_ws(',', {broken}), ',') AS broken_rules, \
             now() AS quarantined_at FROM {changed} WHERE {any}"
        );
        let qname = crate::quality::expect::quarantine_table(&target.name);
        let (qdef, qtable) = target.quarantine(wc).await?;
        let df = crate::frontend::generated::query(&wc.ctx, &sql).await?;
        let cols: Vec<String> = qdef.columns.iter().map(|c| c.name.clone()).collect();
        let df = conform(wc, df, &qdef, &cols, &qname)?;
        quarantine = Some(Pending {
            state: wc.ctx.state(),
            lake: wc.lake.clone(),
            table: qtable,
            plan: df.into_unoptimized_plan(),
        });
    }
    Ok(Some(Expected {
        record: ExpectRecord::new(wc.lake.clone(), &target.schema, &target.name, rules, counts),
        quarantine,
    }))
}

/// What [`expectations_before`] found: the counts to record once the
/// statement committed, and the quarantine append to commit just before it.
pub struct Expected {
    pub record: ExpectRecord,
    pub quarantine: Option<Pending>,
}

impl Expected {
    /// Commit the quarantine append, if any: the last step before the
    /// statement's own commit, once every check passed.
    pub async fn quarantine(&mut self) -> Result<()> {
        match self.quarantine.take() {
            Some(p) => p.write().await,
            None => Ok(()),
        }
    }

    /// The quarantine append as a hook at the end of a write's input.
    pub fn at_end(&mut self) -> Box<dyn crate::quality::guard::InputHook> {
        Box::new(AtEnd(self.quarantine.take()))
    }

    /// Record the counts against the version the statement produced.
    pub async fn record(self, version: i64) {
        self.record.record(version).await
    }
}

/// An append planned now and committed later.
pub struct Pending {
    state: datafusion::execution::SessionState,
    lake: Arc<crate::lake::Lake>,
    table: DeltaTable,
    plan: LogicalPlan,
}

impl Pending {
    async fn write(self) -> Result<()> {
        write_plan(
            self.state,
            self.lake,
            self.table,
            self.plan,
            SaveMode::Append,
            WriteOptions::default(),
        )
        .await
        .map(|_| ())
    }
}

/// The append as the last step of a rewrite's input, after its key checks.
struct AtEnd(Option<Pending>);

impl crate::quality::guard::InputHook for AtEnd {
    fn batch(&mut self, _: &RecordBatch) -> Result<()> {
        Ok(())
    }

    fn end<'a>(&'a mut self) -> ResultFuture<'a, ()> {
        Box::pin(async move {
            match self.0.take() {
                Some(p) => p.write().await,
                None => Ok(()),
            }
        })
    }
}

/// What [`Run::start`] gives: the plan with the expectations applied, the
/// run, and the quarantine's end-of-input hook (when a rule quarantines).
pub type Started = (
    DataFrame,
    Run,
    Option<Box<dyn crate::quality::guard::InputHook>>,
);

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
                let writer = tokio::spawn(super::write_plan(
                    state,
                    lake.clone(),
                    qtable,
                    qdf.into_unoptimized_plan(),
                    deltalake::protocol::SaveMode::Append,
                    super::WriteOptions::default(),
                ));
                let hook: Box<dyn crate::quality::guard::InputHook> = Box::new(QuarantineHook {
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
            rules: crate::quality::expect::rules(&def.expectations),
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
            rules: crate::quality::expect::rules(rules),
            counts,
        }
    }

    /// Append the counts to `sluice.expectation_results`. The write they
    /// describe has committed by now, so a failure here must not turn it
    /// into an error the client would retry: it is logged instead.
    pub async fn record(self, version: i64) {
        // No row was checked (a MERGE or upsert that changed nothing):
        // there is no write to describe, and the version would be another
        // statement's.
        if self
            .counts
            .iter()
            .all(|&(passed, failed)| passed == 0 && failed == 0)
        {
            return;
        }
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
            (EXPECTATION_RESULTS.schema)(),
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
        super::write_system_table(&self.lake, &EXPECTATION_RESULTS, batch, false).await
    }
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

type QuarantineWriter = tokio::task::JoinHandle<Result<super::Outcome>>;

/// At the end of the input: the quarantine's own input ends, and its
/// commit must succeed before the table's may happen.
struct QuarantineHook {
    tx: Option<QuarantineSink>,
    writer: Option<QuarantineWriter>,
}

impl crate::quality::guard::InputHook for QuarantineHook {
    fn batch(&mut self, _: &RecordBatch) -> Result<()> {
        Ok(())
    }

    fn end<'a>(&'a mut self) -> ResultFuture<'a, ()> {
        Box::pin(async move {
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
        })
    }
}

fn external(e: Error) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(e))
}
