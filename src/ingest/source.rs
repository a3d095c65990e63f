//! Where the bytes of a text source come from: files that a path or glob
//! selects (lake, local, S3), or one HTTP(S) URL read with a plain GET.
//! Either way the bytes stream, gzip is undone on the fly (by its magic
//! number, so `access.log.2.gz` next to `access.log` just works), and
//! [`Lines`] cuts them into lines without holding more than a batch.
//!
//! ```text
//!  'logs/access.log*'  ─▶ list (object store) ─▶ Located::Stored ─┐
//!  'https://h/x.log'   ─▶ Located::Http ───────────────────────────┴─▶ open ─▶ ByteStream ─▶ Lines
//! ```

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use url::Url;

use super::files::{list_files, resolve_url};
use super::http::{ByteStream, Credentials, Encoding, HttpClient, client_of, decompress, redact};
use crate::error::{Error, ErrorKind, Result};
use crate::lake::Lake;

/// Lines per batch of line-based sources.
pub const BATCH_LINES: usize = 8192;

/// The longest line kept whole; longer ones are cut (a log with a binary
/// blob in it must not take the memory of the server).
const MAX_LINE: usize = 1 << 20;

/// One file or URL to read.
#[derive(Clone)]
pub enum Located {
    Http {
        url: Url,
        credentials: Credentials,
        client: Arc<HttpClient>,
    },
    Stored {
        store: Arc<dyn ObjectStore>,
        meta: ObjectMeta,
        name: String,
    },
}

impl std::fmt::Debug for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Located {
    /// What the `filename` column shows: the path, or the URL without
    /// credentials and query values.
    pub fn name(&self) -> String {
        match self {
            Located::Http { url, .. } => redact(url),
            Located::Stored { name, .. } => name.clone(),
        }
    }

    /// The bytes, decompressed when they are gzip.
    pub async fn open(&self) -> Result<ByteStream> {
        match self {
            Located::Http {
                url,
                credentials,
                client,
            } => Ok(client.get(url, credentials).await?.body()),
            Located::Stored { store, meta, name } => {
                let name = name.clone();
                let label = name.clone();
                let got = store
                    .get(&meta.location)
                    .await
                    .map_err(|e| Error::new(ErrorKind::Io, format!("reading {name}: {e}")))?;
                let raw = match got.payload {
                    object_store::GetResultPayload::File(file, _) => {
                        file_chunks(file, name.clone())
                    }
                    object_store::GetResultPayload::Stream(s) => s
                        .map_err(move |e| {
                            Error::new(ErrorKind::Io, format!("reading {label}: {e}"))
                        })
                        .boxed(),
                };
                Ok(decompress(raw, Encoding::Sniff, name))
            }
        }
    }
}

/// Bytes read from a local file at a time.
const FILE_CHUNK: usize = 1 << 20;

/// A local file, read [`FILE_CHUNK`] bytes at a time on the blocking pool.
/// (object_store's own stream makes one blocking call per 8 KiB: 131,072
/// of them for a 1 GiB log, most of the time of reading it.)
fn file_chunks(file: std::fs::File, name: String) -> ByteStream {
    futures::stream::try_unfold(file, move |mut file| {
        let name = name.clone();
        async move {
            let read = tokio::task::spawn_blocking(move || {
                use std::io::Read;
                let mut buf = Vec::with_capacity(FILE_CHUNK);
                (&mut file)
                    .take(FILE_CHUNK as u64)
                    .read_to_end(&mut buf)
                    .map(|_| (file, buf))
            })
            .await
            .map_err(|e| Error::internal(format!("reading {name}: {e}")))?;
            let (file, buf) =
                read.map_err(|e| Error::new(ErrorKind::Io, format!("reading {name}: {e}")))?;
            if buf.is_empty() {
                return Ok(None);
            }
            Ok(Some((Bytes::from(buf), file)))
        }
    })
    .boxed()
}

pub fn is_http(path: &str) -> bool {
    let lower = path.trim_start().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The files `path` selects (in name order), or the one URL it names.
pub async fn locate(
    session: &dyn Session,
    lake: &Lake,
    path: &str,
    credentials: &Credentials,
) -> Result<Vec<Located>> {
    if is_http(path) {
        let url = Url::parse(path.trim()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidParameter,
                format!("bad URL: {e} (URLs are read one at a time: no globs over HTTP)"),
            )
        })?;
        let client = client_of(session);
        client.check_credentials(&url, credentials)?;
        return Ok(vec![Located::Http {
            url,
            credentials: credentials.clone(),
            client,
        }]);
    }
    if *credentials != Credentials::ByUrl {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "headers => applies to http:// and https:// URLs only",
        ));
    }
    let url = resolve_url(lake, path)?;
    let (store, files) = list_files(session, lake, path).await?;
    Ok(files
        .into_iter()
        .map(|meta| {
            let name = stored_name(&url, &meta);
            Located::Stored {
                store: store.clone(),
                meta,
                name,
            }
        })
        .collect())
}

