//! Opening a dataset and reading records back: whole, per region, or unplaced.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use crate::chunk::{ChunkData, Fields};
use crate::index::{ChunkEntry, SpatialIndex};
use crate::metadata::{self, Metadata};
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
        r.mapq() >= self.min_mapq
            && r.flag() & self.require_flags == self.require_flags
            && r.flag() & self.exclude_flags == 0
    }

    /// Whether some record of a chunk with these statistics could pass.
    fn may_keep(&self, e: &ChunkEntry) -> bool {
        e.mapq_max >= self.min_mapq
            && e.flags_any & self.require_flags == self.require_flags
            && e.flags_all & self.exclude_flags == 0
    }
}

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
    index: SpatialIndex,
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
    pub fn open(storage: Arc<dyn Storage>) -> Result<Dataset> {
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
        let metadata: Metadata = serde_json::from_slice(&meta)
            .map_err(|e| Error::corrupt(what(metadata::METADATA_KEY), e.to_string()))?;
        if metadata.format != "bams3" || !metadata.version.starts_with("0.3") {
            return Err(Error::corrupt(
                what(metadata::METADATA_KEY),
                format!("unsupported format version '{}'", metadata.version),
            ));
        }
        let header: Header = serde_json::from_slice(&storage.get(metadata::HEADER_KEY)?)
            .map_err(|e| Error::corrupt(what(metadata::HEADER_KEY), e.to_string()))?;
        let index: SpatialIndex = serde_json::from_slice(&storage.get(metadata::INDEX_KEY)?)
            .map_err(|e| Error::corrupt(what(metadata::INDEX_KEY), e.to_string()))?;
        if index.references.len() != header.references.len() {
            return Err(Error::corrupt(
                what(metadata::INDEX_KEY),
                "reference list differs from _header.json",
            ));
        }
        Ok(Dataset {
            storage,
            metadata,
            header,
            index,
        })
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The SAM header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The spatial index.
    pub fn index(&self) -> &SpatialIndex {
        &self.index
    }

    /// The storage the dataset lives in.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Records overlapping each region in turn (samtools semantics: a region's records in
    /// coordinate order; several regions are read one after the other).
    pub fn query(&self, regions: &[Region], filter: RecordFilter) -> Query<'_> {
        let scopes = regions
            .iter()
            .map(|r| match *r {
                Region::Span { ref_id, beg, end } => Scope::Span(ref_id, beg, end),
                Region::Unplaced => Scope::Unplaced,
            })
            .collect();
        Query::new(self, scopes, filter)
    }

    /// Every record: references in order, each in coordinate order, then the unplaced ones.
    pub fn records(&self, filter: RecordFilter) -> Query<'_> {
        let mut scopes: Vec<Scope> = (0..self.header.references.len())
            .map(Scope::Reference)
            .collect();
        scopes.push(Scope::Unplaced);
        Query::new(self, scopes, filter)
    }

    /// Reads, checks and decodes one chunk.
    pub fn read_chunk(&self, entry: &ChunkEntry, fields: Fields) -> Result<ChunkData> {
        let bytes = self.storage.get(&entry.path)?;
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
        let data = ChunkData::decode(&bytes, fields, &what)?;
        if data.len() as u64 != entry.count {
            return Err(Error::corrupt(what, "record count differs from the index"));
        }
        Ok(data)
    }
}

/// One chunk's surviving records, waiting to be merged.
struct Cursor {
    records: VecDeque<Record>,
}

/// Iterator over the records of a query, merging chunk parts in coordinate order.
///
/// Chunks are opened lazily, in order of their first position, only when the merge reaches
/// them, so memory holds the chunks that overlap the current position and no more.
pub struct Query<'a> {
    ds: &'a Dataset,
    scopes: VecDeque<Scope>,
    filter: RecordFilter,
    current: Option<Scope>,
    pending: VecDeque<(usize, &'a ChunkEntry)>,
    heap: BinaryHeap<Reverse<(i32, usize, usize)>>,
    cursors: Vec<Option<Cursor>>,
    failed: bool,
}

impl<'a> Query<'a> {
    fn new(ds: &'a Dataset, scopes: Vec<Scope>, filter: RecordFilter) -> Self {
        Query {
            ds,
            scopes: scopes.into(),
            filter,
            current: None,
            pending: VecDeque::new(),
            heap: BinaryHeap::new(),
            cursors: Vec::new(),
            failed: false,
        }
    }

    fn start_scope(&mut self, scope: Scope) {
        let ds: &'a Dataset = self.ds;
        let filter = self.filter;
        let chunks: Vec<&'a ChunkEntry> = match scope {
            Scope::Reference(id) | Scope::Span(id, ..) => ds
                .index
                .references
                .get(id)
                .map(|r| r.chunks.iter().collect())
                .unwrap_or_default(),
            Scope::Unplaced => ds.index.unmapped.iter().collect(),
        };
        let mut chosen: Vec<(usize, &'a ChunkEntry)> = chunks
            .into_iter()
            .filter(|e| e.count > 0 && filter.may_keep(e))
            .filter(|e| match scope {
                Scope::Span(_, beg, end) => e.overlaps(beg, end),
                _ => true,
            })
            .enumerate()
            .collect();
        // Stable: chunks starting at the same position keep bin/part order.
        chosen.sort_by_key(|(order, e)| (e.first_pos, *order));
        self.pending = chosen.into();
        self.heap.clear();
        self.cursors.clear();
        self.current = Some(scope);
    }

    fn open(&mut self, order: usize, entry: &ChunkEntry) -> Result<()> {
        let data = self.ds.read_chunk(entry, Fields::ALL)?;
        let scope = self.current.expect("scope is set while chunks are pending");
        let mut records = VecDeque::with_capacity(data.len());
        for r in data.records() {
            let r = r?;
            let inside = match scope {
                Scope::Span(_, beg, end) => (r.pos() as i64) < end && r.end() > beg,
                _ => true,
            };
            if inside && self.filter.keep(&r) {
                records.push_back(r);
            }
        }
        if let Some(first) = records.front() {
            let slot = self.cursors.len();
            self.heap.push(Reverse((first.pos(), order, slot)));
            self.cursors.push(Some(Cursor { records }));
        }
        Ok(())
    }

    fn next_inner(&mut self) -> Result<Option<Record>> {
        loop {
            if self.current.is_none() {
                match self.scopes.pop_front() {
                    Some(s) => self.start_scope(s),
                    None => return Ok(None),
                }
            }
            // Open every chunk that could hold a record at or before the merge frontier.
            while let Some(&(order, entry)) = self.pending.front() {
                let frontier = self.heap.peek().map(|Reverse((p, ..))| *p as i64);
                if frontier.is_some_and(|f| entry.first_pos > f) {
                    break;
                }
                self.pending.pop_front();
                self.open(order, entry)?;
            }
            let Some(Reverse((_, order, slot))) = self.heap.pop() else {
                self.current = None;
                continue;
            };
            let cursor = self.cursors[slot].as_mut().expect("live cursor");
            let record = cursor.records.pop_front().expect("non-empty cursor");
            match cursor.records.front() {
                Some(next) => self.heap.push(Reverse((next.pos(), order, slot))),
                None => self.cursors[slot] = None,
            }
            return Ok(Some(record));
        }
    }
}

impl Iterator for Query<'_> {
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
