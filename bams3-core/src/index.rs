//! `_index/spatial.json`: every chunk, where it is, and what is in it.
//!
//! A query reads the entries of this object near its region (all of it locally; on S3 only the
//! [`IndexSection`]s that `_metadata.json` locates), then fetches only the chunks whose
//! `[first_pos, max_end)` overlaps the region, and only the byte ranges of the streams it needs
//! (`streams` gives them, so no extra round trip to read a chunk header is needed).

use serde::{Deserialize, Serialize};

use crate::chunk::{CODEC_RANS1, CODEC_RAW, CODEC_ZSTD, ChunkStats, StreamId, StreamInfo};

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

    /// The index as JSON with one chunk entry per line and no other whitespace.
    ///
    /// Pretty-printing puts every number of every `streams` array on a line of its own, which
    /// made the index three times larger: on S3 the index is the biggest object a cold query
    /// fetches, so its size is request latency. One entry per line keeps it readable with
    /// `head`, `grep` and `jq`.
    ///
    /// ```
    /// use bams3_core::index::SpatialIndex;
    /// let idx: SpatialIndex = serde_json::from_str(r#"{"format":"bams3-spatial-index",
    ///   "version":"0.3.0","chunk_size":1048576,"references":[],"unmapped":[]}"#).unwrap();
    /// let json = idx.to_json();
    /// assert_eq!(serde_json::from_slice::<SpatialIndex>(&json).unwrap(), idx);
    /// ```
    pub fn to_json(&self) -> Vec<u8> {
        self.to_json_with_sections().0
    }

    /// [`SpatialIndex::to_json`], and the [`IndexSection`]s that locate runs of its entries
    /// in those bytes, for `_metadata.json`.
    pub fn to_json_with_sections(&self) -> (Vec<u8>, Vec<IndexSection>) {
        // Serialising plain structs of numbers and strings cannot fail.
        fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
            serde_json::to_writer(&mut *out, v).expect("index serialises");
        }
        let per_section =
            SECTION_MIN_ENTRIES.max(self.chunk_count().div_ceil(SECTION_TARGET_COUNT));
        let mut sections = Vec::new();
        let mut entries = |out: &mut Vec<u8>, reference: i64, chunks: &[ChunkEntry]| {
            out.push(b'[');
            for (n, run) in chunks.chunks(per_section).enumerate() {
                let offset = out.len() + 1;
                for (i, c) in run.iter().enumerate() {
                    out.extend_from_slice(if n == 0 && i == 0 { b"\n" } else { b",\n" });
                    put(out, c);
                }
                // The section starts at its first entry's `{` and ends after its last `}`.
                let offset = offset + usize::from(n > 0);
                let bytes = &out[offset..];
                sections.push(IndexSection {
                    reference,
                    first_pos: run.iter().map(|c| c.first_pos).min().unwrap_or(0),
                    max_end: run.iter().map(|c| c.max_end).max().unwrap_or(0),
                    offset: offset as u64,
                    length: bytes.len() as u64,
                    crc32: crc32fast::hash(bytes),
                });
            }
            out.push(b']');
        };
        let mut out = Vec::with_capacity(64 + self.chunk_count() * 640);
        out.extend_from_slice(b"{\"format\":");
        put(&mut out, &self.format);
        out.extend_from_slice(b",\"version\":");
        put(&mut out, &self.version);
        out.extend_from_slice(b",\"chunk_size\":");
        put(&mut out, &self.chunk_size);
        out.extend_from_slice(b",\"references\":[");
        for (i, r) in self.references.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            out.extend_from_slice(b"{\"name\":");
            put(&mut out, &r.name);
            out.extend_from_slice(b",\"length\":");
            put(&mut out, &r.length);
            out.extend_from_slice(b",\"chunks\":");
            entries(&mut out, i as i64, &r.chunks);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\n\"unmapped\":");
        entries(&mut out, -1, &self.unmapped);
        out.extend_from_slice(b"}\n");
        (out, sections)
    }

    /// Chunks in all, placed and unplaced.
    pub fn chunk_count(&self) -> usize {
        self.references
            .iter()
            .map(|r| r.chunks.len())
            .sum::<usize>()
            + self.unmapped.len()
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

/// Entries per section at least: about 20 kB of index, one small ranged GET.
const SECTION_MIN_ENTRIES: usize = 32;
/// Sections per dataset at most, about: bounds the table in `_metadata.json` (~60 bytes each)
/// for datasets of a million chunks, whose sections then grow instead.
const SECTION_TARGET_COUNT: usize = 1024;

/// Where a run of consecutive index entries of one reference lies in `_index/spatial.json`,
/// recorded in `_metadata.json` so a reader on S3 fetches only the entries near its region
/// with one ranged GET, instead of an index of every chunk of the dataset.
///
/// In JSON, an array `[reference, first_pos, max_end, offset, length, crc32]`. The bytes
/// `offset..offset + length` of the index are the section's entries separated by commas
/// (and newlines): wrapped in `[` `]` they parse as an array of [`ChunkEntry`].
///
/// ```
/// use bams3_core::index::IndexSection;
/// let s: IndexSection = serde_json::from_str("[0,100,5000,120,300,3735928559]").unwrap();
/// assert!(s.overlaps(0, 4999) && !s.overlaps(5000, 6000));
/// assert_eq!(serde_json::to_string(&s).unwrap(), "[0,100,5000,120,300,3735928559]");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "(i64, i64, i64, u64, u64, u32)",
    into = "(i64, i64, i64, u64, u64, u32)"
)]
pub struct IndexSection {
    /// Reference index, or -1 for the unplaced chunks.
    pub reference: i64,
    /// Smallest `first_pos` of its entries.
    pub first_pos: i64,
    /// Largest `max_end` of its entries.
    pub max_end: i64,
    /// Byte offset of its first entry in `_index/spatial.json`.
    pub offset: u64,
    /// Byte length, from the first entry's `{` to the last entry's `}`.
    pub length: u64,
    /// CRC-32 of those bytes.
    pub crc32: u32,
}

