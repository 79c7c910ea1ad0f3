//! Opening a dataset and reading records back: whole, per region, or unplaced.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Arc, OnceLock};

use crate::chunk::{ChunkData, Fields};
use crate::index::{ChunkEntry, SpatialIndex};
use crate::legacy::{self, LegacyChunk, LegacyDataset};
use crate::metadata::{self, Compression, Metadata, Source, Statistics};
use crate::region::Region;
use crate::storage::Storage;
use crate::{Error, Header, Record, Result};

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

    /// Whether some record of a chunk with these statistics could pass.
    pub(crate) fn may_keep(&self, e: &ChunkEntry) -> bool {
        e.mapq_max >= self.min_mapq
            && e.flags_any & self.require_flags == self.require_flags
            && e.flags_all & self.exclude_flags == 0
    }
}

/// Largest span of `_index/spatial.json` one region's sections may ask for (a whole reference
/// of a million chunks is ~700 MB; sections of a sane table are a few hundred kB).
const MAX_SECTION_SPAN: u64 = 1 << 30;

/// An open dataset.
///
/// ```no_run
/// use bams3_core::{dataset::{Dataset, RecordFilter}, region::Region, storage::LocalStorage};
/// use std::sync::Arc;
/// let ds = Dataset::open(Arc::new(LocalStorage::new("sample.bams3"))).unwrap();
/// let region = Region::parse("chr1:1000-2000", ds.header()).unwrap();
/// for record in ds.query(&[region], RecordFilter::default()) {
///     let record = record.unwrap();
///     println!("{}", String::from_utf8_lossy(record.name()));
/// }
/// ```
pub struct Dataset {
    storage: Arc<dyn Storage>,
    metadata: Metadata,
    header: Header,
    /// The whole index: read at open, except from remote storage when `_metadata.json` has
    /// index sections; then only when something needs every chunk (stats, validate, export).
    index: OnceLock<SpatialIndex>,
    legacy: Option<LegacyDataset>,
}

/// What part of a dataset one pass reads.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// Every record of a reference, including those placed without a position.
    Reference(usize),
    /// Records of a reference overlapping `[beg, end)`.
    Span(usize, i64, i64),
    /// Records without a reference.
    Unplaced,
}

impl Dataset {
    /// Opens the dataset in `storage`. A location with objects but no `_metadata.json` is an
    /// incomplete dataset (an interrupted conversion) and is refused.
    pub fn open(storage: Arc<dyn Storage>) -> Result<Arc<Dataset>> {
        let root = storage.root();
        let meta = match storage.get(metadata::METADATA_KEY) {
            Ok(b) => b,
            Err(Error::NotFound(_)) => {
                return Err(if storage.list("")?.is_empty() {
                    Error::NotFound(format!("{root}: no BAMS3 dataset"))
                } else {
                    Error::Incomplete(root)
                })
            }
            Err(e) => return Err(e),
        };
        let what = |k: &str| format!("{root}/{k}");
        let version = serde_json::from_slice::<serde_json::Value>(&meta)
            .ok()
            .and_then(|v| {
                v.get("version")
                    .and_then(|v| v.as_str().map(str::to_string))
            });
        if let Some(v) = version.filter(|v| legacy::SUPPORTED_VERSIONS.contains(&v.as_str())) {
            let header = storage.get(metadata::HEADER_KEY)?;
            let ds = legacy::open(&meta, &header).map_err(|e| match e {
                Error::Corrupt { what: w, detail } => Error::corrupt(what(&w), detail),
                e => e,
            })?;
            let _ = v;
            return Ok(Arc::new(Self::from_legacy(storage, ds)));
        }
        let mut metadata: Metadata = serde_json::from_slice(&meta)
            .map_err(|e| Error::corrupt(what(metadata::METADATA_KEY), e.to_string()))?;
        if metadata.format != "bams3" || !metadata.version.starts_with("0.3") {
            return Err(Error::corrupt(
                what(metadata::METADATA_KEY),
                format!("unsupported format version '{}'", metadata.version),
            ));
        }
        // The copy in `_metadata.json` saves a round trip; `validate` checks it is the same.
        let header: Header = match metadata.header.take() {
            Some(h) => h,
            None => serde_json::from_slice(&storage.get(metadata::HEADER_KEY)?)
                .map_err(|e| Error::corrupt(what(metadata::HEADER_KEY), e.to_string()))?,
        };
        let ds = Dataset {
            storage,
            metadata,
            header,
            index: OnceLock::new(),
            legacy: None,
        };
        // A query on S3 needs only the index sections near its regions (see `chunks`).
        if !ds.storage.is_remote() || ds.metadata.index_sections.is_empty() {
            ds.index()?;
        }
        Ok(Arc::new(ds))
    }

