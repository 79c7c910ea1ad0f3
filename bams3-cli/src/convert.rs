//! `bams3 convert IN OUT`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use bams3_core::dataset::OpenOptions;
use bams3_core::dataset::{DatasetWriter, WriteOptions};
use bams3_core::metadata::Source;
use bams3_core::storage::{self, Storage};
use bams3_core::Error;

use crate::units;

#[derive(clap::Args)]
pub struct Args {
    /// Input BAM, SAM or CRAM file, an s3:// URL of one, or '-' for standard input.
    input: String,
    /// Output dataset directory or s3:// URL (must not exist).
    output: String,
    /// Genomic span of a chunk: 256K, 512K, 1M, 2M, 4M or 8M bases.
    #[arg(long, default_value = "1M", value_parser = units::size_arg)]
    chunk_size: u64,
    /// zstd compression level (1-22).
    #[arg(short = 'l', long, default_value_t = 3)]
    level: i32,
    /// Worker threads for decompression and compression.
    #[arg(short = '@', long, default_value_t = 2)]
    threads: usize,
    /// Memory budget for buffered records (e.g. 512M, 2G).
    #[arg(long, default_value = "512M", value_parser = units::size_arg)]
    memory: u64,
    /// Split a genomic bin into parts of at most this many BAM-encoded bytes.
    #[arg(long, default_value = "2M", value_parser = units::size_arg, hide = true)]
    part_size: u64,
    /// Reference FASTA (with its .fai) for CRAM input, as `samtools view -T`; without it the
    /// reference is found as samtools finds it (REF_PATH, REF_CACHE, the @SQ UR/M5 tags).
    #[arg(short = 'T', long, value_name = "FASTA")]
    reference: Option<std::path::PathBuf>,
    /// Convert only shard K of N (1 <= K <= N) of an indexed, coordinate-sorted BAM into OUT,
    /// which the other shards share; `bams3 finalize OUT` commits it once all N are done.
    #[arg(long, value_name = "K/N")]
    shard: Option<bams3_core::shard::ShardSpec>,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: Args, open: &OpenOptions) -> Result<()> {
    let opts = WriteOptions {
        chunk_size: a.chunk_size,
        level: a.level,
        threads: a.threads.max(1),
        part_bytes: a.part_size as usize,
        memory: a.memory as usize,
        source: Source {
            file: a.input.clone(),
            format: String::new(),
        },
    };
    opts.validate()?;
    if let Some(spec) = a.shard {
        return crate::shard::run(spec, &a.input, &a.output, opts, open, a.quiet);
    }
    // An S3 prefix is checked by the writer, which lists it and refuses one holding objects.
    if !storage::is_s3(&a.output) && Path::new(&a.output).exists() {
        return Err(Error::AlreadyExists(a.output).into());
    }
    let cram = crate::cram::opener(crate::cram::Options {
        reference: a.reference.clone(),
        threads: a.threads,
    });
    let (mut input, bar) =
        crate::progress::open_input(&a.input, a.threads, &open.store, a.quiet, Some(&cram))?;
    let store: Arc<dyn Storage> = Arc::from(storage::open_with(&a.output, &open.store)?);
    let opts = WriteOptions {
        source: Source {
            file: a.input.clone(),
            format: input.format().name().into(),
        },
        ..opts
    };
    let mut writer = DatasetWriter::create(store, input.header().clone(), opts)?;

    let cancelled = Arc::new(AtomicBool::new(false));
    {
        let c = cancelled.clone();
        // Ctrl+C stops the conversion between records so the partial output can be removed.
        let _ = ctrlc::set_handler(move || c.store(true, Ordering::SeqCst));
    }
    let start = Instant::now();
    let mut n: u64 = 0;
    let result = (|| -> Result<()> {
        while let Some(record) = input.read_record()? {
            writer.push(record)?;
            n += 1;
            if n.is_multiple_of(crate::progress::EVERY) {
                bar.records(n);
                if cancelled.load(Ordering::SeqCst) {
                    bail!(Error::Cancelled);
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        bar.finish();
        writer.abort();
        remove_if_empty(Path::new(&a.output));
        return Err(e);
    }
    bar.records(n);
    let summary = match writer.finish() {
        Ok(s) => s,
        Err(e) => {
            bar.finish();
            remove_if_empty(Path::new(&a.output));
            return Err(e.into());
        }
    };
    bar.finish();
    let replaced = input.replaced_bases();
    if replaced.bases > 0 {
        // samtools changes these silently; a user comparing files deserves to know.
        eprintln!(
            "bams3: warning: {} SEQ characters outside =ACMGRSVTWYHKDBN (in {} records) stored as samtools stores them: N (0-3 as A, C, G, T)",
            replaced.bases, replaced.records
        );
    }
    if !a.quiet {
        let secs = start.elapsed().as_secs_f64();
        let st = &summary.metadata.statistics;
        eprintln!(
            "bams3: converted {} records ({} mapped, {} unmapped) into {} chunks, {} bytes, in {:.1} s ({:.0} records/s)",
            st.total_reads,
            st.mapped_reads,
            st.unmapped_reads,
            summary.metadata.chunk_count,
            summary.stored_bytes,
            secs,
            st.total_reads as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}

/// Removes the output directory tree if a failed conversion left only empty folders in it.
fn remove_if_empty(dir: &Path) {
    fn prune(d: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(d) else {
            return false;
        };
        let mut empty = true;
        for e in entries.flatten() {
            let p = e.path();
            if !(p.is_dir() && prune(&p)) {
                empty = false;
            }
        }
        empty && std::fs::remove_dir(d).is_ok()
    }
    prune(dir);
}
