//! Datasets in a local directory. Reads go through memory maps; writes go to a temporary file
//! that is renamed into place, so a crash never leaves a half-written object under its name.

use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{Blob, Storage, check_key};
use crate::{Error, Result};

/// A dataset stored as a directory tree; object keys are relative paths.
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// Storage rooted at `root` (created on first write).
    pub fn new(root: impl AsRef<Path>) -> Self {
        LocalStorage {
            root: root.as_ref().to_path_buf(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn name(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    /// Refuses a key whose folders below the root include a symbolic link: writing or deleting
    /// through one would touch files outside the dataset, which [`check_key`] alone cannot see.
    /// (The root itself may be a link: it is where the user put the dataset.)
    fn no_links(&self, key: &str) -> Result<()> {
        let mut dir = self.root.clone();
        let segments: Vec<&str> = key.split('/').collect();
        for seg in &segments[..segments.len().saturating_sub(1)] {
            dir.push(seg);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => return Err(link_error(&dir)),
                Ok(_) => {}
                // Nothing further down exists yet, so nothing further down is a link.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(dir.display().to_string(), e)),
            }
        }
        Ok(())
    }
}

fn link_error(path: &Path) -> Error {
    Error::Invalid(format!(
        "{}: a symbolic link inside the dataset (datasets hold plain files and folders only); refusing to follow it",
        path.display()
    ))
}

impl Storage for LocalStorage {
    fn root(&self) -> String {
        self.root.display().to_string()
    }

    fn get(&self, key: &str) -> Result<Blob> {
        let path = self.path(key)?;
        let file = fs::File::open(&path).map_err(|e| Error::io(self.name(key), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(self.name(key), e))?
            .len();
        if len == 0 {
            // Empty files cannot be mapped on every platform.
            return Ok(Blob::Owned(Vec::new()));
        }
        // SAFETY: dataset objects are written once via rename and never modified in place; a
        // concurrent writer replacing the file swaps the inode, leaving this mapping intact.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(self.name(key), e))?;
        Ok(Blob::Mapped(map))
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        let mut parts = self.get_ranges(key, std::slice::from_ref(&range))?;
        Ok(parts.pop().unwrap_or_default())
    }

    fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        // One open and one map for all of them: a chunk's streams are a dozen ranges.
        let blob = self.get(key)?;
        ranges
            .iter()
            .map(|r| {
                if r.end <= r.start {
                    return Ok(Vec::new());
                }
                blob.get(r.start as usize..r.end as usize)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| {
                        Error::io(
                            self.name(key),
                            std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                format!(
                                    "range {}..{} reaches past the end of the object ({} bytes)",
                                    r.start,
                                    r.end,
                                    blob.len()
                                ),
                            ),
                        )
                    })
            })
            .collect()
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.path(key)?;
        self.no_links(key)?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        }
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("object"),
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            // No fsync per object: it costs more than the conversion itself on many small
            // chunks. A crash can leave torn chunks only in a dataset whose metadata was never
            // written (incomplete), or be caught by the stream checksums.
            f.write_all(data)?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(self.name(key), e)
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        // Only the folder the prefix names can hold matching keys (the prefix's last segment
        // may be part of a name: `data/ch` matches `data/chr1/...`).
        let start = match prefix.rsplit_once('/') {
            Some((dir, _)) => {
                check_key(dir)?;
                self.no_links(&format!("{dir}/x"))?;
                self.root.join(dir)
            }
            None => self.root.clone(),
        };
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(dir.display().to_string(), e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(dir.display().to_string(), e))?;
                let path = entry.path();
                // The entry's own type, not its target's: a link is never followed, so a
                // listing (and `bams3 rm` after it) cannot reach outside the root.
                let kind = entry
                    .file_type()
                    .map_err(|e| Error::io(path.display().to_string(), e))?;
                if kind.is_symlink() {
                    return Err(link_error(&path));
                }
                if kind.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.starts_with(prefix) {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        self.no_links(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(self.name(key), e)),
        }
        // Directories are not objects: one left empty goes too (not the root), so removing a
        // dataset's objects leaves no tree of empty folders behind. `remove_dir` fails on a
        // folder that still holds something, which ends the walk.
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != self.root && d.starts_with(&self.root)) {
            if fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(self.name(key), e)),
        }
    }
}
