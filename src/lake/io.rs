//! Every request Sluice makes to the lake's storage, counted.
//!
//! ```text
//!  delta-rs ──► object store factory (per scheme) ──► Counted ──► S3 / local / memory
//!                                                       │
//!                                              REQUESTS (per operation)
//! ```
//!
//! Delta tables open their storage through delta-rs' registry of object
//! store factories; [`register`] puts a counting layer around the factory
//! of every scheme a lake can use, so log reads, commits and the Parquet
//! reads of scans are all counted. `sluice.storage_requests` shows the
//! counts; they are what a statement's fixed cost is measured in.
//!
//! On object stores, byte ranges of data files (immutable in Delta: a
//! file is written once under a new name and never changed) are kept in a
//! process-wide cache of bounded size, so that repeated reads of the same
//! rows ask storage nothing. `SLUICE_CACHE_MB` sets its size (default 256;
//! 0 turns it off).
//!
//! `memory://` lakes also get one shared in-memory store per URL host, so
//! that a `memory://` lake keeps its tables for the life of the process
//! (delta-rs' default factory makes a new, empty store for every table
//! handle).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use bytes::Bytes;
use deltalake::logstore::{ObjectStoreFactory, ObjectStoreRef, StorageConfig};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, RenameOptions,
};
use url::Url;

/// The kinds of request counted, in the order `sluice.storage_requests`
/// lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A read of an object or of a byte range of one.
    Get,
    /// Metadata of one object.
    Head,
    /// A listing (one page counts once).
    List,
    /// A write of a whole object, or one multipart upload.
    Put,
    Delete,
    /// Copy or rename of an object.
    Copy,
}

impl Operation {
    pub const ALL: [Operation; 6] = [
        Operation::Get,
        Operation::Head,
        Operation::List,
        Operation::Put,
        Operation::Delete,
        Operation::Copy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Head => "head",
            Operation::List => "list",
            Operation::Put => "put",
            Operation::Delete => "delete",
            Operation::Copy => "copy",
        }
    }
}

static REQUESTS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

fn count(op: Operation, n: u64) {
    REQUESTS[op as usize].fetch_add(n, Ordering::Relaxed);
}

fn traced(op: Operation, n: u64, path: &dyn fmt::Display) {
    count(op, n);
    tracing::trace!(operation = op.name(), requests = n, %path, "storage request");
}

/// Requests made to lake storage by this process so far, per operation.
pub fn requests() -> Vec<(Operation, u64)> {
    Operation::ALL
        .iter()
        .map(|op| (*op, REQUESTS[*op as usize].load(Ordering::Relaxed)))
        .collect()
}

/// Wrap the object store factory of every lake scheme in a counting layer
/// and size the data-file cache to `cache_mb` MiB (once per process).
pub fn register(cache_mb: u64) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        size_cache(cache_mb);
        deltalake::aws::register_handlers(None);
        let factories = deltalake::logstore::object_store_factories();
        for scheme in ["s3", "s3a", "file"] {
            let key = Url::parse(&format!("{scheme}://")).expect("scheme URL");
            let inner = factories.get(&key).map(|f| f.value().clone());
            if let Some(inner) = inner {
                factories.insert(key, Arc::new(CountingFactory { inner }));
            }
        }
        factories.insert(
            Url::parse("memory://").expect("scheme URL"),
            Arc::new(CountingFactory {
                inner: Arc::new(SharedMemory::default()),
            }),
        );
    });
}

struct CountingFactory {
    inner: Arc<dyn ObjectStoreFactory>,
}

impl ObjectStoreFactory for CountingFactory {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> deltalake::DeltaResult<(ObjectStoreRef, Path)> {
        let (store, path) = self.inner.parse_url_opts(url, config)?;
        // Local reads are served by the kernel's page cache already.
        let cached = !matches!(url.scheme(), "file" | "memory");
        let root = format!("{}://{}/", url.scheme(), url.host_str().unwrap_or_default());
        Ok((
            Arc::new(Counted {
                inner: store,
                cache_root: cached.then_some(root),
            }),
            path,
        ))
    }
}

/// Largest single range kept in the cache: bigger reads are scans, which
/// would only push out the small ranges point reads come back for.
const MAX_CACHED_RANGE: u64 = 4 << 20;

