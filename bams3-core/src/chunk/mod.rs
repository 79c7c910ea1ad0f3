//! Chunks: the objects holding a dataset's records, one per genomic bin part.
//!
//! A chunk is a small uncompressed header followed by one zstd-compressed stream per record
//! field. Splitting fields is what takes the data below BAM's size (each stream is homogeneous,
//! so it compresses far better than whole records) and lets a reader fetch and decode only the
//! streams it needs. The byte layout is specified in `docs/FORMAT.md`.

mod blocks;
mod decoder;
mod encoder;

pub use blocks::{
    BlockDirectory, BlockInfo, CODEC_BLOCKED, RECORDS_PER_BLOCK, RECORDS_PER_WIDE_BLOCK,
    block_area_start, blocked_streams,
};
pub(crate) use decoder::Resume;
pub use decoder::{Alignment, AlignmentCursor, ChunkData, OwnedRecords, RecordCursor};
pub use encoder::{ChunkStats, EncodedChunk, Profile, encode, encode_profile};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// First bytes of every v0.3 chunk.
pub const MAGIC: [u8; 4] = *b"B3CK";
/// Chunk layout version (0x0300 = format v0.3) of chunks without blocked streams.
pub const VERSION: u16 = 0x0300;
/// Chunk layout version of chunks with blocked streams ([`CODEC_BLOCKED`], format v0.3.1).
pub const VERSION_BLOCKED: u16 = 0x0301;
/// Fixed part of the chunk header, before the stream table.
const FIXED_HEADER_LEN: usize = 16;
/// Bytes per stream-table entry.
const STREAM_ENTRY_LEN: usize = 32;

/// Stream codec: bytes stored as they are.
pub const CODEC_RAW: u8 = 0;
/// Stream codec: one zstd frame.
pub const CODEC_ZSTD: u8 = 1;
/// Stream codec: static order-1 rANS ([`crate::codec::rans`]), used for qualities.
pub const CODEC_RANS1: u8 = 2;
/// Block codec (archive profile): qualities with read contexts ([`crate::codec::quality`]);
/// only inside a blocked stream, whose directory holds the shared model.
pub const CODEC_QUAL_CONTEXT: u8 = 4;
/// Block codec (archive profile): bases with an adaptive context model
/// ([`crate::codec::bases`]); only inside a blocked stream.
pub const CODEC_BASES: u8 = 5;
/// Stream codec (archive profile) of the mate stream: reads whose mate lies later in the chunk
/// name it, and the mate's fields are derived ([`crate::codec::mates`]); a zstd frame after
/// the LEB128 length of the coded bytes. Decoding needs the reference and position streams.
pub const CODEC_MATE_PAIRS: u8 = 6;
/// Stream codec (archive profile) of the name stream: the names of the reads the mate stream
/// derives (codec [`CODEC_MATE_PAIRS`]) are left out; framed as codec 6. Decoding needs the
/// mate stream.
pub const CODEC_NAME_PAIRS: u8 = 7;
/// Stream codec (archive profile) of the tag stream: one zstd frame per tag and type
/// ([`crate::codec::tags`]). Decoding needs only the record count.
pub const CODEC_TAG_COLUMNS: u8 = 8;

/// The record field streams of a chunk, in storage order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamId {
    /// Reference index, `i32` LE per record.
    RefId = 0,
    /// Position delta from the previous record, zig-zag LEB128.
    Pos = 1,
    /// Mapping quality, one byte per record.
    Mapq = 2,
    /// Stored BAI bin XOR the bin computed from position and CIGAR, `u16` LE (almost all zero).
    Bin = 3,
    /// SAM flag, `u16` LE.
    Flag = 4,
    /// Read names, each NUL-terminated.
    Name = 5,
    /// Number of stored CIGAR operations, LEB128.
    CigarLen = 6,
    /// CIGAR operations, `u32` LE (BAM encoding).
    Cigar = 7,
    /// Sequence length, LEB128.
    SeqLen = 8,
    /// Bases, 4-bit packed as in BAM, `ceil(len/2)` bytes per record.
    Seq = 9,
    /// Phred qualities, `len` bytes per record (0xFF runs for missing).
    Qual = 10,
    /// Mate reference (delta from the record's), mate position (delta) and template length,
    /// three zig-zag LEB128 values per record.
    Mate = 11,
    /// Length of the tag data, LEB128.
    AuxLen = 12,
    /// Tags, BAM-encoded, in their original order.
    Aux = 13,
}

