//! `bams3 rm [--force] DATASET`: delete a dataset, by default only an incomplete one (what an
//! interrupted or killed conversion leaves), so the same output can be converted again.

use std::sync::Arc;

use anyhow::Result;
use bams3_core::dataset::OpenOptions;
use bams3_core::storage::{self, Storage};

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
    /// Also delete a complete dataset.
    #[arg(short, long)]
    force: bool,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let store: Arc<dyn Storage> = Arc::from(storage::open_with(&a.dataset, &opts.store)?);
    let n = bams3_core::dataset::remove(store.as_ref(), a.force)?;
    if !storage::is_s3(&a.dataset) {
        // Its objects are gone and emptied folders with them; the root folder was the
        // dataset's too. A folder someone put other files in stays, with a note.
        if let Err(e) = std::fs::remove_dir(&a.dataset) {
            eprintln!("bams3: kept {}: {e}", a.dataset);
        }
    }
    eprintln!("bams3: removed {} ({n} objects)", a.dataset);
    Ok(())
}
