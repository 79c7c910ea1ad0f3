//! Turning a stream of records, in any order, into a committed dataset.
//!
//! Records are routed to genomic bins by start position. A bin is written as a chunk part when
//! it is complete (sorted input has moved past it), when it reaches the part byte budget, or
//! when the memory budget is exceeded (unsorted input; the largest bins go first). Parts are
//! encoded and stored by worker threads fed through a bounded channel, so a slow store holds
//! back the reader instead of growing memory. Each part is sorted by position before encoding;
//! parts of one bin may then overlap, and readers merge them.
//!
//! Commit protocol: chunks, then `_header.json`, then `_index/spatial.json`, a
//! [`crate::storage::Storage::flush`] barrier, then `_metadata.json` last. Without `_metadata.json` a dataset is incomplete, and every reader
//! says so.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::journal::{self, Checkpoint, Journal, JournalStart};
use super::names::chunk_key;
use crate::bam::ResumePoint;
use crate::bamstream::pieces::{self, Piece, PieceMap};
use crate::chunk::{self, Profile};
use crate::index::{ChunkEntry, SpatialIndex};
use crate::metadata::{self, Compression, Metadata, Source, Statistics};
use crate::storage::Storage;
use crate::{Error, Header, Record, Result};

/// How a dataset is written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Genomic span of a bin in bases: a power of two from 256 Ki to 8 Mi (default 1 Mi).
    pub chunk_size: u64,
    /// zstd level for the streams (1..=22, default 3).
    pub level: i32,
    /// Compression workers (default 2).
    pub threads: usize,
    /// A bin holding more than this many BAM-encoded bytes is written as a part (default 2 MiB).
    pub part_bytes: usize,
    /// Budget for buffered records before the largest bins are written out (default 512 MiB).
    pub memory: usize,
    /// Where the records came from, recorded in the metadata.
    pub source: Source,
    /// Which codecs the chunks get (default: [`Profile::Default`]).
    pub profile: Profile,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            chunk_size: 1 << 20,
            level: 3,
            threads: 2,
            part_bytes: 2 << 20,
            memory: 512 << 20,
            source: Source {
                file: "-".into(),
                format: "BAM".into(),
                fingerprint: None,
            },
            profile: Profile::Default,
        }
    }
}

impl WriteOptions {
    /// The profile as recorded in `_metadata.json`, the journal and shard manifests: absent
    /// for the default, so datasets of the default profile keep their bytes.
    pub fn profile_field(&self) -> Option<String> {
        (self.profile != Profile::Default).then(|| self.profile.name().to_string())
    }

    /// Checks the options, with a message saying what the allowed values are.
    pub fn validate(&self) -> Result<()> {
        let cs = self.chunk_size;
        if !cs.is_power_of_two() || !((256 << 10)..=(8 << 20)).contains(&cs) {
            return Err(Error::Invalid(format!(
                "chunk size {cs} must be a power of two from 256K to 8M"
            )));
        }
        if !(1..=22).contains(&self.level) {
            return Err(Error::Invalid(format!(
                "compression level {} must be 1..22",
                self.level
            )));
        }
        if self.part_bytes < 4096 {
            return Err(Error::Invalid("part size must be at least 4K".into()));
        }
        let min = self.overhead() + 4 * self.part_bytes;
        if self.memory < min {
            return Err(Error::Invalid(format!(
                "memory budget {} is too small for {} threads and {}-byte parts: at least {} (about {}M) is needed",
                self.memory,
                self.threads,
                self.part_bytes,
                min,
                min.div_ceil(1 << 20)
            )));
        }
        Ok(())
    }

    /// Memory the pipeline needs besides buffered records: parts queued and being encoded
    /// (records, their streams and the compressed object, about 3x the part), and the input
    /// decoder's buffers.
    fn overhead(&self) -> usize {
        let in_flight = 2 * self.threads.max(1) + 1;
        in_flight * 3 * self.part_bytes + (16 << 20)
    }

    /// What is left of the budget for records waiting in bins.
    fn buffer_budget(&self) -> usize {
        self.memory.saturating_sub(self.overhead())
    }
}

