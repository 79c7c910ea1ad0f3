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
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
    fn free(p: *mut c_void);
}
const RTLD_NOW: c_int = 2;

/// Declares the htslib functions used, as a table of pointers resolved by name.
macro_rules! api {
    ($($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// htslib's functions, resolved once from the library loaded at run time.
        struct Api {
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }

        impl Api {
            /// Resolves every function in `lib`, a `dlopen` handle.
            ///
            /// # Safety
            /// `lib` must be a live handle of an htslib >= 1.10, whose functions have these
            /// signatures.
            unsafe fn resolve(lib: *mut c_void) -> Result<Api, String> {
                Ok(Api {
                    $($name: {
                        let name = concat!(stringify!($name), "\0");
                        // SAFETY: the name is NUL-terminated; a symbol found is the function
                        // declared, by the caller's promise.
                        let p = unsafe { dlsym(lib, name.as_ptr() as *const c_char) };
                        if p.is_null() {
                            return Err(format!("it has no function {}", stringify!($name)));
                        }
                        unsafe {
                            std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) $(-> $ret)?>(p)
                        }
                    },)*
                })
            }
        }
    };
}

api! {
    hdopen: fn(c_int, *const c_char) -> *mut HFile;
    hclose_abruptly: fn(*mut HFile);
    hts_hopen: fn(*mut HFile, *const c_char, *const c_char) -> *mut HtsFile;
    hts_close: fn(*mut HtsFile) -> c_int;
    hts_set_threads: fn(*mut HtsFile, c_int) -> c_int;
    hts_set_fai_filename: fn(*mut HtsFile, *const c_char) -> c_int;
    hts_set_log_level: fn(c_int);
    sam_hdr_read: fn(*mut HtsFile) -> *mut SamHdr;
    sam_hdr_destroy: fn(*mut SamHdr);
    sam_hdr_str: fn(*mut SamHdr) -> *const c_char;
    sam_hdr_length: fn(*mut SamHdr) -> usize;
    sam_hdr_nref: fn(*const SamHdr) -> c_int;
    sam_hdr_tid2name: fn(*const SamHdr, c_int) -> *const c_char;
    sam_hdr_tid2len: fn(*const SamHdr, c_int) -> i64;
    sam_read1: fn(*mut HtsFile, *mut SamHdr, *mut Bam1) -> c_int;
    bam_init1: fn() -> *mut Bam1;
    bam_destroy1: fn(*mut Bam1);
    fai_load: fn(*const c_char) -> *mut Faidx;
    fai_destroy: fn(*mut Faidx);
    faidx_fetch_seq64: fn(*const Faidx, *const c_char, i64, i64, *mut i64) -> *mut c_char;
    faidx_seq_len: fn(*const Faidx, *const c_char) -> c_int;
    hts_md5_init: fn() -> *mut Md5Context;
    hts_md5_update: fn(*mut Md5Context, *const c_void, std::ffi::c_ulong);
    hts_md5_final: fn(*mut u8, *mut Md5Context);
    hts_md5_destroy: fn(*mut Md5Context);
}

/// Where to look for libhts: `$BAMS3_LIBHTS` alone when set (an htslib elsewhere), else the
/// build machine's library directory (from pkg-config), then the loader's search path. Its
/// soname is `libhts.so.3` since htslib 1.10.
fn candidates() -> Vec<String> {
    if let Some(path) = std::env::var_os("BAMS3_LIBHTS") {
        return vec![path.to_string_lossy().into_owned()];
    }
    let dir = option_env!("BAMS3_LIBHTS_DIR").unwrap_or("");
    let mut out = Vec::new();
    for name in ["libhts.so.3", "libhts.so"] {
        if !dir.is_empty() {
            out.push(format!("{dir}/{name}"));
        }
        out.push(name.to_string());
    }
    out
}

/// htslib, loaded the first time CRAM is read: only `convert` of CRAM input needs it, and
/// every other command starts without loading it and the five libraries it needs (~0.35 ms
/// and ~55 page faults a process, a tenth of a short query).
fn api() -> Result<&'static Api, String> {
    static API: std::sync::OnceLock<Result<Api, String>> = std::sync::OnceLock::new();
    API.get_or_init(|| {
        let mut last = String::new();
        for c in candidates() {
            let Ok(path) = std::ffi::CString::new(c.clone()) else {
                continue;
            };
            // SAFETY: the path is NUL-terminated; the handle is kept for the process's life.
            let lib = unsafe { dlopen(path.as_ptr(), RTLD_NOW) };
            if lib.is_null() {
                // SAFETY: dlerror returns NULL or a NUL-terminated message.
                let e = unsafe { dlerror() };
                if !e.is_null() {
                    last = unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned();
                }
                continue;
            }
            // SAFETY: a library named libhts.so.3 is htslib >= 1.10, whose ABI this declares.
            return unsafe { Api::resolve(lib) }.map_err(|e| format!("{c}: {e}"));
        }
        Err(last)
    })
    .as_ref()
    .map_err(|e| {
        format!("CRAM input needs htslib >= 1.10 (Debian: apt-get install libhts3), which could not be loaded: {e}")
    })
}

/// Loads htslib and silences its own stderr messages (several lines per failure): errors are
/// reported once, in one line, by the caller. The error says why htslib cannot be used.
pub fn load() -> Result<(), String> {
    let a = api()?;
    // SAFETY: sets a global integer.
    unsafe { (a.hts_set_log_level)(0) };
    Ok(())
}

