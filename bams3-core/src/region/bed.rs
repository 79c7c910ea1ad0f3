//! BED files of target regions, read as samtools reads them for `view -L`.
//!
//! samtools accepts more than strict BED, and users' files rely on it: fields separated by
//! any whitespace, leading whitespace, `#` comments, `browser`/`track` lines, blank lines,
//! CRLF endings, gzip compression, and lines with a single position (`chr 1234`, 1-based,
//! as in a VCF's first two columns). The same rules here keep `-L` giving the same records.

use std::io::{BufRead, BufReader, Read};

use crate::{Error, Result};

/// One BED interval: a reference name and a 0-based half-open interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedInterval {
    /// The reference name as written (names not in a dataset's header are ignored later).
    pub name: String,
    /// 0-based start.
    pub beg: i64,
    /// 0-based exclusive end.
    pub end: i64,
}

/// The intervals of a BED file, in file order.
///
/// ```
/// use bams3_core::region::Bed;
/// let bed = Bed::parse("track name=t\n# a comment\nchr1\t99\t200\tgene\nchr2 1234\n".as_bytes(), "t.bed").unwrap();
/// assert_eq!(bed.intervals().len(), 2);
/// assert_eq!((bed.intervals()[0].beg, bed.intervals()[0].end), (99, 200));
/// // One number is a 1-based position, as samtools reads it.
/// assert_eq!((bed.intervals()[1].beg, bed.intervals()[1].end), (1233, 1234));
/// assert!(Bed::parse("chr1\t200\t100\n".as_bytes(), "bad.bed").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Bed {
    intervals: Vec<BedInterval>,
}

impl Bed {
    /// Reads a BED file (`-` for standard input), plain or gzip-compressed.
    pub fn read(path: &str) -> Result<Bed> {
        let io = |e: std::io::Error| Error::Io {
            path: path.to_string(),
            source: e,
        };
        let input: Box<dyn Read> = if path == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(path).map_err(io)?)
        };
        let mut input = BufReader::new(input);
        // gzip (and BGZF, which is gzip) by its magic, as gzopen does.
        let gzipped = input.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
        if gzipped {
            Bed::parse(
                BufReader::new(flate2::bufread::MultiGzDecoder::new(input)),
                path,
            )
        } else {
            Bed::parse(input, path)
        }
    }

    /// Parses BED text; `what` names the input in errors.
    pub fn parse(mut text: impl BufRead, what: &str) -> Result<Bed> {
        let mut intervals = Vec::new();
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            let n = text.read_until(b'\n', &mut line).map_err(|e| Error::Io {
                path: what.to_string(),
                source: e,
            })?;
            if n == 0 {
                break;
            }
            number += 1;
            if let Some(interval) = parse_line(&line).map_err(|detail| Error::Corrupt {
                what: format!("{what}: line {number}"),
                detail,
            })? {
                intervals.push(interval);
            }
        }
        Ok(Bed { intervals })
    }

    /// The intervals, in file order.
    pub fn intervals(&self) -> &[BedInterval] {
        &self.intervals
    }
}

/// One line: `None` for blank, comment, `browser` and `track` lines.
fn parse_line(raw: &[u8]) -> std::result::Result<Option<BedInterval>, String> {
    let mut line = raw.strip_suffix(b"\n").unwrap_or(raw);
    line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.trim_ascii_start();
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    let name_len = line
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let name = String::from_utf8_lossy(&line[..name_len]).into_owned();
    let mut rest = &line[name_len..];
    let mut numbers = Vec::with_capacity(2);
    while numbers.len() < 2 {
        match leading_number(rest) {
            Some((v, after)) => {
                numbers.push(v);
                rest = after;
            }
            None => break,
        }
    }
    let (beg, end) = match numbers[..] {
        [beg, end] => (beg, end),
        // A VCF-style position: 1-based, one base.
        [pos] if pos > 0 => (pos - 1, pos),
        [_] => return Err("a single position must be 1 or more".into()),
        _ if name == "browser" || name == "track" => return Ok(None),
        _ => {
            return Err(format!(
                "expected a reference name and a start and end, got {:?}",
                String::from_utf8_lossy(line)
            ));
        }
    };
    if end < beg {
        return Err(format!("end ({end}) must not be less than start ({beg})"));
    }
    Ok(Some(BedInterval { name, beg, end }))
}

/// A decimal number after optional whitespace, and the bytes after it.
fn leading_number(s: &[u8]) -> Option<(i64, &[u8])> {
    let s = s.trim_ascii_start();
    let s = s.strip_prefix(b"+").unwrap_or(s);
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    // Positions beyond i64 are clamped: no reference is that long, so nothing changes.
    let v = std::str::from_utf8(&s[..digits])
        .ok()?
        .parse::<i64>()
        .unwrap_or(i64::MAX);
    Some((v, &s[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<(String, i64, i64)>> {
        Ok(Bed::parse(text.as_bytes(), "t.bed")?
            .intervals()
            .iter()
            .map(|i| (i.name.clone(), i.beg, i.end))
            .collect())
    }

    #[test]
    fn samtools_leniencies() {
        let got = parse("  chr1 10   20 x y\r\n\nbrowser position chr1\n#c\nchr2\t5\t5\n").unwrap();
        assert_eq!(got, vec![("chr1".into(), 10, 20), ("chr2".into(), 5, 5)]);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let e = parse("chr1\t1\t2\nchr1\tx\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse("chr1\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        assert!(parse("chr1 0\n").is_err());
    }

    #[test]
    fn gzip_is_sniffed() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("bams3-bed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.bed.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"chr1\t0\t100\n").unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let bed = Bed::read(path.to_str().unwrap()).unwrap();
        assert_eq!(bed.intervals().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
