//! Progress on a terminal: a bar with percentage, ETA and human rates when the size of the work
//! is known (an input file's or S3 object's compressed bytes, a dataset's records), a spinner
//! with counts otherwise (standard input). Drawn only when stderr is a terminal and `--quiet`
//! is not given, so pipes and logs see only the final summary line.

use std::io::{IsTerminal, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bams3_core::input::{AlignmentInput, CramOpener};
use bams3_core::storage::{self, StoreOptions};
use bams3_core::Error;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often (in records) callers report: cheap, yet many updates a second.
pub const EVERY: u64 = 4096;

/// A progress display; hidden (and free) when not drawn.
pub struct Progress {
    bar: ProgressBar,
    /// Compressed input bytes consumed so far, when progress is by bytes.
    bytes: Option<Arc<AtomicU64>>,
    start: Instant,
}

/// Counts the bytes a decoder pulls from the raw input.
struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

/// Whether to draw at all: a terminal on stderr, and not `--quiet`.
fn drawn(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// `742k`, `1.2M`: a rate as people read it.
pub fn human(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.1}G", v / 1e9),
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.0}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

/// Opens an alignment input as [`AlignmentInput::open_with`] does, with a progress display by
/// compressed bytes consumed (a bar when the size is known: a local file or an S3 object; a
/// spinner for standard input). CRAM goes to `cram` when given.
pub fn open_input(
    path: &str,
    threads: usize,
    store: &StoreOptions,
    quiet: bool,
    cram: Option<CramOpener>,
) -> Result<(AlignmentInput, Progress)> {
    let n = Arc::new(AtomicU64::new(0));
    let (raw, size): (Box<dyn Read + Send>, Option<u64>) = if path == "-" {
        (Box::new(std::io::stdin()), None)
    } else if storage::is_s3(path) {
        // Streamed as before; the size comes from a HEAD of the object (only when drawn).
        let size = if drawn(quiet) {
            s3_size(path, store)
        } else {
            None
        };
        (storage::open_object(path, store)?, size)
    } else {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = f.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(
                Error::Invalid(format!("{path}: is a directory, not a BAM/SAM/CRAM file")).into(),
            );
        }
        (Box::new(f), Some(meta.len()).filter(|&l| l > 0))
    };
    let counted = Box::new(Counting {
        inner: raw,
        n: n.clone(),
    });
    let input = AlignmentInput::from_reader_with_cram(counted, path, threads, cram)?;
    let p = Progress::new(size, quiet, size.map(|_| n));
    Ok((input, p))
}

/// The size of `s3://bucket/key`, when a HEAD request answers.
fn s3_size(url: &str, store: &StoreOptions) -> Option<u64> {
    let (dir, key) = url.rsplit_once('/')?;
    if dir.len() <= "s3://".len() {
        return None;
    }
    storage::open_with(dir, store).ok()?.head(key).ok()?
}

impl Progress {
    /// A bar over `total` units (bytes when `bytes` is given, else records), or a spinner when
    /// the total is unknown.
    pub fn new(total: Option<u64>, quiet: bool, bytes: Option<Arc<AtomicU64>>) -> Progress {
        let start = Instant::now();
        if !drawn(quiet) {
            return Progress {
                bar: ProgressBar::hidden(),
                bytes,
                start,
            };
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = match (total, bytes.is_some()) {
            (Some(_), true) => {
                "{wide_bar} {percent:>3}% {decimal_bytes}/{decimal_total_bytes} \
                 ({decimal_bytes_per_sec}, {msg}) ETA {eta}"
            }
            (Some(_), false) => {
                "{wide_bar} {percent:>3}% {human_pos}/{human_len} ({msg}) ETA {eta}"
            }
            (None, _) => "{spinner} {human_pos} records ({msg}) {elapsed}",
        };
        bar.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar, bytes, start }
    }

    /// Reports `records` done so far.
    pub fn records(&self, records: u64) {
        if self.bar.is_hidden() {
            return;
        }
        let pos = match &self.bytes {
            Some(n) => n.load(Ordering::Relaxed),
            None => records,
        };
        self.bar.set_position(pos);
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let rate = human(records as f64 / secs);
        self.bar.set_message(format!("{rate} records/s"));
    }

    /// Removes the display (before the summary line or an error).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