    /// Reads `_index/spatial.json` whole.
    fn load_index(&self) -> Result<SpatialIndex> {
        let what = format!("{}/{}", self.storage.root(), metadata::INDEX_KEY);
        let index: SpatialIndex = serde_json::from_slice(&self.storage.get(metadata::INDEX_KEY)?)
            .map_err(|e| Error::corrupt(&what, e.to_string()))?;
        if index.references.len() != self.header.references.len() {
            return Err(Error::corrupt(
                what,
                "reference list differs from _header.json",
            ));
        }
        Ok(index)
    }

    /// Presents an upstream v0.1/v0.2 dataset through the v0.3 index: each legacy chunk becomes
    /// an entry whose reads may extend anywhere past its start (upstream recorded no end), so
    /// queries look back through every earlier chunk of the reference.
    fn from_legacy(storage: Arc<dyn Storage>, ds: LegacyDataset) -> Dataset {
        let entry = |c: &LegacyChunk| ChunkEntry {
            path: c.path.clone(),
            bin_start: c.start,
            bin_end: c.end,
            part: 0,
            count: c.reads,
            // Records without a position (-1) may sit in the first chunk of a reference.
            first_pos: if c.start == 0 { -1 } else { c.start },
            last_pos: c.end,
            max_end: i64::MAX,
            mapq_min: 0,
            mapq_max: u8::MAX,
            flags_all: 0,
            flags_any: u16::MAX,
            unmapped: 0,
            duplicates: 0,
            secondary: 0,
            bases: 0,
            raw_bytes: 0,
            stored_bytes: 0,
            checksum: c.checksum.clone().unwrap_or_default(),
            streams: Vec::new(),
        };
        let mut index = SpatialIndex::empty(&ds.header, &ds.version, 0);
        for c in &ds.chunks {
            index.push(c.ref_id as i64, entry(c));
        }
        let total: u64 = ds.chunks.iter().map(|c| c.reads).sum();
        let unplaced: u64 = index.unmapped.iter().map(|c| c.count).sum();
        let metadata = Metadata {
            format: "bams3".into(),
            version: ds.version.clone(),
            created: String::new(),
            created_by: "bams3-go or the Python proof of concept".into(),
            source: Source {
                file: if ds.one_based {
                    "stdin".into()
                } else {
                    String::new()
                },
                format: "legacy".into(),
            },
            statistics: Statistics {
                total_reads: total,
                mapped_reads: total - unplaced,
                unmapped_reads: unplaced,
                ..Statistics::default()
            },
            chunk_size: 0,
            compression: Compression {
                algorithm: ds.compression.clone(),
                level: 0,
            },
            chunk_count: ds.chunks.len() as u64,
            sorted_input: false,
            index_sections: Vec::new(),
            header: None,
        };
        Dataset {
            storage,
            metadata,
            header: ds.header.clone(),
            index: OnceLock::from(index),
            legacy: Some(ds),
        }
    }

