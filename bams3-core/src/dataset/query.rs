//! Queries: the records of regions (or of the whole dataset), merging chunk parts in
//! coordinate order, with chunks fetched and decoded ahead of the merge.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use super::{Dataset, RecordFilter};
use crate::chunk::{ChunkData, Fields};
use crate::index::ChunkEntry;
use crate::region::{Region, Selection, Targets};
use crate::{Record, Result};

/// What part of a dataset one pass reads.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// Every record of a reference, including those placed without a position.
    Reference(usize),
    /// Records of a reference overlapping `[beg, end)`.
    Span(usize, i64, i64),
    /// Records of a reference overlapping any of the query's targets.
    Targets(usize),
    /// Records without a reference.
    Unplaced,
}

impl Dataset {
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

    /// The records `selection` chooses, as `samtools view` chooses them with the same region
    /// arguments, `-L` and `-M`.
    ///
    /// ```no_run
    /// use bams3_core::dataset::{Dataset, OpenOptions, RecordFilter};
    /// use bams3_core::region::{Bed, Selection};
    /// let ds = Dataset::open_location("sample.bams3", &OpenOptions::default()).unwrap();
    /// let bed = Bed::read("targets.bed").unwrap();
    /// let selection = Selection::new(&[], Some(&bed), true, ds.header()).unwrap();
    /// for r in ds.select(&selection, RecordFilter::default()) {
    ///     println!("{}", String::from_utf8_lossy(r.unwrap().name()));
    /// }
    /// ```
    pub fn select(self: &Arc<Self>, selection: &Selection, filter: RecordFilter) -> Query {
        match selection {
            Selection::Regions { regions, within } => {
                let mut q = if regions.is_empty() {
                    self.records(filter)
                } else {
                    self.query(regions, filter)
                };
                q.within = within.clone().map(Arc::new);
                if q.within.is_some() {
                    // Unplaced reads never overlap a BED interval (samtools drops them too).
                    q.scopes.retain(|s| !matches!(s, Scope::Unplaced));
                }
                q
            }
            Selection::Targets(targets) => {
                let mut scopes: Vec<Scope> = (0..self.header().references.len())
                    .filter(|&id| !targets.intervals(id).is_empty())
                    .map(Scope::Targets)
                    .collect();
                if targets.unplaced() {
                    scopes.push(Scope::Unplaced);
                }
                let mut q = Query::new(self.clone(), scopes, filter);
                q.targets = Some(Arc::new(targets.clone()));
                q
            }
        }
    }

    /// Every record: references in order, each in coordinate order, then the unplaced ones.
    pub fn records(self: &Arc<Self>, filter: RecordFilter) -> Query {
        // Every chunk is needed: one GET of the whole index beats one ranged GET of sections
        // per reference. Should it fail, each reference's sections are read (and fail) instead.
        let _ = self.index();
        let mut scopes: Vec<Scope> = (0..self.header().references.len())
            .map(Scope::Reference)
            .collect();
        scopes.push(Scope::Unplaced);
        Query::new(self.clone(), scopes, filter)
    }
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
    /// The targets of `Scope::Targets` (`-M`).
    targets: Option<Arc<Targets>>,
    /// Targets every record must also overlap (`-L` without `-M`).
    within: Option<Arc<Targets>>,
    current: Option<Scope>,
    pending: VecDeque<(usize, ChunkEntry)>,
    heap: BinaryHeap<Reverse<(i32, bool, usize, usize)>>,
    cursors: Vec<Option<Cursor>>,
    failed: bool,
    /// Chunks being fetched and decoded in the background, by object key, in the
    /// order they will be opened. Bounded by the store's read-ahead, which bounds memory too.
    prefetch: VecDeque<(String, std::sync::mpsc::Receiver<Result<ChunkData>>)>,
    /// The streams asked for (reading a chunk adds [`Fields::LOCATION`]).
    fields: Fields,
}

impl Query {
    fn new(ds: Arc<Dataset>, scopes: Vec<Scope>, filter: RecordFilter) -> Self {
        Query {
            ds,
            scopes: scopes.into(),
            filter,
            targets: None,
            within: None,
            current: None,
            pending: VecDeque::new(),
            heap: BinaryHeap::new(),
            cursors: Vec::new(),
            failed: false,
            prefetch: VecDeque::new(),
            fields: Fields::ALL,
        }
    }

