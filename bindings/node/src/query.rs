//! Queries, read in batches: each `next()` decodes up to [`BATCH_RECORDS`] records (or about
//! [`BATCH_BYTES`]) on the thread pool and hands them over in one or two Buffers, because one
//! crossing per record would cost more than decoding it.

use std::sync::{Arc, Mutex};

use bams3_core::dataset::{Query, RecordFilter};
use bams3_core::sam;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::Env;
use napi_derive::napi;

use crate::dataset::Shared;
use crate::error::Failure;
use crate::work::{task, Job, Work};

const BATCH_RECORDS: usize = 4096;
const BATCH_BYTES: usize = 1 << 20;

/// One batch of records.
#[napi(object)]
pub struct RecordBatch {
    /// Number of records.
    pub count: u32,
    /// The records in BAM encoding, each with its `block_size` prefix, as in a BAM file body.
    pub bam: Buffer,
    /// The records as SAM lines, each ending in `\n` (absent for BAM-only queries).
    ///
    /// A string, not a Buffer: the JavaScript side splits it into lines anyway, and an
    /// external Buffer would hold its megabyte outside the V8 heap until a full collection
    /// (measured: 70 MiB of such buffers waiting on a whole-chromosome scan).
    pub sam: Option<String>,
}

enum State {
    Pending {
        regions: Vec<String>,
        filter: Result<RecordFilter, Failure>,
    },
    Running(Box<Query>),
    Failed(Failure),
    Done,
}

/// A running query. Use it through `Dataset.query()` / `queryBam()`.
#[napi]
pub struct NativeQuery {
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
    bam: bool,
}

impl NativeQuery {
    pub fn new(
        shared: Arc<Shared>,
        regions: Vec<String>,
        filter: Result<RecordFilter, Failure>,
        bam: bool,
    ) -> Self {
        NativeQuery {
            shared,
            state: Arc::new(Mutex::new(State::Pending { regions, filter })),
            bam,
        }
    }
}

pub struct Batch {
    count: u32,
    bam: Vec<u8>,
    sam: Option<Vec<u8>>,
}

pub struct NextJob {
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
    bam: bool,
}

impl NextJob {
    fn query<'a>(&self, state: &'a mut State) -> Result<Option<&'a mut Query>, Failure> {
        if let State::Pending { regions, filter } = state {
            let filter = filter.clone()?;
            let regions = self.shared.regions(regions)?;
            let ds = self.shared.dataset()?;
            let q = if regions.is_empty() {
                ds.records(filter)
            } else {
                ds.query(&regions, filter)
            };
            *state = State::Running(Box::new(q));
        }
        match state {
            State::Running(q) => Ok(Some(q.as_mut())),
            State::Failed(f) => Err(f.clone()),
            _ => Ok(None),
        }
    }

    fn fill(&self, state: &mut State) -> Result<Option<Batch>, Failure> {
        let Some(q) = self.query(state)? else {
            return Ok(None);
        };
        let header = self.shared.ds.header();
        let mut bam = Vec::with_capacity(if self.bam {
            BATCH_BYTES + 65536
        } else {
            1 << 19
        });
        let mut sam = (!self.bam).then(|| Vec::with_capacity(BATCH_BYTES + 65536));
        let mut count = 0usize;
        let full = |count: usize, bam: &Vec<u8>, sam: &Option<Vec<u8>>| {
            count >= BATCH_RECORDS
                || sam.as_ref().map_or(bam.len(), |s| s.len().max(bam.len())) >= BATCH_BYTES
        };
        while !full(count, &bam, &sam) {
            let Some(r) = q.next() else { break };
            let r = r?;
            let bytes = r.as_bytes();
            bam.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            bam.extend_from_slice(bytes);
            if let Some(s) = sam.as_mut() {
                sam::format_record(&r, header, s)?;
            }
            count += 1;
        }
        if count == 0 {
            *state = State::Done;
            return Ok(None);
        }
        Ok(Some(Batch {
            count: count as u32,
            bam,
            sam,
        }))
    }
}

impl Job for NextJob {
    type Output = Option<Batch>;
    type Js = Option<RecordBatch>;

    fn run(&mut self) -> Result<Option<Batch>, Failure> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match self.fill(&mut state) {
            Ok(b) => Ok(b),
            Err(f) => {
                // A failure is sticky: the query is dropped and every later next() repeats it.
                *state = State::Failed(f.clone());
                Err(f)
            }
        }
    }

    fn to_js(&mut self, _env: Env, out: Option<Batch>) -> napi::Result<Option<RecordBatch>> {
        Ok(out.map(|b| RecordBatch {
            count: b.count,
            bam: Buffer::from(b.bam),
            // SAM text is ASCII but for unusual names and tags; those decode as Buffer's
            // `toString('utf8')` did, invalid bytes becoming U+FFFD.
            sam: b.sam.map(|v| {
                String::from_utf8(v)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            }),
        }))
    }
}

pub struct CloseJob(Arc<Mutex<State>>);

impl Job for CloseJob {
    type Output = ();
    type Js = ();

    fn run(&mut self) -> Result<(), Failure> {
        // Waits for a next() in flight, then frees the query's chunks and threads.
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *state = State::Done;
        Ok(())
    }

    fn to_js(&mut self, _env: Env, _out: ()) -> napi::Result<()> {
        Ok(())
    }
}

#[napi]
impl NativeQuery {
    /// The next batch, or null at the end.
    #[napi(ts_return_type = "Promise<RecordBatch | null>")]
    pub fn next(&self) -> AsyncTask<Work<NextJob>> {
        task(NextJob {
            shared: self.shared.clone(),
            state: self.state.clone(),
            bam: self.bam,
        })
    }

    /// Releases the query; later `next()` calls give null.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self) -> AsyncTask<Work<CloseJob>> {
        task(CloseJob(self.state.clone()))
    }
}
