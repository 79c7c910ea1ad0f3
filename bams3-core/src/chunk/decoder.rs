//! Checking a chunk and rebuilding records from its field streams.

use super::blocks::{BlockDirectory, CODEC_BLOCKED, block_area_start};
use super::encoder::expected_bin;
use super::{
    CODEC_BASES, CODEC_MATE_PAIRS, CODEC_NAME_PAIRS, CODEC_QUAL_CONTEXT, CODEC_RANS1, CODEC_RAW,
    CODEC_TAG_COLUMNS, CODEC_ZSTD, ChunkHeader, Fields, N_STREAMS, StreamId, StreamInfo,
};
use crate::codec::quality::{self, ReadShape};
use crate::codec::{bases, mates, rans, tags, varint};
use crate::record::{FIXED_LEN, Record};
use crate::{Error, Result};

/// Largest decoded stream accepted; a corrupt length must not make us allocate without bound.
const MAX_STREAM_LEN: u64 = 1 << 32;

/// Most bytes reserved for a record before its fields are read (records longer than this
/// grow as their bytes are copied).
const MAX_PREALLOC: usize = 1 << 20;

thread_local! {
    /// One zstd context per thread, reused across streams and chunks.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn decompress(stored: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new()?);
        }
        d.as_mut()
            .expect("decompressor just set")
            .decompress(stored, capacity)
    })
}

/// Checks the CRC of a stream's stored bytes.
fn check_crc(info: &StreamInfo, stored: &[u8], what: &str) -> Result<()> {
    if crc32fast::hash(stored) != info.crc32 {
        let id = StreamId::ALL
            .get(info.id as usize)
            .map_or("unknown", |s| s.name());
        return Err(Error::corrupt(
            what,
            format!("checksum mismatch in stream '{id}' (corrupt or truncated chunk)"),
        ));
    }
    Ok(())
}

/// Decompresses one stored (not blocked) stream after checking its CRC.
pub fn decode_stream(info: &StreamInfo, stored: &[u8], what: &str) -> Result<Vec<u8>> {
    let id = StreamId::ALL
        .get(info.id as usize)
        .map_or("unknown", |s| s.name());
    check_crc(info, stored, what)?;
    if info.raw_len > MAX_STREAM_LEN {
        return Err(Error::corrupt(what, format!("stream '{id}' too large")));
    }
    let raw = match info.codec {
        CODEC_RAW => stored.to_vec(),
        CODEC_ZSTD => decompress(stored, info.raw_len as usize)
            .map_err(|e| Error::corrupt(what, format!("stream '{id}': zstd: {e}")))?,
        CODEC_RANS1 => rans::decode(stored, info.raw_len as usize)
            .map_err(|e| Error::corrupt(what, format!("stream '{id}': rANS: {}", e.0)))?,
        c => {
            return Err(Error::corrupt(
                what,
                format!("stream '{id}': unknown codec {c}"),
            ));
        }
    };
    if raw.len() as u64 != info.raw_len {
        return Err(Error::corrupt(
            what,
            format!("stream '{id}': decoded length differs from the header"),
        ));
    }
    Ok(raw)
}

/// The coded bytes of a stream of codec 6 (LEB128 length, then a zstd frame), after checking
/// its CRC; [`ChunkData`] rebuilds the default layout once the streams it derives
/// from are decoded.
fn decode_paired(info: &StreamInfo, stored: &[u8], what: &str) -> Result<Vec<u8>> {
    let id = StreamId::ALL
        .get(info.id as usize)
        .map_or("unknown", |s| s.name());
    check_crc(info, stored, what)?;
    let bad = |d: &str| Error::corrupt(what, format!("stream '{id}': {d}"));
    let mut at = 0;
    let len = varint::get(stored, &mut at)
        .filter(|&l| l <= MAX_STREAM_LEN)
        .ok_or_else(|| bad("bad coded length"))?;
    let coded = decompress(&stored[at..], len as usize)
        .map_err(|e| Error::corrupt(what, format!("stream '{id}': zstd: {e}")))?;
    if coded.len() as u64 != len {
        return Err(bad("coded length differs from its frame"));
    }
    Ok(coded)
}

/// Decoded bytes from which [`ChunkData::decode_blocks`] splits its work over two threads
/// (a 100 kb region's chunk is about 1.6 MB of them; a one-base region's 0.2 MB).
pub(crate) const PARALLEL_BLOCK_BYTES: usize = 512 << 10;

/// Whether this machine lets a block-decoding helper thread run beside the caller.
fn two_cores() -> bool {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) > 1
}

/// A blocked stream's directory and which of its blocks are decoded.
struct Blocked {
    dir: BlockDirectory,
    /// Offset of each block's first byte in the decoded stream, and the stream's length last.
    starts: Vec<usize>,
    decoded: Vec<bool>,
    /// The decoded bytes of each block (empty until decoded): only the blocks a query needs
    /// take memory.
    bytes: Vec<Vec<u8>>,
    /// The shared rANS table, parsed when the first block needs it.
    table: Option<rans::DecodeTable>,
    /// The shared quality model (codec 4), parsed when the first block needs it.
    quality: Option<quality::DecodeModel>,
}

/// The decoded streams of one chunk (only those that were asked for).
///
/// Blocked streams may be decoded in part: their bytes are then in place only for the blocks
/// decoded, and the record cursors build only the records [`ChunkData::select`] chose (and
/// fail, rather than return wrong bytes, if asked for a record of a block not decoded).
pub struct ChunkData {
    what: String,
    n_records: usize,
    /// Records in the chunk, whatever [`ChunkData::select`] later cuts `n_records` to.
    n_records_all: usize,
    stored_decoded: u64,
    streams: [Option<Vec<u8>>; N_STREAMS],
    blocked: [Option<Blocked>; N_STREAMS],
    selected: Option<Vec<bool>>,
}

