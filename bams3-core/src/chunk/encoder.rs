//! Splitting records into field streams and compressing them into one chunk object.

use super::blocks::{BlockDirectory, BlockInfo, CODEC_BLOCKED, RECORDS_PER_BLOCK, blocked_streams};
use super::{
    CODEC_BASES, CODEC_MATE_PAIRS, CODEC_NAME_PAIRS, CODEC_QUAL_CONTEXT, CODEC_RANS1, CODEC_RAW,
    CODEC_TAG_COLUMNS, CODEC_ZSTD, ChunkHeader, N_STREAMS, StreamId, StreamInfo, VERSION,
    VERSION_BLOCKED,
};
use crate::codec::quality::{self, ReadShape};
use crate::codec::{bases, mates, rans, tags, varint};
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

/// Which codecs a chunk's streams get (`docs/FORMAT.md`, "Profiles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// zstd for every stream but the qualities (order-1 rANS): fast to write and to decode.
    #[default]
    Default,
    /// Smallest: qualities with read contexts (codec 4), bases with a context model (codec
    /// 5), in the record blocks of chunks of more than 256 records; zstd elsewhere.
    Archive,
}

impl Profile {
    /// The name recorded in `_metadata.json` and taken by `convert --profile`.
    ///
    /// ```
    /// use bams3_core::chunk::Profile;
    /// assert_eq!(Profile::parse(Profile::Archive.name()), Some(Profile::Archive));
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Archive => "archive",
        }
    }

    /// The profile called `name`, if there is one.
    pub fn parse(name: &str) -> Option<Profile> {
        match name {
            "default" => Some(Profile::Default),
            "archive" => Some(Profile::Archive),
            _ => None,
        }
    }

    /// The zstd level used when none is given: the archive profile spends time for size.
    pub fn default_level(self) -> i32 {
        match self {
            Profile::Default => 3,
            Profile::Archive => 19,
        }
    }

    /// The genomic span of a bin `bams3 convert` uses when none is given. Archives use the
    /// widest: sparse data (RNA-seq, targeted panels) then makes fewer, fuller chunks, which
    /// the context models and zstd compress better and whose headers and index entries cost
    /// less (RNA-seq test BAM: 21.2 MB at 1M, 12.7 MB at 8M); dense data is cut into parts of
    /// the same byte budget either way, so its chunks barely change.
    ///
    /// ```
    /// use bams3_core::chunk::Profile;
    /// assert_eq!(Profile::Default.default_chunk_size(), 1 << 20);
    /// assert_eq!(Profile::Archive.default_chunk_size(), 8 << 20);
    /// ```
    pub fn default_chunk_size(self) -> u64 {
        match self {
            Profile::Default => 1 << 20,
            Profile::Archive => 8 << 20,
        }
    }
}

/// Encodes `records` (in the order given) into a chunk compressed at zstd `level`, with the
/// default profile.
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
    encode_profile(records, level, Profile::Default)
}

