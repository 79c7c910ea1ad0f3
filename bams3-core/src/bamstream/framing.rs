//! Stored (uncompressed) BGZF blocks: a framing whose size follows from the data size alone.

/// Data bytes per block: htslib's own block size, so a block is at most 65,311 bytes.
pub const BLOCK_DATA: usize = 65_280;

/// Bytes a stored block adds to its data: the 18-byte BGZF header, the 5-byte header of a
/// deflate stored block, CRC-32 and ISIZE.
pub const BLOCK_OVERHEAD: usize = 31;

/// Size of a full block.
pub const FULL_BLOCK: u64 = (BLOCK_DATA + BLOCK_OVERHEAD) as u64;

/// Size of `raw` bytes once cut into stored blocks: `raw + 31 * ceil(raw / 65280)`.
///
/// ```
/// use bams3_core::bamstream::framed_len;
/// assert_eq!(framed_len(0), 0);
/// assert_eq!(framed_len(1), 32);
/// assert_eq!(framed_len(65_280), 65_311);
/// assert_eq!(framed_len(65_281), 65_281 + 62);
/// ```
pub fn framed_len(raw: u64) -> u64 {
    raw + BLOCK_OVERHEAD as u64 * raw.div_ceil(BLOCK_DATA as u64)
}

/// Appends `data` (at most [`BLOCK_DATA`] bytes, not empty) to `out` as one stored BGZF block.
pub fn push_block(out: &mut Vec<u8>, data: &[u8]) {
    debug_assert!(!data.is_empty() && data.len() <= BLOCK_DATA);
    let n = data.len();
    let bsize = (n + BLOCK_OVERHEAD - 1) as u16;
    out.reserve(n + BLOCK_OVERHEAD);
    // gzip member with FEXTRA, OS unknown, and the BGZF "BC" subfield giving the block size.
    out.extend_from_slice(&[
        0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0,
    ]);
    out.extend_from_slice(&bsize.to_le_bytes());
    // One final deflate block of type 00 (stored): LEN and its complement.
    out.push(0x01);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&(!(n as u16)).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

/// `data` cut into stored blocks (no end-of-file block).
pub fn frame(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(framed_len(data.len() as u64) as usize);
    for piece in data.chunks(BLOCK_DATA) {
        push_block(&mut out, piece);
    }
    out
}

/// The block that covers byte `rel` of a framing, and where that block starts in the framing
/// (every block but the last is full).
pub fn block_at(rel: u64) -> (usize, u64) {
    let b = rel / FULL_BLOCK;
    (b as usize, b * FULL_BLOCK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn blocks_are_valid_bgzf_and_sized_as_promised() {
        for n in [
            1usize,
            100,
            BLOCK_DATA - 1,
            BLOCK_DATA,
            BLOCK_DATA + 1,
            3 * BLOCK_DATA + 7,
        ] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let framed = frame(&data);
            assert_eq!(framed.len() as u64, framed_len(n as u64), "n={n}");
            // A real BGZF reader (which checks CRCs and sizes) gives the data back.
            let mut all = framed.clone();
            all.extend_from_slice(&crate::bam::BGZF_EOF);
            let mut back = Vec::new();
            noodles_bgzf::io::Reader::new(&all[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "n={n}");
            // Block boundaries fall every FULL_BLOCK bytes.
            let (b, start) = block_at(FULL_BLOCK + 5);
            assert_eq!((b, start), (1, FULL_BLOCK));
        }
    }
}
