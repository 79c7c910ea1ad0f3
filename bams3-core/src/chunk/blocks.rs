//! Record blocks: the big streams of a chunk cut at record boundaries into pieces that decode
//! on their own, so a region query decodes (and on S3 fetches) only the blocks holding the
//! records it returns.
//!
//! A blocked stream's stream-table entry (codec [`CODEC_BLOCKED`]) points at its *directory*;
//! the blocks themselves sit in the chunk's block area, after every stream-table range,
//! interleaved by record block (block 0 of each blocked stream, then block 1 of each, ...) so
//! that the blocks of a run of records are one contiguous byte range. `docs/FORMAT.md`
//! specifies the bytes.

use std::ops::Range;

use super::{
    CODEC_BASES, CODEC_QUAL_CONTEXT, CODEC_RANS1, CODEC_RAW, CODEC_TAG_COLUMNS, CODEC_ZSTD,
    Profile, StreamId,
};
use crate::codec::varint;
use crate::{Error, Result};

/// Stream codec: a directory of record blocks, each coded with the directory's inner codec.
pub const CODEC_BLOCKED: u8 = 3;

/// Records per block written by this library. Measured on the benchmark input (ART reads, a
/// 2 MiB-raw chunk holds ~6,500 records): 256-record blocks cost 0.2 % of the size (the rANS
/// table is shared by the blocks of a chunk; zstd on bases gains as much as it loses) and
/// cut what a 1 kb region decodes by ~20×; a block is then ~38 kB of qualities, close to a
/// BGZF block of BAM.
pub const RECORDS_PER_BLOCK: u32 = 256;

/// Records per block of names and tags in the default profile: they compress by their
/// repeats, which a 256-record block has too few of (measured in `docs/BENCHMARKS.md`), and
/// they decode fast, so their blocks are four times larger. A multiple of
/// [`RECORDS_PER_BLOCK`], so a block boundary of names and tags is one of every stream.
pub const RECORDS_PER_WIDE_BLOCK: u32 = 4 * RECORDS_PER_BLOCK;

/// The streams this library writes blocked in chunks of more than [`RECORDS_PER_BLOCK`]
/// records, with their records per block: where the bytes and the decoding time are
/// (qualities 59 % of the stored bytes and most of the CPU, bases 23 %; names and tags 12 %,
/// but decoded for every record of a chunk they are most of what a short query decodes).
/// The archive profile keeps names and tags whole (codecs 7 and 8 code them across the chunk).
///
/// ```
/// use bams3_core::chunk::{blocked_streams, Profile, StreamId};
/// assert!(blocked_streams(Profile::Default).iter().any(|&(id, _)| id == StreamId::Name));
/// assert_eq!(blocked_streams(Profile::Archive).len(), 2);
/// ```
pub fn blocked_streams(profile: Profile) -> &'static [(StreamId, u32)] {
    const DEFAULT: [(StreamId, u32); 4] = [
        (StreamId::Name, RECORDS_PER_WIDE_BLOCK),
        (StreamId::Seq, RECORDS_PER_BLOCK),
        (StreamId::Qual, RECORDS_PER_BLOCK),
        (StreamId::Aux, RECORDS_PER_WIDE_BLOCK),
    ];
    match profile {
        Profile::Default => &DEFAULT,
        Profile::Archive => &DEFAULT[1..3],
    }
}

/// Where the block area of a chunk starts: at the end of the last stream-table range (the block
/// area runs from there to the end of the object).
pub fn block_area_start(streams: &[super::StreamInfo]) -> u64 {
    streams
        .iter()
        .map(|s| s.offset.saturating_add(s.stored_len))
        .max()
        .unwrap_or(0)
}

/// Where one block of a blocked stream sits and how to check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Offset of the stored bytes from the start of the chunk object.
    pub offset: u64,
    /// Stored length.
    pub stored_len: u64,
    /// Decoded length.
    pub raw_len: u64,
    /// CRC-32 (IEEE) of the stored bytes.
    pub crc32: u32,
}

impl BlockInfo {
    /// The block's bytes in the chunk object.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.stored_len
    }
}