/// Number of streams in a v0.3 chunk.
pub const N_STREAMS: usize = 14;

impl StreamId {
    /// All streams in storage order.
    pub const ALL: [StreamId; N_STREAMS] = [
        StreamId::RefId,
        StreamId::Pos,
        StreamId::Mapq,
        StreamId::Bin,
        StreamId::Flag,
        StreamId::Name,
        StreamId::CigarLen,
        StreamId::Cigar,
        StreamId::SeqLen,
        StreamId::Seq,
        StreamId::Qual,
        StreamId::Mate,
        StreamId::AuxLen,
        StreamId::Aux,
    ];

    /// Short name used in the index and in messages.
    pub fn name(self) -> &'static str {
        [
            "ref_id",
            "pos",
            "mapq",
            "bin",
            "flag",
            "name",
            "cigar_len",
            "cigar",
            "seq_len",
            "seq",
            "qual",
            "mate",
            "aux_len",
            "aux",
        ][self as usize]
    }
}

/// A set of streams a reader wants decoded.
///
/// ```
/// use bams3_core::chunk::{Fields, StreamId};
/// assert!(Fields::ALL.contains(StreamId::Qual));
/// assert!(!Fields::COVERAGE.contains(StreamId::Qual));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields(u16);

impl Fields {
    /// Every stream: what rebuilding whole records needs.
    pub const ALL: Fields = Fields((1 << N_STREAMS) - 1);
    /// What coverage/depth needs: reference, position, flag, MAPQ, CIGAR and read length.
    pub const COVERAGE: Fields = Fields(
        1 << StreamId::RefId as u16
            | 1 << StreamId::Pos as u16
            | 1 << StreamId::Flag as u16
            | 1 << StreamId::Mapq as u16
            | 1 << StreamId::CigarLen as u16
            | 1 << StreamId::Cigar as u16
            | 1 << StreamId::SeqLen as u16,
    );
    /// What `flagstat` needs: flag, MAPQ and the mate stream (its reference delta).
    pub const FLAGSTAT: Fields = Fields(
        1 << StreamId::Flag as u16 | 1 << StreamId::Mapq as u16 | 1 << StreamId::Mate as u16,
    );
    /// What locating, filtering and rebuilding a record's placement needs: reference,
    /// position, flag, MAPQ, bin, CIGAR (long ones resolved from their `CG` tag, so the tags
    /// too) and read length. A query decodes at least these ([`crate::dataset::Query::with_fields`]).
    pub const LOCATION: Fields = Fields(
        Fields::COVERAGE.0
            | 1 << StreamId::Bin as u16
            | 1 << StreamId::AuxLen as u16
            | 1 << StreamId::Aux as u16,
    );

    /// Whether `id` is in the set.
    pub fn contains(self, id: StreamId) -> bool {
        self.0 & (1 << id as u16) != 0
    }

    /// The set with `id` added.
    pub fn with(self, id: StreamId) -> Fields {
        Fields(self.0 | 1 << id as u16)
    }

    /// The streams of both sets.
    ///
    /// ```
    /// use bams3_core::chunk::{Fields, StreamId};
    /// let f = Fields::FLAGSTAT.union(Fields::COVERAGE);
    /// assert!(f.contains(StreamId::Mate) && f.contains(StreamId::Cigar));
    /// assert!(!f.contains(StreamId::Qual));
    /// ```
    pub fn union(self, other: Fields) -> Fields {
        Fields(self.0 | other.0)
    }

