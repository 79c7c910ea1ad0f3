//! Datasets in an S3 bucket (or any S3-compatible store), on aws-sdk-s3.
//!
//! The [`Storage`] trait is synchronous because the CLI, the C ABI and R call it from plain
//! threads; this module owns one lazily created multi-thread tokio runtime and blocks on it, so
//! no caller has to bring a runtime. Retries are ours rather than the SDK's: the SDK does not
//! treat a body cut short as retryable, and counting attempts in one place keeps them bounded.

use std::io::{self, Read};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

use super::{check_key, Blob, Storage};
use crate::{Error, Result};

/// Objects larger than this are uploaded in parts, unless `BAMS3_S3_MULTIPART_THRESHOLD`
/// (bytes) says otherwise; see [`multipart_threshold`].
const MULTIPART_THRESHOLD: usize = 16 << 20;
/// Size of each multipart part (S3 requires at least 5 MiB except for the last).
const PART_SIZE: usize = 8 << 20;
/// Bytes of chunk uploads in flight at once (in MiB permits): uploads overlap with encoding
/// without the queued data outgrowing a fixed budget.
const UPLOAD_BUDGET_MIB: usize = 64;
/// Attempts per request, the first included.
const MAX_ATTEMPTS: u32 = 6;
/// First backoff; doubled per attempt, with full jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest single backoff.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// How S3 locations are reached. The CLI sets these once per process with
/// [`set_s3_options`]; [`super::open`] uses them for every `s3://` location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Endpoint of an S3-compatible store (`http://127.0.0.1:9000`); `AWS_ENDPOINT_URL` is also
    /// honoured. Either one turns on path-style addressing, which such stores need.
    pub endpoint_url: Option<String>,
    /// Send unsigned requests (public buckets), skipping the credential chain.
    pub no_sign_request: bool,
    /// Keep fetched chunk byte ranges in the local cache too, not only metadata.
    pub cache_chunks: bool,
}

static OPTIONS: OnceLock<Mutex<S3Options>> = OnceLock::new();

fn options_cell() -> &'static Mutex<S3Options> {
    OPTIONS.get_or_init(|| Mutex::new(S3Options::default()))
}

/// Sets the options used by every later [`super::open`] of an `s3://` location.
pub fn set_s3_options(opts: S3Options) {
    if let Ok(mut o) = options_cell().lock() {
        *o = opts;
    }
}

/// The options [`super::open`] currently uses.
pub fn s3_options() -> S3Options {
    options_cell().lock().map(|o| o.clone()).unwrap_or_default()
}

fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            // Requests are I/O bound; two workers keep many in flight without competing with
            // the compression threads for cores.
            .worker_threads(2)
            .thread_name("bams3-s3")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::Invalid(format!("cannot start the S3 runtime: {e}")))
}

/// Runs `fut` to completion on the library's runtime.
fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(fut))
}

/// Splits `s3://bucket/prefix` into bucket and prefix (without trailing slashes).
pub fn parse_uri(uri: &str) -> Result<(String, String)> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| Error::Invalid(format!("{uri}: not an s3:// URI")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::Invalid(format!(
            "{uri}: no bucket name (expected s3://bucket/prefix)"
        )));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// Builds a client from the AWS configuration chain plus `opts`.
fn client(opts: &S3Options) -> Result<Client> {
    static CLIENTS: OnceLock<Mutex<Vec<(S3Options, Client)>>> = OnceLock::new();
    let cache = CLIENTS.get_or_init(|| Mutex::new(Vec::new()));
    if let Some((_, c)) = cache
        .lock()
        .ok()
        .and_then(|v| v.iter().find(|(o, _)| o == opts).cloned())
    {
        return Ok(c);
    }
    let c = block_on(async {
        let region = aws_config::meta::region::RegionProviderChain::default_provider()
            // S3-compatible stores ignore the region, but the signer needs one.
            .or_else(aws_config::Region::from_static("us-east-1"));
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(region)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .read_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if opts.no_sign_request {
            loader = loader.no_credentials();
        }
        let shared = loader.load().await;
        let custom_endpoint = shared.endpoint_url().is_some();
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(custom_endpoint)
            // Checksums only where S3 requires them: S3-compatible stores differ in their
            // support for the newer trailing checksums, and every stream carries its own CRC.
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        Client::from_conf(conf)
    })?;
    if let Ok(mut v) = cache.lock() {
        v.push((opts.clone(), c.clone()));
    }
    Ok(c)
}

