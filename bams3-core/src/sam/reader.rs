//! Streaming SAM reader: the header, then one record per line.

use std::collections::HashMap;
use std::io::BufRead;

use crate::{Error, Header, Record, Result};

use super::parse::parse_line;

/// The reference names records may use, hashed: every `@SQ` `SN` (which must be unique, as
/// htslib requires, since records could not say which one they mean) and its `AN`
/// alternative names, so each record costs one lookup rather than a scan of the header.
///
/// ```
/// use bams3_core::{sam::ReferenceNames, Header};
/// let header = Header::from_sam_text("@SQ\tSN:chr1\tLN:10\tAN:1\n@SQ\tSN:chr2\tLN:10\n").unwrap();
/// let names = ReferenceNames::new(&header).unwrap();
/// assert_eq!(names.get(b"chr2"), Some(1));
/// assert_eq!(names.get(b"1"), Some(0));
/// assert_eq!(names.get(b"chr3"), None);
/// ```
#[derive(Debug, Clone)]
pub struct ReferenceNames {
    map: HashMap<Vec<u8>, usize>,
}

impl ReferenceNames {
    /// The names of `header`'s references; duplicate `SN` names are an error.
    pub fn new(header: &Header) -> Result<Self> {
        let mut map = HashMap::with_capacity(header.references.len());
        for (i, r) in header.references.iter().enumerate() {
            if map.insert(r.name.as_bytes().to_vec(), i).is_some() {
                return Err(Error::corrupt(
                    "SAM header",
                    format!("reference '{}' has more than one @SQ line", r.name),
                ));
            }
        }
        // Records may name a reference by an alternative name (`@SQ AN:`), as htslib allows.
        for (i, line) in header
            .text
            .lines()
            .filter(|l| l.starts_with("@SQ\t"))
            .enumerate()
        {
            let Some(alt) = line.split('\t').find_map(|f| f.strip_prefix("AN:")) else {
                continue;
            };
            let Some(i) = header.reference_index_of_sq_line(i) else {
                continue;
            };
            for name in alt.split(',') {
                map.entry(name.as_bytes().to_vec()).or_insert(i);
            }
        }
        Ok(ReferenceNames { map })
    }

    /// The index of the reference called `name` (its `SN` or one of its `AN` names).
    pub fn get(&self, name: &[u8]) -> Option<usize> {
        self.map.get(name).copied()
    }
}

/// Reads a SAM stream: [`Reader::new`] takes the `@` header lines, then
/// [`Reader::read_record`] returns one BAM-encoded record per line.
///
/// Nothing is skipped: a blank line in the middle is an error, only blank lines at the very
/// end are allowed. CRLF line ends are accepted. Errors name the line number.
///
/// ```
/// use bams3_core::sam::Reader;
/// let text = "@SQ\tSN:chr1\tLN:1000\r\nr1\t0\tchr1\t5\t60\t2M\t*\t0\t0\tAC\tII\r\n";
/// let mut reader = Reader::new(text.as_bytes()).unwrap();
/// assert_eq!(reader.header().references[0].name, "chr1");
/// let rec = reader.read_record().unwrap().unwrap();
/// assert_eq!(rec.pos(), 4);
/// assert!(reader.read_record().unwrap().is_none());
/// ```
pub struct Reader<R: BufRead> {
    inner: R,
    header: Header,
    /// Reference name → index, so that each record costs one hash lookup, not a scan.
    ref_index: ReferenceNames,
    /// 1-based number of the last line read.
    line_no: u64,
    line: Vec<u8>,
    replaced: Replaced,
}

/// SEQ characters outside `=ACMGRSVTWYHKDBN` read so far, which BAM stores as samtools does
/// (`N`; the digits `0`-`3` as `A`, `C`, `G`, `T`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replaced {
    /// Characters replaced.
    pub bases: u64,
    /// Records holding at least one.
    pub records: u64,
}

impl<R: BufRead> Reader<R> {
    /// Reads the header (every leading line that starts with `@`) verbatim.
    pub fn new(mut inner: R) -> Result<Self> {
        let mut text = Vec::new();
        let mut line_no = 0;
        loop {
            let next = inner.fill_buf().map_err(|e| Error::io("SAM input", e))?;
            if next.first() != Some(&b'@') {
                break;
            }
            line_no += 1;
            let before = text.len();
            inner
                .read_until(b'\n', &mut text)
                .map_err(|e| Error::io("SAM input", e))?;
            // The header text promises a newline after every line, and CRLF input keeps no CR
            // (samtools drops it too).
            if text.last() == Some(&b'\n') {
                text.pop();
            }
            if text.len() > before && text.last() == Some(&b'\r') {
                text.pop();
            }
            text.push(b'\n');
            // htslib refuses header lines that are not `@` + two letters, then a tab or the end
            // of the line (a bare `@CO` is fine, and a comment may follow `@CO` with spaces).
            let line = &text[before..];
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            if body.len() < 3
                || !body[1..3].iter().all(u8::is_ascii_alphabetic)
                || (body.get(3).is_some_and(|&c| c != b'\t') && &body[1..3] != b"CO")
            {
                return Err(Error::corrupt(
                    format!("SAM header line {line_no}"),
                    "expected '@' and a two-letter record type followed by a tab",
                ));
            }
            if let Err(e) = std::str::from_utf8(line) {
                return Err(Error::corrupt(
                    format!("SAM header line {line_no}"),
                    format!("not valid UTF-8 ({e})"),
                ));
            }
        }
        // Each line was checked above.
        let text = String::from_utf8(text)
            .map_err(|e| Error::corrupt("SAM header", format!("not valid UTF-8 ({e})")))?;
        let header = Header::from_sam_text(&text)?;
        let ref_index = ReferenceNames::new(&header)?;
        Ok(Reader {
            inner,
            header,
            ref_index,
            line_no,
            line: Vec::new(),
            replaced: Replaced::default(),
        })
    }

