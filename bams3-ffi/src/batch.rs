//! `bams3_batch_*` and `bams3_query_next_batch`: a query's records in columns, many at a time.
//!
//! One call fills up to `capacity` records into column arrays (Arrow-style: fixed-width
//! columns, and variable-length ones as one byte buffer plus `n + 1` offsets), so a binding
//! that reads a million records makes a few dozen calls instead of one per field per record.
//! Only the variable-length columns asked for at creation are built.

use std::ffi::{c_char, c_int};

use bams3_core::Record;

use crate::error::{Failure, FfiResult, BAMS3_ERR_INVALID, BAMS3_OK};
use crate::panic::{guard, handle, handle_mut, out_param};
use crate::query::bams3_query;

/// Column bit for `bams3_batch_new`: read names (QNAME, without NUL).
pub const BAMS3_COLUMN_NAME: u32 = 1;
/// Column bit: CIGAR as SAM text, long CIGARs resolved (`""` when the record has none).
pub const BAMS3_COLUMN_CIGAR: u32 = 1 << 1;
/// Column bit: bases as SAM text (`=ACMGRSVTWYHKDBN`; `""` when SEQ is `*`).
pub const BAMS3_COLUMN_SEQ: u32 = 1 << 2;
/// Column bit: base qualities as raw Phred values (no +33; 0xFF when missing), one per base.
pub const BAMS3_COLUMN_QUAL: u32 = 1 << 3;
/// Column bit: the tags in BAM encoding, in stored order (the `CG` tag of a resolved long
/// CIGAR left out, as htslib does).
pub const BAMS3_COLUMN_AUX: u32 = 1 << 4;
/// Column bit for `bams3_reader_query_columns`: the mate fields (RNEXT, PNEXT, TLEN). A batch
/// always fills its mate columns; this bit says whether the query decodes them.
pub const BAMS3_COLUMN_MATE: u32 = 1 << 5;
/// Every column bit.
pub const BAMS3_COLUMN_ALL: u32 = 0x3f;

/// Largest `capacity` a batch accepts.
const MAX_CAPACITY: usize = 1 << 24;

/// A reusable set of column buffers. Opaque: create with `bams3_batch_new`, fill with
/// `bams3_query_next_batch`, read with `bams3_batch_get_columns`, release with `bams3_batch_free`.
/// Use a batch from one thread at a time.
pub struct bams3_batch {
    columns: u32,
    capacity: usize,
    flag: Vec<u16>,
    ref_id: Vec<i32>,
    pos: Vec<i32>,
    end: Vec<i64>,
    mapq: Vec<u8>,
    next_ref_id: Vec<i32>,
    next_pos: Vec<i32>,
    tlen: Vec<i32>,
    query_len: Vec<i32>,
    seq_len: Vec<i32>,
    name: Bytes,
    cigar: Bytes,
    seq: Bytes,
    qual: Bytes,
    aux: Bytes,
}

/// One variable-length column: every value's bytes back to back, and `n + 1` offsets.
#[derive(Default)]
struct Bytes {
    data: Vec<u8>,
    offsets: Vec<usize>,
}

impl Bytes {
    fn clear(&mut self) {
        self.data.clear();
        self.offsets.clear();
        self.offsets.push(0);
    }
    fn close(&mut self) {
        self.offsets.push(self.data.len());
    }
    fn ptrs(&self, on: bool) -> (*const u8, *const usize) {
        if on {
            (self.data.as_ptr(), self.offsets.as_ptr())
        } else {
            (std::ptr::null(), std::ptr::null())
        }
    }
}

