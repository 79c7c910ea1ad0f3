//! Which records a read keeps: `samtools view -q/-f/-F`.

use crate::Record;
use crate::index::ChunkEntry;

/// Which records a reader keeps, as `samtools view -q/-f/-F`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Minimum MAPQ (`-q`).
    pub min_mapq: u8,
    /// Flag bits that must all be set (`-f`).
    pub require_flags: u16,
    /// Flag bits of which none may be set (`-F`).
    pub exclude_flags: u16,
}

impl RecordFilter {
    /// Whether `r` passes.
    pub fn keep(&self, r: &Record) -> bool {
        self.keeps(r.flag(), r.mapq())
    }

    /// Whether a record with this flag and MAPQ passes.
    pub fn keeps(&self, flag: u16, mapq: u8) -> bool {
        mapq >= self.min_mapq
            && flag & self.require_flags == self.require_flags
            && flag & self.exclude_flags == 0
    }
}

/// A chunk entry whose statistics are exact (a v0.3 dataset's): the only way to the index
/// shortcuts that skip chunks or count them unread. Upstream datasets' entries carry
/// placeholder statistics, and [`super::Dataset::proven`] gives no `Proven` for them.
#[derive(Clone, Copy)]
pub(crate) struct Proven<'a>(pub(super) &'a ChunkEntry);

impl Proven<'_> {
    /// Whether some record of the chunk could pass `filter`.
    pub(crate) fn may_keep(&self, filter: &RecordFilter) -> bool {
        let e = self.0;
        e.mapq_max >= filter.min_mapq
            && e.flags_any & filter.require_flags == filter.require_flags
            && e.flags_all & filter.exclude_flags == 0
    }

    /// Whether every record of the chunk lies in `span` (0-based half-open; `None`: all)
    /// and passes `filter`, so the chunk's count is the answer without reading it.
    pub(crate) fn all_pass(&self, span: Option<(i64, i64)>, filter: &RecordFilter) -> bool {
        let e = self.0;
        // Starts in [beg, end) imply overlap: a record ends at least one base after its start.
        let inside = span.is_none_or(|(beg, end)| e.first_pos >= beg && e.last_pos < end);
        inside
            && e.mapq_min >= filter.min_mapq
            && e.flags_all & filter.require_flags == filter.require_flags
            && e.flags_any & filter.exclude_flags == 0
    }
}
