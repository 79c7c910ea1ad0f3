//! Where every record of a dataset lies in its BAM stream, from the index alone.

use serde::{Deserialize, Serialize};

use super::framing::framed_len;
use super::pieces::PieceMap;
use crate::Header;
use crate::index::SpatialIndex;

/// A run of records that is framed on its own in the stream: a chunk, a piece of one (see
/// [`super::pieces`]), or (for datasets from unsorted input, whose parts are separately sorted
/// runs) a bin with its parts merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Reference index, or -1 for the unplaced records.
    pub reference: i32,
    /// Start of the genomic bin of its chunks.
    pub bin_start: i64,
    /// End of the genomic bin.
    pub bin_end: i64,
    /// The chunk's part number, or `None` for every part of the bin, merged.
    pub part: Option<u32>,
    /// Index of its first chunk in the reference's (or the unplaced) chunk list.
    pub first_chunk: u32,
    /// Number of chunks.
    pub n_chunks: u32,
    /// Index of its first record in its chunk: not 0 for the second and later pieces of a
    /// chunk cut into [`super::pieces::Piece`]s (a unit then holds `count` records from here).
    pub first_record: u64,
    /// Smallest record position.
    pub first_pos: i64,
    /// Largest exclusive record end.
    pub max_end: i64,
    /// Records.
    pub count: u64,
    /// Records flagged unmapped.
    pub unmapped: u64,
    /// BAM-encoded size of its records (the index's `raw_bytes`).
    pub raw: u64,
    /// Stream offset of its first block.
    pub offset: u64,
}

impl Unit {
    /// Stream offset just past its last block, which is where the next unit starts.
    pub fn end(&self) -> u64 {
        self.offset + framed_len(self.raw)
    }
}

/// The layout of a dataset's BAM stream: the header blocks, then every unit in coordinate
/// order (references in header order, then the unplaced records), then the BGZF EOF block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The BAM header (magic, text, references), decompressed.
    pub header: Vec<u8>,
    /// Units in stream order.
    pub units: Vec<Unit>,
    /// References and their lengths, as in the header.
    pub ref_lengths: Vec<u64>,
}

/// The decompressed BAM header of `header`, as `bam::Writer` writes it.
pub fn bam_header(header: &Header) -> Vec<u8> {
    let mut h = Vec::with_capacity(16 + header.text.len() + 32 * header.references.len());
    h.extend_from_slice(&crate::bam::MAGIC);
    h.extend_from_slice(&(header.text.len() as u32).to_le_bytes());
    h.extend_from_slice(header.text.as_bytes());
    h.extend_from_slice(&(header.references.len() as u32).to_le_bytes());
    for r in &header.references {
        h.extend_from_slice(&(r.name.len() as u32 + 1).to_le_bytes());
        h.extend_from_slice(r.name.as_bytes());
        h.push(0);
        h.extend_from_slice(&(r.length as u32).to_le_bytes());
    }
    h
}

impl Layout {
    /// The layout of a v0.3 dataset with this header and index. `sorted_input` is the
    /// metadata's flag: parts of a bin from sorted input follow each other in order, parts from
    /// unsorted input are merged.
    pub fn new(header: &Header, index: &SpatialIndex, sorted_input: bool) -> Layout {
        Layout::with_pieces(header, index, sorted_input, &PieceMap::new())
    }

    /// Like [`Layout::new`], with the chunks that `pieces` names cut into their pieces (chunks
    /// of merged bins stay whole: their records interleave with their neighbours').
    pub fn with_pieces(
        header: &Header,
        index: &SpatialIndex,
        sorted_input: bool,
        pieces: &PieceMap,
    ) -> Layout {
        let bam_header = bam_header(header);
        let mut offset = framed_len(bam_header.len() as u64);
        let mut units = Vec::with_capacity(index.chunk_count());
        let mut push = |mut u: Unit| {
            if u.count == 0 {
                return;
            }
            u.offset = offset;
            offset = u.end();
            units.push(u);
        };
        let unit_of = |reference: i32, i: usize, e: &crate::index::ChunkEntry| Unit {
            reference,
            bin_start: e.bin_start,
            bin_end: e.bin_end,
            part: Some(e.part),
            first_chunk: i as u32,
            n_chunks: 1,
            first_record: 0,
            first_pos: e.first_pos,
            max_end: e.max_end,
            count: e.count,
            unmapped: e.unmapped,
            raw: e.raw_bytes,
            offset: 0,
        };
        // A chunk as its pieces, when it has them (`e` is `None` for a merged bin).
        let mut push_chunk = |u: Unit, e: Option<&crate::index::ChunkEntry>| match e
            .and_then(|e| pieces.get(&e.path))
        {
            Some(list) if list.len() > 1 => {
                let mut first = 0u64;
                for p in list {
                    push(Unit {
                        first_record: first,
                        first_pos: p.first_pos,
                        max_end: p.max_end,
                        count: u64::from(p.count),
                        unmapped: u64::from(p.unmapped),
                        raw: p.raw,
                        ..u.clone()
                    });
                    first += u64::from(p.count);
                }
            }
            _ => push(u),
        };
        for (r, rc) in index.references.iter().enumerate() {
            let mut current: Option<Unit> = None;
            for (i, e) in rc.chunks.iter().enumerate() {
                let u = unit_of(r as i32, i, e);
                if sorted_input {
                    push_chunk(u, Some(e));
                    continue;
                }
                match current.as_mut() {
                    Some(c) if c.bin_start == e.bin_start => {
                        c.n_chunks += 1;
                        c.first_pos = c.first_pos.min(e.first_pos);
                        c.max_end = c.max_end.max(e.max_end);
                        c.count += e.count;
                        c.unmapped += e.unmapped;
                        c.raw += e.raw_bytes;
                        continue;
                    }
                    _ => {}
                }
                if let Some(done) = current.replace(Unit { part: None, ..u }) {
                    push_chunk(done, None);
                }
            }
            if let Some(done) = current {
                push_chunk(done, None);
            }
        }
        // Unplaced records keep their input order, chunk by chunk, as `samtools sort` does.
        for (i, e) in index.unmapped.iter().enumerate() {
            push_chunk(unit_of(-1, i, e), Some(e));
        }
        Layout {
            header: bam_header,
            units,
            ref_lengths: header.references.iter().map(|r| r.length).collect(),
        }
    }

    /// Stream offset of the first unit (the header's blocks end there).
    pub fn header_end(&self) -> u64 {
        framed_len(self.header.len() as u64)
    }

    /// Stream offset of the EOF block.
    pub fn records_end(&self) -> u64 {
        self.units.last().map_or(self.header_end(), Unit::end)
    }

    /// Size of the whole stream, EOF block included.
    pub fn total_len(&self) -> u64 {
        self.records_end() + crate::bam::BGZF_EOF.len() as u64
    }

    /// The unit whose blocks cover stream offset `at`, if any.
    pub fn unit_at(&self, at: u64) -> Option<usize> {
        let i = self.units.partition_point(|u| u.end() <= at);
        (i < self.units.len() && self.units[i].offset <= at).then_some(i)
    }
}
