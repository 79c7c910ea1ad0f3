//! A CSI index of the BAM stream, built from per-unit statistics alone.
//!
//! Each unit goes into the bin `reg2bin(first_pos, max_end)` as one chunk spanning its blocks
//! (units side by side in one bin as one chunk).
//! That is coarser than an index of every record, but still exact: htslib visits every unit
//! whose bins overlap a region and filters the records itself, so a region gives the records
//! the source BAM gives.

use std::collections::BTreeMap;

use super::framing::frame;
use super::layout::{Layout, Unit};

/// Bits of the smallest bin, as htslib's default CSI (and BAI).
pub const MIN_SHIFT: u32 = 14;

/// Levels below the root: 5 as BAI for references up to 2^29 bp, more for longer ones.
pub fn depth(ref_lengths: &[u64]) -> u32 {
    let longest = ref_lengths.iter().copied().max().unwrap_or(0);
    let mut n = 5;
    while n < 12 && longest > 1u64 << (MIN_SHIFT + 3 * n) {
        n += 1;
    }
    n
}

/// First bin of level `l`.
fn first_bin(l: u32) -> u32 {
    ((1u32 << (3 * l)) - 1) / 7
}

/// The smallest bin holding `[beg, end)` (htslib's `hts_reg2bin`).
pub fn reg2bin(beg: i64, end: i64, min_shift: u32, n_lvls: u32) -> u32 {
    let end = end - 1;
    let mut s = min_shift;
    let mut t = first_bin(n_lvls);
    let mut l = n_lvls;
    while l > 0 {
        if beg >> s == end >> s {
            return t + (beg >> s) as u32;
        }
        s += 3;
        l -= 1;
        t -= 1 << (3 * l);
    }
    0
}

/// First position covered by `bin`.
fn bin_start(bin: u32, min_shift: u32, n_lvls: u32) -> i64 {
    let mut l = 0;
    while l < n_lvls && bin >= first_bin(l + 1) {
        l += 1;
    }
    ((bin - first_bin(l)) as i64) << (min_shift + 3 * (n_lvls - l))
}

/// The uncompressed CSI of `layout`'s stream.
pub fn build_raw(layout: &Layout) -> Vec<u8> {
    let n_lvls = depth(&layout.ref_lengths);
    let meta_bin = first_bin(n_lvls + 1) + 1;
    let mut out = Vec::new();
    out.extend_from_slice(b"CSI\x01");
    out.extend_from_slice(&(MIN_SHIFT as i32).to_le_bytes());
    out.extend_from_slice(&(n_lvls as i32).to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&(layout.ref_lengths.len() as i32).to_le_bytes());
    let mut no_coor = 0u64;
    let mut by_ref: Vec<Vec<&Unit>> = vec![Vec::new(); layout.ref_lengths.len()];
    for u in &layout.units {
        match usize::try_from(u.reference)
            .ok()
            .and_then(|r| by_ref.get_mut(r))
        {
            Some(list) => list.push(u),
            None => no_coor += u.count,
        }
    }
    for units in &by_ref {
        if units.is_empty() {
            out.extend_from_slice(&0i32.to_le_bytes());
            continue;
        }
        // bin -> chunks [start, end) as virtual offsets.
        let mut bins: BTreeMap<u32, Vec<(u64, u64)>> = BTreeMap::new();
        for u in units {
            let beg = u.first_pos.max(0);
            let end = u.max_end.max(beg + 1);
            let chunks = bins
                .entry(reg2bin(beg, end, MIN_SHIFT, n_lvls))
                .or_default();
            // Pieces of a chunk side by side in one bin are one chunk of the index, as
            // htslib's own indexer merges a bin's adjacent chunks.
            match chunks.last_mut() {
                Some(last) if last.1 == u.offset << 16 => last.1 = u.end() << 16,
                _ => chunks.push((u.offset << 16, u.end() << 16)),
            }
        }
        // Units are in position order, their ends not: the first unit that can reach a
        // position is the first whose running maximum of ends exceeds it.
        let mut reach = Vec::with_capacity(units.len());
        let mut m = i64::MIN;
        for u in units {
            m = m.max(u.max_end);
            reach.push(m);
        }
        out.extend_from_slice(&(bins.len() as i32 + 1).to_le_bytes());
        for (bin, chunks) in &bins {
            let start = bin_start(*bin, MIN_SHIFT, n_lvls);
            let i = reach.partition_point(|&e| e <= start).min(units.len() - 1);
            out.extend_from_slice(&bin.to_le_bytes());
            out.extend_from_slice(&(units[i].offset << 16).to_le_bytes());
            out.extend_from_slice(&(chunks.len() as i32).to_le_bytes());
            for (a, b) in chunks {
                out.extend_from_slice(&a.to_le_bytes());
                out.extend_from_slice(&b.to_le_bytes());
            }
        }
        // The pseudo-bin: the reference's span of the stream and its mapped/unmapped counts.
        let count: u64 = units.iter().map(|u| u.count).sum();
        let unmapped: u64 = units.iter().map(|u| u.unmapped).sum();
        out.extend_from_slice(&meta_bin.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&2i32.to_le_bytes());
        out.extend_from_slice(&(units[0].offset << 16).to_le_bytes());
        out.extend_from_slice(&(units[units.len() - 1].end() << 16).to_le_bytes());
        out.extend_from_slice(&(count - unmapped).to_le_bytes());
        out.extend_from_slice(&unmapped.to_le_bytes());
    }
    out.extend_from_slice(&no_coor.to_le_bytes());
    out
}

/// The CSI of `layout`'s stream as a `.csi` file: BGZF (stored blocks) with its EOF block.
pub fn build(layout: &Layout) -> Vec<u8> {
    let mut out = frame(&build_raw(layout));
    out.extend_from_slice(&crate::bam::BGZF_EOF);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_match_htslib() {
        // BAI's numbering is CSI's with min_shift 14 and 5 levels.
        for (beg, end) in [
            (0, 1),
            (0, 1 << 14),
            (16383, 16385),
            (1 << 20, (1 << 20) + 100),
        ] {
            assert_eq!(
                reg2bin(beg, end, 14, 5),
                crate::record::reg2bin(beg, end) as u32,
                "{beg}-{end}"
            );
        }
        assert_eq!(reg2bin(0, 1 << 29, 14, 5), 0);
        assert_eq!(bin_start(4681, 14, 5), 0);
        assert_eq!(bin_start(4682, 14, 5), 1 << 14);
        assert_eq!(bin_start(1, 14, 5), 0);
        assert_eq!(bin_start(2, 14, 5), 1 << 26);
        assert_eq!(bin_start(0, 14, 5), 0);
        assert_eq!(depth(&[1000, 248_956_422]), 5);
        assert_eq!(depth(&[1 << 30]), 6);
    }
}
