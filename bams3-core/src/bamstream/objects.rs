//! The two small objects the htslib plugin reads instead of the whole index: the stream
//! layout table (`_index/htslib.layout`) and the CSI of the stream (`_index/htslib.csi`),
//! written with the dataset just before `_metadata.json` (see `docs/FORMAT.md`, section
//! "htslib stream objects").
//!
//! The layout table is paged so that a reader on S3 fetches its fixed header and page
//! directory with one ranged GET at open, then one page (1,024 units, 90 kB) per region of the
//! stream it reads: a dataset of 100,000 chunks opens with a few small GETs.

use std::sync::{Arc, Mutex};

use super::csi;
use super::layout::{Layout, Unit};
use super::pieces::{self, PieceMap};
use crate::dataset::Dataset;
use crate::index::ChunkEntry;
use crate::storage::Storage;
use crate::{Error, Result};

/// Key of the layout table.
pub const LAYOUT_KEY: &str = "_index/htslib.layout";
/// Key of the CSI.
pub const CSI_KEY: &str = "_index/htslib.csi";

const MAGIC: &[u8; 8] = b"BAMS3LAY";
/// Version 2 added each unit's first record in its chunk (units may be pieces of chunks);
/// version 1 tables (whole chunks only) are still read.
const VERSION: u32 = 2;
/// Units per page.
pub const PAGE_UNITS: usize = 1024;
/// Bytes of the fixed header.
const HEAD: usize = 64;
/// Bytes of a page directory entry: first unit's stream offset, CRC-32 of the page, padding.
const DIR_ENTRY: usize = 16;
/// Bytes of a unit record (version 1: 80, without the first record).
const UNIT: usize = 88;
const UNIT_V1: usize = 80;
/// What a reader fetches first: the header and, for tables of up to ~4,000 pages, the whole
/// directory (a larger directory takes a second GET).
const FIRST_GET: u64 = 64 << 10;

