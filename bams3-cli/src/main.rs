//! `bams3`: convert, query, export and check BAMS3 datasets, with samtools-like options.

mod completions;
mod convert;
mod cram;
mod depth;
mod export;
mod finalize;
mod flagstat;
mod htslib_index;
mod idxstats;
mod output;
mod progress;
mod query;
mod remove;
mod selection;
mod serve;
mod shard;
mod stats;
mod units;
mod upgrade;
mod validate;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// BAMS3: alignment datasets for object storage.
#[derive(Parser)]
#[command(name = "bams3", version, about, propagate_version = true)]
struct Cli {
    /// Endpoint of an S3-compatible store (e.g. http://127.0.0.1:9000); implies path-style
    /// addressing. AWS_ENDPOINT_URL is honoured too.
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Do not sign S3 requests (public buckets); skips the credential chain.
    #[arg(long, global = true)]
    no_sign_request: bool,
    /// Also cache fetched S3 chunk data under the cache directory (metadata always is).
    #[arg(long, global = true)]
    cache_chunks: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a BAM, SAM or CRAM file (or '-' for standard input) into a dataset.
    Convert(convert::Args),
    /// Print the records overlapping regions, like `samtools view`.
    #[command(disable_help_flag = true, visible_alias = "view")]
    Query(query::Args),
    /// Per-base read depth, like `samtools depth`.
    Depth(depth::Args),
    /// Summarise a dataset from its metadata alone.
    Stats(stats::Args),
    /// Counts by flag, like `samtools flagstat`, from the flag, MAPQ and mate streams only.
    Flagstat(flagstat::Args),
    /// Records per reference, like `samtools idxstats`, from the index alone.
    Idxstats(idxstats::Args),
    /// Write a dataset (or regions of it) back to BAM.
    #[command(visible_alias = "to-bam")]
    Export(export::Args),
    /// Commit a dataset converted in shards (`convert --shard K/N`) once all are done.
    Finalize(finalize::Args),
    /// Check every chunk of a dataset against its checksums and index.
    Validate(validate::Args),
    /// Rewrite an upstream v0.1/v0.2 dataset as v0.3.
    Upgrade(upgrade::Args),
    /// Delete a dataset: an incomplete one (an interrupted conversion), or any with --force.
    Rm(remove::Args),
    /// Write the objects the htslib plugin reads, for a dataset written before they existed.
    HtslibIndex(htslib_index::Args),
    /// Serve datasets over HTTP as an htsget 1.3 reads endpoint (IGV, igv.js, htslib).
    Serve(serve::Args),
    /// Print a shell completion script (bash, zsh, fish), generated from these definitions.
    Completions(completions::CompletionArgs),
    /// Print the man page (roff) of bams3 or of one of its commands: `bams3 man | man -l -`.
    Man(completions::ManArgs),
    /// Manage the local cache of S3 metadata and chunks.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
}

#[derive(Subcommand)]
enum CacheAction {
    /// Remove cached S3 metadata and chunks ($XDG_CACHE_HOME/bams3/s3-*).
    Clear,
}

fn cache(action: CacheAction) -> anyhow::Result<()> {
    match action {
        CacheAction::Clear => {
            let freed = bams3_core::storage::clear_cache()?;
            eprintln!("bams3: cache cleared ({freed} bytes freed)");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Passed to each command: the library keeps no global options.
    let opts = bams3_core::dataset::OpenOptions {
        store: bams3_core::storage::StoreOptions {
            endpoint_url: cli.endpoint_url,
            no_sign_request: cli.no_sign_request,
        },
        cache_chunks: cli.cache_chunks,
        cache_dir: None,
    };
    let result = match cli.command {
        Command::Convert(a) => convert::run(a, &opts),
        Command::Query(a) => query::run(a, &opts),
        Command::Stats(a) => stats::run(a, &opts),
        Command::Depth(a) => depth::run(a, &opts),
        Command::Flagstat(a) => flagstat::run(a, &opts),
        Command::Idxstats(a) => idxstats::run(a, &opts),
        Command::Export(a) => export::run(a, &opts),
        Command::Finalize(a) => finalize::run(a, &opts),
        Command::Validate(a) => validate::run(a, &opts),
        Command::Upgrade(a) => upgrade::run(a, &opts),
        Command::Rm(a) => remove::run(a, &opts),
        Command::HtslibIndex(a) => htslib_index::run(a, &opts),
        Command::Serve(a) => serve::run(a, &opts),
        Command::Completions(a) => completions::completions(a, Cli::command()),
        Command::Man(a) => completions::man(a, Cli::command()),
        Command::Cache { action } => cache(action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    // A closed pipe (`| head`) is the reader's choice, not a failure.
                    return ExitCode::SUCCESS;
                }
            }
            if let Some(bams3_core::Error::Cancelled) = e.downcast_ref::<bams3_core::Error>() {
                eprintln!("bams3: cancelled");
                return ExitCode::from(130);
            }
            if e.downcast_ref::<bams3_core::Error>().is_some() {
                // The library's errors already print their cause; `{:#}` would repeat it.
                eprintln!("bams3: {e}");
            } else {
                eprintln!("bams3: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
