//! `convert()`: BAM or SAM (a file or `s3://bucket/key`) into a new dataset, in steps so that
//! JavaScript sees progress between them and can stop the conversion.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bams3_core::dataset::DatasetWriter;
use bams3_core::input::AlignmentInput;
use bams3_core::metadata::Source;
use bams3_core::storage::Storage;
use napi::bindgen_prelude::AsyncTask;
use napi::Env;
use napi_derive::napi;

use crate::dataset::{open_storage, store_options};
use crate::error::Failure;
use crate::work::{task, Job, Work};
use crate::writer::{check_output, summary, Summary, WriterOptions};

/// A step converts records for about this long before reporting progress.
const STEP: Duration = Duration::from_millis(200);

struct Running {
    input: AlignmentInput,
    writer: DatasetWriter,
    output: String,
    records: u64,
}

/// A conversion in progress. Use it through the `bams3` module's `convert()`.
#[napi]
pub struct NativeConvert {
    state: Arc<Mutex<Option<Running>>>,
}

/// Progress after a step; `summary` once the dataset is committed.
#[napi(object)]
pub struct ConvertStep {
    pub records: i64,
    pub done: bool,
    pub summary: Option<Summary>,
}

pub struct StartJob {
    input: String,
    output: String,
    opts: WriterOptions,
}

impl Job for StartJob {
    type Output = NativeConvert;
    type Js = NativeConvert;

    fn run(&mut self) -> Result<NativeConvert, Failure> {
        let source = Source {
            file: self.input.clone(),
            format: String::new(),
            fingerprint: None,
        };
        let opts = self.opts.core(source)?;
        check_output(&self.output)?;
        // The input may be `s3://bucket/key`: reached with the same options as the output.
        let input = AlignmentInput::open_with(
            &self.input,
            opts.threads,
            &store_options(&self.opts.open_options()),
        )?;
        let store: Arc<dyn Storage> =
            Arc::from(open_storage(&self.output, &self.opts.open_options())?);
        let mut opts = opts;
        opts.source.format = input.format().name().into();
        let writer = DatasetWriter::create(store, input.header().clone(), opts)?;
        Ok(NativeConvert {
            state: Arc::new(Mutex::new(Some(Running {
                input,
                writer,
                output: self.output.clone(),
                records: 0,
            }))),
        })
    }

    fn to_js(&mut self, _env: Env, out: NativeConvert) -> napi::Result<NativeConvert> {
        Ok(out)
    }
}

/// Starts converting `input` into the new dataset `output`.
#[napi(ts_return_type = "Promise<NativeConvert>")]
pub fn start_convert(
    input: String,
    output: String,
    options: Option<WriterOptions>,
) -> AsyncTask<Work<StartJob>> {
    task(StartJob {
        input,
        output,
        opts: options.unwrap_or_default(),
    })
}

pub struct StepJob(Arc<Mutex<Option<Running>>>);

pub enum Stepped {
    More(u64),
    Done(u64, Summary),
}

impl Job for StepJob {
    type Output = Stepped;
    type Js = ConvertStep;

    fn run(&mut self) -> Result<Stepped, Failure> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(run) = slot.as_mut() else {
            return Err(Failure::misuse("conversion already finished or aborted"));
        };
        let start = Instant::now();
        let read = (|| -> Result<bool, Failure> {
            loop {
                for _ in 0..4096 {
                    match run.input.read_record()? {
                        Some(r) => {
                            run.writer.push(r)?;
                            run.records += 1;
                        }
                        None => return Ok(true),
                    }
                }
                if start.elapsed() >= STEP {
                    return Ok(false);
                }
            }
        })();
        match read {
            Ok(false) => Ok(Stepped::More(run.records)),
            Ok(true) => {
                let Some(run) = slot.take() else {
                    return Err(Failure::misuse("conversion already finished or aborted"));
                };
                let n = run.records;
                match run.writer.finish() {
                    Ok(s) => Ok(Stepped::Done(n, summary(&s))),
                    Err(e) => {
                        remove_if_empty(Path::new(&run.output));
                        Err(e.into())
                    }
                }
            }
            Err(f) => {
                if let Some(run) = slot.take() {
                    run.writer.abort();
                    remove_if_empty(Path::new(&run.output));
                }
                Err(f)
            }
        }
    }

    fn to_js(&mut self, _env: Env, out: Stepped) -> napi::Result<ConvertStep> {
        Ok(match out {
            Stepped::More(n) => ConvertStep {
                records: n as i64,
                done: false,
                summary: None,
            },
            Stepped::Done(n, s) => ConvertStep {
                records: n as i64,
                done: true,
                summary: Some(s),
            },
        })
    }
}

pub struct AbortJob(Arc<Mutex<Option<Running>>>);

impl Job for AbortJob {
    type Output = ();
    type Js = ();

    fn run(&mut self) -> Result<(), Failure> {
        if let Some(run) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            run.writer.abort();
            remove_if_empty(Path::new(&run.output));
        }
        Ok(())
    }

    fn to_js(&mut self, _env: Env, _out: ()) -> napi::Result<()> {
        Ok(())
    }
}

#[napi]
impl NativeConvert {
    /// Converts for a moment and reports how many records are done.
    #[napi(ts_return_type = "Promise<ConvertStep>")]
    pub fn step(&self) -> AsyncTask<Work<StepJob>> {
        task(StepJob(self.state.clone()))
    }

    /// Stops and removes what was written.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn abort(&self) -> AsyncTask<Work<AbortJob>> {
        task(AbortJob(self.state.clone()))
    }
}

/// Removes the output directory tree if a failed conversion left only empty folders in it
/// (as `bams3 convert` does).
fn remove_if_empty(dir: &Path) {
    fn prune(d: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(d) else {
            return false;
        };
        let mut empty = true;
        for e in entries.flatten() {
            let p = e.path();
            if !(p.is_dir() && prune(&p)) {
                empty = false;
            }
        }
        empty && std::fs::remove_dir(d).is_ok()
    }
    prune(dir);
}
