//! `bams3 upgrade OLD NEW`: rewrite an upstream v0.1/v0.2 dataset (or any dataset) as v0.3,
//! under either profile (so it also moves a dataset between `default` and `archive`).

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use bams3_core::dataset::OpenOptions;
use bams3_core::dataset::{Dataset, DatasetWriter, RecordFilter, WriteOptions};
use bams3_core::metadata::Source;
use bams3_core::storage::{self, Storage};
use bams3_core::Error;

use crate::progress::{self, Progress};
use crate::units;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset to read (v0.1, v0.2 or v0.3): directory or s3:// URL.
    input: String,
    /// New v0.3 dataset directory or s3:// URL (must not exist).
    output: String,
    /// Genomic span of a chunk: 256K .. 8M bases (default 1M, or 8M with --profile archive).
    #[arg(long, value_parser = units::size_arg)]
    chunk_size: Option<u64>,
    /// zstd compression level (1-22; default 3, or 19 with --profile archive).
    #[arg(short = 'l', long)]
    level: Option<i32>,
    /// Codecs of the new dataset: default (fast) or archive (smallest).
    #[arg(long, default_value = "default", value_parser = crate::convert::profile_arg)]
    profile: bams3_core::chunk::Profile,
    /// Compression threads.
    #[arg(short = '@', long, default_value_t = 2)]
    threads: usize,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: Args, open: &OpenOptions) -> Result<()> {
    let ds = Dataset::open_location(&a.input, open)?;
    if !storage::is_s3(&a.output) && Path::new(&a.output).exists() {
        return Err(Error::AlreadyExists(a.output).into());
    }
    let opts = WriteOptions {
        chunk_size: a.chunk_size.unwrap_or(a.profile.default_chunk_size()),
        level: a.level.unwrap_or(a.profile.default_level()),
        profile: a.profile,
        threads: a.threads.max(1),
        source: Source {
            file: a.input.clone(),
            format: format!("BAMS3 {}", ds.metadata().version),
            fingerprint: None,
        },
        ..WriteOptions::default()
    };
    let store: Arc<dyn Storage> = Arc::from(storage::open_with(&a.output, &open.store)?);
    let mut writer = DatasetWriter::create(store, ds.header().clone(), opts)?;
    let bar = Progress::new(Some(ds.metadata().statistics.total_reads), a.quiet, None);
    let copied = (|| -> bams3_core::Result<()> {
        let mut n = 0u64;
        for r in ds.records(RecordFilter::default()) {
            writer.push(r?)?;
            n += 1;
            if n.is_multiple_of(progress::EVERY) {
                bar.records(n);
            }
        }
        Ok(())
    })();
    bar.finish();
    if let Err(e) = copied {
        writer.abort();
        return Err(e.into());
    }
    let summary = writer.finish()?;
    for loss in ds.losses() {
        eprintln!("bams3: note: {loss}");
    }
    eprintln!(
        "bams3: upgraded {} records into {} chunks",
        summary.metadata.statistics.total_reads, summary.metadata.chunk_count
    );
    Ok(())
}