    /// The streams to read to decode these from a chunk whose stream table is `streams`: a
    /// name stream of codec 7 needs the mate stream, and a mate stream of codec 6 the
    /// reference and position streams.
    ///
    /// ```
    /// use bams3_core::chunk::{CODEC_MATE_PAIRS, CODEC_NAME_PAIRS, Fields, StreamId, StreamInfo};
    /// let s = |id: StreamId, codec| StreamInfo {
    ///     id: id as u8, codec, crc32: 0, offset: 0, stored_len: 1, raw_len: 1,
    /// };
    /// let table = [s(StreamId::Name, CODEC_NAME_PAIRS), s(StreamId::Mate, CODEC_MATE_PAIRS)];
    /// let f = Fields::FLAGSTAT.needed_for(&table);
    /// assert!(f.contains(StreamId::Pos) && f.contains(StreamId::RefId));
    /// assert!(!f.contains(StreamId::Name));
    /// ```
    pub fn needed_for(self, streams: &[StreamInfo]) -> Fields {
        let codec = |id: StreamId| streams.iter().find(|s| s.id == id as u8).map(|s| s.codec);
        let mut f = self;
        if f.contains(StreamId::Name) && codec(StreamId::Name) == Some(CODEC_NAME_PAIRS) {
            f = f.with(StreamId::Mate);
        }
        if f.contains(StreamId::Mate) && codec(StreamId::Mate) == Some(CODEC_MATE_PAIRS) {
            f = f.with(StreamId::RefId).with(StreamId::Pos);
        }
        f
    }
}

/// Where one stream sits in a chunk and how to check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// Which field.
    pub id: u8,
    /// [`CODEC_RAW`], [`CODEC_ZSTD`], [`CODEC_RANS1`] or [`CODEC_BLOCKED`] (the entry then
    /// locates the stream's block directory, and `raw_len` is the whole stream's).
    pub codec: u8,
    /// CRC-32 (IEEE) of the stored bytes.
    pub crc32: u32,
    /// Byte offset of the stored bytes from the start of the chunk object.
    pub offset: u64,
    /// Stored (compressed) length.
    pub stored_len: u64,
    /// Decoded length.
    pub raw_len: u64,
}

/// The uncompressed header at the start of every chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Layout version: [`VERSION`], or [`VERSION_BLOCKED`] when some stream is blocked.
    pub version: u16,
    /// Records in the chunk.
    pub n_records: u32,
    /// One entry per stream, in [`StreamId`] order.
    pub streams: Vec<StreamInfo>,
}

impl ChunkHeader {
    /// Encoded length of a header with `n_streams` entries (including its trailing CRC).
    pub fn encoded_len(n_streams: usize) -> usize {
        FIXED_HEADER_LEN + STREAM_ENTRY_LEN * n_streams + 4
    }

    /// Serialises the header.
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.n_records.to_le_bytes());
        out.extend_from_slice(&(self.streams.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        for s in &self.streams {
            out.push(s.id);
            out.push(s.codec);
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&s.crc32.to_le_bytes());
            out.extend_from_slice(&s.offset.to_le_bytes());
            out.extend_from_slice(&s.stored_len.to_le_bytes());
            out.extend_from_slice(&s.raw_len.to_le_bytes());
        }
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// Parses and checks a header at the start of `bytes`; `what` names the chunk in errors.
    pub fn read(bytes: &[u8], what: &str) -> Result<ChunkHeader> {
        let bad = |d: String| Err(Error::corrupt(what, d));
        if bytes.len() < FIXED_HEADER_LEN {
            return bad("truncated chunk (shorter than its header)".into());
        }
        if bytes[..4] != MAGIC {
            return bad("not a BAMS3 v0.3 chunk (bad magic)".into());
        }
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let version = u16_at(4);
        if version >> 8 != VERSION >> 8 {
            return bad(format!("unsupported chunk version {version:#06x}"));
        }
        let n_records = u32_at(8);
        let n_streams = u16_at(12) as usize;
        let len = Self::encoded_len(n_streams);
        if bytes.len() < len {
            return bad("truncated chunk header".into());
        }
        let crc = u32_at(len - 4);
        if crc32fast::hash(&bytes[..len - 4]) != crc {
            return bad("chunk header checksum mismatch".into());
        }
        let streams = (0..n_streams)
            .map(|i| {
                let at = FIXED_HEADER_LEN + i * STREAM_ENTRY_LEN;
                StreamInfo {
                    id: bytes[at],
                    codec: bytes[at + 1],
                    crc32: u32_at(at + 4),
                    offset: u64_at(at + 8),
                    stored_len: u64_at(at + 16),
                    raw_len: u64_at(at + 24),
                }
            })
            .collect();
        Ok(ChunkHeader {
            version,
            n_records,
            streams,
        })
    }
}
