//! `bams3 validate DATASET`: read every chunk and check it against the index.

use std::sync::Arc;

use anyhow::Result;
use bams3_core::dataset::Dataset;
use bams3_core::storage;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory.
    dataset: String,
}

pub fn run(a: Args) -> Result<()> {
    let ds = Dataset::open(Arc::from(storage::open(&a.dataset)?))?;
    let report = bams3_core::validate::validate(&ds)?;
    println!(
        "{}: OK ({} chunks, {} records, {} bytes checked)",
        a.dataset, report.chunks, report.records, report.bytes
    );
    Ok(())
}
