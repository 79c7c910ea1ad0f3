//! Reading datasets written by the upstream tools that preceded this crate: the Go `bams3-go`
//! (format versions `0.2.0`, binary chunks, and `0.1.0`, JSON chunks) and the Python proof of
//! concept (`0.1.0-poc`, JSON chunks).
//!
//! Those formats were lossy and had quirks (see `docs/LEGACY.md`): 1-based positions for
//! datasets converted from SAM on stdin, duplicate chunk entries, whole-file zstd frames, mate
//! fields never stored, tag types flattened to text, qualities kept with their +33 offset. This
//! module turns them into ordinary BAM [`Record`]s and lists what was lost in
//! [`LegacyDataset::losses`], so that callers can convert or query an old dataset and tell the
//! user exactly what the old tool threw away.
//!
//! Reading is two steps: [`open`] parses `_metadata.json` and `_header.json` (the spatial index
//! is never needed: it carries nothing that `_metadata.json` lacks), then [`decode_chunk`] turns
//! the bytes of one chunk object into records.

use std::borrow::Cow;
use std::io::Read;

use sha2::{Digest, Sha256};

use crate::record::{cigar_reference_len, flags, reg2bin};
use crate::{Error, Header, Record, Result};

mod metadata;
mod v01;
mod v02;

#[cfg(test)]
mod tests;

pub use metadata::open;

/// The `version` strings of `_metadata.json` this module reads.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["0.1.0", "0.1.0-poc", "0.2.0"];

/// Largest decompressed chunk accepted. Upstream chunks are a few tens of MiB; anything larger
/// is treated as corrupt (or hostile) rather than exhausting memory.
pub const MAX_DECOMPRESSED: u64 = 2 << 30;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// `0x42414D33` little-endian: the v0.2 binary chunk magic.
const BINARY_MAGIC: [u8; 4] = [0x33, 0x4D, 0x41, 0x42];

/// An upstream dataset, opened from its `_metadata.json` and `_header.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyDataset {
    /// `version` from `_metadata.json`: `0.1.0`, `0.1.0-poc` or `0.2.0`.
    pub version: String,
    /// SAM header reconstructed from `_header.json` (see [`open`]).
    pub header: Header,
    /// Chunks, de-duplicated by path and sorted by reference order, then start; unmapped last.
    pub chunks: Vec<LegacyChunk>,
    /// Whether the stored positions (and chunk boundaries) are 1-based: true for datasets made
    /// with `bams3 convert --stdin` (`source.file == "stdin"`). Positions and chunk boundaries
    /// returned by this module are always 0-based.
    pub one_based: bool,
    /// Dataset-wide compression string (`compression.algorithm`), verbatim, e.g. `zstd`, `none`.
    pub compression: String,
    /// What this dataset lost relative to the BAM/SAM it was made from, in plain words.
    pub losses: Vec<String>,
}

/// One chunk object of an upstream dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyChunk {
    /// Object path relative to the dataset root, e.g. `data/chr1/000000000-001048576.chunk`.
    pub path: String,
    /// Reference name, or `unmapped` for the unmapped chunk.
    pub reference: String,
    /// Index of the reference in [`LegacyDataset::header`], -1 for the unmapped chunk.
    pub ref_id: i32,
    /// 0-based first position of reads starting in this chunk (inclusive).
    pub start: i64,
    /// 0-based end of the chunk's start range (exclusive). Reads may extend past it.
    pub end: i64,
    /// Number of records the metadata claims.
    pub reads: u64,
    /// Per-chunk compression string, verbatim (decoding sniffs the bytes instead of trusting it).
    pub compression: String,
    /// SHA-256 from the metadata, if any. Only Go-written checksums are over the file bytes.
    pub checksum: Option<String>,
}

impl LegacyDataset {
    /// Whether the dataset was written by `bams3-go` (whose checksums cover the file bytes)
    /// rather than the Python proof of concept (whose checksums cover re-serialized JSON).
    pub fn is_go(&self) -> bool {
        self.version != "0.1.0-poc"
    }
}

