//! Reading one chunk: the byte ranges of the streams a caller needs, checked and decoded.
//!
//! The dataset layer only says which ranges it needs (from the index's stream table); how
//! they are fetched (one map of a local file, merged concurrent GETs on S3) is the store's
//! business.

use std::ops::Range;

use super::open::Source;
use super::{Dataset, RecordFilter};
use crate::chunk::{
    CODEC_BLOCKED, ChunkData, Fields, Resume, StreamId, StreamInfo, block_area_start,
};
use crate::index::ChunkEntry;
use crate::storage::Storage;
use crate::{Error, Record, Result, record};

/// Whether stream `s` is one of `fields` and has bytes to read.
fn wanted(s: &StreamInfo, fields: Fields) -> bool {
    s.stored_len > 0
        && StreamId::ALL
            .get(s.id as usize)
            .is_some_and(|&id| fields.contains(id))
}

/// Where in the block area of `entry` the blocks of records in `[beg, end)` probably lie: the
/// records of a chunk are in position order and its block area is laid out in record order, so
/// positions map to bytes about linearly; a block and a half of margin on each side, and
/// before the first record a wide block more when names or tags (whose blocks start up to a
/// wide block before it) are wanted blocked. `None` when the chunk has no block area.
fn guess_blocks(
    entry: &ChunkEntry,
    infos: &[StreamInfo],
    fields: Fields,
    (beg, end): (i64, i64),
) -> Option<Range<u64>> {
    let area = block_area_start(infos);
    let len = entry.stored_bytes.checked_sub(area).filter(|&l| l > 0)?;
    let width = (entry.last_pos - entry.first_pos).max(1) as f64;
    // Records starting up to a read's length before `beg` overlap it; the last record's
    // overhang is about that length.
    let overhang = (entry.max_end - entry.last_pos).max(0);
    let f0 = ((beg - overhang - entry.first_pos) as f64 / width).clamp(0.0, 1.0);
    let f1 = ((end - entry.first_pos) as f64 / width).clamp(0.0, 1.0);
    let per_record = len as f64 / entry.count.max(1) as f64;
    let margin = 1.5 * f64::from(crate::chunk::RECORDS_PER_BLOCK) * per_record;
    let wide = infos.iter().any(|s| {
        s.codec == CODEC_BLOCKED
            && (s.id == StreamId::Name as u8 || s.id == StreamId::Aux as u8)
            && wanted(s, fields)
    });
    let before = match wide {
        true => margin + f64::from(crate::chunk::RECORDS_PER_WIDE_BLOCK) * per_record,
        false => margin,
    };
    let start = (area as f64 + f0 * len as f64 - before).max(area as f64) as u64;
    let stop = (area as f64 + f1 * len as f64 + margin).min(entry.stored_bytes as f64) as u64;
    (start < stop).then_some(start..stop)
}

/// The byte ranges of the streams in `fields` (of blocked ones, their directories).
fn stream_ranges(infos: &[StreamInfo], fields: Fields) -> Vec<Range<u64>> {
    infos
        .iter()
        .filter(|s| wanted(s, fields))
        .map(|s| s.offset..s.offset.saturating_add(s.stored_len))
        .collect()
}

impl Dataset {
    /// The records of one chunk, decoded one at a time as they are pulled (v0.3), in position
    /// order.
    pub fn chunk_iter(
        &self,
        entry: &ChunkEntry,
    ) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send>> {
        if self.is_legacy() {
            let records = self.chunk_records(entry, |_| true)?;
            return Ok(Box::new(records.into_iter().map(Ok)));
        }
        Ok(Box::new(
            self.read_chunk(entry, Fields::ALL)?.into_records(),
        ))
    }

