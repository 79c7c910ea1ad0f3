//! Object names of chunks.
//!
//! Names stay those of the original tool (`data/<ref>/<start9>-<end9>.chunk`,
//! `data/unmapped.chunk`) so `aws s3 ls` output keeps its meaning, but reference names are
//! escaped: they come from the input file, and a name like `../../x` must never make a path.

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
}
