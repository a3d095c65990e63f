//! PRIMARY KEY and UNIQUE: no two rows share a key.
//!
//! Delta has no indexes, so a write checks its keys when its input ends,
//! before the writer may commit: the rows stream through to the writer as
//! usual while their key columns go to a spill file on local disk; at the
//! end of the input two queries run over that file, one for keys repeated
//! within the statement and one (a join) for keys the table already holds.
//! A hit ends the input with 23505 instead, so nothing is committed. Both
//! queries run with a memory limit and sort-merge joins, spilling to disk,
//! so a key check stays bounded on tables larger than memory.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::execution::options::ArrowReadOptions;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::DeltaTable;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::catalog::TableDef;
use crate::engine::dml::ident;
use crate::error::{Error, ErrorKind, Result};

/// A PRIMARY KEY or UNIQUE constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyDef {
    pub name: String,
    pub columns: Vec<String>,
    #[serde(default)]
    pub primary: bool,
}

/// Memory the key-check queries may use before they spill.
const CHECK_MEMORY: usize = 256 * 1024 * 1024;

/// `df` (the rows a statement writes, in the table's columns) that fails
/// at its end when a key repeats within it or, with `existing`, matches a
/// row of that table state. Without keys, `df` itself.
pub fn guard(
    ctx: &SessionContext,
    df: DataFrame,
    def: &TableDef,
    table: &str,
    existing: Option<DeltaTable>,
) -> Result<DataFrame> {
    if def.keys.is_empty() {
        return Ok(df);
    }
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let partition = Guarded {
        schema: schema.clone(),
        input: Mutex::new(Some(df)),
        keys: def.keys.clone(),
        table: table.to_string(),
        existing,
    };
    let source = StreamingTable::try_new(schema, vec![Arc::new(partition)])?;
    Ok(ctx.read_table(Arc::new(source))?)
}

struct Guarded {
    schema: SchemaRef,
    input: Mutex<Option<DataFrame>>,
    keys: Vec<KeyDef>,
    table: String,
    existing: Option<DeltaTable>,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("table", &self.table)
            .finish()
    }
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl PartitionStream for Guarded {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let input = self.input.lock().expect("not poisoned").take();
        let keys = self.keys.clone();
        let existing = self.existing.clone();
        let schema = self.schema.clone();
        let stream = async_stream(input, keys, existing, schema.clone());
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }
}

enum State {
    Start(Option<DataFrame>),
    Streaming(SendableRecordBatchStream, Box<Spill>),
    Done,
}

type Step = Option<(datafusion::error::Result<RecordBatch>, State)>;

/// The input's batches, then the key check (an error, or nothing).
fn async_stream(
    input: Option<DataFrame>,
    keys: Vec<KeyDef>,
    existing: Option<DeltaTable>,
    schema: SchemaRef,
) -> impl futures::Stream<Item = datafusion::error::Result<RecordBatch>> + Send {
    let ctx = Arc::new(CheckCtx {
        keys,
        existing,
        schema,
    });
    futures::stream::unfold(State::Start(input), move |state| {
        let ctx = ctx.clone();
        async move {
            match state {
                State::Start(None) => Some((
                    Err(external(Error::internal("key check input executed twice"))),
                    State::Done,
                )),
                State::Start(Some(df)) => {
                    let spill = match Spill::new(&ctx) {
                        Ok(s) => Box::new(s),
                        Err(e) => return Some((Err(external(e)), State::Done)),
                    };
                    match df.execute_stream().await {
                        Ok(stream) => next(stream, spill, &ctx).await,
                        Err(e) => Some((Err(e), State::Done)),
                    }
                }
                State::Streaming(stream, spill) => next(stream, spill, &ctx).await,
                State::Done => None,
            }
        }
    })
}

/// One batch through (its keys spilled), or the check at the end.
async fn next(
    mut stream: SendableRecordBatchStream,
    mut spill: Box<Spill>,
    ctx: &CheckCtx,
) -> Step {
    match stream.next().await {
        Some(Ok(batch)) => match spill.add(&batch) {
            Ok(()) => Some((Ok(batch), State::Streaming(stream, spill))),
            Err(e) => Some((Err(external(e)), State::Done)),
        },
        Some(Err(e)) => Some((Err(e), State::Done)),
        None => match spill.check(ctx).await {
            Ok(()) => None,
            Err(e) => Some((Err(external(e)), State::Done)),
        },
    }
}

struct CheckCtx {
    keys: Vec<KeyDef>,
    existing: Option<DeltaTable>,
    schema: SchemaRef,
}