    /// Reads and decodes all records of one chunk, in position order, keeping those `keep`
    /// accepts.
    pub fn chunk_records(
        &self,
        entry: &ChunkEntry,
        mut keep: impl FnMut(&Record) -> bool,
    ) -> Result<Vec<Record>> {
        if let Source::Legacy(ds) = &self.source {
            return super::legacy_source::chunk_records(ds, &*self.storage, entry, keep);
        }
        let data = self.read_chunk(entry, Fields::ALL)?;
        let mut out = Vec::with_capacity(data.len());
        for r in data.records() {
            let r = r?;
            if keep(&r) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Reads, checks and decodes one chunk: only the streams in `fields`, located by the
    /// index's stream table (so the chunk header is never read, and on S3 only those byte
    /// ranges are fetched); each stream's CRC is checked. Blocked streams are decoded whole.
    pub fn read_chunk(&self, entry: &ChunkEntry, fields: Fields) -> Result<ChunkData> {
        read_chunk_in(&*self.storage, entry, fields)
    }

    /// The records of one chunk that may lie in `span` and pass `filter`, decoding (and on S3
    /// fetching) only the record blocks that hold them: positions, flags and CIGARs first, then
    /// the blocks. The cursors of the result build only those records; the caller still tests
    /// each record exactly (a long CIGAR, kept here on suspicion, may end before the region).
    /// Only the streams in `fields` (with [`Fields::LOCATION`]) are read.
    pub(crate) fn read_chunk_selecting(
        &self,
        entry: &ChunkEntry,
        span: Option<(i64, i64)>,
        filter: &RecordFilter,
        fields: Fields,
    ) -> Result<ChunkData> {
        let fields = fields.union(Fields::LOCATION);
        if entry.streams.is_empty() || self.proven(entry).is_some_and(|p| p.all_pass(span, filter))
        {
            return self.read_chunk(entry, fields);
        }
        let infos = entry.stream_infos();
        let fields = fields.needed_for(&infos);
        let mut ranges = stream_ranges(&infos, fields);
        // A store that wants several reads in flight has round trips and requests worth
        // saving: one GET per chunk, from its streams to the end of the blocks the region
        // probably needs (the blocks after it are left out); only blocks the guess missed
        // cost a second request.
        let guess = (self.storage.read_ahead() > 1)
            .then(|| guess_blocks(entry, &infos, fields, span?))
            .flatten()
            .and_then(|g| {
                let lo = ranges.iter().map(|r| r.start).min()?;
                Some(lo..g.end)
            });
        ranges.extend(guess.clone());
        let (bytes, lo) = read_span(&*self.storage, entry, &ranges)?;
        let what = what(&*self.storage, entry);
        let mut data = ChunkData::from_span_without_blocks(
            &infos,
            entry.count as usize,
            &bytes,
            lo,
            fields,
            &what,
        )?;
        let keep = data
            .alignments()
            .map(|a| {
                a.map(|a| {
                    let inside = span.is_none_or(|(beg, end)| {
                        a.pos < end
                            && (a.may_be_long_cigar()
                                || record::end_pos(a.pos, a.flag, a.cigar) > beg)
                    });
                    inside && filter.keeps(a.flag, a.mapq)
                })
            })
            .collect::<Result<Vec<bool>>>()?;
        let mut needed = data.blocks_needed(&keep);
        if let Some(g) = &guess {
            let (got, missed): (Vec<_>, Vec<_>) = needed
                .into_iter()
                .partition(|(_, _, r)| g.start <= r.start && r.end <= g.end);
            let jobs: Vec<_> = got
                .iter()
                .map(|&(id, b, _)| (id, b, &bytes[..], lo))
                .collect();
            data.decode_blocks(&jobs)?;
            needed = missed;
        }
        fetch_blocks(&*self.storage, entry, &mut data, needed)?;
        data.select(keep);
        Ok(data)
    }

    /// Checks and decodes a chunk object already read whole (by [`crate::validate`], which
    /// needs its bytes for the object checksum and should not fetch it twice).
    pub(crate) fn decode_chunk(
        &self,
        entry: &ChunkEntry,
        bytes: &[u8],
        fields: Fields,
    ) -> Result<ChunkData> {
        decode_whole(&*self.storage, entry, bytes, fields)
    }
}

/// Checks and decodes a chunk object read whole.
fn decode_whole(
    storage: &dyn Storage,
    entry: &ChunkEntry,
    bytes: &[u8],
    fields: Fields,
) -> Result<ChunkData> {
    let what = what(storage, entry);
    if bytes.len() as u64 != entry.stored_bytes {
        return Err(Error::corrupt(
            what,
            format!(
                "size {} differs from the index ({}): truncated or replaced chunk",
                bytes.len(),
                entry.stored_bytes
            ),
        ));
    }
    let data = ChunkData::decode(bytes, fields, &what)?;
    if data.len() as u64 != entry.count {
        return Err(Error::corrupt(what, "record count differs from the index"));
    }
    Ok(data)
}

/// Reads, checks and decodes the streams in `fields` of one chunk of the store (see
/// [`Dataset::read_chunk`]): for writers, which have a store and entries but no dataset yet.
pub(crate) fn read_chunk_in(
    storage: &dyn Storage,
    entry: &ChunkEntry,
    fields: Fields,
) -> Result<ChunkData> {
    if entry.streams.is_empty() {
        // Indexes without a stream table: the object whole, through its own header.
        let bytes = storage.get(&entry.path)?;
        return decode_whole(storage, entry, &bytes, fields);
    }
    let infos = entry.stream_infos();
    let fields = fields.needed_for(&infos);
    let mut ranges = stream_ranges(&infos, fields);
    if infos
        .iter()
        .any(|s| wanted(s, fields) && s.codec == CODEC_BLOCKED)
    {
        // The block area: from the end of the last stream-table range to the object's end.
        ranges.push(block_area_start(&infos)..entry.stored_bytes);
    }
    let (span, lo) = read_span(storage, entry, &ranges)?;
    ChunkData::from_span(
        &infos,
        entry.count as usize,
        &span,
        lo,
        fields,
        &what(storage, entry),
    )
}

/// Fetches (one request for all) and decodes the record blocks `needed` of a chunk.
fn fetch_blocks(
    storage: &dyn Storage,
    entry: &ChunkEntry,
    data: &mut ChunkData,
    needed: Vec<(StreamId, usize, Range<u64>)>,
) -> Result<()> {
    if needed.is_empty() {
        return Ok(());
    }
    let ranges: Vec<Range<u64>> = needed.iter().map(|(_, _, r)| r.clone()).collect();
    if ranges.iter().any(|r| r.end > entry.stored_bytes) {
        return Err(Error::corrupt(
            what(storage, entry),
            "block directory past the chunk's end",
        ));
    }
    let parts = storage
        .get_ranges(&entry.path, &ranges)
        .map_err(|e| explain_short_chunk(storage, entry, e))?;
    let jobs: Vec<_> = needed
        .iter()
        .zip(&parts)
        .map(|(&(id, b, ref r), part)| (id, b, &part[..], r.start))
        .collect();
    data.decode_blocks(&jobs)
}

fn what(storage: &dyn Storage, entry: &ChunkEntry) -> String {
    format!("{}/{}", storage.root(), entry.path)
}

/// Reads `ranges` of a chunk, laid out at their offsets in one span (the gaps stay zero and
/// are never decoded); returns the span and the offset of its first byte.
pub(crate) fn read_span(
    storage: &dyn Storage,
    entry: &ChunkEntry,
    ranges: &[Range<u64>],
) -> Result<(Vec<u8>, u64)> {
    let what = what(storage, entry);
    if ranges
        .iter()
        .any(|r| r.end > entry.stored_bytes || r.start > r.end)
    {
        return Err(Error::corrupt(
            what,
            "index stream table past the chunk's end",
        ));
    }
    // Back-to-back ranges (the streams of a chunk are) are read as one: one copy, and the
    // part itself is the span.
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let ranges = &merged[..];
    let mut parts = storage
        .get_ranges(&entry.path, ranges)
        .map_err(|e| explain_short_chunk(storage, entry, e))?;
    if let ([r], [part]) = (ranges, &parts[..]) {
        if part.len() as u64 != r.end - r.start {
            return Err(Error::corrupt(what, "short read of a chunk range"));
        }
        return Ok((parts.pop().expect("one part"), r.start));
    }
    let lo = ranges.iter().map(|r| r.start).min().unwrap_or(0);
    let hi = ranges.iter().map(|r| r.end).max().unwrap_or(0);
    let mut span = vec![0u8; (hi - lo) as usize];
    for (r, part) in ranges.iter().zip(parts) {
        if part.len() as u64 != r.end - r.start {
            return Err(Error::corrupt(what, "short read of a chunk range"));
        }
        let at = (r.start - lo) as usize;
        span[at..at + part.len()].copy_from_slice(&part);
    }
    Ok((span, lo))
}

/// A read of a chunk's ranges failed: when the object is shorter than the index says,
/// say that (a truncated or replaced chunk) rather than which range fell off its end.
fn explain_short_chunk(storage: &dyn Storage, entry: &ChunkEntry, e: Error) -> Error {
    if matches!(e, Error::NotFound(_)) {
        return e;
    }
    match storage.head(&entry.path) {
        Ok(Some(size)) if size != entry.stored_bytes => Error::corrupt(
            format!("{}/{}", storage.root(), entry.path),
            format!(
                "size {size} differs from the index ({}): truncated or replaced chunk",
                entry.stored_bytes
            ),
        ),
        _ => e,
    }
}

/// A chunk read for serving ranges of its records (the htslib stream's pieces): the streams
/// that are not blocked decoded once, record blocks fetched and decoded as ranges need them,
/// and each range's walk resumed where the previous one ended.
pub(crate) struct ChunkRanges {
    entry: ChunkEntry,
    data: ChunkData,
    resume: Resume,
}

impl ChunkRanges {
    /// Reads the chunk's streams (not its record blocks).
    pub(crate) fn open(storage: &dyn Storage, entry: &ChunkEntry) -> Result<ChunkRanges> {
        let data = if entry.streams.is_empty() {
            let bytes = storage.get(&entry.path)?;
            decode_whole(storage, entry, &bytes, Fields::ALL)?
        } else {
            let infos = entry.stream_infos();
            let (span, lo) = read_span(storage, entry, &stream_ranges(&infos, Fields::ALL))?;
            ChunkData::from_span_without_blocks(
                &infos,
                entry.count as usize,
                &span,
                lo,
                Fields::ALL,
                &what(storage, entry),
            )?
        };
        Ok(ChunkRanges {
            entry: entry.clone(),
            data,
            resume: Resume::default(),
        })
    }

    /// The chunk's index entry.
    pub(crate) fn entry(&self) -> &ChunkEntry {
        &self.entry
    }

    /// Appends records `range` of the chunk to `out` as BAM (each after its `block_size`).
    pub(crate) fn append_bam(
        &mut self,
        storage: &dyn Storage,
        range: Range<usize>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let mut keep = vec![false; self.data.records_in_chunk()];
        if let Some(k) = keep.get_mut(range.clone()) {
            k.fill(true);
        }
        let needed = self.data.blocks_needed(&keep);
        fetch_blocks(storage, &self.entry, &mut self.data, needed)?;
        self.data.append_bam(range, &mut self.resume, out)
    }
}

/// `f` of every item, each on a thread of its own (for a few remote fetches whose round trips
/// should overlap), in item order. A single item runs on the caller's thread.
pub(crate) fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    if let [one] = items {
        return vec![f(one)];
    }
    std::thread::scope(|sc| {
        let f = &f;
        let handles: Vec<_> = items.iter().map(|i| sc.spawn(move || f(i))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("worker thread panicked".into())))
            })
            .collect()
    })
}