/// The shapes (length, strand, mate) of records `range`, from the decoded flag and sequence
/// length streams: what the quality model's contexts need. `None` when a stream is missing or
/// too short.
fn read_shapes(
    flags: Option<&[u8]>,
    seq_len: Option<&[u8]>,
    range: std::ops::Range<usize>,
) -> Option<Vec<ReadShape>> {
    let (flags, seq_len) = (flags?, seq_len?);
    let mut at = 0usize;
    let mut out = Vec::with_capacity(range.len());
    for i in 0..range.end {
        let len = varint::get(seq_len, &mut at)?;
        if i >= range.start {
            let f = flags.get(2 * i..2 * i + 2)?;
            let len = usize::try_from(len).ok()?;
            out.push(ReadShape::from_flag(u16::from_le_bytes([f[0], f[1]]), len));
        }
    }
    Some(out)
}

/// The stored bytes of `info` in `span` (bytes of the object from offset `base`).
fn stored_in(span: &[u8], base: u64, offset: u64, len: u64) -> Option<&[u8]> {
    if len == 0 {
        // Empty streams take no bytes, wherever the table says they sit.
        return Some(&span[..0]);
    }
    let start = offset.checked_sub(base)?;
    let end = start.checked_add(len)?;
    span.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

impl ChunkData {
    /// Checks the chunk in `bytes` and decodes the streams in `fields`; `what` names the chunk
    /// in error messages.
    pub fn decode(bytes: &[u8], fields: Fields, what: &str) -> Result<ChunkData> {
        let header = ChunkHeader::read(bytes, what)?;
        Self::build(
            &header.streams,
            header.n_records as usize,
            bytes,
            0,
            fields,
            what,
            true,
        )
    }

    /// Decodes the streams in `fields` from `span`, the bytes of a chunk object starting at
    /// offset `base`, located through `streams` (the index's copy of the chunk's stream table).
    /// This is how a remote reader decodes after one ranged GET: the chunk header is never
    /// fetched, and each stream's CRC is still checked. Blocked streams are decoded whole:
    /// `span` must hold their blocks too.
    pub fn from_span(
        streams: &[StreamInfo],
        n_records: usize,
        span: &[u8],
        base: u64,
        fields: Fields,
        what: &str,
    ) -> Result<ChunkData> {
        Self::build(streams, n_records, span, base, fields, what, true)
    }

    /// Like [`ChunkData::from_span`], but blocked streams only get their directories read:
    /// their blocks are decoded later, as needed, by [`ChunkData::decode_block`].
    pub(crate) fn from_span_without_blocks(
        streams: &[StreamInfo],
        n_records: usize,
        span: &[u8],
        base: u64,
        fields: Fields,
        what: &str,
    ) -> Result<ChunkData> {
        Self::build(streams, n_records, span, base, fields, what, false)
    }

    fn build(
        streams: &[StreamInfo],
        n_records: usize,
        span: &[u8],
        base: u64,
        fields: Fields,
        what: &str,
        all_blocks: bool,
    ) -> Result<ChunkData> {
        let mut data = ChunkData {
            what: what.to_string(),
            n_records,
            n_records_all: n_records,
            stored_decoded: 0,
            streams: Default::default(),
            blocked: Default::default(),
            selected: None,
        };
        let fields = fields.needed_for(streams);
        // Streams of codecs 6 and 7, rebuilt after the loop from the streams they need: the
        // mate stream's coded bytes, the name stream's stored ones.
        let mut mate: Option<(&StreamInfo, Vec<u8>)> = None;
        let mut name: Option<(&StreamInfo, &[u8])> = None;
        for id in StreamId::ALL {
            if !fields.contains(id) {
                continue;
            }
            let info = streams
                .iter()
                .find(|s| s.id == id as u8)
                .ok_or_else(|| Error::corrupt(what, format!("missing stream '{}'", id.name())))?;
            let stored = stored_in(span, base, info.offset, info.stored_len).ok_or_else(|| {
                Error::corrupt(
                    what,
                    "truncated chunk or index mismatch (stream outside the bytes read)",
                )
            })?;
            data.stored_decoded += info.stored_len;
            match (id, info.codec) {
                (StreamId::Mate, CODEC_MATE_PAIRS) => {
                    mate = Some((info, decode_paired(info, stored, what)?));
                    continue;
                }
                (StreamId::Name, CODEC_NAME_PAIRS) => {
                    check_crc(info, stored, what)?;
                    name = Some((info, stored));
                    continue;
                }
                (StreamId::Aux, CODEC_TAG_COLUMNS) => {
                    check_crc(info, stored, what)?;
                    if info.raw_len > MAX_STREAM_LEN {
                        return Err(Error::corrupt(what, "stream 'aux' too large"));
                    }
                    let raw = tags::decode(stored, n_records, info.raw_len as usize, decompress)
                        .map_err(|e| Error::corrupt(what, format!("stream 'aux': {}", e.0)))?;
                    data.streams[id as usize] = Some(raw);
                    continue;
                }
                _ => {}
            }
            if info.codec != CODEC_BLOCKED {
                data.streams[id as usize] = Some(decode_stream(info, stored, what)?);
                continue;
            }
            check_crc(info, stored, what)?;
            if info.raw_len > MAX_STREAM_LEN {
                return Err(Error::corrupt(
                    what,
                    format!("stream '{}' too large", id.name()),
                ));
            }
            let dir = BlockDirectory::parse(stored, n_records, info.raw_len, what, id.name())?;
            let mut starts = Vec::with_capacity(dir.blocks.len() + 1);
            let mut at = 0usize;
            for b in &dir.blocks {
                starts.push(at);
                at += b.raw_len as usize;
            }
            starts.push(at);
            let n_blocks = dir.blocks.len();
            data.blocked[id as usize] = Some(Blocked {
                dir,
                starts,
                decoded: vec![false; n_blocks],
                bytes: vec![Vec::new(); n_blocks],
                table: None,
                quality: None,
            });
            if all_blocks {
                for b in 0..n_blocks {
                    data.decode_block(id, b, span, base)?;
                }
            }
        }
        data.rebuild_paired(mate, name)?;
        data.check_block_area(streams)?;
        Ok(data)
    }

    /// Rebuilds the default layout of a mate stream of codec 6 (from the reference and
    /// position streams) and of a name stream of codec 7 (from the mate stream's pairs).
    fn rebuild_paired(
        &mut self,
        mate: Option<(&StreamInfo, Vec<u8>)>,
        name: Option<(&StreamInfo, &[u8])>,
    ) -> Result<()> {
        let what = self.what.clone();
        let bad =
            |id: StreamId, d: &str| Error::corrupt(&what, format!("stream '{}': {d}", id.name()));
        let mut leads = None;
        if let Some((info, coded)) = mate {
            let (refs, pos) = (
                self.streams[StreamId::RefId as usize].as_deref(),
                self.streams[StreamId::Pos as usize].as_deref(),
            );
            let (Some(refs), Some(pos)) = (refs, pos) else {
                return Err(Error::Internal(
                    "mate stream decoded without positions".into(),
                ));
            };
            let m = mates::decode_mates(&coded, refs, pos, self.n_records_all)
                .map_err(|e| bad(StreamId::Mate, e.0))?;
            if m.raw.len() as u64 != info.raw_len {
                return Err(bad(
                    StreamId::Mate,
                    "decoded length differs from the header",
                ));
            }
            self.streams[StreamId::Mate as usize] = Some(m.raw);
            leads = Some(m.leads);
        }
        if let Some((info, coded)) = name {
            let leads = leads
                .as_deref()
                .ok_or_else(|| bad(StreamId::Name, "codec 7 without a mate stream of codec 6"))?;
            if info.raw_len > MAX_STREAM_LEN {
                return Err(bad(StreamId::Name, "too large"));
            }
            let raw = mates::decode_names(coded, leads, info.raw_len as usize, decompress)
                .map_err(|e| bad(StreamId::Name, e.0))?;
            self.streams[StreamId::Name as usize] = Some(raw);
        }
        Ok(())
    }

    /// Checks that the blocks of the blocked streams read lie in the block area (after every
    /// stream-table range) and do not overlap one another.
    fn check_block_area(&self, streams: &[StreamInfo]) -> Result<()> {
        let area = block_area_start(streams);
        let mut ranges: Vec<std::ops::Range<u64>> = self
            .blocked
            .iter()
            .flatten()
            .flat_map(|b| {
                b.dir
                    .blocks
                    .iter()
                    .filter(|i| i.stored_len > 0)
                    .map(|i| i.range())
            })
            .collect();
        ranges.sort_by_key(|r| r.start);
        let inside = ranges.first().is_none_or(|r| r.start >= area);
        if !inside || ranges.windows(2).any(|w| w[0].end > w[1].start) {
            return Err(Error::corrupt(
                &self.what,
                "record blocks outside the block area or overlapping",
            ));
        }
        Ok(())
    }

    /// The blocks (stream, block number, bytes in the object) not yet decoded that hold a
    /// record `keep` selects, in object order.
    pub(crate) fn blocks_needed(
        &self,
        keep: &[bool],
    ) -> Vec<(StreamId, usize, std::ops::Range<u64>)> {
        let mut out = Vec::new();
        for id in StreamId::ALL {
            let Some(bl) = &self.blocked[id as usize] else {
                continue;
            };
            let k = bl.dir.records_per_block as usize;
            for (b, info) in bl.dir.blocks.iter().enumerate() {
                let records = b * k..((b + 1) * k).min(keep.len());
                if !bl.decoded[b] && keep.get(records).is_some_and(|r| r.contains(&true)) {
                    out.push((id, b, info.range()));
                }
            }
        }
        out.sort_by_key(|(_, _, r)| r.start);
        out
    }

    /// Checks and decodes block `b` of blocked stream `id` from `span` (bytes of the object
    /// from offset `base`).
    pub(crate) fn decode_block(
        &mut self,
        id: StreamId,
        b: usize,
        span: &[u8],
        base: u64,
    ) -> Result<()> {
        self.prepare_blocks(id)?;
        let bytes = self.block_bytes(id, b, span, base)?;
        self.install_block(id, b, bytes);
        Ok(())
    }

    /// Decodes the blocks `jobs` names (stream, block, and the bytes of the object from an
    /// offset that hold it), on two threads when they are many.
    ///
    /// A region's records sit in one or two chunks, and the chunk decoded on a background
    /// thread while the caller formats the other is most of a query's wall time: its blocks
    /// (qualities first) split in two halves of about equal decoded size finish in half the
    /// time on the core the caller leaves idle. Below [`PARALLEL_BLOCK_BYTES`] of output a
    /// thread costs more than it saves.
    pub(crate) fn decode_blocks(&mut self, jobs: &[(StreamId, usize, &[u8], u64)]) -> Result<()> {
        for id in StreamId::ALL {
            if jobs.iter().any(|j| j.0 == id) {
                self.prepare_blocks(id)?;
            }
        }
        let size = |&(id, b, ..): &(StreamId, usize, &[u8], u64)| {
            self.blocked[id as usize]
                .as_ref()
                .and_then(|bl| Some(bl.starts.get(b + 1)? - bl.starts.get(b)?))
                .unwrap_or(0)
        };
        let total: usize = jobs.iter().map(size).sum();
        let this = &*self;
        let decode_all = |part: &[(StreamId, usize, &[u8], u64)]| {
            part.iter()
                .map(|&(id, b, span, base)| this.block_bytes(id, b, span, base))
                .collect::<Result<Vec<_>>>()
        };
        let decoded = if total >= PARALLEL_BLOCK_BYTES && jobs.len() > 1 && two_cores() {
            // The first jobs up to half the output on a helper, the rest here.
            let mut half = 0;
            let mut acc = 0;
            while half < jobs.len() && 2 * acc < total {
                acc += size(&jobs[half]);
                half += 1;
            }
            let (theirs, mine) = jobs.split_at(half);
            std::thread::scope(|scope| {
                let helper = std::thread::Builder::new()
                    .name("bams3-blocks".into())
                    .spawn_scoped(scope, || decode_all(theirs));
                let ours = decode_all(mine);
                let theirs = match helper {
                    Ok(h) => h.join().unwrap_or_else(|_| {
                        Err(Error::Internal("block decoding thread panicked".into()))
                    }),
                    // No thread: this one decodes their half too.
                    Err(_) => decode_all(theirs),
                };
                Ok::<_, Error>([theirs?, ours?].concat())
            })?
        } else {
            decode_all(jobs)?
        };
        for (&(id, b, ..), bytes) in jobs.iter().zip(decoded) {
            self.install_block(id, b, bytes);
        }
        Ok(())
    }

    /// Parses what every block of stream `id` shares (its rANS table or quality model), once.
    fn prepare_blocks(&mut self, id: StreamId) -> Result<()> {
        let what = &self.what;
        let Some(bl) = &mut self.blocked[id as usize] else {
            return Err(Error::Internal(format!(
                "stream '{}' is not blocked",
                id.name()
            )));
        };
        let bad = |d: String| Error::corrupt(what, format!("stream '{}': {d}", id.name()));
        match bl.dir.inner_codec {
            CODEC_RANS1 if bl.table.is_none() => {
                let (t, used) = rans::DecodeTable::parse(&bl.dir.params)
                    .map_err(|e| bad(format!("rANS table: {}", e.0)))?;
                if used != bl.dir.params.len() {
                    return Err(bad("rANS table: trailing bytes".into()));
                }
                bl.table = Some(t);
            }
            CODEC_QUAL_CONTEXT if bl.quality.is_none() => {
                let m = quality::DecodeModel::parse(&bl.dir.params)
                    .map_err(|e| bad(format!("quality model: {}", e.0)))?;
                bl.quality = Some(m);
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks block `b` of stream `id` in `span` and returns its decoded bytes; the stream's
    /// shared parameters must have been parsed ([`ChunkData::prepare_blocks`]).
    fn block_bytes(&self, id: StreamId, b: usize, span: &[u8], base: u64) -> Result<Vec<u8>> {
        let what = &self.what;
        let Some(bl) = &self.blocked[id as usize] else {
            return Err(Error::Internal(format!(
                "stream '{}' is not blocked",
                id.name()
            )));
        };
        let info =
            *bl.dir.blocks.get(b).ok_or_else(|| {
                Error::Internal(format!("no block {b} in stream '{}'", id.name()))
            })?;
        let stored = stored_in(span, base, info.offset, info.stored_len).ok_or_else(|| {
            Error::corrupt(
                what,
                "truncated chunk or index mismatch (block outside the bytes read)",
            )
        })?;
        let name = id.name();
        if crc32fast::hash(stored) != info.crc32 {
            return Err(Error::corrupt(
                what,
                format!(
                    "checksum mismatch in block {b} of stream '{name}' (corrupt or truncated chunk)"
                ),
            ));
        }
        let mut out = vec![0u8; bl.starts[b + 1] - bl.starts[b]];
        let dest = &mut out[..];
        let bad = |d: String| Error::corrupt(what, format!("block {b} of stream '{name}': {d}"));
        let unprepared = || Error::Internal(format!("stream '{name}' decoded before its tables"));
        match bl.dir.inner_codec {
            _ if dest.is_empty() => {
                if !stored.is_empty() {
                    return Err(bad("bytes for an empty block".into()));
                }
            }
            CODEC_RAW if stored.len() == dest.len() => dest.copy_from_slice(stored),
            CODEC_RAW => return Err(bad("decoded length differs from the directory".into())),
            CODEC_ZSTD => {
                let raw = decompress(stored, dest.len()).map_err(|e| bad(format!("zstd: {e}")))?;
                if raw.len() != dest.len() {
                    return Err(bad("decoded length differs from the directory".into()));
                }
                dest.copy_from_slice(&raw);
            }
            CODEC_RANS1 => {
                let table = bl.table.as_ref().ok_or_else(unprepared)?;
                table
                    .decode_into(stored, dest)
                    .map_err(|e| bad(format!("rANS: {}", e.0)))?;
            }
            CODEC_QUAL_CONTEXT => {
                let k = bl.dir.records_per_block as usize;
                let shapes = read_shapes(
                    self.streams[StreamId::Flag as usize].as_deref(),
                    self.streams[StreamId::SeqLen as usize].as_deref(),
                    b * k..((b + 1) * k).min(self.n_records_all),
                )
                .ok_or_else(|| bad("flags or sequence lengths missing or short".into()))?;
                let model = bl.quality.as_ref().ok_or_else(unprepared)?;
                model
                    .decode_into(stored, &shapes, dest)
                    .map_err(|e| bad(format!("qualities: {}", e.0)))?;
            }
            CODEC_TAG_COLUMNS => {
                let k = bl.dir.records_per_block as usize;
                let n = ((b + 1) * k).min(self.n_records_all) - b * k;
                tags::decode_into(stored, n, dest, decompress)
                    .map_err(|e| bad(format!("tags: {}", e.0)))?;
            }
            CODEC_BASES => {
                let raw = bases::decode(stored, dest.len())
                    .map_err(|e| bad(format!("bases: {}", e.0)))?;
                if raw.len() != dest.len() {
                    return Err(bad("decoded length differs from the directory".into()));
                }
                dest.copy_from_slice(&raw);
            }
            c => return Err(bad(format!("unknown codec {c}"))),
        }
        Ok(out)
    }

    /// Records block `b` of stream `id` as decoded, with its bytes.
    fn install_block(&mut self, id: StreamId, b: usize, bytes: Vec<u8>) {
        if let Some(bl) = &mut self.blocked[id as usize] {
            if !bl.decoded[b] {
                self.stored_decoded += bl.dir.blocks[b].stored_len;
            }
            bl.bytes[b] = bytes;
            bl.decoded[b] = true;
        }
    }

    /// Makes the record cursors build only the records `keep` marks (one flag per record),
    /// skipping the others without reading their bytes, and stop after the last of them
    /// ([`ChunkData::len`] is then the number of records up to it).
    pub(crate) fn select(&mut self, keep: Vec<bool>) {
        // Nothing after the last chosen record needs walking through.
        self.n_records = keep.iter().rposition(|&k| k).map_or(0, |i| i + 1);
        self.selected = Some(keep);
    }

    /// Stored (compressed) bytes of the streams that were decoded: what a reader had to fetch.
    pub fn stored_bytes_decoded(&self) -> u64 {
        self.stored_decoded
    }

    /// The decoded bytes of stream `id` (laid out as `docs/FORMAT.md` describes), when it
    /// was asked for and is not blocked (codec 3: its bytes are per block): for readers of a
    /// few fields that need no record rebuilt (`flagstat`).
    pub fn stream(&self, id: StreamId) -> Option<&[u8]> {
        self.streams[id as usize].as_deref()
    }

    /// The decoded bytes of stream `id` in record order: the whole stream, or the blocks of
    /// a blocked one, each beginning at a record; `None` when it was not asked for or a block
    /// was not decoded.
    ///
    /// ```
    /// use bams3_core::{chunk::{self, Fields, StreamId}, Record};
    /// let recs = vec![Record::from_sam_fields_for_doc(); 2000];
    /// let c = chunk::encode(&recs, 3).unwrap();
    /// let data = chunk::ChunkData::decode(&c.bytes, Fields::ALL, "doc").unwrap();
    /// let names: usize = data.stream_parts(StreamId::Name).unwrap().iter().map(|p| p.len()).sum();
    /// assert_eq!(names, 2000 * (recs[0].name().len() + 1));
    /// ```
    pub fn stream_parts(&self, id: StreamId) -> Option<Vec<&[u8]>> {
        match &self.blocked[id as usize] {
            Some(bl) => bl
                .decoded
                .iter()
                .all(|&d| d)
                .then(|| bl.bytes.iter().map(|b| b.as_slice()).collect()),
            None => self.streams[id as usize].as_deref().map(|s| vec![s]),
        }
    }

    /// Records in the chunk.
    pub fn len(&self) -> usize {
        self.n_records
    }

    /// Whether the chunk holds no records.
    pub fn is_empty(&self) -> bool {
        self.n_records == 0
    }

    /// Rebuilds the records one at a time, in stored order. Needs at least
    /// [`Fields::LOCATION`]; the fields of streams not decoded get placeholders, so a reader of
    /// a few columns skips decoding the rest: name `*` (name stream), every base `=` (bases),
    /// every quality missing (qualities), no mate: RNEXT `*`, PNEXT 0, TLEN 0 (mate stream).
    /// With [`Fields::ALL`] every record is the one stored.
    pub fn records(&self) -> RecordCursor<'_> {
        RecordCursor {
            data: self,
            st: CursorState::default(),
        }
    }

    /// Like [`ChunkData::records`], but owning the data, so the iterator can be kept while
    /// records are pulled one at a time (a query merging several chunks does this).
    pub fn into_records(self) -> OwnedRecords {
        OwnedRecords {
            data: self,
            st: CursorState::default(),
        }
    }
}

/// The fields of a record that coverage needs, borrowed from decoded streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alignment<'a> {
    /// Reference index.
    pub ref_id: i32,
    /// 0-based start.
    pub pos: i64,
    /// SAM flag.
    pub flag: u16,
    /// Mapping quality.
    pub mapq: u8,
    /// Stored CIGAR, `u32` LE words.
    pub cigar: &'a [u8],
    /// Sequence length.
    pub l_seq: usize,
}

impl Alignment<'_> {
    /// Whether the stored CIGAR may be BAM's long-CIGAR placeholder, whose real operations
    /// live in a tag that coverage decoding does not read.
    pub fn may_be_long_cigar(&self) -> bool {
        // htslib's placeholder starts with a soft clip of the whole read (Record::long_cigar).
        let Some(w) = self.cigar.get(..4) else {
            return false;
        };
        let op0 = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        self.ref_id >= 0 && self.pos >= 0 && op0 & 0xf == 4 && (op0 >> 4) as usize == self.l_seq
    }
}

impl ChunkData {
    /// Iterates the coverage fields of each record without rebuilding records. Needs
    /// [`Fields::COVERAGE`].
    pub fn alignments(&self) -> AlignmentCursor<'_> {
        AlignmentCursor {
            inner: self.records(),
        }
    }
}

