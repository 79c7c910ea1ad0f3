//! `bams3_query_*` and `bams3_record_*`: iterating a query and reading its records.
//!
//! A query owns its current record; text accessors format into strings cached on that record,
//! so each returned pointer stays valid until the next `bams3_query_next` or `bams3_query_free`.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::sync::Arc;

use bams3_core::dataset::{Dataset, Query};
use bams3_core::{sam, Record};

use crate::error::{Failure, FfiResult, BAMS3_ERR_CORRUPT, BAMS3_OK};
use crate::panic::{guard, guard_value, handle, handle_mut, out_param};

/// A running query. Opaque: create with `bams3_reader_query`, release with `bams3_query_free`.
/// Use a query from one thread at a time.
pub struct bams3_query {
    ds: Arc<Dataset>,
    pub(crate) iter: Query,
    pub(crate) current: Option<bams3_record>,
    /// A failure is sticky: every later `next` repeats it.
    pub(crate) failed: Option<(c_int, String)>,
    pub(crate) done: bool,
}

/// One record of a query. Opaque, owned by its query: valid until the next `bams3_query_next`
/// or `bams3_query_free`.
pub struct bams3_record {
    ds: Arc<Dataset>,
    rec: Record,
    sam_line: RefCell<Option<CString>>,
    text: RefCell<[Option<CString>; FIELDS]>,
}

/// Cached text fields, by SAM column (name, CIGAR, sequence, qualities, tags, RNAME).
const FIELDS: usize = 6;
const NAME: usize = 0;
const CIGAR: usize = 1;
const SEQ: usize = 2;
const QUAL: usize = 3;
const TAGS: usize = 4;
const RNAME: usize = 5;

pub(crate) fn new_query(ds: Arc<Dataset>, iter: Query) -> Box<bams3_query> {
    Box::new(bams3_query {
        ds,
        iter,
        current: None,
        failed: None,
        done: false,
    })
}

impl bams3_record {
    /// The SAM line without its newline, formatted once.
    fn sam_line(&self) -> FfiResult<*const c_char> {
        let mut slot = self.sam_line.borrow_mut();
        if slot.is_none() {
            let mut line = Vec::with_capacity(256);
            sam::format_record(&self.rec, self.ds.header(), &mut line)?;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            *slot =
                Some(CString::new(line).map_err(|_| {
                    Failure::new(BAMS3_ERR_CORRUPT, "record text contains a NUL byte")
                })?);
        }
        Ok(slot
            .as_ref()
            .map(|s| s.as_ptr())
            .unwrap_or(std::ptr::null()))
    }

    /// One text field, cut from the SAM line so it is exactly what `samtools view` prints.
    fn field(&self, which: usize) -> FfiResult<*const c_char> {
        if let Some(s) = &self.text.borrow()[which] {
            return Ok(s.as_ptr());
        }
        self.sam_line()?;
        let line = self.sam_line.borrow();
        let bytes = line.as_ref().map(|s| s.as_bytes()).unwrap_or_default();
        let cols: Vec<&[u8]> = bytes.splitn(12, |&b| b == b'\t').collect();
        let col = |i: usize| cols.get(i).copied().unwrap_or_default();
        let value = match which {
            NAME => col(0),
            CIGAR => col(5),
            SEQ => col(9),
            QUAL => col(10),
            TAGS => col(11),
            _ => col(2),
        };
        // Cut from a CString, so it has no interior NUL.
        let s = CString::new(value).unwrap_or_default();
        let p = s.as_ptr();
        self.text.borrow_mut()[which] = Some(s);
        Ok(p)
    }
}

