//! The input BAM of a shard, local or on S3, read by byte ranges: its index, its header, and
//! the records of one share, from an offset to wherever the share ends. Every byte pulled from
//! the input is counted, which is how a shard reports what it read.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::storage::{self, S3Storage, Storage, StoreOptions};
use crate::{Error, Result};

/// One input file, and the counter of bytes read from it.
pub(crate) struct InputSource {
    location: String,
    place: Place,
    read: Arc<AtomicU64>,
}

enum Place {
    Local(PathBuf),
    /// A store at the bucket root, and the object's key in it.
    S3(S3Storage, String),
}

/// Counts the bytes a decoder pulls from the raw input.
struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

impl InputSource {
    /// The input at `location` (a path or `s3://bucket/key`).
    pub(crate) fn open(location: &str, store: &StoreOptions) -> Result<InputSource> {
        let place = if storage::is_s3(location) {
            let (bucket, key) = storage::s3::parse_uri(location)?;
            if key.is_empty() {
                return Err(Error::Invalid(format!("{location}: no object key")));
            }
            Place::S3(S3Storage::new(&format!("s3://{bucket}"), store)?, key)
        } else {
            Place::Local(PathBuf::from(location))
        };
        Ok(InputSource {
            location: location.to_string(),
            place,
            read: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The input's name, for messages.
    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// Bytes read from the input so far (its index not included).
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Size of the input in bytes.
    pub(crate) fn size(&self) -> Result<u64> {
        match &self.place {
            Place::Local(p) => {
                let m = std::fs::metadata(p).map_err(|e| Error::io(&self.location, e))?;
                if m.is_dir() {
                    return Err(Error::Invalid(format!(
                        "{}: is a directory, not a BAM file",
                        self.location
                    )));
                }
                Ok(m.len())
            }
            Place::S3(s, key) => s
                .head(key)?
                .ok_or_else(|| Error::NotFound(self.location.clone())),
        }
    }

    /// Size of the input and its version: modification time (local) or ETag (S3).
    pub(crate) fn size_and_version(&self) -> Result<(u64, String)> {
        match &self.place {
            Place::Local(p) => {
                let size = self.size()?;
                let m = std::fs::metadata(p).map_err(|e| Error::io(&self.location, e))?;
                Ok((size, crate::dataset::journal::mtime_version(&m)))
            }
            Place::S3(s, key) => {
                let (size, etag) = s
                    .head_with_etag(key)?
                    .ok_or_else(|| Error::NotFound(self.location.clone()))?;
                Ok((size, format!("etag:{}", etag.unwrap_or_default())))
            }
        }
    }

    /// Bytes `range` of the input.
    pub(crate) fn range(&self, range: std::ops::Range<u64>) -> Result<Vec<u8>> {
        let n = range.end - range.start;
        let bytes = match &self.place {
            Place::Local(p) => {
                let mut f = File::open(p).map_err(|e| Error::io(&self.location, e))?;
                f.seek(SeekFrom::Start(range.start))
                    .map_err(|e| Error::io(&self.location, e))?;
                let mut buf = Vec::with_capacity(n as usize);
                f.take(n)
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::io(&self.location, e))?;
                buf
            }
            Place::S3(s, key) => s.get_range(key, range)?,
        };
        self.read.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    /// The input from byte `offset` on, as a stream that counts what it delivers.
    pub(crate) fn reader_at(&self, offset: u64) -> Result<Box<dyn Read + Send>> {
        let inner: Box<dyn Read + Send> = match &self.place {
            Place::Local(p) => {
                let mut f = File::open(p).map_err(|e| Error::io(&self.location, e))?;
                f.seek(SeekFrom::Start(offset))
                    .map_err(|e| Error::io(&self.location, e))?;
                Box::new(f)
            }
            Place::S3(s, key) => s.reader_at(key, offset)?,
        };
        Ok(Box::new(Counting {
            inner,
            n: self.read.clone(),
        }))
    }

    /// The input's index: `IN.bai`, `IN.csi`, or `IN` with `.bam` replaced by `.bai` or `.csi`
    /// (what samtools and htslib look for), as its location and bytes.
    pub(crate) fn index(&self) -> Result<(String, Vec<u8>)> {
        let base = self.location.strip_suffix(".bam");
        let names = [
            Some(format!("{}.bai", self.location)),
            Some(format!("{}.csi", self.location)),
            base.map(|b| format!("{b}.bai")),
            base.map(|b| format!("{b}.csi")),
        ];
        for name in names.into_iter().flatten() {
            if let Some(bytes) = self.sibling(&name)? {
                return Ok((name, bytes));
            }
        }
        Err(Error::Invalid(format!(
            "{}: no index (.bai or .csi) beside it: a sharded conversion needs a coordinate-sorted, indexed BAM (run `samtools index` on it)",
            self.location
        )))
    }

    /// The whole object or file `name` next to the input, or `None` when there is none.
    fn sibling(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match &self.place {
            Place::Local(_) => match std::fs::read(name) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(name, e)),
            },
            Place::S3(s, _) => {
                let (_, key) = storage::s3::parse_uri(name)?;
                match s.get(&key) {
                    Ok(b) => Ok(Some(b.to_vec())),
                    Err(Error::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }
}
