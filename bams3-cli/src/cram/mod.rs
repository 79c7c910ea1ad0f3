//! CRAM input for `bams3 convert`, decoded by Debian's htslib (libhts).
//!
//! htslib is the decoder samtools itself uses, so the records are exactly those of
//! `samtools view -b in.cram`: the MD and NM tags it regenerates, their place among the tags,
//! every CRAM 3.0 and 3.1 codec. (noodles-cram 0.102 neither regenerates MD/NM nor decodes a
//! file whose header lists sequences that have no reads, so it cannot give those records.)
//! The bytes reach htslib through a pipe fed by a thread, whatever their source (a file, an
//! S3 object, standard input), so the progress display counts them like any other input's.
//! Only this command uses libhts, loaded at run time the first time CRAM is read: other
//! commands start without it, and bams3-core and the bindings stay free of it.

#[cfg(target_endian = "big")]
compile_error!("CRAM input copies htslib's in-memory records, which are little-endian BAM only on little-endian hosts");

mod htslib;
mod record;
mod reference;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::path::PathBuf;
use std::thread::JoinHandle;

use bams3_core::input::RecordSource;
use bams3_core::{Error, Header, Record, Reference, Result};

/// How to find the reference sequences of a CRAM, besides what htslib finds by itself
/// (`REF_PATH`, `REF_CACHE`, the `@SQ` `UR` tags).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A FASTA file with its `.fai` (`--reference`), as `samtools view -T`.
    pub reference: Option<PathBuf>,
    /// Decoding threads.
    pub threads: usize,
}

/// The EOF container ending every CRAM 3.x file (CRAM spec 9), and CRAM 2.1's.
const EOF_3: [u8; 38] = [
    0x0f, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xe0, 0x45, 0x4f, 0x46, 0, 0, 0, 0, 0x01, 0, 0x05,
    0xbd, 0xd9, 0x4f, 0, 0x01, 0, 0x06, 0x06, 0x01, 0, 0x01, 0, 0x01, 0, 0xee, 0x63, 0x01, 0x4b,
];
const EOF_2: [u8; 30] = [
    0x0b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xe0, 0x45, 0x4f, 0x46, 0, 0, 0, 0, 0x01, 0, 0,
    0x01, 0, 0x06, 0x06, 0x01, 0, 0x01, 0, 0x01, 0,
];

/// A CRAM stream's records, one at a time.
///
/// ```ignore
/// # fn main() -> bams3_core::Result<()> {
/// use bams3_core::input::RecordSource;
/// let file = std::fs::File::open("in.cram").unwrap();
/// let opts = bams3::cram::Options { reference: Some("ref.fa".into()), threads: 2 };
/// let mut cram = bams3::cram::CramReader::open(Box::new(file), "in.cram", &opts)?;
/// while let Some(record) = cram.read_record()? { /* BAM bytes, as samtools view -b */ }
/// # Ok(()) }
/// ```
pub struct CramReader {
    reader: htslib::Reader,
    header: Header,
    what: String,
    opts: Options,
    records: u64,
    /// The reference id of the last record decoded, where a failure's diagnosis starts.
    last_ref: i32,
    feeder: Option<JoinHandle<std::io::Result<bool>>>,
}

impl CramReader {
    /// Starts decoding `raw` (the whole stream, magic included); `what` names it in messages.
    pub fn open(raw: Box<dyn Read + Send>, what: &str, opts: &Options) -> Result<CramReader> {
        htslib::load().map_err(Error::Invalid)?;
        let reference = match &opts.reference {
            Some(r) => {
                if !r.is_file() {
                    return Err(Error::Invalid(format!(
                        "--reference {}: no such file",
                        r.display()
                    )));
                }
                let c = CString::new(r.as_os_str().as_encoded_bytes()).map_err(|_| {
                    Error::Invalid(format!("--reference {}: bad file name", r.display()))
                })?;
                // Indexes it now (as samtools does, next to it) so a failure says so here.
                if htslib::Fasta::open(&c).is_none() {
                    return Err(Error::Invalid(format!(
                        "--reference {}: not a readable FASTA file (or its .fai cannot be written)",
                        r.display()
                    )));
                }
                Some(c)
            }
            None => None,
        };
        let (rx, tx) = std::io::pipe().map_err(|e| Error::io(what, e))?;
        let feeder = std::thread::spawn(move || feed(raw, tx));
        let name = CString::new(what).unwrap_or_else(|_| c"CRAM input".into());
        let fd = rx.into_raw_fd();
        let Some(reader) = htslib::Reader::open(fd, &name, reference.as_deref(), opts.threads)
        else {
            let cause = match feeder.join() {
                Ok(Err(e)) => e.to_string(),
                _ => "not a readable CRAM file (bad or truncated header)".into(),
            };
            return Err(Error::corrupt(what, cause));
        };
        let text = String::from_utf8(reader.header_text())
            .map_err(|_| Error::corrupt(what, "header text is not valid UTF-8"))?;
        let mut references = Vec::new();
        for (name, length) in reader.references() {
            let name = String::from_utf8(name)
                .map_err(|_| Error::corrupt(what, "reference name is not valid UTF-8"))?;
            references.push(Reference {
                name,
                length: length.max(0) as u64,
            });
        }
        Ok(CramReader {
            reader,
            header: Header { text, references },
            what: what.to_string(),
            opts: opts.clone(),
            records: 0,
            last_ref: 0,
            feeder: Some(feeder),
        })
    }

