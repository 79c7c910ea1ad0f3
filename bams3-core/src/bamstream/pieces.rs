//! Pieces: runs of [`PIECE_RECORDS`] records inside a chunk, each framed on its own in the
//! stream and indexed on its own in the CSI, so that htslib seeks to the piece a region starts
//! in and the plugin decodes from there, as a BAI points into a BAM at 64 kB blocks.
//!
//! Where a piece lies follows from the BAM-encoded sizes of its records, which the index does
//! not hold (it has one `raw_bytes` per chunk): a writer takes them from the records it
//! encodes, and anything else (`bams3 htslib-index`, a sharded conversion's finalize, a
//! resumed conversion's earlier chunks) from the chunk's small streams (positions, flags,
//! CIGARs, lengths and names: no bases, qualities or tags).
//!
//! ```
//! use bams3_core::bamstream::pieces::{self, PIECE_RECORDS};
//! use bams3_core::Record;
//! let records = vec![Record::from_sam_fields_for_doc(); PIECE_RECORDS + 1];
//! let p = pieces::of_records(&records);
//! assert_eq!((p.len(), p[0].count, p[1].count), (2, PIECE_RECORDS as u32, 1));
//! assert_eq!(p[0].raw + p[1].raw, records.iter().map(|r| 4 + r.as_bytes().len() as u64).sum::<u64>());
//! ```

use std::collections::HashMap;

use crate::chunk::{ChunkData, Fields, StreamId};
use crate::codec::varint;
use crate::index::ChunkEntry;
use crate::storage::Storage;
use crate::{Error, Record, Result, record};

/// Records per piece: the record blocks' size, so a piece decodes one block of each blocked
/// stream; about 100 kB of BAM for short reads, the scale of BAI's 64 kB blocks.
pub const PIECE_RECORDS: usize = crate::chunk::RECORDS_PER_BLOCK as usize;

/// One piece of a chunk: its records and where they reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Records (at most [`PIECE_RECORDS`]).
    pub count: u32,
    /// Records flagged unmapped.
    pub unmapped: u32,
    /// BAM-encoded size of the records, each with its `block_size`.
    pub raw: u64,
    /// Smallest record position.
    pub first_pos: i64,
    /// Largest exclusive record end (htslib `bam_endpos`).
    pub max_end: i64,
}

/// The pieces of chunks, by chunk path: what a layout needs beyond the index.
pub type PieceMap = HashMap<String, Vec<Piece>>;

/// Chunk paths and their pieces, as one worker of [`fill`] found them.
type PieceList = Vec<(String, Vec<Piece>)>;

/// Builds pieces from `(position, end, flag, BAM size)` per record, in record order.
fn cut(extents: impl Iterator<Item = Result<(i64, i64, u16, u64)>>) -> Result<Vec<Piece>> {
    let mut out: Vec<Piece> = Vec::new();
    for (i, x) in extents.enumerate() {
        let (pos, end, flag, size) = x?;
        if i % PIECE_RECORDS == 0 {
            out.push(Piece {
                count: 0,
                unmapped: 0,
                raw: 0,
                first_pos: i64::MAX,
                max_end: i64::MIN,
            });
        }
        let p = out.last_mut().expect("a piece was just started");
        p.count += 1;
        p.unmapped += u32::from(flag & record::flags::UNMAPPED != 0);
        p.raw += size;
        p.first_pos = p.first_pos.min(pos);
        p.max_end = p.max_end.max(end);
    }
    Ok(out)
}

/// The pieces of a chunk's records, in stored order (a writer has them at hand).
pub fn of_records(records: &[Record]) -> Vec<Piece> {
    cut(records.iter().map(|r| {
        Ok((
            r.pos() as i64,
            r.end(),
            r.flag(),
            4 + r.as_bytes().len() as u64,
        ))
    }))
    .expect("records give no errors")
}

/// What [`of_chunk`] decodes: placement, read length, and the lengths of name, CIGAR and tags.
fn fields() -> Fields {
    Fields::COVERAGE.with(StreamId::Name).with(StreamId::AuxLen)
}

/// The pieces of a chunk from its decoded small streams, checked against the index's count
/// and `raw_bytes`.
fn of_data(data: &ChunkData, entry: &ChunkEntry, what: &str) -> Result<Vec<Piece>> {
    let bad = |d: &str| Error::corrupt(what, d.to_string());
    let parts = data
        .stream_parts(StreamId::Name)
        .ok_or_else(|| bad("name stream not decoded"))?;
    let aux = data
        .stream(StreamId::AuxLen)
        .ok_or_else(|| bad("tag length stream not decodable whole"))?;
    // Each part (a block, or the whole stream) begins at a record, so names never straddle two.
    let mut names = parts
        .into_iter()
        .flat_map(|p| p.split_inclusive(|&c| c == 0));
    let mut aux_at = 0usize;
    let extents = data.alignments().map(|a| {
        let a = a?;
        let name_len = names
            .next()
            .filter(|n| n.last() == Some(&0))
            .ok_or_else(|| bad("name stream ends early"))?
            .len();
        let aux_len = varint::get(aux, &mut aux_at).ok_or_else(|| bad("tag lengths end early"))?;
        let size = 4
            + 32
            + name_len as u64
            + a.cigar.len() as u64
            + a.l_seq.div_ceil(2) as u64
            + a.l_seq as u64
            + aux_len;
        Ok((a.pos, record::end_pos(a.pos, a.flag, a.cigar), a.flag, size))
    });
    let pieces = cut(extents)?;
    let (count, raw) = pieces.iter().fold((0u64, 0u64), |(c, r), p| {
        (c + u64::from(p.count), r + p.raw)
    });
    if count != entry.count || raw != entry.raw_bytes {
        return Err(bad(
            "record count or BAM size of the chunk differs from the index",
        ));
    }
    Ok(pieces)
}

/// The pieces of one stored chunk, from its small streams (on S3 only their byte ranges are
/// fetched).
pub fn of_chunk(storage: &dyn Storage, entry: &ChunkEntry) -> Result<Vec<Piece>> {
    let data = crate::dataset::read_chunk_in(storage, entry, fields())?;
    of_data(&data, entry, &format!("{}/{}", storage.root(), entry.path))
}

/// Adds to `map` the pieces of every chunk of `entries` worth cutting (more than one piece of
/// records) that it lacks, reading those chunks from `storage` on the machine's cores.
pub fn fill(storage: &dyn Storage, entries: &[&ChunkEntry], map: &mut PieceMap) -> Result<()> {
    let todo: Vec<&ChunkEntry> = entries
        .iter()
        .copied()
        .filter(|e| e.count > PIECE_RECORDS as u64 && !map.contains_key(&e.path))
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let results: Vec<Result<PieceList>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads.min(todo.len()))
            .map(|_| {
                sc.spawn(|| {
                    let mut got = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(e) = todo.get(i) else {
                            return Ok(got);
                        };
                        got.push((e.path.clone(), of_chunk(storage, e)?));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("piece worker panicked".into())))
            })
            .collect()
    });
    for r in results {
        map.extend(r?);
    }
    Ok(())
}
