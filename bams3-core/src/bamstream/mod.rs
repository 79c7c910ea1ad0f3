//! A dataset as a BAM byte stream, and a CSI index of that stream, for htslib's hFILE plugin.
//!
//! The stream is a valid coordinate-sorted BAM made of *stored* (uncompressed) BGZF blocks:
//! the header, then each [`Unit`] (a chunk, or a bin with its parts merged for datasets from
//! unsorted input) cut into blocks of its own, then the EOF block. A stored block of `n` bytes
//! takes `n + 31`, so where every unit lies follows from the index's `raw_bytes` alone
//! ([`Layout`]), and a read at any offset decodes only the unit that covers it.
//!
//! ```no_run
//! use bams3_core::{bamstream::BamStream, dataset::Dataset, storage::LocalStorage};
//! use std::sync::Arc;
//! let ds = Dataset::open(Arc::new(LocalStorage::new("sample.bams3"))).unwrap();
//! let mut stream = BamStream::new(ds).unwrap();
//! let mut buf = vec![0u8; 32 << 10];
//! let n = stream.read(0, &mut buf).unwrap();
//! assert_eq!(&buf[..4], &[0x1f, 0x8b, 8, 4]); // a BGZF block
//! # let _ = n;
//! ```

pub mod csi;
mod framing;
mod layout;
pub mod objects;
pub mod pieces;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use bytes::Bytes;

pub use framing::{BLOCK_DATA, BLOCK_OVERHEAD, frame, framed_len, push_block};
pub use layout::{Layout, Unit, bam_header};
pub use objects::PagedLayout;

use crate::chunk::Fields;
use crate::dataset::{ChunkRanges, Dataset};
use crate::index::ChunkEntry;
use crate::{Error, Record, Result};

/// What a `bams3:` URL names: a dataset's BAM stream, or the CSI index of that stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The BAM stream of the dataset at this location (a path or `s3://bucket/prefix`).
    Bam(String),
    /// The CSI of the dataset at this location (htslib asks for `<url>.csi`).
    Csi(String),
}

/// Maps a plugin URL to a dataset location: `bams3:///abs/path` to `/abs/path` and
/// `bams3+s3://bucket/prefix` to `s3://bucket/prefix`; a trailing `.csi` names the index.
///
/// ```
/// use bams3_core::bamstream::{parse_url, Target};
/// assert_eq!(parse_url("bams3:///d/x.bams3").unwrap(), Target::Bam("/d/x.bams3".into()));
/// assert_eq!(parse_url("bams3+s3://b/p/x.csi").unwrap(), Target::Csi("s3://b/p/x".into()));
/// assert!(parse_url("bams3://host/x").is_err());
/// ```
pub fn parse_url(url: &str) -> Result<Target> {
    let location = if let Some(rest) = url.strip_prefix("bams3+s3://") {
        if rest.is_empty() || rest.starts_with('/') {
            return Err(Error::Invalid(format!(
                "{url}: expected bams3+s3://bucket/prefix"
            )));
        }
        format!("s3://{}", rest.trim_end_matches('/'))
    } else if let Some(rest) = url.strip_prefix("bams3://") {
        if !rest.starts_with('/') {
            return Err(Error::Invalid(format!(
                "{url}: expected bams3:///absolute/path (three slashes)"
            )));
        }
        let path = rest.trim_end_matches('/');
        if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        }
    } else {
        return Err(Error::Invalid(format!(
            "{url}: not a bams3:// or bams3+s3:// URL"
        )));
    };
    Ok(match location.strip_suffix(".csi") {
        Some(ds) if !ds.ends_with('/') && !ds.is_empty() => Target::Csi(ds.to_string()),
        _ => Target::Bam(location),
    })
}

/// The message for a dataset the stream cannot serve (upstream v0.1/v0.2 formats).
fn refuse_legacy(ds: &Dataset) -> Result<()> {
    if ds.is_legacy() {
        return Err(Error::Invalid(format!(
            "{}: a v0.{} dataset records no BAM sizes; convert it with `bams3 upgrade OLD NEW` to read it with htslib",
            ds.storage().root(),
            ds.metadata()
                .version
                .trim_start_matches("0.")
                .chars()
                .next()
                .unwrap_or('?')
        )));
    }
    Ok(())
}

