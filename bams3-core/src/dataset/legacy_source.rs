//! Upstream v0.1/v0.2 datasets as a chunk source of their own: an index presented from their
//! metadata (with placeholder statistics, which `Dataset::proven` keeps away from the index
//! shortcuts), and chunks decoded by [`crate::legacy`].

use std::sync::{Arc, OnceLock};

use super::Dataset;
use super::open::Source;
use crate::index::{ChunkEntry, SpatialIndex};
use crate::legacy::{self, LegacyChunk, LegacyDataset};
use crate::metadata::{Compression, Metadata, Source as InputSource, Statistics};
use crate::storage::Storage;
use crate::{Error, Record, Result};

/// Presents an upstream v0.1/v0.2 dataset through the v0.3 index: each legacy chunk becomes
/// an entry whose reads may extend anywhere past its start (upstream recorded no end), so
/// queries look back through every earlier chunk of the reference.
pub(super) fn present(storage: Arc<dyn Storage>, ds: LegacyDataset) -> Dataset {
    let entry = |c: &LegacyChunk| ChunkEntry {
        path: c.path.clone(),
        bin_start: c.start,
        bin_end: c.end,
        part: 0,
        count: c.reads,
        // Records without a position (-1) may sit in the first chunk of a reference.
        first_pos: if c.start == 0 { -1 } else { c.start },
        last_pos: c.end,
        max_end: i64::MAX,
        mapq_min: 0,
        mapq_max: u8::MAX,
        flags_all: 0,
        flags_any: u16::MAX,
        unmapped: 0,
        duplicates: 0,
        secondary: 0,
        bases: 0,
        raw_bytes: 0,
        stored_bytes: 0,
        checksum: c.checksum.clone().unwrap_or_default(),
        streams: Vec::new(),
    };
    let mut index = SpatialIndex::empty(&ds.header, &ds.version, 0);
    for c in &ds.chunks {
        index.push(c.ref_id as i64, entry(c));
    }
    let total: u64 = ds.chunks.iter().map(|c| c.reads).sum();
    let unplaced: u64 = index.unmapped.iter().map(|c| c.count).sum();
    let metadata = Metadata {
        format: "bams3".into(),
        version: ds.version.clone(),
        created: String::new(),
        created_by: "bams3-go or the Python proof of concept".into(),
        source: InputSource {
            file: if ds.one_based {
                "stdin".into()
            } else {
                String::new()
            },
            format: "legacy".into(),
            fingerprint: None,
        },
        statistics: Statistics {
            total_reads: total,
            mapped_reads: total - unplaced,
            unmapped_reads: unplaced,
            ..Statistics::default()
        },
        chunk_size: 0,
        compression: Compression {
            algorithm: ds.compression.clone(),
            level: 0,
            profile: None,
        },
        chunk_count: ds.chunks.len() as u64,
        sorted_input: false,
        index_sections: Vec::new(),
        header: None,
    };
    Dataset {
        storage,
        metadata,
        header: ds.header.clone(),
        index: OnceLock::from(index),
        source: Source::Legacy(ds),
    }
}

/// The records of one upstream chunk that `keep` accepts, in position order.
pub(super) fn chunk_records(
    ds: &LegacyDataset,
    storage: &dyn Storage,
    entry: &ChunkEntry,
    mut keep: impl FnMut(&Record) -> bool,
) -> Result<Vec<Record>> {
    let chunk = ds
        .chunks
        .iter()
        .find(|c| c.path == entry.path)
        .ok_or_else(|| Error::NotFound(entry.path.clone()))?;
    let bytes = storage.get(&entry.path)?;
    let what = format!("{}/{}", storage.root(), entry.path);
    let mut records = legacy::decode_chunk(&bytes, chunk, ds).map_err(|e| match e {
        Error::Corrupt { detail, .. } => Error::corrupt(&what, detail),
        e => e,
    })?;
    // Upstream chunks can hold several sorted runs (stdin flushes); order them.
    records.retain(|r| keep(r));
    records.sort_by_key(|r| r.pos());
    Ok(records)
}
