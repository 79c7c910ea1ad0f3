//! `bams3 validate DATASET [--against IN]`: read every chunk and check it against the index;
//! with `--against`, also compare every record with the file the dataset was made from.

use anyhow::{bail, Result};
use bams3_core::dataset::Dataset;
use bams3_core::dataset::OpenOptions;
use bams3_core::input::AlignmentInput;
use bams3_core::validate::Comparison;

use crate::progress::Progress;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
    /// Also compare the dataset, record by record, with the BAM or SAM file (or s3:// URL, or
    /// '-' for standard input) it was converted from; the first difference is named.
    #[arg(long, value_name = "IN")]
    against: Option<String>,
    /// Threads decompressing the --against input.
    #[arg(short = '@', long, default_value_t = 2)]
    threads: usize,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let ds = Dataset::open_location(&a.dataset, opts)?;
    // A bar over the records the metadata promises (drawn only on a terminal).
    let total = ds.metadata().statistics.total_reads;
    let bar = Progress::new(Some(total).filter(|&t| t > 0), a.quiet, None);
    let report = bams3_core::validate::validate_with_progress(&ds, |r| bar.records(r.records));
    bar.finish();
    let report = report?;
    println!(
        "{}: OK ({} chunks, {} records, {} bytes checked)",
        a.dataset, report.chunks, report.records, report.bytes
    );
    let Some(source) = a.against else {
        return Ok(());
    };
    let mut input = AlignmentInput::open_with(&source, a.threads.max(1), &opts.store)?;
    match bams3_core::validate::against(&ds, &mut input)? {
        Comparison::Same { records, in_order } => {
            let how = if in_order {
                "in the same order"
            } else {
                "as a set: the input is not coordinate-sorted"
            };
            println!(
                "{}: same header and {records} records as {source} ({how})",
                a.dataset
            );
            Ok(())
        }
        Comparison::Differs(d) => bail!("{}: differs from {source}: {d}", a.dataset),
    }
}