/// The directory of a blocked stream.
///
/// ```
/// use bams3_core::chunk::{BlockDirectory, BlockInfo, CODEC_ZSTD};
/// let dir = BlockDirectory {
///     inner_codec: CODEC_ZSTD,
///     records_per_block: 2,
///     params: vec![],
///     blocks: vec![
///         BlockInfo { offset: 100, stored_len: 9, raw_len: 20, crc32: 7 },
///         BlockInfo { offset: 120, stored_len: 5, raw_len: 10, crc32: 8 },
///     ],
/// };
/// let mut bytes = Vec::new();
/// dir.write(&mut bytes);
/// let back = BlockDirectory::parse(&bytes, 3, 30, "doc", "seq").unwrap();
/// assert_eq!(back.blocks, dir.blocks);
/// assert_eq!(back.block_of(2), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDirectory {
    /// Codec of every block: [`CODEC_RAW`], [`CODEC_ZSTD`], [`CODEC_RANS1`] (blocks then
    /// hold only the lanes; the frequency table is `params`), or in the archive profile
    /// [`CODEC_QUAL_CONTEXT`] (the model is `params`) or [`CODEC_BASES`].
    pub inner_codec: u8,
    /// Records per block (the last block may hold fewer).
    pub records_per_block: u32,
    /// Codec parameters shared by the blocks: the rANS frequency table, the quality model, or
    /// nothing.
    pub params: Vec<u8>,
    /// The blocks, in record order.
    pub blocks: Vec<BlockInfo>,
}

