//! Splitting records into field streams and compressing them into one chunk object.

use super::{ChunkHeader, StreamId, StreamInfo, CODEC_RANS1, CODEC_RAW, CODEC_ZSTD, N_STREAMS};
use crate::codec::{rans, varint};
use crate::record::{self, Record};
use crate::{Error, Result};

/// Summary statistics of the records in one chunk, recorded in the spatial index so that
/// queries can skip chunks (and `stats` can answer) without reading them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkStats {
    /// Records.
    pub count: u64,
    /// Smallest 0-based start position.
    pub first_pos: i64,
    /// Largest 0-based start position.
    pub last_pos: i64,
    /// Largest exclusive end (htslib `bam_endpos`), for finding reads that start earlier.
    pub max_end: i64,
    /// Smallest MAPQ.
    pub mapq_min: u8,
    /// Largest MAPQ.
    pub mapq_max: u8,
    /// Bitwise AND of all flags (a bit set here is set on every record).
    pub flags_all: u16,
    /// Bitwise OR of all flags (a bit clear here is clear on every record).
    pub flags_any: u16,
    /// Records with the unmapped flag.
    pub unmapped: u64,
    /// Records with the duplicate flag.
    pub duplicates: u64,
    /// Records with the secondary or supplementary flag.
    pub secondary: u64,
    /// Bases (sum of sequence lengths).
    pub bases: u64,
    /// Bytes of the records in BAM encoding (with `block_size`), before compression.
    pub bam_bytes: u64,
}

impl ChunkStats {
    fn empty() -> Self {
        ChunkStats {
            first_pos: i64::MAX,
            last_pos: i64::MIN,
            max_end: i64::MIN,
            mapq_min: u8::MAX,
            flags_all: u16::MAX,
            ..Default::default()
        }
    }

    /// Statistics of `records`.
    pub fn of(records: &[Record]) -> Self {
        let mut s = Self::empty();
        for r in records {
            s.add(r);
        }
        s.finish()
    }

    fn add(&mut self, r: &Record) {
        let (pos, flag) = (r.pos(), r.flag());
        self.count += 1;
        self.first_pos = self.first_pos.min(pos as i64);
        self.last_pos = self.last_pos.max(pos as i64);
        self.max_end = self.max_end.max(r.end());
        self.mapq_min = self.mapq_min.min(r.mapq());
        self.mapq_max = self.mapq_max.max(r.mapq());
        self.flags_all &= flag;
        self.flags_any |= flag;
        self.unmapped += u64::from(flag & record::flags::UNMAPPED != 0);
        self.duplicates += u64::from(flag & record::flags::DUPLICATE != 0);
        self.secondary +=
            u64::from(flag & (record::flags::SECONDARY | record::flags::SUPPLEMENTARY) != 0);
        self.bases += r.l_seq() as u64;
        self.bam_bytes += 4 + r.as_bytes().len() as u64;
    }

    fn finish(self) -> Self {
        if self.count == 0 {
            ChunkStats::default()
        } else {
            self
        }
    }
}

/// A chunk ready to store: its bytes, its header and the statistics of its records.
#[derive(Debug, Clone)]
pub struct EncodedChunk {
    /// The whole chunk object.
    pub bytes: Vec<u8>,
    /// Its parsed header (stream offsets point into `bytes`).
    pub header: ChunkHeader,
    /// Record statistics.
    pub stats: ChunkStats,
}

/// The bin derived from the record's own position, flag and stored CIGAR; the `bin` stream keeps
/// only the difference from it, so a decoder can restore the stored value exactly.
pub(super) fn expected_bin(pos: i32, flag: u16, raw_cigar: &[u8]) -> u16 {
    let rlen = if flag & record::flags::UNMAPPED != 0 {
        0
    } else {
        record::cigar_reference_len(raw_cigar)
    };
    record::reg2bin(pos as i64, pos as i64 + rlen.max(1))
}

thread_local! {
    /// One zstd context per thread: creating a context per stream costs more than compressing
    /// the small streams of a sparse chunk.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

fn compress(raw: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(l, _)| *l != level) {
            *c = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, z) = c.as_mut().expect("compressor just set");
        z.compress(raw)
    })
}