/// The key columns of every row written, in an Arrow IPC file that is
/// removed when the check is done.
struct Spill {
    path: PathBuf,
    columns: Vec<usize>,
    writer: Option<FileWriter<std::io::BufWriter<std::fs::File>>>,
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Spill {
    fn new(ctx: &CheckCtx) -> Result<Spill> {
        let mut columns: Vec<usize> = Vec::new();
        for k in &ctx.keys {
            for c in &k.columns {
                let i = ctx.schema.index_of(c).map_err(|_| {
                    Error::internal(format!("key column {c} is not among the written columns"))
                })?;
                if !columns.contains(&i) {
                    columns.push(i);
                }
            }
        }
        let projected = ctx.schema.project(&columns)?;
        let path = std::env::temp_dir().join(format!("sluice-keys-{}.arrow", uuid::Uuid::new_v4()));
        let file = std::fs::File::create(&path)?;
        let writer = FileWriter::try_new(std::io::BufWriter::new(file), &projected)?;
        Ok(Spill {
            path,
            columns,
            writer: Some(writer),
        })
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = batch.project(&self.columns)?;
        if let Some(w) = self.writer.as_mut() {
            w.write(&keys)?;
        }
        Ok(())
    }

    async fn check(&mut self, ctx: &CheckCtx) -> Result<()> {
        if let Some(mut w) = self.writer.take() {
            w.finish()?;
        }
        let check = bounded_context();
        let path = self.path.to_string_lossy().into_owned();
        check
            .register_arrow("incoming", &path, ArrowReadOptions::default())
            .await?;
        if let Some(t) = &ctx.existing {
            check.register_table("existing", t.table_provider().await?)?;
        }
        for key in &ctx.keys {
            let cols: Vec<String> = key.columns.iter().map(|c| ident(c)).collect();
            let list = cols.join(", ");
            let not_null = cols
                .iter()
                .map(|c| format!("{c} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let repeated = format!(
                "SELECT {list} FROM incoming WHERE {not_null} \
                 GROUP BY {list} HAVING count(*) > 1 LIMIT 1"
            );
            if let Some(k) = first_row(&check, &repeated).await? {
                return Err(violation(key, &k));
            }
            if ctx.existing.is_some() {
                let on = cols
                    .iter()
                    .map(|c| format!("i.{c} = e.{c}"))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                let select = cols
                    .iter()
                    .map(|c| format!("i.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let present =
                    format!("SELECT {select} FROM incoming i JOIN existing e ON {on} LIMIT 1");
                if let Some(k) = first_row(&check, &present).await? {
                    return Err(violation(key, &k));
                }
            }
        }
        Ok(())
    }
}

/// The first row of `sql` as PostgreSQL shows a key: `1, a@b`.
async fn first_row(ctx: &SessionContext, sql: &str) -> Result<Option<String>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let options = FormatOptions::default().with_null("null");
    let mut values = Vec::new();
    for c in b.columns() {
        values.push(
            ArrayFormatter::try_new(c.as_ref(), &options)?
                .value(0)
                .to_string(),
        );
    }
    Ok(Some(values.join(", ")))
}

fn violation(key: &KeyDef, values: &str) -> Error {
    Error::new(
        ErrorKind::UniqueViolation,
        format!(
            "duplicate key value violates unique constraint \"{}\"",
            key.name
        ),
    )
    .with_detail(format!(
        "Key ({})=({values}) already exists.",
        key.columns.join(", ")
    ))
}

/// ALTER TABLE ADD PRIMARY KEY / UNIQUE: the rows already in `table` must
/// not repeat the key (nor, for a primary key, leave it NULL).
pub async fn validate_existing(table: DeltaTable, name: &str, key: &KeyDef) -> Result<()> {
    let check = bounded_context();
    check.register_table("existing", table.table_provider().await?)?;
    let cols: Vec<String> = key.columns.iter().map(|c| ident(c)).collect();
    let list = cols.join(", ");
    if key.primary {
        for c in &key.columns {
            let sql = format!("SELECT 1 FROM existing WHERE {} IS NULL LIMIT 1", ident(c));
            if first_row(&check, &sql).await?.is_some() {
                return Err(Error::new(
                    ErrorKind::NotNullViolation,
                    format!("column \"{c}\" of relation \"{name}\" contains null values"),
                ));
            }
        }
    }
    let not_null = cols
        .iter()
        .map(|c| format!("{c} IS NOT NULL"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let sql = format!(
        "SELECT {list} FROM existing WHERE {not_null} GROUP BY {list} HAVING count(*) > 1 LIMIT 1"
    );
    if let Some(values) = first_row(&check, &sql).await? {
        return Err(Error::new(
            ErrorKind::UniqueViolation,
            format!("could not create unique index \"{}\"", key.name),
        )
        .with_detail(format!(
            "Key ({})=({values}) is duplicated.",
            key.columns.join(", ")
        )));
    }
    Ok(())
}

/// A context for key checks: limited memory, sort-merge joins, spilling.
fn bounded_context() -> SessionContext {
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_limit(CHECK_MEMORY, 1.0)
        .build_arc()
        .expect("a runtime with a memory limit builds");
    let mut config = SessionConfig::new().with_target_partitions(2);
    config.options_mut().optimizer.prefer_hash_join = false;
    SessionContext::new_with_config_rt(config, runtime)
}