/// Where a [`ChunkData::append_bam`] walk stopped, so that the next range walks on from there
/// instead of from the chunk's first record.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Resume(CursorState);

impl ChunkData {
    /// Records in the chunk, whatever a selection cut [`ChunkData::len`] to.
    pub(crate) fn records_in_chunk(&self) -> usize {
        self.n_records_all
    }

    /// Appends records `range` to `out` as BAM, each after its `block_size`; the blocks of
    /// blocked streams that hold them must be decoded. The walk starts at `resume` when that
    /// is not past `range.start` (else at the first record) and leaves it after the range.
    pub(crate) fn append_bam(
        &self,
        range: std::ops::Range<usize>,
        resume: &mut Resume,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if range.end > self.n_records_all {
            return Err(Error::Internal(format!(
                "records {range:?} of a chunk of {}",
                self.n_records_all
            )));
        }
        let st = resume.0;
        let mut c = RecordCursor {
            data: self,
            st: if st.index <= range.start && !st.failed {
                st
            } else {
                CursorState::default()
            },
        };
        while c.st.index < range.start {
            c.skip_record()?;
        }
        while c.st.index < range.end {
            let r = c.next_record()?;
            let b = r.as_bytes();
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        resume.0 = c.st;
        Ok(())
    }
}

/// Iterator over [`Alignment`]s of a chunk.
pub struct AlignmentCursor<'a> {
    inner: RecordCursor<'a>,
}