/// Encodes `records` (in the order given) into a chunk compressed at zstd `level`.
///
/// ```
/// use bams3_core::{chunk, Record};
/// let recs = vec![Record::from_sam_fields_for_doc()];
/// let c = chunk::encode(&recs, 3).unwrap();
/// let data = chunk::ChunkData::decode(&c.bytes, chunk::Fields::ALL, "doc").unwrap();
/// let back: Vec<Record> = data.records().collect::<Result<_, _>>().unwrap();
/// assert_eq!(back, recs);
/// ```
pub fn encode(records: &[Record], level: i32) -> Result<EncodedChunk> {
    let mut s: [Vec<u8>; N_STREAMS] = Default::default();
    let mut stats = ChunkStats::empty();
    let mut prev_pos = 0i64;
    for r in records {
        let (ref_id, pos, flag) = (r.ref_id(), r.pos(), r.flag());
        s[StreamId::RefId as usize].extend_from_slice(&ref_id.to_le_bytes());
        varint::put_signed(&mut s[StreamId::Pos as usize], pos as i64 - prev_pos);
        prev_pos = pos as i64;
        s[StreamId::Mapq as usize].push(r.mapq());
        let bin = r.bin() ^ expected_bin(pos, flag, r.raw_cigar());
        s[StreamId::Bin as usize].extend_from_slice(&bin.to_le_bytes());
        s[StreamId::Flag as usize].extend_from_slice(&flag.to_le_bytes());
        let name = &mut s[StreamId::Name as usize];
        name.extend_from_slice(r.name());
        name.push(0);
        varint::put(&mut s[StreamId::CigarLen as usize], r.n_cigar_op() as u64);
        s[StreamId::Cigar as usize].extend_from_slice(r.raw_cigar());
        varint::put(&mut s[StreamId::SeqLen as usize], r.l_seq() as u64);
        s[StreamId::Seq as usize].extend_from_slice(r.packed_seq());
        s[StreamId::Qual as usize].extend_from_slice(r.qual());
        let mate = &mut s[StreamId::Mate as usize];
        varint::put_signed(mate, r.next_ref_id() as i64 - ref_id as i64);
        varint::put_signed(mate, r.next_pos() as i64 - pos as i64);
        varint::put_signed(mate, r.tlen() as i64);
        varint::put(&mut s[StreamId::AuxLen as usize], r.aux().len() as u64);
        s[StreamId::Aux as usize].extend_from_slice(r.aux());

        stats.add(r);
    }
    let stats = stats.finish();
    let n_records = u32::try_from(records.len())
        .map_err(|_| Error::Invalid("too many records for one chunk".into()))?;

    let mut streams = Vec::with_capacity(N_STREAMS);
    let mut body = Vec::new();
    let mut offset = ChunkHeader::encoded_len(N_STREAMS) as u64;
    for (i, raw) in s.iter().enumerate() {
        let (codec, stored) = if raw.is_empty() {
            (CODEC_RAW, Vec::new())
        } else if i == StreamId::Qual as usize {
            // Qualities have no long repeats for zstd to find; their cost is the entropy of
            // each value given the previous one, which order-1 rANS codes almost exactly.
            (CODEC_RANS1, rans::encode(raw))
        } else {
            let z = compress(raw, level)
                .map_err(|e| Error::Invalid(format!("zstd compression failed: {e}")))?;
            (CODEC_ZSTD, z)
        };
        streams.push(StreamInfo {
            id: i as u8,
            codec,
            crc32: crc32fast::hash(&stored),
            offset,
            stored_len: stored.len() as u64,
            raw_len: raw.len() as u64,
        });
        offset += stored.len() as u64;
        body.extend_from_slice(&stored);
    }
    let header = ChunkHeader { n_records, streams };
    let mut bytes = Vec::with_capacity(offset as usize);
    header.write(&mut bytes);
    bytes.extend_from_slice(&body);
    Ok(EncodedChunk {
        bytes,
        header,
        stats,
    })
}