/// Advances the query. Returns 1 and stores the next record in `*out`; 0 at the end (`*out` is
/// not written); or a negative error code, which every later call repeats. The record stays
/// valid until the next call or `bams3_query_free`.
///
/// # Safety
/// `q` must be NULL or a live query; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_query_next(
    q: *mut bams3_query,
    out: *mut *const bams3_record,
) -> c_int {
    let mut status = 0;
    let rc = guard(|| {
        let out = out_param(out, "out")?;
        let q = handle_mut(q, "query")?;
        if let Some((code, msg)) = &q.failed {
            return Err(Failure::new(*code, msg.clone()));
        }
        q.current = None;
        if q.done {
            return Ok(());
        }
        match q.iter.next() {
            None => q.done = true,
            Some(Err(e)) => {
                let f = Failure::from(e);
                q.failed = Some((f.code, f.message.clone()));
                return Err(f);
            }
            Some(Ok(rec)) => {
                let r = q.current.insert(bams3_record {
                    ds: q.ds.clone(),
                    rec,
                    sam_line: RefCell::new(None),
                    text: RefCell::new(Default::default()),
                });
                out.write(r as *const bams3_record);
                status = 1;
            }
        }
        Ok(())
    });
    if rc == BAMS3_OK {
        status
    } else {
        rc
    }
}

/// Releases a query and its current record. NULL is ignored.
///
/// # Safety
/// `q` must be NULL or a live query, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn bams3_query_free(q: *mut bams3_query) {
    let _ = guard(|| {
        if !q.is_null() {
            drop(Box::from_raw(q));
        }
        Ok(())
    });
}

// Plain functions rather than macros: cbindgen reads the source without expanding macros.

/// FLAG. A NULL record gives 0 and sets the last error.
///
/// # Safety
/// `rec` must be NULL or a record returned by `bams3_query_next` and still valid.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_flag(rec: *const bams3_record) -> u16 {
    guard_value(0, || {
        let r = &handle(rec, "record")?.rec;
        Ok(r.flag())
    })
}

/// Reference index (into `bams3_reader_reference`), -1 for none (`*`). NULL gives -1.
///
/// # Safety
/// `rec` must be NULL or a record returned by `bams3_query_next` and still valid.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_ref_id(rec: *const bams3_record) -> i32 {
    guard_value(-1, || {
        let r = &handle(rec, "record")?.rec;
        Ok(r.ref_id())
    })
}

/// 0-based leftmost position (SAM POS minus 1), -1 for none. NULL gives -1.
///
/// # Safety
/// `rec` must be NULL or a record returned by `bams3_query_next` and still valid.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_pos(rec: *const bams3_record) -> i64 {
    guard_value(-1, || {
        let r = &handle(rec, "record")?.rec;
        Ok(i64::from(r.pos()))
    })
}

/// 0-based exclusive end on the reference (POS + reference length of the CIGAR; POS + 1 when
/// the CIGAR consumes no reference). NULL gives -1.
///
/// # Safety
/// `rec` must be NULL or a record returned by `bams3_query_next` and still valid.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_end(rec: *const bams3_record) -> i64 {
    guard_value(-1, || {
        let r = &handle(rec, "record")?.rec;
        Ok(r.end())
    })
}

/// MAPQ (255 = unavailable). NULL gives 255.
///
/// # Safety
/// `rec` must be NULL or a record returned by `bams3_query_next` and still valid.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_mapq(rec: *const bams3_record) -> u8 {
    guard_value(255, || {
        let r = &handle(rec, "record")?.rec;
        Ok(r.mapq())
    })
}

/// Mate's reference index, -1 for none. NULL gives -1.
///
/// # Safety
/// `rec` must be NULL or a record returned by `bams3_query_next` and still valid.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_next_ref_id(rec: *const bams3_record) -> i32 {
    guard_value(-1, || {
        let r = &handle(rec, "record")?.rec;
        Ok(r.next_ref_id())
    })
}

/// Mate's 0-based position (SAM PNEXT minus 1), -1 for none. NULL gives -1.
///
/// # Safety
/// `rec` must be NULL or a record returned by `bams3_query_next` and still valid.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_next_pos(rec: *const bams3_record) -> i64 {
    guard_value(-1, || {
        let r = &handle(rec, "record")?.rec;
        Ok(i64::from(r.next_pos()))
    })
}

/// Template length (TLEN). NULL gives 0.
///
/// # Safety
/// `rec` must be NULL or a record returned by `bams3_query_next` and still valid.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_tlen(rec: *const bams3_record) -> i64 {
    guard_value(0, || {
        let r = &handle(rec, "record")?.rec;
        Ok(i64::from(r.tlen()))
    })
}

