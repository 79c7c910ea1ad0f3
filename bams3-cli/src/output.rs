//! Where record output goes: standard output or a file, SAM text or BAM.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result};
use bams3_core::{bam, sam, Header, Record};

/// An output sink: a buffered stream for SAM, a BGZF writer for BAM.
pub enum RecordSink {
    /// SAM text.
    Sam(SamSink),
    /// BAM.
    Bam(bam::Writer<Box<dyn Write + Send>>),
}

/// SAM text output, formatted on a second thread once a query has more than a batch of
/// records.
///
/// Building a record from its chunk and formatting it as text cost about the same, and both
/// fell on the thread that merges the chunks, which is what a region query waits for once its
/// chunks are decoded: with the formatting beside it, on the core the decoders have left, the
/// two overlap. Queries of fewer records than a batch format here and start no thread.
pub struct SamSink {
    header: Header,
    /// The stream, until the formatter thread takes it.
    out: Option<Box<dyn Write + Send>>,
    batch: Vec<Record>,
    /// Text formatted here (no formatter thread), before it is written.
    text: Vec<u8>,
    formatter: Option<Formatter>,
}

/// The formatter thread: batches of records in, text written to the stream in order.
struct Formatter {
    batches: std::sync::mpsc::SyncSender<Vec<Record>>,
    /// Emptied batches coming back, so that their space is reused.
    spent: std::sync::mpsc::Receiver<Vec<Record>>,
    thread: std::thread::JoinHandle<Result<Box<dyn Write + Send>>>,
}

/// Records a batch: about 250 KB of SAM text.
const BATCH: usize = 512;

/// Output buffer size: two pipe buffers' worth. A bigger buffer saves no system call worth having
/// and costs a small query more than its records (1 MiB was a quarter of a 100 kb query's page
/// faults).
const OUTPUT_BUFFER: usize = 128 << 10;

/// Opens `path` (`None` or `-` for standard output) for writing.
pub fn open_stream(path: Option<&str>) -> Result<Box<dyn Write + Send>> {
    Ok(match path {
        None | Some("-") => Box::new(BufWriter::with_capacity(OUTPUT_BUFFER, io::stdout())),
        Some(p) => Box::new(BufWriter::with_capacity(
            OUTPUT_BUFFER,
            File::create(p).with_context(|| format!("{p}: cannot create"))?,
        )),
    })
}

impl RecordSink {
    /// SAM output, with the header text first when `with_header`.
    pub fn sam(path: Option<&str>, header: &Header, with_header: bool) -> Result<Self> {
        let mut out = open_stream(path)?;
        if with_header {
            out.write_all(header.sam_text().as_bytes())?;
        }
        Ok(RecordSink::Sam(SamSink {
            header: header.clone(),
            out: Some(out),
            batch: Vec::with_capacity(BATCH),
            text: Vec::new(),
            formatter: None,
        }))
    }

    /// BAM output.
    pub fn bam(path: Option<&str>, header: &Header, threads: usize, level: u8) -> Result<Self> {
        let out = open_stream(path)?;
        Ok(RecordSink::Bam(bam::Writer::new(
            out, header, threads, level,
        )?))
    }

    /// Writes one record.
    pub fn write(&mut self, r: Record) -> Result<()> {
        match self {
            RecordSink::Sam(s) => s.write(r),
            RecordSink::Bam(w) => Ok(w.write_record(&r)?),
        }
    }

    /// Flushes and closes.
    pub fn finish(self) -> Result<()> {
        match self {
            RecordSink::Sam(s) => s.finish(),
            RecordSink::Bam(w) => Ok(w.finish()?.flush()?),
        }
    }
}

impl SamSink {
    fn write(&mut self, r: Record) -> Result<()> {
        self.batch.push(r);
        if self.batch.len() < BATCH {
            return Ok(());
        }
        if self.formatter.is_none() && !self.start_formatter() {
            // One core, or no thread to be had: format here.
            let out = self
                .out
                .as_mut()
                .expect("the stream is here without a formatter");
            format_batch(&self.batch, &self.header, out, &mut self.text)?;
            self.batch.clear();
            return Ok(());
        }
        let f = self.formatter.as_ref().expect("formatter started");
        let next = f
            .spent
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        if f.batches.send(full).is_err() {
            // The thread stopped on an error: report it.
            return Err(self
                .stop()
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("the SAM formatter stopped without an error")));
        }
        Ok(())
    }

    /// Moves the stream to a new formatter thread; false if none can run beside this one.
    fn start_formatter(&mut self) -> bool {
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return false;
        }
        let (batches, inbox) = std::sync::mpsc::sync_channel::<Vec<Record>>(2);
        let (give_back, spent) = std::sync::mpsc::sync_channel::<Vec<Record>>(2);
        // The stream moves only once the thread runs, so a failed spawn loses nothing.
        let (give_out, take_out) = std::sync::mpsc::sync_channel::<Box<dyn Write + Send>>(1);
        let header = self.header.clone();
        let spawned = std::thread::Builder::new()
            .name("bams3-sam".into())
            .spawn(move || {
                let mut out = take_out
                    .recv()
                    .map_err(|_| anyhow::anyhow!("the SAM formatter got no stream"))?;
                let mut text = Vec::with_capacity(OUTPUT_BUFFER + 4096);
                for mut batch in inbox {
                    format_batch(&batch, &header, &mut out, &mut text)?;
                    batch.clear();
                    let _ = give_back.try_send(batch);
                }
                Ok(out)
            });
        let Ok(thread) = spawned else {
            return false;
        };
        let out = self
            .out
            .take()
            .expect("the stream is here without a formatter");
        // The thread is waiting for it: this cannot fail unless it is gone, which `stop` reports.
        let _ = give_out.send(out);
        self.formatter = Some(Formatter {
            batches,
            spent,
            thread,
        });
        true
    }

    /// Ends the formatter thread, returning the stream or its error.
    fn stop(&mut self) -> Result<Box<dyn Write + Send>> {
        let Some(f) = self.formatter.take() else {
            anyhow::bail!("SAM output already closed after an error");
        };
        drop(f.batches);
        f.thread
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the SAM formatter thread panicked")))
    }

    fn finish(mut self) -> Result<()> {
        let mut out = match self.out.take() {
            Some(out) => out,
            None => self.stop()?,
        };
        format_batch(&self.batch, &self.header, &mut out, &mut self.text)?;
        out.flush()?;
        Ok(())
    }
}

/// Formats `batch` into `text` and writes it to `out` whenever it reaches the output buffer's
/// size (and at the end).
fn format_batch(
    batch: &[Record],
    header: &Header,
    out: &mut Box<dyn Write + Send>,
    text: &mut Vec<u8>,
) -> Result<()> {
    for r in batch {
        sam::format_record(r, header, text)?;
        if text.len() >= OUTPUT_BUFFER {
            out.write_all(text)?;
            text.clear();
        }
    }
    out.write_all(text)?;
    text.clear();
    Ok(())
}