impl IndexSection {
    /// Whether an entry of this section can overlap the 0-based half-open `[beg, end)`.
    pub fn overlaps(&self, beg: i64, end: i64) -> bool {
        self.first_pos < end && self.max_end > beg
    }

    /// Parses the section's entries out of its bytes, after checking their CRC.
    pub fn parse(&self, bytes: &[u8]) -> std::result::Result<Vec<ChunkEntry>, String> {
        if bytes.len() as u64 != self.length || crc32fast::hash(bytes) != self.crc32 {
            return Err(format!(
                "index section at byte {} does not match _metadata.json (checksum)",
                self.offset
            ));
        }
        let mut wrapped = Vec::with_capacity(bytes.len() + 2);
        wrapped.push(b'[');
        wrapped.extend_from_slice(bytes);
        wrapped.push(b']');
        serde_json::from_slice(&wrapped)
            .map_err(|e| format!("index section at byte {}: {e}", self.offset))
    }
}

impl From<(i64, i64, i64, u64, u64, u32)> for IndexSection {
    fn from(t: (i64, i64, i64, u64, u64, u32)) -> Self {
        IndexSection {
            reference: t.0,
            first_pos: t.1,
            max_end: t.2,
            offset: t.3,
            length: t.4,
            crc32: t.5,
        }
    }
}

