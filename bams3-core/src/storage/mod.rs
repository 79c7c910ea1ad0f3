//! Where dataset objects live. The format code sees only the [`Storage`] trait, never files or
//! buckets, so every command works the same on a local directory and on S3.
//!
//! Keys are relative, `/`-separated object names such as `data/chr1/000000000-001048576.chunk`.
//! Every implementation refuses keys that could escape the dataset's own root (see [`check_key`]).

mod local;
pub mod s3;

use std::ops::{Deref, Range};

pub use local::LocalStorage;
pub use s3::{set_s3_options, S3Options, S3Storage};

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

/// An object store holding one dataset, rooted at the dataset's directory or prefix.
///
/// ```
/// use bams3_core::storage::{LocalStorage, Storage};
/// let dir = std::env::temp_dir().join(format!("bams3-doc-{}", std::process::id()));
/// let s = LocalStorage::new(&dir);
/// s.put("a/b.txt", b"hello").unwrap();
/// assert_eq!(&*s.get("a/b.txt").unwrap(), b"hello");
/// assert_eq!(s.get_range("a/b.txt", 1..3).unwrap(), b"el");
/// assert!(s.put("../escape", b"x").is_err());
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub trait Storage: Send + Sync {
    /// Human-readable root (a path or `s3://bucket/prefix`), used in messages.
    fn root(&self) -> String;
    /// The whole object. Missing objects are [`Error::NotFound`].
    fn get(&self, key: &str) -> Result<Blob>;
    /// Bytes `range` of an object; a range past the end is an error, never a short read.
    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>>;
    /// Writes an object atomically: no reader ever sees a partially written object.
    fn put(&self, key: &str, data: &[u8]) -> Result<()>;
    /// Keys under `prefix` (a key prefix, not necessarily a directory), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Removes an object; removing a missing object is not an error.
    fn delete(&self, key: &str) -> Result<()>;
    /// The object's size, or `None` when it does not exist.
    fn head(&self, key: &str) -> Result<Option<u64>>;
    /// Whether every read is a network round trip (S3), so readers should fetch only the byte
    /// ranges they need and overlap requests, rather than map whole objects.
    fn is_remote(&self) -> bool {
        false
    }
    /// Like [`Storage::get_range`], for an object whose content `version` identifies (the
    /// index's checksum): a store may then serve it from a local cache without asking whether
    /// it changed.
    fn get_range_versioned(&self, key: &str, range: Range<u64>, version: &str) -> Result<Vec<u8>> {
        let _ = version;
        self.get_range(key, range)
    }
}

/// Rejects keys that are empty, absolute, or contain empty, `.` or `..` segments or backslashes,
/// so that no key can name anything outside the dataset's root.
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

/// Whether `location` names an S3 dataset or object rather than a local path.
pub fn is_s3(location: &str) -> bool {
    location.starts_with("s3://")
}

/// Opens the storage for a dataset location: `s3://bucket/prefix` (with the options last given
/// to [`set_s3_options`]) or a local directory. Other URI schemes are rejected with a clear
/// message rather than treated as a relative directory name.
pub fn open(location: &str) -> Result<Box<dyn Storage>> {
    if is_s3(location) {
        return Ok(Box::new(S3Storage::new(location, &s3::s3_options())?));
    }
    if location.contains("://") {
        return Err(Error::Invalid(format!(
            "{location}: unsupported location (use a local path or s3://bucket/prefix)"
        )));
    }
    Ok(Box::new(LocalStorage::new(location)))
}
