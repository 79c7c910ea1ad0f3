//! The input's `.bai` or `.csi`, read for one purpose: where in the BAM file the records at or
//! after a genomic position begin, so a shard reads only its own byte range and shard
//! boundaries can be balanced by bytes.
//!
//! Both formats are the SAM specification's (section 5). What is used:
//! - BAI: the linear index (per 16 kbp window, the virtual offset of the first record that
//!   overlaps it) and the pseudo-bin 37450 (first and last offsets of the reference's records).
//! - CSI: each bin's `loffset` (the linear offset at the bin's start) and the pseudo-bin.
//!
//! Every offset this module returns is a *lower bound*: no record at or after the position
//! lies before it. A reader starts there and skips the few records before its position, so an
//! index that is coarse (or was written by a tool that leaves windows empty) costs bytes,
//! never records.

use std::io::Read;

use crate::{Error, Result};

/// A BGZF virtual offset: compressed offset of a block `<< 16`, plus the offset in the block.
pub type VirtualOffset = u64;

/// What the index says about one reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferenceOffsets {
    /// Virtual offsets of the first record and of the end of the last (the pseudo-bin), when
    /// the reference has records.
    pub span: Option<(VirtualOffset, VirtualOffset)>,
    /// `(start position, lower bound of the records overlapping it)`, by start.
    points: Vec<(i64, VirtualOffset)>,
    /// A position no record of the reference reaches (the end of its last window or bin).
    covered_end: i64,
}

/// The offsets of an input's index.
///
/// ```
/// use bams3_core::shard::InputIndex;
/// // A BAI for one reference with records in window 0 (offsets 0x100 to 0x900 of the file).
/// let mut bai = b"BAI\x01".to_vec();
/// bai.extend(1u32.to_le_bytes()); // n_ref
/// bai.extend(1u32.to_le_bytes()); // n_bin: the pseudo-bin
/// bai.extend(37450u32.to_le_bytes());
/// bai.extend(2u32.to_le_bytes());
/// for v in [0x100u64 << 16, 0x900 << 16, 10, 0] { bai.extend(v.to_le_bytes()); }
/// bai.extend(1u32.to_le_bytes()); // n_intv
/// bai.extend((0x100u64 << 16).to_le_bytes());
/// let index = InputIndex::parse(&bai, "x.bam.bai").unwrap();
/// assert_eq!(index.lower_bound(0, 5000), Some(0x100 << 16));
/// // Past the reference's last window: its records all come before.
/// assert_eq!(index.lower_bound(0, 1 << 20), Some(0x900 << 16));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputIndex {
    /// Per reference, in header order.
    pub references: Vec<ReferenceOffsets>,
}

/// BAI's pseudo-bin, and its linear-index window.
const BAI_PSEUDO_BIN: u32 = 37450;
const BAI_MIN_SHIFT: u32 = 14;

impl InputIndex {
    /// Parses a BAI (`BAI\1`) or CSI (`CSI\1`, BGZF-compressed) index; `what` names it in
    /// errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<InputIndex> {
        if bytes.starts_with(b"BAI\x01") {
            return parse_bai(&mut Cursor::new(&bytes[4..], what));
        }
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut plain)
                .map_err(|e| Error::corrupt(what, format!("bad CSI compression: {e}")))?;
            if plain.starts_with(b"CSI\x01") {
                return parse_csi(&mut Cursor::new(&plain[4..], what));
            }
        }
        Err(Error::corrupt(what, "not a BAI or CSI index"))
    }

    /// The largest virtual offset known to come at or before every record whose reference is
    /// `ref_id` and start is at least `pos`, and after every record of earlier references, or
    /// `None` when the index knows of no record before them (read from the first record on).
    pub fn lower_bound(&self, ref_id: usize, pos: i64) -> Option<VirtualOffset> {
        let earlier = self.references[..ref_id.min(self.references.len())]
            .iter()
            .filter_map(|r| r.span.map(|s| s.1))
            .max();
        let own = self.references.get(ref_id).and_then(|r| {
            if pos >= r.covered_end {
                // No record of this reference starts here or later: all of it comes before.
                return r.span.map(|s| s.1);
            }
            let i = r.points.partition_point(|p| p.0 <= pos);
            let point = r.points[..i].iter().map(|p| p.1).max();
            point.max(r.span.map(|s| s.0))
        });
        earlier.max(own)
    }

    /// The lower bound of the unplaced records (no reference), which sort after all others.
    pub fn unplaced_lower_bound(&self) -> Option<VirtualOffset> {
        self.lower_bound(self.references.len(), 0)
    }

    /// Position past which reference `ref_id` has no record (0 when it has none).
    pub fn covered_end(&self, ref_id: usize) -> i64 {
        self.references
            .get(ref_id)
            .filter(|r| r.span.is_some())
            .map_or(0, |r| r.covered_end)
    }
}

/// Little-endian reads that fail with a message instead of panicking on a short index.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], what: &'a str) -> Self {
        Cursor { bytes, at: 0, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(Error::corrupt(self.what, "index ends early (truncated?)"));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// A count, checked against the bytes left so a corrupt one cannot force a huge
    /// allocation (`each` is the least bytes an item takes).
    fn count(&mut self, each: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(each) > self.bytes.len() - self.at {
            return Err(Error::corrupt(self.what, "index ends early (truncated?)"));
        }
        Ok(n)
    }
}

