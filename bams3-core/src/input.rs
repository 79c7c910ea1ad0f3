//! Opening alignment input: a BAM, SAM or CRAM file, or standard input, recognised by its bytes.
//!
//! BAM and SAM are decoded here. CRAM is recognised here but decoded by a [`CramOpener`] the
//! caller supplies (the `bams3` command's, on htslib), so this crate and the bindings built on
//! it need no CRAM decoder.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

use crate::{Error, Header, Record, Result, bam, sam};

/// The alignment formats `convert` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// BGZF-compressed BAM.
    Bam,
    /// SAM text, plain or BGZF/gzip-compressed.
    Sam,
    /// CRAM, decoded by a [`CramOpener`].
    Cram,
}

impl Format {
    /// `"BAM"`, `"SAM"` or `"CRAM"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Bam => "BAM",
            Format::Sam => "SAM",
            Format::Cram => "CRAM",
        }
    }
}

/// A source of records with its header.
///
/// ```no_run
/// use bams3_core::input::AlignmentInput;
/// let mut input = AlignmentInput::open("in.bam", 2).unwrap();
/// println!("{} references", input.header().references.len());
/// while let Some(record) = input.read_record().unwrap() { /* ... */ }
/// ```
pub struct AlignmentInput {
    format: Format,
    inner: Inner,
    what: String,
    /// Last bytes of a BGZF input, checked against the end-of-file block at the end.
    tail: Option<Arc<Mutex<Tail>>>,
    /// Block boundaries of a BGZF input, for [`AlignmentInput::resume_point`].
    blocks: Option<Arc<Mutex<bam::BlockLog>>>,
}

/// The last [`bam::BGZF_EOF`]-sized bytes a stream delivered.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        let n = bam::BGZF_EOF.len();
        if bytes.len() >= n {
            self.buf.clear();
            self.buf.extend_from_slice(&bytes[bytes.len() - n..]);
        } else {
            self.buf.extend_from_slice(bytes);
            let excess = self.buf.len().saturating_sub(n);
            self.buf.drain(..excess);
        }
    }
}

/// Passes bytes through while remembering the last ones, so that a BGZF stream cut short
/// (without its end-of-file block) is noticed even on a pipe, where we cannot seek.
struct TailReader<R> {
    inner: R,
    tail: Arc<Mutex<Tail>>,
}

impl<R: Read> Read for TailReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut t) = self.tail.lock() {
            t.push(&buf[..n]);
        }
        Ok(n)
    }
}

enum Inner {
    Bam(bam::Reader<Box<dyn Read + Send>>),
    Sam(sam::Reader<Box<dyn BufRead + Send>>),
    Cram(Box<dyn RecordSource>),
}

/// The first bytes of every CRAM file (its file definition, CRAM spec 6).
pub const CRAM_MAGIC: &[u8; 4] = b"CRAM";

/// Records, as BAM bytes, and their header from a decoder outside this crate.
///
/// ```
/// use bams3_core::input::RecordSource;
/// use bams3_core::{Header, Record, Result};
/// struct Empty(Header);
/// impl RecordSource for Empty {
///     fn header(&self) -> &Header { &self.0 }
///     fn read_record(&mut self) -> Result<Option<Record>> { Ok(None) }
/// }
/// ```
pub trait RecordSource: Send {
    /// The header, as the decoder presents it.
    fn header(&self) -> &Header;
    /// The next record, or `None` at the end (a decoder checks itself that the input is whole).
    fn read_record(&mut self) -> Result<Option<Record>>;
}

/// Opens a CRAM stream (its bytes from the start, magic included; the second argument names it
/// in messages) as a [`RecordSource`].
pub type CramOpener<'a> = &'a dyn Fn(Box<dyn Read + Send>, &str) -> Result<Box<dyn RecordSource>>;

/// Input bytes after sniffing: the peeked prefix is put back in front of the rest.
type Sniffed = io::Chain<io::Cursor<Vec<u8>>, Box<dyn Read + Send>>;

fn sniff(mut r: Box<dyn Read + Send>, n: usize, what: &str) -> Result<(Vec<u8>, Sniffed)> {
    let mut head = Vec::with_capacity(n);
    (&mut r)
        .take(n as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(what, e))?;
    Ok((head.clone(), io::Cursor::new(head).chain(r)))
}