impl BlockDirectory {
    /// Serialises the directory (the stored bytes of the stream-table entry).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.inner_codec);
        varint::put(out, self.records_per_block as u64);
        varint::put(out, self.blocks.len() as u64);
        varint::put(out, self.params.len() as u64);
        out.extend_from_slice(&self.params);
        for b in &self.blocks {
            varint::put(out, b.offset);
            varint::put(out, b.stored_len);
            varint::put(out, b.raw_len);
            out.extend_from_slice(&b.crc32.to_le_bytes());
        }
    }

    /// Parses and checks a directory of a stream of `raw_len` decoded bytes in a chunk of
    /// `n_records`; `what` and `stream` name it in errors.
    pub fn parse(
        bytes: &[u8],
        n_records: usize,
        raw_len: u64,
        what: &str,
        stream: &str,
    ) -> Result<BlockDirectory> {
        let bad =
            |d: &str| Error::corrupt(what, format!("stream '{stream}': block directory: {d}"));
        let mut at = 0;
        let inner_codec = *bytes.first().ok_or_else(|| bad("empty"))?;
        at += 1;
        let allowed = [
            CODEC_RAW,
            CODEC_ZSTD,
            CODEC_RANS1,
            CODEC_QUAL_CONTEXT,
            CODEC_BASES,
            CODEC_TAG_COLUMNS,
        ];
        if !allowed.contains(&inner_codec) {
            return Err(bad(&format!("unknown block codec {inner_codec}")));
        }
        let next = |at: &mut usize| varint::get(bytes, at).ok_or_else(|| bad("truncated"));
        let records_per_block = next(&mut at)?;
        let n_blocks = next(&mut at)?;
        let records_per_block = u32::try_from(records_per_block)
            .ok()
            .filter(|&k| k > 0)
            .ok_or_else(|| bad("records per block out of range"))?;
        if n_blocks != (n_records as u64).div_ceil(records_per_block as u64) {
            return Err(bad("block count does not match the record count"));
        }
        let params_len = next(&mut at)?;
        let params = at
            .checked_add(usize::try_from(params_len).unwrap_or(usize::MAX))
            .and_then(|end| bytes.get(at..end))
            .ok_or_else(|| bad("truncated parameters"))?
            .to_vec();
        at += params.len();
        let mut blocks = Vec::with_capacity(n_blocks as usize);
        let mut total = 0u64;
        for _ in 0..n_blocks {
            let offset = next(&mut at)?;
            let stored_len = next(&mut at)?;
            let raw_len = next(&mut at)?;
            let crc = bytes.get(at..at + 4).ok_or_else(|| bad("truncated"))?;
            at += 4;
            if offset.checked_add(stored_len).is_none() {
                return Err(bad("block past any object's end"));
            }
            total = total
                .checked_add(raw_len)
                .ok_or_else(|| bad("lengths overflow"))?;
            blocks.push(BlockInfo {
                offset,
                stored_len,
                raw_len,
                crc32: u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]),
            });
        }
        if at != bytes.len() {
            return Err(bad("trailing bytes"));
        }
        if total != raw_len {
            return Err(bad("block lengths do not add up to the stream's length"));
        }
        let mut by_offset: Vec<Range<u64>> = blocks.iter().map(|b| b.range()).collect();
        by_offset.sort_by_key(|r| r.start);
        if by_offset.windows(2).any(|w| w[0].end > w[1].start) {
            return Err(bad("blocks overlap"));
        }
        Ok(BlockDirectory {
            inner_codec,
            records_per_block,
            params,
            blocks,
        })
    }

    /// The block holding record `record`.
    pub fn block_of(&self, record: usize) -> usize {
        record / self.records_per_block as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{ChunkData, ChunkHeader, Fields, VERSION_BLOCKED, encode};
    use crate::{Header, Record, sam};

    /// `n` records with varied lengths (empty sequences included) and tags.
    fn records(n: usize) -> Vec<Record> {
        let header = Header::from_sam_text("@SQ\tSN:c\tLN:100000000\n").unwrap();
        (0..n)
            .map(|i| {
                let len = [0usize, 1, 7, 150, 33][i % 5];
                let seq: String = (0..len).map(|j| b"ACGTN"[(i + j) % 5] as char).collect();
                let qual: String = (0..len)
                    .map(|j| (b'!' + ((i * 7 + j) % 40) as u8) as char)
                    .collect();
                let (seq, qual, cigar) = if len == 0 {
                    ("*".to_string(), "*".to_string(), "*".to_string())
                } else {
                    (seq, qual, format!("{len}M"))
                };
                let line = format!(
                    "r{i}\t0\tc\t{}\t60\t{cigar}\t*\t0\t0\t{seq}\t{qual}\tNM:i:{i}",
                    100 + i * 3
                );
                sam::parse_record(line.as_bytes(), &header).unwrap()
            })
            .collect()
    }

    #[test]
    fn big_chunks_are_blocked_and_round_trip() {
        let recs = records(3 * RECORDS_PER_BLOCK as usize + 17);
        let c = encode(&recs, 3).unwrap();
        assert_eq!(c.header.version, VERSION_BLOCKED);
        for &(id, _) in blocked_streams(Profile::Default) {
            assert_eq!(
                c.header.streams[id as usize].codec,
                CODEC_BLOCKED,
                "{}",
                id.name()
            );
        }
        let data = ChunkData::decode(&c.bytes, Fields::ALL, "t").unwrap();
        let back: Vec<Record> = data.records().collect::<crate::Result<_>>().unwrap();
        assert_eq!(back, recs);
        // Small chunks stay in the v0.3.0 layout.
        let small = encode(&recs[..RECORDS_PER_BLOCK as usize], 3).unwrap();
        assert_eq!(small.header.version, crate::chunk::VERSION);
    }

    #[test]
    fn selected_records_need_only_their_blocks() {
        // Two blocks of names and tags, eight of bases and qualities.
        let recs = records(2 * RECORDS_PER_WIDE_BLOCK as usize);
        let c = encode(&recs, 3).unwrap();
        let h = ChunkHeader::read(&c.bytes, "t").unwrap();
        let n = recs.len();
        // Records 300..310 (block 1 of 256, 0 of 1024) and the last one (blocks 7 and 1).
        let keep: Vec<bool> = (0..n)
            .map(|i| (300..310).contains(&i) || i == n - 1)
            .collect();
        let mut data =
            ChunkData::from_span_without_blocks(&h.streams, n, &c.bytes, 0, Fields::ALL, "t")
                .unwrap();
        let needed = data.blocks_needed(&keep);
        let blocks: Vec<(StreamId, usize)> = needed.iter().map(|(id, b, _)| (*id, *b)).collect();
        use StreamId::{Aux, Name, Qual, Seq};
        let want = [
            (Name, 0),
            (Aux, 0),
            (Seq, 1),
            (Qual, 1),
            (Name, 1),
            (Aux, 1),
            (Seq, 7),
            (Qual, 7),
        ];
        assert_eq!(
            blocks, want,
            "names and tags of both halves, the rest of blocks 1 and 7"
        );
        // Laid out in record order, the wide blocks first: the blocks a run of records needs
        // are adjacent.
        for pair in [0, 2, 4, 6] {
            assert_eq!(needed[pair].2.end, needed[pair + 1].2.start, "{pair}");
        }
        // Reading a record of a block not decoded is an error, never zeroed bytes.
        let mut unselected =
            ChunkData::from_span_without_blocks(&h.streams, n, &c.bytes, 0, Fields::ALL, "t")
                .unwrap();
        unselected.select(keep.clone());
        assert!(unselected.records().next().unwrap().is_err());
        for (id, b, _) in needed {
            data.decode_block(id, b, &c.bytes, 0).unwrap();
        }
        data.select(keep.clone());
        let got: Vec<Record> = data.records().collect::<crate::Result<_>>().unwrap();
        let want: Vec<Record> = recs
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(r, _)| r.clone())
            .collect();
        assert_eq!(got, want);
        // What was decoded: every stream-table range, and blocks 1 and 3 of each blocked stream.
        let ranges: u64 = h.streams.iter().map(|s| s.stored_len).sum();
        let blocks: u64 = blocked_streams(Profile::Default)
            .iter()
            .map(|&(id, k)| {
                let dir = directory(&h, &c.bytes, n, id);
                assert_eq!(dir.records_per_block, k);
                match k == RECORDS_PER_BLOCK {
                    true => dir.blocks[1].stored_len + dir.blocks[7].stored_len,
                    false => dir.blocks[0].stored_len + dir.blocks[1].stored_len,
                }
            })
            .sum();
        assert_eq!(data.stored_bytes_decoded(), ranges + blocks);
    }

    #[test]
    fn blocks_decoded_on_two_threads_equal_those_decoded_one_by_one() {
        // Enough records that the blocks a query needs pass the size from which
        // `decode_blocks` hands half of them to a helper thread.
        let recs = records(40 * RECORDS_PER_BLOCK as usize + 3);
        let c = encode(&recs, 3).unwrap();
        let h = ChunkHeader::read(&c.bytes, "t").unwrap();
        let n = recs.len();
        let keep: Vec<bool> = (0..n).map(|i| i >= 7).collect();
        let fresh = || {
            ChunkData::from_span_without_blocks(&h.streams, n, &c.bytes, 0, Fields::ALL, "t")
                .unwrap()
        };
        let mut data = fresh();
        let needed = data.blocks_needed(&keep);
        let raw: u64 = needed
            .iter()
            .map(|(id, b, _)| directory(&h, &c.bytes, n, *id).blocks[*b].raw_len)
            .sum();
        assert!(
            raw >= crate::chunk::decoder::PARALLEL_BLOCK_BYTES as u64,
            "{raw} bytes"
        );
        let jobs: Vec<_> = needed
            .iter()
            .map(|&(id, b, _)| (id, b, &c.bytes[..], 0))
            .collect();
        data.decode_blocks(&jobs).unwrap();
        data.select(keep.clone());
        let got: Vec<Record> = data.records().collect::<crate::Result<_>>().unwrap();
        assert_eq!(got, recs[7..].to_vec());

        let mut one_by_one = fresh();
        for &(id, b, _) in &needed {
            one_by_one.decode_block(id, b, &c.bytes, 0).unwrap();
        }
        assert_eq!(
            one_by_one.stored_bytes_decoded(),
            data.stored_bytes_decoded()
        );

        // A damaged block, in the half the helper decodes and in the caller's: an error that
        // names it, never a panic.
        for job in [0, jobs.len() - 1] {
            let (id, b, r) = &needed[job];
            let mut bytes = c.bytes.clone();
            bytes[r.start as usize] ^= 0x55;
            let jobs: Vec<_> = needed
                .iter()
                .map(|&(id, b, _)| (id, b, &bytes[..], 0))
                .collect();
            let err = fresh().decode_blocks(&jobs).unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "checksum mismatch in block {b} of stream '{}'",
                    id.name()
                )),
                "{err}"
            );
        }
    }

    /// The block directory of stream `id` of a chunk of `n` records.
    fn directory(h: &ChunkHeader, bytes: &[u8], n: usize, id: StreamId) -> BlockDirectory {
        let s = h.streams[id as usize];
        let d = &bytes[s.offset as usize..(s.offset + s.stored_len) as usize];
        BlockDirectory::parse(d, n, s.raw_len, "t", id.name()).unwrap()
    }

    #[test]
    fn records_of_a_later_name_block_alone_are_found_again() {
        // The walk skips the records of name and tag blocks it did not decode (whose names'
        // lengths it cannot know) and takes the streams up at the next block's start.
        let recs = records(2 * RECORDS_PER_WIDE_BLOCK as usize + 5);
        let c = encode(&recs, 3).unwrap();
        let h = ChunkHeader::read(&c.bytes, "t").unwrap();
        let n = recs.len();
        for range in [1500..1510, 2048..2053, 1023..1025, 0..1, n - 1..n] {
            let keep: Vec<bool> = (0..n).map(|i| range.contains(&i)).collect();
            let mut data =
                ChunkData::from_span_without_blocks(&h.streams, n, &c.bytes, 0, Fields::ALL, "t")
                    .unwrap();
            let needed = data.blocks_needed(&keep);
            let names = needed
                .iter()
                .filter(|(id, _, _)| *id == StreamId::Name)
                .count();
            assert_eq!(names, if range.start == 1023 { 2 } else { 1 }, "{range:?}");
            for (id, b, _) in needed {
                data.decode_block(id, b, &c.bytes, 0).unwrap();
            }
            data.select(keep);
            let got: Vec<Record> = data.records().collect::<crate::Result<_>>().unwrap();
            assert_eq!(got, recs[range.clone()].to_vec(), "{range:?}");
        }
    }

    /// Pairs (mate fields set, so the placeholders differ from the stored values) of varied
    /// lengths, with tags.
    fn pairs(n: usize) -> Vec<Record> {
        let header = Header::from_sam_text("@SQ\tSN:c\tLN:100000000\n").unwrap();
        let mut out: Vec<Record> = (0..n)
            .map(|i| {
                let lens = [1usize, 7, 150, 33];
                let (p, len) = (1000 + (i / 2) * 7, lens[i % 4]);
                // The template: from the first read's start to the end of the second.
                let span = 300 + lens[(i | 1) % 4] as i64;
                let (pos, mpos, flag, tlen) = match i % 2 {
                    0 => (p, p + 300, 0x63, span),
                    _ => (p + 300, p, 0x93, -span),
                };
                let seq: String = (0..len).map(|j| b"ACGT"[(i * 3 + j) % 4] as char).collect();
                let qual: String = (0..len).map(|j| (b'#' + ((i + j) % 38) as u8) as char).collect();
                let line = format!(
                    "p{}\t{flag}\tc\t{pos}\t{}\t{len}M\t=\t{mpos}\t{tlen}\t{seq}\t{qual}\tNM:i:{}\tRG:Z:g",
                    i / 2,
                    i % 61,
                    i % 3
                );
                sam::parse_record(line.as_bytes(), &header).unwrap()
            })
            .collect();
        out.sort_by_key(|r| r.pos());
        out
    }

    #[test]
    fn records_of_a_few_streams_keep_their_placement_and_get_placeholders() {
        use crate::chunk::{CODEC_NAME_PAIRS, Profile, encode_profile};
        let recs = pairs(3 * RECORDS_PER_BLOCK as usize + 9);
        for profile in [Profile::Default, Profile::Archive] {
            let c = encode_profile(&recs, 3, profile).unwrap();
            let h = ChunkHeader::read(&c.bytes, "t").unwrap();
            // The archive profile links the pairs (a name stream that needs the mate stream).
            let paired = h.streams[StreamId::Name as usize].codec == CODEC_NAME_PAIRS;
            assert_eq!(paired, profile == Profile::Archive);
            for extra in [
                None,
                Some(StreamId::Name),
                Some(StreamId::Mate),
                Some(StreamId::Seq),
            ] {
                let fields = extra.map_or(Fields::LOCATION, |id| Fields::LOCATION.with(id));
                let data = ChunkData::decode(&c.bytes, fields, "t").unwrap();
                let back: Vec<Record> = data.records().collect::<crate::Result<_>>().unwrap();
                assert_eq!(back.len(), recs.len());
                for (a, b) in recs.iter().zip(&back) {
                    let what = format!(
                        "{profile:?} {extra:?} {}",
                        String::from_utf8_lossy(a.name())
                    );
                    assert_eq!(
                        (a.ref_id(), a.pos(), a.flag(), a.mapq(), a.end(), a.cigar()),
                        (b.ref_id(), b.pos(), b.flag(), b.mapq(), b.end(), b.cigar()),
                        "{what}"
                    );
                    assert_eq!(a.aux(), b.aux(), "{what}");
                    assert_eq!((a.l_seq(), a.bin()), (b.l_seq(), b.bin()), "{what}");
                    match extra == Some(StreamId::Name) {
                        true => assert_eq!(a.name(), b.name(), "{what}"),
                        false => assert_eq!(b.name(), b"*", "{what}"),
                    }
                    // Names of linked pairs need the mate stream, so they bring it along.
                    let mates =
                        extra == Some(StreamId::Mate) || (paired && extra == Some(StreamId::Name));
                    match mates {
                        true => assert_eq!(
                            (a.next_ref_id(), a.next_pos(), a.tlen()),
                            (b.next_ref_id(), b.next_pos(), b.tlen()),
                            "{what}"
                        ),
                        false => assert_eq!((b.next_ref_id(), b.next_pos(), b.tlen()), (-1, -1, 0)),
                    }
                    match extra == Some(StreamId::Seq) {
                        true => assert_eq!(a.packed_seq(), b.packed_seq(), "{what}"),
                        false => assert!(b.packed_seq().iter().all(|&c| c == 0), "{what}"),
                    }
                    assert!(b.qual().iter().all(|&q| q == 0xff), "{what}");
                }
            }
            // Only some records built (a region), the others skipped without their streams.
            let n = recs.len();
            let keep: Vec<bool> = (0..n).map(|i| (300..320).contains(&i)).collect();
            let mut data = ChunkData::from_span_without_blocks(
                &h.streams,
                n,
                &c.bytes,
                0,
                Fields::LOCATION,
                "t",
            )
            .unwrap();
            for (id, b, r) in data.blocks_needed(&keep) {
                data.decode_block(id, b, &c.bytes[r.start as usize..], r.start)
                    .unwrap();
            }
            data.select(keep);
            let back: Vec<Record> = data.records().collect::<crate::Result<_>>().unwrap();
            let pos: Vec<i32> = back.iter().map(|r| r.pos()).collect();
            let want: Vec<i32> = recs[300..320].iter().map(|r| r.pos()).collect();
            assert_eq!(pos, want, "{profile:?}");
        }
    }

    #[test]
    fn damaged_blocked_chunks_are_errors_not_panics() {
        let recs = records(2 * RECORDS_PER_BLOCK as usize + 1);
        let c = encode(&recs, 3).unwrap();
        let h = ChunkHeader::read(&c.bytes, "t").unwrap();
        let dir = h.streams[StreamId::Qual as usize];
        // Every byte of the qualities' directory and of the first blocks, flipped, with the
        // stream CRCs bypassed through a table that claims the damaged bytes are right.
        let end = (dir.offset + dir.stored_len + 4000).min(c.bytes.len() as u64) as usize;
        for i in dir.offset as usize..end {
            let mut bad = c.bytes.clone();
            bad[i] ^= 0x41;
            let mut streams = h.streams.clone();
            streams[StreamId::Qual as usize].crc32 =
                crc32fast::hash(&bad[dir.offset as usize..(dir.offset + dir.stored_len) as usize]);
            if let Ok(d) = ChunkData::from_span(&streams, recs.len(), &bad, 0, Fields::ALL, "t") {
                let _ = d.records().collect::<Vec<_>>();
            }
        }
        for cut in (0..c.bytes.len()).step_by(97) {
            assert!(ChunkData::decode(&c.bytes[..cut], Fields::ALL, "t").is_err());
        }
        let bad_dirs: [&[u8]; 5] = [
            &[],
            &[9, 1, 1, 0],
            &[1, 0, 1, 0],
            &[1, 1, 5, 0],
            &[1, 1, 0, 200],
        ];
        for d in bad_dirs {
            assert!(
                BlockDirectory::parse(d, 1, 0, "t", "qual").is_err(),
                "{d:?}"
            );
        }
    }
}
