//! One alignment record, held as the exact bytes of a BAM record.
//!
//! Keeping the BAM layout (without the leading `block_size`) makes BAM → BAMS3 → BAM lossless
//! by construction: every field, tag type and tag order survives because nothing is ever
//! re-encoded. Accessors decode fields lazily, as noodles' `bam::Record` does. Long CIGARs
//! (more than 65,535 operations) stay in BAM's own convention, a placeholder CIGAR plus a
//! `CG:B:I` tag, and [`Record::cigar`] resolves them.

use crate::{Error, Result};

/// Size of the fixed part of a BAM record, before the read name.
pub const FIXED_LEN: usize = 32;

/// Reference-consuming CIGAR operations (`M`, `D`, `N`, `=`, `X`), indexed by op code.
const CONSUMES_REF: [bool; 16] = [
    true, false, true, true, false, false, false, true, true, false, false, false, false, false,
    false, false,
];

/// SAM flag bits used by the library.
pub mod flags {
    /// Read unmapped.
    pub const UNMAPPED: u16 = 0x4;
    /// Read is a PCR or optical duplicate.
    pub const DUPLICATE: u16 = 0x400;
    /// Secondary alignment.
    pub const SECONDARY: u16 = 0x100;
    /// Supplementary alignment.
    pub const SUPPLEMENTARY: u16 = 0x800;
}

/// An alignment record: the bytes of a BAM record after its `block_size`.
///
/// ```
/// use bams3_core::Record;
/// let r = Record::from_sam_fields_for_doc();
/// assert_eq!(r.name(), b"r1");
/// assert_eq!(r.pos(), 99);
/// assert_eq!(r.end(), 103);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    buf: Vec<u8>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("name", &String::from_utf8_lossy(self.name()))
            .field("ref_id", &self.ref_id())
            .field("pos", &self.pos())
            .field("flag", &self.flag())
            .finish()
    }
}