    /// What `bams3 stats --json` prints (and the C ABI's `bams3_reader_stats_json` returns),
    /// from the metadata and index alone: no chunk is read. `location` is echoed as `dataset`.
    pub fn summary_json(&self, location: &str) -> Result<serde_json::Value> {
        let m = &self.metadata;
        let index = self.index()?;
        let all = || {
            index
                .references
                .iter()
                .flat_map(|r| &r.chunks)
                .chain(&index.unmapped)
        };
        let references: Vec<serde_json::Value> = index
            .references
            .iter()
            .filter_map(|r| {
                let reads: u64 = r.chunks.iter().map(|c| c.count).sum();
                let bytes: u64 = r.chunks.iter().map(|c| c.stored_bytes).sum();
                (reads > 0).then(|| {
                    serde_json::json!({"name": r.name, "length": r.length, "reads": reads,
                           "chunks": r.chunks.len(), "stored_bytes": bytes})
                })
            })
            .collect();
        Ok(serde_json::json!({
            "dataset": location,
            "format": m.format,
            "version": m.version,
            "created": m.created,
            "created_by": m.created_by,
            "source": m.source,
            "statistics": m.statistics,
            "chunk_size": m.chunk_size,
            "chunk_count": m.chunk_count,
            "compression": m.compression,
            "stored_bytes": all().map(|c| c.stored_bytes).sum::<u64>(),
            "raw_bam_record_bytes": all().map(|c| c.raw_bytes).sum::<u64>(),
            "unplaced_reads": index.unmapped.iter().map(|c| c.count).sum::<u64>(),
            "losses": self.losses(),
            "references": references,
        }))
    }

    /// For an upstream v0.1/v0.2 dataset, what it lost relative to its source, in plain words;
    /// empty for v0.3 datasets, which are lossless.
    pub fn losses(&self) -> &[String] {
        self.legacy.as_ref().map_or(&[], |l| l.losses.as_slice())
    }

    /// Whether this is an upstream v0.1/v0.2 dataset.
    pub fn is_legacy(&self) -> bool {
        self.legacy.is_some()
    }

