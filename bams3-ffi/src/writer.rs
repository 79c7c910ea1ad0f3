//! `bams3_writer_*`: writing a dataset from an aligner, one record at a time, from any number of
//! threads.
//!
//! Records are parsed and validated outside the lock (so several threads parsing SAM scale), then
//! handed to the core `DatasetWriter` under a mutex. `finish` takes the writer out of the mutex,
//! so any later call sees a finished writer and returns `BAMS3_ERR_MISUSE`.

use std::ffi::{c_char, c_int};
use std::sync::{Arc, Mutex, MutexGuard};

use bams3_core::dataset::{DatasetWriter, WriteOptions};
use bams3_core::metadata::Source;
use bams3_core::storage::{self, Storage};
use bams3_core::{sam, Header, Record};

use crate::error::{Failure, FfiResult, BAMS3_ERR_INVALID};
use crate::panic::{c_str, guard, handle, out_param, utf8};

/// Options for `bams3_writer_open`. Fill with `bams3_writer_options_default`, then change fields.
///
/// `struct_size` lets later versions add fields without breaking callers compiled against this
/// header: `bams3_writer_options_default` sets it, and the library reads only the fields that
/// fit in it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bams3_writer_options {
    /// `sizeof(bams3_writer_options)` as the caller was compiled; set by the default function.
    pub struct_size: usize,
    /// Genomic span of a chunk bin in bases: a power of two from 262144 to 8388608
    /// (default 1048576).
    pub chunk_size: u64,
    /// zstd level, 1..22 (default 3).
    pub level: i32,
    /// Compression worker threads (default 2).
    pub threads: u32,
    /// Bytes of records buffered before bins are written out early; bounds the writer's
    /// peak memory (default 512 MiB). It must also cover the pipeline itself (about 54 MiB with
    /// 2 threads and 2 MiB parts); a budget too small is refused with the minimum in the message.
    pub memory_budget: u64,
    /// A bin holding more than this many BAM-encoded bytes is written as a part
    /// (default 2 MiB, at least 4096).
    pub part_bytes: u64,
}

impl bams3_writer_options {
    fn defaults() -> Self {
        let d = WriteOptions::default();
        bams3_writer_options {
            struct_size: std::mem::size_of::<bams3_writer_options>(),
            chunk_size: d.chunk_size,
            level: d.level,
            threads: d.threads as u32,
            memory_budget: d.memory as u64,
            part_bytes: d.part_bytes as u64,
        }
    }

    fn to_core(self) -> FfiResult<WriteOptions> {
        if self.struct_size < std::mem::size_of::<bams3_writer_options>() {
            return Err(Failure::new(
                BAMS3_ERR_INVALID,
                format!(
                    "bams3_writer_options.struct_size is {} but this library needs {}: initialise \
                     the options with bams3_writer_options_default()",
                    self.struct_size,
                    std::mem::size_of::<bams3_writer_options>()
                ),
            ));
        }
        if self.threads == 0 {
            return Err(Failure::new(
                BAMS3_ERR_INVALID,
                "threads must be at least 1",
            ));
        }
        let too_big = |what: &str| Failure::new(BAMS3_ERR_INVALID, format!("{what} is too large"));
        Ok(WriteOptions {
            chunk_size: self.chunk_size,
            level: self.level,
            threads: self.threads as usize,
            memory: usize::try_from(self.memory_budget).map_err(|_| too_big("memory_budget"))?,
            part_bytes: usize::try_from(self.part_bytes).map_err(|_| too_big("part_bytes"))?,
            source: Source {
                file: "-".into(),
                format: "SAM".into(),
                fingerprint: None,
            },
            profile: Default::default(),
        })
    }
}

enum State {
    Open(Box<DatasetWriter>),
    Finished,
    Aborted,
}

/// A dataset being written. Opaque: create with `bams3_writer_open`, release with
/// `bams3_writer_free`.
pub struct bams3_writer {
    /// The header's reference names, hashed once: `add_sam` looks one up per record.
    names: sam::ReferenceNames,
    state: Mutex<State>,
}

