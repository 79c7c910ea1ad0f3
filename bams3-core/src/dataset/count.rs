//! Counting the records a query would return (`bams3 query -c`) without rebuilding them.
//!
//! A count needs no order and few fields: a chunk whose every record must pass (by its index
//! statistics) is counted from the index alone, and the others are decoded from their
//! coverage streams (reference, position, flag, MAPQ, CIGAR: a few percent of the chunk's
//! bytes, which on S3 is also all that is fetched).

use crate::chunk::Fields;
use crate::index::ChunkEntry;
use crate::record::end_pos;
use crate::region::Region;
use crate::{Record, Result};

use super::fetch::in_parallel;
use super::{Dataset, RecordFilter};

/// A reference (`None`: the unplaced records) and a 0-based half-open span of it (`None`: all).
type Scope = (Option<usize>, Option<(i64, i64)>);

impl Dataset {
    /// How many records [`Dataset::query`] (or, without regions, [`Dataset::records`]) would
    /// yield for the same arguments. As there, a record overlapping two regions counts twice.
    ///
    /// ```no_run
    /// use bams3_core::{dataset::{Dataset, RecordFilter}, region::Region, storage::LocalStorage};
    /// use std::sync::Arc;
    /// let ds = Dataset::open(Arc::new(LocalStorage::new("sample.bams3"))).unwrap();
    /// let region = Region::parse("chr1:1000-2000", ds.header()).unwrap();
    /// println!("{}", ds.count(&[region], RecordFilter::default()).unwrap());
    /// ```
    pub fn count(&self, regions: &[Region], filter: RecordFilter) -> Result<u64> {
        let mut scopes: Vec<Scope> = regions
            .iter()
            .map(|r| match *r {
                Region::Span { ref_id, beg, end } => (Some(ref_id), Some((beg, end))),
                Region::Unplaced => (None, None),
            })
            .collect();
        if regions.is_empty() {
            // Every chunk is needed: read the whole index once (see `records`).
            let _ = self.index();
            scopes = (0..self.header().references.len())
                .map(|i| (Some(i), None))
                .chain([(None, None)])
                .collect();
        }
        let mut n = 0;
        for (ref_id, span) in scopes {
            let chunks = self.chunks(ref_id, span)?;
            let mut decode = Vec::new();
            for e in chunks.iter().filter(|e| e.count > 0) {
                let proven = self.proven(e);
                if proven.is_some_and(|p| !p.may_keep(&filter)) {
                    continue;
                }
                if proven.is_some_and(|p| p.all_pass(span, &filter)) {
                    n += e.count;
                } else {
                    decode.push(e);
                }
            }
            // As many at once as the store wants in flight (S3: round trips overlap).
            for group in decode.chunks(self.storage().read_ahead().max(1)) {
                let counts = in_parallel(group, |e| self.count_chunk(e, span, &filter));
                for c in counts {
                    n += c?;
                }
            }
        }
        Ok(n)
    }

    /// The records of one chunk in `span` that pass `filter`, from its coverage streams.
    fn count_chunk(
        &self,
        e: &ChunkEntry,
        span: Option<(i64, i64)>,
        filter: &RecordFilter,
    ) -> Result<u64> {
        let overlaps = |pos: i64, end: i64| span.is_none_or(|(b, en)| pos < en && end > b);
        if !self.is_legacy() {
            let data = self.read_chunk(e, Fields::COVERAGE)?;
            let mut n = 0;
            let mut long = false;
            for a in data.alignments() {
                let a = a?;
                if a.may_be_long_cigar() {
                    long = true;
                    break;
                }
                if filter.keeps(a.flag, a.mapq) && overlaps(a.pos, end_pos(a.pos, a.flag, a.cigar))
                {
                    n += 1;
                }
            }
            if !long {
                return Ok(n);
            }
            // A long CIGAR's operations are in a tag, which coverage decoding does not read.
        }
        let keep = |r: &Record| filter.keep(r) && overlaps(r.pos() as i64, r.end());
        Ok(self.chunk_records(e, keep)?.len() as u64)
    }
}
