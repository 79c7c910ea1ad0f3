//! `bams3 idxstats DATASET`: `samtools idxstats` from the index alone (no chunk is read).

use std::io::Write;

use anyhow::Result;
use bams3_core::dataset::{Dataset, OpenOptions};

use crate::output::open_stream;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let ds = Dataset::open_location(&a.dataset, opts)?;
    let index = ds.index()?;
    let mut out = open_stream(None)?;
    for (i, r) in ds.header().references.iter().enumerate() {
        let chunks = index.references.get(i).map_or(&[][..], |c| &c.chunks[..]);
        let (mut mapped, mut unmapped) = (0u64, 0u64);
        for e in chunks {
            let u = if ds.is_legacy() {
                // Older indexes do not count unmapped records: their flags do.
                ds.chunk_records(e, |_| true)?
                    .iter()
                    .filter(|r| r.flag() & 0x4 != 0)
                    .count() as u64
            } else {
                e.unmapped
            };
            mapped += e.count - u.min(e.count);
            unmapped += u;
        }
        writeln!(out, "{}\t{}\t{mapped}\t{unmapped}", r.name, r.length)?;
    }
    let unplaced: u64 = index.unmapped.iter().map(|e| e.count).sum();
    writeln!(out, "*\t0\t0\t{unplaced}")?;
    out.flush()?;
    Ok(())
}
