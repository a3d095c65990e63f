//! The SQL cursors a session has open (`DECLARE ... CURSOR`): each keeps its
//! query's result stream and the rows of a batch a FETCH did not take.

use std::collections::HashMap;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use crate::error::Result;

struct Cursor {
    schema: SchemaRef,
    /// `None` once a FETCH ALL took the rest. (In a mutex only so that the
    /// session stays `Sync`; it is reached through `&mut` alone.)
    stream: Option<std::sync::Mutex<SendableRecordBatchStream>>,
    /// Rows of the last batch read that the last FETCH did not take.
    pending: Option<RecordBatch>,
    /// WITH HOLD: it outlives the transaction block.
    hold: bool,
}

#[derive(Default)]
pub struct Cursors {
    open: HashMap<String, Cursor>,
}

impl Cursors {
    pub fn contains(&self, name: &str) -> bool {
        self.open.contains_key(name)
    }

    pub fn open(
        &mut self,
        name: String,
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        hold: bool,
    ) {
        self.open.insert(
            name,
            Cursor {
                schema,
                stream: Some(std::sync::Mutex::new(stream)),
                pending: None,
                hold,
            },
        );
    }

    /// The columns of cursor `name`.
    pub fn schema(&self, name: &str) -> Option<SchemaRef> {
        self.open.get(name).map(|c| c.schema.clone())
    }

    /// Close `name`; whether it was open.
    pub fn close(&mut self, name: &str) -> bool {
        self.open.remove(name).is_some()
    }

    pub fn close_all(&mut self) {
        self.open.clear();
    }

    /// The transaction block ended: cursors without HOLD close.
    pub fn end_of_block(&mut self) {
        self.open.retain(|_, c| c.hold);
    }

    /// The next `count` rows of cursor `name` (all that are left for
    /// `None`); `None` when there is no such cursor.
    pub async fn fetch(
        &mut self,
        name: &str,
        count: Option<usize>,
    ) -> Option<Result<(SchemaRef, SendableRecordBatchStream)>> {
        let cursor = self.open.get_mut(name)?;
        let schema = cursor.schema.clone();
        let pending = cursor.pending.take();
        let Some(want) = count else {
            // The rest, streamed.
            let rest = cursor
                .stream
                .take()
                .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()));
            let head = futures::stream::iter(pending.map(Ok));
            let stream: SendableRecordBatchStream = match rest {
                Some(s) => Box::pin(RecordBatchStreamAdapter::new(schema.clone(), head.chain(s))),
                None => Box::pin(RecordBatchStreamAdapter::new(schema.clone(), head)),
            };
            return Some(Ok((schema, stream)));
        };
        let mut batches = Vec::new();
        let mut rows = 0;
        let mut next = pending;
        loop {
            if rows >= want {
                cursor.pending = next;
                break;
            }
            let batch = match next.take() {
                Some(b) => b,
                None => match cursor.stream.as_mut() {
                    None => break,
                    Some(m) => match m.get_mut().unwrap_or_else(|p| p.into_inner()).next().await {
                        None => {
                            cursor.stream = None;
                            break;
                        }
                        Some(Err(e)) => return Some(Err(e.into())),
                        Some(Ok(b)) => b,
                    },
                },
            };
            let take = (want - rows).min(batch.num_rows());
            if take < batch.num_rows() {
                next = Some(batch.slice(take, batch.num_rows() - take));
            }
            rows += take;
            batches.push(batch.slice(0, take));
        }
        let stream = futures::stream::iter(batches.into_iter().map(Ok));
        Some(Ok((
            schema.clone(),
            Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
        )))
    }
}
