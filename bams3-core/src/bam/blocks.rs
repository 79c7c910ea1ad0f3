//! Where a record of a BGZF stream starts in the compressed file, learnt from the raw bytes as
//! they pass: each BGZF block says its compressed size (`BSIZE`) in its header and its
//! decompressed size (`ISIZE`) in its last four bytes, so watching the stream is enough to map
//! a decompressed offset to a virtual offset (block start, offset within). A resumable
//! conversion journals that point and later reopens the input there; the decoder in between
//! (one thread or many) needs to know nothing about it.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// A place in a BGZF file where a record starts: the compressed offset of its block, the
/// decompressed offset of that block's first byte, and the record's offset within the block.
///
/// ```
/// use bams3_core::bam::ResumePoint;
/// let p = ResumePoint { block: 1000, block_start: 65280, within: 12 };
/// assert_eq!(p.offset(), 65292);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// Compressed offset of the block in the file.
    pub block: u64,
    /// Decompressed offset of the block's first byte in the whole stream.
    pub block_start: u64,
    /// Offset of the record within the block's decompressed bytes.
    pub within: u64,
}

impl ResumePoint {
    /// The record's decompressed offset in the whole stream.
    pub fn offset(&self) -> u64 {
        self.block_start + self.within
    }
}

/// The blocks seen so far that a later lookup may still need.
#[derive(Debug)]
pub(crate) struct BlockLog {
    /// (compressed offset, decompressed offset) of each complete block not yet pruned.
    blocks: VecDeque<(u64, u64)>,
    /// Compressed offset of the next block, and decompressed bytes before it.
    next: (u64, u64),
    /// The stream stopped looking like BGZF; no lookup is answered any more.
    broken: bool,
    /// Nobody will look anything up: stop remembering blocks.
    off: bool,
}

impl BlockLog {
    /// A log for a stream whose first byte is block `start` (`block`, `block_start`).
    pub(crate) fn new(block: u64, block_start: u64) -> Arc<Mutex<BlockLog>> {
        Arc::new(Mutex::new(BlockLog {
            blocks: VecDeque::new(),
            next: (block, block_start),
            broken: false,
            off: false,
        }))
    }

    /// The point of decompressed offset `offset`, if the stream has passed it; blocks before
    /// it are forgotten (lookups only move forward).
    pub(crate) fn point(&mut self, offset: u64) -> Option<ResumePoint> {
        if self.broken || self.off {
            return None;
        }
        // The last block starting at or before `offset`.
        let i = self.blocks.partition_point(|&(_, u)| u <= offset);
        let found = if i == 0 {
            None
        } else {
            let (c, u) = self.blocks[i - 1];
            // A record at the very end of a block starts the next one.
            let end = self.blocks.get(i).map_or(self.next.1, |b| b.1);
            (offset < end).then_some((c, u))
        };
        let (block, block_start) = match found {
            Some(b) => b,
            None if offset == self.next.1 => self.next,
            None => return None,
        };
        self.blocks.drain(..i.saturating_sub(1));
        Some(ResumePoint {
            block,
            block_start,
            within: offset - block_start,
        })
    }

    /// No more lookups: drop what is kept and keep nothing more.
    pub(crate) fn stop(&mut self) {
        self.off = true;
        self.blocks.clear();
    }
}

/// Passes a BGZF stream through unchanged while logging its block boundaries.
pub(crate) struct BlockTracker<R> {
    inner: R,
    log: Arc<Mutex<BlockLog>>,
    /// Bytes of the current block's header gathered so far (until `BSIZE` is known).
    head: Vec<u8>,
    /// Bytes of the current block still to pass after its header; then its `ISIZE`.
    left: u64,
    isize: Vec<u8>,
    /// Compressed size of the current block, once known.
    size: Option<u64>,
}

impl<R> BlockTracker<R> {
    pub(crate) fn new(inner: R, log: Arc<Mutex<BlockLog>>) -> Self {
        BlockTracker {
            inner,
            log,
            head: Vec::with_capacity(32),
            left: 0,
            isize: Vec::with_capacity(4),
            size: None,
        }
    }

    fn break_log(&self) {
        if let Ok(mut l) = self.log.lock() {
            l.broken = true;
        }
    }