/// What a finished conversion wrote.
#[derive(Debug, Clone)]
pub struct WriteSummary {
    /// The committed metadata.
    pub metadata: Metadata,
    /// Total bytes of chunk objects.
    pub stored_bytes: u64,
}

/// Sort key of a bin: references in index order, unplaced records last.
pub(crate) type BinKey = (u32, i64);

/// The bin of a record at `ref_id`/`pos`: `(ref_id, pos / chunk_size)`, with records that have
/// a reference but no position in its first bin (samtools sort puts them first) and records
/// without a reference in the unplaced bin `(u32::MAX, 0)`, which sorts last.
pub(crate) fn bin_key(ref_id: i32, pos: i64, chunk_size: u64) -> BinKey {
    if ref_id < 0 {
        (u32::MAX, 0)
    } else {
        (ref_id as u32, pos.max(0) / chunk_size as i64)
    }
}

struct BinBuf {
    records: Vec<Record>,
    /// BAM-encoded size of `records`.
    bytes: usize,
    /// Memory held by `records`.
    mem: usize,
    /// Whether `records` are already in [`sort_key`] order.
    sorted: bool,
}

struct Job {
    key: BinKey,
    part: u32,
    records: Vec<Record>,
}

/// Writes records into a dataset.
///
/// ```
/// use bams3_core::{dataset::{Dataset, DatasetWriter, WriteOptions}, storage::LocalStorage, Header, Record};
/// use std::sync::Arc;
/// let dir = std::env::temp_dir().join(format!("bams3-writer-doc-{}", std::process::id()));
/// let header = Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n").unwrap();
/// let storage = Arc::new(LocalStorage::new(&dir));
/// let mut w = DatasetWriter::create(storage.clone(), header, WriteOptions::default()).unwrap();
/// w.push(Record::from_sam_fields_for_doc()).unwrap();
/// let summary = w.finish().unwrap();
/// assert_eq!(summary.metadata.statistics.total_reads, 1);
/// let ds = Dataset::open(storage).unwrap();
/// assert_eq!(ds.metadata().statistics.total_reads, 1);
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct DatasetWriter {
    storage: Arc<dyn Storage>,
    header: Header,
    opts: WriteOptions,
    bins: BTreeMap<BinKey, BinBuf>,
    next_part: BTreeMap<BinKey, u32>,
    buffered: usize,
    budget: usize,
    sorted: bool,
    last: (u32, i64),
    jobs: Option<Sender<Job>>,
    results: Receiver<Result<Stored>>,
    workers: Vec<JoinHandle<()>>,
    entries: Vec<(BinKey, ChunkEntry)>,
    /// The htslib stream's pieces of the chunks stored (see `bamstream::pieces`), by path:
    /// cut from the records here, so the commit need not read the chunks back.
    pieces: PieceMap,
    error: Option<Error>,
    /// Writing one shard of a dataset (`crate::shard`): a failure removes only this writer's
    /// chunks, never the dataset-wide objects another process may own.
    shard: bool,
    /// Parts sent to the workers, and results received back.
    sent: u64,
    received: u64,
    /// Bin of the last record pushed.
    last_bin: Option<BinKey>,
    /// The journal of a resumable conversion (`super::journal`), while it can still resume.
    journal: Option<JournalState>,
    /// A journal was started in this location (the commit removes it; so does an abort).
    journaled: bool,
}

/// Where a writer's journal stands.
struct JournalState {
    /// Number of the last checkpoint written.
    seq: u64,
    /// Entries already named by a checkpoint.
    journaled: usize,
    /// Least time between checkpoints, and when the last was written.
    every: Duration,
    last_at: Instant,
}

impl DatasetWriter {
    /// Starts a dataset in empty `storage`; refuses a location that already holds objects.
    pub fn create(storage: Arc<dyn Storage>, header: Header, opts: WriteOptions) -> Result<Self> {
        opts.validate()?;
        if !storage.list("")?.is_empty() {
            return Err(Error::AlreadyExists(storage.root()));
        }
        Ok(Self::start(storage, header, opts, false))
    }

