//! Deleting a dataset: the way out of an interrupted conversion, which leaves chunk objects
//! but no `_metadata.json` (so every reader refuses it as incomplete).

use crate::metadata;
use crate::storage::Storage;
use crate::{Error, Result};

/// Deletes every object of the dataset in `storage` and returns how many there were.
///
/// An incomplete dataset (no `_metadata.json`) is always removed; a complete one only with
/// `force`, since it may be the only copy of the reads. `_metadata.json` goes first, so a
/// removal that fails half-way leaves an incomplete dataset, never one that looks whole with
/// chunks missing. Only keys under the storage's root are listed, so nothing outside the
/// dataset's own directory or prefix is touched.
///
/// ```
/// use bams3_core::dataset::remove;
/// use bams3_core::storage::{LocalStorage, Storage};
/// let dir = std::env::temp_dir().join(format!("bams3-rm-doc-{}", std::process::id()));
/// let s = LocalStorage::new(&dir);
/// s.put("data/chr1/000000000-001048576.chunk", b"left by a crash").unwrap();
/// assert_eq!(remove(&s, false).unwrap(), 1);
/// assert!(s.list("").unwrap().is_empty());
/// # let _ = std::fs::remove_dir_all(&dir);
/// ```
pub fn remove(storage: &dyn Storage, force: bool) -> Result<usize> {
    let root = storage.root();
    let keys = storage.list("")?;
    if keys.is_empty() {
        return Err(Error::NotFound(format!("{root}: no BAMS3 dataset")));
    }
    // A location that holds anything else is not (only) a dataset: a mistyped path or prefix
    // must never become a recursive delete.
    if let Some(other) = keys.iter().find(|k| !is_dataset_key(k)) {
        return Err(Error::Invalid(format!(
            "{root}: holds '{other}', which is not part of a BAMS3 dataset; nothing deleted"
        )));
    }
    let complete = keys.iter().any(|k| k == metadata::METADATA_KEY);
    if complete && !force {
        return Err(Error::Invalid(format!(
            "{root}: a complete dataset; refusing to delete it without --force"
        )));
    }
    if complete {
        storage.delete(metadata::METADATA_KEY)?;
    }
    for k in keys.iter().filter(|k| *k != metadata::METADATA_KEY) {
        storage.delete(k)?;
    }
    Ok(keys.len())
}

/// Whether `key` is one a dataset writer makes: metadata, header, index, chunks, shard
/// manifests, or the temporary name (`.NAME.tmp-PID`) an object had while a local write was
/// under way.
fn is_dataset_key(key: &str) -> bool {
    // `_shards/`: the manifests of a sharded conversion that was never finalized.
    if key.starts_with("data/") || key.starts_with("_index/") || key.starts_with("_shards/") {
        return true;
    }
    let name = key
        .strip_prefix('.')
        .and_then(|k| k.rsplit_once(".tmp-").map(|(n, _)| n))
        .unwrap_or(key);
    name == metadata::METADATA_KEY || name == metadata::HEADER_KEY
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;

    fn dir(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("bams3-rm-{tag}-{}", std::process::id()))
    }

    #[test]
    fn complete_datasets_need_force_and_go_metadata_first() {
        let d = dir("complete");
        let s = LocalStorage::new(&d);
        for k in [
            "_metadata.json",
            "_header.json",
            "_index/spatial.json",
            "data/chr1/000000000-001048576.chunk",
        ] {
            s.put(k, b"x").unwrap();
        }
        let e = remove(&s, false).unwrap_err().to_string();
        assert!(e.contains("without --force"), "{e}");
        assert_eq!(
            s.list("").unwrap().len(),
            4,
            "nothing deleted without --force"
        );
        assert_eq!(remove(&s, true).unwrap(), 4);
        assert!(s.list("").unwrap().is_empty());
        // The emptied folders went with the objects; only the root is left.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
        std::fs::remove_dir(&d).unwrap();
    }

    #[test]
    fn foreign_objects_stop_it_before_any_delete() {
        let d = dir("foreign");
        let s = LocalStorage::new(&d);
        s.put("data/chr1/a.chunk", b"x").unwrap();
        s.put("notes.txt", b"mine").unwrap();
        for force in [false, true] {
            let e = remove(&s, force).unwrap_err().to_string();
            assert!(e.contains("'notes.txt'"), "{e}");
        }
        assert_eq!(s.list("").unwrap().len(), 2);
        std::fs::remove_dir_all(&d).unwrap();
        assert!(matches!(remove(&s, false), Err(Error::NotFound(_))));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_inside_the_dataset_stops_it_before_any_delete() {
        let d = dir("link");
        let outside = dir("link-outside");
        std::fs::create_dir_all(outside.join("keep")).unwrap();
        std::fs::write(outside.join("keep/precious.chunk"), b"not yours").unwrap();
        let s = LocalStorage::new(&d);
        s.put("data/chr2/000000000-001048576.chunk", b"x").unwrap();
        std::os::unix::fs::symlink(&outside, d.join("data/chr1")).unwrap();
        for force in [false, true] {
            let e = remove(&s, force).unwrap_err().to_string();
            assert!(e.contains("symbolic link"), "{e}");
        }
        assert!(outside.join("keep/precious.chunk").exists());
        assert!(d.join("data/chr2/000000000-001048576.chunk").exists());
        // Nor can a write or a delete go through the link.
        assert!(s.put("data/chr1/keep/new.chunk", b"x").is_err());
        assert!(s.delete("data/chr1/keep/precious.chunk").is_err());
        assert!(outside.join("keep/precious.chunk").exists());
        assert!(!outside.join("keep/new.chunk").exists());
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn dataset_keys() {
        for k in [
            "_metadata.json",
            "._metadata.json.tmp-42",
            "_header.json",
            "_index/spatial.json",
            "data/_unmapped/unmapped.chunk",
            "data/chr1/.000000000-001048576.chunk.tmp-7",
            "_shards/2-of-4.json",
        ] {
            assert!(is_dataset_key(k), "{k}");
        }
        for k in ["notes.txt", "_metadata.json.bak", "sample.bam", "datax/y"] {
            assert!(!is_dataset_key(k), "{k}");
        }
    }
}
