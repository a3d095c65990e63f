//! Work at the end of a write's input, before the writer may commit.
//!
//! The rows a statement writes stream through [`guard`] to the Delta
//! writer. Each hook sees every batch on the way, and when the input ends
//! runs its `end` step; an error there ends the input with that error
//! instead, so the writer never commits. Key checks and the quarantine
//! commit are hooks.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::error::{Error, Result, ResultFuture};

pub trait InputHook: Send + Sync {
    /// A batch on its way to the writer.
    fn batch(&mut self, batch: &RecordBatch) -> Result<()>;
    /// The input ended: the last word before the commit.
    fn end<'a>(&'a mut self) -> ResultFuture<'a, ()>;
}

/// `df` with `hooks` on its stream; `df` itself without hooks.
pub fn guard(
    ctx: &SessionContext,
    df: DataFrame,
    hooks: Vec<Box<dyn InputHook>>,
) -> Result<DataFrame> {
    if hooks.is_empty() {
        return Ok(df);
    }
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let partition = Guarded {
        schema: schema.clone(),
        start: Mutex::new(Some((df, hooks))),
    };
    let source = StreamingTable::try_new(schema, vec![Arc::new(partition)])?;
    Ok(ctx.read_table(Arc::new(source))?)
}

/// `df` as a stream of its own: planned and optimized alone, so nothing
/// planned on top of it (a volatile predicate) can move into it.
pub fn barrier(ctx: &SessionContext, df: DataFrame) -> Result<DataFrame> {
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let partition = Guarded {
        schema: schema.clone(),
        start: Mutex::new(Some((df, Vec::new()))),
    };
    let source = StreamingTable::try_new(schema, vec![Arc::new(partition)])?;
    Ok(ctx.read_table(Arc::new(source))?)
}

type Start = (DataFrame, Vec<Box<dyn InputHook>>);

struct Guarded {
    schema: SchemaRef,
    start: Mutex<Option<Start>>,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guarded")
    }
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

enum State {
    Start(Option<Start>),
    Streaming(SendableRecordBatchStream, Vec<Box<dyn InputHook>>),
    Done,
}

type Step = Option<(datafusion::error::Result<RecordBatch>, State)>;

impl PartitionStream for Guarded {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let start = self.start.lock().expect("not poisoned").take();
        let stream = futures::stream::unfold(State::Start(start), |state| async move {
            match state {
                State::Start(None) => Some((
                    Err(external(Error::internal("a guarded input executed twice"))),
                    State::Done,
                )),
                State::Start(Some((df, hooks))) => match df.execute_stream().await {
                    Ok(stream) => next(stream, hooks).await,
                    Err(e) => Some((Err(e), State::Done)),
                },
                State::Streaming(stream, hooks) => next(stream, hooks).await,
                State::Done => None,
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// One batch through the hooks, or their end steps once the input is done.
async fn next(mut stream: SendableRecordBatchStream, mut hooks: Vec<Box<dyn InputHook>>) -> Step {
    match stream.next().await {
        Some(Ok(batch)) => {
            for h in hooks.iter_mut() {
                if let Err(e) = h.batch(&batch) {
                    return Some((Err(external(e)), State::Done));
                }
            }
            Some((Ok(batch), State::Streaming(stream, hooks)))
        }
        Some(Err(e)) => Some((Err(e), State::Done)),
        None => {
            for h in hooks.iter_mut() {
                if let Err(e) = h.end().await {
                    return Some((Err(external(e)), State::Done));
                }
            }
            None
        }
    }
}