/// The layout of an open dataset's stream, from its index.
pub fn layout_of(ds: &Dataset) -> Result<Layout> {
    refuse_legacy(ds)?;
    Ok(Layout::new(
        ds.header(),
        ds.index()?,
        ds.metadata().sorted_input,
    ))
}

/// The `.csi` file of an open dataset's stream: the stored `_index/htslib.csi` when the
/// dataset has one, else built from the index.
pub fn csi_of(ds: &Dataset) -> Result<Vec<u8>> {
    refuse_legacy(ds)?;
    match objects::read_csi(ds)? {
        Some(csi) => Ok(csi),
        None => Ok(csi::build(&layout_of(ds)?)),
    }
}

/// The chunk entries of a unit: from the index sections near the unit's bin when the dataset
/// has them (its index is then read whole only by what needs every entry), else from the index.
fn unit_entries(ds: &Dataset, u: &Unit) -> Result<Vec<ChunkEntry>> {
    let (a, n) = (u.first_chunk as usize, u.n_chunks as usize);
    let missing = || Error::corrupt(ds.storage().root(), "stream layout names a missing chunk");
    if !ds.metadata().index_sections.is_empty() {
        let entries: Vec<ChunkEntry> = match usize::try_from(u.reference) {
            Ok(r) => ds
                .chunks(
                    Some(r),
                    Some((u.bin_start.min(u.first_pos), u.bin_end.max(u.max_end))),
                )?
                .into_iter()
                .filter(|e| e.bin_start == u.bin_start && u.part.is_none_or(|p| p == e.part))
                .collect(),
            Err(_) => ds
                .chunks(None, None)?
                .get(a..a + n)
                .ok_or_else(missing)?
                .to_vec(),
        };
        if entries.len() != n {
            return Err(missing());
        }
        return Ok(entries);
    }
    let index = ds.index()?;
    let list = match usize::try_from(u.reference) {
        Ok(r) => index.references.get(r).map_or(&[][..], |r| &r.chunks),
        Err(_) => &index.unmapped,
    };
    list.get(a..a + n)
        .map(<[ChunkEntry]>::to_vec)
        .ok_or_else(missing)
}

fn push_record(out: &mut Vec<u8>, r: &Record) {
    let b = r.as_bytes();
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Whether unit `u` of chunk `e` is a piece of it rather than the whole chunk.
fn is_piece(u: &Unit, e: &ChunkEntry) -> bool {
    u.part.is_some() && (u.first_record > 0 || u.count < e.count)
}

/// The BAM-encoded records of a unit (`block_size` and record, one after the other), in
/// coordinate order, checked against the size the layout gave it.
pub fn unit_bytes(ds: &Dataset, u: &Unit) -> Result<Vec<u8>> {
    units_bytes(ds, u, &unit_entries(ds, u)?)
}

/// [`unit_bytes`] of a unit whose chunk entries are at hand.
fn units_bytes(ds: &Dataset, u: &Unit, entries: &[ChunkEntry]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(u.raw as usize);
    if let [e] = entries
        && is_piece(u, e)
    {
        let mut c = ChunkRanges::open(&**ds.storage(), e)?;
        append_piece(ds, &mut c, u, &mut out)?;
        check_raw(ds, e, u, &out)?;
        return Ok(out);
    }
    if entries.len() == 1 || u.part.is_some() {
        for e in entries {
            for r in ds.read_chunk(e, Fields::ALL)?.records() {
                push_record(&mut out, &r?);
            }
        }
    } else {
        // Parts of unsorted input: merged as a query merges them (position, then forward
        // strand first as `samtools sort`, then parts in order of their first position).
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| (entries[i].first_pos, i));
        let mut iters = Vec::with_capacity(order.len());
        let mut heap = BinaryHeap::new();
        for (rank, &i) in order.iter().enumerate() {
            let mut it = ds.read_chunk(&entries[i], Fields::ALL)?.into_records();
            if let Some(r) = it.next().transpose()? {
                heap.push(Reverse((r.pos(), r.flag() & 0x10 != 0, rank)));
                iters.push((it, Some(r)));
            } else {
                iters.push((it, None));
            }
        }
        while let Some(Reverse((_, _, rank))) = heap.pop() {
            let (it, head) = &mut iters[rank];
            let r = head.take().expect("a queued part has a head record");
            push_record(&mut out, &r);
            if let Some(next) = it.next().transpose()? {
                heap.push(Reverse((next.pos(), next.flag() & 0x10 != 0, rank)));
                *head = Some(next);
            }
        }
    }
    if let Some(e) = entries.first() {
        check_raw(ds, e, u, &out)?;
    }
    Ok(out)
}