/// An open htslib file and its header.
pub struct Reader {
    api: &'static Api,
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
        let a = api().ok()?;
        // SAFETY: every pointer passed is valid and NUL-terminated; results are checked before use,
        // and each handle is freed exactly once (here on failure, or by Drop).
        unsafe {
            let hf = (a.hdopen)(fd, c"r".as_ptr());
            if hf.is_null() {
                libc_close(fd);
                return None;
            }
            let fp = (a.hts_hopen)(hf, name.as_ptr(), c"r".as_ptr());
            let Some(fp) = NonNull::new(fp) else {
                (a.hclose_abruptly)(hf);
                return None;
            };
            let close = |fp: NonNull<HtsFile>| {
                (a.hts_close)(fp.as_ptr());
            };
            if let Some(r) = reference {
                if (a.hts_set_fai_filename)(fp.as_ptr(), r.as_ptr()) != 0 {
                    close(fp);
                    return None;
                }
            }
            if threads > 1 {
                // Without a pool htslib decodes in this thread: not an error.
                let _ = (a.hts_set_threads)(fp.as_ptr(), threads.min(64) as c_int);
            }
            let Some(hdr) = NonNull::new((a.sam_hdr_read)(fp.as_ptr())) else {
                close(fp);
                return None;
            };
            let Some(rec) = NonNull::new((a.bam_init1)()) else {
                (a.sam_hdr_destroy)(hdr.as_ptr());
                close(fp);
                return None;
            };
            Some(Reader {
                api: a,
                fp,
                hdr,
                rec,
            })
        }
    }

    /// The header text as htslib holds it (what `samtools view -H` prints).
    pub fn header_text(&self) -> Vec<u8> {
        let a = self.api;
        // SAFETY: hdr is valid; sam_hdr_str returns NULL or a buffer of sam_hdr_length bytes.
        unsafe {
            let s = (a.sam_hdr_str)(self.hdr.as_ptr());
            if s.is_null() {
                return Vec::new();
            }
            let n = (a.sam_hdr_length)(self.hdr.as_ptr());
            std::slice::from_raw_parts(s as *const u8, n).to_vec()
        }
    }

    /// The references, in record reference-id order.
    pub fn references(&self) -> Vec<(Vec<u8>, i64)> {
        let a = self.api;
        // SAFETY: hdr is valid and tid is in range.
        unsafe {
            let n = (a.sam_hdr_nref)(self.hdr.as_ptr()).max(0);
            (0..n)
                .map(|tid| {
                    let name = (a.sam_hdr_tid2name)(self.hdr.as_ptr(), tid);
                    let name = if name.is_null() {
                        Vec::new()
                    } else {
                        CStr::from_ptr(name).to_bytes().to_vec()
                    };
                    (name, (a.sam_hdr_tid2len)(self.hdr.as_ptr(), tid))
                })
                .collect()
        }
    }

    /// Decodes the next record into this reader's buffer.
    pub fn read(&mut self) -> Read<'_> {
        let a = self.api;
        // SAFETY: fp, hdr and rec are valid and owned; the record borrowed out lives in rec
        // until the next call, which needs `&mut self`.
        unsafe {
            match (a.sam_read1)(self.fp.as_ptr(), self.hdr.as_ptr(), self.rec.as_ptr()) {
                r if r >= 0 => Read::Record(self.rec.as_ref()),
                -1 => Read::End,
                _ => Read::Failed,
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let a = self.api;
        // SAFETY: each handle was created by htslib and is freed once.
        unsafe {
            (a.bam_destroy1)(self.rec.as_ptr());
            (a.sam_hdr_destroy)(self.hdr.as_ptr());
            (a.hts_close)(self.fp.as_ptr());
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
pub struct Fasta(NonNull<Faidx>, &'static Api);

impl Fasta {
    /// Opens `path`, or `None` when it cannot be read or indexed.
    pub fn open(path: &CStr) -> Option<Fasta> {
        let a = api().ok()?;
        // SAFETY: path is NUL-terminated; the result is checked.
        NonNull::new(unsafe { (a.fai_load)(path.as_ptr()) }).map(|f| Fasta(f, a))
    }

    /// The whole sequence `name`, or `None` when the file has no such sequence.
    pub fn sequence(&self, name: &CStr) -> Option<Vec<u8>> {
        let a = self.1;
        // SAFETY: the index is valid; the buffer returned is malloc'ed, `len` bytes long, and
        // freed here once copied.
        unsafe {
            let n = (a.faidx_seq_len)(self.0.as_ptr(), name.as_ptr()) as i64;
            if n < 0 {
                return None;
            }
            let mut len = 0i64;
            let p = (a.faidx_fetch_seq64)(self.0.as_ptr(), name.as_ptr(), 0, n - 1, &mut len);
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
        let a = self.1;
        // SAFETY: created by fai_load, freed once.
        unsafe { (a.fai_destroy)(self.0.as_ptr()) }
    }
}

/// The MD5 of `data`, as lower-case hex.
pub fn md5_hex(data: &[u8]) -> String {
    let Ok(a) = api() else {
        return String::new();
    };
    let mut digest = [0u8; 16];
    // SAFETY: the context is checked, used, and destroyed once; digest has 16 bytes.
    unsafe {
        let ctx = (a.hts_md5_init)();
        if ctx.is_null() {
            return String::new();
        }
        for part in data.chunks(1 << 30) {
            (a.hts_md5_update)(
                ctx,
                part.as_ptr() as *const c_void,
                part.len() as std::ffi::c_ulong,
            );
        }
        (a.hts_md5_final)(digest.as_mut_ptr(), ctx);
        (a.hts_md5_destroy)(ctx);
    }
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