impl AlignmentInput {
    /// Opens `path` (`-` for standard input, `s3://bucket/key` for an S3 object) and reads its
    /// header. BAM is recognised by the gzip magic followed by `BAM\1`; anything else must be
    /// SAM text, plain, BGZF-compressed or gzip-compressed.
    pub fn open(path: &str, threads: usize) -> Result<AlignmentInput> {
        Self::open_with(path, threads, &crate::storage::StoreOptions::default())
    }

    /// [`AlignmentInput::open`], reaching an `s3://` input as `store` says.
    pub fn open_with(
        path: &str,
        threads: usize,
        store: &crate::storage::StoreOptions,
    ) -> Result<AlignmentInput> {
        let raw: Box<dyn Read + Send> = if path == "-" {
            Box::new(io::stdin())
        } else if crate::storage::is_s3(path) {
            // Streamed, never downloaded whole: the GET body feeds the decoder as it arrives.
            crate::storage::open_object(path, store)?
        } else {
            let f = File::open(path).map_err(|e| Error::io(path, e))?;
            if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                return Err(Error::Invalid(format!(
                    "{path}: is a directory, not a BAM/SAM/CRAM file"
                )));
            }
            Box::new(f)
        };
        Self::from_reader(raw, path, threads)
    }

    /// Reads alignments from any byte stream; `what` names it in messages. CRAM is refused:
    /// [`AlignmentInput::from_reader_with_cram`] reads it.
    pub fn from_reader(raw: Box<dyn Read + Send>, what: &str, threads: usize) -> Result<Self> {
        Self::from_reader_with_cram(raw, what, threads, None)
    }

    /// [`AlignmentInput::from_reader`], handing a CRAM stream (recognised by its magic) to
    /// `cram`.
    pub fn from_reader_with_cram(
        raw: Box<dyn Read + Send>,
        what: &str,
        threads: usize,
        cram: Option<CramOpener>,
    ) -> Result<Self> {
        let (head, stream) = sniff(raw, 4096, what)?;
        if head.is_empty() {
            return Err(Error::corrupt(what, "empty input"));
        }
        if head.starts_with(CRAM_MAGIC) {
            let Some(open) = cram else {
                return Err(Error::Invalid(format!(
                    "{what}: CRAM input is read by `bams3 convert` only (or convert it to BAM with samtools first)"
                )));
            };
            return Ok(AlignmentInput {
                format: Format::Cram,
                inner: Inner::Cram(open(Box::new(stream), what)?),
                what: what.to_string(),
                tail: None,
                blocks: None,
            });
        }
        if head.starts_with(&[0x1f, 0x8b]) && !is_bgzf(&head) {
            // Plain gzip (`gzip file.sam`): one stream (or several members) without BGZF's
            // blocks; its own CRC and length trailer catch a cut-short file.
            let decoded = Box::new(flate2::read::MultiGzDecoder::new(stream));
            return Self::decompressed(decoded, "gzip", what, None);
        }
        if head.starts_with(&[0x1f, 0x8b]) {
            let tail = Arc::new(Mutex::new(Tail::default()));
            let blocks = bam::BlockLog::new(0, 0);
            let decoded = bgzf_stream(stream, threads, &tail, &blocks);
            let mut input = Self::decompressed(decoded, "BGZF", what, Some(tail))?;
            if input.format == Format::Bam {
                input.blocks = Some(blocks);
            } else if let Ok(mut b) = blocks.lock() {
                b.stop();
            }
            return Ok(input);
        }
        if is_binary(&head) {
            return Err(Error::corrupt(
                what,
                "not a BAM, SAM or CRAM file (binary data)",
            ));
        }
        Self::sam(
            Box::new(BufReader::with_capacity(1 << 20, stream)),
            what,
            None,
        )
    }

    /// BAM or SAM from the decompressed bytes of a `kind` (BGZF or gzip) input; `tail`, for
    /// BGZF, receives the raw bytes whose end must be the end-of-file block.
    fn decompressed(
        decoded: Box<dyn Read + Send>,
        kind: &str,
        what: &str,
        tail: Option<Arc<Mutex<Tail>>>,
    ) -> Result<Self> {
        let (magic, decoded) = sniff(decoded, 4, what).map_err(|e| match e {
            Error::Io { source, .. } => Error::corrupt(what, format!("bad {kind} data: {source}")),
            e => e,
        })?;
        if magic.is_empty() {
            return Err(Error::corrupt(what, format!("truncated {kind} data")));
        }
        if magic == bam::MAGIC {
            let reader = bam::Reader::new(Box::new(decoded) as Box<dyn Read + Send>, what)?;
            return Ok(AlignmentInput {
                format: Format::Bam,
                inner: Inner::Bam(reader),
                what: what.to_string(),
                tail,
                blocks: None,
            });
        }
        Self::sam(Box::new(BufReader::new(decoded)), what, tail)
    }

    fn sam(r: Box<dyn BufRead + Send>, what: &str, tail: Option<Arc<Mutex<Tail>>>) -> Result<Self> {
        let reader = sam::Reader::new(r).map_err(|e| name_input(what, e))?;
        Ok(AlignmentInput {
            format: Format::Sam,
            inner: Inner::Sam(reader),
            what: what.to_string(),
            tail,
            blocks: None,
        })
    }

    /// A BAM input reopened at `point` (a record start [`AlignmentInput::resume_point`] gave
    /// for the same file): `raw` is the file from byte `point.block` on, `header` the file's
    /// header. Records come from that one on, and the end-of-file check still applies.
    pub fn resume_bam(
        raw: Box<dyn Read + Send>,
        header: Header,
        point: bam::ResumePoint,
        threads: usize,
        what: &str,
    ) -> Result<Self> {
        let tail = Arc::new(Mutex::new(Tail::default()));
        let blocks = bam::BlockLog::new(point.block, point.block_start);
        let mut decoded = bgzf_stream(raw, threads, &tail, &blocks);
        let skipped = io::copy(&mut (&mut decoded).take(point.within), &mut io::sink())
            .map_err(|e| Error::corrupt(what, format!("at offset {}: {e}", point.block)))?;
        if skipped != point.within {
            return Err(Error::corrupt(
                what,
                "ends before the journal's resume point: not the file the conversion started from",
            ));
        }
        Ok(AlignmentInput {
            format: Format::Bam,
            inner: Inner::Bam(bam::Reader::resume_at(
                decoded,
                header,
                what,
                point.offset(),
            )),
            what: what.to_string(),
            tail: Some(tail),
            blocks: Some(blocks),
        })
    }

    /// The BAM file or S3 object `location` reopened at `point`, a record start an earlier
    /// read of the same file gave ([`AlignmentInput::resume_point`]): its header is read
    /// again from its start, its records come from `point` on.
    pub fn reopen_at(
        location: &str,
        store: &crate::storage::StoreOptions,
        point: bam::ResumePoint,
        threads: usize,
    ) -> Result<AlignmentInput> {
        // The header's blocks only, as a shard reads them (not a stream of the whole file).
        let src = crate::shard::InputSource::open(location, store)?;
        let (header, _) = crate::shard::read_header(&src)?;
        Self::resume_bam(
            src.reader_at(point.block)?,
            header,
            point,
            threads,
            location,
        )
    }

    /// Where the record last read starts in a BAM input, as a point
    /// [`AlignmentInput::resume_bam`] reopens the file at; `None` for other inputs.
    pub fn resume_point(&self) -> Option<bam::ResumePoint> {
        let (Inner::Bam(r), Some(blocks)) = (&self.inner, &self.blocks) else {
            return None;
        };
        blocks.lock().ok()?.point(r.last_start())
    }

    /// No [`AlignmentInput::resume_point`] will be asked for: stop logging blocks.
    pub fn stop_resume_points(&mut self) {
        if let Some(b) = self.blocks.take()
            && let Ok(mut b) = b.lock()
        {
            b.stop();
        }
    }

    /// What the input turned out to be.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The header.
    pub fn header(&self) -> &Header {
        match &self.inner {
            Inner::Bam(r) => r.header(),
            Inner::Sam(r) => r.header(),
            Inner::Cram(r) => r.header(),
        }
    }

    /// SEQ characters outside `=ACMGRSVTWYHKDBN` read so far, stored as samtools stores them
    /// (see [`sam::Reader::replaced_bases`]); binary input cannot hold any.
    pub fn replaced_bases(&self) -> sam::Replaced {
        match &self.inner {
            Inner::Sam(r) => r.replaced_bases(),
            _ => sam::Replaced::default(),
        }
    }

    /// The next record, or `None` at the end. A BGZF input that ends without its end-of-file
    /// block was cut short, and that is an error: samtools only warns, but converting it
    /// would silently lose the missing records.
    pub fn read_record(&mut self) -> Result<Option<Record>> {
        let r = match &mut self.inner {
            Inner::Bam(r) => r.read_record(),
            Inner::Sam(r) => r.read_record().map_err(|e| name_input(&self.what, e)),
            Inner::Cram(r) => r.read_record(),
        }?;
        if r.is_none()
            && let Some(tail) = &self.tail
        {
            let complete = tail.lock().map(|t| t.buf == bam::BGZF_EOF).unwrap_or(false);
            if !complete {
                return Err(Error::corrupt(
                    &self.what,
                    "truncated file (no BGZF end-of-file block)",
                ));
            }
        }
        Ok(r)
    }
}