#[inline]
fn le_i32(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl Record {
    /// Takes the bytes of one BAM record (without `block_size`), checking that the lengths it
    /// declares fit inside it, so that no accessor can read out of bounds later.
    pub fn from_bytes(buf: Vec<u8>) -> Result<Record> {
        let bad = |d: &str| Err(Error::corrupt("BAM record", d.to_string()));
        if buf.len() < FIXED_LEN {
            return bad("record shorter than its 32-byte fixed part");
        }
        let l_name = buf[8] as usize;
        if l_name == 0 {
            return bad("read name length is zero");
        }
        let n_cigar = le_u16(&buf, 12) as usize;
        let l_seq = le_i32(&buf, 16);
        if l_seq < 0 {
            return bad("negative sequence length");
        }
        let l_seq = l_seq as usize;
        let need = FIXED_LEN + l_name + 4 * n_cigar + l_seq.div_ceil(2) + l_seq;
        if need > buf.len() {
            return bad("field lengths run past the end of the record");
        }
        if buf[FIXED_LEN + l_name - 1] != 0 {
            return bad("read name is not NUL-terminated");
        }
        Ok(Record { buf })
    }

    /// The record's BAM bytes (without `block_size`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Gives the buffer back.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Reference index, -1 when unplaced.
    pub fn ref_id(&self) -> i32 {
        le_i32(&self.buf, 0)
    }
    /// 0-based leftmost position, -1 when unplaced.
    pub fn pos(&self) -> i32 {
        le_i32(&self.buf, 4)
    }
    /// Length of the read name including its NUL.
    pub fn l_read_name(&self) -> usize {
        self.buf[8] as usize
    }
    /// Mapping quality.
    pub fn mapq(&self) -> u8 {
        self.buf[9]
    }
    /// BAI bin as stored.
    pub fn bin(&self) -> u16 {
        le_u16(&self.buf, 10)
    }
    /// Number of CIGAR operations stored in the CIGAR field (the placeholder for long CIGARs).
    pub fn n_cigar_op(&self) -> usize {
        le_u16(&self.buf, 12) as usize
    }
    /// SAM flag.
    pub fn flag(&self) -> u16 {
        le_u16(&self.buf, 14)
    }
    /// Number of bases.
    pub fn l_seq(&self) -> usize {
        le_i32(&self.buf, 16) as usize
    }
    /// Mate reference index.
    pub fn next_ref_id(&self) -> i32 {
        le_i32(&self.buf, 20)
    }
    /// Mate 0-based position.
    pub fn next_pos(&self) -> i32 {
        le_i32(&self.buf, 24)
    }
    /// Template length.
    pub fn tlen(&self) -> i32 {
        le_i32(&self.buf, 28)
    }
    /// Read name without its NUL.
    pub fn name(&self) -> &[u8] {
        &self.buf[FIXED_LEN..FIXED_LEN + self.l_read_name() - 1]
    }
    fn cigar_at(&self) -> usize {
        FIXED_LEN + self.l_read_name()
    }
    fn seq_at(&self) -> usize {
        self.cigar_at() + 4 * self.n_cigar_op()
    }
    fn qual_at(&self) -> usize {
        self.seq_at() + self.l_seq().div_ceil(2)
    }
    fn aux_at(&self) -> usize {
        self.qual_at() + self.l_seq()
    }
    /// The stored CIGAR field as little-endian `u32` words.
    pub fn raw_cigar(&self) -> &[u8] {
        &self.buf[self.cigar_at()..self.seq_at()]
    }
    /// 4-bit packed bases, two per byte, as in BAM.
    pub fn packed_seq(&self) -> &[u8] {
        &self.buf[self.seq_at()..self.qual_at()]
    }
    /// Phred qualities (no +33); `0xFF` in the first byte means "missing".
    pub fn qual(&self) -> &[u8] {
        &self.buf[self.qual_at()..self.aux_at()]
    }
    /// Raw auxiliary data (tags) in BAM encoding.
    pub fn aux(&self) -> &[u8] {
        &self.buf[self.aux_at()..]
    }

    /// The real CIGAR as little-endian `u32` words: the `CG` tag's array when the stored CIGAR
    /// is BAM's long-CIGAR placeholder (see [`Record::long_cigar`]).
    pub fn cigar(&self) -> &[u8] {
        match self.long_cigar() {
            Some((ops, _)) => ops,
            None => self.raw_cigar(),
        }
    }

    /// Whether the stored CIGAR is the long-CIGAR placeholder backed by a `CG:B:I` tag.
    pub fn has_long_cigar(&self) -> bool {
        self.long_cigar().is_some()
    }

    /// The operations of a long CIGAR and the index of the `CG` tag holding them, under
    /// htslib's exact rule (`bam_tag2cigar`): the read is placed, the stored CIGAR starts with
    /// a soft clip of the whole read, and the *first* `CG` tag is a `B:I`/`B:i` array with at
    /// least as many operations as the stored CIGAR. htslib then uses those operations and
    /// drops the tag, so SAM output and overlap tests must do the same.
    pub fn long_cigar(&self) -> Option<(&[u8], usize)> {
        let raw = self.raw_cigar();
        let w = raw.get(..4)?;
        let op0 = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        if self.ref_id() < 0
            || self.pos() < 0
            || op0 & 0xf != 4
            || (op0 >> 4) as usize != self.l_seq()
        {
            return None;
        }
        for (i, field) in AuxIter::new(self.aux()).enumerate() {
            let field = field.ok()?;
            if &field.tag != b"CG" {
                continue;
            }
            if field.ty != b'B' || !matches!(field.value[0], b'I' | b'i') {
                return None;
            }
            let ops = &field.value[5..];
            let n = ops.len() / 4;
            return (n >= raw.len() / 4 && n < 1 << 29).then_some((ops, i));
        }
        None
    }

    /// Reference length covered by the alignment (sum of `M`, `D`, `N`, `=`, `X`).
    pub fn reference_len(&self) -> i64 {
        cigar_reference_len(self.cigar())
    }

    /// Exclusive 0-based end used for overlap tests, as htslib's `bam_endpos`: unmapped reads
    /// and alignments that consume no reference cover one base.
    pub fn end(&self) -> i64 {
        end_pos(self.pos() as i64, self.flag(), self.cigar())
    }

    /// Iterates the tags in stored order.
    pub fn aux_fields(&self) -> AuxIter<'_> {
        AuxIter::new(self.aux())
    }

    /// A tiny record for documentation examples: `r1`, chr 0, pos 99, `4M`, `ACGT`.
    #[doc(hidden)]
    pub fn from_sam_fields_for_doc() -> Record {
        let mut b = Vec::new();
        b.extend_from_slice(&0i32.to_le_bytes());
        b.extend_from_slice(&99i32.to_le_bytes());
        b.push(3);
        b.push(60);
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&4i32.to_le_bytes());
        b.extend_from_slice(&(-1i32).to_le_bytes());
        b.extend_from_slice(&(-1i32).to_le_bytes());
        b.extend_from_slice(&0i32.to_le_bytes());
        b.extend_from_slice(b"r1\0");
        b.extend_from_slice(&(4u32 << 4).to_le_bytes());
        b.extend_from_slice(&[0x12, 0x48]);
        b.extend_from_slice(&[30, 30, 30, 30]);
        Record::from_bytes(b).expect("valid doc record")
    }
}

