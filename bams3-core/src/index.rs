//! `_index/spatial.json`: every chunk, where it is, and what is in it.
//!
//! A query reads this once, then fetches only the chunks whose `[first_pos, max_end)` overlaps
//! the region, and only the byte ranges of the streams it needs (`streams` gives them, so no
//! extra round trip to read a chunk header is needed).

use serde::{Deserialize, Serialize};

use crate::chunk::{ChunkStats, StreamId, StreamInfo, CODEC_RANS1, CODEC_RAW, CODEC_ZSTD};

/// The spatial index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpatialIndex {
    /// `"bams3-spatial-index"`.
    pub format: String,
    /// Format version, `"0.3.0"`.
    pub version: String,
    /// Bin span in bases.
    pub chunk_size: u64,
    /// Chunks of placed records, per reference, in reference index order.
    pub references: Vec<ReferenceChunks>,
    /// Chunks of unplaced records (reference `*`), in input order.
    pub unmapped: Vec<ChunkEntry>,
}

impl SpatialIndex {
    /// An index with no chunks for the references of `header`.
    pub fn empty(header: &crate::Header, version: &str, chunk_size: u64) -> Self {
        SpatialIndex {
            format: "bams3-spatial-index".into(),
            version: version.into(),
            chunk_size,
            references: header
                .references
                .iter()
                .map(|r| ReferenceChunks {
                    name: r.name.clone(),
                    length: r.length,
                    chunks: Vec::new(),
                })
                .collect(),
            unmapped: Vec::new(),
        }
    }

    /// Files `entry` under reference `ref_id`, or with the unplaced chunks when `ref_id` names
    /// no reference (negative or out of range).
    pub fn push(&mut self, ref_id: i64, entry: ChunkEntry) {
        match usize::try_from(ref_id)
            .ok()
            .and_then(|i| self.references.get_mut(i))
        {
            Some(r) => r.chunks.push(entry),
            None => self.unmapped.push(entry),
        }
    }
}

/// The chunks of one reference, sorted by bin then part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceChunks {
    /// Reference name.
    pub name: String,
    /// Reference length.
    pub length: u64,
    /// Chunks.
    pub chunks: Vec<ChunkEntry>,
}

/// One chunk object and the statistics of its records.
///
/// ```
/// use bams3_core::index::ChunkEntry;
/// let e: ChunkEntry = serde_json::from_str(r#"{"path":"data/chr1/000000000-001048576.chunk",
///  "bin_start":0,"bin_end":1048576,"part":0,"count":2,"first_pos":10,"last_pos":20,"max_end":120,
///  "mapq_min":0,"mapq_max":60,"flags_all":0,"flags_any":16,"unmapped":0,"duplicates":0,
///  "secondary":0,"bases":200,"raw_bytes":700,"stored_bytes":300,"checksum":"crc32:00000000",
///  "streams":[[572,10,8,123]]}"#).unwrap();
/// assert!(e.overlaps(100, 200));
/// assert!(!e.overlaps(120, 200));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkEntry {
    /// Object key relative to the dataset root.
    pub path: String,
    /// Start of the genomic bin (0-based, inclusive).
    pub bin_start: i64,
    /// End of the genomic bin (exclusive).
    pub bin_end: i64,
    /// Part number within the bin (0 for the first).
    pub part: u32,
    /// Records.
    pub count: u64,
    /// Smallest start position (0-based).
    pub first_pos: i64,
    /// Largest start position (0-based).
    pub last_pos: i64,
    /// Largest exclusive end of any record (htslib `bam_endpos`).
    pub max_end: i64,
    /// Smallest MAPQ.
    pub mapq_min: u8,
    /// Largest MAPQ.
    pub mapq_max: u8,
    /// Flag bits set on every record.
    pub flags_all: u16,
    /// Flag bits set on at least one record.
    pub flags_any: u16,
    /// Records flagged unmapped.
    pub unmapped: u64,
    /// Records flagged duplicate.
    pub duplicates: u64,
    /// Records flagged secondary or supplementary.
    pub secondary: u64,
    /// Bases.
    pub bases: u64,
    /// BAM-encoded size of the records.
    pub raw_bytes: u64,
    /// Size of the chunk object.
    pub stored_bytes: u64,
    /// `crc32:` and the CRC-32 of the whole object, 8 lower-case hex digits.
    pub checksum: String,
    /// Per stream, in stream-id order: `[offset, stored_len, raw_len, crc32]`.
    pub streams: Vec<[u64; 4]>,
}

impl ChunkEntry {
    /// Builds the entry for a stored chunk.
    pub fn new(
        path: String,
        bin: (i64, i64, u32),
        stats: &ChunkStats,
        streams: &[StreamInfo],
        bytes: &[u8],
    ) -> Self {
        ChunkEntry {
            path,
            bin_start: bin.0,
            bin_end: bin.1,
            part: bin.2,
            count: stats.count,
            first_pos: stats.first_pos,
            last_pos: stats.last_pos,
            max_end: stats.max_end,
            mapq_min: stats.mapq_min,
            mapq_max: stats.mapq_max,
            flags_all: stats.flags_all,
            flags_any: stats.flags_any,
            unmapped: stats.unmapped,
            duplicates: stats.duplicates,
            secondary: stats.secondary,
            bases: stats.bases,
            raw_bytes: stats.bam_bytes,
            stored_bytes: bytes.len() as u64,
            checksum: format!("crc32:{:08x}", crc32fast::hash(bytes)),
            streams: streams
                .iter()
                .map(|s| [s.offset, s.stored_len, s.raw_len, s.crc32 as u64])
                .collect(),
        }
    }

    /// Whether a record of this chunk can overlap the 0-based half-open interval `[beg, end)`.
    pub fn overlaps(&self, beg: i64, end: i64) -> bool {
        self.count > 0 && self.first_pos < end && self.max_end > beg
    }

    /// The stream table as [`StreamInfo`]s (stream `i` is id `i`; empty streams are raw).
    pub fn stream_infos(&self) -> Vec<StreamInfo> {
        self.streams
            .iter()
            .enumerate()
            .map(|(i, s)| StreamInfo {
                id: i as u8,
                codec: match (s[1], i) {
                    (0, _) => CODEC_RAW,
                    (_, i) if i == StreamId::Qual as usize => CODEC_RANS1,
                    _ => CODEC_ZSTD,
                },
                crc32: s[3] as u32,
                offset: s[0],
                stored_len: s[1],
                raw_len: s[2],
            })
            .collect()
    }
}