    /// Decodes only the streams in `fields` and those locating and filtering records need
    /// ([`Fields::LOCATION`]): a reader of a few columns (positions and CIGARs for
    /// `readGAlignments`, say) then skips the costly streams (qualities, bases, names), whose
    /// fields in the records returned are placeholders, as [`ChunkData::records`] says. The
    /// records chosen are the same. Set it before the first record is pulled; legacy (v0.1/v0.2)
    /// datasets always decode whole records.
    ///
    /// ```no_run
    /// use bams3_core::chunk::{Fields, StreamId};
    /// use bams3_core::dataset::{Dataset, OpenOptions, RecordFilter};
    /// let ds = Dataset::open_location("sample.bams3", &OpenOptions::default()).unwrap();
    /// let names = Fields::LOCATION.with(StreamId::Name);
    /// for r in ds.records(RecordFilter::default()).with_fields(names) {
    ///     let r = r.unwrap();
    ///     println!("{} {}", String::from_utf8_lossy(r.name()), r.pos() + 1);
    /// }
    /// ```
    pub fn with_fields(mut self, fields: Fields) -> Query {
        self.fields = fields;
        self
    }

    fn start_scope(&mut self, scope: Scope) -> Result<()> {
        let ds = self.ds.clone();
        let filter = self.filter;
        let chunks = match scope {
            Scope::Reference(id) => ds.chunks(Some(id), None)?,
            Scope::Span(id, beg, end) => ds.chunks(Some(id), Some((beg, end)))?,
            Scope::Targets(id) => {
                let t = self.targets.as_deref().expect("target scopes have targets");
                let ivs = t.intervals(id);
                let hull = (ivs[0].0, ivs[ivs.len() - 1].1);
                let mut chunks = ds.chunks(Some(id), Some(hull))?;
                chunks.retain(|e| t.overlaps(id, e.first_pos, e.max_end));
                chunks
            }
            Scope::Unplaced => ds.chunks(None, None)?,
        };
        let mut chosen: Vec<(usize, ChunkEntry)> = chunks
            .into_iter()
            .filter(|e| e.count > 0 && ds.proven(e).is_none_or(|p| p.may_keep(&filter)))
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

    /// The span of the current scope that may hold records of `entry`, if it is a region: for
    /// targets, the hull of those the chunk overlaps (each record is still tested exactly).
    fn span(&self, entry: &ChunkEntry) -> Option<(i64, i64)> {
        match self.current {
            Some(Scope::Span(_, beg, end)) => Some((beg, end)),
            Some(Scope::Targets(id)) => self
                .targets
                .as_deref()
                .and_then(|t| t.hull_within(id, entry.first_pos, entry.max_end)),
            _ => None,
        }
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
                Scope::Targets(id) => self
                    .targets
                    .as_deref()
                    .is_some_and(|t| t.overlaps(id, r.pos() as i64, r.end())),
                _ => true,
            };
            let within = self.within.as_deref().is_none_or(|t| {
                r.ref_id() >= 0 && t.overlaps(r.ref_id() as usize, r.pos() as i64, r.end())
            });
            if inside && within && self.filter.keep(&r) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Starts background fetches of the next pending chunks, up to the store's read-ahead in flight.
    fn top_up_prefetch(&mut self) {
        if self.ds.is_legacy() {
            return;
        }
        // As many as the store wants in flight (S3: round trips overlap), and at least the
        // next two chunks decoded on other threads while this one is formatted: decoding
        // (qualities most of it) takes longer than formatting, so with one chunk ahead the
        // reader waited for it; with two, the decoders also use what formatting leaves of its
        // core (whole X: 3.9 s -> 3.15 s, as fast as samtools, measured in BENCHMARKS.md).
        let limit = self.ds.storage.read_ahead().max(2);
        let (filter, fields) = (self.filter, self.fields);
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
            let span = self.span(entry);
            let spawned = std::thread::Builder::new()
                .name("bams3-prefetch".into())
                .spawn(move || {
                    let _ = tx.send(ds.read_chunk_selecting(&e, span, &filter, fields));
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
            None if self.ds.is_legacy() => self.ds.chunk_iter(entry)?,
            None => Box::new(
                self.ds
                    .read_chunk_selecting(entry, self.span(entry), &self.filter, self.fields)?
                    .into_records(),
            ),
        };
        // The slot this chunk's fetch held is free: the next chunk decodes on another thread
        // while this one's records are merged (nothing starts when no chunk is pending).
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
                let (order, entry) = self.pending.pop_front().expect("front exists");
                // The chunks after this one are fetched in the background while this one is
                // read here (a one-chunk query starts no thread at all).
                self.top_up_prefetch();
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