/// A range of an object as it was requested.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Requested {
    Bounded(u64, u64),
    Suffix(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RangeKey {
    object: String,
    range: Requested,
}

/// A cached range: its bytes, and how a whole-result read returned them
/// (absent when only a multi-range read has fetched it).
struct CachedRange {
    data: Bytes,
    result: Option<ResultInfo>,
    used: u64,
}

#[derive(Clone)]
struct ResultInfo {
    meta: ObjectMeta,
    range: Range<u64>,
    attributes: Attributes,
}

/// Byte ranges of immutable objects, least recently used out first.
struct RangeCache {
    capacity: u64,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<RangeKey, CachedRange>,
    by_use: BTreeMap<u64, RangeKey>,
    tick: u64,
    bytes: u64,
}

impl RangeCache {
    fn get(&self, key: &RangeKey) -> Option<(Bytes, Option<ResultInfo>)> {
        let mut state = self.state.lock().unwrap();
        state.tick += 1;
        let tick = state.tick;
        let entry = state.entries.get_mut(key)?;
        let old = std::mem::replace(&mut entry.used, tick);
        let found = (entry.data.clone(), entry.result.clone());
        state.by_use.remove(&old);
        state.by_use.insert(tick, key.clone());
        Some(found)
    }

    fn put(&self, key: RangeKey, data: Bytes, result: Option<ResultInfo>) {
        let size = data.len() as u64;
        if size > MAX_CACHED_RANGE || size > self.capacity {
            return;
        }
        let mut state = self.state.lock().unwrap();
        state.tick += 1;
        let used = state.tick;
        let mut result = result;
        if let Some(old) = state.entries.remove(&key) {
            state.by_use.remove(&old.used);
            state.bytes -= old.data.len() as u64;
            result = result.or(old.result);
        }
        while state.bytes + size > self.capacity {
            let Some((_, oldest)) = state.by_use.pop_first() else {
                break;
            };
            if let Some(e) = state.entries.remove(&oldest) {
                state.bytes -= e.data.len() as u64;
            }
        }
        state.bytes += size;
        state.by_use.insert(used, key.clone());
        state
            .entries
            .insert(key, CachedRange { data, result, used });
    }
}

static CACHE: std::sync::OnceLock<Option<RangeCache>> = std::sync::OnceLock::new();

/// The size of the cache in MiB: `SLUICE_CACHE_MB`, by default 256.
pub fn cache_mb_from_env() -> crate::error::Result<u64> {
    match std::env::var("SLUICE_CACHE_MB") {
        Err(_) => Ok(256),
        Ok(v) => v.trim().parse().map_err(|_| {
            crate::error::Error::new(
                crate::error::ErrorKind::InvalidParameter,
                format!("SLUICE_CACHE_MB must be a number of MiB, not \"{v}\""),
            )
        }),
    }
}

/// Size the process-wide cache (0: none). The first call decides.
fn size_cache(mb: u64) {
    CACHE.get_or_init(|| {
        (mb > 0).then(|| RangeCache {
            capacity: mb << 20,
            state: Mutex::new(CacheState::default()),
        })
    });
}

/// The process-wide cache, if there is one.
fn cache() -> Option<&'static RangeCache> {
    CACHE.get().and_then(Option::as_ref)
}

/// Is the object at `location` immutable: a Delta data file (written once
/// under a fresh name), not a log entry?
fn immutable(location: &Path) -> bool {
    let s = location.as_ref();
    s.ends_with(".parquet") && !s.contains("_delta_log")
}

/// One in-memory store per `memory://host`, for the life of the process.
#[derive(Default)]
struct SharedMemory {
    stores: Mutex<HashMap<String, ObjectStoreRef>>,
}

impl ObjectStoreFactory for SharedMemory {
    fn parse_url_opts(
        &self,
        url: &Url,
        _config: &StorageConfig,
    ) -> deltalake::DeltaResult<(ObjectStoreRef, Path)> {
        let host = url.host_str().unwrap_or_default().to_string();
        let store = self
            .stores
            .lock()
            .unwrap()
            .entry(host)
            .or_insert_with(|| Arc::new(object_store::memory::InMemory::new()))
            .clone();
        Ok((store, Path::from(url.path().trim_matches('/'))))
    }
}

/// An object store that counts the requests it passes on.
#[derive(Debug)]
pub struct Counted {
    inner: ObjectStoreRef,
    /// `scheme://host/` of the store when its data files may be cached.
    cache_root: Option<String>,
}

impl Counted {
    /// The cache key of a plain ranged read of an immutable object.
    fn cache_key(&self, location: &Path, options: &GetOptions) -> Option<RangeKey> {
        let plain = !options.head
            && options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none();
        if !plain {
            return None;
        }
        match options.range.as_ref()? {
            GetRange::Bounded(r) => self.range_key(location, r),
            GetRange::Suffix(n) if *n <= MAX_CACHED_RANGE => Some(RangeKey {
                object: self.object_key(location)?,
                range: Requested::Suffix(*n),
            }),
            _ => None,
        }
    }

    /// The cache key of `range` of the object at `location`.
    fn range_key(&self, location: &Path, range: &Range<u64>) -> Option<RangeKey> {
        (range.end - range.start <= MAX_CACHED_RANGE).then_some(())?;
        Some(RangeKey {
            object: self.object_key(location)?,
            range: Requested::Bounded(range.start, range.end),
        })
    }