/// How a failed attempt is handled.
enum Failure {
    /// Worth another attempt (5xx, throttling, resets, timeouts, short bodies).
    Transient(String),
    /// The object does not exist.
    NotFound,
    /// `If-None-Match` matched: the cached copy is current.
    NotModified,
    /// Retrying cannot help; the message says what to fix.
    Permanent(io::ErrorKind, String),
}

fn classify<E>(e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>, bucket: &str) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = aws_sdk_s3::error::DisplayErrorContext(&e).to_string();
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().map(str::to_string);
    let lower = text.to_ascii_lowercase();
    if std::env::var_os("BAMS3_S3_DEBUG").is_some() {
        eprintln!("bams3: S3 error: status {status:?} code {code:?}: {text}");
    }
    if lower.contains("credential") && status.is_none() {
        return Failure::Permanent(
            io::ErrorKind::PermissionDenied,
            "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or \
             AWS_PROFILE, log in with `aws sso login`, or pass --no-sign-request for a public bucket"
                .into(),
        );
    }
    match (&e, status) {
        (SdkError::TimeoutError(_), _) => return Failure::Transient("timed out".into()),
        (SdkError::DispatchFailure(_), _) | (SdkError::ResponseError(_), _) => {
            return Failure::Transient(text)
        }
        _ => {}
    }
    let code_s = code.as_deref().unwrap_or("");
    match (status, code_s) {
        (Some(304), _) => Failure::NotModified,
        (_, "NoSuchBucket") => Failure::Permanent(
            io::ErrorKind::NotFound,
            format!("no such bucket '{bucket}': check the bucket name, the region (AWS_REGION) and the endpoint (--endpoint-url)"),
        ),
        (_, "NoSuchKey") | (Some(404), "" | "NotFound") => Failure::NotFound,
        (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken" | "TokenRefreshRequired" | "NotSignedUp") => {
            Failure::Permanent(
                io::ErrorKind::PermissionDenied,
                format!("the store rejected the credentials ({code_s}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or refresh the session"),
            )
        }
        (_, "AccessDenied" | "AllAccessDisabled") | (Some(403), _) => Failure::Permanent(
            io::ErrorKind::PermissionDenied,
            format!("access denied to bucket '{bucket}': check the credentials and the bucket policy (or --no-sign-request for a public bucket)"),
        ),
        (_, "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException")
        | (Some(301 | 307), _) => Failure::Permanent(
            io::ErrorKind::InvalidInput,
            format!("bucket '{bucket}' is in another region: set AWS_REGION to the bucket's region"),
        ),
        (Some(s), _) if s >= 500 || s == 429 => Failure::Transient(format!("HTTP {s} {code_s}")),
        (_, "SlowDown" | "InternalError" | "RequestTimeout" | "ServiceUnavailable" | "Throttling" | "ThrottlingException" | "RequestTimeTooSkewed") => {
            Failure::Transient(code_s.to_string())
        }
        (Some(s), _) => Failure::Permanent(
            io::ErrorKind::Other,
            format!("HTTP {s} {code_s}: {}", e.message().unwrap_or("request refused")),
        ),
        (None, _) => Failure::Transient(text),
    }
}

/// Backoff before attempt `attempt` (1-based retries): exponential with full jitter.
fn backoff(attempt: u32) -> Duration {
    let max = BACKOFF_BASE
        .saturating_mul(1 << attempt.min(16))
        .min(BACKOFF_CAP);
    // Jitter from the clock's low bits: enough to spread clients, no RNG dependency.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let seed = nanos
        .wrapping_mul(6364136223846793005)
        .wrapping_add(std::process::id() as u64);
    let frac = (seed >> 33) as f64 / (1u64 << 31) as f64;
    max.mul_f64(0.5 + 0.5 * frac)
}

/// Runs `op` with bounded retries of transient failures.
async fn retry<T, F, Fut>(what: &str, mut op: F) -> std::result::Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(Failure::Transient(msg)) => {
                attempt += 1;
                if attempt >= MAX_ATTEMPTS {
                    return Err(Failure::Transient(format!(
                        "{msg} (gave up after {MAX_ATTEMPTS} attempts on {what})"
                    )));
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
            r => return r,
        }
    }
}

