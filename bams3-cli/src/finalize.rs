//! `bams3 finalize OUT`: commit a dataset whose shards (`bams3 convert --shard K/N`) are all
//! done.

use std::time::Instant;

use anyhow::Result;
use bams3_core::dataset::OpenOptions;
use bams3_core::storage;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL the shards were converted into.
    dataset: String,
    /// No summary line.
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let store = storage::open_with(&a.dataset, &opts.store)?;
    let start = Instant::now();
    let s = bams3_core::shard::finalize(&*store)?;
    if !a.quiet {
        let m = &s.written.metadata;
        eprintln!(
            "bams3: finalized {} from {} shards: {} records in {} chunks, {} bytes, in {:.2} s",
            a.dataset,
            s.shards,
            m.statistics.total_reads,
            m.chunk_count,
            s.written.stored_bytes,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