/// The pseudo-bin's two "chunks": the reference's first and last offsets, then its mapped and
/// unmapped counts.
fn pseudo_bin(c: &mut Cursor) -> Result<(VirtualOffset, VirtualOffset)> {
    let n_chunk = c.count(16)?;
    if n_chunk != 2 {
        return Err(Error::corrupt(
            c.what,
            "index pseudo-bin without two entries",
        ));
    }
    let span = (c.u64()?, c.u64()?);
    c.take(16)?;
    Ok(span)
}

fn parse_bai(c: &mut Cursor) -> Result<InputIndex> {
    let n_ref = c.count(8)?;
    let mut references = Vec::with_capacity(n_ref);
    for _ in 0..n_ref {
        let mut r = ReferenceOffsets::default();
        let n_bin = c.count(8)?;
        for _ in 0..n_bin {
            let bin = c.u32()?;
            if bin == BAI_PSEUDO_BIN {
                r.span = Some(pseudo_bin(c)?);
            } else {
                let n_chunk = c.count(16)?;
                c.take(n_chunk * 16)?;
            }
        }
        let n_intv = c.count(8)?;
        r.points.reserve(n_intv);
        for w in 0..n_intv {
            let off = c.u64()?;
            // Zero is what some writers leave in a window without records: no information.
            if off != 0 {
                r.points.push(((w as i64) << BAI_MIN_SHIFT, off));
            }
        }
        r.covered_end = (n_intv as i64) << BAI_MIN_SHIFT;
        references.push(r);
    }
    Ok(InputIndex { references })
}

fn parse_csi(c: &mut Cursor) -> Result<InputIndex> {
    let min_shift = c.i32()?;
    let depth = c.i32()?;
    if !(0..=30).contains(&min_shift) || !(0..=10).contains(&depth) || min_shift + 3 * depth > 62 {
        return Err(Error::corrupt(
            c.what,
            format!("CSI min_shift {min_shift} and depth {depth} out of range"),
        ));
    }
    let l_aux = c.count(1)?;
    c.take(l_aux)?;
    let pseudo = (((1u64 << ((depth as u64 + 1) * 3)) - 1) / 7 + 1) as u32;
    let n_ref = c.count(4)?;
    let mut references = Vec::with_capacity(n_ref);
    for _ in 0..n_ref {
        let mut r = ReferenceOffsets::default();
        let n_bin = c.count(16)?;
        for _ in 0..n_bin {
            let bin = c.u32()?;
            let loffset = c.u64()?;
            if bin == pseudo {
                r.span = Some(pseudo_bin(c)?);
                continue;
            }
            let n_chunk = c.count(16)?;
            c.take(n_chunk * 16)?;
            let Some((start, end)) = csi_bin_span(bin, min_shift as u32, depth as u32) else {
                return Err(Error::corrupt(
                    c.what,
                    format!("CSI bin {bin} out of range"),
                ));
            };
            r.points.push((start, loffset));
            r.covered_end = r.covered_end.max(end);
        }
        r.points.sort_unstable();
        references.push(r);
    }
    Ok(InputIndex { references })
}

/// The genomic span `[start, end)` of a CSI bin (SAM spec 5.3: level `l` starts at bin
/// `(8^l - 1) / 7`, and its bins span `2^(min_shift + 3 (depth - l))` bases).
fn csi_bin_span(bin: u32, min_shift: u32, depth: u32) -> Option<(i64, i64)> {
    let bin = bin as u64;
    for level in 0..=depth {
        let first = ((1u64 << (3 * level)) - 1) / 7;
        let count = 1u64 << (3 * level);
        if bin < first + count {
            let span = 1i64 << (min_shift + 3 * (depth - level));
            let start = (bin - first) as i64 * span;
            return Some((start, start + span));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csi_bins_cover_the_genome_level_by_level() {
        // htslib's defaults for BAM: min_shift 14, depth 5 (the BAI scheme).
        assert_eq!(csi_bin_span(0, 14, 5), Some((0, 1 << 29)));
        assert_eq!(csi_bin_span(1, 14, 5), Some((0, 1 << 26)));
        assert_eq!(csi_bin_span(4681, 14, 5), Some((0, 1 << 14)));
        assert_eq!(csi_bin_span(4682, 14, 5), Some((1 << 14, 2 << 14)));
        // The last leaf; 37449 is past the last level (and 37450 is the pseudo-bin).
        assert_eq!(csi_bin_span(37448, 14, 5), Some((32767 << 14, 32768 << 14)));
        assert_eq!(csi_bin_span(37449, 14, 5), None);
    }

    #[test]
    fn bad_indexes_are_errors_not_panics() {
        for bytes in [
            &b"BAI\x01"[..],
            b"BAI\x01\xff\xff\xff\xff",
            b"nope",
            b"\x1f\x8b",
        ] {
            assert!(InputIndex::parse(bytes, "x.bai").is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn bounds_never_pass_a_record() {
        let r = |span, points: Vec<(i64, u64)>, covered_end| ReferenceOffsets {
            span: Some(span),
            points,
            covered_end,
        };
        let index = InputIndex {
            references: vec![
                r((100, 500), vec![(0, 100), (16384, 300)], 32768),
                ReferenceOffsets::default(),
                r((600, 900), vec![(0, 600), (32768, 700)], 49152),
            ],
        };
        assert_eq!(index.lower_bound(0, 0), Some(100));
        assert_eq!(index.lower_bound(0, 20000), Some(300));
        assert_eq!(index.lower_bound(0, 40000), Some(500));
        // A reference without records: what comes before it.
        assert_eq!(index.lower_bound(1, 0), Some(500));
        assert_eq!(index.lower_bound(2, 16384), Some(600));
        assert_eq!(index.unplaced_lower_bound(), Some(900));
        assert_eq!(InputIndex::default().unplaced_lower_bound(), None);
    }
}
