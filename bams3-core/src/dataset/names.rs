//! Object names of chunks.
//!
//! Names stay those of the original tool (`data/<ref>/<start9>-<end9>.chunk`,
//! `data/unmapped.chunk`) so `aws s3 ls` output keeps its meaning, but reference names are
//! escaped: they come from the input file, and a name like `../../x` must never make a path.

/// Escapes a reference name into one safe path or key segment: bytes outside
/// `[A-Za-z0-9._-]` become `%XX`, as does a leading `.` (so `.` and `..` cannot occur), and the
/// result never equals `unmapped.chunk`, the unplaced-reads object beside the reference folders.
///
/// ```
/// use bams3_core::dataset::escape_reference;
/// assert_eq!(escape_reference("chr1"), "chr1");
/// assert_eq!(escape_reference("GL000192.1"), "GL000192.1");
/// assert_eq!(escape_reference("../../x"), "%2E.%2F..%2Fx");
/// assert_eq!(escape_reference("HLA-A*01:01"), "HLA-A%2A01%3A01");
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
    if out.is_empty() || out == "unmapped.chunk" {
        out.insert_str(0, "%00");
    }
    out
}

/// Object key of a chunk: `reference` is `None` for unplaced records.
///
/// ```
/// use bams3_core::dataset::chunk_key;
/// assert_eq!(chunk_key(Some("chr1"), 0, 1048576, 0), "data/chr1/000000000-001048576.chunk");
/// assert_eq!(chunk_key(Some("chr1"), 0, 1048576, 2), "data/chr1/000000000-001048576.p2.chunk");
/// assert_eq!(chunk_key(None, 0, 0, 0), "data/unmapped.chunk");
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
            escape_reference(name)
        ),
        None => format!("data/unmapped{suffix}.chunk"),
    }
}
