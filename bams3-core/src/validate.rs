//! Full consistency check of a dataset: every chunk's checksum, contents and index entry; and
//! ([`against`]) a record-by-record comparison with the file it was converted from.

mod against;

pub use against::{Comparison, Difference, against};

use crate::chunk::{ChunkHeader, ChunkStats, Fields};
use crate::dataset::Dataset;
use crate::index::ChunkEntry;
use crate::{Error, Result};

/// What [`validate`] checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Chunks read.
    pub chunks: u64,
    /// Records decoded.
    pub records: u64,
    /// Chunk bytes read.
    pub bytes: u64,
}

/// Reads every chunk, verifies its object checksum and stream checksums, decodes every record,
/// and checks that the records agree with the index entry (count, positions, bin, statistics)
/// and the totals with `_metadata.json`. The first problem found is the error.
///
/// ```no_run
/// use bams3_core::{dataset::Dataset, storage::LocalStorage};
/// use std::sync::Arc;
/// let ds = Dataset::open(Arc::new(LocalStorage::new("sample.bams3"))).unwrap();
/// let report = bams3_core::validate::validate(&ds).unwrap();
/// println!("{} records OK", report.records);
/// ```
pub fn validate(ds: &Dataset) -> Result<Report> {
    validate_with_progress(ds, |_| {})
}

/// [`validate`], calling `progress` with what has been checked so far after each chunk (a
/// progress display: the total is `ds.metadata().statistics.total_reads` records).
///
/// ```no_run
/// use bams3_core::{dataset::Dataset, storage::LocalStorage};
/// use std::sync::Arc;
/// let ds = Dataset::open(Arc::new(LocalStorage::new("sample.bams3"))).unwrap();
/// let total = ds.metadata().statistics.total_reads;
/// bams3_core::validate::validate_with_progress(&ds, |r| eprint!("\r{}/{total}", r.records)).unwrap();
/// ```
pub fn validate_with_progress(ds: &Dataset, mut progress: impl FnMut(&Report)) -> Result<Report> {
    let mut report = Report::default();
    let index = ds.index()?;
    let mut total = 0u64;
    let all = index
        .references
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.chunks.iter().map(move |c| (i as i32, c)))
        .chain(index.unmapped.iter().map(|c| (-1, c)));
    for (ref_id, entry) in all {
        if ds.is_legacy() {
            // Upstream chunks carry only a SHA-256 (checked while decoding) and a count.
            let records = ds.chunk_records(entry, |_| true)?;
            if records.len() as u64 != entry.count {
                return Err(Error::corrupt(
                    format!("{}/{}", ds.storage().root(), entry.path),
                    "record count differs from _metadata.json",
                ));
            }
            report.chunks += 1;
            report.records += entry.count;
        } else {
            check_chunk(ds, ref_id, entry, &mut report)?;
        }
        total += entry.count;
        progress(&report);
    }
    check_sections(ds)?;
    check_header(ds)?;
    crate::bamstream::objects::check(ds)?;
    let stats = &ds.metadata().statistics;
    if total != stats.total_reads || report.chunks != ds.metadata().chunk_count {
        return Err(Error::corrupt(
            format!("{}/_metadata.json", ds.storage().root()),
            "record or chunk totals differ from the index",
        ));
    }
    Ok(report)
}

/// `_header.json` must be the header the dataset was opened with (the copy in
/// `_metadata.json`, when there is one).
fn check_header(ds: &Dataset) -> Result<()> {
    if ds.is_legacy() {
        return Ok(());
    }
    let what = format!("{}/{}", ds.storage().root(), crate::metadata::HEADER_KEY);
    let header: crate::Header =
        serde_json::from_slice(&ds.storage().get(crate::metadata::HEADER_KEY)?)
            .map_err(|e| Error::corrupt(&what, e.to_string()))?;
    if &header != ds.header() {
        return Err(Error::corrupt(
            what,
            "differs from the header in _metadata.json",
        ));
    }
    Ok(())
}

