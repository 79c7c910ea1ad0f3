//! `create()` and the writer: SAM lines or BAM records in, a committed dataset out.

use std::path::Path;
use std::sync::{Arc, Mutex};

use bams3_core::dataset::{DatasetWriter, WriteOptions, WriteSummary};
use bams3_core::metadata::Source;
use bams3_core::storage::{self, Storage};
use bams3_core::{sam, Error, Header, Record};
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::Env;
use napi_derive::napi;

use crate::dataset::{open_storage, OpenOptions};
use crate::error::{Failure, CORRUPT};
use crate::work::{task, Job, Work};

/// How a dataset is written, as `bams3 convert`'s options.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct WriterOptions {
    /// Genomic span of a chunk: a power of two from 262144 to 8388608 (default 1048576).
    pub chunk_size: Option<i64>,
    /// zstd level, 1-22 (default 3).
    pub level: Option<i32>,
    /// Compression (and, for convert, decompression) threads (default 2).
    pub threads: Option<u32>,
    /// Memory budget for buffered records in bytes (default 512 MiB).
    pub memory: Option<i64>,
    pub endpoint_url: Option<String>,
    pub no_sign_request: Option<bool>,
    pub cache_chunks: Option<bool>,
}

impl WriterOptions {
    pub fn core(&self, source: Source) -> Result<WriteOptions, Failure> {
        let d = WriteOptions::default();
        let positive = |v: Option<i64>, what: &str, default: usize| match v {
            None => Ok(default),
            Some(v) => usize::try_from(v)
                .map_err(|_| Failure::invalid(format!("{what} {v} is out of range"))),
        };
        let threads = self.threads.map_or(d.threads, |t| t as usize);
        if threads == 0 {
            return Err(Failure::invalid("threads must be at least 1"));
        }
        let o = WriteOptions {
            chunk_size: positive(self.chunk_size, "chunkSize", d.chunk_size as usize)? as u64,
            level: self.level.unwrap_or(d.level),
            threads,
            part_bytes: d.part_bytes,
            memory: positive(self.memory, "memory", d.memory)?,
            source,
            profile: Default::default(),
        };
        o.validate()?;
        Ok(o)
    }

    pub fn open_options(&self) -> OpenOptions {
        OpenOptions {
            endpoint_url: self.endpoint_url.clone(),
            no_sign_request: self.no_sign_request,
            cache_chunks: self.cache_chunks,
        }
    }
}

/// Refuses an existing local output, as `bams3 convert` does (S3 prefixes are checked by the
/// writer, which lists them).
pub fn check_output(location: &str) -> Result<(), Failure> {
    if !storage::is_s3(location) && Path::new(location).exists() {
        return Err(Error::AlreadyExists(location.to_string()).into());
    }
    Ok(())
}

/// What `finish()` resolves with.
#[napi(object)]
pub struct Summary {
    pub records: i64,
    pub mapped: i64,
    pub unmapped: i64,
    pub chunks: i64,
    pub stored_bytes: i64,
}

pub fn summary(s: &WriteSummary) -> Summary {
    let st = &s.metadata.statistics;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Summary {
        records: n(st.total_reads),
        mapped: n(st.mapped_reads),
        unmapped: n(st.unmapped_reads),
        chunks: n(s.metadata.chunk_count),
        stored_bytes: n(s.stored_bytes),
    }
}

enum State {
    Open(Box<DatasetWriter>),
    Finished,
    Aborted,
}

/// A dataset being written. Use it through the `bams3` module's `create()`.
#[napi]
pub struct NativeWriter {
    header: Arc<Header>,
    state: Arc<Mutex<State>>,
}

pub struct CreateJob {
    location: String,
    header: String,
    opts: WriterOptions,
}

impl Job for CreateJob {
    type Output = NativeWriter;
    type Js = NativeWriter;

    fn run(&mut self) -> Result<NativeWriter, Failure> {
        let opts = self.opts.core(Source {
            file: self.location.clone(),
            format: "SAM".into(),
            fingerprint: None,
        })?;
        let header = Header::from_sam_text(&self.header)?;
        check_output(&self.location)?;
        let store: Arc<dyn Storage> =
            Arc::from(open_storage(&self.location, &self.opts.open_options())?);
        let w = DatasetWriter::create(store, header.clone(), opts)?;
        Ok(NativeWriter {
            header: Arc::new(header),
            state: Arc::new(Mutex::new(State::Open(Box::new(w)))),
        })
    }

    fn to_js(&mut self, _env: Env, out: NativeWriter) -> napi::Result<NativeWriter> {
        Ok(out)
    }
}