    /// Feeds bytes of the stream; returns false once it is no longer BGZF.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            match self.size {
                None => {
                    // The gzip header with its extra field: 12 bytes, then XLEN bytes.
                    let want = if self.head.len() < 12 {
                        12
                    } else {
                        12 + u16::from_le_bytes([self.head[10], self.head[11]]) as usize
                    };
                    let take = (want - self.head.len()).min(bytes.len());
                    self.head.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.head.len() < want {
                        continue;
                    }
                    if want == 12 {
                        if self.head[..4] != [0x1f, 0x8b, 8, 4] {
                            return false;
                        }
                        continue;
                    }
                    let Some(bsize) = bc_field(&self.head[12..]) else {
                        return false;
                    };
                    let total = bsize as u64 + 1;
                    let Some(rest) = total.checked_sub(self.head.len() as u64 + 4) else {
                        return false;
                    };
                    self.size = Some(total);
                    self.left = rest;
                    self.isize.clear();
                }
                Some(total) => {
                    if self.left > 0 {
                        let skip = self.left.min(bytes.len() as u64);
                        self.left -= skip;
                        bytes = &bytes[skip as usize..];
                        continue;
                    }
                    let take = (4 - self.isize.len()).min(bytes.len());
                    self.isize.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.isize.len() < 4 {
                        continue;
                    }
                    let isize = u32::from_le_bytes([
                        self.isize[0],
                        self.isize[1],
                        self.isize[2],
                        self.isize[3],
                    ]) as u64;
                    if let Ok(mut l) = self.log.lock() {
                        let (c, u) = l.next;
                        if !l.off {
                            l.blocks.push_back((c, u));
                        }
                        l.next = (c + total, u + isize);
                    }
                    self.size = None;
                    self.head.clear();
                }
            }
        }
        true
    }
}

/// `BSIZE` from the gzip extra subfields of a BGZF header (the `BC` subfield).
fn bc_field(mut extra: &[u8]) -> Option<u16> {
    while extra.len() >= 4 {
        let len = u16::from_le_bytes([extra[2], extra[3]]) as usize;
        let body = extra.get(4..4 + len)?;
        if extra[0] == b'B' && extra[1] == b'C' && len == 2 {
            return Some(u16::from_le_bytes([body[0], body[1]]));
        }
        extra = &extra[4 + len..];
    }
    None
}

impl<R: Read> Read for BlockTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let broken = self.log.lock().map(|l| l.broken || l.off).unwrap_or(true);
        if !broken && !self.feed(&buf[..n]) {
            self.break_log();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn bgzf(data: &[u8], block: usize) -> Vec<u8> {
        let mut w = noodles_bgzf::io::Writer::new(Vec::new());
        for c in data.chunks(block) {
            w.write_all(c).unwrap();
            w.flush().unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn maps_decompressed_offsets_to_blocks_whatever_the_read_sizes() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let file = bgzf(&data, 10_000);
        for step in [1, 3, 17, 4096, 1 << 20] {
            let log = BlockLog::new(0, 0);
            let mut t = BlockTracker::new(&file[..], log.clone());
            let mut out = Vec::new();
            let mut buf = vec![0; step];
            loop {
                let n = t.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert_eq!(out, file);
            for offset in [0u64, 9_999, 10_000, 123_456, 199_999, 200_000] {
                let p = log.lock().unwrap().point(offset).unwrap();
                assert_eq!(p.offset(), offset);
                // Decoding from the block and skipping `within` gives the byte at `offset`.
                let mut d = noodles_bgzf::io::Reader::new(&file[p.block as usize..]);
                let mut rest = Vec::new();
                d.read_to_end(&mut rest).unwrap();
                assert_eq!(
                    &rest[p.within as usize..],
                    &data[offset as usize..],
                    "{step}"
                );
            }
            assert!(log.lock().unwrap().point(200_001).is_none());
        }
    }

    #[test]
    fn a_stream_that_is_not_bgzf_answers_nothing() {
        let log = BlockLog::new(0, 0);
        let mut t = BlockTracker::new(&b"@HD\tVN:1.6\nthis is SAM text, not BGZF"[..], log.clone());
        std::io::copy(&mut t, &mut std::io::sink()).unwrap();
        assert!(log.lock().unwrap().point(0).is_none());
    }
}