    /// `scheme://host/path` of an immutable object on a cached store.
    fn object_key(&self, location: &Path) -> Option<String> {
        let root = self.cache_root.as_ref()?;
        immutable(location).then(|| format!("{root}{location}"))
    }
}

fn cached_result(data: Bytes, info: ResultInfo) -> GetResult {
    GetResult {
        payload: GetResultPayload::Stream(futures::stream::once(async move { Ok(data) }).boxed()),
        meta: info.meta,
        range: info.range,
        attributes: info.attributes,
    }
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counted({})", self.inner)
    }
}

/// How many requests a ranged read of `ranges` makes: object_store merges
/// ranges less than its default gap apart into one request.
fn coalesced_requests(ranges: &[Range<u64>]) -> u64 {
    let mut sorted: Vec<&Range<u64>> = ranges.iter().collect();
    sorted.sort_by_key(|r| r.start);
    let mut n = 0;
    let mut end: Option<u64> = None;
    for r in sorted {
        match end {
            Some(e) if r.start <= e.saturating_add(object_store::OBJECT_STORE_COALESCE_DEFAULT) => {
                end = Some(e.max(r.end));
            }
            _ => {
                n += 1;
                end = Some(r.end);
            }
        }
    }
    n
}

#[async_trait::async_trait]
impl ObjectStore for Counted {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        traced(Operation::Put, 1, location);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        traced(Operation::Put, 1, location);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head {
            Operation::Head
        } else {
            Operation::Get
        };
        let key = self.cache_key(location, &options);
        if let (Some(cache), Some(key)) = (cache(), key.as_ref())
            && let Some((data, Some(info))) = cache.get(key)
        {
            return Ok(cached_result(data, info));
        }
        traced(op, 1, location);
        let result = self.inner.get_opts(location, options).await?;
        let (Some(cache), Some(key)) = (cache(), key) else {
            return Ok(result);
        };
        let info = ResultInfo {
            meta: result.meta.clone(),
            range: result.range.clone(),
            attributes: result.attributes.clone(),
        };
        let data = result.bytes().await?;
        cache.put(key, data.clone(), Some(info.clone()));
        Ok(cached_result(data, info))
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let keys: Option<Vec<RangeKey>> =
            ranges.iter().map(|r| self.range_key(location, r)).collect();
        let (Some(cache), Some(keys)) = (cache(), keys) else {
            traced(Operation::Get, coalesced_requests(ranges), location);
            return self.inner.get_ranges(location, ranges).await;
        };
        let hits: Option<Vec<Bytes>> = keys.iter().map(|k| cache.get(k).map(|(d, _)| d)).collect();
        if let Some(hits) = hits {
            return Ok(hits);
        }
        traced(Operation::Get, coalesced_requests(ranges), location);
        let data = self.inner.get_ranges(location, ranges).await?;
        for (key, d) in keys.into_iter().zip(&data) {
            cache.put(key, d.clone(), None);
        }
        Ok(data)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let counted = locations
            .inspect(|l| {
                if l.is_ok() {
                    count(Operation::Delete, 1)
                }
            })
            .boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        traced(Operation::List, 1, &prefix.cloned().unwrap_or_default());
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        traced(Operation::List, 1, offset);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        traced(Operation::List, 1, &prefix.cloned().unwrap_or_default());
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        traced(Operation::Copy, 1, from);
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        traced(Operation::Copy, 1, from);
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[test]
    fn near_ranges_are_one_request() {
        assert_eq!(coalesced_requests(&[]), 0);
        assert_eq!(coalesced_requests(&[0..10, 20..30]), 1);
        let far = object_store::OBJECT_STORE_COALESCE_DEFAULT * 3;
        assert_eq!(coalesced_requests(&[far..far + 1, 0..10, 5..8]), 2);
    }

    #[tokio::test]
    async fn requests_are_counted_and_memory_lakes_persist() {
        register(0);
        let url = Url::parse("memory://io-test/t").unwrap();
        let factory = deltalake::logstore::object_store_factories()
            .get(&Url::parse("memory://").unwrap())
            .unwrap()
            .value()
            .clone();
        let config = StorageConfig::default();
        let (a, path) = factory.parse_url_opts(&url, &config).unwrap();
        let before = requests();
        a.put(&path.clone().join("x"), PutPayload::from_static(b"hello"))
            .await
            .unwrap();
        // A second handle on the same lake sees the object.
        let (b, _) = factory.parse_url_opts(&url, &config).unwrap();
        let got = b
            .get(&path.clone().join("x"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&got[..], b"hello");
        let after = requests();
        let diff = |op: Operation| {
            let n = |v: &[(Operation, u64)]| v.iter().find(|(o, _)| *o == op).unwrap().1;
            n(&after) - n(&before)
        };
        assert!(diff(Operation::Put) >= 1);
        assert!(diff(Operation::Get) >= 1);
    }
}