impl From<IndexSection> for (i64, i64, i64, u64, u64, u32) {
    fn from(s: IndexSection) -> Self {
        (
            s.reference,
            s.first_pos,
            s.max_end,
            s.offset,
            s.length,
            s.crc32,
        )
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
    /// Per stream, in stream-id order: where it lies in the object and how it is encoded.
    pub streams: Vec<StreamEntry>,
}

/// One stream of a chunk as the index records it, so a reader can fetch and decode it without
/// the chunk header: in JSON `[offset, stored_len, raw_len, crc32, codec]`. Indexes written
/// before v0.3.1 have no `codec` (four numbers); it is then what those writers always used:
/// raw for empty streams, rANS order-1 for qualities, zstd otherwise.
///
/// ```
/// use bams3_core::index::StreamEntry;
/// let s: StreamEntry = serde_json::from_str("[48,10,12,3735928559,1]").unwrap();
/// assert_eq!((s.offset, s.codec), (48, Some(1)));
/// let old: StreamEntry = serde_json::from_str("[48,10,12,3735928559]").unwrap();
/// assert_eq!(old.codec, None);
/// assert_eq!(serde_json::to_string(&s).unwrap(), "[48,10,12,3735928559,1]");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u64>", into = "Vec<u64>")]
pub struct StreamEntry {
    /// Byte offset of the stream in the chunk object.
    pub offset: u64,
    /// Stored (encoded) length.
    pub stored_len: u64,
    /// Decoded length.
    pub raw_len: u64,
    /// CRC-32 (IEEE) of the stored bytes.
    pub crc32: u32,
    /// The codec (`chunk::CODEC_*`), when the index records it.
    pub codec: Option<u8>,
}

impl TryFrom<Vec<u64>> for StreamEntry {
    type Error = String;
    fn try_from(v: Vec<u64>) -> std::result::Result<Self, String> {
        let codec = match v.get(4) {
            None => None,
            Some(&c) => {
                Some(u8::try_from(c).map_err(|_| format!("stream codec {c} out of range"))?)
            }
        };
        match v.as_slice() {
            [offset, stored_len, raw_len, crc32] | [offset, stored_len, raw_len, crc32, _] => {
                Ok(StreamEntry {
                    offset: *offset,
                    stored_len: *stored_len,
                    raw_len: *raw_len,
                    crc32: u32::try_from(*crc32)
                        .map_err(|_| format!("stream CRC {crc32} out of range"))?,
                    codec,
                })
            }
            _ => Err(format!(
                "a stream entry has 4 or 5 numbers, not {}",
                v.len()
            )),
        }
    }
}

impl From<StreamEntry> for Vec<u64> {
    fn from(s: StreamEntry) -> Self {
        let mut v = vec![s.offset, s.stored_len, s.raw_len, s.crc32 as u64];
        v.extend(s.codec.map(u64::from));
        v
    }
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
                .map(|s| StreamEntry {
                    offset: s.offset,
                    stored_len: s.stored_len,
                    raw_len: s.raw_len,
                    crc32: s.crc32,
                    codec: Some(s.codec),
                })
                .collect(),
        }
    }

    /// Whether a record of this chunk can overlap the 0-based half-open interval `[beg, end)`.
    pub fn overlaps(&self, beg: i64, end: i64) -> bool {
        self.count > 0 && self.first_pos < end && self.max_end > beg
    }

    /// The stream table as [`StreamInfo`]s (stream `i` is id `i`), with the recorded codec,
    /// or for indexes that predate it the one their writers used.
    pub fn stream_infos(&self) -> Vec<StreamInfo> {
        self.streams
            .iter()
            .enumerate()
            .map(|(i, s)| StreamInfo {
                id: i as u8,
                codec: s.codec.unwrap_or(match (s.stored_len, i) {
                    (0, _) => CODEC_RAW,
                    (_, i) if i == StreamId::Qual as usize => CODEC_RANS1,
                    _ => CODEC_ZSTD,
                }),
                crc32: s.crc32,
                offset: s.offset,
                stored_len: s.stored_len,
                raw_len: s.raw_len,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, first_pos: i64) -> ChunkEntry {
        ChunkEntry {
            path: path.into(),
            bin_start: 0,
            bin_end: 1 << 20,
            part: 0,
            count: 3,
            first_pos,
            last_pos: first_pos + 5,
            max_end: first_pos + 155,
            mapq_min: 0,
            mapq_max: 60,
            flags_all: 0,
            flags_any: 0x410,
            unmapped: 0,
            duplicates: 1,
            secondary: 0,
            bases: 450,
            raw_bytes: 1200,
            stored_bytes: 400,
            checksum: "crc32:0badf00d".into(),
            streams: vec![
                serde_json::from_str("[48,10,12,3735928559,1]").unwrap(),
                serde_json::from_str("[58,0,0,0]").unwrap(),
            ],
        }
    }

    #[test]
    fn json_round_trips_with_one_entry_per_line() {
        let mut idx = SpatialIndex {
            format: "bams3-spatial-index".into(),
            version: "0.3.0".into(),
            chunk_size: 1 << 20,
            references: vec![
                ReferenceChunks {
                    name: "chr\"1".into(),
                    length: 1000,
                    chunks: Vec::new(),
                },
                ReferenceChunks {
                    name: "chr2".into(),
                    length: 2000,
                    chunks: Vec::new(),
                },
                ReferenceChunks {
                    name: "empty".into(),
                    length: 5,
                    chunks: Vec::new(),
                },
            ],
            unmapped: Vec::new(),
        };
        idx.push(0, entry("data/chr1/a.chunk", 10));
        idx.push(0, entry("data/chr1/b.chunk", 20));
        idx.push(1, entry("data/chr2/a.chunk", 30));
        idx.push(-1, entry("data/_unmapped/a.chunk", -1));
        let json = idx.to_json();
        assert_eq!(serde_json::from_slice::<SpatialIndex>(&json).unwrap(), idx);
        let text = String::from_utf8(json).unwrap();
        // Every entry on a line of its own, and nothing else pretty-printed.
        let entry_lines = text.lines().filter(|l| l.contains("\"path\"")).count();
        assert_eq!(entry_lines, idx.chunk_count());
        assert_eq!(idx.chunk_count(), 4);
        assert!(!text.contains(": ") && !text.contains("  "), "{text}");
        assert!(text.ends_with("}\n"));
        // Every chunk is in exactly one section, in index order, and each section's bytes
        // parse back to its entries.
        let (bytes, sections) = idx.to_json_with_sections();
        assert_eq!(bytes, text.as_bytes());
        let lists: Vec<(i64, &Vec<ChunkEntry>)> = idx
            .references
            .iter()
            .enumerate()
            .map(|(i, r)| (i as i64, &r.chunks))
            .chain([(-1, &idx.unmapped)])
            .collect();
        let mut got: Vec<(i64, ChunkEntry)> = Vec::new();
        for s in &sections {
            let b = &bytes[s.offset as usize..(s.offset + s.length) as usize];
            got.extend(s.parse(b).unwrap().into_iter().map(|e| (s.reference, e)));
        }
        let want: Vec<(i64, ChunkEntry)> = lists
            .iter()
            .flat_map(|(r, l)| l.iter().map(move |e| (*r, e.clone())))
            .collect();
        assert_eq!(got, want);
        assert_eq!(sections.len(), 3, "{sections:?}");
        assert_eq!((sections[0].first_pos, sections[0].max_end), (10, 175));
        // A changed byte is caught by the checksum.
        let s = &sections[0];
        let mut b = bytes[s.offset as usize..(s.offset + s.length) as usize].to_vec();
        b[10] ^= 1;
        assert!(s.parse(&b).unwrap_err().contains("checksum"));
        // And an index without any chunk.
        let empty = SpatialIndex::empty(&crate::Header::default(), "0.3.0", 1 << 20);
        assert_eq!(
            serde_json::from_slice::<SpatialIndex>(&empty.to_json()).unwrap(),
            empty
        );
    }

    #[test]
    fn long_references_are_cut_into_sections() {
        let mut idx = SpatialIndex::empty(&crate::Header::default(), "0.3.0", 1 << 20);
        idx.references.push(ReferenceChunks {
            name: "chr1".into(),
            length: 1 << 30,
            chunks: Vec::new(),
        });
        for i in 0..100 {
            idx.push(0, entry(&format!("data/chr1/{i}.chunk"), i * 1000));
        }
        let (bytes, sections) = idx.to_json_with_sections();
        assert_eq!(sections.len(), 4, "100 entries in sections of 32");
        let mut n = 0;
        for s in &sections {
            let e = s
                .parse(&bytes[s.offset as usize..(s.offset + s.length) as usize])
                .unwrap();
            assert_eq!(s.first_pos, e[0].first_pos);
            assert_eq!(s.max_end, e.last().unwrap().max_end);
            assert_eq!(e[0].path, format!("data/chr1/{n}.chunk"));
            n += e.len();
        }
        assert_eq!(n, 100);
        // A region selects only the sections near it.
        let hits: Vec<_> = sections
            .iter()
            .filter(|s| s.overlaps(40_000, 41_000))
            .collect();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].first_pos, 32_000);
    }
}
