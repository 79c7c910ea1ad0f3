//! Objects under an S3 prefix (any S3-compatible store), on aws-sdk-s3.
//!
//! Concepts, one module each: [`client`] (the SDK client and the runtime the synchronous trait
//! blocks on), [`retry`] (what a failure means, bounded retries), [`upload`] (single and
//! multipart PUTs), [`reader`] (a streaming GET). This file is the [`Storage`] implementation:
//! background uploads behind [`Storage::flush`], conditional GETs for [`Storage::get_if_changed`],
//! and range planning (merging neighbours, fetching concurrently) for [`Storage::get_ranges`].

mod client;
mod reader;
mod retry;
mod upload;

use std::io::{self, Read};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;

pub use client::parse_uri;
use client::{block_on, runtime};
use retry::{Failure, classify, retry};
use upload::upload;

use super::{Blob, Fetched, Storage, StoreOptions, check_key};
use crate::{Error, Result};

/// Bytes of background uploads in flight at once (in MiB permits): uploads overlap with the
/// writer's encoding without the queued data outgrowing a fixed budget.
const UPLOAD_BUDGET_MIB: usize = 64;

/// Unneeded bytes between two requested ranges worth a separate ranged GET rather than
/// fetching them: about what one request costs in egress price, and the requests run
/// concurrently.
const GAP: u64 = 4 << 10;

/// Objects a sequential reader should keep in flight: round trips overlap.
const READ_AHEAD: usize = 4;

/// Objects under `s3://bucket/prefix`.
pub struct S3Storage {
    client: Client,
    bucket: String,
    prefix: String,
    /// The endpoint the client talks to, for [`Storage::namespace`].
    endpoint: String,
    /// Uploads running in the background; see [`Storage::flush`].
    uploads: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Bounds the bytes of background uploads.
    budget: Arc<tokio::sync::Semaphore>,
    /// The first background upload failure, reported by every later call.
    upload_error: Arc<Mutex<Option<(String, Failure)>>>,
    /// Whether `upload_error` was reported to a caller (else drop says so).
    reported: Mutex<bool>,
}

impl S3Storage {
    /// Storage for `s3://bucket/prefix` reached as `opts` say.
    pub fn new(uri: &str, opts: &StoreOptions) -> Result<S3Storage> {
        let (bucket, prefix) = parse_uri(uri)?;
        let client = client::client(opts)?;
        let endpoint = opts
            .endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .unwrap_or_else(|| "aws".into());
        Ok(S3Storage {
            client,
            bucket,
            prefix,
            endpoint,
            uploads: Mutex::new(Vec::new()),
            budget: Arc::new(tokio::sync::Semaphore::new(UPLOAD_BUDGET_MIB)),
            upload_error: Arc::new(Mutex::new(None)),
            reported: Mutex::new(false),
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
        if let Some(r) = &range {
            // A range reaching past the end is answered with what exists: retrying cannot
            // make the object longer.
            let total = out
                .content_range()
                .and_then(|c| c.rsplit_once('/'))
                .and_then(|(_, t)| t.parse::<u64>().ok());
            if let Some(total) = total.filter(|&t| t < r.end) {
                return Err(Failure::Permanent(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "range {}..{} reaches past the end of the object ({total} bytes)",
                        r.start, r.end
                    ),
                ));
            }
        }
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
        if let Some(n) = expected
            && body.len() as u64 != n
        {
            return Err(Failure::Transient(format!(
                "short body: {} of {n} bytes",
                body.len()
            )));
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

    /// A streaming reader of a whole object, resuming with a ranged GET after an interruption.
    pub fn reader(&self, key: &str) -> Result<Box<dyn Read + Send>> {
        let full = self.full_key(key)?;
        Ok(Box::new(reader::S3Reader::new(
            self.client.clone(),
            self.bucket.clone(),
            full,
            self.name(key),
        )))
    }

    /// [`S3Storage::reader`] from byte `offset` to the end (one open-ended ranged GET): a
    /// reader that stops early transfers little more than what it read.
    pub fn reader_at(&self, key: &str, offset: u64) -> Result<Box<dyn Read + Send>> {
        let full = self.full_key(key)?;
        Ok(Box::new(
            reader::S3Reader::new(
                self.client.clone(),
                self.bucket.clone(),
                full,
                self.name(key),
            )
            .starting_at(offset),
        ))
    }

    /// Waits for every background upload; fails if one of them failed. Reads, listings and
    /// deletes go through here first, so this handle sees its own writes, and a delete never
    /// races an upload of the same key.
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
            Some((key, f)) => {
                if let Ok(mut r) = self.reported.lock() {
                    *r = true;
                }
                Err(self.error(key, f.again()))
            }
        }
    }

    /// Merges `ranges` (sorted by start) into the spans to fetch: neighbours closer than
    /// [`GAP`] become one request.
    fn plan(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
        let mut order: Vec<&Range<u64>> = ranges.iter().filter(|r| r.end > r.start).collect();
        order.sort_by_key(|r| r.start);
        let mut spans: Vec<Range<u64>> = Vec::new();
        for r in order {
            match spans.last_mut() {
                Some(last) if r.start <= last.end.saturating_add(GAP) => {
                    last.end = last.end.max(r.end)
                }
                _ => spans.push(r.clone()),
            }
        }
        spans
    }
}

impl Drop for S3Storage {
    fn drop(&mut self) {
        // Uploads still running finish (or fail) before the storage goes away. A failure
        // nobody was told about (the owner never called flush) must not pass in silence.
        if let Err(e) = self.barrier()
            && !self.reported.lock().map(|r| *r).unwrap_or(true)
        {
            eprintln!("bams3: warning: an upload failed and was never flushed: {e}");
        }
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Internal("lock poisoned".into())
}

impl Storage for S3Storage {
    fn root(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn namespace(&self) -> String {
        format!("{}\n{}\n{}", self.endpoint, self.bucket, self.prefix)
    }

    fn get(&self, key: &str) -> Result<Blob> {
        self.barrier()?;
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
        block_on(self.get_retry(&full, Some(range), None))?
            .map(|(b, _)| b)
            .map_err(|f| self.error(key, f))
    }

    fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        self.barrier()?;
        let full = self.full_key(key)?;
        let spans = Self::plan(ranges);
        let fetched = block_on(async {
            let gets = spans
                .iter()
                .map(|s| self.get_retry(&full, Some(s.clone()), None));
            futures::future::join_all(gets).await
        })?;
        let mut bodies = Vec::with_capacity(spans.len());
        for f in fetched {
            bodies.push(f.map_err(|f| self.error(key, f))?.0);
        }
        // Each range is inside exactly one span: cut it out.
        ranges
            .iter()
            .map(|r| {
                if r.end <= r.start {
                    return Ok(Vec::new());
                }
                let i = spans
                    .iter()
                    .position(|s| s.start <= r.start && r.end <= s.end)
                    .ok_or_else(|| Error::Internal("range outside every planned span".into()))?;
                let at = (r.start - spans[i].start) as usize;
                Ok(bodies[i][at..at + (r.end - r.start) as usize].to_vec())
            })
            .collect()
    }

