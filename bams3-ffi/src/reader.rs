//! `bams3_reader_*`: opening a dataset, its header and references, region queries and stats.

use std::ffi::{c_char, c_int, CString};
use std::sync::Arc;

use bams3_core::chunk::{Fields, StreamId};
use bams3_core::dataset::{Dataset, Query, RecordFilter};
use bams3_core::region::Region;

use crate::batch::{
    BAMS3_COLUMN_ALL, BAMS3_COLUMN_MATE, BAMS3_COLUMN_NAME, BAMS3_COLUMN_QUAL, BAMS3_COLUMN_SEQ,
};
use crate::error::{Failure, FfiResult, BAMS3_ERR_INVALID};
use crate::panic::{c_str, guard, handle, out_param};
use crate::query::{bams3_query, new_query};

/// An open, committed dataset. Opaque: create with `bams3_reader_open`, release with
/// `bams3_reader_free`. A reader is immutable and may be shared by threads; each thread should
/// run its own queries.
pub struct bams3_reader {
    location: String,
    ds: Arc<Dataset>,
    header_text: CString,
    ref_names: Vec<CString>,
}

/// Record filters for `bams3_reader_query`, as `samtools view -q/-f/-F`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct bams3_filter {
    /// Keep records with MAPQ at least this.
    pub min_mapq: u8,
    /// Keep records with all these flag bits set.
    pub require_flags: u16,
    /// Keep records with none of these flag bits set.
    pub exclude_flags: u16,
}

fn to_cstring(s: &str, what: &str) -> FfiResult<CString> {
    CString::new(s).map_err(|_| {
        Failure::new(
            BAMS3_ERR_INVALID,
            format!("{what} contains a NUL byte and cannot be returned as a C string"),
        )
    })
}

/// Opens the committed dataset at `location` (a directory, or `s3://bucket/prefix` where the
/// build supports it) and stores a new handle in `*out`.
///
/// Errors: `BAMS3_ERR_NULL`, `BAMS3_ERR_UTF8`, `BAMS3_ERR_NOT_FOUND`, `BAMS3_ERR_INCOMPLETE`
/// (never committed), `BAMS3_ERR_CORRUPT`, `BAMS3_ERR_IO`, `BAMS3_ERR_INVALID`.
///
/// # Safety
/// `location` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_reader_open(
    location: *const c_char,
    out: *mut *mut bams3_reader,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let location = c_str(location, "location")?;
        let ds = Dataset::open_location(location, &bams3_core::dataset::OpenOptions::default())?;
        let header_text = to_cstring(&ds.header().sam_text(), "the header")?;
        let ref_names = ds
            .header()
            .references
            .iter()
            .map(|r| to_cstring(&r.name, "a reference name"))
            .collect::<FfiResult<Vec<_>>>()?;
        out.write(Box::into_raw(Box::new(bams3_reader {
            location: location.to_string(),
            ds,
            header_text,
            ref_names,
        })));
        Ok(())
    })
}

/// Releases a reader. NULL is ignored. Queries opened from it stay valid (they hold their own
/// reference to the dataset), but strings it returned do not.
///
/// # Safety
/// `r` must be NULL or a live reader, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn bams3_reader_free(r: *mut bams3_reader) {
    let _ = guard(|| {
        if !r.is_null() {
            drop(Box::from_raw(r));
        }
        Ok(())
    });
}

/// The SAM header text, as `samtools view -H` prints it (every line ends with `\n`). The string
/// belongs to the reader and stays valid until `bams3_reader_free`.
///
/// # Safety
/// `r` must be NULL or a live reader; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_reader_header_text(
    r: *const bams3_reader,
    out: *mut *const c_char,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let r = handle(r, "reader")?;
        out.write(r.header_text.as_ptr());
        Ok(())
    })
}

/// The number of references (`@SQ` lines) in `*out`.
///
/// # Safety
/// `r` must be NULL or a live reader; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_reader_n_references(
    r: *const bams3_reader,
    out: *mut usize,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let r = handle(r, "reader")?;
        out.write(r.ref_names.len());
        Ok(())
    })
}

/// Reference `i` (0-based, the `ref_id` of records): its name (owned by the reader, valid until
/// `bams3_reader_free`) and length. Either out-parameter may be NULL when not wanted.
///
/// Errors: `BAMS3_ERR_NULL` (reader), `BAMS3_ERR_INVALID` (`i` out of range).
///
/// # Safety
/// `r` must be NULL or a live reader; `name` and `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_reader_reference(
    r: *const bams3_reader,
    i: usize,
    name: *mut *const c_char,
    len: *mut i64,
) -> c_int {
    guard(|| {
        let r = handle(r, "reader")?;
        let n = r.ref_names.len();
        let (Some(rname), Some(reference)) = (r.ref_names.get(i), r.ds.header().references.get(i))
        else {
            return Err(Failure::new(
                BAMS3_ERR_INVALID,
                format!("reference index {i} is out of range (the dataset has {n})"),
            ));
        };
        if !name.is_null() {
            name.write(rname.as_ptr());
        }
        if !len.is_null() {
            len.write(i64::try_from(reference.length).unwrap_or(i64::MAX));
        }
        Ok(())
    })
}

