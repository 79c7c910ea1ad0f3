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

use super::{StreamId, CODEC_RANS1, CODEC_RAW, CODEC_ZSTD};
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

/// The streams this library writes blocked: where the bytes and the decoding time are
/// (qualities 59 % of the stored bytes and most of the CPU, bases 23 %). Names and tags stay
/// whole: cut into blocks they compress 5-10 % worse, and they decode fast.
pub const BLOCKED_STREAMS: [StreamId; 2] = [StreamId::Seq, StreamId::Qual];

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
    /// Codec of every block: [`CODEC_RAW`], [`CODEC_ZSTD`] or [`CODEC_RANS1`] (blocks then
    /// hold only the lanes; the frequency table is `params`).
    pub inner_codec: u8,
    /// Records per block (the last block may hold fewer).
    pub records_per_block: u32,
    /// Codec parameters shared by the blocks: the rANS frequency table, or nothing.
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
        if ![CODEC_RAW, CODEC_ZSTD, CODEC_RANS1].contains(&inner_codec) {
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
