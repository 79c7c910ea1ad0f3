//! Per-base read depth over a region, as `samtools depth`, decoding only the streams coverage
//! needs (positions, flags, MAPQ, CIGARs and read lengths: a few percent of a chunk's bytes).

use std::collections::HashMap;
use std::rc::Rc;

use crate::chunk::Fields;
use crate::dataset::Dataset;
use crate::index::ChunkEntry;
use crate::record::Record;
use crate::{Error, Result};

/// Options, named after `samtools depth`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthOptions {
    /// Records with any of these flags are skipped (default UNMAP, SECONDARY, QCFAIL, DUP).
    pub exclude_flags: u16,
    /// Minimum mapping quality (`-Q`).
    pub min_mapq: u8,
    /// Minimum read length (`-l`).
    pub min_len: usize,
    /// Minimum base quality (`-q`); above 0 the quality stream must be decoded too.
    pub min_baseq: u8,
    /// Print positions with zero depth too (`-a`).
    pub all_positions: bool,
    /// Count deletions as covered (`-J`).
    pub deletions: bool,
}

impl Default for DepthOptions {
    fn default() -> Self {
        DepthOptions {
            exclude_flags: 0x704,
            min_mapq: 0,
            min_len: 0,
            min_baseq: 0,
            all_positions: false,
            deletions: false,
        }
    }
}

/// What a depth computation read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DepthReport {
    /// Chunks decoded.
    pub chunks: u64,
    /// Stored bytes of the streams decoded.
    pub stored_bytes: u64,
    /// Stored bytes of the same chunks in full (what a record query would decode).
    pub chunk_bytes: u64,
}

/// Reference intervals (0-based, half-open) of the records of one chunk, each with a weight:
/// 1 for bases that count towards depth, 0 for a read's whole span. samtools prints every
/// position a passing read spans (deletions and skips included), with the counted depth.
type Segments = Vec<(i64, i64, u32)>;

/// Computes depth on reference `ref_id` over 0-based `[beg, end)` and calls `emit(pos, depth)`
/// for each position in order (only covered ones unless `all_positions`).
///
/// ```no_run
/// use bams3_core::{dataset::Dataset, depth, storage::LocalStorage};
/// use std::sync::Arc;
/// let ds = Dataset::open(Arc::new(LocalStorage::new("sample.bams3"))).unwrap();
/// depth::depth(&ds, 0, 0, 1_000_000, depth::DepthOptions::default(), |pos, d| {
///     println!("{}\t{d}", pos + 1);
///     Ok(())
/// }).unwrap();
/// ```
pub fn depth(
    ds: &Dataset,
    ref_id: usize,
    beg: i64,
    end: i64,
    opts: DepthOptions,
    mut emit: impl FnMut(i64, u32) -> Result<()>,
) -> Result<DepthReport> {
    let Some(reference) = ds.header().references.get(ref_id) else {
        return Err(Error::Invalid(format!("no reference #{ref_id}")));
    };
    let end = end.min(reference.length as i64);
    let window = match ds.metadata().chunk_size {
        0 => 1 << 20,
        w => w as i64,
    };
    let chunks = ds.chunks(Some(ref_id), Some((beg, end)))?;
    let mut report = DepthReport::default();
    let mut cache: HashMap<&str, (i64, Rc<Segments>)> = HashMap::new();
    let mut counts = Vec::new();
    let mut spanned = Vec::new();
    let mut ws = beg - beg.rem_euclid(window);
    while ws < end {
        let we = ws + window;
        cache.retain(|_, (max_end, _)| *max_end > ws);
        counts.clear();
        counts.resize(window as usize, 0u32);
        spanned.clear();
        spanned.resize(window as usize, false);
        for entry in chunks
            .iter()
            .filter(|e| e.overlaps(ws.max(beg), we.min(end)))
        {
            let segs = match cache.get(entry.path.as_str()) {
                Some((_, s)) => s.clone(),
                None => {
                    let s = Rc::new(segments(ds, entry, &opts, &mut report)?);
                    cache.insert(&entry.path, (entry.max_end, s.clone()));
                    s
                }
            };
            for &(s, e, weight) in segs.iter() {
                let (s, e) = ((s.max(ws) - ws) as usize, (e.min(we) - ws).max(0) as usize);
                if s >= e {
                    continue;
                }
                if weight == 0 {
                    spanned[s..e].fill(true);
                } else {
                    counts[s..e].iter_mut().for_each(|c| *c += weight);
                }
            }
        }
        for pos in ws.max(beg)..we.min(end) {
            let i = (pos - ws) as usize;
            let d = counts[i];
            if d > 0 || spanned[i] || opts.all_positions {
                emit(pos, d)?;
            }
        }
        ws = we;
    }
    Ok(report)
}

fn keep(flag: u16, mapq: u8, l_seq: usize, opts: &DepthOptions) -> bool {
    flag & opts.exclude_flags == 0 && mapq >= opts.min_mapq && l_seq >= opts.min_len
}

/// Adds the covered intervals of one alignment; `qual` restricts them to bases passing `-q`.
fn add_segments(
    out: &mut Segments,
    pos: i64,
    cigar: &[u8],
    qual: Option<&[u8]>,
    opts: &DepthOptions,
) {
    let (mut rpos, mut qpos) = (pos, 0usize);
    for w in cigar.chunks_exact(4) {
        let op = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let (len, code) = ((op >> 4) as i64, op & 0xf);
        match code {
            // M, =, X: aligned bases.
            0 | 7 | 8 => {
                match qual {
                    Some(q) => {
                        for i in 0..len {
                            let ok = q
                                .get(qpos + i as usize)
                                .is_some_and(|&b| b >= opts.min_baseq);
                            if ok {
                                out.push((rpos + i, rpos + i + 1, 1));
                            }
                        }
                    }
                    None => out.push((rpos, rpos + len, 1)),
                }
                rpos += len;
                qpos += len as usize;
            }
            // D: covered only with -J; N: never.
            2 => {
                if opts.deletions {
                    out.push((rpos, rpos + len, 1));
                }
                rpos += len;
            }
            3 => rpos += len,
            // I, S consume the read only.
            1 | 4 => qpos += len as usize,
            _ => {}
        }
    }
    if rpos > pos {
        out.push((pos, rpos, 0));
    }
}

fn segments(
    ds: &Dataset,
    entry: &ChunkEntry,
    opts: &DepthOptions,
    report: &mut DepthReport,
) -> Result<Segments> {
    let mut out = Segments::new();
    report.chunks += 1;
    report.chunk_bytes += entry.stored_bytes;
    if !ds.is_legacy() && opts.min_baseq == 0 {
        let data = ds.read_chunk(entry, Fields::COVERAGE)?;
        report.stored_bytes += data.stored_bytes_decoded();
        let mut long = false;
        for a in data.alignments() {
            let a = a?;
            if !keep(a.flag, a.mapq, a.l_seq, opts) {
                continue;
            }
            if a.may_be_long_cigar() {
                long = true;
                break;
            }
            add_segments(&mut out, a.pos, a.cigar, None, opts);
        }
        if !long {
            return Ok(out);
        }
        // A long CIGAR's operations are in a tag: decode this chunk in full instead.
        out.clear();
    }
    let records: Vec<Record> =
        ds.chunk_records(entry, |r| keep(r.flag(), r.mapq(), r.l_seq(), opts))?;
    report.stored_bytes += entry.stored_bytes;
    for r in &records {
        let qual = (opts.min_baseq > 0).then(|| r.qual());
        add_segments(&mut out, r.pos() as i64, r.cigar(), qual, opts);
    }
    Ok(out)
}
