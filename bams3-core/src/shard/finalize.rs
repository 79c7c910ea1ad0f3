//! `finalize`: the commit of a sharded conversion, once every shard is done.

use std::collections::HashSet;

use super::manifest::{SHARDS_PREFIX, ShardManifest, manifest_key};
use crate::dataset::{BinKey, WriteOptions, WriteSummary, commit};
use crate::index::ChunkEntry;
use crate::metadata;
use crate::storage::Storage;
use crate::{Error, Result};

/// What [`finalize`] committed.
#[derive(Debug, Clone)]
pub struct FinalizeSummary {
    /// The committed dataset, as a single conversion reports it.
    pub written: WriteSummary,
    /// Shards assembled.
    pub shards: u32,
}

/// Checks that the manifests of all N shards are present and agree (input fingerprint,
/// header, options, N), that they cover the bins without gap or overlap, and that every chunk
/// they list is stored and nothing else is; then commits the dataset exactly as a single
/// conversion does (`_header.json`, the index and its sections, the htslib objects, and
/// `_metadata.json` last) and removes the manifests. When a check fails, the error names the
/// missing or inconsistent shards and nothing is written.
///
/// ```no_run
/// use bams3_core::{shard::finalize, storage};
/// let out = storage::open("sample.bams3").unwrap();
/// let s = finalize(&*out).unwrap();
/// println!("{} shards, {} chunks", s.shards, s.written.metadata.chunk_count);
/// ```
pub fn finalize(storage: &dyn Storage) -> Result<FinalizeSummary> {
    let root = storage.root();
    if storage.head(metadata::METADATA_KEY)?.is_some() {
        return Err(Error::Invalid(format!(
            "{root}: already a complete dataset (finalized); nothing to do"
        )));
    }
    let keys = storage.list(SHARDS_PREFIX)?;
    if keys.is_empty() {
        return Err(Error::Invalid(format!(
            "{root}: no shard manifests ({SHARDS_PREFIX}K-of-N.json): run `bams3 convert --shard K/N` for each shard first"
        )));
    }
    let mut manifests = Vec::with_capacity(keys.len());
    for key in &keys {
        let m = ShardManifest::from_json(&storage.get(key)?, &format!("{root}/{key}"))?;
        if manifest_key(m.shard, m.of) != *key || m.shard == 0 || m.shard > m.of {
            return Err(Error::corrupt(
                format!("{root}/{key}"),
                format!("holds the manifest of shard {}/{}", m.shard, m.of),
            ));
        }
        manifests.push(m);
    }
    manifests.sort_by_key(|m| (m.of, m.shard));
    let problems = disagreements(&manifests);
    if !problems.is_empty() {
        return Err(Error::Invalid(format!(
            "{root}: cannot finalize: {}; nothing written",
            problems.join("; ")
        )));
    }
    let stored: HashSet<String> = storage.list("data/")?.into_iter().collect();
    let mut claimed = HashSet::new();
    let mut missing = Vec::new();
    for m in &manifests {
        for c in &m.chunks {
            if !stored.contains(&c.entry.path) {
                missing.push(format!("{} (shard {}/{})", c.entry.path, m.shard, m.of));
            }
            claimed.insert(c.entry.path.as_str());
        }
    }
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "{root}: cannot finalize: {} chunk(s) listed by a manifest are missing, first {}: run those shards again; nothing written",
            missing.len(),
            missing[0]
        )));
    }
    let unclaimed: Vec<&String> = stored
        .iter()
        .filter(|k| !claimed.contains(k.as_str()))
        .collect();
    if let Some(first) = unclaimed.iter().min() {
        return Err(Error::Invalid(format!(
            "{root}: cannot finalize: {} object(s) under data/ are in no shard manifest, first {first} (left by another conversion?): run the shard of its bins again, or `bams3 rm` and convert again; nothing written",
            unclaimed.len()
        )));
    }

    let m1 = &manifests[0];
    let opts = WriteOptions {
        chunk_size: m1.options.chunk_size,
        level: m1.options.level,
        part_bytes: m1.options.part_bytes as usize,
        profile: crate::metadata::profile_of(m1.options.profile.as_deref(), &root)?,
        source: m1.source.clone(),
        ..WriteOptions::default()
    };
    let mut entries: Vec<(BinKey, ChunkEntry)> = manifests
        .iter()
        .flat_map(|m| m.chunks.iter().map(|c| (c.bin.key(), c.entry.clone())))
        .collect();
    entries.sort_by_key(|(key, e)| (*key, e.part));
    let sorted = manifests.iter().all(|m| m.sorted);
    // The shards' pieces are not in their manifests: the commit reads them from the chunks.
    let written = commit(
        storage,
        &m1.header,
        &opts,
        &entries,
        sorted,
        crate::bamstream::pieces::PieceMap::new(),
    )?;
    // Committed: the manifests are no longer needed, and a dataset from shards should hold
    // the objects a single conversion writes. Removing them can fail without harm.
    for key in &keys {
        let _ = storage.delete(key);
    }
    let _ = storage.flush();
    Ok(FinalizeSummary {
        written,
        shards: m1.of,
    })
}

/// What keeps `manifests` (sorted by N, then K) from making one dataset, one item per shard.
fn disagreements(manifests: &[ShardManifest]) -> Vec<String> {
    let m1 = &manifests[0];
    let n = m1.of;
    let name = |m: &ShardManifest| format!("shard {}/{}", m.shard, m.of);
    let mut problems = Vec::new();
    let absent: Vec<String> = (1..=n)
        .filter(|k| !manifests.iter().any(|m| m.of == n && m.shard == *k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !absent.is_empty() {
        problems.push(format!("missing shard(s) {}", absent.join(", ")));
    }
    for m in &manifests[1..] {
        let differs = if m.of != n {
            Some(format!("is one of {} shards, not {n}", m.of))
        } else if m.fingerprint != m1.fingerprint {
            Some("is from another input (its size, header or index differ)".to_string())
        } else if m.source != m1.source {
            Some(format!("names another input ({})", m.source.file))
        } else if m.options != m1.options {
            Some("was converted with other options (chunk size, level or part size)".into())
        } else if m.header != m1.header {
            Some("has another header".into())
        } else {
            None
        };
        if let Some(d) = differs {
            problems.push(format!("{} {d} (vs {})", name(m), name(m1)));
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    // Contiguous shares: shard 1 from the first bin, each next one where the last ended, the
    // last to the end; and every chunk inside its shard's share.
    let mut expect = Some(super::plan::BinId {
        reference: 0,
        bin: 0,
    });
    for m in manifests {
        if Some(m.first) != expect {
            problems.push(format!(
                "{} does not start where the previous shard ended (another shard plan?)",
                name(m)
            ));
        }
        expect = m.end;
        let outside = m.chunks.iter().find(|c| {
            let k = c.bin.key();
            k < m.first.key()
                || m.end.is_some_and(|e| k >= e.key())
                || !c.entry.path.starts_with("data/")
        });
        if let Some(c) = outside {
            problems.push(format!(
                "{} lists {} outside its bins",
                name(m),
                c.entry.path
            ));
        }
    }
    if expect.is_some() {
        problems.push(format!("shard {n}/{n} does not reach the end of the input"));
    }
    problems
}