/// Appends the records of piece `u` from its chunk `c`.
fn append_piece(ds: &Dataset, c: &mut ChunkRanges, u: &Unit, out: &mut Vec<u8>) -> Result<()> {
    let a = usize::try_from(u.first_record).unwrap_or(usize::MAX);
    let b = a.saturating_add(usize::try_from(u.count).unwrap_or(usize::MAX));
    c.append_bam(&**ds.storage(), a..b, out)
}

/// Checks that a unit's records took the bytes the layout gave them (else every offset after
/// them would be wrong).
fn check_raw(ds: &Dataset, e: &ChunkEntry, u: &Unit, out: &[u8]) -> Result<()> {
    if out.len() as u64 != u.raw {
        return Err(Error::corrupt(
            format!("{}/{}", ds.storage().root(), e.path),
            format!(
                "records take {} bytes as BAM but the index's raw_bytes (or the layout table) say {}: the BAM stream layout would be wrong",
                out.len(),
                u.raw
            ),
        ));
    }
    Ok(())
}

/// Where the stream is served from: the bytes of one segment and the block last framed.
enum Segment {
    Header,
    Unit(usize, Bytes),
}

/// Where a stream finds its units: a layout computed from the whole index, or the stored
/// layout table read page by page.
enum Table {
    Memory(Layout),
    Paged(PagedLayout),
}

impl Table {
    fn total_len(&self) -> u64 {
        match self {
            Table::Memory(l) => l.total_len(),
            Table::Paged(p) => p.total_len(),
        }
    }
    fn header_end(&self) -> u64 {
        match self {
            Table::Memory(l) => l.header_end(),
            Table::Paged(p) => p.header_end(),
        }
    }
    fn records_end(&self) -> u64 {
        match self {
            Table::Memory(l) => l.records_end(),
            Table::Paged(p) => p.records_end(),
        }
    }
    fn len(&self) -> usize {
        match self {
            Table::Memory(l) => l.units.len(),
            Table::Paged(p) => p.len(),
        }
    }
    fn get(&self, i: usize) -> Result<Unit> {
        match self {
            Table::Memory(l) => Ok(l.units[i].clone()),
            Table::Paged(p) => p.get(i),
        }
    }
    fn unit_at(&self, at: u64) -> Result<Option<(usize, Unit)>> {
        match self {
            Table::Memory(l) => Ok(l.unit_at(at).map(|i| (i, l.units[i].clone()))),
            Table::Paged(p) => p.unit_at(at),
        }
    }
}

/// A dataset served as a BAM byte stream, read at any offset.
///
/// Memory is bounded by about four chunks: the one whose pieces are being read (decoded as
/// they are asked for, so a region query decodes from the piece it seeks to, not from the
/// chunk's start), and, once reads run on through whole chunks (a whole-file read), the one
/// being served and the next two, decoded ahead on threads of their own.
pub struct BamStream {
    ds: Arc<Dataset>,
    table: Table,
    header: Vec<u8>,
    current: Option<(usize, Bytes)>,
    /// Units decoded ahead, in order.
    ready: VecDeque<(usize, Bytes)>,
    /// The chunks being decoded ahead, in order: each one's first unit and, to come, its
    /// units' bytes.
    ahead: VecDeque<(usize, Receiver<Result<UnitBytes>>)>,
    /// The chunk whose pieces are read on this thread, by (reference, chunk number).
    lazy: Option<((i32, u32), ChunkRanges)>,
    /// Chunks entered in a row by reading on from the previous one.
    run: u32,
    /// The last block framed: its segment key (`usize::MAX` for the header), index and bytes.
    block: Option<(usize, usize, Vec<u8>)>,
}

/// The bytes of a run of units, one (shared, cheaply cut) buffer each.
type UnitBytes = Vec<Bytes>;

/// Chunks decoded ahead at once in a whole-file read, each on its own thread: htslib's reading
/// of a stored stream costs little, so with two cores two decoders keep it fed.
const AHEAD: usize = 2;

