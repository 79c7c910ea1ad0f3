//! `samtools flagstat` counts of a whole dataset, from three small streams per chunk.
//!
//! flagstat needs each record's flag, its MAPQ and whether its mate lies on another
//! reference; the mate stream stores the mate's reference as a delta from the record's, so a
//! non-zero delta is exactly samtools' `mtid != tid`. Names, CIGARs, bases, qualities and tags
//! (most of a chunk's bytes) are neither decoded nor, on S3, fetched.

use crate::chunk::{ChunkData, Fields, StreamId};
use crate::codec::varint;
use crate::index::ChunkEntry;
use crate::{Error, Record, Result};

use super::Dataset;
use super::fetch::in_parallel;

/// SAM flag bits, named as in htslib.
mod flags {
    pub const PAIRED: u16 = 0x1;
    pub const PROPER_PAIR: u16 = 0x2;
    pub const UNMAPPED: u16 = 0x4;
    pub const MATE_UNMAPPED: u16 = 0x8;
    pub const READ1: u16 = 0x40;
    pub const READ2: u16 = 0x80;
    pub const SECONDARY: u16 = 0x100;
    pub const QCFAIL: u16 = 0x200;
    pub const DUPLICATE: u16 = 0x400;
    pub const SUPPLEMENTARY: u16 = 0x800;
}

/// The counters of `samtools flagstat` (1.16), each split as samtools splits it: index 0 for
/// QC-passed records, 1 for QC-failed ones (flag 0x200).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagStats {
    /// Records.
    pub total: [u64; 2],
    /// Neither secondary nor supplementary.
    pub primary: [u64; 2],
    /// Secondary (0x100).
    pub secondary: [u64; 2],
    /// Supplementary (0x800) and not secondary.
    pub supplementary: [u64; 2],
    /// Duplicates (0x400).
    pub duplicates: [u64; 2],
    /// Primary duplicates.
    pub primary_duplicates: [u64; 2],
    /// Mapped (no 0x4).
    pub mapped: [u64; 2],
    /// Primary and mapped.
    pub primary_mapped: [u64; 2],
    /// Primary and paired (0x1).
    pub paired: [u64; 2],
    /// Primary, paired, first of the pair (0x40).
    pub read1: [u64; 2],
    /// Primary, paired, second of the pair (0x80).
    pub read2: [u64; 2],
    /// Primary, paired, proper pair (0x2) and mapped.
    pub properly_paired: [u64; 2],
    /// Primary, paired, mapped, mate mapped.
    pub both_mapped: [u64; 2],
    /// Primary, paired, mapped, mate unmapped.
    pub singletons: [u64; 2],
    /// Primary, paired, both mapped, the mate on another reference.
    pub mate_other_ref: [u64; 2],
    /// The same with MAPQ at least 5.
    pub mate_other_ref_mapq5: [u64; 2],
}

impl FlagStats {
    /// Counts one record, exactly as samtools' `flagstat_loop`.
    ///
    /// ```
    /// use bams3_core::dataset::FlagStats;
    /// let mut s = FlagStats::default();
    /// s.add(0x1 | 0x2 | 0x40, 60, true);
    /// s.add(0x4 | 0x200, 0, false);
    /// assert_eq!((s.total, s.properly_paired, s.mapped), ([1, 1], [1, 0], [1, 0]));
    /// ```
    pub fn add(&mut self, flag: u16, mapq: u8, mate_other_ref: bool) {
        let w = usize::from(flag & flags::QCFAIL != 0);
        let unmapped = flag & flags::UNMAPPED != 0;
        self.total[w] += 1;
        if flag & flags::SECONDARY != 0 {
            self.secondary[w] += 1;
        } else if flag & flags::SUPPLEMENTARY != 0 {
            self.supplementary[w] += 1;
        } else {
            self.primary[w] += 1;
            if flag & flags::PAIRED != 0 {
                self.paired[w] += 1;
                let mate_unmapped = flag & flags::MATE_UNMAPPED != 0;
                self.properly_paired[w] += u64::from(flag & flags::PROPER_PAIR != 0 && !unmapped);
                self.read1[w] += u64::from(flag & flags::READ1 != 0);
                self.read2[w] += u64::from(flag & flags::READ2 != 0);
                self.singletons[w] += u64::from(mate_unmapped && !unmapped);
                if !unmapped && !mate_unmapped {
                    self.both_mapped[w] += 1;
                    if mate_other_ref {
                        self.mate_other_ref[w] += 1;
                        self.mate_other_ref_mapq5[w] += u64::from(mapq >= 5);
                    }
                }
            }
            self.primary_mapped[w] += u64::from(!unmapped);
            self.primary_duplicates[w] += u64::from(flag & flags::DUPLICATE != 0);
        }
        self.mapped[w] += u64::from(!unmapped);
        self.duplicates[w] += u64::from(flag & flags::DUPLICATE != 0);
    }

