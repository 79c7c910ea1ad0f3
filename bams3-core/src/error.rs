//! The error type every fallible BAMS3 operation returns.
//!
//! Errors carry context (which object, which record, what was expected) so that the command line
//! can print one clear line and exit non-zero, and the C ABI can hand the same text to callers.

use std::io;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading or writing alignments and datasets.
///
/// ```
/// use bams3_core::Error;
/// let e = Error::corrupt("data/chr1/000000000-001048576.chunk", "checksum mismatch");
/// assert!(e.to_string().contains("checksum mismatch"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named object or file.
    #[error("{path}: {source}")]
    Io {
        /// The object key or file path.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Input that is not valid BAM, SAM or BAMS3 data.
    #[error("{what}: {detail}")]
    Corrupt {
        /// What was being read (a file, an object key, a record).
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// A dataset without `_metadata.json`: never committed, or still being written.
    #[error(
        "{0}: incomplete dataset (no _metadata.json): the conversion did not finish; continue it with `bams3 convert --resume IN OUT`, or remove it with `bams3 rm`"
    )]
    Incomplete(String),
    /// A requested object or file does not exist.
    #[error("{0}: not found")]
    NotFound(String),
    /// The output already exists and would be overwritten.
    #[error("{0}: already exists (remove it first or choose another output)")]
    AlreadyExists(String),
    /// A region string that cannot be parsed or names an unknown reference.
    #[error("invalid region '{region}': {detail}")]
    Region {
        /// The region as the user typed it.
        region: String,
        /// What was wrong.
        detail: String,
    },
    /// A bad option or argument.
    #[error("{0}")]
    Invalid(String),
    /// The operation was cancelled (Ctrl+C).
    #[error("cancelled")]
    Cancelled,
    /// A fault of the library itself (a worker thread that died, a poisoned lock), not of the
    /// input or the caller: worth a bug report.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A [`Error::Corrupt`] naming `what`.
    pub fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// Wraps an I/O error with the path it concerns; a missing file becomes [`Error::NotFound`].
    pub fn io(path: impl Into<String>, source: io::Error) -> Self {
        let path = path.into();
        if source.kind() == io::ErrorKind::NotFound {
            Error::NotFound(path)
        } else {
            Error::Io { path, source }
        }
    }
}