/// Decodes the bytes of one chunk object into BAM records, in stored order.
///
/// The encoding is sniffed, not taken from metadata: a zstd frame (`28 B5 2F FD`) is
/// decompressed first (at most [`MAX_DECOMPRESSED`] bytes), then `33 4D 41 42` selects the v0.2
/// binary decoder and anything else must be a JSON array of reads (any of the three upstream
/// key sets). When the dataset is Go-written and the chunk has a 64-hex-digit checksum, the
/// SHA-256 of `bytes` (as stored, i.e. compressed) must match it.
///
/// Mate fields are not stored in any legacy format: every record gets `next_ref_id` -1,
/// `next_pos` -1 and `tlen` 0. Tags become type `Z` in stored order.
pub fn decode_chunk(bytes: &[u8], chunk: &LegacyChunk, ds: &LegacyDataset) -> Result<Vec<Record>> {
    verify_checksum(bytes, chunk, ds)?;
    let data: Cow<'_, [u8]> = if bytes.starts_with(&ZSTD_MAGIC) {
        Cow::Owned(decompress(bytes, &chunk.path)?)
    } else {
        Cow::Borrowed(bytes)
    };
    let ctx = Ctx {
        what: &chunk.path,
        one_based: ds.one_based,
        n_refs: ds.header.references.len(),
    };
    if data.starts_with(&BINARY_MAGIC) {
        v02::decode(&data, &ctx)
    } else {
        v01::decode(&data, &ctx)
    }
}

fn verify_checksum(bytes: &[u8], chunk: &LegacyChunk, ds: &LegacyDataset) -> Result<()> {
    let Some(expected) = chunk.checksum.as_deref() else {
        return Ok(());
    };
    // Python POC checksums hash re-serialized records, not the file, so they cannot be checked;
    // anything that is not a bare SHA-256 hex digest is not something we know how to verify.
    if !ds.is_go() || expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    let actual = hex::encode(Sha256::digest(bytes));
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(Error::corrupt(
            &chunk.path,
            format!("checksum mismatch: metadata says {expected}, file has {actual}"),
        ))
    }
}

/// Decompresses a whole zstd chunk (one frame, or several concatenated, as the Go streaming
/// decoder accepted), refusing output beyond [`MAX_DECOMPRESSED`].
fn decompress(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    let bad = |e: std::io::Error| Error::corrupt(what, format!("zstd: {e}"));
    let decoder = zstd::stream::read::Decoder::with_buffer(bytes).map_err(bad)?;
    let mut out = Vec::new();
    decoder
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(bad)?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(Error::corrupt(
            what,
            format!("decompresses to more than {MAX_DECOMPRESSED} bytes"),
        ));
    }
    Ok(out)
}

/// What the chunk decoders need to know about the dataset.
pub(crate) struct Ctx<'a> {
    /// Chunk path, for error messages.
    pub what: &'a str,
    /// Stored positions are 1-based SAM POS values.
    pub one_based: bool,
    /// Number of references in the header; record reference ids must be below it.
    pub n_refs: usize,
}

impl Ctx<'_> {
    pub(crate) fn corrupt(&self, record: usize, detail: impl std::fmt::Display) -> Error {
        Error::corrupt(self.what, format!("record {record}: {detail}"))
    }

    /// Converts a stored position to 0-based: 1-based values lose one (SAM POS 0, "no
    /// position", becomes -1); 0-based values are kept (-1 already means "no position").
    pub(crate) fn zero_based(&self, record: usize, stored: i64) -> Result<i32> {
        let pos = if self.one_based {
            if stored > 0 { stored - 1 } else { -1 }
        } else {
            stored
        };
        if !(-1..=i64::from(i32::MAX)).contains(&pos) {
            return Err(self.corrupt(record, format!("position {stored} out of range")));
        }
        Ok(pos as i32)
    }

    pub(crate) fn ref_id(&self, record: usize, stored: i64) -> Result<i32> {
        if stored == -1 || (0..self.n_refs as i64).contains(&stored) {
            Ok(stored as i32)
        } else {
            Err(self.corrupt(
                record,
                format!(
                    "reference id {stored} not in the header's {} references",
                    self.n_refs
                ),
            ))
        }
    }
}

/// The fields of one legacy read, already normalised (0-based position, BAM codes), ready for
/// BAM encoding.
pub(crate) struct Fields<'a> {
    pub name: &'a [u8],
    pub flag: u16,
    pub ref_id: i32,
    pub pos: i32,
    pub mapq: u8,
    /// CIGAR words (`len << 4 | op`).
    pub cigar: Vec<u32>,
    /// One BAM 4-bit base code per base.
    pub bases: Vec<u8>,
    /// Phred qualities without offset, one per base; `None` when missing.
    pub qual: Option<Vec<u8>>,
    /// Tags, all written as type `Z`.
    pub tags: Vec<([u8; 2], Cow<'a, [u8]>)>,
}

