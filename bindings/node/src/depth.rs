//! Per-base depth, as `bams3 depth`: bams3-core computes it on a thread of its own and sends
//! positions in batches over a bounded channel, so memory stays small however long the region.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use bams3_core::depth::{depth, DepthOptions as CoreOptions};
use bams3_core::region::Region;
use bams3_core::Error;
use napi::bindgen_prelude::{AsyncTask, Uint32Array};
use napi::Env;
use napi_derive::napi;

use crate::dataset::Shared;
use crate::error::{Failure, REGION};
use crate::work::{task, Job, Work};

const BATCH: usize = 65536;

/// Options, as `bams3 depth` (and `samtools depth`).
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct DepthOptions {
    /// Every position, including those with zero depth (`-a`).
    pub all: Option<bool>,
    /// Count deletions as covered (`-J`).
    pub deletions: Option<bool>,
    /// Minimum mapping quality (`-Q`).
    pub min_mapq: Option<u32>,
    /// Minimum base quality (`-q`).
    pub min_baseq: Option<u32>,
    /// Minimum read length (`-l`).
    pub min_len: Option<u32>,
    /// Flags removed from the default filter UNMAP,SECONDARY,QCFAIL,DUP (`-g`).
    pub include_flags: Option<u32>,
    /// Flags added to the filter (`-G`).
    pub exclude_flags: Option<u32>,
}

fn core_options(o: &DepthOptions) -> Result<CoreOptions, Failure> {
    let byte = |v: Option<u32>, what: &str| {
        u8::try_from(v.unwrap_or(0))
            .map_err(|_| Failure::invalid(format!("{what} is out of range (0-255)")))
    };
    let flags = |v: Option<u32>, what: &str| {
        u16::try_from(v.unwrap_or(0))
            .map_err(|_| Failure::invalid(format!("{what} is out of range (0-0xffff)")))
    };
    let d = CoreOptions::default();
    Ok(CoreOptions {
        exclude_flags: (d.exclude_flags & !flags(o.include_flags, "includeFlags")?)
            | flags(o.exclude_flags, "excludeFlags")?,
        min_mapq: byte(o.min_mapq, "minMapq")?,
        min_len: o.min_len.unwrap_or(0) as usize,
        min_baseq: byte(o.min_baseq, "minBaseq")?,
        all_positions: o.all.unwrap_or(false),
        deletions: o.deletions.unwrap_or(false),
    })
}

/// Depths of consecutive positions of one reference.
#[napi(object)]
pub struct DepthBatch {
    pub ref_name: String,
    /// 1-based positions.
    pub pos: Uint32Array,
    pub depth: Uint32Array,
}

pub struct Batch {
    ref_name: String,
    pos: Vec<u32>,
    depth: Vec<u32>,
}

enum State {
    Pending {
        regions: Vec<String>,
        opts: DepthOptions,
    },
    Running(Receiver<Result<Batch, Failure>>),
    Failed(Failure),
    Done,
}

/// A running depth computation. Use it through `Dataset.depth()`.
#[napi]
pub struct NativeDepth {
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
}

impl NativeDepth {
    pub fn new(shared: Arc<Shared>, regions: Vec<String>, opts: DepthOptions) -> Self {
        NativeDepth {
            shared,
            state: Arc::new(Mutex::new(State::Pending { regions, opts })),
        }
    }
}

fn start(shared: &Shared, regions: &[String], opts: &DepthOptions) -> Result<State, Failure> {
    let core = core_options(opts)?;
    let ds = shared.dataset()?.clone();
    let mut spans = Vec::new();
    for r in shared.regions(regions)? {
        match r {
            Region::Span { ref_id, beg, end } => spans.push((ref_id, beg, end)),
            Region::Unplaced => {
                return Err(Failure::new(
                    REGION,
                    "depth: '*' (unplaced reads) has no positions",
                ))
            }
        }
    }
    if spans.is_empty() {
        for (i, r) in ds.index()?.references.iter().enumerate() {
            if !r.chunks.is_empty() {
                spans.push((i, 0, i64::MAX));
            }
        }
    }
    let (tx, rx) = sync_channel(2);
    std::thread::Builder::new()
        .name("bams3-depth".into())
        .spawn(move || {
            for (ref_id, beg, end) in spans {
                let name = ds.header().references[ref_id].name.clone();
                let mut batch = Batch {
                    ref_name: name.clone(),
                    pos: Vec::with_capacity(BATCH),
                    depth: Vec::with_capacity(BATCH),
                };
                let r = depth(&ds, ref_id, beg, end, core, |pos, d| {
                    batch.pos.push((pos + 1) as u32);
                    batch.depth.push(d);
                    if batch.pos.len() >= BATCH {
                        let full = std::mem::replace(
                            &mut batch,
                            Batch {
                                ref_name: name.clone(),
                                pos: Vec::with_capacity(BATCH),
                                depth: Vec::with_capacity(BATCH),
                            },
                        );
                        // The receiver is gone: the caller stopped iterating.
                        tx.send(Ok(full)).map_err(|_| Error::Cancelled)?;
                    }
                    Ok(())
                });
                let sent = match r {
                    Ok(_) if batch.pos.is_empty() => Ok(()),
                    Ok(_) => tx.send(Ok(batch)),
                    Err(Error::Cancelled) => return,
                    Err(e) => tx.send(Err(e.into())),
                };
                if sent.is_err() {
                    return;
                }
            }
        })
        .map_err(|e| Failure::new("BAMS3_ERR_IO", format!("cannot start a thread: {e}")))?;
    Ok(State::Running(rx))
}

pub struct NextJob {
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
}

impl Job for NextJob {
    type Output = Option<Batch>;
    type Js = Option<DepthBatch>;

    fn run(&mut self) -> Result<Option<Batch>, Failure> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let State::Pending { regions, opts } = &*state {
            match start(&self.shared, regions, opts) {
                Ok(s) => *state = s,
                Err(f) => {
                    *state = State::Failed(f.clone());
                    return Err(f);
                }
            }
        }
        let next = match &*state {
            State::Running(rx) => rx.recv().ok(),
            State::Failed(f) => return Err(f.clone()),
            _ => None,
        };
        match next {
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(f)) => {
                *state = State::Failed(f.clone());
                Err(f)
            }
            None => {
                *state = State::Done;
                Ok(None)
            }
        }
    }

    fn to_js(&mut self, _env: Env, out: Option<Batch>) -> napi::Result<Option<DepthBatch>> {
        Ok(out.map(|b| DepthBatch {
            ref_name: b.ref_name,
            pos: Uint32Array::from(b.pos),
            depth: Uint32Array::from(b.depth),
        }))
    }
}

pub struct CloseJob(Arc<Mutex<State>>);

impl Job for CloseJob {
    type Output = ();
    type Js = ();

    fn run(&mut self) -> Result<(), Failure> {
        // Dropping the receiver stops the computing thread at its next batch.
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = State::Done;
        Ok(())
    }

    fn to_js(&mut self, _env: Env, _out: ()) -> napi::Result<()> {
        Ok(())
    }
}

#[napi]
impl NativeDepth {
    /// The next batch of positions, or null at the end.
    #[napi(ts_return_type = "Promise<DepthBatch | null>")]
    pub fn next(&self) -> AsyncTask<Work<NextJob>> {
        task(NextJob {
            shared: self.shared.clone(),
            state: self.state.clone(),
        })
    }

    /// Stops the computation.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self) -> AsyncTask<Work<CloseJob>> {
        task(CloseJob(self.state.clone()))
    }
}
