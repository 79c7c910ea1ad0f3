//! Why a CRAM could not be decoded: which reference sequence is missing or wrong.
//!
//! htslib finds references itself (the `--reference` FASTA, then `REF_CACHE` and `REF_PATH` by
//! the `@SQ` line's `M5`, then its `UR`), and refuses a slice whose reference does not have the
//! MD5 the file recorded, so wrong bases are never decoded. It reports that in several stderr
//! lines without naming the sequence; this module repeats the search to say which sequence
//! failed and why, in one line.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::htslib::{md5_hex, Fasta};

/// One `@SQ` line's name and the tags that locate its sequence.
struct Sq {
    name: String,
    m5: Option<String>,
    ur: Option<String>,
}

fn sq_lines(header: &str) -> Vec<Sq> {
    header
        .lines()
        .filter(|l| l.starts_with("@SQ\t"))
        .map(|l| {
            let tag = |t: &str| {
                l.split('\t')
                    .find_map(|f| f.strip_prefix(t))
                    .map(str::to_string)
            };
            Sq {
                name: tag("SN:").unwrap_or_default(),
                m5: tag("M5:").map(|m| m.to_ascii_lowercase()),
                ur: tag("UR:"),
            }
        })
        .collect()
}

/// The MD5 CRAM records for a sequence: of its bases in upper case, without anything outside
/// `!`..`~` (line ends, spaces).
fn sequence_md5(seq: &[u8]) -> String {
    let clean: Vec<u8> = seq
        .iter()
        .filter(|&&b| (b'!'..=b'~').contains(&b))
        .map(u8::to_ascii_uppercase)
        .collect();
    md5_hex(&clean)
}

/// Expands an htslib `REF_PATH`/`REF_CACHE` template (`%2s` takes the next two characters of
/// the MD5, `%s` the rest; a directory without `%s` gets `/%s`).
fn expand(template: &str, md5: &str) -> PathBuf {
    let mut t = template.to_string();
    if !t.contains("%s") {
        t.push_str("/%s");
    }
    let mut out = String::new();
    let mut rest = md5;
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        match chars.next() {
            Some('s') => {
                let n = digits.parse().unwrap_or(rest.len()).min(rest.len());
                out.push_str(&rest[..n]);
                rest = &rest[n..];
            }
            Some(o) => {
                out.push('%');
                out.push_str(&digits);
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    PathBuf::from(out)
}

/// Local files `REF_CACHE` and `REF_PATH` name for an MD5 (URLs are left to htslib).
fn md5_files(md5: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let cache = std::env::var("REF_CACHE").ok().or_else(|| {
        let base = std::env::var("XDG_CACHE_HOME")
            .ok()
            .or_else(|| std::env::var("HOME").ok().map(|h| format!("{h}/.cache")))?;
        Some(format!("{base}/hts-ref/%2s/%2s/%s"))
    });
    out.extend(cache.map(|c| expand(&c, md5)));
    if let Ok(path) = std::env::var("REF_PATH") {
        // Entries are ':'-separated; "http:"/"https:"/"ftp:" begin a URL, not an entry end.
        let mut entries: Vec<String> = Vec::new();
        for part in path.split(':') {
            match entries.last_mut() {
                Some(last) if ["http", "https", "ftp"].contains(&last.as_str()) => {
                    last.push(':');
                    last.push_str(part);
                }
                _ => entries.push(part.to_string()),
            }
        }
        out.extend(
            entries
                .iter()
                .filter(|e| !e.is_empty() && !e.contains("://"))
                .map(|e| expand(e, md5)),
        );
    }
    out
}

/// Where a sequence was found and what it holds.
enum Found {
    Bases(String, Vec<u8>),
    Nowhere,
}

fn from_fasta(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    Fasta::open(&p)?.sequence(&n)
}

/// Looks for `sq` as htslib does.
fn find(sq: &Sq, reference: Option<&Path>) -> Found {
    if let Some(r) = reference {
        if let Some(seq) = from_fasta(r, &sq.name) {
            return Found::Bases(r.display().to_string(), seq);
        }
    }
    if let Some(m5) = &sq.m5 {
        for f in md5_files(m5) {
            if let Ok(seq) = std::fs::read(&f) {
                return Found::Bases(f.display().to_string(), seq);
            }
        }
    }
    if let Some(ur) = &sq.ur {
        let path = Path::new(
            ur.strip_prefix("file://")
                .or(ur.strip_prefix("file:"))
                .unwrap_or(ur),
        );
        if let Some(seq) = from_fasta(path, &sq.name) {
            return Found::Bases(path.display().to_string(), seq);
        }
    }
    Found::Nowhere
}

/// The first `@SQ` sequence, from index `from` on, whose reference is missing or does not
/// match its `M5`, and what is wrong with it; `None` when every one checks out.
pub fn diagnose(header: &str, from: usize, reference: Option<&Path>) -> Option<String> {
    for sq in sq_lines(header).iter().skip(from) {
        match find(sq, reference) {
            Found::Nowhere => {
                let m5 = sq
                    .m5
                    .as_deref()
                    .map(|m| format!(" (M5 {m})"))
                    .unwrap_or_default();
                return Some(format!(
                    "no reference sequence found for {}{m5}: give --reference FASTA (with its .fai), or set REF_PATH/REF_CACHE",
                    sq.name
                ));
            }
            Found::Bases(source, seq) => {
                let Some(want) = &sq.m5 else { continue };
                let got = sequence_md5(&seq);
                if &got != want {
                    return Some(format!(
                        "reference sequence {} from {source} does not match the CRAM (MD5 mismatch: {got}, the CRAM's @SQ M5 is {want})",
                        sq.name
                    ));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_like_htslib() {
        let md5 = "0123456789abcdef";
        assert_eq!(
            expand("/c/%2s/%2s/%s", md5),
            PathBuf::from("/c/01/23/456789abcdef")
        );
        assert_eq!(
            expand("/refs", md5),
            PathBuf::from("/refs/0123456789abcdef")
        );
    }

    #[test]
    fn md5_ignores_case_and_line_ends() {
        assert_eq!(sequence_md5(b"acgt\nAC"), sequence_md5(b"ACGTAC"));
        // md5("ACGT")
        assert_eq!(sequence_md5(b"ACGT"), "f1f8f4bf413b16ad135722aa4591043e");
    }
}
