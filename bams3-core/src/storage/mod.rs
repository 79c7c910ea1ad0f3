//! Where dataset objects live. The dataset code sees only the [`Storage`] trait, never files or
//! buckets, so every command works the same on a local directory and on S3.
//!
//! A store knows nothing of datasets: no key names, no commit protocol. Keys are relative,
//! `/`-separated object names such as `data/chr1/000000000-001048576.chunk`, and every back end
//! refuses keys that could escape its root (see [`check_key`]). Back ends: [`LocalStorage`]
//! (memory maps, atomic renames) and [`S3Storage`] (aws-sdk-s3). Wrappers compose over any
//! store: [`CachedStore`] keeps objects in a local cache, validated by one object's version.

mod cache;
mod local;
pub mod s3;

use std::ops::{Deref, Range};

pub use cache::{CACHE_SUBDIRS, CachePolicy, CachedStore, cache_dir, clear_cache};
pub use local::LocalStorage;
pub use s3::S3Storage;

use crate::{Error, Result};

/// Bytes read from storage: a memory map for local files, an owned buffer otherwise.
pub enum Blob {
    /// Owned bytes.
    Owned(Vec<u8>),
    /// A read-only memory map of a whole local file.
    Mapped(memmap2::Mmap),
}

impl Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Blob::Owned(v) => v,
            Blob::Mapped(m) => m,
        }
    }
}

/// The answer to [`Storage::get_if_changed`].
pub enum Fetched {
    /// The object still has the version the caller knows: no body was transferred.
    NotModified,
    /// The object's bytes, and its version when the store has one (an S3 ETag).
    Object {
        /// The whole object.
        bytes: Blob,
        /// An opaque version: equal versions mean equal bytes. `None` when the store keeps
        /// none, and then nothing should be cached on its word.
        version: Option<String>,
    },
}

/// How a store is reached: passed when it is opened ([`open_with`]), never kept in global
/// state, so two stores of one process can differ.
///
/// ```
/// use bams3_core::storage::StoreOptions;
/// let opts = StoreOptions { endpoint_url: Some("http://127.0.0.1:9000".into()), ..Default::default() };
/// assert!(!opts.no_sign_request);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Endpoint of an S3-compatible store (`http://127.0.0.1:9000`); `AWS_ENDPOINT_URL` is also
    /// honoured. Either one turns on path-style addressing, which such stores need.
    pub endpoint_url: Option<String>,
    /// Send unsigned requests (public buckets), skipping the credential chain.
    pub no_sign_request: bool,
}

/// An object store rooted at one directory or prefix.
///
/// Every method documents what it guarantees; the behavioural suite in
/// `bams3-core/tests/storage_conformance.rs` checks each back end against them.
///
/// ```
/// use bams3_core::storage::{LocalStorage, Storage};
/// let dir = std::env::temp_dir().join(format!("bams3-doc-{}", std::process::id()));
/// let s = LocalStorage::new(&dir);
/// s.put("a/b.txt", b"hello").unwrap();
/// s.flush().unwrap();
/// assert_eq!(&*s.get("a/b.txt").unwrap(), b"hello");
/// assert_eq!(s.get_range("a/b.txt", 1..3).unwrap(), b"el");
/// assert_eq!(s.get_ranges("a/b.txt", &[0..1, 4..5]).unwrap(), [b"h".to_vec(), b"o".to_vec()]);
/// assert!(s.any_under("a/").unwrap());
/// assert!(s.put("../escape", b"x").is_err());
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub trait Storage: Send + Sync {
    /// Human-readable root (a path or `s3://bucket/prefix`), used in messages.
    fn root(&self) -> String;

    /// A name for this store's contents that is the same in every process and differs between
    /// stores (the root, plus the endpoint for S3): caches key their entries by it.
    fn namespace(&self) -> String {
        self.root()
    }

    /// The whole object, as it was after some complete [`Storage::put`] (never a mix of two).
    /// A missing object is [`Error::NotFound`].
    fn get(&self, key: &str) -> Result<Blob>;

    /// Bytes `range` of an object: exactly `range.end - range.start` bytes. A range reaching
    /// past the end of the object is an error at once (it cannot succeed by retrying), never a
    /// short read; an empty range is empty bytes.
    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>>;

    /// Several ranges of one object, in the order asked, with [`Storage::get_range`]'s
    /// guarantees for each. A back end may merge neighbouring ranges and fetch them
    /// concurrently: callers ask for what they need and leave the planning here. The default
    /// reads them one after the other.
    fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        ranges
            .iter()
            .map(|r| self.get_range(key, r.clone()))
            .collect()
    }

    /// The whole object unless its version is still `known` (then [`Fetched::NotModified`],
    /// without its bytes). Stores without versions always return the object, versionless.
    fn get_if_changed(&self, key: &str, known: Option<&str>) -> Result<Fetched> {
        let _ = known;
        Ok(Fetched::Object {
            bytes: self.get(key)?,
            version: None,
        })
    }

    /// Writes an object whole: no reader ever sees part of it. The write may complete in the
    /// background: it is certain only after a later [`Storage::flush`] succeeds, and a reader
    /// of this handle sees it at once. A failure of a background write is reported by the next
    /// call, by `flush` at the latest.
    fn put(&self, key: &str, data: &[u8]) -> Result<()>;

    /// The barrier: returns once every earlier `put` of this handle is stored, or with the
    /// first error among them. Writers call it before committing anything that claims those
    /// objects exist.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Keys starting with `prefix` (a key prefix, not necessarily a folder: `data/ch` matches
    /// `data/chr1/x`), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Whether any key starts with `prefix`, without listing them all (one small request).
    fn any_under(&self, prefix: &str) -> Result<bool> {
        Ok(!self.list(prefix)?.is_empty())
    }

    /// Removes an object; removing a missing object is not an error.
    fn delete(&self, key: &str) -> Result<()>;

    /// The object's size, or `None` when it does not exist.
    fn head(&self, key: &str) -> Result<Option<u64>>;

    /// How many objects a reader going through them in order should keep in flight: more
    /// where each read is a network round trip, so that round trips overlap.
    fn read_ahead(&self) -> usize {
        1
    }
}