/// The decompressed bytes of a BGZF stream, its raw bytes seen by `tail` and `blocks`.
fn bgzf_stream<R: Read + Send + 'static>(
    raw: R,
    threads: usize,
    tail: &Arc<Mutex<Tail>>,
    blocks: &Arc<Mutex<bam::BlockLog>>,
) -> Box<dyn Read + Send> {
    let stream = bam::BlockTracker::new(
        TailReader {
            inner: raw,
            tail: tail.clone(),
        },
        blocks.clone(),
    );
    if threads > 1 {
        let n = std::num::NonZero::new(threads).expect("threads > 1");
        Box::new(noodles_bgzf::io::MultithreadedReader::with_worker_count(
            n, stream,
        ))
    } else {
        Box::new(noodles_bgzf::io::Reader::new(stream))
    }
}

/// Whether a gzip member header is BGZF's: the FEXTRA flag and a `BC` subfield first (SAM
/// spec 4.1). Plain gzip has neither.
fn is_bgzf(head: &[u8]) -> bool {
    head.len() >= 18 && head[3] & 4 != 0 && head[12] == b'B' && head[13] == b'C'
}

/// Whether the start of an input holds control bytes SAM text never has.
fn is_binary(head: &[u8]) -> bool {
    head.iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
}

/// Puts the input's name in front of a SAM error's own location (`SAM line N`).
fn name_input(what: &str, e: Error) -> Error {
    match e {
        Error::Corrupt { what: w, detail } => Error::corrupt(what, format!("{w}: {detail}")),
        Error::Io { source, .. } => Error::io(what, source),
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const SAM: &str = "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:c1\tLN:100\n\
        r1\t0\tc1\t10\t60\t4M\t*\t0\t0\tACGT\tIIII\n\
        r2\t16\tc1\t20\t60\t4M\t*\t0\t0\tTTTT\t*\n";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn names(mut input: AlignmentInput) -> Result<Vec<String>> {
        let mut out = Vec::new();
        while let Some(r) = input.read_record()? {
            out.push(String::from_utf8_lossy(r.name()).into_owned());
        }
        Ok(out)
    }

    #[test]
    fn plain_gzip_sam_reads_like_plain_sam() {
        let plain =
            AlignmentInput::from_reader(Box::new(io::Cursor::new(SAM)), "plain", 1).unwrap();
        let want = names(plain).unwrap();
        assert_eq!(want, ["r1", "r2"]);
        // Two members, as `cat a.gz b.gz` gives: both are read.
        let (a, b) = SAM.split_at(SAM.find("r2").unwrap());
        let mut two = gzip(a.as_bytes());
        two.extend(gzip(b.as_bytes()));
        for (bytes, what) in [(gzip(SAM.as_bytes()), "one member"), (two, "two members")] {
            let input =
                AlignmentInput::from_reader(Box::new(io::Cursor::new(bytes)), what, 2).unwrap();
            assert_eq!(input.format(), Format::Sam, "{what}");
            assert_eq!(names(input).unwrap(), want, "{what}");
        }
    }

    #[test]
    fn cut_short_gzip_is_an_error() {
        let mut bytes = gzip(SAM.as_bytes());
        bytes.truncate(bytes.len() - 12);
        let r = AlignmentInput::from_reader(Box::new(io::Cursor::new(bytes)), "cut.sam.gz", 1)
            .and_then(names);
        assert!(r.is_err(), "a truncated gzip file must not convert: {r:?}");
    }
}
