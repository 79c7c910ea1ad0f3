//! `bams3_stream_*`: a dataset as a seekable BAM byte stream (and its CSI index), for htslib's
//! hFILE plugin (`bindings/htslib/hfile_bams3.c`) and any other reader of BAM bytes.

use std::ffi::{c_char, c_int};
use std::sync::Arc;

use bams3_core::bamstream::{self, BamStream, Target};
use bams3_core::dataset::Dataset;
use bams3_core::storage;

use crate::error::{Failure, FfiResult, BAMS3_ERR_INVALID};
use crate::panic::{c_str, guard, handle, handle_mut, out_param};

enum Source {
    Bam(Box<BamStream>),
    Bytes(Vec<u8>),
}

/// A dataset's BAM stream, or the CSI of that stream. Opaque: create with `bams3_stream_open`,
/// release with `bams3_stream_free`. Not for concurrent use: one thread at a time.
pub struct bams3_stream {
    source: Source,
}

/// Opens what a plugin URL names and stores a new handle in `*out`: `bams3:///abs/path` (a
/// local dataset) or `bams3+s3://bucket/prefix` (S3, with the CLI's AWS settings) serve the
/// dataset as a coordinate-sorted BAM of stored BGZF blocks; the same URL with `.csi` appended
/// serves a CSI index of that stream.
///
/// Errors: `BAMS3_ERR_NULL`, `BAMS3_ERR_UTF8`, `BAMS3_ERR_INVALID` (not such a URL, or an
/// upstream v0.1/v0.2 dataset: the message names `bams3 upgrade`), `BAMS3_ERR_NOT_FOUND`,
/// `BAMS3_ERR_INCOMPLETE`, `BAMS3_ERR_CORRUPT`, `BAMS3_ERR_IO`.
///
/// # Safety
/// `url` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_stream_open(
    url: *const c_char,
    out: *mut *mut bams3_stream,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let url = c_str(url, "url")?;
        let source = match bamstream::parse_url(url)? {
            Target::Bam(location) => {
                let ds = Dataset::open(Arc::from(storage::open(&location)?))?;
                Source::Bam(Box::new(BamStream::new(ds)?))
            }
            Target::Csi(location) => {
                let ds = Dataset::open(Arc::from(storage::open(&location)?))?;
                Source::Bytes(bamstream::csi_of(&ds)?)
            }
        };
        out.write(Box::into_raw(Box::new(bams3_stream { source })));
        Ok(())
    })
}

/// The stream's size in bytes in `*out` (known without reading it: SEEK_END works).
///
/// # Safety
/// `s` must be NULL or a live stream; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_stream_size(s: *const bams3_stream, out: *mut u64) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let s = handle(s, "stream")?;
        out.write(match &s.source {
            Source::Bam(b) => b.len(),
            Source::Bytes(v) => v.len() as u64,
        });
        Ok(())
    })
}

/// Copies up to `len` bytes of the stream from `offset` into `buf` and stores how many in
/// `*out_n`, as `pread(2)`: fewer than asked is normal (a read stops at a block's end), 0 means
/// `offset` is at or past the end. Decodes only the chunks that cover the bytes.
///
/// Errors: `BAMS3_ERR_NULL`, `BAMS3_ERR_CORRUPT`, `BAMS3_ERR_IO`, `BAMS3_ERR_NOT_FOUND`.
///
/// # Safety
/// `s` must be NULL or a live stream; `buf` NULL or writable for `len` bytes; `out_n` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_stream_read(
    s: *mut bams3_stream,
    offset: u64,
    buf: *mut u8,
    len: usize,
    out_n: *mut usize,
) -> c_int {
    guard(|| {
        let out_n = out_param(out_n, "out_n")?;
        let s = handle_mut(s, "stream")?;
        if buf.is_null() {
            return Err(Failure::null("buf"));
        }
        if len > isize::MAX as usize {
            return Err(Failure::new(BAMS3_ERR_INVALID, "len is too large"));
        }
        let buf = std::slice::from_raw_parts_mut(buf, len);
        let n = read(s, offset, buf)?;
        out_n.write(n);
        Ok(())
    })
}

fn read(s: &mut bams3_stream, offset: u64, buf: &mut [u8]) -> FfiResult<usize> {
    Ok(match &mut s.source {
        Source::Bam(b) => b.read(offset, buf)?,
        Source::Bytes(v) => {
            let at = usize::try_from(offset).unwrap_or(usize::MAX).min(v.len());
            let n = (v.len() - at).min(buf.len());
            buf[..n].copy_from_slice(&v[at..at + n]);
            n
        }
    })
}

/// Releases a stream. NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a live stream, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn bams3_stream_free(s: *mut bams3_stream) {
    let _ = guard(|| {
        if !s.is_null() {
            drop(Box::from_raw(s));
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{BAMS3_ERR_INVALID, BAMS3_ERR_NOT_FOUND, BAMS3_ERR_NULL, BAMS3_OK};

    #[test]
    fn bad_urls_and_pointers_are_errors_and_leave_out_untouched() {
        let mut s: *mut bams3_stream = std::ptr::dangling_mut();
        let before = s;
        unsafe {
            assert_eq!(
                bams3_stream_open(c"bams3://host/x".as_ptr(), &mut s),
                BAMS3_ERR_INVALID
            );
            let rc = bams3_stream_open(c"bams3:///no/such/dataset".as_ptr(), &mut s);
            assert!(
                rc == BAMS3_ERR_NOT_FOUND || rc == crate::error::BAMS3_ERR_IO,
                "{rc}"
            );
            assert_eq!(bams3_stream_open(std::ptr::null(), &mut s), BAMS3_ERR_NULL);
            assert_eq!(s, before);
            let mut n = 0u64;
            assert_eq!(bams3_stream_size(std::ptr::null(), &mut n), BAMS3_ERR_NULL);
            bams3_stream_free(std::ptr::null_mut());
        }
    }

    #[test]
    fn a_dataset_reads_as_bgzf_from_start_to_end() {
        let dir = std::env::temp_dir().join(format!("bams3-ffi-stream-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let header = bams3_core::Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n").unwrap();
        let st = Arc::new(storage::LocalStorage::new(&dir));
        let mut w = bams3_core::dataset::DatasetWriter::create(
            st,
            header,
            bams3_core::dataset::WriteOptions::default(),
        )
        .unwrap();
        w.push(bams3_core::Record::from_sam_fields_for_doc())
            .unwrap();
        w.finish().unwrap();
        for suffix in ["", ".csi"] {
            let url = std::ffi::CString::new(format!("bams3://{}{suffix}", dir.display())).unwrap();
            let mut s = std::ptr::null_mut();
            unsafe {
                assert_eq!(bams3_stream_open(url.as_ptr(), &mut s), BAMS3_OK);
                let mut size = 0u64;
                assert_eq!(bams3_stream_size(s, &mut size), BAMS3_OK);
                let mut all = Vec::new();
                let mut buf = [0u8; 100];
                loop {
                    let mut n = 0usize;
                    assert_eq!(
                        bams3_stream_read(s, all.len() as u64, buf.as_mut_ptr(), 100, &mut n),
                        BAMS3_OK
                    );
                    if n == 0 {
                        break;
                    }
                    all.extend_from_slice(&buf[..n]);
                }
                assert_eq!(all.len() as u64, size);
                assert_eq!(&all[..4], &[0x1f, 0x8b, 8, 4]);
                assert!(all.ends_with(&bams3_core::bam::BGZF_EOF));
                bams3_stream_free(s);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
