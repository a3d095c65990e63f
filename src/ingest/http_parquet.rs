//! `read_parquet('http…')`: Parquet keeps its schema in a footer at the
//! end of the file, so a server that answers neither Range nor HEAD cannot
//! be read in place. The body is streamed (with the resumption, retries,
//! credentials and host checks of every HTTP read) into a temporary file
//! under the system's temporary folder (`TMPDIR`); the table reads that
//! file, and the file is removed when the last plan holding it is dropped.
//! Memory holds one chunk of the body while downloading and one row group's
//! batch while reading; the copy may grow to `[http] max_download` (10 GB
//! unless the config file says otherwise), past which the statement fails
//! with 53400.
//!
//! ```text
//!  plan:     GET ─▶ body ─▶ temporary file ─▶ footer ─▶ schema
//!  execute:  temporary file ─▶ Parquet reader ─▶ batches (per scan)
//! ```

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use url::Url;

use super::http::{Credentials, HttpClient, redact};
use crate::error::{Error, ErrorKind, Result};

/// Rows per batch read from the file.
const BATCH: usize = 8192;

/// The downloaded file; removed from disk when dropped.
struct Spooled {
    path: tempfile::TempPath,
    /// The URL it came from, without secrets.
    label: String,
}

/// One scan of the downloaded file.
struct SpooledPartition {
    schema: SchemaRef,
    file: Arc<Spooled>,
}

impl std::fmt::Debug for SpooledPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpooledParquet({})", self.file.label)
    }
}

fn unreadable(label: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::DataException,
        format!("{label}: cannot read as Parquet: {e}"),
    )
}

async fn open(file: &Spooled) -> Result<ParquetRecordBatchStreamBuilder<tokio::fs::File>> {
    let f = tokio::fs::File::open(&file.path).await.map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("reading the downloaded copy of {}: {e}", file.label),
        )
    })?;
    ParquetRecordBatchStreamBuilder::new(f)
        .await
        .map_err(|e| unreadable(&file.label, e))
}

impl PartitionStream for SpooledPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let file = self.file.clone();
        let stream = futures::stream::once(async move {
            let label = file.label.clone();
            let reader = open(&file)
                .await?
                .with_batch_size(BATCH)
                .build()
                .map_err(|e| unreadable(&label, e))?;
            // The stream keeps the file (and so its path) alive.
            Ok::<_, Error>(
                reader
                    .map_err(move |e| unreadable(&label, e))
                    .map(move |r| {
                        let _keep = &file;
                        r
                    }),
            )
        })
        .try_flatten()
        .map(|r| r.map_err(|e| DataFusionError::External(Box::new(e))));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// The table of `read_parquet('http…')`.
pub async fn parquet_table(
    client: Arc<HttpClient>,
    url: &Url,
    credentials: Credentials,
) -> Result<Arc<dyn TableProvider>> {
    client.check_credentials(url, &credentials)?;
    let resp = client.get(url, &credentials).await?;
    let label = redact(&resp.url);
    let mut body = resp.body();
    let local = |e: std::io::Error| {
        Error::new(
            ErrorKind::Io,
            format!("keeping a copy of {label} in the temporary folder: {e}"),
        )
    };
    let (std_file, path) = tempfile::Builder::new()
        .prefix("sluice-http-")
        .suffix(".parquet")
        .tempfile()
        .map_err(local)?
        .into_parts();
    let mut out = tokio::fs::File::from_std(std_file);
    let limit = client.config().max_download;
    let mut written: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        written += chunk.len() as u64;
        if written > limit {
            // The partial copy goes with `path` when it is dropped here.
            return Err(Error::new(
                ErrorKind::ConfigurationLimitExceeded,
                format!(
                    "{label}: the file is larger than [http] max_download ({limit} bytes); \
                     raise it in the config file"
                ),
            ));
        }
        out.write_all(&chunk).await.map_err(local)?;
    }
    out.flush().await.map_err(local)?;
    drop(out);
    let file = Arc::new(Spooled { path, label });
    let schema = open(&file).await?.schema().clone();
    let partition = SpooledPartition {
        schema: schema.clone(),
        file,
    };
    Ok(Arc::new(StreamingTable::try_new(
        schema,
        vec![Arc::new(partition)],
    )?))
}
