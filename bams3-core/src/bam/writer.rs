//! Writing BAM: header and raw records into a BGZF stream.

use std::io::Write;
use std::num::NonZero;

use noodles_bgzf as bgzf;

use super::MAGIC;
use crate::{Error, Header, Record, Result};

/// BGZF block writer, single- or multi-threaded.
enum Bgzf<W: Write + Send + 'static> {
    Single(bgzf::io::Writer<W>),
    Multi(bgzf::io::MultithreadedWriter<W>),
}

/// Writes a BAM file from a [`Header`] and raw [`Record`]s.
///
/// ```
/// use bams3_core::{bam, Header, Record};
/// let header = Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n").unwrap();
/// let mut w = bam::Writer::new(Vec::new(), &header, 1, 6).unwrap();
/// w.write_record(&Record::from_sam_fields_for_doc()).unwrap();
/// let bytes = w.finish().unwrap();
/// assert!(bytes.ends_with(&bam::BGZF_EOF));
/// ```
pub struct Writer<W: Write + Send + 'static> {
    inner: Option<Bgzf<W>>,
}

impl<W: Write + Send + 'static> Writer<W> {
    /// Starts a BAM stream on `inner` with `threads` compression workers at deflate `level`.
    pub fn new(inner: W, header: &Header, threads: usize, level: u8) -> Result<Self> {
        let level = bgzf::io::writer::CompressionLevel::new(level)
            .ok_or_else(|| Error::Invalid(format!("invalid BGZF compression level {level}")))?;
        let bgzf = match NonZero::new(threads).filter(|n| n.get() > 1) {
            Some(n) => Bgzf::Multi(
                bgzf::io::multithreaded_writer::Builder::default()
                    .set_worker_count(n)
                    .set_compression_level(level)
                    .build_from_writer(inner),
            ),
            None => Bgzf::Single(
                bgzf::io::writer::Builder::default()
                    .set_compression_level(level)
                    .build_from_writer(inner),
            ),
        };
        let mut w = Writer { inner: Some(bgzf) };
        let mut h = Vec::new();
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&(header.text.len() as u32).to_le_bytes());
        h.extend_from_slice(header.text.as_bytes());
        h.extend_from_slice(&(header.references.len() as u32).to_le_bytes());
        for r in &header.references {
            h.extend_from_slice(&(r.name.len() as u32 + 1).to_le_bytes());
            h.extend_from_slice(r.name.as_bytes());
            h.push(0);
            h.extend_from_slice(&(r.length as u32).to_le_bytes());
        }
        w.write_all(&h)?;
        Ok(w)
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        let r = match self.inner.as_mut() {
            Some(Bgzf::Single(w)) => w.write_all(buf),
            Some(Bgzf::Multi(w)) => w.write_all(buf),
            None => return Err(Error::Invalid("BAM writer already finished".into())),
        };
        r.map_err(|e| Error::io("BAM output", e))
    }

    /// Appends one record.
    pub fn write_record(&mut self, record: &Record) -> Result<()> {
        let bytes = record.as_bytes();
        self.write_all(&(bytes.len() as u32).to_le_bytes())?;
        self.write_all(bytes)
    }

    /// Flushes the last block, writes the BGZF end-of-file marker and returns the sink.
    pub fn finish(mut self) -> Result<W> {
        let err = |e| Error::io("BAM output", e);
        match self.inner.take() {
            Some(Bgzf::Single(w)) => w.finish().map_err(err),
            Some(Bgzf::Multi(mut w)) => w.finish().map_err(err),
            None => Err(Error::Invalid("BAM writer already finished".into())),
        }
    }
}