/// The columns of a filled batch, as `bams3_batch_get_columns` returns them. Every pointer stays
/// valid until the batch is filled again or freed. Variable-length column `x` holds value `i`
/// in bytes `x[x_offsets[i]] .. x[x_offsets[i + 1]]` (no NUL terminators); a column not asked
/// for at creation has NULL pointers. Positions are 0-based, as in BAM (-1 for none).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bams3_batch_columns {
    /// Number of records in the batch.
    pub n: usize,
    /// FLAG.
    pub flag: *const u16,
    /// Reference index, -1 for none.
    pub ref_id: *const i32,
    /// 0-based leftmost position, -1 for none.
    pub pos: *const i32,
    /// 0-based exclusive end on the reference (as `bams3_record_end`).
    pub end: *const i64,
    /// MAPQ (255 = unavailable).
    pub mapq: *const u8,
    /// Mate's reference index, -1 for none.
    pub next_ref_id: *const i32,
    /// Mate's 0-based position, -1 for none.
    pub next_pos: *const i32,
    /// TLEN.
    pub tlen: *const i32,
    /// Query length from the CIGAR (sum of M, I, S, =, X; htslib's `bam_cigar2qlen`).
    pub query_len: *const i32,
    /// Number of bases in SEQ (0 when `*`).
    pub seq_len: *const i32,
    /// QNAME bytes (`BAMS3_COLUMN_NAME`).
    pub name: *const c_char,
    /// `n + 1` offsets into `name`.
    pub name_offsets: *const usize,
    /// CIGAR text (`BAMS3_COLUMN_CIGAR`).
    pub cigar: *const c_char,
    /// `n + 1` offsets into `cigar`.
    pub cigar_offsets: *const usize,
    /// Bases as text (`BAMS3_COLUMN_SEQ`).
    pub seq: *const c_char,
    /// `n + 1` offsets into `seq`.
    pub seq_offsets: *const usize,
    /// Raw Phred qualities (`BAMS3_COLUMN_QUAL`).
    pub qual: *const u8,
    /// `n + 1` offsets into `qual`.
    pub qual_offsets: *const usize,
    /// BAM-encoded tags (`BAMS3_COLUMN_AUX`).
    pub aux: *const u8,
    /// `n + 1` offsets into `aux`.
    pub aux_offsets: *const usize,
}

const CIGAR_OPS: &[u8; 16] = b"MIDNSHP=XBBBBBBB";
const SEQ_CODES: &[u8; 16] = b"=ACMGRSVTWYHKDBN";
/// Query-consuming CIGAR operations (`M`, `I`, `S`, `=`, `X`), indexed by op code.
const CONSUMES_QUERY: u16 = 0b1_1001_0011;

impl bams3_batch {
    fn clear(&mut self) {
        for v in [
            &mut self.ref_id,
            &mut self.pos,
            &mut self.next_ref_id,
            &mut self.next_pos,
            &mut self.tlen,
            &mut self.query_len,
            &mut self.seq_len,
        ] {
            v.clear();
        }
        self.flag.clear();
        self.end.clear();
        self.mapq.clear();
        for b in [
            &mut self.name,
            &mut self.cigar,
            &mut self.seq,
            &mut self.qual,
            &mut self.aux,
        ] {
            b.clear();
        }
    }

    fn on(&self, column: u32) -> bool {
        self.columns & column != 0
    }

