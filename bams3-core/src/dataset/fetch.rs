//! Reading one chunk: the byte ranges of the streams a caller needs, checked and decoded.
//!
//! The dataset layer only says which ranges it needs (from the index's stream table); how
//! they are fetched (one map of a local file, merged concurrent GETs on S3) is the store's
//! business.

use std::ops::Range;

use super::open::Source;
use super::Dataset;
use crate::chunk::{ChunkData, Fields, StreamId};
use crate::index::ChunkEntry;
use crate::{Error, Record, Result};

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
    /// ranges are fetched); each stream's CRC is checked.
    pub fn read_chunk(&self, entry: &ChunkEntry, fields: Fields) -> Result<ChunkData> {
        let what = format!("{}/{}", self.storage.root(), entry.path);
        if entry.streams.is_empty() {
            // Indexes without a stream table: the object whole, through its own header.
            let bytes = self.storage.get(&entry.path)?;
            return self.decode_chunk(entry, &bytes, fields);
        }
        let infos = entry.stream_infos();
        let wanted: Vec<_> = infos
            .iter()
            .filter(|s| {
                s.stored_len > 0
                    && StreamId::ALL
                        .get(s.id as usize)
                        .is_some_and(|&id| fields.contains(id))
            })
            .collect();
        let ranges: Vec<Range<u64>> = wanted
            .iter()
            .map(|s| s.offset..s.offset.saturating_add(s.stored_len))
            .collect();
        if ranges.iter().any(|r| r.end > entry.stored_bytes) {
            return Err(Error::corrupt(
                what,
                "index stream table past the chunk's end",
            ));
        }
        let parts = self
            .storage
            .get_ranges(&entry.path, &ranges)
            .map_err(|e| self.explain_short_chunk(entry, e))?;
        // Laid out at their offsets in one span (the gaps stay zero and are never decoded).
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
        ChunkData::from_span(&infos, entry.count as usize, &span, lo, fields, &what)
    }

    /// A read of a chunk's ranges failed: when the object is shorter than the index says,
    /// say that (a truncated or replaced chunk) rather than which range fell off its end.
    fn explain_short_chunk(&self, entry: &ChunkEntry, e: Error) -> Error {
        if matches!(e, Error::NotFound(_)) {
            return e;
        }
        match self.storage.head(&entry.path) {
            Ok(Some(size)) if size != entry.stored_bytes => Error::corrupt(
                format!("{}/{}", self.storage.root(), entry.path),
                format!(
                    "size {size} differs from the index ({}): truncated or replaced chunk",
                    entry.stored_bytes
                ),
            ),
            _ => e,
        }
    }

    /// Checks and decodes a chunk object already read whole (by [`crate::validate`], which
    /// needs its bytes for the object checksum and should not fetch it twice).
    pub(crate) fn decode_chunk(
        &self,
        entry: &ChunkEntry,
        bytes: &[u8],
        fields: Fields,
    ) -> Result<ChunkData> {
        let what = format!("{}/{}", self.storage.root(), entry.path);
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
