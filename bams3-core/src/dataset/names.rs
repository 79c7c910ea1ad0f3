//! Object names of chunks.
//!
//! Names stay those of the original tool (`data/<ref>/<start9>-<end9>.chunk`,
//! `data/unmapped.chunk`) so `aws s3 ls` output keeps its meaning, but reference names are
//! escaped: they come from the input file, and a name like `../../x` must never make a path.
//! A name whose escaped form is too long for one file name gets a short segment instead
//! (see [`reference_segment`]); readers never rebuild names, they follow the index's paths.

use sha2::{Digest, Sha256};

/// Longest path segment most filesystems take (`NAME_MAX` on Linux, macOS and Windows).
/// S3 keys may be longer, but the same dataset must copy between the two unchanged.
const MAX_SEGMENT: usize = 255;

/// Bytes of the escaped name kept, readable, in front of a fallback segment's digest.
const FALLBACK_PREFIX: usize = 96;

/// Escapes a reference name into one safe path or key segment: bytes outside
/// `[A-Za-z0-9._-]` become `%XX`, as does a leading `.` (so `.` and `..` cannot occur), and a
/// name of the form `unmapped*.chunk` gets a `%00` prefix, so that no reference folder is
/// named like one of the unplaced-reads objects beside them (`data/unmapped.chunk`,
/// `data/unmapped.p1.chunk`, ...).
///
/// ```
/// use bams3_core::dataset::escape_reference;
/// assert_eq!(escape_reference("chr1"), "chr1");
/// assert_eq!(escape_reference("GL000192.1"), "GL000192.1");
/// assert_eq!(escape_reference("../../x"), "%2E.%2F..%2Fx");
/// assert_eq!(escape_reference("HLA-A*01:01"), "HLA-A%2A01%3A01");
/// assert_eq!(escape_reference("unmapped.p1.chunk"), "%00unmapped.p1.chunk");
/// assert_eq!(escape_reference("unmapped"), "unmapped");
/// ```
pub fn escape_reference(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let safe = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if safe {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // `%` never survives escaping, so the prefixed form cannot collide with another name.
    if out.is_empty() || (out.starts_with("unmapped") && out.ends_with(".chunk")) {
        out.insert_str(0, "%00");
    }
    out
}

/// The folder segment of a reference: [`escape_reference`] when that fits in
/// [`MAX_SEGMENT`] bytes, otherwise a stable short form: the escaped name's first bytes (never
/// cutting a `%XX`), `~`, and the first 128 bits of the SHA-256 of the name in hex. Escaping
/// never leaves a `~`, so no fallback segment can equal the escaped form of another name.
/// [`chunk_key`]'s example shows both.
fn reference_segment(name: &str) -> String {
    let escaped = escape_reference(name);
    if escaped.len() <= MAX_SEGMENT {
        return escaped;
    }
    // Escapes are 3 bytes (`%XX`): step back to the start of one cut by the limit.
    let mut cut = FALLBACK_PREFIX;
    if let Some(p) = escaped[cut - 2..cut].find('%') {
        cut = cut - 2 + p;
    }
    let digest = Sha256::digest(name.as_bytes());
    format!("{}~{}", &escaped[..cut], hex::encode(&digest[..16]))
}

/// Object key of a chunk: `reference` is `None` for unplaced records.
///
/// ```
/// use bams3_core::dataset::chunk_key;
/// assert_eq!(chunk_key(Some("chr1"), 0, 1048576, 0), "data/chr1/000000000-001048576.chunk");
/// assert_eq!(chunk_key(Some("chr1"), 0, 1048576, 2), "data/chr1/000000000-001048576.p2.chunk");
/// assert_eq!(chunk_key(None, 0, 0, 0), "data/unmapped.chunk");
/// // A name too long for one file name gets a short, stable folder.
/// let long = format!("contig_{}", "x".repeat(300));
/// let key = chunk_key(Some(&long), 0, 1048576, 0);
/// let folder = key.split('/').nth(1).unwrap();
/// assert!(folder.len() <= 255 && folder.starts_with("contig_xxx") && folder.contains('~'));
/// assert_eq!(key, chunk_key(Some(&long), 0, 1048576, 0));
/// assert_ne!(key, chunk_key(Some(&format!("{long}y")), 0, 1048576, 0));
/// ```
pub fn chunk_key(reference: Option<&str>, start: i64, end: i64, part: u32) -> String {
    let suffix = if part == 0 {
        String::new()
    } else {
        format!(".p{part}")
    };
    match reference {
        Some(name) => format!(
            "data/{}/{start:09}-{end:09}{suffix}.chunk",
            reference_segment(name)
        ),
        None => format!("data/unmapped{suffix}.chunk"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_reference_folder_is_named_like_an_unplaced_part() {
        for part in 0..4 {
            let unplaced = chunk_key(None, 0, 0, part);
            let folder = unplaced.trim_start_matches("data/");
            let key = chunk_key(Some(folder), 0, 1 << 20, 0);
            assert!(
                !key.starts_with(&format!("{unplaced}/")),
                "{key} would sit under the unplaced object {unplaced}"
            );
        }
        // Distinct names stay distinct.
        assert_ne!(
            escape_reference("%00unmapped.chunk"),
            escape_reference("unmapped.chunk")
        );
    }

    #[test]
    fn long_names_get_short_stable_segments() {
        // Safe bytes then escapes: for some leads the 96-byte cut falls inside an escape.
        for lead in 80..100 {
            let name = format!("{}{}", "a".repeat(lead), "*".repeat(100));
            let seg = reference_segment(&name);
            assert!(seg.len() <= MAX_SEGMENT, "{seg}");
            let (prefix, digest) = seg.split_once('~').unwrap();
            assert!(name.starts_with(&prefix.replace("%2A", "*")), "{seg}");
            assert!(!prefix.ends_with('%') && !prefix.ends_with("%2"), "{seg}");
            assert_eq!(digest.len(), 32);
        }
        // The example of docs/FORMAT.md.
        assert_eq!(
            reference_segment(&format!("contig_{}", "x".repeat(293))),
            format!("contig_{}~e3c2d38214b1831560f46acfecee70b1", "x".repeat(89))
        );
        // A name right at the limit stays readable; one byte more falls back.
        let fits = "n".repeat(MAX_SEGMENT);
        assert_eq!(reference_segment(&fits), fits);
        assert!(reference_segment(&format!("{fits}n")).contains('~'));
        // Names sharing the kept prefix still get distinct folders.
        let a = format!("{}A", "p".repeat(400));
        let b = format!("{}B", "p".repeat(400));
        assert_ne!(reference_segment(&a), reference_segment(&b));
        let key = chunk_key(Some(&a), 0, 1 << 20, 1);
        assert!(crate::storage::check_key(&key).is_ok(), "{key}");
    }

    #[test]
    fn escaped_names_never_hold_the_fallback_marker() {
        let every_char: String = (1..=0x7f_u8).map(char::from).chain(['é', '~']).collect();
        for name in [every_char.as_str(), "~", "a~b", "~~"] {
            assert!(!escape_reference(name).contains('~'), "{name}");
        }
    }
}