/// Sequence length in bases (0 when SEQ is `*`). NULL gives 0.
///
/// # Safety
/// `rec` must be NULL or a record returned by `bams3_query_next` and still valid.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_seq_len(rec: *const bams3_record) -> usize {
    guard_value(0, || {
        let r = &handle(rec, "record")?.rec;
        Ok(r.l_seq())
    })
}

/// QNAME. The string belongs to the record: valid until the next `bams3_query_next` or
/// `bams3_query_free`.
///
/// # Safety
/// `rec` must be NULL or a valid record; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_name(
    rec: *const bams3_record,
    out: *mut *const c_char,
) -> c_int {
    text_field(rec, out, Some(NAME))
}

/// RNAME: the reference name (`*` for none). The string belongs to the record: valid until the next `bams3_query_next` or
/// `bams3_query_free`.
///
/// # Safety
/// `rec` must be NULL or a valid record; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_ref_name(
    rec: *const bams3_record,
    out: *mut *const c_char,
) -> c_int {
    text_field(rec, out, Some(RNAME))
}

/// CIGAR as SAM text (`*` when absent; long CIGARs in full). The string belongs to the record: valid until the next `bams3_query_next` or
/// `bams3_query_free`.
///
/// # Safety
/// `rec` must be NULL or a valid record; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_cigar_string(
    rec: *const bams3_record,
    out: *mut *const c_char,
) -> c_int {
    text_field(rec, out, Some(CIGAR))
}

/// SEQ as SAM text (`*` when absent). The string belongs to the record: valid until the next `bams3_query_next` or
/// `bams3_query_free`.
///
/// # Safety
/// `rec` must be NULL or a valid record; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_sequence(
    rec: *const bams3_record,
    out: *mut *const c_char,
) -> c_int {
    text_field(rec, out, Some(SEQ))
}

/// QUAL as SAM text, Phred+33 (`*` when absent). The string belongs to the record: valid until the next `bams3_query_next` or
/// `bams3_query_free`.
///
/// # Safety
/// `rec` must be NULL or a valid record; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_qualities(
    rec: *const bams3_record,
    out: *mut *const c_char,
) -> c_int {
    text_field(rec, out, Some(QUAL))
}

/// The optional fields as SAM text, tab-separated in stored order (`""` when none). The string belongs to the record: valid until the next `bams3_query_next` or
/// `bams3_query_free`.
///
/// # Safety
/// `rec` must be NULL or a valid record; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_tags_sam(
    rec: *const bams3_record,
    out: *mut *const c_char,
) -> c_int {
    text_field(rec, out, Some(TAGS))
}

/// The whole record as one SAM line without newline, byte-identical to `samtools view`. The string belongs to the record: valid until the next `bams3_query_next` or
/// `bams3_query_free`.
///
/// # Safety
/// `rec` must be NULL or a valid record; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_sam_line(
    rec: *const bams3_record,
    out: *mut *const c_char,
) -> c_int {
    text_field(rec, out, None)
}

/// The body of every text accessor: `field` of the record, or the whole SAM line for `None`.
///
/// # Safety
/// As for the accessors.
unsafe fn text_field(
    rec: *const bams3_record,
    out: *mut *const c_char,
    field: Option<usize>,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let rec = handle(rec, "record")?;
        let p = match field {
            Some(f) => rec.field(f)?,
            None => rec.sam_line()?,
        };
        out.write(p);
        Ok(())
    })
}

/// The record's raw BAM bytes in the layout `bams3_writer_add_bam` takes (no `block_size`).
/// The bytes belong to the record.
///
/// # Safety
/// `rec` must be NULL or a valid record; `data` and `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_record_bam(
    rec: *const bams3_record,
    data: *mut *const u8,
    len: *mut usize,
) -> c_int {
    guard(|| {
        let data = out_param(data, "data")?;
        let len = out_param(len, "len")?;
        let rec = handle(rec, "record")?;
        let b = rec.rec.as_bytes();
        data.write(b.as_ptr());
        len.write(b.len());
        Ok(())
    })
}