impl<'a> AlignmentCursor<'a> {
    fn next_alignment(&mut self) -> Result<Alignment<'a>> {
        let c = &mut self.inner;
        let ref_id = i32::from_le_bytes(c.take(StreamId::RefId, 4)?.try_into().expect("4"));
        let pos = c.next_pos()?;
        let mapq = c.take(StreamId::Mapq, 1)?[0];
        let flag = u16::from_le_bytes(c.take(StreamId::Flag, 2)?.try_into().expect("2"));
        let n_cigar = c.varint(StreamId::CigarLen)? as usize;
        let l_seq = c.varint(StreamId::SeqLen)? as usize;
        if n_cigar > u16::MAX as usize {
            return Err(c.corrupt(StreamId::CigarLen));
        }
        let cigar = c.take(StreamId::Cigar, 4 * n_cigar)?;
        c.st.index += 1;
        Ok(Alignment {
            ref_id,
            pos,
            flag,
            mapq,
            cigar,
            l_seq,
        })
    }
}

impl<'a> Iterator for AlignmentCursor<'a> {
    type Item = Result<Alignment<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.inner.st.failed || self.inner.st.index >= self.inner.data.n_records {
            return None;
        }
        let r = self.next_alignment();
        self.inner.st.failed = r.is_err();
        Some(r)
    }
}