    /// The records of one chunk, decoded one at a time as they are pulled (v0.3), in position
    /// order.
    pub fn chunk_iter(
        &self,
        entry: &ChunkEntry,
    ) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send>> {
        if self.legacy.is_some() {
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
        if let Some(ds) = &self.legacy {
            let chunk = ds
                .chunks
                .iter()
                .find(|c| c.path == entry.path)
                .ok_or_else(|| Error::NotFound(entry.path.clone()))?;
            let bytes = self.storage.get(&entry.path)?;
            let what = format!("{}/{}", self.storage.root(), entry.path);
            let mut records = legacy::decode_chunk(&bytes, chunk, ds).map_err(|e| match e {
                Error::Corrupt { detail, .. } => Error::corrupt(&what, detail),
                e => e,
            })?;
            // Upstream chunks can hold several sorted runs (stdin flushes); order them.
            records.retain(|r| keep(r));
            records.sort_by_key(|r| r.pos());
            return Ok(records);
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

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The SAM header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The whole spatial index, read on first use when the dataset was opened without it.
    pub fn index(&self) -> Result<&SpatialIndex> {
        if let Some(index) = self.index.get() {
            return Ok(index);
        }
        let index = self.load_index()?;
        // Two threads may both have read it; either copy is the same.
        Ok(self.index.get_or_init(|| index))
    }

    /// The chunks of reference `ref_id` (or, for `None`, the unplaced chunks) that may hold
    /// records overlapping the 0-based half-open `span` (all of them without a span), in
    /// index order.
    ///
    /// With the whole index in memory this filters it; otherwise it fetches only the index
    /// sections that `_metadata.json` says can overlap, in one ranged read.
    ///
    /// ```no_run
    /// use bams3_core::{dataset::Dataset, storage::LocalStorage};
    /// use std::sync::Arc;
    /// let ds = Dataset::open(Arc::new(LocalStorage::new("sample.bams3"))).unwrap();
    /// let chunks = ds.chunks(Some(0), Some((0, 100_000))).unwrap();
    /// println!("{} chunks to read", chunks.len());
    /// ```
    pub fn chunks(
        &self,
        ref_id: Option<usize>,
        span: Option<(i64, i64)>,
    ) -> Result<Vec<ChunkEntry>> {
        let keep = |e: &ChunkEntry| span.is_none_or(|(beg, end)| e.overlaps(beg, end));
        if let Some(index) = self.index.get() {
            let list = match ref_id {
                Some(id) => index.references.get(id).map_or(&[][..], |r| &r.chunks),
                None => &index.unmapped,
            };
            return Ok(list.iter().filter(|e| keep(e)).cloned().collect());
        }
        let reference = ref_id.map_or(-1, |id| id as i64);
        let sections: Vec<_> = self
            .metadata
            .index_sections
            .iter()
            .filter(|s| s.reference == reference)
            .filter(|s| span.is_none_or(|(beg, end)| s.overlaps(beg, end)))
            .collect();
        let (Some(lo), Some(hi)) = (
            sections.iter().map(|s| s.offset).min(),
            sections
                .iter()
                .map(|s| s.offset.saturating_add(s.length))
                .max(),
        ) else {
            return Ok(Vec::new());
        };
        let what = || format!("{}/{}", self.storage.root(), metadata::INDEX_KEY);
        // A section table from a damaged _metadata.json must not become a huge read.
        if hi - lo > MAX_SECTION_SPAN {
            return Err(Error::corrupt(
                format!("{}/{}", self.storage.root(), metadata::METADATA_KEY),
                format!("index sections span {} bytes of the index", hi - lo),
            ));
        }
        // Sections near one region are neighbours in the object: one GET covers them.
        let bytes = self.storage.get_range(metadata::INDEX_KEY, lo..hi)?;
        let mut out = Vec::new();
        for s in sections {
            let at = (s.offset - lo) as usize;
            let part = bytes
                .get(at..at.saturating_add(s.length as usize))
                .ok_or_else(|| Error::corrupt(what(), "short read of an index section"))?;
            let entries = s.parse(part).map_err(|e| Error::corrupt(what(), e))?;
            out.extend(entries.into_iter().filter(|e| keep(e)));
        }
        Ok(out)
    }

    /// The storage the dataset lives in.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Records overlapping each region in turn (samtools semantics: a region's records in
    /// coordinate order; several regions are read one after the other).
    pub fn query(self: &Arc<Self>, regions: &[Region], filter: RecordFilter) -> Query {
        let scopes = regions
            .iter()
            .map(|r| match *r {
                Region::Span { ref_id, beg, end } => Scope::Span(ref_id, beg, end),
                Region::Unplaced => Scope::Unplaced,
            })
            .collect();
        Query::new(self.clone(), scopes, filter)
    }

    /// Every record: references in order, each in coordinate order, then the unplaced ones.
    pub fn records(self: &Arc<Self>, filter: RecordFilter) -> Query {
        // Every chunk is needed: one GET of the whole index beats one ranged GET of sections
        // per reference. Should it fail, each reference's sections are read (and fail) instead.
        let _ = self.index();
        let mut scopes: Vec<Scope> = (0..self.header.references.len())
            .map(Scope::Reference)
            .collect();
        scopes.push(Scope::Unplaced);
        Query::new(self.clone(), scopes, filter)
    }

    /// Reads, checks and decodes one chunk.
    ///
    /// From remote storage, only the contiguous byte range covering the streams in `fields` is
    /// fetched, in one ranged GET located by the index's stream table (no round trip for the
    /// chunk header); each stream's CRC is still checked.
    pub fn read_chunk(&self, entry: &ChunkEntry, fields: Fields) -> Result<ChunkData> {
        let what = format!("{}/{}", self.storage.root(), entry.path);
        if self.storage.is_remote() && !entry.streams.is_empty() {
            let infos = entry.stream_infos();
            let wanted = || {
                infos.iter().filter(|s| {
                    s.stored_len > 0
                        && crate::chunk::StreamId::ALL
                            .get(s.id as usize)
                            .is_some_and(|&id| fields.contains(id))
                })
            };
            // Needed streams in offset order, merged into ranges unless an unneeded gap of at
            // least GAP lies between them (read names between the coverage streams, say).
            let mut needed: Vec<(u64, u64)> = wanted()
                .map(|s| (s.offset, s.offset.saturating_add(s.stored_len)))
                .collect();
            needed.sort_unstable();
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            for (a, b) in needed {
                match ranges.last_mut() {
                    Some(last) if a <= last.1.saturating_add(GAP) => last.1 = last.1.max(b),
                    _ => ranges.push((a, b)),
                }
            }
            let lo = ranges.first().map_or(0, |r| r.0);
            let hi = ranges.last().map_or(0, |r| r.1);
            if hi > entry.stored_bytes {
                return Err(Error::corrupt(
                    what,
                    "index stream table past the chunk's end",
                ));
            }
            let get = |r: &(u64, u64)| {
                self.storage
                    .get_range_versioned(&entry.path, r.0..r.1, &entry.checksum)
            };
            let span = match ranges.as_slice() {
                [] => Vec::new(),
                [one] => get(one)?,
                several => {
                    // Fetched concurrently, then laid out at their offsets in one buffer (the
                    // gaps stay zero and are never decoded).
                    let parts = in_parallel(several, get);
                    let mut span = vec![0u8; (hi - lo) as usize];
                    for (r, part) in several.iter().zip(parts) {
                        let part = part?;
                        if part.len() as u64 != r.1 - r.0 {
                            return Err(Error::corrupt(what, "short read of a chunk range"));
                        }
                        let at = (r.0 - lo) as usize;
                        span[at..at + part.len()].copy_from_slice(&part);
                    }
                    span
                }
            };
            let data =
                ChunkData::from_span(&infos, entry.count as usize, &span, lo, fields, &what)?;
            return Ok(data);
        }
        let bytes = self.storage.get(&entry.path)?;
        self.decode_chunk(entry, &bytes, fields)
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
                    .unwrap_or_else(|_| Err(Error::Invalid("worker thread panicked".into())))
            })
            .collect()
    })
}