/// Whether two units belong to the same chunk (pieces of it).
fn same_chunk(a: &Unit, b: &Unit) -> bool {
    a.part.is_some() && (a.reference, a.first_chunk) == (b.reference, b.first_chunk)
}

/// The bytes of `units` (a whole chunk's pieces, or one unit), decoded in one pass.
fn chunk_units_bytes(ds: &Dataset, units: &[Unit]) -> Result<UnitBytes> {
    let [first, ..] = units else {
        return Ok(Vec::new());
    };
    if units.len() == 1 {
        return Ok(vec![Bytes::from(unit_bytes(ds, first)?)]);
    }
    let whole = Unit {
        first_record: 0,
        count: units.iter().map(|u| u.count).sum(),
        unmapped: units.iter().map(|u| u.unmapped).sum(),
        raw: units.iter().map(|u| u.raw).sum(),
        ..first.clone()
    };
    let bytes = Bytes::from(unit_bytes(ds, &whole)?);
    let mut at = 0usize;
    Ok(units
        .iter()
        .map(|u| {
            let piece = bytes.slice(at..at + u.raw as usize);
            at += u.raw as usize;
            piece
        })
        .collect())
}

impl BamStream {
    /// The stream of an open v0.3 dataset (upstream v0.1/v0.2 datasets are refused with a
    /// message naming `bams3 upgrade`). Its layout comes from the stored layout table when the
    /// dataset has one (a few small reads), else from the whole index.
    pub fn new(ds: Arc<Dataset>) -> Result<BamStream> {
        refuse_legacy(&ds)?;
        let header = bam_header(ds.header());
        let table = match PagedLayout::open(ds.storage().clone(), header.len() as u64)? {
            Some(p) => Table::Paged(p),
            None => Table::Memory(layout_of(&ds)?),
        };
        Ok(BamStream {
            ds,
            table,
            header,
            current: None,
            ready: VecDeque::new(),
            ahead: VecDeque::new(),
            lazy: None,
            run: 0,
            block: None,
        })
    }

    /// Whether the layout came from the stored table rather than the index.
    pub fn uses_stored_layout(&self) -> bool {
        matches!(self.table, Table::Paged(_))
    }

    /// Units in the stream.
    pub fn units(&self) -> usize {
        self.table.len()
    }

    /// Unit `i`.
    pub fn unit_info(&self, i: usize) -> Result<Unit> {
        self.table.get(i)
    }

    /// Size of the stream in bytes.
    pub fn len(&self) -> u64 {
        self.table.total_len()
    }

    /// Whether the stream is empty (never: it has a header and an EOF block).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The units of the chunk that starts at unit `j`, and where the next chunk starts.
    fn chunk_at(&self, j: usize) -> Result<(Vec<Unit>, usize)> {
        let first = self.table.get(j)?;
        let mut units = vec![first];
        let mut k = j + 1;
        while k < self.table.len() {
            let u = self.table.get(k)?;
            if u.first_record == 0 || !same_chunk(&units[0], &u) {
                break;
            }
            units.push(u);
            k += 1;
        }
        Ok((units, k))
    }

    /// Starts decoding, each on a thread of its own, the [`AHEAD`] chunks after the one that
    /// starts at unit `i` (those not decoded or on their way already).
    fn decode_ahead(&mut self, i: usize) -> Result<()> {
        let (_, mut j) = self.chunk_at(i)?;
        for _ in 0..AHEAD {
            if j >= self.table.len() {
                break;
            }
            let (units, next) = self.chunk_at(j)?;
            let queued = self.ahead.iter().any(|(k, _)| *k == j)
                || self.ready.back().is_some_and(|(k, _)| *k >= j);
            if !queued {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let ds = self.ds.clone();
                let spawned = std::thread::Builder::new()
                    .name("bams3-stream-ahead".into())
                    .spawn(move || {
                        let _ = tx.send(chunk_units_bytes(&ds, &units));
                    });
                if spawned.is_err() {
                    break;
                }
                self.ahead.push_back((j, rx));
            }
            j = next;
        }
        Ok(())
    }

