//! The few htslib (>= 1.10) functions CRAM input needs, and owners that free what they hold.
//!
//! `bam1_t` and `bam1_core_t` are laid out as in htslib's `sam.h`: they are part of its stable
//! ABI (`sam.h`'s inline accessors read them), unchanged since 1.10.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;

#[repr(C)]
pub struct HtsFile {
    _private: [u8; 0],
}
#[repr(C)]
pub struct HFile {
    _private: [u8; 0],
}
#[repr(C)]
pub struct SamHdr {
    _private: [u8; 0],
}
#[repr(C)]
pub struct Faidx {
    _private: [u8; 0],
}
#[repr(C)]
pub struct Md5Context {
    _private: [u8; 0],
}

/// `bam1_core_t`.
#[repr(C)]
pub struct Bam1Core {
    pub pos: i64,
    pub tid: i32,
    pub bin: u16,
    pub qual: u8,
    pub l_extranul: u8,
    pub flag: u16,
    pub l_qname: u16,
    pub n_cigar: u32,
    pub l_qseq: i32,
    pub mtid: i32,
    pub mpos: i64,
    pub isize: i64,
}

/// `bam1_t`.
#[repr(C)]
pub struct Bam1 {
    pub core: Bam1Core,
    pub id: u64,
    pub data: *mut u8,
    pub l_data: c_int,
    pub m_data: u32,
    pub mempolicy: u32,
}

extern "C" {
    fn hdopen(fd: c_int, mode: *const c_char) -> *mut HFile;
    fn hclose_abruptly(fp: *mut HFile);
    fn hts_hopen(fp: *mut HFile, fn_: *const c_char, mode: *const c_char) -> *mut HtsFile;
    fn hts_close(fp: *mut HtsFile) -> c_int;
    fn hts_set_threads(fp: *mut HtsFile, n: c_int) -> c_int;
    fn hts_set_fai_filename(fp: *mut HtsFile, fn_aux: *const c_char) -> c_int;
    fn hts_set_log_level(level: c_int);
    fn sam_hdr_read(fp: *mut HtsFile) -> *mut SamHdr;
    fn sam_hdr_destroy(h: *mut SamHdr);
    fn sam_hdr_str(h: *mut SamHdr) -> *const c_char;
    fn sam_hdr_length(h: *mut SamHdr) -> usize;
    fn sam_hdr_nref(h: *const SamHdr) -> c_int;
    fn sam_hdr_tid2name(h: *const SamHdr, tid: c_int) -> *const c_char;
    fn sam_hdr_tid2len(h: *const SamHdr, tid: c_int) -> i64;
    fn sam_read1(fp: *mut HtsFile, h: *mut SamHdr, b: *mut Bam1) -> c_int;
    fn bam_init1() -> *mut Bam1;
    fn bam_destroy1(b: *mut Bam1);
    fn fai_load(fn_: *const c_char) -> *mut Faidx;
    fn fai_destroy(fai: *mut Faidx);
    fn faidx_fetch_seq64(
        fai: *const Faidx,
        name: *const c_char,
        beg: i64,
        end: i64,
        len: *mut i64,
    ) -> *mut c_char;
    fn faidx_seq_len(fai: *const Faidx, name: *const c_char) -> c_int;
    fn hts_md5_init() -> *mut Md5Context;
    fn hts_md5_update(ctx: *mut Md5Context, data: *const c_void, size: std::ffi::c_ulong);
    fn hts_md5_final(digest: *mut u8, ctx: *mut Md5Context);
    fn hts_md5_destroy(ctx: *mut Md5Context);
    fn free(p: *mut c_void);
}

/// Silences htslib's own stderr messages (several lines per failure): errors are reported
/// once, in one line, by the caller.
pub fn quiet_logs() {
    // SAFETY: sets a global integer.
    unsafe { hts_set_log_level(0) }
}

/// An open htslib file and its header.
pub struct Reader {
    fp: NonNull<HtsFile>,
    hdr: NonNull<SamHdr>,
    rec: NonNull<Bam1>,
}

// SAFETY: the handles are owned by this value alone and used by one thread at a time;
// htslib keeps no thread-affine state in them.
unsafe impl Send for Reader {}

/// What [`Reader::read`] found.
pub enum Read<'a> {
    Record(&'a Bam1),
    End,
    Failed,
}

impl Reader {
    /// Opens the stream on file descriptor `fd` (taken over, closed by this value); `name`
    /// names it, `reference` is a FASTA file (with its .fai) for CRAM, `threads` extra decoders.
    pub fn open(
        fd: c_int,
        name: &CStr,
        reference: Option<&CStr>,
        threads: usize,
    ) -> Option<Reader> {
        // SAFETY: every pointer passed is valid and NUL-terminated; results are checked before use,
        // and each handle is freed exactly once (here on failure, or by Drop).
        unsafe {
            let hf = hdopen(fd, c"r".as_ptr());
            if hf.is_null() {
                libc_close(fd);
                return None;
            }
            let fp = hts_hopen(hf, name.as_ptr(), c"r".as_ptr());
            let Some(fp) = NonNull::new(fp) else {
                hclose_abruptly(hf);
                return None;
            };
            let close = |fp: NonNull<HtsFile>| {
                hts_close(fp.as_ptr());
            };
            if let Some(r) = reference {
                if hts_set_fai_filename(fp.as_ptr(), r.as_ptr()) != 0 {
                    close(fp);
                    return None;
                }
            }
            if threads > 1 {
                // Without a pool htslib decodes in this thread: not an error.
                let _ = hts_set_threads(fp.as_ptr(), threads.min(64) as c_int);
            }
            let Some(hdr) = NonNull::new(sam_hdr_read(fp.as_ptr())) else {
                close(fp);
                return None;
            };
            let Some(rec) = NonNull::new(bam_init1()) else {
                sam_hdr_destroy(hdr.as_ptr());
                close(fp);
                return None;
            };
            Some(Reader { fp, hdr, rec })
        }
    }

