//! A whole object as a blocking [`Read`] stream (the input of `convert` from S3).

use std::io::{self, Read};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use super::client::block_on;
use super::retry::{Failure, MAX_ATTEMPTS, backoff, classify};

/// A streaming GET as a blocking [`Read`]. A body interrupted mid-way is resumed from the
/// current offset with a ranged GET, so a reset costs a retry, never a corrupt input.
pub(super) struct S3Reader {
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
    /// A reader of `key` (the full object key) in `bucket`; `name` names it in messages.
    pub(super) fn new(client: Client, bucket: String, key: String, name: String) -> Self {
        S3Reader {
            client,
            bucket,
            key,
            name,
            pos: 0,
            total: None,
            body: None,
            buf: bytes::Bytes::new(),
            failures: 0,
        }
    }

    /// Starts reading at byte `pos` instead of the beginning.
    pub(super) fn starting_at(mut self, pos: u64) -> Self {
        self.pos = pos;
        self
    }

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
                            return Err(io::Error::new(io::ErrorKind::NotFound, "not found"));
                        }
                        Failure::Permanent(kind, m) => return Err(io::Error::new(kind, m)),
                        Failure::NotModified => {
                            return Err(io::Error::other("unexpected 304 Not Modified"));
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
