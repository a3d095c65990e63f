//! A real S3 HTTP server inside the test process: s3s over a folder
//! (`s3s-fs`), with conditional writes made atomic.
//!
//! s3s-fs 0.14 checks `If-None-Match: *` and then writes, as two steps, so
//! two racing Delta commits of one version could both be acknowledged. Real
//! S3 and MinIO do the check and the write as one step; so does this server,
//! by holding one lock around every conditional write. Everything else is
//! s3s-fs unchanged.

use std::path::Path;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;

pub const ACCESS_KEY: &str = "sluicekey";
pub const SECRET_KEY: &str = "sluicesecret";

pub struct S3Server {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl S3Server {
    /// The AWS_* variables that point a Sluice server at this one.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ALLOW_HTTP", "true".to_string()),
            // These tests write behind the server's back (another server,
            // a corrupt commit) and look at once: no freshness window.
            ("SLUICE_FRESHNESS_MS", "0".to_string()),
        ]
    }

    /// Stop serving and close every open connection.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serve the folder `root` (buckets are its sub-folders) on a free port.
pub fn start_s3(root: &Path) -> S3Server {
    start_s3_on(root, 0)
}

/// Serve `root` on `port` (0: any free port).
pub fn start_s3_on(root: &Path, port: u16) -> S3Server {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind S3 port");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let fs = FileSystem::new(root).expect("S3 root folder");
    let service = {
        let mut b = s3s::service::S3ServiceBuilder::new(Atomic {
            fs,
            conditional: tokio::sync::Mutex::new(()),
        });
        b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        b.build()
    };
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let http = ConnBuilder::new(TokioExecutor::new());
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(_) => continue,
                    },
                    _ = &mut stopped => break,
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                connections.spawn(async move {
                    let _ = conn.await;
                });
            }
            // Dropping the set aborts every connection: clients see the
            // server go away, as with a killed process.
            connections.abort_all();
        });
    });
    S3Server {
        port,
        stop: Some(stop),
        thread: Some(thread),
    }
}

/// s3s-fs with atomic `If-None-Match` writes.
struct Atomic {
    fs: FileSystem,
    conditional: tokio::sync::Mutex<()>,
}

/// The S3 trait for `Atomic`: the listed calls go straight to s3s-fs.
macro_rules! delegate_except_conditional_writes {
    ($($name:ident: $input:ty => $output:ty;)*) => {
        #[async_trait::async_trait]
        impl S3 for Atomic {
            $(
                async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.fs.$name(req).await
                }
            )*

            async fn put_object(
                &self,
                req: S3Request<PutObjectInput>,
            ) -> S3Result<S3Response<PutObjectOutput>> {
                if req.input.if_none_match.is_some() || req.input.if_match.is_some() {
                    let _one_at_a_time = self.conditional.lock().await;
                    return self.fs.put_object(req).await;
                }
                self.fs.put_object(req).await
            }

            async fn complete_multipart_upload(
                &self,
                req: S3Request<CompleteMultipartUploadInput>,
            ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
                if req.input.if_none_match.is_some() || req.input.if_match.is_some() {
                    let _one_at_a_time = self.conditional.lock().await;
                    return self.fs.complete_multipart_upload(req).await;
                }
                self.fs.complete_multipart_upload(req).await
            }
        }
    };
}

delegate_except_conditional_writes! {
    create_bucket: CreateBucketInput => CreateBucketOutput;
    copy_object: CopyObjectInput => CopyObjectOutput;
    delete_bucket: DeleteBucketInput => DeleteBucketOutput;
    delete_object: DeleteObjectInput => DeleteObjectOutput;
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput;
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput;
    get_object: GetObjectInput => GetObjectOutput;
    head_bucket: HeadBucketInput => HeadBucketOutput;
    head_object: HeadObjectInput => HeadObjectOutput;
    list_buckets: ListBucketsInput => ListBucketsOutput;
    list_objects: ListObjectsInput => ListObjectsOutput;
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output;
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput;
    upload_part: UploadPartInput => UploadPartOutput;
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput;
    list_parts: ListPartsInput => ListPartsOutput;
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;
}