    fn push(&mut self, r: &Record) {
        let cigar = r.cigar();
        let ops = cigar
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        self.flag.push(r.flag());
        self.ref_id.push(r.ref_id());
        self.pos.push(r.pos());
        self.end.push(r.end());
        self.mapq.push(r.mapq());
        self.next_ref_id.push(r.next_ref_id());
        self.next_pos.push(r.next_pos());
        self.tlen.push(r.tlen());
        let qlen: u64 = ops
            .clone()
            .filter(|op| CONSUMES_QUERY & (1 << (op & 0xf)) != 0)
            .map(|op| u64::from(op >> 4))
            .sum();
        self.query_len.push(i32::try_from(qlen).unwrap_or(i32::MAX));
        let l_seq = r.l_seq();
        self.seq_len.push(i32::try_from(l_seq).unwrap_or(i32::MAX));
        if self.on(BAMS3_COLUMN_NAME) {
            self.name.data.extend_from_slice(r.name());
            self.name.close();
        }
        if self.on(BAMS3_COLUMN_CIGAR) {
            let out = &mut self.cigar.data;
            for op in ops {
                let mut n = op >> 4;
                let mut digits = [0u8; 10];
                let mut i = digits.len();
                loop {
                    i -= 1;
                    digits[i] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                out.extend_from_slice(&digits[i..]);
                out.push(CIGAR_OPS[(op & 0xf) as usize]);
            }
            self.cigar.close();
        }
        if self.on(BAMS3_COLUMN_SEQ) {
            let packed = r.packed_seq();
            let out = &mut self.seq.data;
            out.reserve(l_seq);
            for i in 0..l_seq {
                let b = packed[i / 2];
                let code = if i % 2 == 0 { b >> 4 } else { b & 0xf };
                out.push(SEQ_CODES[code as usize]);
            }
            self.seq.close();
        }
        if self.on(BAMS3_COLUMN_QUAL) {
            self.qual.data.extend_from_slice(r.qual());
            self.qual.close();
        }
        if self.on(BAMS3_COLUMN_AUX) {
            match r.long_cigar() {
                None => self.aux.data.extend_from_slice(r.aux()),
                Some((_, cg)) => {
                    // Copy every tag but the CG one, whose span is found by walking the tags.
                    let aux = r.aux();
                    let mut at = 0;
                    for (i, f) in r.aux_fields().enumerate() {
                        let Ok(f) = f else { break };
                        let len = 3 + f.value.len() + usize::from(matches!(f.ty, b'Z' | b'H'));
                        if i != cg {
                            self.aux.data.extend_from_slice(&aux[at..at + len]);
                        }
                        at += len;
                    }
                }
            }
            self.aux.close();
        }
    }

    fn columns(&self) -> bams3_batch_columns {
        let (name, name_offsets) = self.name.ptrs(self.on(BAMS3_COLUMN_NAME));
        let (cigar, cigar_offsets) = self.cigar.ptrs(self.on(BAMS3_COLUMN_CIGAR));
        let (seq, seq_offsets) = self.seq.ptrs(self.on(BAMS3_COLUMN_SEQ));
        let (qual, qual_offsets) = self.qual.ptrs(self.on(BAMS3_COLUMN_QUAL));
        let (aux, aux_offsets) = self.aux.ptrs(self.on(BAMS3_COLUMN_AUX));
        bams3_batch_columns {
            n: self.flag.len(),
            flag: self.flag.as_ptr(),
            ref_id: self.ref_id.as_ptr(),
            pos: self.pos.as_ptr(),
            end: self.end.as_ptr(),
            mapq: self.mapq.as_ptr(),
            next_ref_id: self.next_ref_id.as_ptr(),
            next_pos: self.next_pos.as_ptr(),
            tlen: self.tlen.as_ptr(),
            query_len: self.query_len.as_ptr(),
            seq_len: self.seq_len.as_ptr(),
            name: name.cast(),
            name_offsets,
            cigar: cigar.cast(),
            cigar_offsets,
            seq: seq.cast(),
            seq_offsets,
            qual,
            qual_offsets,
            aux,
            aux_offsets,
        }
    }
}

/// Creates a batch of up to `capacity` records (1 to 16,777,216) filling the fixed-width
/// columns and the variable-length ones whose `BAMS3_COLUMN_*` bits are set in `columns`.
///
/// Errors: `BAMS3_ERR_NULL`, `BAMS3_ERR_INVALID` (capacity out of range or unknown bits).
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_batch_new(
    columns: u32,
    capacity: usize,
    out: *mut *mut bams3_batch,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(Failure::new(
                BAMS3_ERR_INVALID,
                format!("batch capacity {capacity} is not between 1 and {MAX_CAPACITY}"),
            ));
        }
        if columns & !BAMS3_COLUMN_ALL != 0 {
            return Err(Failure::new(
                BAMS3_ERR_INVALID,
                format!("unknown column bits 0x{:x}", columns & !BAMS3_COLUMN_ALL),
            ));
        }
        let mut b = bams3_batch {
            columns,
            capacity,
            flag: Vec::new(),
            ref_id: Vec::new(),
            pos: Vec::new(),
            end: Vec::new(),
            mapq: Vec::new(),
            next_ref_id: Vec::new(),
            next_pos: Vec::new(),
            tlen: Vec::new(),
            query_len: Vec::new(),
            seq_len: Vec::new(),
            name: Bytes::default(),
            cigar: Bytes::default(),
            seq: Bytes::default(),
            qual: Bytes::default(),
            aux: Bytes::default(),
        };
        b.clear();
        out.write(Box::into_raw(Box::new(b)));
        Ok(())
    })
}

