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
pub fn rules(expectations: &[ExpectDef]) -> Vec<(String, Action)> {
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
pub const QUARANTINE_BACKLOG: usize = 4;

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
    // The table's checks come first (a row an expectation drops must still
    // not break one): they are evaluated as part of the first condition, as
    // an optimizer may merge the checks' filter with this one in any order.
    if let Some(checks) = super::check_call(ctx, df.schema(), def, table)? {
        args[0] = checks.and(args[0].clone());
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