/// One open chunk in the merge: its remaining records and the next one that passes.
struct Cursor {
    records: Box<dyn Iterator<Item = Result<Record>> + Send>,
    head: Record,
}

/// Iterator over the records of a query, merging chunk parts in coordinate order.
///
/// Chunks are opened lazily, in order of their first position, only when the merge reaches
/// them, so memory holds the chunks that overlap the current position and no more.
pub struct Query {
    ds: Arc<Dataset>,
    scopes: VecDeque<Scope>,
    filter: RecordFilter,
    current: Option<Scope>,
    pending: VecDeque<(usize, ChunkEntry)>,
    heap: BinaryHeap<Reverse<(i32, bool, usize, usize)>>,
    cursors: Vec<Option<Cursor>>,
    failed: bool,
    /// Chunks being fetched and decoded in the background, by object key, in the
    /// order they will be opened. Bounded by [`PREFETCH`], which bounds memory too.
    prefetch: VecDeque<(String, std::sync::mpsc::Receiver<Result<ChunkData>>)>,
}

/// Chunks a query fetches ahead from remote storage, so that round trips overlap.
const PREFETCH: usize = 4;

/// Chunks a query decodes ahead from local storage.
const LOCAL_PREFETCH: usize = 1;

/// Unneeded bytes between needed streams worth a separate ranged GET rather than fetching
/// them: about what one S3 request costs in egress price, and the requests run concurrently.
const GAP: u64 = 4 << 10;

impl Query {
    fn new(ds: Arc<Dataset>, scopes: Vec<Scope>, filter: RecordFilter) -> Self {
        Query {
            ds,
            scopes: scopes.into(),
            filter,
            current: None,
            pending: VecDeque::new(),
            heap: BinaryHeap::new(),
            cursors: Vec::new(),
            failed: false,
            prefetch: VecDeque::new(),
        }
    }

    fn start_scope(&mut self, scope: Scope) -> Result<()> {
        let ds = self.ds.clone();
        let filter = self.filter;
        let chunks = match scope {
            Scope::Reference(id) => ds.chunks(Some(id), None)?,
            Scope::Span(id, beg, end) => ds.chunks(Some(id), Some((beg, end)))?,
            Scope::Unplaced => ds.chunks(None, None)?,
        };
        let mut chosen: Vec<(usize, ChunkEntry)> = chunks
            .into_iter()
            .filter(|e| e.count > 0 && filter.may_keep(e))
            .enumerate()
            .collect();
        // Stable: chunks starting at the same position keep bin/part order.
        chosen.sort_by_key(|(order, e)| (e.first_pos, *order));
        self.pending = chosen.into();
        // Fetches for the previous scope are dropped; their threads end on their own.
        self.prefetch.clear();
        self.heap.clear();
        self.cursors.clear();
        self.current = Some(scope);
        Ok(())
    }

    /// Tie-break between chunks at equal positions. Parts written from unsorted input were
    /// sorted as `samtools sort` sorts (forward strand first), so merging them must agree;
    /// parts of sorted input keep the input's own order, part by part.
    fn tie(&self, r: &Record) -> bool {
        !self.ds.metadata.sorted_input && r.flag() & 0x10 != 0
    }

