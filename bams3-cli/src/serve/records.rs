//! The body of a record URL: the records of one piece of a region, in BAM encoding, cut into
//! BGZF blocks as they are decoded and sent down a bounded channel (memory stays at a few
//! blocks per stream, whatever the region's size).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bams3_core::chunk::{Fields, StreamId};
use bams3_core::dataset::{Dataset, RecordFilter};
use bams3_core::region::Region;
use bams3_core::Record;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Uncompressed bytes per BGZF block (htslib's own block size).
const BLOCK_DATA: usize = 65_280;
/// Largest BGZF block: a block's size must fit BSIZE's 16 bits.
const MAX_BLOCK: usize = 65_536;
/// Compressed bytes gathered before a send: a few blocks, so a send is not one per block.
const SEND_AT: usize = 256 << 10;

/// Which records one URL serves: those of `region` and, when `from` is set, only those that
/// start at or after it (a region cut into pieces gives each record to exactly one piece: the
/// one holding its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The records to read.
    pub region: Region,
    /// Only records starting at or after this 0-based position.
    pub from: Option<i64>,
}

/// What `fields`, `tags` and `notags` ask to leave out. FLAG, RNAME, POS and CIGAR are always
/// kept (they place a record; the specification lets a server send more than was asked), and
/// so is the `CG` tag (it holds long CIGARs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// QNAME becomes `*`.
    pub drop_qname: bool,
    /// MAPQ becomes 255 (unavailable).
    pub drop_mapq: bool,
    /// RNEXT becomes `*`.
    pub drop_rnext: bool,
    /// PNEXT becomes 0 (unavailable).
    pub drop_pnext: bool,
    /// TLEN becomes 0.
    pub drop_tlen: bool,
    /// SEQ and QUAL become `*` (only when QUAL is not wanted either).
    pub drop_seq: bool,
    /// QUAL becomes `*` (bytes 0xFF).
    pub drop_qual: bool,
    /// Only these tags (`None`: all).
    pub tags: Option<HashSet<[u8; 2]>>,
    /// Not these tags.
    pub notags: HashSet<[u8; 2]>,
}

impl Shape {
    /// Whether records pass unchanged.
    pub fn is_identity(&self) -> bool {
        *self == Shape::default()
    }

    /// The streams a query must decode for records of this shape: the fields it drops need
    /// not be decoded (the decoder's placeholders are overwritten by [`Shape::append`]).
    pub fn fields(&self) -> Fields {
        let mut f = Fields::LOCATION;
        let wanted = [
            (!self.drop_qname, StreamId::Name),
            (
                !(self.drop_rnext && self.drop_pnext && self.drop_tlen),
                StreamId::Mate,
            ),
            // Bases are kept when qualities are wanted (SEQ goes only with QUAL).
            (!(self.drop_seq && self.drop_qual), StreamId::Seq),
            (!self.drop_qual, StreamId::Qual),
        ];
        for (want, id) in wanted {
            if want {
                f = f.with(id);
            }
        }
        f
    }

    fn keeps_tag(&self, tag: [u8; 2]) -> bool {
        &tag == b"CG"
            || (self.tags.as_ref().is_none_or(|t| t.contains(&tag)) && !self.notags.contains(&tag))
    }