/// Starts a query: records overlapping `region` (`chr`, `chr:start`, `chr:start-end`, 1-based
/// inclusive, commas allowed, `{name}:...` for names with colons, or `*` for unplaced reads —
/// exactly `bams3 query` / `samtools view`), or every record when `region` is NULL. `filter` may
/// be NULL for none. Records come in the order `bams3 query` prints them.
///
/// Errors: `BAMS3_ERR_NULL`, `BAMS3_ERR_UTF8`, `BAMS3_ERR_REGION` (unparsable region or unknown
/// reference).
///
/// # Safety
/// `r` must be NULL or a live reader; `region` NULL or a NUL-terminated string; `filter` NULL or
/// a valid filter; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_reader_query(
    r: *const bams3_reader,
    region: *const c_char,
    filter: *const bams3_filter,
    out: *mut *mut bams3_query,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let r = handle(r, "reader")?;
        let iter = start_query(r, region, filter)?;
        out.write(Box::into_raw(new_query(r.ds.clone(), iter)));
        Ok(())
    })
}

/// Like `bams3_reader_query`, but decoding only what the columns in `columns` (`BAMS3_COLUMN_*`
/// bits) need, besides each record's placement (reference, position, flag, MAPQ, CIGAR, read
/// length, tags), which is always decoded: the same records, faster when the costly fields are
/// not wanted. The fields of columns not asked for hold placeholders, in the records' accessors
/// and batches alike: name `*` (`BAMS3_COLUMN_NAME`), every base `=` (`BAMS3_COLUMN_SEQ`), every
/// quality missing, 0xFF (`BAMS3_COLUMN_QUAL`), next reference -1, next position -1 and TLEN 0
/// (`BAMS3_COLUMN_MATE`). `BAMS3_COLUMN_ALL` makes it `bams3_reader_query`.
///
/// ```c
/// bams3_query *q;
/// /* positions and CIGARs of chr1, without decoding names, bases or qualities */
/// bams3_reader_query_columns(r, "chr1", NULL, BAMS3_COLUMN_CIGAR, &q);
/// ```
///
/// Errors: those of `bams3_reader_query`, and `BAMS3_ERR_INVALID` for unknown column bits.
///
/// # Safety
/// As `bams3_reader_query`.
#[no_mangle]
pub unsafe extern "C" fn bams3_reader_query_columns(
    r: *const bams3_reader,
    region: *const c_char,
    filter: *const bams3_filter,
    columns: u32,
    out: *mut *mut bams3_query,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let r = handle(r, "reader")?;
        if columns & !BAMS3_COLUMN_ALL != 0 {
            return Err(Failure::new(
                BAMS3_ERR_INVALID,
                format!("unknown column bits 0x{:x}", columns & !BAMS3_COLUMN_ALL),
            ));
        }
        let iter = start_query(r, region, filter)?.with_fields(columns_fields(columns));
        out.write(Box::into_raw(new_query(r.ds.clone(), iter)));
        Ok(())
    })
}

/// The streams the columns in `columns` need (besides the placement, always decoded).
fn columns_fields(columns: u32) -> Fields {
    let mut f = Fields::LOCATION;
    for (bit, id) in [
        (BAMS3_COLUMN_NAME, StreamId::Name),
        (BAMS3_COLUMN_SEQ, StreamId::Seq),
        (BAMS3_COLUMN_QUAL, StreamId::Qual),
        (BAMS3_COLUMN_MATE, StreamId::Mate),
    ] {
        if columns & bit != 0 {
            f = f.with(id);
        }
    }
    f
}

/// The query of `region` (NULL: everything) with `filter` (NULL: none).
///
/// # Safety
/// `region` NULL or a NUL-terminated string; `filter` NULL or a valid filter.
unsafe fn start_query(
    r: &bams3_reader,
    region: *const c_char,
    filter: *const bams3_filter,
) -> FfiResult<Query> {
    let f = filter.as_ref().copied().unwrap_or_default();
    let filter = RecordFilter {
        min_mapq: f.min_mapq,
        require_flags: f.require_flags,
        exclude_flags: f.exclude_flags,
    };
    if region.is_null() {
        return Ok(r.ds.records(filter));
    }
    let region = c_str(region, "region")?;
    let region = Region::parse(region, r.ds.header())?;
    Ok(r.ds.query(&[region], filter))
}

/// Dataset statistics as a JSON object (the document `bams3 stats --json` prints), in a new
/// string the caller releases with `bams3_string_free`.
///
/// # Safety
/// `r` must be NULL or a live reader; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_reader_stats_json(
    r: *const bams3_reader,
    out: *mut *mut c_char,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let r = handle(r, "reader")?;
        let text = serde_json::to_string_pretty(&r.ds.summary_json(&r.location)?).map_err(|e| {
            Failure::new(
                BAMS3_ERR_INVALID,
                format!("statistics do not serialise: {e}"),
            )
        })?;
        out.write(to_cstring(&text, "statistics")?.into_raw());
        Ok(())
    })
}

/// Releases a string the library allocated for the caller (`bams3_reader_stats_json`). NULL is
/// ignored.
///
/// # Safety
/// `s` must be NULL or a string returned by a function documented as needing this call, not
/// freed before.
#[no_mangle]
pub unsafe extern "C" fn bams3_string_free(s: *mut c_char) {
    let _ = guard(|| {
        if !s.is_null() {
            drop(CString::from_raw(s));
        }
        Ok(())
    });
}