/// The read name of records rebuilt without the name stream (SAM's "no name").
const PLACEHOLDER_NAME: &[u8] = b"*\0";

/// Iterator rebuilding BAM records from a [`ChunkData`].
pub struct RecordCursor<'a> {
    data: &'a ChunkData,
    st: CursorState,
}

/// Where a cursor is in each stream.
#[derive(Debug, Clone, Copy, Default)]
struct CursorState {
    at: [usize; N_STREAMS],
    index: usize,
    prev_pos: i64,
    failed: bool,
}

/// Records of a chunk that the iterator owns; see [`ChunkData::into_records`].
pub struct OwnedRecords {
    data: ChunkData,
    st: CursorState,
}

impl Iterator for OwnedRecords {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        let mut c = RecordCursor {
            data: &self.data,
            st: self.st,
        };
        let r = c.next();
        self.st = c.st;
        r
    }
}

impl<'a> RecordCursor<'a> {
    /// The bytes of stream `id` from the cursor on, to the end of the stream or, in a blocked
    /// stream, of the current record's block (which must be decoded).
    #[inline]
    fn rest(&self, id: StreamId) -> Result<&'a [u8]> {
        let data: &'a ChunkData = self.data;
        let at = self.st.at[id as usize];
        // Whole streams first: every record reads several of them, and it is the hot path.
        if let Some(s) = data.streams[id as usize].as_deref() {
            return s.get(at..).ok_or_else(|| self.corrupt(id));
        }
        self.rest_blocked(id, at)
    }

    /// [`RecordCursor::rest`] of a blocked stream (or of one not decoded: an error).
    fn rest_blocked(&self, id: StreamId, at: usize) -> Result<&'a [u8]> {
        let data: &'a ChunkData = self.data;
        if let Some(bl) = &data.blocked[id as usize] {
            // A record's bytes lie in its own block (blocks are cut at record boundaries).
            let b = bl.dir.block_of(self.st.index);
            if !bl.decoded.get(b).is_some_and(|&d| d) {
                return Err(Error::Internal(format!(
                    "record {} of stream '{}' is in a block not decoded",
                    self.st.index,
                    id.name()
                )));
            }
            return at
                .checked_sub(bl.starts[b])
                .and_then(|rel| bl.bytes[b].get(rel..))
                .ok_or_else(|| self.corrupt(id));
        }
        Err(Error::Invalid(format!(
            "stream '{}' was not decoded",
            id.name()
        )))
    }

    #[inline]
    fn take(&mut self, id: StreamId, n: usize) -> Result<&'a [u8]> {
        let bytes = self.rest(id)?.get(..n).ok_or_else(|| self.corrupt(id))?;
        self.st.at[id as usize] += n;
        Ok(bytes)
    }

    /// Moves on to the next record. Where that starts a block of a blocked stream, the stream's
    /// position becomes the block's start: records skipped in a block that was not decoded
    /// (whose names' lengths are unknown) leave it behind, and a decoded block must have
    /// been walked to its end exactly.
    fn next_index(&mut self) -> Result<()> {
        self.st.index += 1;
        let i = self.st.index;
        if i >= self.data.n_records_all {
            return Ok(());
        }
        for (id, bl) in StreamId::ALL.iter().zip(&self.data.blocked) {
            let Some(bl) = bl else { continue };
            let k = bl.dir.records_per_block as usize;
            if !i.is_multiple_of(k) {
                continue;
            }
            let b = i / k;
            let at = &mut self.st.at[*id as usize];
            if bl.decoded[b - 1] && *at != bl.starts[b] {
                return Err(Error::corrupt(
                    &self.data.what,
                    format!(
                        "block {} of stream '{}': records' lengths differ from the block's",
                        b - 1,
                        id.name()
                    ),
                ));
            }
            *at = bl.starts[b];
        }
        Ok(())
    }

    /// Whether stream `id` was decoded (or its blocks can be): a record's field from a stream
    /// that was not gets a placeholder.
    fn has(&self, id: StreamId) -> bool {
        self.data.streams[id as usize].is_some() || self.data.blocked[id as usize].is_some()
    }

    #[inline]
    fn varint(&mut self, id: StreamId) -> Result<u64> {
        let s = self.data.streams[id as usize].as_deref();
        let mut at = self.st.at[id as usize];
        let v = s.and_then(|s| varint::get(s, &mut at));
        self.st.at[id as usize] = at;
        v.ok_or_else(|| self.corrupt(id))
    }

    /// The next position: the previous one plus a delta (which a damaged stream may make
    /// overflow).
    fn next_pos(&mut self) -> Result<i64> {
        let delta = varint::unzigzag(self.varint(StreamId::Pos)?);
        let pos = self
            .st
            .prev_pos
            .checked_add(delta)
            .ok_or_else(|| self.corrupt(StreamId::Pos))?;
        self.st.prev_pos = pos;
        Ok(pos)
    }

    #[cold]
    fn corrupt(&self, id: StreamId) -> Error {
        Error::corrupt(
            &self.data.what,
            format!(
                "record {}: stream '{}' ends early",
                self.st.index,
                id.name()
            ),
        )
    }

    /// Length of the next read name, its NUL included.
    fn name_len(&self) -> Result<usize> {
        self.rest(StreamId::Name)?
            .iter()
            .position(|&c| c == 0)
            .map(|n| n + 1)
            .ok_or_else(|| self.corrupt(StreamId::Name))
    }

    /// Whether the current record's bytes of stream `id` can be read: the stream was decoded,
    /// or it is blocked and the record's block was.
    fn readable(&self, id: StreamId) -> bool {
        match &self.data.blocked[id as usize] {
            Some(bl) => bl.decoded[bl.dir.block_of(self.st.index)],
            None => self.data.streams[id as usize].is_some(),
        }
    }

    /// Moves past a record without building it: only the length fields are read, so the
    /// blocks of blocked streams that hold it need not be decoded.
    fn skip_record(&mut self) -> Result<()> {
        self.take(StreamId::RefId, 4)?;
        self.next_pos()?;
        // In a name block not decoded the length is unknown, and not needed: the walk picks
        // the stream up at the next block's start.
        let name_len = if self.readable(StreamId::Name) {
            self.name_len()?
        } else {
            0
        };
        let n_cigar = self.varint(StreamId::CigarLen)? as usize;
        let l_seq = self.varint(StreamId::SeqLen)? as usize;
        if self.has(StreamId::Mate) {
            for _ in 0..3 {
                self.varint(StreamId::Mate)?;
            }
        }
        let aux_len = if self.has(StreamId::AuxLen) {
            self.varint(StreamId::AuxLen)? as usize
        } else {
            0
        };
        let advance = [
            (StreamId::Mapq, 1),
            (StreamId::Bin, 2),
            (StreamId::Flag, 2),
            (StreamId::Name, name_len),
            (StreamId::Cigar, n_cigar.saturating_mul(4)),
            (StreamId::Seq, l_seq.div_ceil(2)),
            (StreamId::Qual, l_seq),
            (StreamId::Aux, aux_len),
        ];
        for (id, n) in advance {
            if !self.readable(id) {
                continue; // not decoded: nothing to move past
            }
            let len = match &self.data.blocked[id as usize] {
                Some(bl) => bl.starts[bl.dir.block_of(self.st.index) + 1],
                None => self.data.streams[id as usize]
                    .as_deref()
                    .map_or(0, |s| s.len()),
            };
            let at = &mut self.st.at[id as usize];
            match at.checked_add(n) {
                Some(end) if end <= len => *at = end,
                _ => return Err(self.corrupt(id)),
            }
        }
        self.next_index()
    }

    /// The next record `select` chose (every record when nothing was selected).
    fn next_selected(&mut self) -> Option<Result<Record>> {
        if let Some(keep) = &self.data.selected {
            while self.st.index < self.data.n_records && !keep[self.st.index] {
                if let Err(e) = self.skip_record() {
                    self.st.failed = true;
                    return Some(Err(e));
                }
            }
        }
        if self.st.failed || self.st.index >= self.data.n_records {
            return None;
        }
        let r = self.next_record();
        self.st.failed = r.is_err();
        Some(r)
    }

    /// The next record's mate reference, mate position and TLEN (stored as deltas from its
    /// own reference and position); without the mate stream RNEXT `*`, PNEXT 0, TLEN 0.
    fn next_mate(&mut self, ref_id: i32, pos: i32) -> Result<(i32, i32, i32)> {
        if !self.has(StreamId::Mate) {
            return Ok((-1, -1, 0));
        }
        let mate_ref = self.varint(StreamId::Mate)?;
        let mate_pos = self.varint(StreamId::Mate)?;
        let tlen = self.varint(StreamId::Mate)?;
        let next_ref = i32::try_from(ref_id as i64 + varint::unzigzag(mate_ref));
        let next_pos = i32::try_from(pos as i64 + varint::unzigzag(mate_pos));
        let tlen = i32::try_from(varint::unzigzag(tlen));
        match (next_ref, next_pos, tlen) {
            (Ok(r), Ok(p), Ok(t)) => Ok((r, p, t)),
            _ => Err(self.corrupt(StreamId::Mate)),
        }
    }

    fn next_record(&mut self) -> Result<Record> {
        let ref_id = i32::from_le_bytes(self.take(StreamId::RefId, 4)?.try_into().expect("4"));
        let pos = self.next_pos()?;
        let pos = i32::try_from(pos).map_err(|_| self.corrupt(StreamId::Pos))?;
        let mapq = self.take(StreamId::Mapq, 1)?[0];
        let bin_xor = u16::from_le_bytes(self.take(StreamId::Bin, 2)?.try_into().expect("2"));
        let flag = u16::from_le_bytes(self.take(StreamId::Flag, 2)?.try_into().expect("2"));
        let has_name = self.has(StreamId::Name);
        let name_len = if has_name {
            self.name_len()?
        } else {
            PLACEHOLDER_NAME.len()
        };
        let n_cigar = self.varint(StreamId::CigarLen)? as usize;
        let l_seq = self.varint(StreamId::SeqLen)? as usize;
        let (next_ref, next_pos, tlen) = self.next_mate(ref_id, pos)?;
        let aux_len = if self.has(StreamId::AuxLen) {
            self.varint(StreamId::AuxLen)? as usize
        } else {
            0
        };
        if name_len > 255 || n_cigar > u16::MAX as usize || l_seq > i32::MAX as usize {
            return Err(Error::corrupt(
                &self.data.what,
                format!("record {}: impossible field length", self.st.index),
            ));
        }

        // The lengths come from the streams: a damaged one must not size the buffer (the takes
        // below fail if the bytes are not there).
        let mut b = Vec::with_capacity(
            (FIXED_LEN + name_len + 4 * n_cigar + l_seq.div_ceil(2) + l_seq)
                .saturating_add(aux_len)
                .min(MAX_PREALLOC),
        );
        b.extend_from_slice(&ref_id.to_le_bytes());
        b.extend_from_slice(&pos.to_le_bytes());
        b.push(name_len as u8);
        b.push(mapq);
        b.extend_from_slice(&[0, 0]); // bin, filled in once the CIGAR is known
        b.extend_from_slice(&(n_cigar as u16).to_le_bytes());
        b.extend_from_slice(&flag.to_le_bytes());
        b.extend_from_slice(&(l_seq as i32).to_le_bytes());
        b.extend_from_slice(&next_ref.to_le_bytes());
        b.extend_from_slice(&next_pos.to_le_bytes());
        b.extend_from_slice(&tlen.to_le_bytes());
        if has_name {
            b.extend_from_slice(self.take(StreamId::Name, name_len)?);
        } else {
            b.extend_from_slice(PLACEHOLDER_NAME);
        }
        let cigar_at = b.len();
        b.extend_from_slice(self.take(StreamId::Cigar, 4 * n_cigar)?);
        let bin = bin_xor ^ expected_bin(pos, flag, &b[cigar_at..]);
        b[10..12].copy_from_slice(&bin.to_le_bytes());
        match self.has(StreamId::Seq) {
            true => b.extend_from_slice(self.take(StreamId::Seq, l_seq.div_ceil(2))?),
            false => b.resize(b.len() + l_seq.div_ceil(2), 0), // '='
        }
        match self.has(StreamId::Qual) {
            true => b.extend_from_slice(self.take(StreamId::Qual, l_seq)?),
            false => b.resize(b.len() + l_seq, 0xff), // missing
        }
        if aux_len > 0 {
            b.extend_from_slice(self.take(StreamId::Aux, aux_len)?);
        }
        self.next_index()?;
        Record::from_bytes(b)
    }
}

impl Iterator for RecordCursor<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.st.failed {
            return None;
        }
        self.next_selected()
    }
}
