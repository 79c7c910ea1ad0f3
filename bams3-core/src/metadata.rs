//! `_metadata.json`: what a dataset is, how it was made, and its statistics. Written last: its
//! presence is what makes a dataset complete.

use serde::{Deserialize, Serialize};

/// Object key of the metadata file.
pub const METADATA_KEY: &str = "_metadata.json";
/// Object key of the header file.
pub const HEADER_KEY: &str = "_header.json";
/// Object key of the spatial index.
pub const INDEX_KEY: &str = "_index/spatial.json";
/// Format version written by this library.
pub const FORMAT_VERSION: &str = "0.3.2";

/// The contents of `_metadata.json`.
///
/// ```
/// use bams3_core::metadata::Metadata;
/// let m: Metadata = serde_json::from_str(r#"{"format":"bams3","version":"0.3.0",
///   "created":"2026-01-01T00:00:00Z","created_by":"bams3 0.3.0",
///   "source":{"file":"x.bam","format":"BAM"},"statistics":{"total_reads":1,"mapped_reads":1,
///   "unmapped_reads":0,"duplicate_reads":0,"secondary_reads":0,"total_bases":4},
///   "chunk_size":1048576,"compression":{"algorithm":"zstd","level":3},"chunk_count":1,
///   "sorted_input":true}"#).unwrap();
/// assert_eq!(m.statistics.total_reads, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Always `"bams3"`.
    pub format: String,
    /// Format version, `"0.3.2"` for this library (`"0.3.1"` before names and tags were
    /// blocked, `"0.3.0"` before record blocks).
    pub version: String,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Producer and its version.
    pub created_by: String,
    /// Where the records came from.
    pub source: Source,
    /// Dataset-wide counts.
    pub statistics: Statistics,
    /// Genomic span of a bin, in bases (a power of two).
    pub chunk_size: u64,
    /// Stream compression.
    pub compression: Compression,
    /// Number of chunk objects.
    pub chunk_count: u64,
    /// Whether the input arrived coordinate-sorted (parts of a bin then never overlap).
    pub sorted_input: bool,
    /// Where runs of index entries lie in `_index/spatial.json`, so a remote reader fetches
    /// only the entries near its regions. Absent in datasets written before it existed:
    /// readers then fetch the whole index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub index_sections: Vec<crate::index::IndexSection>,
    /// A copy of `_header.json`, so that opening a dataset is one GET, not two. Absent in
    /// datasets written before it existed: readers then read `_header.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<crate::Header>,
}

impl Metadata {
    /// The metadata as pretty JSON, except that the header copy is one line and each index
    /// section is one line: pretty printing would give every reference and every number of a
    /// section a line of its own, and this object is the first GET of every open.
    ///
    /// ```
    /// use bams3_core::metadata::Metadata;
    /// let m: Metadata = serde_json::from_str(r#"{"format":"bams3","version":"0.3.0",
    ///   "created":"2026-01-01T00:00:00Z","created_by":"bams3 0.3.0",
    ///   "source":{"file":"x.bam","format":"BAM"},"statistics":{"total_reads":1,"mapped_reads":1,
    ///   "unmapped_reads":0,"duplicate_reads":0,"secondary_reads":0,"total_bases":4},
    ///   "chunk_size":1048576,"compression":{"algorithm":"zstd","level":3},"chunk_count":1,
    ///   "sorted_input":true,"index_sections":[[0,10,160,30,500,1234]],
    ///   "header":{"text":"@SQ\tSN:q\tLN:9\n","references":[{"name":"q","length":9}]}}"#).unwrap();
    /// let json = m.to_json();
    /// assert_eq!(serde_json::from_slice::<Metadata>(&json).unwrap(), m);
    /// let text = String::from_utf8(json).unwrap();
    /// assert!(text.contains("\n    [0,10,160,30,500,1234]\n"));
    /// assert!(text.contains(r#""references":[{"name":"q","length":9}]"#));
    /// ```
    pub fn to_json(&self) -> Vec<u8> {
        let bare = Metadata {
            index_sections: Vec::new(),
            header: None,
            ..self.clone()
        };
        // Plain structs of strings and numbers always serialise.
        let mut out = serde_json::to_vec_pretty(&bare).expect("metadata serialises");
        if let Some(header) = &self.header {
            // Reopen the object (drop its closing "\n}") and append the header.
            out.truncate(out.len() - 2);
            out.extend_from_slice(b",\n  \"header\": ");
            serde_json::to_writer(&mut out, header).expect("header serialises");
            out.extend_from_slice(b"\n}");
        }
        if !self.index_sections.is_empty() {
            out.truncate(out.len() - 2);
            out.extend_from_slice(b",\n  \"index_sections\": [");
            for (i, s) in self.index_sections.iter().enumerate() {
                out.extend_from_slice(if i == 0 { b"\n    " } else { b",\n    " });
                serde_json::to_writer(&mut out, s).expect("section serialises");
            }
            out.extend_from_slice(b"\n  ]\n}");
        }
        out.push(b'\n');
        out
    }
}

/// The input a dataset was converted from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Path or URI as given, or `-` for standard input.
    pub file: String,
    /// `BAM` or `SAM`.
    pub format: String,
    /// The input's identity (`sha256:` of its size and first MiB) when it was a file or an S3
    /// object converted by `bams3 convert`: how `convert --resume` knows a complete dataset is
    /// of the same input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// Dataset-wide record counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    /// All records.
    pub total_reads: u64,
    /// Records without the unmapped flag.
    pub mapped_reads: u64,
    /// Records with the unmapped flag (placed or not).
    pub unmapped_reads: u64,
    /// Records with the duplicate flag.
    pub duplicate_reads: u64,
    /// Secondary or supplementary records.
    pub secondary_reads: u64,
    /// Sum of sequence lengths.
    pub total_bases: u64,
}

/// How streams are compressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compression {
    /// `"zstd"`.
    pub algorithm: String,
    /// zstd level.
    pub level: i32,
    /// Codec profile when not the default (`"archive"`); absent for the default profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// The profile a recorded `profile` field names (absent: the default), or an error naming
/// `what` for a profile this version does not know.
///
/// ```
/// use bams3_core::chunk::Profile;
/// use bams3_core::metadata::profile_of;
/// assert_eq!(profile_of(None, "x").unwrap(), Profile::Default);
/// assert_eq!(profile_of(Some("archive"), "x").unwrap(), Profile::Archive);
/// assert!(profile_of(Some("tiny"), "x").is_err());
/// ```
pub fn profile_of(field: Option<&str>, what: &str) -> crate::Result<crate::chunk::Profile> {
    match field {
        None => Ok(crate::chunk::Profile::Default),
        Some(name) => crate::chunk::Profile::parse(name).ok_or_else(|| {
            crate::Error::Invalid(format!(
                "{what}: unknown codec profile '{name}' (this bams3 knows 'default' and 'archive')"
            ))
        }),
    }
}

/// The current time as RFC 3339 UTC with seconds, without pulling in a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