/// Starts a new dataset at `location` (which must not exist) with this SAM header text.
#[napi(ts_return_type = "Promise<NativeWriter>")]
pub fn create_writer(
    location: String,
    header: String,
    options: Option<WriterOptions>,
) -> AsyncTask<Work<CreateJob>> {
    task(CreateJob {
        location,
        header,
        opts: options.unwrap_or_default(),
    })
}

enum Input {
    Sam(Vec<String>),
    Bam(Vec<u8>),
}

pub struct WriteJob {
    header: Arc<Header>,
    state: Arc<Mutex<State>>,
    input: Input,
}

fn bam_records(data: &[u8]) -> impl Iterator<Item = Result<Record, Failure>> + '_ {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let bad = |d: String| Some(Err(Failure::new(CORRUPT, format!("BAM record: {d}"))));
        if rest.len() < 4 {
            rest = &[];
            return bad("buffer ends inside a block_size".into());
        }
        let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() - 4 < n {
            let have = rest.len() - 4;
            rest = &[];
            return bad(format!(
                "block_size {n} runs past the end of the buffer ({have} bytes left)"
            ));
        }
        let (one, tail) = rest[4..].split_at(n);
        rest = tail;
        Some(Record::from_bytes(one.to_vec()).map_err(Failure::from))
    })
}

impl Job for WriteJob {
    type Output = ();
    type Js = ();

    fn run(&mut self) -> Result<(), Failure> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let w = match &mut *state {
            State::Open(w) => w,
            State::Finished => return Err(Failure::misuse("writer already finished")),
            State::Aborted => return Err(Failure::misuse("writer was aborted")),
        };
        match &self.input {
            Input::Sam(lines) => {
                for line in lines {
                    let mut b = line.as_bytes();
                    if let Some(s) = b.strip_suffix(b"\n") {
                        b = s.strip_suffix(b"\r").unwrap_or(s);
                    }
                    w.push(sam::parse_record(b, &self.header)?)?;
                }
            }
            Input::Bam(data) => {
                for r in bam_records(data) {
                    w.push(r?)?;
                }
            }
        }
        Ok(())
    }

    fn to_js(&mut self, _env: Env, _out: ()) -> napi::Result<()> {
        Ok(())
    }
}

pub struct FinishJob(Arc<Mutex<State>>);

impl Job for FinishJob {
    type Output = Summary;
    type Js = Summary;

    fn run(&mut self) -> Result<Summary, Failure> {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *state, State::Finished) {
            State::Open(w) => Ok(summary(&w.finish()?)),
            State::Finished => Err(Failure::misuse("writer already finished")),
            State::Aborted => {
                *state = State::Aborted;
                Err(Failure::misuse("writer was aborted"))
            }
        }
    }

    fn to_js(&mut self, _env: Env, out: Summary) -> napi::Result<Summary> {
        Ok(out)
    }
}

pub struct AbortJob(Arc<Mutex<State>>);

impl Job for AbortJob {
    type Output = ();
    type Js = ();

    fn run(&mut self) -> Result<(), Failure> {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *state, State::Aborted) {
            State::Open(w) => {
                w.abort();
                Ok(())
            }
            State::Finished => {
                *state = State::Finished;
                Err(Failure::misuse("writer already finished"))
            }
            State::Aborted => Err(Failure::misuse("writer was aborted")),
        }
    }

    fn to_js(&mut self, _env: Env, _out: ()) -> napi::Result<()> {
        Ok(())
    }
}

#[napi]
impl NativeWriter {
    /// Adds records given as SAM lines (a trailing newline is ignored). On a bad line the
    /// lines before it are added and the writer stays usable.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn write_sam(&self, lines: Vec<String>) -> AsyncTask<Work<WriteJob>> {
        self.job(Input::Sam(lines))
    }

    /// Adds BAM records, each with its `block_size` prefix (what `queryBam()` yields).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn write_bam(&self, data: Buffer) -> AsyncTask<Work<WriteJob>> {
        self.job(Input::Bam(data.to_vec()))
    }

    /// Writes the rest, the index and, last, `_metadata.json`.
    #[napi(ts_return_type = "Promise<Summary>")]
    pub fn finish(&self) -> AsyncTask<Work<FinishJob>> {
        task(FinishJob(self.state.clone()))
    }

    /// Deletes what was written: nothing left looks like a complete dataset.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn abort(&self) -> AsyncTask<Work<AbortJob>> {
        task(AbortJob(self.state.clone()))
    }
}

impl NativeWriter {
    fn job(&self, input: Input) -> AsyncTask<Work<WriteJob>> {
        task(WriteJob {
            header: self.header.clone(),
            state: self.state.clone(),
            input,
        })
    }
}
