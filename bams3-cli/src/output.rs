//! Where record output goes: standard output or a file, SAM text or BAM.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result};
use bams3_core::{bam, sam, Header, Record};

/// An output sink: a buffered stream for SAM, a BGZF writer for BAM.
pub enum RecordSink {
    /// SAM text.
    Sam {
        out: Box<dyn Write>,
        header: Header,
        line: Vec<u8>,
    },
    /// BAM.
    Bam(bam::Writer<Box<dyn Write + Send>>),
}

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
        Ok(RecordSink::Sam {
            out,
            header: header.clone(),
            line: Vec::with_capacity(1024),
        })
    }

    /// BAM output.
    pub fn bam(path: Option<&str>, header: &Header, threads: usize, level: u8) -> Result<Self> {
        let out = open_stream(path)?;
        Ok(RecordSink::Bam(bam::Writer::new(
            out, header, threads, level,
        )?))
    }

    /// Writes one record.
    pub fn write(&mut self, r: &Record) -> Result<()> {
        match self {
            RecordSink::Sam { out, header, line } => {
                line.clear();
                sam::format_record(r, header, line)?;
                out.write_all(line)?;
            }
            RecordSink::Bam(w) => w.write_record(r)?,
        }
        Ok(())
    }

    /// Flushes and closes.
    pub fn finish(self) -> Result<()> {
        match self {
            RecordSink::Sam { mut out, .. } => out.flush()?,
            RecordSink::Bam(w) => w.finish()?.flush()?,
        }
        Ok(())
    }
}