macro_rules! forward_storage {
    ($ptr:ident) => {
        impl<S: Storage + ?Sized> Storage for $ptr<S> {
            fn root(&self) -> String {
                (**self).root()
            }
            fn namespace(&self) -> String {
                (**self).namespace()
            }
            fn get(&self, key: &str) -> Result<Blob> {
                (**self).get(key)
            }
            fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
                (**self).get_range(key, range)
            }
            fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
                (**self).get_ranges(key, ranges)
            }
            fn get_if_changed(&self, key: &str, known: Option<&str>) -> Result<Fetched> {
                (**self).get_if_changed(key, known)
            }
            fn put(&self, key: &str, data: &[u8]) -> Result<()> {
                (**self).put(key, data)
            }
            fn flush(&self) -> Result<()> {
                (**self).flush()
            }
            fn list(&self, prefix: &str) -> Result<Vec<String>> {
                (**self).list(prefix)
            }
            fn any_under(&self, prefix: &str) -> Result<bool> {
                (**self).any_under(prefix)
            }
            fn delete(&self, key: &str) -> Result<()> {
                (**self).delete(key)
            }
            fn head(&self, key: &str) -> Result<Option<u64>> {
                (**self).head(key)
            }
            fn read_ahead(&self) -> usize {
                (**self).read_ahead()
            }
        }
    };
}

// Wrappers hold their inner store by value: a shared or boxed store is a store too.
use std::sync::Arc;
forward_storage!(Arc);
forward_storage!(Box);

/// Rejects keys that are empty, absolute, or contain empty, `.` or `..` segments or backslashes,
/// so that no key can name anything outside the store's root.
///
/// ```
/// use bams3_core::storage::check_key;
/// assert!(check_key("data/chr1/x.chunk").is_ok());
/// for bad in ["", "/etc/passwd", "a/../../b", "a//b", "a\\b", "./a"] {
///     assert!(check_key(bad).is_err(), "{bad}");
/// }
/// ```
pub fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\\')
        || key.contains('\0')
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        return Err(Error::Invalid(format!(
            "refusing object key '{key}': it could escape the dataset"
        )));
    }
    Ok(())
}

/// Whether `location` names an S3 prefix or object rather than a local path.
pub fn is_s3(location: &str) -> bool {
    location.starts_with("s3://")
}

/// Opens the store at `location`: `s3://bucket/prefix` or a local directory. Other URI
/// schemes are rejected with a clear message rather than taken as a relative folder name.
///
/// ```
/// use bams3_core::storage::{open_with, StoreOptions};
/// let s = open_with("some/dir", &StoreOptions::default()).unwrap();
/// assert_eq!(s.root(), "some/dir");
/// assert!(open_with("gs://bucket/x", &StoreOptions::default()).is_err());
/// ```
pub fn open_with(location: &str, options: &StoreOptions) -> Result<Box<dyn Storage>> {
    if is_s3(location) {
        return Ok(Box::new(S3Storage::new(location, options)?));
    }
    if location.contains("://") {
        return Err(Error::Invalid(format!(
            "{location}: unsupported location (use a local path or s3://bucket/prefix)"
        )));
    }
    Ok(Box::new(LocalStorage::new(location)))
}

/// [`open_with`] with default options (the AWS configuration chain alone for S3).
pub fn open(location: &str) -> Result<Box<dyn Storage>> {
    open_with(location, &StoreOptions::default())
}

/// A streaming reader of one object named by a full location (`s3://bucket/key`), for inputs
/// read once from start to end; local paths are opened by the caller as files.
pub fn open_object(
    location: &str,
    options: &StoreOptions,
) -> Result<Box<dyn std::io::Read + Send>> {
    if is_s3(location) {
        return s3::open_reader(location, options);
    }
    Err(Error::Invalid(format!(
        "{location}: not an object location (expected s3://bucket/key)"
    )))
}