fn put_unit(out: &mut Vec<u8>, u: &Unit, version: u32) {
    out.extend_from_slice(&u.reference.to_le_bytes());
    out.extend_from_slice(&u.part.map_or(-1i64, i64::from).to_le_bytes()[..4]);
    out.extend_from_slice(&u.first_chunk.to_le_bytes());
    out.extend_from_slice(&u.n_chunks.to_le_bytes());
    for v in [u.bin_start, u.bin_end, u.first_pos, u.max_end] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [u.count, u.unmapped, u.raw, u.offset] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if version >= 2 {
        out.extend_from_slice(&u.first_record.to_le_bytes());
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn get_unit(b: &[u8]) -> Unit {
    let i64_at = |at| u64_at(b, at) as i64;
    let part = u32_at(b, 4) as i32;
    Unit {
        reference: u32_at(b, 0) as i32,
        part: (part >= 0).then_some(part as u32),
        first_chunk: u32_at(b, 8),
        n_chunks: u32_at(b, 12),
        bin_start: i64_at(16),
        bin_end: i64_at(24),
        first_pos: i64_at(32),
        max_end: i64_at(40),
        count: u64_at(b, 48),
        unmapped: u64_at(b, 56),
        raw: u64_at(b, 64),
        offset: u64_at(b, 72),
        first_record: if b.len() >= UNIT { u64_at(b, 80) } else { 0 },
    }
}

/// The layout table of `layout`, whose CSI is `csi`.
pub fn encode_layout(layout: &Layout, csi: &[u8]) -> Vec<u8> {
    encode_layout_as(layout, csi, VERSION)
}

/// The layout table in table version `version` (1 has no first records: whole chunks only).
pub(crate) fn encode_layout_as(layout: &Layout, csi: &[u8], version: u32) -> Vec<u8> {
    let n_pages = layout.units.len().div_ceil(PAGE_UNITS);
    let mut pages = Vec::with_capacity(layout.units.len() * UNIT);
    let mut dir = Vec::with_capacity(n_pages * DIR_ENTRY);
    for page in layout.units.chunks(PAGE_UNITS) {
        let start = pages.len();
        for u in page {
            put_unit(&mut pages, u, version);
        }
        dir.extend_from_slice(&page[0].offset.to_le_bytes());
        dir.extend_from_slice(&crc32fast::hash(&pages[start..]).to_le_bytes());
        dir.extend_from_slice(&0u32.to_le_bytes());
    }
    let mut out = Vec::with_capacity(HEAD + dir.len() + pages.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(PAGE_UNITS as u32).to_le_bytes());
    out.extend_from_slice(&(layout.units.len() as u64).to_le_bytes());
    out.extend_from_slice(&(layout.header.len() as u64).to_le_bytes());
    out.extend_from_slice(&layout.total_len().to_le_bytes());
    out.extend_from_slice(&(csi.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(csi).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&dir).to_le_bytes());
    out.extend_from_slice(&(n_pages as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&out).to_le_bytes());
    out.resize(HEAD, 0);
    out.extend_from_slice(&dir);
    out.extend_from_slice(&pages);
    out
}

/// Both objects for a dataset with this header and index, its chunks cut into `pieces`.
pub fn encode(
    header: &crate::Header,
    index: &crate::index::SpatialIndex,
    sorted_input: bool,
    pieces: &PieceMap,
) -> (Vec<u8>, Vec<u8>) {
    let layout = Layout::with_pieces(header, index, sorted_input, pieces);
    let csi = csi::build(&layout);
    (encode_layout(&layout, &csi), csi)
}

/// The entries of `index` whose units are single chunks (those that can be cut into pieces).
fn pieceable(index: &crate::index::SpatialIndex, sorted_input: bool) -> Vec<&ChunkEntry> {
    let placed = index
        .references
        .iter()
        .filter(|_| sorted_input)
        .flat_map(|r| r.chunks.iter());
    placed.chain(index.unmapped.iter()).collect()
}

/// Writes both objects (the dataset writer calls this just before `_metadata.json`; `bams3
/// htslib-index` for datasets written before they existed). `pieces` has the pieces the
/// caller knows; those of the other chunks are read from their small streams.
pub fn write(
    storage: &dyn Storage,
    header: &crate::Header,
    index: &crate::index::SpatialIndex,
    sorted_input: bool,
    mut pieces: PieceMap,
) -> Result<()> {
    pieces::fill(storage, &pieceable(index, sorted_input), &mut pieces)?;
    let (layout, csi) = encode(header, index, sorted_input, &pieces);
    storage.put(CSI_KEY, &csi)?;
    storage.put(LAYOUT_KEY, &layout)
}

/// Deletes both objects, if there (a writer cleaning up after a failure).
pub fn delete(storage: &dyn Storage) {
    let _ = storage.delete(LAYOUT_KEY);
    let _ = storage.delete(CSI_KEY);
}

/// Writes both objects for an open v0.3 dataset.
pub fn write_for(ds: &Dataset) -> Result<()> {
    super::refuse_legacy(ds)?;
    write(
        &**ds.storage(),
        ds.header(),
        ds.index()?,
        ds.metadata().sorted_input,
        PieceMap::new(),
    )
}

/// Checks the objects against what the index gives (`validate`): absent is fine (datasets
/// written before they existed), different is corruption.
pub fn check(ds: &Dataset) -> Result<()> {
    if ds.is_legacy() {
        return Ok(());
    }
    let root = ds.storage().root();
    // Each object read once; absent ones are not compared.
    let layout_got = get_optional(&**ds.storage(), LAYOUT_KEY)?;
    let csi_got = get_optional(&**ds.storage(), CSI_KEY)?;
    if layout_got.is_none() && csi_got.is_none() {
        return Ok(());
    }
    let (index, sorted) = (ds.index()?, ds.metadata().sorted_input);
    // Tables of version 1 (written before pieces) hold whole chunks.
    let version = layout_got
        .as_deref()
        .and_then(|b| b.get(8..12))
        .map_or(VERSION, |b| u32_at(b, 0));
    let mut pieces = PieceMap::new();
    if version >= 2 {
        pieces::fill(&**ds.storage(), &pieceable(index, sorted), &mut pieces)?;
    }
    let layout = Layout::with_pieces(ds.header(), index, sorted, &pieces);
    let csi = csi::build(&layout);
    let layout = encode_layout_as(&layout, &csi, version.min(VERSION));
    for (key, got, want) in [(LAYOUT_KEY, layout_got, layout), (CSI_KEY, csi_got, csi)] {
        if got.is_some_and(|got| got != want) {
            return Err(Error::corrupt(
                format!("{root}/{key}"),
                "differs from what the index gives: rewrite it with `bams3 htslib-index`",
            ));
        }
    }
    Ok(())
}

/// Object `key`, or `None` when the store has none.
fn get_optional(storage: &dyn Storage, key: &str) -> Result<Option<Vec<u8>>> {
    match storage.get(key) {
        Ok(b) => Ok(Some(b.to_vec())),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The stored CSI, if the dataset has one.
pub fn read_csi(ds: &Dataset) -> Result<Option<Vec<u8>>> {
    get_optional(&**ds.storage(), CSI_KEY)
}

/// A layout table read page by page from storage.
pub struct PagedLayout {
    storage: Arc<dyn Storage>,
    n_units: usize,
    /// Bytes of a unit record in this table's version.
    unit_len: usize,
    header_len: u64,
    total_len: u64,
    /// Per page: its first unit's offset and its CRC.
    dir: Vec<(u64, u32)>,
    /// The last page read.
    page: Mutex<Option<(usize, Arc<Vec<Unit>>)>>,
}

impl PagedLayout {
    /// Reads the header and page directory of the stored table, or `None` when the dataset
    /// has none. `header_len` (the BAM header's size, from the dataset's header) must agree.
    pub fn open(storage: Arc<dyn Storage>, header_len: u64) -> Result<Option<PagedLayout>> {
        let what = format!("{}/{LAYOUT_KEY}", storage.root());
        let size = match storage.head(LAYOUT_KEY)? {
            Some(n) => n,
            None => return Ok(None),
        };
        let bad = |d: &str| Error::corrupt(&what, d.to_string());
        if size < HEAD as u64 {
            return Err(bad("shorter than its header"));
        }
        let mut first = storage.get_range(LAYOUT_KEY, 0..size.min(FIRST_GET))?;
        let unit_len = match (&first[..8] == MAGIC, u32_at(&first, 8)) {
            (true, 1) => UNIT_V1,
            (true, VERSION) => UNIT,
            _ => return Err(bad("not a BAMS3 layout table of version 1 or 2")),
        };
        if crc32fast::hash(&first[..60]) != u32_at(&first, 60) {
            return Err(bad("header checksum mismatch"));
        }
        if u32_at(&first, 12) as usize != PAGE_UNITS || u64_at(&first, 24) != header_len {
            return Err(bad("page size or header size differs from this dataset"));
        }
        let n_units = u64_at(&first, 16) as usize;
        let n_pages = u32_at(&first, 56) as usize;
        let dir_end = HEAD + n_pages * DIR_ENTRY;
        if n_pages != n_units.div_ceil(PAGE_UNITS) || size != (dir_end + n_units * unit_len) as u64
        {
            return Err(bad("size differs from its unit count"));
        }
        if first.len() < dir_end {
            first = storage.get_range(LAYOUT_KEY, 0..dir_end as u64)?;
        }
        let dir_bytes = &first[HEAD..dir_end];
        if crc32fast::hash(dir_bytes) != u32_at(&first, 52) {
            return Err(bad("page directory checksum mismatch"));
        }
        let dir = dir_bytes
            .chunks(DIR_ENTRY)
            .map(|e| (u64_at(e, 0), u32_at(e, 8)))
            .collect();
        Ok(Some(PagedLayout {
            storage,
            n_units,
            unit_len,
            header_len,
            total_len: u64_at(&first, 32),
            dir,
            page: Mutex::new(None),
        }))
    }

    /// Units in the stream.
    pub fn len(&self) -> usize {
        self.n_units
    }

    /// Whether the stream has no records.
    pub fn is_empty(&self) -> bool {
        self.n_units == 0
    }

    /// Size of the stream.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// Stream offset of the first unit.
    pub fn header_end(&self) -> u64 {
        super::framed_len(self.header_len)
    }

    /// Stream offset of the EOF block.
    pub fn records_end(&self) -> u64 {
        self.total_len - crate::bam::BGZF_EOF.len() as u64
    }

    fn page(&self, p: usize) -> Result<Arc<Vec<Unit>>> {
        let mut cached = self.page.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((q, units)) = cached.as_ref()
            && *q == p
        {
            return Ok(units.clone());
        }
        let first = p * PAGE_UNITS;
        let n = PAGE_UNITS.min(self.n_units - first);
        let unit = self.unit_len;
        let at = (HEAD + self.dir.len() * DIR_ENTRY + first * unit) as u64;
        let bytes = self
            .storage
            .get_range(LAYOUT_KEY, at..at + (n * unit) as u64)?;
        if bytes.len() != n * unit || crc32fast::hash(&bytes) != self.dir[p].1 {
            return Err(Error::corrupt(
                format!("{}/{LAYOUT_KEY}", self.storage.root()),
                format!("page {p}: checksum mismatch"),
            ));
        }
        let units = Arc::new(bytes.chunks(unit).map(get_unit).collect::<Vec<_>>());
        *cached = Some((p, units.clone()));
        Ok(units)
    }

    /// Unit `i`.
    pub fn get(&self, i: usize) -> Result<Unit> {
        Ok(self.page(i / PAGE_UNITS)?[i % PAGE_UNITS].clone())
    }

    /// The index and unit whose blocks cover stream offset `at`, if any.
    pub fn unit_at(&self, at: u64) -> Result<Option<(usize, Unit)>> {
        let p = self.dir.partition_point(|&(o, _)| o <= at);
        if p == 0 {
            return Ok(None);
        }
        let page = self.page(p - 1)?;
        let j = page.partition_point(|u| u.end() <= at);
        Ok(page
            .get(j)
            .filter(|u| u.offset <= at)
            .map(|u| ((p - 1) * PAGE_UNITS + j, u.clone())))
    }
}
