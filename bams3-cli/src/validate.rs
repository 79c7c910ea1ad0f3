//! `bams3 validate DATASET`: read every chunk and check it against the index.

use anyhow::Result;
use bams3_core::dataset::Dataset;
use bams3_core::dataset::OpenOptions;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let ds = Dataset::open_location(&a.dataset, opts)?;
    let report = bams3_core::validate::validate(&ds)?;
    println!(
        "{}: OK ({} chunks, {} records, {} bytes checked)",
        a.dataset, report.chunks, report.records, report.bytes
    );
    Ok(())
}
