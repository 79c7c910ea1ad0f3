//! `bams3 htslib-index DATASET`: write the objects the htslib plugin reads (the stream layout
//! table and its CSI, `docs/FORMAT.md`) for a dataset written before they existed, or written
//! by a version that stored whole chunks only (table version 1), so that opening it through
//! `bams3:`/`bams3+s3:` URLs costs a few small reads, not the whole index, and region queries
//! seek to the 256-record piece they start in. The pieces' sizes are read from each chunk's
//! small streams (positions, flags, CIGARs, lengths, names): a pass over a few percent of the
//! dataset's bytes.

use anyhow::Result;
use bams3_core::dataset::{Dataset, OpenOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let ds = Dataset::open_location(&a.dataset, opts)?;
    bams3_core::bamstream::objects::write_for(&ds)?;
    eprintln!(
        "bams3: wrote {} and {} in {}",
        bams3_core::bamstream::objects::LAYOUT_KEY,
        bams3_core::bamstream::objects::CSI_KEY,
        a.dataset
    );
    Ok(())
}