    /// Why decoding stopped after `self.records` records.
    fn failure(&mut self) -> Error {
        // The input itself failing (a read error, an S3 fault) is the cause to report.
        if let Some(f) = self.feeder.take_if(|f| f.is_finished()) {
            if let Ok(Err(e)) = f.join() {
                return Error::io(&self.what, e);
            }
        }
        let from = self.last_ref.max(0) as usize;
        let why = reference::diagnose(&self.header.text, from, self.opts.reference.as_deref())
            .unwrap_or_else(|| "corrupt or truncated data".into());
        Error::corrupt(
            &self.what,
            format!("CRAM decoding failed after {} records: {why}", self.records),
        )
    }
}

impl RecordSource for CramReader {
    fn header(&self) -> &Header {
        &self.header
    }

    fn read_record(&mut self) -> Result<Option<Record>> {
        let bytes = match self.reader.read() {
            htslib::Read::Record(b) => record::bam_bytes(b),
            htslib::Read::End => {
                let whole = match self.feeder.take().map(|f| f.join()) {
                    Some(Ok(Ok(whole))) => whole,
                    Some(Ok(Err(e))) => return Err(Error::io(&self.what, e)),
                    _ => false,
                };
                if !whole {
                    return Err(Error::corrupt(
                        &self.what,
                        "truncated file (no CRAM end-of-file container)",
                    ));
                }
                return Ok(None);
            }
            htslib::Read::Failed => return Err(self.failure()),
        };
        let n = self.records + 1;
        let record = bytes
            .map_err(|d| d.to_string())
            .and_then(|b| Record::from_bytes(b).map_err(|e| e.to_string()))
            .map_err(|d| Error::corrupt(&self.what, format!("record {n}: {d}")))?;
        self.records += 1;
        if record.ref_id() >= 0 {
            self.last_ref = record.ref_id();
        }
        Ok(Some(record))
    }
}

/// Copies the input into the pipe htslib reads; `Ok(true)` when it ended with an EOF
/// container (a cut-short CRAM would otherwise convert silently: htslib only warns).
fn feed(mut raw: Box<dyn Read + Send>, mut tx: std::io::PipeWriter) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 256 << 10];
    let mut tail: Vec<u8> = Vec::with_capacity(2 * EOF_3.len());
    // The file definition's version (bytes 4 and 5): CRAM before 2.1 had no EOF container.
    let mut version: Vec<u8> = Vec::with_capacity(6);
    loop {
        let n = match raw.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let want = 6 - version.len().min(6);
        version.extend_from_slice(&buf[..n.min(want)]);
        tail.extend_from_slice(&buf[n.saturating_sub(EOF_3.len())..n]);
        let excess = tail.len().saturating_sub(EOF_3.len());
        tail.drain(..excess);
        if tx.write_all(&buf[..n]).is_err() {
            // htslib stopped reading (an error, or the reader was dropped): it reports.
            return Ok(false);
        }
    }
    let before_2_1 = version.len() == 6 && (version[4], version[5]) < (2, 1);
    Ok(before_2_1 || tail.ends_with(&EOF_3) || tail.ends_with(&EOF_2))
}

/// The opener `AlignmentInput` calls when it recognises CRAM.
pub fn opener(
    opts: Options,
) -> impl Fn(Box<dyn Read + Send>, &str) -> Result<Box<dyn RecordSource>> {
    move |raw, what| Ok(Box::new(CramReader::open(raw, what, &opts)?) as Box<dyn RecordSource>)
}
