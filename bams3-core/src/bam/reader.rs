//! Reading BAM: the header, then records as raw bytes, never re-encoded.

use std::io::{self, Read};
use std::num::NonZero;

use noodles_bgzf as bgzf;

use super::MAGIC;
use crate::{Error, Header, Record, Reference, Result};

/// Reads a decompressed BAM stream (the caller picks the BGZF decoder).
///
/// ```no_run
/// use bams3_core::bam;
/// let file = std::fs::File::open("in.bam").unwrap();
/// let mut reader = bam::Reader::from_bgzf(file, 2, "in.bam").unwrap();
/// while let Some(record) = reader.read_record().unwrap() {
///     println!("{}", String::from_utf8_lossy(record.name()));
/// }
/// ```
pub struct Reader<R> {
    inner: R,
    header: Header,
    what: String,
    records: u64,
    /// Decompressed offset of the next record (its length field), and of the last one read.
    offset: u64,
    last_start: u64,
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean end of input before the first byte.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) if n == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl<R: Read> Reader<R> {
    /// Reads the BAM header from a decompressed stream; `what` names the input in errors.
    pub fn new(mut inner: R, what: &str) -> Result<Self> {
        let err = |e: io::Error| bam_error(what, e, "header");
        let mut magic = [0; 4];
        if !read_full(&mut inner, &mut magic).map_err(err)? || magic != MAGIC {
            return Err(Error::corrupt(what, "not a BAM file (bad magic)"));
        }
        let l_text = read_u32(&mut inner).map_err(err)? as usize;
        let text = read_vec(&mut inner, l_text, what)?;
        // Some writers pad the text with NULs; they are not part of any header line.
        let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
        let text = String::from_utf8(text[..end].to_vec())
            .map_err(|_| Error::corrupt(what, "header text is not valid UTF-8"))?;
        let n_ref = read_u32(&mut inner).map_err(err)? as usize;
        let mut offset = 12 + l_text as u64;
        let mut references = Vec::with_capacity(n_ref.min(1 << 16));
        for _ in 0..n_ref {
            let l_name = read_u32(&mut inner).map_err(err)? as usize;
            let name = read_vec(&mut inner, l_name, what)?;
            let name = name.strip_suffix(&[0]).unwrap_or(&name);
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| Error::corrupt(what, "reference name is not valid UTF-8"))?;
            let length = read_u32(&mut inner).map_err(err)? as u64;
            references.push(Reference { name, length });
            offset += 8 + l_name as u64;
        }
        Ok(Reader {
            inner,
            header: Header { text, references },
            what: what.to_string(),
            records: 0,
            offset,
            last_start: offset,
        })
    }

    /// Reads records of `header` from a decompressed stream already past the header, at a
    /// record boundary (a shard starts at an index's virtual offset).
    pub fn resume(inner: R, header: Header, what: &str) -> Self {
        Self::resume_at(inner, header, what, 0)
    }

    /// [`Reader::resume`] with `inner` starting at decompressed offset `offset` of the file,
    /// so [`Reader::last_start`] stays an offset in the whole stream.
    pub fn resume_at(inner: R, header: Header, what: &str, offset: u64) -> Self {
        Reader {
            inner,
            header,
            what: what.to_string(),
            records: 0,
            offset,
            last_start: offset,
        }
    }

    /// Decompressed offset in the stream at which the record last read starts.
    pub fn last_start(&self) -> u64 {
        self.last_start
    }

    /// The header: text as stored, references from the binary reference list.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next record, or `None` at a clean end of input. A record cut short is an error.
    pub fn read_record(&mut self) -> Result<Option<Record>> {
        let mut len = [0; 4];
        let at = self.records;
        let err = |e| bam_error(&self.what, e, &format!("record {}", at + 1));
        if !read_full(&mut self.inner, &mut len).map_err(err)? {
            return Ok(None);
        }
        let len = u32::from_le_bytes(len) as usize;
        let mut buf = vec![0; len];
        if !read_full(&mut self.inner, &mut buf).map_err(err)? && len > 0 {
            return Err(Error::corrupt(&self.what, "truncated BAM record"));
        }
        self.records += 1;
        self.last_start = self.offset;
        self.offset += 4 + len as u64;
        Record::from_bytes(buf)
            .map_err(|e| match e {
                Error::Corrupt { detail, .. } => {
                    Error::corrupt(&self.what, format!("record {}: {detail}", self.records))
                }
                e => e,
            })
            .map(Some)
    }
}

impl Reader<Box<dyn Read + Send>> {
    /// Opens a BGZF-compressed BAM stream, decompressing on `threads` workers (1 = inline).
    pub fn from_bgzf<R: Read + Send + 'static>(
        inner: R,
        threads: usize,
        what: &str,
    ) -> Result<Self> {
        Reader::new(bgzf_decoder(inner, threads), what)
    }
}

/// A BGZF decoder of `inner` on `threads` workers (1 = inline).
pub fn bgzf_decoder<R: Read + Send + 'static>(inner: R, threads: usize) -> Box<dyn Read + Send> {
    if threads > 1 {
        let n = NonZero::new(threads).expect("threads > 1");
        Box::new(bgzf::io::MultithreadedReader::with_worker_count(n, inner))
    } else {
        Box::new(bgzf::io::Reader::new(inner))
    }
}

fn bam_error(what: &str, e: io::Error, context: &str) -> Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Error::corrupt(what, format!("truncated BAM file (in {context})"))
    } else {
        Error::corrupt(what, format!("{context}: {e}"))
    }
}

fn read_u32<R: Read>(r: &mut R) -> io::Result<u32> {
    let mut b = [0; 4];
    if !read_full(r, &mut b)? {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(u32::from_le_bytes(b))
}

fn read_vec<R: Read>(r: &mut R, len: usize, what: &str) -> Result<Vec<u8>> {
    // Grow as data arrives so a corrupt length cannot force a huge allocation up front.
    let mut buf = Vec::with_capacity(len.min(1 << 20));
    r.take(len as u64)
        .read_to_end(&mut buf)
        .map_err(|e| bam_error(what, e, "header"))?;
    if buf.len() != len {
        return Err(Error::corrupt(what, "truncated BAM file (in header)"));
    }
    Ok(buf)
}
