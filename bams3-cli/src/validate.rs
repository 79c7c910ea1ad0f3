//! `bams3 validate DATASET`: read every chunk and check it against the index.

use anyhow::Result;
use bams3_core::dataset::Dataset;
use bams3_core::dataset::OpenOptions;

use crate::progress::Progress;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
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
    Ok(())
}