/// htslib's `bam_endpos` from the fields it needs: `pos` plus the reference length of the
/// (stored, `u32` LE) `cigar`, at least one base, and one base for an unmapped record.
///
/// ```
/// use bams3_core::record::end_pos;
/// let cigar: Vec<u8> = [(10u32 << 4), (5 << 4) | 2].iter().flat_map(|w| w.to_le_bytes()).collect();
/// assert_eq!(end_pos(100, 0, &cigar), 115); // 10M5D
/// assert_eq!(end_pos(100, 0x4, &cigar), 101); // unmapped
/// assert_eq!(end_pos(100, 0, &[]), 101);
/// ```
pub fn end_pos(pos: i64, flag: u16, cigar: &[u8]) -> i64 {
    let rlen = if flag & flags::UNMAPPED != 0 {
        0
    } else {
        cigar_reference_len(cigar)
    };
    pos + rlen.max(1)
}

/// Reference length of a CIGAR given as little-endian `u32` words (sum of `M`, `D`, `N`, `=`,
/// `X`).
pub fn cigar_reference_len(cigar: &[u8]) -> i64 {
    cigar
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .filter(|op| CONSUMES_REF[(op & 0xf) as usize])
        .map(|op| (op >> 4) as i64)
        .sum()
}

/// The BAI bin of a 0-based half-open interval, as `reg2bin` in the SAM specification.
pub fn reg2bin(beg: i64, end: i64) -> u16 {
    let end = end - 1;
    for (shift, offset) in [(14, 4681), (17, 585), (20, 73), (23, 9), (26, 1)] {
        if beg >> shift == end >> shift {
            return (offset + (beg >> shift)) as u16;
        }
    }
    0
}

/// One tag: its two-letter name, its type code and its value bytes in BAM encoding (for `Z` and
/// `H` without the NUL; for `B` starting at the subtype byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuxField<'a> {
    /// Two-character tag name.
    pub tag: [u8; 2],
    /// BAM type code (`A c C s S i I f Z H B`).
    pub ty: u8,
    /// Value bytes.
    pub value: &'a [u8],
}

/// Iterator over BAM-encoded tags; yields an error (once) on malformed data instead of panicking.
pub struct AuxIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> AuxIter<'a> {
    /// Iterates the tags in `aux`.
    pub fn new(aux: &'a [u8]) -> Self {
        AuxIter {
            rest: aux,
            failed: false,
        }
    }
}

/// Size in bytes of one value of a fixed-size BAM tag type.
pub fn aux_type_size(ty: u8) -> Option<usize> {
    match ty {
        b'A' | b'c' | b'C' => Some(1),
        b's' | b'S' => Some(2),
        b'i' | b'I' | b'f' => Some(4),
        _ => None,
    }
}

impl<'a> Iterator for AuxIter<'a> {
    type Item = Result<AuxField<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let r = self.rest;
        let fail = |s: &mut Self, d: &str| {
            s.failed = true;
            Some(Err(Error::corrupt("BAM record tags", d.to_string())))
        };
        if r.len() < 3 {
            return fail(self, "truncated tag");
        }
        let tag = [r[0], r[1]];
        let ty = r[2];
        let body = &r[3..];
        let len = match ty {
            b'Z' | b'H' => match body.iter().position(|&c| c == 0) {
                Some(n) => {
                    let value = &body[..n];
                    self.rest = &body[n + 1..];
                    return Some(Ok(AuxField { tag, ty, value }));
                }
                None => return fail(self, "string tag without NUL terminator"),
            },
            b'B' => {
                if body.len() < 5 {
                    return fail(self, "truncated B array");
                }
                let Some(size) = aux_type_size(body[0]).filter(|_| body[0] != b'A') else {
                    return fail(self, "bad B array subtype");
                };
                let n = u32::from_le_bytes([body[1], body[2], body[3], body[4]]) as usize;
                match n.checked_mul(size).and_then(|x| x.checked_add(5)) {
                    Some(l) => l,
                    None => return fail(self, "B array too long"),
                }
            }
            t => match aux_type_size(t) {
                Some(s) => s,
                None => return fail(self, "unknown tag type"),
            },
        };
        if body.len() < len {
            return fail(self, "tag value runs past the end of the record");
        }
        self.rest = &body[len..];
        Some(Ok(AuxField {
            tag,
            ty,
            value: &body[..len],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_truncated_records() {
        let r = Record::from_sam_fields_for_doc();
        let bytes = r.as_bytes().to_vec();
        for cut in 0..bytes.len() - 4 {
            assert!(
                Record::from_bytes(bytes[..cut].to_vec()).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn reg2bin_matches_spec_examples() {
        assert_eq!(reg2bin(-1, 0), 4680);
        assert_eq!(reg2bin(0, 1), 4681);
        assert_eq!(reg2bin(0, 1 << 14), 4681);
        assert_eq!(reg2bin(0, (1 << 14) + 1), 585);
    }

    #[test]
    fn malformed_aux_is_an_error_not_a_panic() {
        for aux in [&b"NMi\x01"[..], b"XZZabc", b"XBBc\xff\xff\xff\xff", b"X"] {
            let v: Vec<_> = AuxIter::new(aux).collect();
            assert!(v.last().unwrap().is_err());
        }
    }
}