/// The local cache directory: `$XDG_CACHE_HOME/bams3`, else `~/.cache/bams3`.
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CACHE_HOME") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d).join("bams3")),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".cache/bams3")),
    }
}

/// Subdirectories of [`cache_dir`] this module writes (and `bams3 cache clear` removes). The
/// rest of that directory (test data, tool installs) is not ours to delete.
pub const CACHE_SUBDIRS: [&str; 2] = ["s3-meta", "s3-chunks"];

/// Removes the S3 metadata and chunk caches; returns the bytes freed.
pub fn clear_cache() -> Result<u64> {
    let Some(dir) = cache_dir() else {
        return Ok(0);
    };
    fn size(p: &std::path::Path) -> u64 {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| size(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    let mut freed = 0;
    for sub in CACHE_SUBDIRS {
        let p = dir.join(sub);
        freed += size(&p);
        match std::fs::remove_dir_all(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(p.display().to_string(), e)),
        }
    }
    Ok(freed)
}

/// Metadata objects served from the local cache after revalidation.
const META_KEYS: [&str; 3] = [
    crate::metadata::METADATA_KEY,
    crate::metadata::HEADER_KEY,
    crate::metadata::INDEX_KEY,
];

/// A dataset under an S3 prefix.
pub struct S3Storage {
    client: Client,
    bucket: String,
    prefix: String,
    opts: S3Options,
    /// Cache folder of this dataset's metadata (`None` without a home directory).
    meta_cache: Option<PathBuf>,
    /// ETag of `_metadata.json` as served by this handle, once fetched or revalidated; header and
    /// index cached under the same metadata ETag are then trusted without a request.
    meta_etag: Mutex<Option<(String, bool)>>,
    /// Chunk uploads running in the background; see [`S3Storage::barrier`].
    uploads: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Bounds the bytes of background uploads.
    budget: std::sync::Arc<tokio::sync::Semaphore>,
    /// The first background upload failure, reported by every later call.
    upload_error: std::sync::Arc<Mutex<Option<(String, Failure)>>>,
}

impl S3Storage {
    /// Storage for `s3://bucket/prefix` with `opts`.
    pub fn new(uri: &str, opts: &S3Options) -> Result<S3Storage> {
        let (bucket, prefix) = parse_uri(uri)?;
        let client = client(opts)?;
        let endpoint = opts
            .endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .unwrap_or_else(|| "aws".into());
        let id = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(format!("{endpoint}\n{bucket}\n{prefix}").as_bytes());
            hex::encode(&h.finalize()[..16])
        };
        let meta_cache = cache_dir().map(|d| d.join("s3-meta").join(&id));
        Ok(S3Storage {
            client,
            bucket,
            prefix,
            opts: opts.clone(),
            meta_cache,
            meta_etag: Mutex::new(None),
            uploads: Mutex::new(Vec::new()),
            budget: std::sync::Arc::new(tokio::sync::Semaphore::new(UPLOAD_BUDGET_MIB)),
            upload_error: std::sync::Arc::new(Mutex::new(None)),
        })
    }

    fn full_key(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{}", self.prefix, key)
        })
    }

    fn name(&self, key: &str) -> String {
        format!("{}/{}", self.root(), key)
    }

    /// Turns a final failure into the library's error, naming the object.
    fn error(&self, key: &str, f: Failure) -> Error {
        match f {
            Failure::NotFound => Error::NotFound(self.name(key)),
            Failure::NotModified => Error::io(
                self.name(key),
                io::Error::other("unexpected 304 Not Modified"),
            ),
            // Built directly: `Error::io` would turn a NotFound kind into a bare "not found"
            // and lose the message saying what to fix.
            Failure::Transient(m) => Error::Io {
                path: self.name(key),
                source: io::Error::other(m),
            },
            Failure::Permanent(kind, m) => Error::Io {
                path: self.name(key),
                source: io::Error::new(kind, m),
            },
        }
    }

    /// One GET (optionally ranged and conditional), the body read whole and its length checked.
    async fn get_once(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        if_none_match: Option<&str>,
    ) -> std::result::Result<(Vec<u8>, Option<String>), Failure> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(r) = &range {
            req = req.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        if let Some(tag) = if_none_match {
            req = req.if_none_match(tag);
        }
        let out = req.send().await.map_err(|e| classify(e, &self.bucket))?;
        let expected = match &range {
            Some(r) => Some(r.end - r.start),
            None => out.content_length().and_then(|l| u64::try_from(l).ok()),
        };
        let etag = out.e_tag().map(str::to_string);
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| Failure::Transient(format!("body interrupted: {e}")))?
            .to_vec();
        if let Some(n) = expected {
            if body.len() as u64 != n {
                return Err(Failure::Transient(format!(
                    "short body: {} of {n} bytes",
                    body.len()
                )));
            }
        }
        Ok((body, etag))
    }

    async fn get_retry(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        if_none_match: Option<&str>,
    ) -> std::result::Result<(Vec<u8>, Option<String>), Failure> {
        retry(key, || self.get_once(key, range.clone(), if_none_match)).await
    }

    fn meta_paths(&self, key: &str) -> Option<(PathBuf, PathBuf)> {
        let dir = self.meta_cache.as_ref()?;
        let name = key.replace('/', "%2F");
        Some((dir.join(&name), dir.join(format!("{name}.etag"))))
    }

    /// Reads a cached metadata object: (body, its ETag, the metadata ETag it was fetched with).
    fn cached_meta(&self, key: &str) -> Option<(Vec<u8>, String, String)> {
        let (body, tag) = self.meta_paths(key)?;
        let tag = std::fs::read_to_string(tag).ok()?;
        let (etag, meta_etag) = tag.split_once('\n')?;
        let body = std::fs::read(body).ok()?;
        Some((body, etag.to_string(), meta_etag.trim_end().to_string()))
    }

    /// Stores a metadata object in the cache; failures only cost a later request.
    fn store_meta(&self, key: &str, body: &[u8], etag: &str, meta_etag: &str) {
        let Some((path, tag)) = self.meta_paths(key) else {
            return;
        };
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        // The ETag file is written after the body and removed before it is rewritten, so a
        // body and a tag that do not belong together are never both present.
        let _ = std::fs::remove_file(&tag);
        if write_atomic(&path, body).is_ok() {
            let _ = write_atomic(&tag, format!("{etag}\n{meta_etag}\n").as_bytes());
        }
    }

    /// GET of a metadata object through the revalidated cache.
    fn get_meta(&self, key: &str) -> Result<Vec<u8>> {
        let full = self.full_key(key)?;
        let cached = self.cached_meta(key);
        if key == crate::metadata::METADATA_KEY {
            let tag = cached.as_ref().map(|c| c.1.clone());
            let r = block_on(self.get_retry(&full, None, tag.as_deref()))?;
            return match r {
                Err(Failure::NotModified) => {
                    let (body, etag, _) = cached.expect("304 only with a cached ETag");
                    *self.meta_etag.lock().map_err(poisoned)? = Some((etag, true));
                    Ok(body)
                }
                Ok((body, etag)) => {
                    let etag = etag.unwrap_or_default();
                    if !etag.is_empty() {
                        self.store_meta(key, &body, &etag, &etag);
                    }
                    *self.meta_etag.lock().map_err(poisoned)? = Some((etag, false));
                    Ok(body)
                }
                Err(f) => Err(self.error(key, f)),
            };
        }
        // Header and index: the writer rewrites _metadata.json last, so while its ETag is the
        // one these were cached with, they are current.
        let meta = self.meta_etag.lock().map_err(poisoned)?.clone();
        if let (Some((meta_etag, true)), Some((body, _, cached_meta))) = (&meta, &cached) {
            if !meta_etag.is_empty() && meta_etag == cached_meta {
                return Ok(body.clone());
            }
        }
        let tag = cached.as_ref().map(|c| c.1.clone());
        match block_on(self.get_retry(&full, None, tag.as_deref()))? {
            Err(Failure::NotModified) => {
                let (body, etag, _) = cached.expect("304 only with a cached ETag");
                if let Some((m, _)) = &meta {
                    self.store_meta(key, &body, &etag, m);
                }
                Ok(body)
            }
            Ok((body, etag)) => {
                if let (Some(etag), Some((m, _))) = (etag, &meta) {
                    self.store_meta(key, &body, &etag, m);
                }
                Ok(body)
            }
            Err(f) => Err(self.error(key, f)),
        }
    }

    fn chunk_cache_path(&self, key: &str, range: &Range<u64>, version: &str) -> Option<PathBuf> {
        if !self.opts.cache_chunks || version.is_empty() {
            return None;
        }
        let dir = self.meta_cache.as_ref()?;
        let root = dir.parent()?.parent()?.join("s3-chunks");
        let id = dir.file_name()?;
        let name = format!(
            "{}-{}-{}-{}",
            key.replace('/', "%2F"),
            range.start,
            range.end,
            version.replace(':', "_")
        );
        Some(root.join(id).join(name))
    }

    /// A streaming reader of a whole object, resuming with a ranged GET after an interruption.
    pub fn reader(&self, key: &str) -> Result<Box<dyn Read + Send>> {
        let full = self.full_key(key)?;
        Ok(Box::new(S3Reader {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: full,
            name: self.name(key),
            pos: 0,
            total: None,
            body: None,
            buf: bytes::Bytes::new(),
            failures: 0,
        }))
    }

    /// Waits for every background upload; fails if one of them failed. Everything but chunk
    /// uploads goes through here first, so metadata is written only after every chunk is
    /// stored (the commit protocol), and a delete never races an upload of the same key.
    fn barrier(&self) -> Result<()> {
        let handles = std::mem::take(&mut *self.uploads.lock().map_err(poisoned)?);
        if !handles.is_empty() {
            block_on(async {
                for h in handles {
                    let _ = h.await;
                }
            })?;
        }
        self.upload_failure()
    }

    fn upload_failure(&self) -> Result<()> {
        let failed = self.upload_error.lock().map_err(poisoned)?;
        match &*failed {
            None => Ok(()),
            Some((key, f)) => Err(self.error(key, f.again())),
        }
    }
}