    /// The next record of `records` inside the current scope and passing the filter.
    fn next_passing(
        &self,
        records: &mut dyn Iterator<Item = Result<Record>>,
    ) -> Result<Option<Record>> {
        let scope = self.current.expect("scope is set while chunks are open");
        for r in records {
            let r = r?;
            let inside = match scope {
                Scope::Span(_, beg, end) => (r.pos() as i64) < end && r.end() > beg,
                _ => true,
            };
            if inside && self.filter.keep(&r) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Starts background fetches of the next pending chunks, up to [`PREFETCH`] in flight.
    fn top_up_prefetch(&mut self) {
        if self.ds.legacy.is_some() {
            return;
        }
        // Remote: overlap round trips. Local: decode the next chunk on a second thread while
        // this one is formatted (decompressing qualities is most of a read's CPU time).
        let limit = if self.ds.storage.is_remote() {
            PREFETCH
        } else {
            LOCAL_PREFETCH
        };
        for (_, entry) in self.pending.iter() {
            if self.prefetch.len() >= limit {
                break;
            }
            if self.prefetch.iter().any(|(p, _)| *p == entry.path) {
                continue;
            }
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let ds = self.ds.clone();
            let e = entry.clone();
            let spawned = std::thread::Builder::new()
                .name("bams3-prefetch".into())
                .spawn(move || {
                    let _ = tx.send(ds.read_chunk(&e, Fields::ALL));
                });
            if spawned.is_err() {
                // No thread: the chunk is simply read when it is opened.
                break;
            }
            self.prefetch.push_back((entry.path.clone(), rx));
        }
    }

    fn open(&mut self, order: usize, entry: &ChunkEntry) -> Result<()> {
        let fetched = self
            .prefetch
            .iter()
            .position(|(p, _)| *p == entry.path)
            .and_then(|i| self.prefetch.remove(i))
            .and_then(|(_, rx)| rx.recv().ok());
        let mut records: Box<dyn Iterator<Item = Result<Record>> + Send> = match fetched {
            Some(data) => Box::new(data?.into_records()),
            None => self.ds.chunk_iter(entry)?,
        };
        self.top_up_prefetch();
        if let Some(head) = self.next_passing(&mut *records)? {
            let slot = self.cursors.len();
            self.heap
                .push(Reverse((head.pos(), self.tie(&head), order, slot)));
            self.cursors.push(Some(Cursor { records, head }));
        }
        Ok(())
    }

    fn next_inner(&mut self) -> Result<Option<Record>> {
        loop {
            if self.current.is_none() {
                match self.scopes.pop_front() {
                    Some(s) => self.start_scope(s)?,
                    None => return Ok(None),
                }
            }
            // Open every chunk that could hold a record at or before the merge frontier.
            while let Some((_, entry)) = self.pending.front() {
                let frontier = self.heap.peek().map(|Reverse((p, ..))| *p as i64);
                if frontier.is_some_and(|f| entry.first_pos > f) {
                    break;
                }
                self.top_up_prefetch();
                let (order, entry) = self.pending.pop_front().expect("front exists");
                self.open(order, &entry)?;
            }
            let Some(Reverse((_, _, order, slot))) = self.heap.pop() else {
                self.current = None;
                continue;
            };
            let mut cursor = self.cursors[slot].take().expect("live cursor");
            match self.next_passing(&mut *cursor.records)? {
                Some(next) => {
                    self.heap
                        .push(Reverse((next.pos(), self.tie(&next), order, slot)));
                    let record = std::mem::replace(&mut cursor.head, next);
                    self.cursors[slot] = Some(cursor);
                    return Ok(Some(record));
                }
                None => return Ok(Some(cursor.head)),
            }
        }
    }
}

// Bindings move a running query to a worker thread (Node's libuv pool, R's interrupt
// checks between batches): a query must stay `Send`.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Query>();
};

impl Iterator for Query {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.failed {
            return None;
        }
        let r = self.next_inner().transpose();
        self.failed = matches!(r, Some(Err(_)));
        r
    }
}