    /// Appends `r`, reshaped, to `out` as BAM (block size first).
    fn append(&self, r: &Record, out: &mut Vec<u8>) {
        let b = r.as_bytes();
        if self.is_identity() {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
            return;
        }
        let l_name = b[8] as usize;
        let n_cigar = u16::from_le_bytes([b[12], b[13]]) as usize;
        let l_seq = u32::from_le_bytes([b[16], b[17], b[18], b[19]]) as usize;
        let name_at = 32;
        let cigar_at = name_at + l_name;
        let seq_at = cigar_at + 4 * n_cigar;
        let qual_at = seq_at + l_seq.div_ceil(2);
        let aux_at = qual_at + l_seq;
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        let fixed = out.len();
        out.extend_from_slice(&b[..32]);
        if self.drop_mapq {
            out[fixed + 9] = 255;
        }
        if self.drop_rnext {
            out[fixed + 20..fixed + 24].copy_from_slice(&(-1i32).to_le_bytes());
        }
        if self.drop_pnext {
            out[fixed + 24..fixed + 28].copy_from_slice(&(-1i32).to_le_bytes());
        }
        if self.drop_tlen {
            out[fixed + 28..fixed + 32].copy_from_slice(&0i32.to_le_bytes());
        }
        if self.drop_qname {
            out[fixed + 8] = 2;
            out.extend_from_slice(b"*\0");
        } else {
            out.extend_from_slice(&b[name_at..cigar_at]);
        }
        out.extend_from_slice(&b[cigar_at..seq_at]);
        if self.drop_seq && self.drop_qual {
            out[fixed + 16..fixed + 20].copy_from_slice(&0u32.to_le_bytes());
        } else {
            out.extend_from_slice(&b[seq_at..qual_at]);
            if self.drop_qual {
                out.extend(std::iter::repeat_n(0xFF, l_seq));
            } else {
                out.extend_from_slice(&b[qual_at..aux_at]);
            }
        }
        let aux = &b[aux_at..];
        for f in r.aux_fields() {
            // A record that decoded has well-formed tags; stop at the first malformed one.
            let Ok(f) = f else { break };
            let start = f.value.as_ptr() as usize - aux.as_ptr() as usize - 3;
            let mut end = start + 3 + f.value.len();
            if matches!(f.ty, b'Z' | b'H') {
                end += 1;
            }
            if self.keeps_tag(f.tag) {
                out.extend_from_slice(&aux[start..end]);
            }
        }
        let len = (out.len() - fixed) as u32;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// BGZF compression of whole blocks with libdeflate.
pub struct BlockCompressor {
    level: libdeflater::Compressor,
    stored: libdeflater::Compressor,
}

impl BlockCompressor {
    /// A compressor at deflate `level` (0-12).
    pub fn new(level: u8) -> Self {
        let lvl = |l: i32| libdeflater::CompressionLvl::new(l).expect("level checked by clap");
        BlockCompressor {
            level: libdeflater::Compressor::new(lvl(level as i32)),
            stored: libdeflater::Compressor::new(lvl(0)),
        }
    }

    /// Appends `data` (at most [`BLOCK_DATA`] bytes, not empty) to `out` as one BGZF block.
    pub fn push_block(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&[
            0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0, 0, 0,
        ]);
        let room = MAX_BLOCK - 26;
        out.resize(at + 18 + room, 0);
        let n = match self.level.deflate_compress(data, &mut out[at + 18..]) {
            Ok(n) => n,
            // Incompressible data: stored deflate blocks always fit (65,280 + 5 bytes).
            Err(_) => self
                .stored
                .deflate_compress(data, &mut out[at + 18..])
                .expect("stored deflate of a BGZF block fits"),
        };
        out.truncate(at + 18 + n);
        out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        let bsize = (out.len() - at - 1) as u16;
        out[at + 16..at + 18].copy_from_slice(&bsize.to_le_bytes());
    }

    /// `data` as BGZF blocks (no end-of-file block).
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        for piece in data.chunks(BLOCK_DATA) {
            self.push_block(piece, &mut out);
        }
        out
    }
}

/// Limits on one stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Deflate level of the blocks.
    pub level: u8,
    /// How long the whole stream may take.
    pub timeout: Duration,
}

/// Starts a thread that sends `piece`'s records as BGZF blocks into `tx`; it stops when the
/// receiver goes away (a client that hung up), on a read error (sent as an `Err`, so the
/// response is cut short and the client sees a truncated transfer) or at the deadline.
/// `guard` (a concurrency permit) is held until the thread ends.
pub fn spawn<G: Send + 'static>(
    ds: Arc<Dataset>,
    piece: Piece,
    shape: Shape,
    limits: StreamLimits,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    guard: G,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("bams3-serve-records".into())
        .spawn(move || {
            let _guard = guard;
            if let Err(e) = produce(&ds, piece, &shape, limits, &tx) {
                let _ = tx.blocking_send(Err(std::io::Error::other(e)));
            }
        })
        .map(|_| ())
}

fn produce(
    ds: &Arc<Dataset>,
    piece: Piece,
    shape: &Shape,
    limits: StreamLimits,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
) -> Result<(), String> {
    let deadline = Instant::now() + limits.timeout;
    let mut z = BlockCompressor::new(limits.level);
    let mut raw: Vec<u8> = Vec::with_capacity(2 * BLOCK_DATA);
    let mut out: Vec<u8> = Vec::with_capacity(SEND_AT + MAX_BLOCK);
    let send = |out: &mut Vec<u8>| -> Result<bool, String> {
        if Instant::now() > deadline {
            return Err("stream timed out".into());
        }
        let bytes = Bytes::from(std::mem::replace(
            out,
            Vec::with_capacity(SEND_AT + MAX_BLOCK),
        ));
        Ok(tx.blocking_send(Ok(bytes)).is_ok())
    };
    for r in ds
        .query(&[piece.region], RecordFilter::default())
        .with_fields(shape.fields())
    {
        let r = r.map_err(|e| e.to_string())?;
        if piece.from.is_some_and(|f| (r.pos() as i64) < f) {
            continue;
        }
        shape.append(&r, &mut raw);
        if raw.len() >= BLOCK_DATA {
            let mut done = 0;
            while raw.len() - done >= BLOCK_DATA {
                z.push_block(&raw[done..done + BLOCK_DATA], &mut out);
                done += BLOCK_DATA;
            }
            raw.drain(..done);
            if out.len() >= SEND_AT && !send(&mut out)? {
                return Ok(());
            }
        }
    }
    if !raw.is_empty() {
        z.push_block(&raw, &mut out);
    }
    if !out.is_empty() {
        send(&mut out)?;
    }
    Ok(())
}
