//! An htslib record (`bam1_t`) as the BAM bytes `samtools view -b` writes for it.
//!
//! Mirrors htslib's `bam_write1`: the name loses the padding NULs htslib adds in memory, and a
//! CIGAR of more than 65,535 operations becomes the `<len>S<span>N` placeholder with the real
//! one in a `CG:B,I` tag at the end of the record (SAM spec 4.2.2).

use super::htslib::Bam1;

/// BAM's CIGAR operation codes for the long-CIGAR placeholder.
const SOFT_CLIP: u32 = 4;
const REF_SKIP: u32 = 3;

/// The BAM encoding of `b` (without `block_size`), or what makes it unrepresentable in BAM.
pub fn bam_bytes(b: &Bam1) -> Result<Vec<u8>, String> {
    let c = &b.core;
    let data = b.data();
    let l_qname = c.l_qname as usize;
    let extranul = c.l_extranul as usize;
    let name_len = l_qname
        .checked_sub(extranul)
        .filter(|n| (1..=255).contains(n));
    let Some(name_len) = name_len else {
        return Err("read name longer than 254 characters".into());
    };
    let fits = |v: i64| i32::try_from(v).is_ok();
    if !fits(c.pos) || !fits(c.mpos) || !fits(c.isize) {
        return Err("position too large for BAM".into());
    }
    let cigar_start = l_qname;
    let cigar_end = cigar_start + 4 * c.n_cigar as usize;
    if data.len() < cigar_end {
        return Err("record shorter than its CIGAR".into());
    }
    let long = c.n_cigar > 0xffff;
    let mut out = Vec::with_capacity(32 + data.len() + if long { 16 } else { 0 });
    out.extend_from_slice(&c.tid.to_le_bytes());
    out.extend_from_slice(&(c.pos as i32).to_le_bytes());
    out.push(name_len as u8);
    out.push(c.qual);
    out.extend_from_slice(&c.bin.to_le_bytes());
    let n_cigar_field: u16 = if long { 2 } else { c.n_cigar as u16 };
    out.extend_from_slice(&n_cigar_field.to_le_bytes());
    out.extend_from_slice(&c.flag.to_le_bytes());
    out.extend_from_slice(&c.l_qseq.to_le_bytes());
    out.extend_from_slice(&c.mtid.to_le_bytes());
    out.extend_from_slice(&(c.mpos as i32).to_le_bytes());
    out.extend_from_slice(&(c.isize as i32).to_le_bytes());
    out.extend_from_slice(&data[..name_len]);
    if !long {
        out.extend_from_slice(&data[cigar_start..]);
        return Ok(out);
    }
    let cigar = &data[cigar_start..cigar_end];
    let span = reference_span(cigar);
    if span >= 1 << 28 {
        return Err("CIGAR spans too many reference bases for BAM".into());
    }
    out.extend_from_slice(&((c.l_qseq as u32) << 4 | SOFT_CLIP).to_le_bytes());
    out.extend_from_slice(&((span as u32) << 4 | REF_SKIP).to_le_bytes());
    out.extend_from_slice(&data[cigar_end..]);
    out.extend_from_slice(b"CGBI");
    out.extend_from_slice(&c.n_cigar.to_le_bytes());
    out.extend_from_slice(cigar);
    Ok(out)
}

/// Reference bases covered by a CIGAR (M, D, N, =, X).
fn reference_span(cigar: &[u8]) -> u64 {
    cigar
        .chunks_exact(4)
        .map(|op| u32::from_le_bytes([op[0], op[1], op[2], op[3]]))
        .filter(|op| matches!(op & 0xf, 0 | 2 | 3 | 7 | 8))
        .map(|op| (op >> 4) as u64)
        .sum()
}