impl bams3_writer {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock (caught at the boundary) must not wedge the writer.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, record: Record) -> FfiResult<()> {
        match &mut *self.lock() {
            State::Open(w) => Ok(w.push(record)?),
            State::Finished => Err(Failure::misuse("writer already finished")),
            State::Aborted => Err(Failure::misuse("writer was aborted")),
        }
    }
}

/// Fills `opts` with the default writer options (and sets `struct_size`).
///
/// Returns `BAMS3_OK`, or `BAMS3_ERR_NULL` if `opts` is NULL.
///
/// # Safety
/// `opts` must be NULL or point to writable memory for one `bams3_writer_options`.
#[no_mangle]
pub unsafe extern "C" fn bams3_writer_options_default(opts: *mut bams3_writer_options) -> c_int {
    guard(|| {
        let out = out_param(opts, "opts")?;
        out.write(bams3_writer_options::defaults());
        Ok(())
    })
}

/// Starts a new dataset at `location` (a directory path, or an `s3://bucket/prefix` URI where the
/// build supports it) with the given SAM header text (`@HD`/`@SQ`/`@RG`/`@PG`/`@CO` lines; the
/// `@SQ` lines define the references records may use). `opts` may be NULL for defaults.
///
/// On success stores a new handle in `*out`. Errors: `BAMS3_ERR_NULL`, `BAMS3_ERR_UTF8`,
/// `BAMS3_ERR_INVALID` (options, header), `BAMS3_ERR_EXISTS` (the location is not empty),
/// `BAMS3_ERR_IO`.
///
/// # Safety
/// `location` and `sam_header_text` must be NULL or NUL-terminated strings; `opts` NULL or a
/// valid options struct; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bams3_writer_open(
    location: *const c_char,
    sam_header_text: *const c_char,
    opts: *const bams3_writer_options,
    out: *mut *mut bams3_writer,
) -> c_int {
    guard(|| {
        let out = out_param(out, "out")?;
        let location = c_str(location, "location")?;
        let text = c_str(sam_header_text, "sam_header_text")?;
        let opts = match opts.as_ref() {
            Some(o) => o.to_core()?,
            None => bams3_writer_options::defaults().to_core()?,
        };
        let header = Header::from_sam_text(text)?;
        let names = sam::ReferenceNames::new(&header)?;
        let store: Arc<dyn Storage> = Arc::from(storage::open(location)?);
        let mut opts = opts;
        opts.source.file = location.to_string();
        let w = DatasetWriter::create(store, header, opts)?;
        let handle = Box::new(bams3_writer {
            names,
            state: Mutex::new(State::Open(Box::new(w))),
        });
        out.write(Box::into_raw(handle));
        Ok(())
    })
}

/// Adds one record given as a SAM text line of `len` bytes (no NUL terminator needed; a
/// trailing `\n` or `\r\n` is ignored). Safe to call from several threads at once.
///
/// Errors: `BAMS3_ERR_NULL`, `BAMS3_ERR_UTF8` (the line is not UTF-8), `BAMS3_ERR_CORRUPT`
/// (not a valid SAM record, or a reference the header does not define), `BAMS3_ERR_MISUSE`
/// (after finish or abort), `BAMS3_ERR_IO` (a failure storing earlier records). A rejected
/// record is not added; the writer stays usable.
///
/// # Safety
/// `w` must be NULL or a live writer; `line` NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn bams3_writer_add_sam(
    w: *const bams3_writer,
    line: *const c_char,
    len: usize,
) -> c_int {
    guard(|| {
        let w = handle(w, "writer")?;
        if line.is_null() {
            return Err(Failure::null("line"));
        }
        let mut bytes = std::slice::from_raw_parts(line as *const u8, len);
        if let Some(b) = bytes.strip_suffix(b"\n") {
            bytes = b.strip_suffix(b"\r").unwrap_or(b);
        }
        let text = utf8(bytes, "SAM line")?;
        let record = sam::parse_record_with(text.as_bytes(), &w.names)?;
        w.push(record)
    })
}

