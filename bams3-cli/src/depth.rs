//! `bams3 depth DATASET [REGION...]`: `samtools depth` on a dataset.

use std::io::Write;

use anyhow::{bail, Result};
use bams3_core::dataset::Dataset;
use bams3_core::dataset::OpenOptions;
use bams3_core::depth::{depth, DepthOptions};
use bams3_core::region::{Bed, Region, Targets};

use crate::output::open_stream;
use crate::units;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
    /// Regions (chr, chr:start, chr:start-end); default every reference with reads.
    regions: Vec<String>,
    /// Region, as samtools' -r (may be repeated; adds to the positional regions).
    #[arg(short = 'r', long = "region")]
    region: Vec<String>,
    /// Only positions inside the intervals of this BED file (as samtools depth -b).
    #[arg(short = 'b', value_name = "FILE")]
    bed: Option<String>,
    /// Output all positions, including those with zero depth.
    #[arg(short = 'a')]
    all: bool,
    /// Remove these flags from the default filter (UNMAP,SECONDARY,QCFAIL,DUP).
    #[arg(short = 'g', value_parser = units::flag_arg, default_value = "0")]
    include_flags: u16,
    /// Add these flags to the default filter.
    #[arg(short = 'G', value_parser = units::flag_arg, default_value = "0")]
    exclude_flags: u16,
    /// Minimum read length.
    #[arg(short = 'l', default_value_t = 0)]
    min_len: usize,
    /// Minimum base quality.
    #[arg(short = 'q', long = "min-BQ", default_value_t = 0)]
    min_baseq: u8,
    /// Minimum mapping quality.
    #[arg(short = 'Q', long = "min-MQ", default_value_t = 0)]
    min_mapq: u8,
    /// Count deletions as covered.
    #[arg(short = 'J')]
    deletions: bool,
    /// Print a header line.
    #[arg(short = 'H')]
    header: bool,
    /// Output file.
    #[arg(short = 'o')]
    output: Option<String>,
    /// Print to stderr how many chunk bytes were decoded.
    #[arg(long)]
    report: bool,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let ds = Dataset::open_location(&a.dataset, opts)?;
    let opts = DepthOptions {
        exclude_flags: (DepthOptions::default().exclude_flags & !a.include_flags) | a.exclude_flags,
        min_mapq: a.min_mapq,
        min_len: a.min_len,
        min_baseq: a.min_baseq,
        all_positions: a.all,
        deletions: a.deletions,
    };
    let mut regions = Vec::new();
    for r in a.regions.iter().chain(&a.region) {
        match Region::parse(r, ds.header())? {
            Region::Unplaced => bail!("depth: '*' (unplaced reads) has no positions"),
            region => regions.push(region),
        }
    }
    if regions.is_empty() {
        for (i, r) in ds.index()?.references.iter().enumerate() {
            if !r.chunks.is_empty() {
                regions.push(Region::Span {
                    ref_id: i,
                    beg: 0,
                    end: i64::MAX,
                });
            }
        }
    }
    let spans: Vec<(usize, i64, i64)> = match &a.bed {
        // The BED's intervals inside the regions: a position is printed when an interval
        // holds it, so the merged intervals give the same positions in reference order.
        Some(path) => {
            let targets = Targets::from_bed(&Bed::read(path)?, ds.header())
                .within_regions(&regions, ds.header());
            (0..ds.header().references.len())
                .flat_map(|id| targets.intervals(id).iter().map(move |&(b, e)| (id, b, e)))
                .filter(|&(_, b, e)| b < e)
                .collect()
        }
        None => regions
            .iter()
            .filter_map(|r| match *r {
                Region::Span { ref_id, beg, end } => Some((ref_id, beg, end)),
                Region::Unplaced => None,
            })
            .collect(),
    };
    let mut out = open_stream(a.output.as_deref())?;
    if a.header {
        writeln!(out, "#CHROM\tPOS\t{}", a.dataset)?;
    }
    let mut total = bams3_core::depth::DepthReport::default();
    let mut line = Vec::with_capacity(64);
    for (ref_id, beg, end) in spans {
        let name = ds.header().references[ref_id].name.clone();
        let mut io_err = None;
        let report = depth(&ds, ref_id, beg, end, opts, |pos, d| {
            line.clear();
            let _ = writeln!(line, "{name}\t{}\t{d}", pos + 1);
            if let Err(e) = out.write_all(&line) {
                io_err = Some(e);
                return Err(bams3_core::Error::Cancelled);
            }
            Ok(())
        });
        if let Some(e) = io_err {
            return Err(e.into());
        }
        let report = report?;
        total.chunks += report.chunks;
        total.stored_bytes += report.stored_bytes;
        total.chunk_bytes += report.chunk_bytes;
    }
    out.flush()?;
    if a.report {
        eprintln!(
            "bams3 depth: decoded {} of {} stored bytes ({:.1}%) in {} chunks",
            total.stored_bytes,
            total.chunk_bytes,
            100.0 * total.stored_bytes as f64 / total.chunk_bytes.max(1) as f64,
            total.chunks
        );
    }
    Ok(())
}