/// A file's name as users wrote it: a local path, or the store's URL.
fn stored_name(url: &Url, meta: &ObjectMeta) -> String {
    match url.scheme() {
        "file" => format!("/{}", meta.location),
        scheme => format!(
            "{scheme}://{}/{}",
            url.host_str().unwrap_or_default(),
            meta.location
        ),
    }
}

/// Lines of a byte stream, numbered from 1, without their `\n` or `\r\n`.
/// Invalid UTF-8 is replaced, not fatal: logs are written by many hands.
pub struct Lines {
    input: ByteStream,
    buf: BytesMut,
    number: u64,
    done: bool,
}

impl Lines {
    pub fn new(input: ByteStream) -> Lines {
        Lines {
            input,
            buf: BytesMut::new(),
            number: 0,
            done: false,
        }
    }

    fn take_line(&mut self, end: usize, skip: usize) -> (u64, String) {
        let line = self.buf.split_to(end);
        let _ = self.buf.split_to(skip);
        let mut bytes: &[u8] = &line;
        if bytes.ends_with(b"\r") {
            bytes = &bytes[..bytes.len() - 1];
        }
        if bytes.len() > MAX_LINE {
            bytes = &bytes[..MAX_LINE];
        }
        self.number += 1;
        (self.number, String::from_utf8_lossy(bytes).into_owned())
    }

    /// Up to `max` more lines; an empty vector at the end.
    pub async fn next_lines(&mut self, max: usize) -> Result<Vec<(u64, String)>> {
        let mut out = Vec::new();
        let mut scanned = 0;
        while out.len() < max {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[scanned..]) {
                out.push(self.take_line(scanned + i, 1));
                scanned = 0;
                continue;
            }
            scanned = self.buf.len();
            if self.done {
                if !self.buf.is_empty() {
                    let n = self.buf.len();
                    out.push(self.take_line(n, 0));
                }
                break;
            }
            match self.input.next().await {
                Some(chunk) => {
                    let chunk: Bytes = chunk?;
                    self.buf.extend_from_slice(&chunk);
                    // An endless line: keep its start, drop the rest.
                    if self.buf.len() > 2 * MAX_LINE && memchr::memchr(b'\n', &chunk).is_none() {
                        self.buf.truncate(MAX_LINE);
                        scanned = self.buf.len();
                    }
                }
                None => self.done = true,
            }
        }
        Ok(out)
    }
}

/// Turns the lines of one file into record batches.
pub trait LineParser: Send + Sync + std::fmt::Debug {
    /// One batch of `lines` of the file called `file`.
    fn parse(&self, file: &str, lines: &[(u64, String)]) -> Result<RecordBatch>;
}

/// One partition per file: each reads its lines through the parser.
#[derive(Debug)]
pub struct LinePartition {
    pub schema: SchemaRef,
    pub file: Located,
    pub parser: Arc<dyn LineParser>,
}

impl PartitionStream for LinePartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let file = self.file.clone();
        let parser = self.parser.clone();
        let name = file.name();
        let stream = futures::stream::once(async move { file.open().await })
            .map_ok(move |body| {
                let parser = parser.clone();
                let name = name.clone();
                futures::stream::try_unfold(Lines::new(body), move |mut lines| {
                    let parser = parser.clone();
                    let name = name.clone();
                    async move {
                        let batch = lines.next_lines(BATCH_LINES).await?;
                        if batch.is_empty() {
                            return Ok(None);
                        }
                        Ok(Some((parser.parse(&name, &batch)?, lines)))
                    }
                })
            })
            .try_flatten()
            .map_err(|e: Error| DataFusionError::External(Box::new(e)));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// The first `n` lines of the first files (for inferring a schema).
pub async fn sample_lines(files: &[Located], n: usize) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let mut lines = Lines::new(f.open().await?);
        loop {
            let got = lines.next_lines(n - out.len()).await?;
            if got.is_empty() {
                break;
            }
            out.extend(got.into_iter().map(|(_, l)| l));
            if out.len() >= n {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all_lines(chunks: &[&[u8]]) -> Vec<(u64, String)> {
        let input = futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )
        .boxed();
        let mut lines = Lines::new(input);
        let mut out = Vec::new();
        loop {
            let got = lines.next_lines(2).await.unwrap();
            if got.is_empty() {
                return out;
            }
            assert!(got.len() <= 2);
            out.extend(got);
        }
    }

    #[tokio::test]
    async fn lines_are_cut_across_chunks() {
        let got = all_lines(&[b"one\r\ntw", b"o\n\nthr", b"ee"]).await;
        assert_eq!(
            got,
            [
                (1, "one".to_string()),
                (2, "two".to_string()),
                (3, String::new()),
                (4, "three".to_string())
            ]
        );
        assert_eq!(all_lines(&[b"a\n"]).await, [(1, "a".to_string())]);
        assert!(all_lines(&[]).await.is_empty());
        let bad = all_lines(&[b"caf\xe9\n"]).await;
        assert_eq!(bad[0].1, "caf\u{fffd}");
    }
}