/// Adds one record in the on-disk BAM record layout *without* its leading `block_size`:
/// `refID:i32 pos:i32 l_read_name:u8 mapq:u8 bin:u16 n_cigar_op:u16 flag:u16 l_seq:u32
/// next_refID:i32 next_pos:i32 tlen:i32`, then the NUL-terminated read name (`l_read_name`
/// bytes), CIGAR (`n_cigar_op` little-endian u32s), 4-bit packed sequence, qualities (`l_seq`
/// bytes, 0xFF when absent) and tags, all little-endian, exactly as in a BAM file. For an htslib
/// `bam1_t *b` that is the 32 bytes `bam_write1()` writes after `block_size`, followed by
/// `b->data` with the read name's extra alignment NULs (`b->core.l_extranul`) removed. Safe to
/// call from several threads at once.
///
/// Errors as for `bams3_writer_add_sam`; malformed bytes give `BAMS3_ERR_CORRUPT`.
///
/// # Safety
/// `w` must be NULL or a live writer; `data` NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn bams3_writer_add_bam(
    w: *const bams3_writer,
    data: *const u8,
    len: usize,
) -> c_int {
    guard(|| {
        let w = handle(w, "writer")?;
        if data.is_null() {
            return Err(Failure::null("data"));
        }
        let bytes = std::slice::from_raw_parts(data, len).to_vec();
        let record = Record::from_bytes(bytes)?;
        w.push(record)
    })
}

/// Writes the remaining records, the index and, last, the metadata that makes the dataset
/// complete. Call once, after every thread has stopped adding records. After it returns
/// (success or not) the writer accepts no more records: only `bams3_writer_free`. If it fails,
/// what was written is removed and the dataset is left incomplete.
///
/// Errors: `BAMS3_ERR_NULL`, `BAMS3_ERR_MISUSE` (already finished or aborted), `BAMS3_ERR_IO`.
///
/// # Safety
/// `w` must be NULL or a live writer.
#[no_mangle]
pub unsafe extern "C" fn bams3_writer_finish(w: *const bams3_writer) -> c_int {
    guard(|| {
        let w = handle(w, "writer")?;
        let taken = std::mem::replace(&mut *w.lock(), State::Finished);
        match taken {
            State::Open(inner) => {
                inner.finish()?;
                Ok(())
            }
            State::Finished => Err(Failure::misuse("writer already finished")),
            State::Aborted => {
                *w.lock() = State::Aborted;
                Err(Failure::misuse("writer was aborted"))
            }
        }
    })
}

/// Stops writing and deletes what was written: nothing at the location looks like a complete
/// dataset afterwards. Later adds return `BAMS3_ERR_MISUSE`.
///
/// Errors: `BAMS3_ERR_NULL`, `BAMS3_ERR_MISUSE` (already finished or aborted).
///
/// # Safety
/// `w` must be NULL or a live writer.
#[no_mangle]
pub unsafe extern "C" fn bams3_writer_abort(w: *const bams3_writer) -> c_int {
    guard(|| {
        let w = handle(w, "writer")?;
        let taken = std::mem::replace(&mut *w.lock(), State::Aborted);
        match taken {
            State::Open(inner) => {
                inner.abort();
                Ok(())
            }
            State::Finished => {
                *w.lock() = State::Finished;
                Err(Failure::misuse("writer already finished"))
            }
            State::Aborted => Err(Failure::misuse("writer was aborted")),
        }
    })
}

/// Releases a writer; a writer neither finished nor aborted is aborted first. NULL is ignored.
/// No other thread may use `w` during or after this call.
///
/// # Safety
/// `w` must be NULL or a live writer, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn bams3_writer_free(w: *mut bams3_writer) {
    let _ = guard(|| {
        if !w.is_null() {
            let w = Box::from_raw(w);
            let state = std::mem::replace(&mut *w.lock(), State::Aborted);
            if let State::Open(inner) = state {
                inner.abort();
            }
        }
        Ok(())
    });
}