/// Encodes normalised fields as BAM record bytes (the layout without `block_size`).
pub(crate) fn build_record(f: Fields<'_>, ctx: &Ctx<'_>, index: usize) -> Result<Record> {
    // BAM needs a non-empty name; SAM's "no name" is `*`.
    let name: &[u8] = if f.name.is_empty() { b"*" } else { f.name };
    if name.len() > 254 || name.contains(&0) {
        return Err(ctx.corrupt(index, "read name longer than 254 bytes or containing NUL"));
    }
    if f.cigar.len() > usize::from(u16::MAX) {
        return Err(ctx.corrupt(index, "more than 65,535 CIGAR operations"));
    }
    if let Some(q) = &f.qual
        && q.len() != f.bases.len()
    {
        return Err(ctx.corrupt(
            index,
            format!("{} qualities for {} bases", q.len(), f.bases.len()),
        ));
    }
    let l_seq = i32::try_from(f.bases.len())
        .map_err(|_| ctx.corrupt(index, "sequence too long for BAM"))?;
    let mut cigar_bytes = Vec::with_capacity(4 * f.cigar.len());
    for op in &f.cigar {
        cigar_bytes.extend_from_slice(&op.to_le_bytes());
    }
    // Same convention as htslib: unmapped or reference-less alignments cover one base.
    let rlen = cigar_reference_len(&cigar_bytes);
    let span = if f.flag & flags::UNMAPPED != 0 || rlen == 0 {
        1
    } else {
        rlen
    };
    let pos = i64::from(f.pos);
    let bin = reg2bin(pos, pos + span);

    let mut b = Vec::with_capacity(64 + name.len() + cigar_bytes.len() + 2 * f.bases.len());
    b.extend_from_slice(&f.ref_id.to_le_bytes());
    b.extend_from_slice(&f.pos.to_le_bytes());
    b.push((name.len() + 1) as u8);
    b.push(f.mapq);
    b.extend_from_slice(&bin.to_le_bytes());
    b.extend_from_slice(&(f.cigar.len() as u16).to_le_bytes());
    b.extend_from_slice(&f.flag.to_le_bytes());
    b.extend_from_slice(&l_seq.to_le_bytes());
    // Mate fields were never stored by any legacy writer (upstream loss L1).
    b.extend_from_slice(&(-1i32).to_le_bytes());
    b.extend_from_slice(&(-1i32).to_le_bytes());
    b.extend_from_slice(&0i32.to_le_bytes());
    b.extend_from_slice(name);
    b.push(0);
    b.extend_from_slice(&cigar_bytes);
    for pair in f.bases.chunks(2) {
        let hi = pair[0] & 0xF;
        let lo = pair.get(1).map_or(0, |c| c & 0xF);
        b.push(hi << 4 | lo);
    }
    match &f.qual {
        Some(q) => b.extend_from_slice(q),
        None => b.resize(b.len() + f.bases.len(), 0xFF),
    }
    for (tag, value) in &f.tags {
        if value.contains(&0) {
            return Err(ctx.corrupt(index, "tag value contains NUL"));
        }
        b.extend_from_slice(tag);
        b.push(b'Z');
        b.extend_from_slice(value);
        b.push(0);
    }
    Record::from_bytes(b).map_err(|e| ctx.corrupt(index, e))
}

/// BAM CIGAR operation letters by op code; legacy writers only ever used codes 0-8.
pub(crate) const CIGAR_OPS: &[u8; 9] = b"MIDNSHP=X";

/// Checks one CIGAR word from a legacy chunk.
pub(crate) fn check_cigar_op(word: u32, ctx: &Ctx<'_>, index: usize) -> Result<u32> {
    // Code 9 (biogo's `B`) and above have no BAM meaning; refusing beats inventing one.
    if (word & 0xF) as usize >= CIGAR_OPS.len() {
        return Err(ctx.corrupt(index, format!("CIGAR op code {} unknown", word & 0xF)));
    }
    Ok(word)
}
