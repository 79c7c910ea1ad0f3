//! `bams3 query DATASET [REGION...]`: `samtools view` on a dataset.

use std::io::Write;

use anyhow::Result;
use bams3_core::dataset::OpenOptions;
use bams3_core::dataset::{Dataset, RecordFilter};
use bams3_core::region::Selection;

use crate::output::{open_stream, RecordSink};
use crate::units;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
    /// Regions: chr, chr:start, chr:start-end (1-based, inclusive) or '*' for unplaced reads.
    /// Without regions, every record.
    regions: Vec<String>,
    /// Include the header in SAM output.
    #[arg(short = 'h', long = "with-header")]
    with_header: bool,
    /// Print only the header.
    #[arg(short = 'H', long = "header-only")]
    header_only: bool,
    /// Output BAM.
    #[arg(short = 'b', long = "bam")]
    bam: bool,
    /// Print only the number of matching records.
    #[arg(short = 'c', long = "count")]
    count: bool,
    /// Output file (default standard output).
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// Only records with MAPQ at least this.
    #[arg(short = 'q', long = "min-MQ", default_value_t = 0)]
    min_mapq: u8,
    /// Only records with all these flag bits set.
    #[arg(short = 'f', long = "require-flags", default_value = "0", value_parser = units::flag_arg)]
    require: u16,
    /// Only records with none of these flag bits set.
    #[arg(short = 'F', long = "excl-flags", default_value = "0", value_parser = units::flag_arg)]
    exclude: u16,
    #[command(flatten)]
    select: crate::selection::Args,
    /// Threads for BAM compression.
    #[arg(short = '@', long, default_value_t = 1)]
    threads: usize,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let ds = Dataset::open_location(&a.dataset, opts)?;
    let selection = a.select.selection(&a.regions, ds.header())?;
    let filter = RecordFilter {
        min_mapq: a.min_mapq,
        require_flags: a.require,
        exclude_flags: a.exclude,
    };
    if a.header_only {
        let mut out = open_stream(a.output.as_deref())?;
        out.write_all(ds.header().sam_text().as_bytes())?;
        out.flush()?;
        return Ok(());
    }
    if a.count {
        let n = match &selection {
            // Counted from the index and the coverage streams: no record is rebuilt.
            Selection::Regions {
                regions,
                within: None,
            } => ds.count(regions, filter)?,
            // BED targets: each record's position and CIGAR is tested.
            _ => {
                let mut n = 0u64;
                for r in ds.select(&selection, filter) {
                    r?;
                    n += 1;
                }
                n
            }
        };
        let mut out = open_stream(a.output.as_deref())?;
        writeln!(out, "{n}")?;
        out.flush()?;
        return Ok(());
    }
    let records = ds.select(&selection, filter);
    let mut sink = if a.bam {
        RecordSink::bam(a.output.as_deref(), ds.header(), a.threads, 6)?
    } else {
        RecordSink::sam(a.output.as_deref(), ds.header(), a.with_header)?
    };
    for r in records {
        sink.write(r?)?;
    }
    sink.finish()
}