/// The index sections of `_metadata.json` must locate every index entry exactly once, in
/// order, with the right checksum and position range: a remote query trusts them.
fn check_sections(ds: &Dataset) -> Result<()> {
    let sections = &ds.metadata().index_sections;
    if sections.is_empty() {
        return Ok(());
    }
    let index = ds.index()?;
    let bytes = ds.storage().get(crate::metadata::INDEX_KEY)?;
    let what = format!("{}/_metadata.json", ds.storage().root());
    let lists = index
        .references
        .iter()
        .enumerate()
        .map(|(i, r)| (i as i64, &r.chunks))
        .chain([(-1, &index.unmapped)]);
    let mut expected = lists.flat_map(|(r, l)| l.iter().map(move |e| (r, e)));
    for s in sections {
        let bad = |d: String| {
            Err(Error::corrupt(
                &what,
                format!("index section at byte {}: {d}", s.offset),
            ))
        };
        let Some(part) = usize::try_from(s.offset)
            .ok()
            .zip(usize::try_from(s.offset.saturating_add(s.length)).ok())
            .and_then(|(a, b)| bytes.get(a..b))
        else {
            return bad("lies past the end of the index".into());
        };
        let entries = s.parse(part).map_err(|e| Error::corrupt(&what, e))?;
        if entries.is_empty() {
            return bad("holds no entries".into());
        }
        for e in &entries {
            match expected.next() {
                Some((r, want)) if r == s.reference && want == e => {}
                _ => return bad("its entries are not the index's next ones".into()),
            }
        }
        let first = entries.iter().map(|e| e.first_pos).min();
        let end = entries.iter().map(|e| e.max_end).max();
        if first != Some(s.first_pos) || end != Some(s.max_end) {
            return bad("its position range differs from its entries'".into());
        }
    }
    if expected.next().is_some() {
        return Err(Error::corrupt(
            what,
            "index sections do not cover every index entry",
        ));
    }
    Ok(())
}

fn check_chunk(ds: &Dataset, ref_id: i32, entry: &ChunkEntry, report: &mut Report) -> Result<()> {
    let what = format!("{}/{}", ds.storage().root(), entry.path);
    let bytes = ds.storage().get(&entry.path)?;
    let crc = format!("crc32:{:08x}", crc32fast::hash(&bytes));
    if crc != entry.checksum {
        return Err(Error::corrupt(
            &what,
            format!("checksum mismatch (index {}, object {crc})", entry.checksum),
        ));
    }
    let data = ds.decode_chunk(entry, &bytes, Fields::ALL)?;
    let records = data.records().collect::<Result<Vec<_>>>()?;
    let bad = |d: String| Err(Error::corrupt(&what, d));
    // Reads locate and decode streams through the index's copy of the stream table, never the
    // chunk header: the two must agree, codec included where the index records it.
    if !entry.streams.is_empty() {
        let header = ChunkHeader::read(&bytes, &what)?;
        let recorded = entry.stream_infos();
        let agree = header.streams.len() == recorded.len()
            && header
                .streams
                .iter()
                .zip(&recorded)
                .zip(&entry.streams)
                .all(|((h, r), s)| {
                    h.id == r.id
                        && h.offset == r.offset
                        && h.stored_len == r.stored_len
                        && h.raw_len == r.raw_len
                        && h.crc32 == r.crc32
                        && s.codec.is_none_or(|c| c == h.codec)
                });
        if !agree {
            return bad("the index's stream table differs from the chunk header".into());
        }
    }
    let mut prev = i64::MIN;
    for (i, r) in records.iter().enumerate() {
        let pos = r.pos() as i64;
        let placed = ref_id >= 0;
        if placed && r.ref_id() != ref_id {
            return bad(format!("record {i} belongs to reference #{}", r.ref_id()));
        }
        if !placed && r.ref_id() >= 0 {
            return bad(format!(
                "record {i} is placed but stored with unplaced reads"
            ));
        }
        if placed && !(pos.max(0) >= entry.bin_start && pos.max(0) < entry.bin_end) {
            return bad(format!("record {i} at {pos} lies outside the chunk's bin"));
        }
        if placed && pos < prev {
            return bad(format!("record {i} is out of coordinate order"));
        }
        prev = pos;
    }
    let s = &ChunkStats::of(&records);
    let same = s.count == entry.count
        && s.first_pos == entry.first_pos
        && s.last_pos == entry.last_pos
        && s.max_end == entry.max_end
        && s.mapq_min == entry.mapq_min
        && s.mapq_max == entry.mapq_max
        && s.flags_all == entry.flags_all
        && s.flags_any == entry.flags_any
        && s.unmapped == entry.unmapped
        && s.duplicates == entry.duplicates
        && s.bases == entry.bases;
    if !same {
        return bad("statistics in the index differ from the chunk's records".into());
    }
    report.chunks += 1;
    report.records += records.len() as u64;
    report.bytes += bytes.len() as u64;
    Ok(())
}