    /// The header read by [`Reader::new`].
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// How many SEQ characters BAM has no code for were read so far, and in how many records.
    ///
    /// ```
    /// use bams3_core::sam::Reader;
    /// let text = "@SQ\tSN:c\tLN:9\nr\t0\tc\t1\t0\t4M\t*\t0\t0\tACGU\t*\n";
    /// let mut reader = Reader::new(text.as_bytes()).unwrap();
    /// let rec = reader.read_record().unwrap().unwrap();
    /// assert_eq!(rec.packed_seq(), [0x12, 0x4f]); // U is stored as N
    /// assert_eq!(reader.replaced_bases().bases, 1);
    /// ```
    pub fn replaced_bases(&self) -> Replaced {
        self.replaced
    }

    /// Gives the header back, dropping the reader.
    pub fn into_header(self) -> Header {
        self.header
    }

    /// Reads the next record; `None` at the end of the input.
    pub fn read_record(&mut self) -> Result<Option<Record>> {
        self.line.clear();
        let n = self
            .inner
            .read_until(b'\n', &mut self.line)
            .map_err(|e| Error::io("SAM input", e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let line_no = self.line_no;
        let what = || format!("SAM line {line_no}");
        let mut end = self.line.len();
        for ending in [b'\n', b'\r'] {
            if end > 0 && self.line[end - 1] == ending {
                end -= 1;
            }
        }
        if end == 0 {
            // Blank lines are tolerated only as trailing padding.
            if self.rest_is_blank()? {
                return Ok(None);
            }
            return Err(Error::corrupt(
                what(),
                "empty line before the end of the input",
            ));
        }
        let line = &self.line[..end];
        if line[0] == b'@' {
            return Err(Error::corrupt(
                what(),
                "header line after the first alignment",
            ));
        }
        let index = &self.ref_index;
        let lookup = |name: &[u8]| index.get(name);
        let parsed = parse_line(line, &lookup).map_err(|detail| Error::corrupt(what(), detail))?;
        if parsed.replaced_bases > 0 {
            self.replaced.bases += parsed.replaced_bases as u64;
            self.replaced.records += 1;
        }
        Ok(Some(parsed.record))
    }

    /// Consumes the input if everything left is blank lines; reports whether it was.
    fn rest_is_blank(&mut self) -> Result<bool> {
        loop {
            let buf = self
                .inner
                .fill_buf()
                .map_err(|e| Error::io("SAM input", e))?;
            if buf.is_empty() {
                return Ok(true);
            }
            match buf.iter().position(|&c| c != b'\n' && c != b'\r') {
                Some(_) => return Ok(false),
                None => {
                    let n = buf.len();
                    self.inner.consume(n);
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000\n";
    const REC: &str = "r1\t0\tchr1\t5\t60\t2M\t*\t0\t0\tAC\tII";

    fn read_all(text: &str) -> Result<Vec<Record>> {
        Reader::new(text.as_bytes())?.collect()
    }

    #[test]
    fn header_is_kept_verbatim() {
        let text = format!("{HEAD}{REC}\n");
        let r = Reader::new(text.as_bytes()).unwrap();
        assert_eq!(r.header().text, HEAD);
        let r = Reader::new("@SQ\tSN:c\tLN:9\r\n".as_bytes()).unwrap();
        // CRLF input: the CR is not part of the header line (samtools drops it too).
        assert_eq!(r.header().text, "@SQ\tSN:c\tLN:9\n");
        assert_eq!(r.header().references[0].name, "c");
    }

    #[test]
    fn bad_headers_are_refused() {
        let dup = "@SQ\tSN:c\tLN:9\n@SQ\tSN:c\tLN:10\n";
        let e = Reader::new(dup.as_bytes()).err().unwrap().to_string();
        assert!(e.contains("'c'"), "{e}");
        assert!(Reader::new("@HD\tVN:1.6\n@CO  spaces\n".as_bytes()).is_ok());
        let e = Reader::new("@HD\tVN:1.6\n@RG  spaces\n".as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(Reader::new("@CO\n@SQ\tSN:c\tLN:9\n".as_bytes()).is_ok());
    }

    #[test]
    fn trailing_blank_lines_and_crlf_are_fine() {
        assert_eq!(read_all(&format!("{HEAD}{REC}\n\n\r\n")).unwrap().len(), 1);
        assert_eq!(read_all(&format!("{HEAD}{REC}\r\n{REC}")).unwrap().len(), 2);
        assert_eq!(read_all(HEAD).unwrap().len(), 0);
    }

    #[test]
    fn errors_name_the_line() {
        let e = read_all(&format!("{HEAD}{REC}\n\n{REC}\n")).unwrap_err();
        assert!(e.to_string().contains("SAM line 4"), "{e}");
        let e = read_all(&format!("{HEAD}{REC}\n{}\n", REC.replace("chr1", "chr2")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SAM line 4") && e.contains("chr2"), "{e}");
        let e = read_all(&format!("{HEAD}{REC}\n@CO\tlate\n")).unwrap_err();
        assert!(e.to_string().contains("SAM line 4"), "{e}");
    }
}