    /// The header text as htslib holds it (what `samtools view -H` prints).
    pub fn header_text(&self) -> Vec<u8> {
        // SAFETY: hdr is valid; sam_hdr_str returns NULL or a buffer of sam_hdr_length bytes.
        unsafe {
            let s = sam_hdr_str(self.hdr.as_ptr());
            if s.is_null() {
                return Vec::new();
            }
            let n = sam_hdr_length(self.hdr.as_ptr());
            std::slice::from_raw_parts(s as *const u8, n).to_vec()
        }
    }

    /// The references, in record reference-id order.
    pub fn references(&self) -> Vec<(Vec<u8>, i64)> {
        // SAFETY: hdr is valid and tid is in range.
        unsafe {
            let n = sam_hdr_nref(self.hdr.as_ptr()).max(0);
            (0..n)
                .map(|tid| {
                    let name = sam_hdr_tid2name(self.hdr.as_ptr(), tid);
                    let name = if name.is_null() {
                        Vec::new()
                    } else {
                        CStr::from_ptr(name).to_bytes().to_vec()
                    };
                    (name, sam_hdr_tid2len(self.hdr.as_ptr(), tid))
                })
                .collect()
        }
    }

    /// Decodes the next record into this reader's buffer.
    pub fn read(&mut self) -> Read<'_> {
        // SAFETY: fp, hdr and rec are valid and owned; the record borrowed out lives in rec
        // until the next call, which needs `&mut self`.
        unsafe {
            match sam_read1(self.fp.as_ptr(), self.hdr.as_ptr(), self.rec.as_ptr()) {
                r if r >= 0 => Read::Record(self.rec.as_ref()),
                -1 => Read::End,
                _ => Read::Failed,
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // SAFETY: each handle was created by htslib and is freed once.
        unsafe {
            bam_destroy1(self.rec.as_ptr());
            sam_hdr_destroy(self.hdr.as_ptr());
            hts_close(self.fp.as_ptr());
        }
    }
}

impl Bam1 {
    /// The variable-length data (name, CIGAR, bases, qualities, tags).
    pub fn data(&self) -> &[u8] {
        if self.data.is_null() || self.l_data <= 0 {
            return &[];
        }
        // SAFETY: htslib keeps l_data initialised bytes at data.
        unsafe { std::slice::from_raw_parts(self.data, self.l_data as usize) }
    }
}

fn libc_close(fd: c_int) {
    extern "C" {
        fn close(fd: c_int) -> c_int;
    }
    // SAFETY: fd was ours and is not used after this.
    unsafe {
        close(fd);
    }
}

/// A FASTA file opened through its .fai index (built when missing and the directory is
/// writable, as samtools does).
pub struct Fasta(NonNull<Faidx>);

impl Fasta {
    /// Opens `path`, or `None` when it cannot be read or indexed.
    pub fn open(path: &CStr) -> Option<Fasta> {
        // SAFETY: path is NUL-terminated; the result is checked.
        NonNull::new(unsafe { fai_load(path.as_ptr()) }).map(Fasta)
    }

    /// The whole sequence `name`, or `None` when the file has no such sequence.
    pub fn sequence(&self, name: &CStr) -> Option<Vec<u8>> {
        // SAFETY: the index is valid; the buffer returned is malloc'ed, `len` bytes long, and
        // freed here once copied.
        unsafe {
            let n = faidx_seq_len(self.0.as_ptr(), name.as_ptr()) as i64;
            if n < 0 {
                return None;
            }
            let mut len = 0i64;
            let p = faidx_fetch_seq64(self.0.as_ptr(), name.as_ptr(), 0, n - 1, &mut len);
            if p.is_null() || len < 0 {
                return None;
            }
            let v = std::slice::from_raw_parts(p as *const u8, len as usize).to_vec();
            free(p as *mut c_void);
            Some(v)
        }
    }
}

impl Drop for Fasta {
    fn drop(&mut self) {
        // SAFETY: created by fai_load, freed once.
        unsafe { fai_destroy(self.0.as_ptr()) }
    }
}

/// The MD5 of `data`, as lower-case hex.
pub fn md5_hex(data: &[u8]) -> String {
    let mut digest = [0u8; 16];
    // SAFETY: the context is checked, used, and destroyed once; digest has 16 bytes.
    unsafe {
        let ctx = hts_md5_init();
        if ctx.is_null() {
            return String::new();
        }
        for part in data.chunks(1 << 30) {
            hts_md5_update(
                ctx,
                part.as_ptr() as *const c_void,
                part.len() as std::ffi::c_ulong,
            );
        }
        hts_md5_final(digest.as_mut_ptr(), ctx);
        hts_md5_destroy(ctx);
    }
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
