//! Opening alignment input: a BAM or SAM file, or standard input, recognised by its bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use crate::{bam, sam, Error, Header, Record, Result};

/// The alignment formats `convert` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// BGZF-compressed BAM.
    Bam,
    /// SAM text, plain or BGZF/gzip-compressed.
    Sam,
}

impl Format {
    /// `"BAM"` or `"SAM"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Bam => "BAM",
            Format::Sam => "SAM",
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
}

enum Inner {
    Bam(bam::Reader<Box<dyn Read + Send>>),
    Sam(sam::Reader<Box<dyn BufRead + Send>>),
}

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
    /// Opens `path` (`-` for standard input) and reads its header. BAM is recognised by the
    /// gzip magic followed by `BAM\1`; anything else must be SAM text.
    pub fn open(path: &str, threads: usize) -> Result<AlignmentInput> {
        let raw: Box<dyn Read + Send> = if path == "-" {
            Box::new(io::stdin())
        } else {
            let f = File::open(path).map_err(|e| Error::io(path, e))?;
            if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                return Err(Error::Invalid(format!(
                    "{path}: is a directory, not a BAM/SAM file"
                )));
            }
            check_bgzf_eof(&f, path)?;
            Box::new(f)
        };
        Self::from_reader(raw, path, threads)
    }

    /// Reads alignments from any byte stream; `what` names it in messages.
    pub fn from_reader(raw: Box<dyn Read + Send>, what: &str, threads: usize) -> Result<Self> {
        let (head, stream) = sniff(raw, 2, what)?;
        if head.is_empty() {
            return Err(Error::corrupt(what, "empty input"));
        }
        if head == [0x1f, 0x8b] {
            let decoded: Box<dyn Read + Send> = if threads > 1 {
                let n = std::num::NonZero::new(threads).expect("threads > 1");
                Box::new(noodles_bgzf::io::MultithreadedReader::with_worker_count(
                    n, stream,
                ))
            } else {
                Box::new(noodles_bgzf::io::Reader::new(stream))
            };
            let (magic, decoded) = sniff(decoded, 4, what).map_err(|e| match e {
                Error::Io { source, .. } => {
                    Error::corrupt(what, format!("bad BGZF data: {source}"))
                }
                e => e,
            })?;
            if magic == bam::MAGIC {
                let reader = bam::Reader::new(Box::new(decoded) as Box<dyn Read + Send>, what)?;
                return Ok(AlignmentInput {
                    format: Format::Bam,
                    inner: Inner::Bam(reader),
                });
            }
            return Self::sam(Box::new(BufReader::new(decoded)), what);
        }
        Self::sam(Box::new(BufReader::with_capacity(1 << 20, stream)), what)
    }

    fn sam(r: Box<dyn BufRead + Send>, what: &str) -> Result<Self> {
        let reader = sam::Reader::new(r).map_err(|e| match e {
            Error::Corrupt { what: w, detail } => Error::corrupt(what, format!("{w}: {detail}")),
            e => e,
        })?;
        Ok(AlignmentInput {
            format: Format::Sam,
            inner: Inner::Sam(reader),
        })
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
        }
    }

    /// The next record, or `None` at the end.
    pub fn read_record(&mut self) -> Result<Option<Record>> {
        match &mut self.inner {
            Inner::Bam(r) => r.read_record(),
            Inner::Sam(r) => r.read_record(),
        }
    }
}

/// A BAM file that does not end with the BGZF EOF block was cut short. samtools only warns;
/// we refuse, because converting it would silently lose the missing records.
fn check_bgzf_eof(f: &File, path: &str) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = f;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let result = if n == 2 && magic == [0x1f, 0x8b] && len >= 28 {
        let mut tail = [0u8; 28];
        f.seek(SeekFrom::End(-28))
            .and_then(|_| f.read_exact(&mut tail))
            .map_err(|e| Error::io(path, e))?;
        if tail == bam::BGZF_EOF {
            Ok(())
        } else {
            Err(Error::corrupt(
                path,
                "truncated BAM file (no BGZF end-of-file marker)",
            ))
        }
    } else if n == 2 && magic == [0x1f, 0x8b] {
        Err(Error::corrupt(path, "truncated BAM file"))
    } else {
        Ok(())
    };
    f.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
    result
}
