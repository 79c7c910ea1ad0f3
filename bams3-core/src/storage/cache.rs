//! A local cache in front of any store, as a wrapper: [`CachedStore`].
//!
//! The wrapper knows nothing of datasets either: its [`CachePolicy`] says which object's
//! version stands for the whole store (a dataset's `_metadata.json`, which its writer replaces
//! last), which objects are cached whole, and whether ranges of the others are cached too. The
//! dataset layer sets the policy; back ends only report versions ([`Storage::get_if_changed`]).
//! A store that keeps no versions (a local directory) is passed through: nothing is cached on
//! its word.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Blob, Fetched, Storage};
use crate::{Error, Result};

/// The local cache directory: `$XDG_CACHE_HOME/bams3`, else `~/.cache/bams3`.
///
/// ```
/// if let Some(dir) = bams3_core::storage::cache_dir() {
///     assert!(dir.ends_with("bams3"));
/// }
/// ```
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

/// Removes the metadata and range caches; returns the bytes freed.
///
/// ```no_run
/// let freed = bams3_core::storage::clear_cache().unwrap();
/// println!("{freed} bytes freed");
/// ```
pub fn clear_cache() -> Result<u64> {
    let Some(dir) = cache_dir() else {
        return Ok(0);
    };
    fn size(p: &Path) -> u64 {
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

/// What a [`CachedStore`] keeps, and on whose word.
///
/// ```
/// use bams3_core::storage::CachePolicy;
/// let p = CachePolicy {
///     validator: "_metadata.json".into(),
///     whole: vec!["_header.json".into()],
///     ranges_of: vec!["_index/spatial.json".into()],
///     other_ranges: false,
/// };
/// assert!(p.whole.contains(&"_header.json".to_string()));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePolicy {
    /// The object whose version stands for every other object's: revalidated with one
    /// conditional read (a `304` when unchanged) the first time a handle reads it; while its
    /// version is the one an entry was cached under, that entry is used without a request.
    pub validator: String,
    /// Objects cached whole (revalidated by their own version when the validator changed).
    pub whole: Vec<String>,
    /// Objects of which ranges are cached.
    pub ranges_of: Vec<String>,
    /// Whether ranges of every other object are cached too (`--cache-chunks`).
    pub other_ranges: bool,
}

/// A store whose reads go through a local cache first, per a [`CachePolicy`].
///
/// ```
/// use bams3_core::storage::{CachePolicy, CachedStore, LocalStorage, Storage};
/// let dir = std::env::temp_dir().join(format!("bams3-cache-doc-{}", std::process::id()));
/// let inner = LocalStorage::new(&dir);
/// inner.put("meta", b"v1").unwrap();
/// let cached = CachedStore::new(inner, CachePolicy { validator: "meta".into(), ..Default::default() }, None);
/// assert_eq!(&*cached.get("meta").unwrap(), b"v1");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct CachedStore<S> {
    inner: S,
    policy: CachePolicy,
    /// Folder of this store's whole objects and their versions (`None`: no cache).
    meta_dir: Option<PathBuf>,
    /// Folder of its cached ranges of other objects.
    range_dir: Option<PathBuf>,
    /// The validator's version as this handle read it, and whether the cached copy was
    /// confirmed current (a `304`): entries cached under it are then trusted.
    validated: Mutex<Option<(String, bool)>>,
}