/// Size above which an object is uploaded in parts: `BAMS3_S3_MULTIPART_THRESHOLD` (a byte
/// count) when set, else 16 MiB. Parts stay 8 MiB whatever the threshold (S3 wants at least
/// 5 MiB but for the last), so a lower threshold makes smaller objects one-part uploads: stores
/// that cap single PUTs lower, and tests of the multipart path on small datasets, use it.
fn multipart_threshold() -> usize {
    static T: OnceLock<usize> = OnceLock::new();
    *T.get_or_init(|| {
        std::env::var("BAMS3_S3_MULTIPART_THRESHOLD")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(MULTIPART_THRESHOLD)
    })
}

/// Uploads one object, in parts when it is large.
async fn upload(
    client: &Client,
    bucket: &str,
    key: &str,
    data: &[u8],
) -> std::result::Result<(), Failure> {
    if data.len() <= multipart_threshold() {
        return retry(key, || async {
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(data.to_vec()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(e, bucket))
        })
        .await;
    }
    let created = retry(key, || async {
        client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(e, bucket))
    })
    .await?;
    let upload_id = created
        .upload_id()
        .ok_or_else(|| Failure::Transient("no upload id".into()))?
        .to_string();
    let result = async {
        let mut parts = Vec::new();
        for (i, part) in data.chunks(PART_SIZE).enumerate() {
            let n = i as i32 + 1;
            let out = retry(key, || async {
                client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(n)
                    .body(ByteStream::from(part.to_vec()))
                    .send()
                    .await
                    .map_err(|e| classify(e, bucket))
            })
            .await?;
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
        }
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let mut sent = false;
        retry(key, || {
            let again = std::mem::replace(&mut sent, true);
            let done = done.clone();
            let upload_id = upload_id.clone();
            async move {
                let r = client
                    .complete_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(done)
                    .send()
                    .await;
                match r {
                    Ok(_) => Ok(()),
                    // The upload is gone after a retry: the earlier attempt completed it and
                    // only its answer was lost, if the object is there with every byte.
                    Err(e) if again && e.code() == Some("NoSuchUpload") => {
                        match client.head_object().bucket(bucket).key(key).send().await {
                            Ok(h) if h.content_length() == Some(data.len() as i64) => Ok(()),
                            _ => Err(classify(e, bucket)),
                        }
                    }
                    Err(e) => Err(classify(e, bucket)),
                }
            }
        })
        .await
    }
    .await;
    if result.is_err() {
        // Parts of an abandoned upload are billed until aborted.
        let _ = client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}