/// Releases a batch. NULL is ignored.
///
/// # Safety
/// `b` must be NULL or a live batch, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn bams3_batch_free(b: *mut bams3_batch) {
    let _ = guard(|| {
        if !b.is_null() {
            drop(Box::from_raw(b));
        }
        Ok(())
    });
}

/// Fills `b` with the query's next records, replacing what it held. Returns how many (1 to
/// the batch's capacity); 0 at the end; or a negative error code. Records before an error are
/// returned first: the error comes from the next call, and every call after it repeats it (as
/// `bams3_query_next`). Mixing this with `bams3_query_next` on one query is allowed; a record
/// from `bams3_query_next` is invalidated by this call.
///
/// # Safety
/// `q` must be NULL or a live query; `b` NULL or a live batch.
#[no_mangle]
pub unsafe extern "C" fn bams3_query_next_batch(q: *mut bams3_query, b: *mut bams3_batch) -> c_int {
    let mut n = 0usize;
    let rc = guard(|| {
        let q = handle_mut(q, "query")?;
        let b = handle_mut(b, "batch")?;
        b.clear();
        fill(q, b)?;
        n = b.flag.len();
        Ok(())
    });
    if rc == BAMS3_OK {
        c_int::try_from(n).unwrap_or(c_int::MAX)
    } else {
        rc
    }
}

fn fill(q: &mut bams3_query, b: &mut bams3_batch) -> FfiResult<()> {
    if let Some((code, msg)) = &q.failed {
        return Err(Failure::new(*code, msg.clone()));
    }
    q.current = None;
    while !q.done && b.flag.len() < b.capacity {
        match q.iter.next() {
            None => q.done = true,
            Some(Err(e)) => {
                let f = Failure::from(e);
                q.failed = Some((f.code, f.message.clone()));
                if b.flag.is_empty() {
                    return Err(f);
                }
                break;
            }
            Some(Ok(rec)) => b.push(&rec),
        }
    }
    Ok(())
}

/// Stores the columns of the batch's current records in `*out` (see `bams3_batch_columns`).
/// The pointers stay valid until `b` is filled again or freed.
///
/// # Safety
/// `b` must be NULL or a live batch; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_batch_get_columns(
    b: *const bams3_batch,
    out: *mut bams3_batch_columns,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let b = handle(b, "batch")?;
        out.write(b.columns());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_fills_every_column() {
        let mut b: *mut bams3_batch = std::ptr::null_mut();
        assert_eq!(unsafe { bams3_batch_new(BAMS3_COLUMN_ALL, 4, &mut b) }, 0);
        let batch = unsafe { &mut *b };
        let r = Record::from_sam_fields_for_doc();
        batch.push(&r);
        let c = batch.columns();
        assert_eq!(c.n, 1);
        let text = |p: *const c_char, o: *const usize| unsafe {
            let (a, z) = (*o, *o.add(1));
            std::slice::from_raw_parts(p.cast::<u8>().add(a), z - a).to_vec()
        };
        assert_eq!(text(c.name, c.name_offsets), b"r1");
        assert_eq!(text(c.cigar, c.cigar_offsets), b"4M");
        assert_eq!(text(c.seq, c.seq_offsets), b"ACGT");
        assert_eq!(unsafe { *c.query_len }, 4);
        assert_eq!(unsafe { *c.end }, 103);
        unsafe { bams3_batch_free(b) };
    }

    #[test]
    fn bad_arguments_are_errors() {
        let mut b: *mut bams3_batch = std::ptr::null_mut();
        assert_eq!(unsafe { bams3_batch_new(0, 0, &mut b) }, BAMS3_ERR_INVALID);
        assert_eq!(
            unsafe { bams3_batch_new(1 << 7, 1, &mut b) },
            BAMS3_ERR_INVALID
        );
        assert!(b.is_null());
        assert_eq!(
            unsafe { bams3_query_next_batch(std::ptr::null_mut(), b) },
            crate::error::BAMS3_ERR_NULL
        );
    }
}