    fn get_if_changed(&self, key: &str, known: Option<&str>) -> Result<Fetched> {
        self.barrier()?;
        let full = self.full_key(key)?;
        match block_on(self.get_retry(&full, None, known))? {
            Ok((bytes, version)) => Ok(Fetched::Object {
                bytes: Blob::Owned(bytes),
                version: version.filter(|v| !v.is_empty()),
            }),
            Err(Failure::NotModified) if known.is_some() => Ok(Fetched::NotModified),
            Err(f) => Err(self.error(key, f)),
        }
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let full = self.full_key(key)?;
        // Uploads run in the background, so the writer's workers go on encoding while
        // requests are in flight; the byte budget makes a slow store push back on them.
        self.upload_failure()?;
        let permits = data.len().div_ceil(1 << 20).clamp(1, UPLOAD_BUDGET_MIB) as u32;
        let permit = block_on(self.budget.clone().acquire_many_owned(permits))?
            .map_err(|_| Error::Internal("upload queue closed".into()))?;
        let (client, bucket, data) = (self.client.clone(), self.bucket.clone(), data.to_vec());
        let failed = self.upload_error.clone();
        let name = key.to_string();
        let handle = runtime()?.spawn(async move {
            let r = upload(&client, &bucket, &full, &data).await;
            drop(permit);
            if let Err(f) = r
                && let Ok(mut slot) = failed.lock()
            {
                slot.get_or_insert((name, f));
            }
        });
        let mut uploads = self.uploads.lock().map_err(poisoned)?;
        uploads.retain(|h| !h.is_finished());
        uploads.push(handle);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.barrier()
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.list_keys(prefix, None)
    }

    fn any_under(&self, prefix: &str) -> Result<bool> {
        Ok(!self.list_keys(prefix, Some(1))?.is_empty())
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
        Ok(self.head_with_etag(key)?.map(|(size, _)| size))
    }

    fn read_ahead(&self) -> usize {
        READ_AHEAD
    }
}

impl S3Storage {
    /// Size and ETag of `key`, or `None` when there is no such object.
    pub fn head_with_etag(&self, key: &str) -> Result<Option<(u64, Option<String>)>> {
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
            Ok(o) => Ok(Some((
                o.content_length().unwrap_or(0).max(0) as u64,
                o.e_tag().map(str::to_string),
            ))),
            Err(Failure::NotFound) => Ok(None),
            Err(f) => Err(self.error(key, f)),
        }
    }
}

impl S3Storage {
    /// Keys under `prefix`, all of them or at most `limit` (one page).
    fn list_keys(&self, prefix: &str, limit: Option<i32>) -> Result<Vec<String>> {
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
                        .set_max_keys(limit)
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
                if limit.is_some_and(|l| keys.len() >= l as usize) {
                    break;
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
}

/// Opens `s3://bucket/key` as a streaming reader (for `convert` input).
pub(super) fn open_reader(uri: &str, opts: &StoreOptions) -> Result<Box<dyn Read + Send>> {
    let (bucket, key) = parse_uri(uri)?;
    if key.is_empty() {
        return Err(Error::Invalid(format!("{uri}: no object key")));
    }
    let s = S3Storage::new(&format!("s3://{bucket}"), opts)?;
    s.reader(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_closer_than_the_gap_are_one_request() {
        let r = |a: u64, b: u64| a..b;
        assert_eq!(
            S3Storage::plan(&[
                r(100, 200),
                r(0, 50),
                r(50 + GAP, 60 + GAP),
                r(1 << 20, 2 << 20)
            ]),
            [r(0, 200.max(60 + GAP)), r(1 << 20, 2 << 20)]
        );
        assert!(S3Storage::plan(&[r(5, 5)]).is_empty());
    }
}