    /// A writer of one shard's chunks into a location other shards share (so it need not be
    /// empty); [`DatasetWriter::finish_shard`] ends it without committing anything.
    pub(crate) fn create_shard(
        storage: Arc<dyn Storage>,
        header: Header,
        opts: WriteOptions,
    ) -> Result<Self> {
        opts.validate()?;
        Ok(Self::start(storage, header, opts, true))
    }

    fn start(storage: Arc<dyn Storage>, header: Header, opts: WriteOptions, shard: bool) -> Self {
        // One thread means one: the parts are encoded on the caller's thread, so a cluster job
        // given one core (a shard worker, `-@ 1`) does not take more.
        let threads = if opts.threads <= 1 { 0 } else { opts.threads };
        let budget = opts.buffer_budget();
        let (job_tx, job_rx) = bounded::<Job>(threads.max(1));
        // Unbounded: entries are small, and a bounded results channel could deadlock with the
        // main thread blocked on a full job channel while workers wait to report.
        let (res_tx, res_rx) = unbounded();
        let workers = (0..threads)
            .map(|_| {
                let rx = job_rx.clone();
                let tx = res_tx.clone();
                let storage = storage.clone();
                let header = header.clone();
                let (level, chunk_size) = (opts.level, opts.chunk_size as i64);
                let profile = opts.profile;
                std::thread::spawn(move || {
                    for job in rx {
                        let r = store_part(&*storage, &header, job, (level, profile), chunk_size);
                        if tx.send(r).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        DatasetWriter {
            storage,
            header,
            opts,
            bins: BTreeMap::new(),
            next_part: BTreeMap::new(),
            buffered: 0,
            budget,
            sorted: true,
            last: (0, i64::MIN),
            jobs: Some(job_tx),
            results: res_rx,
            workers,
            entries: Vec::new(),
            pieces: PieceMap::new(),
            error: None,
            shard,
            sent: 0,
            received: 0,
            last_bin: None,
            journal: None,
            journaled: false,
        }
    }

    /// [`DatasetWriter::create`] for a conversion that can be resumed: writes the journal's
    /// `start` first, then a checkpoint at most every `every` (at a bin boundary, see
    /// [`DatasetWriter::checkpoint_due`]) while the records come sorted.
    ///
    /// ```no_run
    /// use bams3_core::{dataset::*, input::AlignmentInput, storage::LocalStorage};
    /// use std::{sync::Arc, time::Duration};
    /// let mut input = AlignmentInput::open("in.bam", 2).unwrap();
    /// let id = InputIdentity::of("in.bam", &Default::default()).unwrap();
    /// let opts = WriteOptions::default();
    /// let start = JournalStart::new(id, JournalOptions {
    ///     chunk_size: opts.chunk_size, level: opts.level, part_bytes: opts.part_bytes as u64,
    ///     profile: opts.profile_field() });
    /// let storage = Arc::new(LocalStorage::new("out.bams3"));
    /// let header = input.header().clone();
    /// let mut w = DatasetWriter::create_journaled(storage, header, opts, &start,
    ///     Duration::from_secs(5)).unwrap();
    /// let mut n = 0;
    /// while let Some(r) = input.read_record().unwrap() {
    ///     if w.checkpoint_due(&r) {
    ///         w.checkpoint(&r, input.resume_point().unwrap(), n).unwrap();
    ///     }
    ///     w.push(r).unwrap();
    ///     n += 1;
    /// }
    /// w.finish().unwrap();
    /// ```
    pub fn create_journaled(
        storage: Arc<dyn Storage>,
        header: Header,
        opts: WriteOptions,
        start: &JournalStart,
        every: Duration,
    ) -> Result<Self> {
        let mut w = Self::create(storage, header, opts)?;
        w.journaled = true;
        journal::put_start(&*w.storage, start)?;
        w.journal = Some(JournalState {
            seq: 0,
            journaled: 0,
            every,
            last_at: Instant::now(),
        });
        Ok(w)
    }

    /// Continues the conversion `journal` describes in `storage`: keeps the chunks its last
    /// checkpoint names, deletes every other object of the dataset but the journal, and
    /// expects the records from the checkpoint's point on (from the start of the input when
    /// there is no checkpoint, or the journal says to restart). `opts` must be the journal's.
    pub fn resume(
        storage: Arc<dyn Storage>,
        header: Header,
        opts: WriteOptions,
        journal: &Journal,
        every: Duration,
    ) -> Result<Self> {
        opts.validate()?;
        let kept = journal.last.as_ref().filter(|c| !c.restart);
        let mut keep: std::collections::HashSet<String> = kept
            .map(|c| c.chunks.iter().map(|c| c.entry.path.clone()).collect())
            .unwrap_or_default();
        let last_seq = journal.last.as_ref().map_or(0, |c| c.seq);
        keep.insert(format!("{}start.json", journal::JOURNAL_PREFIX));
        if kept.is_some() {
            for seq in 1..=last_seq {
                keep.insert(journal::checkpoint_key(seq));
            }
        }
        for key in storage.list("")? {
            if !keep.contains(&key) {
                storage.delete(&key)?;
            }
        }
        storage.flush()?;
        let mut w = Self::start(storage, header, opts, false);
        w.journaled = true;
        let mut state = JournalState {
            seq: 0,
            journaled: 0,
            every,
            last_at: Instant::now(),
        };
        if let Some(c) = kept {
            w.entries = c
                .chunks
                .iter()
                .map(|c| (c.bin.key(), c.entry.clone()))
                .collect();
            w.last = c.last_order;
            w.last_bin = c.last_bin.map(|b| b.key());
            state.seq = c.seq;
            state.journaled = w.entries.len();
        }
        w.journal = Some(state);
        Ok(w)
    }

    /// Whether [`DatasetWriter::checkpoint`] should be called before pushing `record`: the
    /// writer keeps a journal, the records have come sorted, `record` opens a new bin, and
    /// the last checkpoint is old enough.
    pub fn checkpoint_due(&self, record: &Record) -> bool {
        let Some(j) = &self.journal else {
            return false;
        };
        let key = bin_key(record.ref_id(), record.pos() as i64, self.opts.chunk_size);
        self.sorted && self.last_bin.is_some_and(|b| key > b) && j.last_at.elapsed() >= j.every
    }

    /// Writes a checkpoint: `record`, not yet pushed, starts at `point` in the input, after
    /// `records` records. The bins before it are written out (as pushing it would do), every
    /// part is waited for and flushed, then the checkpoint object is put.
    pub fn checkpoint(&mut self, record: &Record, point: ResumePoint, records: u64) -> Result<()> {
        if self.journal.is_none() || !self.sorted {
            return Ok(());
        }
        let key = bin_key(record.ref_id(), record.pos() as i64, self.opts.chunk_size);
        self.flush_before(key)?;
        self.wait_idle()?;
        self.storage.flush()?;
        let Some(j) = self.journal.as_mut() else {
            return Ok(());
        };
        let mut new: Vec<(BinKey, ChunkEntry)> = self.entries[j.journaled..].to_vec();
        new.sort_by_key(|(k, e)| (*k, e.part));
        let c = Checkpoint {
            seq: j.seq + 1,
            restart: false,
            next: Some(point),
            records,
            last_bin: self.last_bin.map(Into::into),
            last_order: self.last,
            chunks: new
                .into_iter()
                .map(|(bin, entry)| crate::shard::ShardChunk {
                    bin: bin.into(),
                    entry,
                })
                .collect(),
        };
        journal::put_checkpoint(&*self.storage, &c)?;
        j.seq = c.seq;
        j.journaled = self.entries.len();
        j.last_at = Instant::now();
        Ok(())
    }

    /// The input is not sorted after all: nothing before can be kept, so the journal says to
    /// start again, and no more checkpoints come.
    fn journal_restart(&mut self) -> Result<()> {
        let Some(j) = self.journal.take() else {
            return Ok(());
        };
        let c = Checkpoint {
            seq: j.seq + 1,
            restart: true,
            next: None,
            records: 0,
            last_bin: None,
            last_order: (0, i64::MIN),
            chunks: Vec::new(),
        };
        journal::put_checkpoint(&*self.storage, &c)
    }

    /// Whether a checkpoint can still be written (a journal is kept and the input is sorted).
    pub fn journaling(&self) -> bool {
        self.journal.is_some()
    }

    /// Waits for every part sent to the workers.
    fn wait_idle(&mut self) -> Result<()> {
        while self.received < self.sent {
            match self.results.recv() {
                Ok(r) => self.take_result(r),
                Err(_) => break,
            }
        }
        self.take_error()
    }

    /// The header being written.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Adds one record. Records may come in any order.
    pub fn push(&mut self, record: Record) -> Result<()> {
        let ref_id = record.ref_id();
        if ref_id >= 0 && ref_id as usize >= self.header.references.len() {
            return Err(Error::corrupt(
                "input",
                format!(
                    "record '{}' refers to reference #{ref_id}, which the header does not define",
                    String::from_utf8_lossy(record.name())
                ),
            ));
        }
        let pos = record.pos() as i64;
        // Records with a reference but no position sort first in their reference, as samtools
        // sort puts them; records without a reference go to the unplaced chunks.
        let key = bin_key(ref_id, pos, self.opts.chunk_size);
        let order = (key.0, if ref_id < 0 { 0 } else { pos });
        self.last_bin = Some(key);
        if order < self.last {
            self.sorted = false;
            self.journal_restart()?;
        } else {
            self.last = order;
            if self.sorted {
                self.flush_before(key)?;
            }
        }
        let size = record.as_bytes().len() + 4;
        // In memory a record also costs its Vec and the allocator's bookkeeping.
        let mem = size + 44;
        let bin = self.bins.entry(key).or_insert_with(|| BinBuf {
            records: Vec::new(),
            bytes: 0,
            mem: 0,
            sorted: true,
        });
        if let Some(prev) = bin.records.last()
            && sort_key(prev) > sort_key(&record)
        {
            bin.sorted = false;
        }
        bin.records.push(record);
        bin.bytes += size;
        bin.mem += mem;
        self.buffered += mem;
        if bin.bytes >= self.opts.part_bytes {
            self.flush_bin(key)?;
        }
        while self.buffered > self.budget {
            let largest = self.bins.iter().max_by_key(|(_, b)| b.mem).map(|(k, _)| *k);
            match largest {
                Some(k) => self.flush_bin(k)?,
                None => break,
            }
        }
        self.collect_results(false)
    }

    /// Writes out every buffered bin before `key` (sorted input has moved past them).
    fn flush_before(&mut self, key: BinKey) -> Result<()> {
        let done: Vec<BinKey> = self.bins.range(..key).map(|(k, _)| *k).collect();
        for k in done {
            self.flush_bin(k)?;
        }
        Ok(())
    }

    fn flush_bin(&mut self, key: BinKey) -> Result<()> {
        let Some(mut bin) = self.bins.remove(&key) else {
            return Ok(());
        };
        self.buffered -= bin.mem;
        // Sorted input keeps its own order (what `samtools view` of it shows); otherwise
        if !self.sorted && !bin.sorted {
            // samtools sort's order: position, then forward before reverse strand, then input
            // order (the sort is stable, and earlier parts hold earlier input).
            bin.records.sort_by_key(sort_key);
        }
        let part = self.next_part.entry(key).or_insert(0);
        let job = Job {
            key,
            part: *part,
            records: bin.records,
        };
        *part += 1;
        self.sent += 1;
        if self.workers.is_empty() && self.jobs.is_some() {
            let r = store_part(
                &*self.storage,
                &self.header,
                job,
                (self.opts.level, self.opts.profile),
                self.opts.chunk_size as i64,
            );
            self.take_result(r);
            return self.take_error();
        }
        let sent = self.jobs.as_ref().map(|tx| tx.send(job));
        if !matches!(sent, Some(Ok(()))) {
            // A worker died; its error is waiting in the results.
            self.collect_results(true)?;
            return Err(Error::Internal("chunk writer stopped".into()));
        }
        Ok(())
    }

    fn collect_results(&mut self, wait: bool) -> Result<()> {
        loop {
            let r = if wait {
                match self.results.recv() {
                    Ok(r) => r,
                    Err(_) => break,
                }
            } else {
                match self.results.try_recv() {
                    Ok(r) => r,
                    Err(_) => break,
                }
            };
            self.take_result(r);
        }
        self.take_error()
    }

    /// The first error a part met, once.
    fn take_error(&mut self) -> Result<()> {
        self.error.take().map_or(Ok(()), Err)
    }

    fn take_result(&mut self, r: Result<Stored>) {
        self.received += 1;
        match r {
            Ok((e, pieces)) => {
                if pieces.len() > 1 {
                    self.pieces.insert(e.1.path.clone(), pieces);
                }
                self.entries.push(e);
            }
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
        }
    }

    /// Writes the remaining bins, then the header, the index and, last, the metadata.
    /// A journaled writer that fails keeps what it stored, for `convert --resume`; once
    /// committed, its journal is removed.
    pub fn finish(mut self) -> Result<WriteSummary> {
        let r = self.finish_inner();
        match &r {
            Err(_) if !self.journaled => self.cleanup(),
            Err(_) => self.stop_workers(),
            // The dataset is complete either way; a journal left behind is ignored by
            // readers and removed by `convert --resume` and `bams3 rm`.
            Ok(_) if self.journaled => {
                let _ = journal::delete(&*self.storage);
            }
            Ok(_) => {}
        }
        r
    }

    fn finish_inner(&mut self) -> Result<WriteSummary> {
        self.drain()?;
        commit(
            &*self.storage,
            &self.header,
            &self.opts,
            &self.entries,
            self.sorted,
            std::mem::take(&mut self.pieces),
        )
    }

    /// Ends a shard writer: every chunk stored (flushed), nothing committed. Returns the
    /// chunks in index order with their bins, and whether the records arrived sorted. On
    /// failure the chunks already written are removed.
    pub(crate) fn finish_shard(mut self) -> Result<(Vec<(BinKey, ChunkEntry)>, bool)> {
        let r = self.drain().and_then(|()| self.storage.flush());
        if let Err(e) = r {
            self.cleanup();
            return Err(e);
        }
        Ok((std::mem::take(&mut self.entries), self.sorted))
    }

    /// Writes the remaining bins and waits for every chunk.
    fn drain(&mut self) -> Result<()> {
        let keys: Vec<BinKey> = self.bins.keys().copied().collect();
        for k in keys {
            self.flush_bin(k)?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.collect_results(true)?;
        self.entries.sort_by_key(|(key, e)| (*key, e.part));
        Ok(())
    }

    /// Stops writing and removes what was written, leaving no dataset behind.
    pub fn abort(mut self) {
        self.cleanup();
    }

    /// Stops writing and keeps what was stored with its journal, so `convert --resume` can
    /// continue; a writer without a journal is aborted instead. Returns whether a resumable
    /// incomplete dataset was left.
    pub fn suspend(mut self) -> bool {
        if !self.journaled {
            self.cleanup();
            return false;
        }
        self.stop_workers();
        let _ = self.storage.flush();
        true
    }

    fn stop_workers(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let _ = self.collect_results(true);
    }

    fn cleanup(&mut self) {
        self.stop_workers();
        for (_, e) in &self.entries {
            let _ = self.storage.delete(&e.path);
        }
        if self.shard {
            return;
        }
        let _ = self.storage.delete(metadata::INDEX_KEY);
        let _ = self.storage.delete(metadata::HEADER_KEY);
        crate::bamstream::objects::delete(&*self.storage);
        if self.journaled {
            let _ = journal::delete(&*self.storage);
        }
    }
}

impl Drop for DatasetWriter {
    fn drop(&mut self) {
        // Dropped without finish(): stop the workers; never commit.
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The commit of a dataset whose chunks are all stored: `_header.json`, the index and its
/// sections, the htslib stream objects, a flush barrier, then `_metadata.json` last. `entries`
/// are in index order (bin, then part). One function for [`DatasetWriter::finish`] and
/// `bams3 finalize` (`crate::shard`), so a sharded conversion commits byte for byte the index
/// a single process writes.
pub(crate) fn commit(
    storage: &dyn Storage,
    header: &Header,
    opts: &WriteOptions,
    entries: &[(BinKey, ChunkEntry)],
    sorted: bool,
    pieces: PieceMap,
) -> Result<WriteSummary> {
    let mut stats = Statistics::default();
    let mut stored_bytes = 0;
    let mut index = SpatialIndex::empty(header, metadata::FORMAT_VERSION, opts.chunk_size);
    for (key, e) in entries {
        stats.total_reads += e.count;
        stats.unmapped_reads += e.unmapped;
        stats.duplicate_reads += e.duplicates;
        stats.secondary_reads += e.secondary;
        stats.total_bases += e.bases;
        stored_bytes += e.stored_bytes;
        // Unplaced bins have key u32::MAX, which names no reference.
        index.push(key.0 as i64, e.clone());
    }
    stats.mapped_reads = stats.total_reads - stats.unmapped_reads;
    let (index_json, index_sections) = index.to_json_with_sections();
    let metadata = Metadata {
        format: "bams3".into(),
        version: metadata::FORMAT_VERSION.into(),
        created: metadata::now_rfc3339(),
        created_by: format!("bams3 {}", env!("CARGO_PKG_VERSION")),
        source: opts.source.clone(),
        statistics: stats,
        chunk_size: opts.chunk_size,
        compression: Compression {
            algorithm: "zstd".into(),
            level: opts.level,
            profile: opts.profile_field(),
        },
        chunk_count: entries.len() as u64,
        sorted_input: sorted,
        index_sections,
        header: Some(header.clone()),
    };
    let mut header_json = serde_json::to_vec_pretty(header).expect("header serialises");
    header_json.push(b'\n');
    storage.put(metadata::HEADER_KEY, &header_json)?;
    storage.put(metadata::INDEX_KEY, &index_json)?;
    crate::bamstream::objects::write(storage, header, &index, sorted, pieces)?;
    // The commit: `_metadata.json` claims every object above exists, so it is written only
    // once the store confirms them all, and the conversion succeeds only once it is stored.
    storage.flush()?;
    storage.put(metadata::METADATA_KEY, &metadata.to_json())?;
    storage.flush()?;
    Ok(WriteSummary {
        metadata,
        stored_bytes,
    })
}

/// Coordinate order within a reference, as `samtools sort` (`bam1_cmp_core`) has it.
pub(crate) fn sort_key(r: &Record) -> (i32, bool) {
    (r.pos(), r.flag() & 0x10 != 0)
}

/// A stored chunk: its bin and index entry, and its pieces in the htslib stream.
type Stored = ((BinKey, ChunkEntry), Vec<Piece>);

fn store_part(
    storage: &dyn Storage,
    header: &Header,
    job: Job,
    (level, profile): (i32, Profile),
    chunk_size: i64,
) -> Result<Stored> {
    let encoded = chunk::encode_profile(&job.records, level, profile)?;
    let (reference, start, end) = if job.key.0 == u32::MAX {
        (None, 0, 0)
    } else {
        let name = header.references[job.key.0 as usize].name.as_str();
        (
            Some(name),
            job.key.1 * chunk_size,
            (job.key.1 + 1) * chunk_size,
        )
    };
    let path = chunk_key(reference, start, end, job.part);
    storage.put(&path, &encoded.bytes)?;
    let entry = ChunkEntry::new(
        path,
        (start, end, job.part),
        &encoded.stats,
        &encoded.header.streams,
        &encoded.bytes,
    );
    Ok(((job.key, entry), pieces::of_records(&job.records)))
}