impl<S: Storage> CachedStore<S> {
    /// Wraps `inner`; the cache lives under `root` (default [`cache_dir`]), in folders named
    /// after `inner`'s [`Storage::namespace`].
    pub fn new(inner: S, policy: CachePolicy, root: Option<PathBuf>) -> Self {
        let id = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(inner.namespace().as_bytes());
            hex::encode(&h.finalize()[..16])
        };
        let root = root.or_else(cache_dir);
        CachedStore {
            meta_dir: root.as_ref().map(|d| d.join(CACHE_SUBDIRS[0]).join(&id)),
            range_dir: root.as_ref().map(|d| d.join(CACHE_SUBDIRS[1]).join(&id)),
            inner,
            policy,
            validated: Mutex::new(None),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn meta_paths(&self, name: &str) -> Option<(PathBuf, PathBuf)> {
        let dir = self.meta_dir.as_ref()?;
        let name = name.replace('/', "%2F");
        Some((dir.join(&name), dir.join(format!("{name}.etag"))))
    }

    /// A cached whole object or range: (body, its own version, the validator version it was
    /// cached under).
    fn cached(&self, name: &str) -> Option<(Vec<u8>, String, String)> {
        let (body, tag) = self.meta_paths(name)?;
        let tag = std::fs::read_to_string(tag).ok()?;
        let (version, under) = tag.split_once('\n')?;
        let body = std::fs::read(body).ok()?;
        Some((body, version.to_string(), under.trim_end().to_string()))
    }

    /// Stores an entry; failures only cost a later request.
    fn store(&self, name: &str, body: &[u8], version: &str, under: &str) {
        let Some((path, tag)) = self.meta_paths(name) else {
            return;
        };
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        // The version file is written after the body and removed before it is rewritten, so
        // a body and a version that do not belong together are never both present.
        let _ = std::fs::remove_file(&tag);
        if write_atomic(&path, body).is_ok() {
            let _ = write_atomic(&tag, format!("{version}\n{under}\n").as_bytes());
        }
    }

    fn validated(&self) -> Option<(String, bool)> {
        self.validated.lock().ok().and_then(|v| v.clone())
    }

    fn set_validated(&self, version: String, confirmed: bool) {
        if let Ok(mut v) = self.validated.lock() {
            *v = Some((version, confirmed));
        }
    }

    /// The cached entry a `NotModified` answer refers to: a store answers so only to a
    /// version we sent, which came from that entry.
    fn expect_cached(
        &self,
        cached: Option<(Vec<u8>, String, String)>,
    ) -> Result<(Vec<u8>, String, String)> {
        cached.ok_or_else(|| {
            Error::io(
                self.inner.root(),
                io::Error::other("unexpected 304 Not Modified"),
            )
        })
    }

    fn get_validator(&self, key: &str) -> Result<Blob> {
        let cached = self.cached(key);
        match self
            .inner
            .get_if_changed(key, cached.as_ref().map(|c| c.1.as_str()))?
        {
            Fetched::NotModified => {
                let (body, version, _) = self.expect_cached(cached)?;
                self.set_validated(version, true);
                Ok(Blob::Owned(body))
            }
            Fetched::Object { bytes, version } => {
                let version = version.unwrap_or_default();
                if !version.is_empty() {
                    self.store(key, &bytes, &version, &version);
                }
                self.set_validated(version, false);
                Ok(bytes)
            }
        }
    }

    fn get_whole(&self, key: &str) -> Result<Blob> {
        let cached = self.cached(key);
        let validated = self.validated();
        if let (Some((v, true)), Some((body, _, under))) = (&validated, &cached)
            && !v.is_empty()
            && v == under
        {
            return Ok(Blob::Owned(body.clone()));
        }
        let under = validated.map(|(v, _)| v).filter(|v| !v.is_empty());
        match self
            .inner
            .get_if_changed(key, cached.as_ref().map(|c| c.1.as_str()))?
        {
            Fetched::NotModified => {
                let (body, version, _) = self.expect_cached(cached)?;
                if let Some(m) = &under {
                    self.store(key, &body, &version, m);
                }
                Ok(Blob::Owned(body))
            }
            Fetched::Object { bytes, version } => {
                if let (Some(version), Some(m)) = (version, &under) {
                    self.store(key, &bytes, &version, m);
                }
                Ok(bytes)
            }
        }
    }

    /// Where a range is cached: `None` when the policy does not cache it or no validator
    /// version is known yet.
    fn range_entry(&self, key: &str, range: &Range<u64>) -> Option<RangeEntry> {
        let (under, _) = self.validated()?;
        if under.is_empty() {
            return None;
        }
        if self.policy.ranges_of.iter().any(|k| k == key) {
            return Some(RangeEntry::Meta(
                format!("{key}@{}-{}", range.start, range.end),
                under,
            ));
        }
        if !self.policy.other_ranges || key == self.policy.validator {
            return None;
        }
        let dir = self.range_dir.as_ref()?;
        let version: String = under
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let name = format!(
            "{}-{}-{}-{version}",
            key.replace('/', "%2F"),
            range.start,
            range.end
        );
        Some(RangeEntry::File(dir.join(name)))
    }

    fn read_entry(&self, entry: &RangeEntry, len: u64) -> Option<Vec<u8>> {
        let body = match entry {
            RangeEntry::Meta(name, under) => {
                let (body, _, cached_under) = self.cached(name)?;
                (cached_under == *under).then_some(body)?
            }
            RangeEntry::File(path) => std::fs::read(path).ok()?,
        };
        (body.len() as u64 == len).then_some(body)
    }

    fn write_entry(&self, entry: &RangeEntry, body: &[u8]) {
        match entry {
            RangeEntry::Meta(name, under) => self.store(name, body, "", under),
            RangeEntry::File(path) => {
                if let Some(dir) = path.parent()
                    && std::fs::create_dir_all(dir).is_ok()
                {
                    let _ = write_atomic(path, body);
                }
            }
        }
    }
}

/// A cache slot for one range.
enum RangeEntry {
    /// Beside the whole objects, stamped with the validator version.
    Meta(String, String),
    /// A file named after the range and the validator version.
    File(PathBuf),
}

fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

impl<S: Storage> Storage for CachedStore<S> {
    fn root(&self) -> String {
        self.inner.root()
    }

    fn namespace(&self) -> String {
        self.inner.namespace()
    }

    fn get(&self, key: &str) -> Result<Blob> {
        if key == self.policy.validator {
            return self.get_validator(key);
        }
        if self.policy.whole.iter().any(|k| k == key) {
            return self.get_whole(key);
        }
        self.inner.get(key)
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        let mut parts = self.get_ranges(key, std::slice::from_ref(&range))?;
        Ok(parts.pop().unwrap_or_default())
    }

    fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        let entries: Vec<Option<RangeEntry>> =
            ranges.iter().map(|r| self.range_entry(key, r)).collect();
        let mut out: Vec<Option<Vec<u8>>> = ranges
            .iter()
            .zip(&entries)
            .map(|(r, e)| {
                e.as_ref()
                    .and_then(|e| self.read_entry(e, r.end.saturating_sub(r.start)))
            })
            .collect();
        let missing: Vec<usize> = (0..ranges.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let want: Vec<Range<u64>> = missing.iter().map(|&i| ranges[i].clone()).collect();
            // One call for every miss, so the back end still merges and overlaps them.
            let got = self.inner.get_ranges(key, &want)?;
            for (i, body) in missing.into_iter().zip(got) {
                if let Some(e) = &entries[i] {
                    self.write_entry(e, &body);
                }
                out[i] = Some(body);
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    fn get_if_changed(&self, key: &str, known: Option<&str>) -> Result<Fetched> {
        self.inner.get_if_changed(key, known)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.inner.put(key, data)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix)
    }

    fn any_under(&self, prefix: &str) -> Result<bool> {
        self.inner.any_under(prefix)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key)
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        self.inner.head(key)
    }

    fn read_ahead(&self) -> usize {
        self.inner.read_ahead()
    }
}