    /// Unit `i`'s bytes decoded on this thread: a piece from the chunk kept open for its
    /// pieces (opened when the piece is of another chunk), anything else on its own.
    fn decode_here(&mut self, u: &Unit) -> Result<Bytes> {
        let key = (u.reference, u.first_chunk);
        let open = u.part.is_some() && self.lazy.as_ref().is_some_and(|(k, _)| *k == key);
        if !open {
            let entries = unit_entries(&self.ds, u)?;
            match &entries[..] {
                [e] if is_piece(u, e) => {
                    self.lazy = Some((key, ChunkRanges::open(&**self.ds.storage(), e)?));
                }
                _ => return units_bytes(&self.ds, u, &entries).map(Bytes::from),
            }
        }
        let (_, c) = self.lazy.as_mut().expect("the unit's chunk is open");
        let mut out = Vec::with_capacity(u.raw as usize);
        append_piece(&self.ds, c, u, &mut out)?;
        check_raw(&self.ds, c.entry(), u, &out)?;
        Ok(Bytes::from(out))
    }

    fn unit(&mut self, i: usize, u: &Unit) -> Result<Bytes> {
        if let Some((j, data)) = &self.current
            && *j == i
        {
            return Ok(data.clone());
        }
        let sequential = self.current.as_ref().is_some_and(|(j, _)| *j + 1 == i);
        // Reads that run on into a new chunk, twice in a row, are a whole-file read: from then
        // on the next chunk is decoded ahead. A region query that seeks to a piece and reads
        // on through one chunk boundary does not pay for it.
        if !sequential {
            self.run = 0;
        } else if u.first_record == 0 {
            self.run += 1;
        }
        while self.ready.front().is_some_and(|(j, _)| *j < i) {
            self.ready.pop_front();
        }
        while self.ahead.front().is_some_and(|(j, _)| *j < i) {
            self.ahead.pop_front();
        }
        if self.ready.is_empty()
            && let Some((j, _)) = self.ahead.front()
            && *j == i
        {
            let (j, rx) = self.ahead.pop_front().expect("checked");
            // A thread that died left nothing: decode here below.
            if let Ok(r) = rx.recv() {
                for (k, bytes) in r?.into_iter().enumerate() {
                    self.ready.push_back((j + k, bytes));
                }
            }
        }
        let data = match self.ready.front() {
            Some((j, _)) if *j == i => self.ready.pop_front().expect("checked").1,
            _ => self.decode_here(u)?,
        };
        self.current = Some((i, data.clone()));
        if self.run >= 2 && u.first_record == 0 {
            self.decode_ahead(i)?;
        }
        Ok(data)
    }

    /// Copies stream bytes from `offset` into `buf`, as `pread(2)`: returns how many (at most
    /// one block's worth; 0 at or past the end).
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let total = self.table.total_len();
        if offset >= total || buf.is_empty() {
            return Ok(0);
        }
        let records_end = self.table.records_end();
        if offset >= records_end {
            let eof = &crate::bam::BGZF_EOF[(offset - records_end) as usize..];
            let n = eof.len().min(buf.len());
            buf[..n].copy_from_slice(&eof[..n]);
            return Ok(n);
        }
        let (segment, start) = if offset < self.table.header_end() {
            (Segment::Header, 0)
        } else {
            let (i, u) = self.table.unit_at(offset)?.ok_or_else(|| {
                Error::corrupt(
                    self.ds.storage().root(),
                    format!("stream layout: no unit at offset {offset}"),
                )
            })?;
            (Segment::Unit(i, self.unit(i, &u)?), u.offset)
        };
        let rel = offset - start;
        let (b, block_start) = framing::block_at(rel);
        let key = match &segment {
            Segment::Header => usize::MAX,
            Segment::Unit(i, _) => *i,
        };
        if !matches!(&self.block, Some((k, j, _)) if *k == key && *j == b) {
            let data: &[u8] = match &segment {
                Segment::Header => &self.header,
                Segment::Unit(_, d) => d,
            };
            let piece = &data[b * BLOCK_DATA..((b + 1) * BLOCK_DATA).min(data.len())];
            let mut framed = match self.block.take() {
                Some((_, _, mut v)) => {
                    v.clear();
                    v
                }
                None => Vec::with_capacity(BLOCK_DATA + BLOCK_OVERHEAD),
            };
            push_block(&mut framed, piece);
            self.block = Some((key, b, framed));
        }
        let framed = &self.block.as_ref().expect("block just framed").2;
        let within = (rel - block_start) as usize;
        let n = (framed.len() - within).min(buf.len());
        buf[..n].copy_from_slice(&framed[within..within + n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