    fn merge(&mut self, o: &FlagStats) {
        let pairs: [(&mut [u64; 2], &[u64; 2]); 16] = [
            (&mut self.total, &o.total),
            (&mut self.primary, &o.primary),
            (&mut self.secondary, &o.secondary),
            (&mut self.supplementary, &o.supplementary),
            (&mut self.duplicates, &o.duplicates),
            (&mut self.primary_duplicates, &o.primary_duplicates),
            (&mut self.mapped, &o.mapped),
            (&mut self.primary_mapped, &o.primary_mapped),
            (&mut self.paired, &o.paired),
            (&mut self.read1, &o.read1),
            (&mut self.read2, &o.read2),
            (&mut self.properly_paired, &o.properly_paired),
            (&mut self.both_mapped, &o.both_mapped),
            (&mut self.singletons, &o.singletons),
            (&mut self.mate_other_ref, &o.mate_other_ref),
            (&mut self.mate_other_ref_mapq5, &o.mate_other_ref_mapq5),
        ];
        for (a, b) in pairs {
            a[0] += b[0];
            a[1] += b[1];
        }
    }
}

/// What a flagstat read, for reports and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagStatReport {
    /// Chunks decoded.
    pub chunks: u64,
    /// Stored bytes of the streams decoded.
    pub stored_bytes: u64,
    /// Stored bytes of all chunks in full.
    pub chunk_bytes: u64,
}

impl Dataset {
    /// `samtools flagstat` of every record of the dataset, decoding only the flag, MAPQ and
    /// mate streams of each chunk (v0.1/v0.2 datasets: their records in full).
    ///
    /// ```no_run
    /// use bams3_core::{dataset::Dataset, storage::LocalStorage};
    /// use std::sync::Arc;
    /// let ds = Dataset::open(Arc::new(LocalStorage::new("sample.bams3"))).unwrap();
    /// let (stats, _report) = ds.flagstat().unwrap();
    /// println!("{} + {} in total", stats.total[0], stats.total[1]);
    /// ```
    pub fn flagstat(&self) -> Result<(FlagStats, FlagStatReport)> {
        let index = self.index()?;
        let entries: Vec<&ChunkEntry> = index
            .references
            .iter()
            .flat_map(|r| &r.chunks)
            .chain(&index.unmapped)
            .filter(|e| e.count > 0)
            .collect();
        let mut stats = FlagStats::default();
        let mut report = FlagStatReport::default();
        // Local stores read ahead 1, but decoding is the work there: two at a time.
        let width = self.storage().read_ahead().max(2);
        for group in entries.chunks(width) {
            for r in in_parallel(group, |e| self.flagstat_chunk(e)) {
                let (s, stored) = r?;
                stats.merge(&s);
                report.stored_bytes += stored;
            }
            report.chunks += group.len() as u64;
            report.chunk_bytes += group.iter().map(|e| e.stored_bytes).sum::<u64>();
        }
        Ok((stats, report))
    }

    /// The counts of one chunk and the stored bytes decoded for them.
    fn flagstat_chunk(&self, e: &ChunkEntry) -> Result<(FlagStats, u64)> {
        let mut s = FlagStats::default();
        if self.is_legacy() {
            let add = |r: &Record| {
                s.add(r.flag(), r.mapq(), r.next_ref_id() != r.ref_id());
                false
            };
            self.chunk_records(e, add)?;
            return Ok((s, e.stored_bytes));
        }
        let data = self.read_chunk(e, Fields::FLAGSTAT)?;
        count_streams(
            &data,
            &mut s,
            &format!("{}/{}", self.storage().root(), e.path),
        )?;
        Ok((s, data.stored_bytes_decoded()))
    }
}

/// Adds the records of a chunk decoded with [`Fields::FLAGSTAT`].
fn count_streams(data: &ChunkData, s: &mut FlagStats, what: &str) -> Result<()> {
    let n = data.len();
    let stream = |id: StreamId| {
        data.stream(id)
            .ok_or_else(|| Error::Invalid(format!("stream '{}' was not decoded", id.name())))
    };
    let bad = |id: StreamId| Error::corrupt(what, format!("stream '{}' too short", id.name()));
    let (flag, mapq, mate) = (
        stream(StreamId::Flag)?,
        stream(StreamId::Mapq)?,
        stream(StreamId::Mate)?,
    );
    if flag.len() < 2 * n {
        return Err(bad(StreamId::Flag));
    }
    if mapq.len() < n {
        return Err(bad(StreamId::Mapq));
    }
    let mut at = 0;
    for i in 0..n {
        let f = u16::from_le_bytes([flag[2 * i], flag[2 * i + 1]]);
        // Mate reference delta, then mate position delta and template length.
        let dref = varint::get(mate, &mut at);
        let rest = varint::get(mate, &mut at).and(varint::get(mate, &mut at));
        let (Some(dref), Some(_)) = (dref, rest) else {
            return Err(bad(StreamId::Mate));
        };
        s.add(f, mapq[i], dref != 0);
    }
    Ok(())
}
