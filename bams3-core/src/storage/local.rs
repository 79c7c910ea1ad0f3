//! Datasets in a local directory. Reads go through memory maps; writes go to a temporary file
//! that is renamed into place, so a crash never leaves a half-written object under its name.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{check_key, Blob, Storage};
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
        let path = self.path(key)?;
        let mut file = fs::File::open(&path).map_err(|e| Error::io(self.name(key), e))?;
        let len = range.end.saturating_sub(range.start) as usize;
        let mut buf = vec![0; len];
        file.seek(SeekFrom::Start(range.start))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| Error::io(self.name(key), e))?;
        Ok(buf)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.path(key)?;
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
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(dir.display().to_string(), e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(dir.display().to_string(), e))?;
                let path = entry.path();
                if path.is_dir() {
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