/// Encodes `records` into a chunk with the codecs of `profile`.
///
/// ```
/// use bams3_core::{chunk, Record};
/// let recs = vec![Record::from_sam_fields_for_doc(); 300];
/// let c = chunk::encode_profile(&recs, 19, chunk::Profile::Archive).unwrap();
/// let data = chunk::ChunkData::decode(&c.bytes, chunk::Fields::ALL, "doc").unwrap();
/// assert_eq!(data.records().count(), 300);
/// ```
pub fn encode_profile(records: &[Record], level: i32, profile: Profile) -> Result<EncodedChunk> {
    let mut s: [Vec<u8>; N_STREAMS] = Default::default();
    let mut stats = ChunkStats::empty();
    let mut prev_pos = 0i64;
    let blocked = records.len() > RECORDS_PER_BLOCK as usize;
    // Where every run of RECORDS_PER_BLOCK records starts in each stream's raw bytes (the
    // block sizes are multiples of it).
    let mut cuts: Vec<[usize; N_STREAMS]> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if blocked && i % RECORDS_PER_BLOCK as usize == 0 {
            cuts.push(std::array::from_fn(|id| s[id].len()));
        }
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

    if blocked {
        cuts.push(std::array::from_fn(|id| s[id].len()));
    }
    // Archive: the mate and name streams code each pair once when some mate is in the chunk
    // (their stored bytes, taken by the loop below).
    let mut pairs = None;
    if profile == Profile::Archive {
        let links = mates::link(records);
        if links.iter().any(|&k| k > 0) {
            let zstd_err = |e| Error::Invalid(format!("zstd compression failed: {e}"));
            let names =
                mates::encode_names(records, &links, |c| compress(c, level)).map_err(zstd_err)?;
            let coded = mates::encode_mates(records, &links);
            let mut mate = Vec::new();
            varint::put(&mut mate, coded.len() as u64);
            mate.extend_from_slice(&compress(&coded, level).map_err(zstd_err)?);
            pairs = Some((mate, names));
        }
    }

    // Layout: header, whole streams in id order, the directories of blocked streams, then
    // the block area.
    let mut streams: Vec<StreamInfo> = Vec::with_capacity(N_STREAMS);
    let mut body = Vec::new();
    let mut offset = ChunkHeader::encoded_len(N_STREAMS) as u64;
    let mut pieces: Vec<(usize, Vec<Vec<u8>>, BlockDirectory)> = Vec::new();
    for (i, raw) in s.iter().enumerate() {
        let k = blocked_streams(profile)
            .iter()
            .find(|&&(id, _)| id as usize == i)
            .map(|&(_, k)| k);
        if let Some(k) = k.filter(|_| blocked && !raw.is_empty()) {
            let step = (k / RECORDS_PER_BLOCK) as usize;
            let mut at: Vec<usize> = cuts.iter().step_by(step).map(|c| c[i]).collect();
            if !(cuts.len() - 1).is_multiple_of(step) {
                at.push(raw.len());
            }
            let slices: Vec<&[u8]> = at.windows(2).map(|w| &raw[w[0]..w[1]]).collect();
            let shapes: Vec<&[Record]> = records.chunks(k as usize).collect();
            let (dir, stored) = encode_blocks(i, k, &slices, &shapes, level, profile)?;
            pieces.push((i, stored, dir));
            // Placeholder: the directory's place and bytes are known once the area is laid out.
            streams.push(StreamInfo {
                id: i as u8,
                codec: CODEC_BLOCKED,
                crc32: 0,
                offset: 0,
                stored_len: 0,
                raw_len: raw.len() as u64,
            });
            continue;
        }
        let paired = pairs.as_mut().and_then(|(mate, name)| match i {
            i if i == StreamId::Mate as usize => Some((CODEC_MATE_PAIRS, std::mem::take(mate))),
            i if i == StreamId::Name as usize => Some((CODEC_NAME_PAIRS, std::mem::take(name))),
            _ => None,
        });
        let (codec, stored) = if raw.is_empty() {
            (CODEC_RAW, Vec::new())
        } else if let Some(p) = paired {
            p
        } else if profile == Profile::Archive && i == StreamId::Aux as usize {
            let auxes: Vec<&[u8]> = records.iter().map(|r| r.aux()).collect();
            let coded = tags::encode(&auxes, |col| compress(col, level))
                .map_err(|e| Error::Invalid(format!("zstd compression failed: {e}")))?;
            (CODEC_TAG_COLUMNS, coded)
        } else if i == StreamId::Qual as usize {
            // Qualities have no long repeats for zstd to find; their cost is the entropy of
            // each value given the previous one, which order-1 rANS codes almost exactly.
            (CODEC_RANS1, rans::encode(raw))
        } else {
            (CODEC_ZSTD, compress_zstd(raw, level)?)
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
    if !pieces.is_empty() {
        lay_out_blocks(&mut streams, &mut pieces, &mut body, offset);
    }
    let version = if pieces.is_empty() {
        VERSION
    } else {
        VERSION_BLOCKED
    };
    let header = ChunkHeader {
        version,
        n_records,
        streams,
    };
    let mut bytes = Vec::with_capacity(ChunkHeader::encoded_len(N_STREAMS) + body.len());
    header.write(&mut bytes);
    bytes.extend_from_slice(&body);
    Ok(EncodedChunk {
        bytes,
        header,
        stats,
    })
}

fn compress_zstd(raw: &[u8], level: i32) -> Result<Vec<u8>> {
    compress(raw, level).map_err(|e| Error::Invalid(format!("zstd compression failed: {e}")))
}

/// Codes the record blocks of stream `id`: qualities with one rANS table shared by all
/// blocks (a table per block would cost ~2 % of their size), other streams as zstd frames.
/// Returns the directory (offsets still unset) and the stored blocks.
fn encode_blocks(
    id: usize,
    records_per_block: u32,
    slices: &[&[u8]],
    records: &[&[Record]],
    level: i32,
    profile: Profile,
) -> Result<(BlockDirectory, Vec<Vec<u8>>)> {
    let mut params = Vec::new();
    let archive = profile == Profile::Archive;
    let (inner_codec, stored): (u8, Vec<Vec<u8>>) = if archive && id == StreamId::Qual as usize {
        let shapes: Vec<Vec<ReadShape>> = records
            .iter()
            .map(|rs| {
                rs.iter()
                    .map(|r| ReadShape::from_flag(r.flag(), r.l_seq()))
                    .collect()
            })
            .collect();
        let mut counts = quality::Counts::default();
        for (s, sh) in slices.iter().zip(&shapes) {
            counts.add(s, sh);
        }
        let model = quality::EncodeModel::build(&counts, &mut params);
        let stored = slices
            .iter()
            .zip(&shapes)
            .map(|(s, sh)| {
                let mut out = Vec::new();
                if !s.is_empty() {
                    model.encode(s, sh, &mut out);
                }
                out
            })
            .collect();
        (CODEC_QUAL_CONTEXT, stored)
    } else if archive && id == StreamId::Seq as usize {
        let stored = slices
            .iter()
            .map(|s| {
                let mut out = Vec::new();
                if !s.is_empty() {
                    bases::encode(s, &mut out);
                }
                out
            })
            .collect();
        (CODEC_BASES, stored)
    } else if id == StreamId::Aux as usize {
        // Tags by column: each tag's values together, which zstd models far better than
        // the interleaved records, at the default level.
        let stored = records
            .iter()
            .zip(slices)
            .map(|(rs, s)| {
                if s.is_empty() {
                    return Ok(Vec::new());
                }
                let auxes: Vec<&[u8]> = rs.iter().map(|r| r.aux()).collect();
                tags::encode(&auxes, |col| compress(col, level))
                    .map_err(|e| Error::Invalid(format!("zstd compression failed: {e}")))
            })
            .collect::<Result<_>>()?;
        (CODEC_TAG_COLUMNS, stored)
    } else if id == StreamId::Qual as usize {
        let mut counts = rans::Counts::default();
        for s in slices {
            counts.add(s);
        }
        let table = rans::EncodeTable::build(&counts, &mut params);
        let stored = slices
            .iter()
            .map(|s| {
                let mut out = Vec::with_capacity(s.len() / 2 + 16);
                if !s.is_empty() {
                    rans::encode_with(&table, s, &mut out);
                }
                out
            })
            .collect();
        (CODEC_RANS1, stored)
    } else {
        let stored = slices
            .iter()
            .map(|s| {
                if s.is_empty() {
                    Ok(Vec::new())
                } else {
                    compress_zstd(s, level)
                }
            })
            .collect::<Result<_>>()?;
        (CODEC_ZSTD, stored)
    };
    let blocks = slices
        .iter()
        .zip(&stored)
        .map(|(raw, st)| BlockInfo {
            offset: 0,
            stored_len: st.len() as u64,
            raw_len: raw.len() as u64,
            crc32: crc32fast::hash(st),
        })
        .collect();
    let dir = BlockDirectory {
        inner_codec,
        records_per_block,
        params,
        blocks,
    };
    Ok((dir, stored))
}

/// Places the directories after the whole streams (which end at `offset`) and the block area
/// after them, in record order: the blocks starting at a record before those starting at a
/// later one, wide blocks (names, tags) before narrow ones, then in stream order. The blocks a
/// run of records needs are then one byte range or two. Fills in the offsets of blocks and
/// directories.
fn lay_out_blocks(
    streams: &mut [StreamInfo],
    pieces: &mut [(usize, Vec<Vec<u8>>, BlockDirectory)],
    body: &mut Vec<u8>,
    offset: u64,
) {
    // (first record, wider first, piece, block) in area order.
    let mut order: Vec<(u64, std::cmp::Reverse<u32>, usize, usize)> = pieces
        .iter()
        .enumerate()
        .flat_map(|(p, (_, stored, dir))| {
            let k = dir.records_per_block;
            (0..stored.len()).map(move |b| (b as u64 * u64::from(k), std::cmp::Reverse(k), p, b))
        })
        .collect();
    order.sort_unstable();
    // The directories' LEB128 offsets depend on where the area starts, which depends on the
    // directories' length: iterate to the fixed point (it only grows, so it ends in a few).
    let mut area = offset;
    let dirs = loop {
        let mut at = area;
        for &(_, _, p, b) in &order {
            let (_, stored, dir) = &mut pieces[p];
            dir.blocks[b].offset = at;
            at += stored[b].len() as u64;
        }
        let dirs: Vec<Vec<u8>> = pieces
            .iter()
            .map(|(_, _, dir)| {
                let mut d = Vec::new();
                dir.write(&mut d);
                d
            })
            .collect();
        let next = offset + dirs.iter().map(|d| d.len() as u64).sum::<u64>();
        if next == area {
            break dirs;
        }
        area = next;
    };
    let mut at = offset;
    for ((id, _, _), d) in pieces.iter().zip(&dirs) {
        let s = streams
            .iter_mut()
            .find(|s| s.id as usize == *id)
            .expect("placeholder");
        s.crc32 = crc32fast::hash(d);
        s.offset = at;
        s.stored_len = d.len() as u64;
        at += d.len() as u64;
        body.extend_from_slice(d);
    }
    for &(_, _, p, b) in &order {
        body.extend_from_slice(&pieces[p].1[b]);
    }
}