impl Failure {
    /// A copy, to report one background failure from several calls.
    fn again(&self) -> Failure {
        match self {
            Failure::Transient(m) => Failure::Transient(m.clone()),
            Failure::NotFound => Failure::NotFound,
            Failure::NotModified => Failure::NotModified,
            Failure::Permanent(k, m) => Failure::Permanent(*k, m.clone()),
        }
    }
}

impl Drop for S3Storage {
    fn drop(&mut self) {
        // Uploads still running finish (or fail) before the storage goes away.
        let _ = self.barrier();
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Invalid("internal lock poisoned".into())
}

fn write_atomic(path: &std::path::Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

impl Storage for S3Storage {
    fn root(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn get(&self, key: &str) -> Result<Blob> {
        self.barrier()?;
        if META_KEYS.contains(&key) {
            return self.get_meta(key).map(Blob::Owned);
        }
        let full = self.full_key(key)?;
        block_on(self.get_retry(&full, None, None))?
            .map(|(b, _)| Blob::Owned(b))
            .map_err(|f| self.error(key, f))
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        self.barrier()?;
        let full = self.full_key(key)?;
        if range.end <= range.start {
            return Ok(Vec::new());
        }
        // Index sections are metadata: cached under the ETag of the `_metadata.json` that
        // located them, like the header (and checked against its section CRCs on use).
        let meta = self.meta_etag.lock().map_err(poisoned)?.clone();
        let cached_as = match &meta {
            Some((m, _)) if key == crate::metadata::INDEX_KEY && !m.is_empty() => {
                let name = format!("{key}@{}-{}", range.start, range.end);
                if let Some((body, _, cached_meta)) = self.cached_meta(&name) {
                    if cached_meta == *m && body.len() as u64 == range.end - range.start {
                        return Ok(body);
                    }
                }
                Some((name, m.clone()))
            }
            _ => None,
        };
        let body = block_on(self.get_retry(&full, Some(range), None))?
            .map(|(b, _)| b)
            .map_err(|f| self.error(key, f))?;
        if let Some((name, m)) = cached_as {
            self.store_meta(&name, &body, "", &m);
        }
        Ok(body)
    }

    fn get_range_versioned(&self, key: &str, range: Range<u64>, version: &str) -> Result<Vec<u8>> {
        let path = self.chunk_cache_path(key, &range, version);
        if let Some(p) = &path {
            if let Ok(b) = std::fs::read(p) {
                if b.len() as u64 == range.end - range.start {
                    return Ok(b);
                }
            }
        }
        let bytes = self.get_range(key, range)?;
        if let Some(p) = &path {
            if let Some(dir) = p.parent() {
                if std::fs::create_dir_all(dir).is_ok() {
                    let _ = write_atomic(p, &bytes);
                }
            }
        }
        Ok(bytes)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let full = self.full_key(key)?;
        if META_KEYS.contains(&key) {
            // Metadata is the commit: only once every chunk is stored, and synchronously.
            self.barrier()?;
            return block_on(upload(&self.client, &self.bucket, &full, data))?
                .map_err(|f| self.error(key, f));
        }
        // Chunks upload in the background, so the writer's workers go on encoding while
        // requests are in flight; the byte budget makes a slow store push back on them.
        self.upload_failure()?;
        let permits = data.len().div_ceil(1 << 20).clamp(1, UPLOAD_BUDGET_MIB) as u32;
        let permit = block_on(self.budget.clone().acquire_many_owned(permits))?
            .map_err(|_| Error::Invalid("upload queue closed".into()))?;
        let (client, bucket, data) = (self.client.clone(), self.bucket.clone(), data.to_vec());
        let failed = self.upload_error.clone();
        let name = key.to_string();
        let handle = runtime()?.spawn(async move {
            let r = upload(&client, &bucket, &full, &data).await;
            drop(permit);
            if let Err(f) = r {
                if let Ok(mut slot) = failed.lock() {
                    slot.get_or_insert((name, f));
                }
            }
        });
        let mut uploads = self.uploads.lock().map_err(poisoned)?;
        uploads.retain(|h| !h.is_finished());
        uploads.push(handle);
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let base = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let full = format!("{base}{prefix}");
        self.barrier()?;
        let r = block_on(async {
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = retry(&full, || async {
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(&full)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| classify(e, &self.bucket))
                })
                .await?;
                for o in out.contents() {
                    if let Some(k) = o.key().and_then(|k| k.strip_prefix(&base)) {
                        keys.push(k.to_string());
                    }
                }
                match out.next_continuation_token() {
                    Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(keys)
        })?;
        let mut keys = r.map_err(|f| self.error(prefix, f))?;
        keys.sort();
        Ok(keys)
    }

    fn delete(&self, key: &str) -> Result<()> {
        // A failed upload must not stop the cleanup: wait, but ignore its error here.
        let _ = self.barrier();
        let full = self.full_key(key)?;
        let r = block_on(retry(&full, || async {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(e, &self.bucket))
        }))?;
        match r {
            Ok(()) | Err(Failure::NotFound) => Ok(()),
            Err(f) => Err(self.error(key, f)),
        }
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        self.barrier()?;
        let full = self.full_key(key)?;
        let r = block_on(retry(&full, || async {
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
                .map_err(|e| classify(e, &self.bucket))
        }))?;
        match r {
            Ok(o) => Ok(Some(o.content_length().unwrap_or(0).max(0) as u64)),
            Err(Failure::NotFound) => Ok(None),
            Err(f) => Err(self.error(key, f)),
        }
    }
}

/// A streaming GET as a blocking [`Read`]. A body interrupted mid-way is resumed from the
/// current offset with a ranged GET, so a reset costs a retry, never a corrupt input.
struct S3Reader {
    client: Client,
    bucket: String,
    key: String,
    name: String,
    pos: u64,
    total: Option<u64>,
    body: Option<ByteStream>,
    buf: bytes::Bytes,
    /// Consecutive failures without progress.
    failures: u32,
}

impl S3Reader {
    fn fail(&mut self, msg: String) -> io::Result<()> {
        self.body = None;
        self.failures += 1;
        if self.failures >= MAX_ATTEMPTS {
            return Err(io::Error::other(format!(
                "{}: {msg} (gave up after {MAX_ATTEMPTS} attempts)",
                self.name
            )));
        }
        std::thread::sleep(backoff(self.failures));
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        while self.buf.is_empty() {
            if self.total.is_some_and(|t| self.pos >= t) {
                return Ok(());
            }
            if self.body.is_none() {
                let mut req = self.client.get_object().bucket(&self.bucket).key(&self.key);
                if self.pos > 0 {
                    req = req.range(format!("bytes={}-", self.pos));
                }
                let r = block_on(req.send()).map_err(io::Error::other)?;
                match r {
                    Ok(out) => {
                        if self.total.is_none() {
                            self.total = out
                                .content_length()
                                .and_then(|l| u64::try_from(l).ok())
                                .map(|l| l + self.pos);
                        }
                        self.body = Some(out.body);
                    }
                    Err(e) => match classify(e, &self.bucket) {
                        Failure::Transient(m) => self.fail(m)?,
                        Failure::NotFound => {
                            return Err(io::Error::new(io::ErrorKind::NotFound, "not found"))
                        }
                        Failure::Permanent(kind, m) => return Err(io::Error::new(kind, m)),
                        Failure::NotModified => {
                            return Err(io::Error::other("unexpected 304 Not Modified"))
                        }
                    },
                }
                continue;
            }
            let body = self.body.as_mut().expect("body present");
            match block_on(body.try_next()).map_err(io::Error::other)? {
                Ok(Some(b)) => {
                    self.failures = 0;
                    self.buf = b;
                }
                Ok(None) => {
                    self.body = None;
                    match self.total {
                        Some(t) if self.pos < t => {
                            let m = format!("body ended at {} of {t} bytes", self.pos);
                            self.fail(m)?
                        }
                        _ => {
                            self.total = Some(self.pos);
                            return Ok(());
                        }
                    }
                }
                Err(e) => self.fail(format!("body interrupted: {e}"))?,
            }
        }
        Ok(())
    }
}

impl Read for S3Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.fill()?;
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        self.pos += n as u64;
        Ok(n)
    }
}

/// Opens `s3://bucket/key` as a streaming reader (for `convert` input).
pub fn open_reader(uri: &str) -> Result<Box<dyn Read + Send>> {
    let (bucket, key) = parse_uri(uri)?;
    if key.is_empty() {
        return Err(Error::Invalid(format!("{uri}: no object key")));
    }
    let s = S3Storage::new(&format!("s3://{bucket}"), &s3_options())?;
    s.reader(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            parse_uri("s3://b/x/y.bams3/").unwrap(),
            ("b".into(), "x/y.bams3".into())
        );
        assert_eq!(parse_uri("s3://b").unwrap(), ("b".into(), "".into()));
        assert!(parse_uri("s3:///x").is_err());
        assert!(parse_uri("/x").is_err());
    }

    #[test]
    fn backoff_is_bounded() {
        for a in 1..40 {
            assert!(backoff(a) <= BACKOFF_CAP);
        }
    }
}
