//! `bams3 convert IN OUT`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bams3_core::chunk::Profile;
use bams3_core::dataset::OpenOptions;
use bams3_core::dataset::{
    DatasetWriter, InputIdentity, Journal, JournalOptions, JournalStart, WriteOptions,
};
use bams3_core::input::{AlignmentInput, Format};
use bams3_core::metadata;
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
    /// Genomic span of a chunk: 256K, 512K, 1M, 2M, 4M or 8M bases (default 1M, or 8M with
    /// --profile archive).
    #[arg(long, value_parser = units::size_arg)]
    chunk_size: Option<u64>,
    /// zstd compression level (1-22; default 3, or 19 with --profile archive).
    #[arg(short = 'l', long)]
    level: Option<i32>,
    /// Codecs: `default` (fast to write and read) or `archive` (smallest: qualities by read
    /// context, bases by a context model; slower to write).
    #[arg(long, default_value = "default", value_parser = profile_arg)]
    profile: Profile,
    /// Worker threads for decompression and compression (1: one thread in all).
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
    /// Continue an interrupted conversion of IN into OUT from its journal (a BAM input, local
    /// or s3://); on an empty OUT just convert, on a complete dataset of IN do nothing.
    #[arg(long)]
    resume: bool,
    /// Least seconds between the journal's checkpoints (tests use 0: every bin).
    #[arg(long, default_value_t = 5.0, hide = true)]
    checkpoint_every: f64,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
}

pub(crate) fn profile_arg(s: &str) -> std::result::Result<Profile, String> {
    Profile::parse(s).ok_or_else(|| format!("unknown profile '{s}': choose 'default' or 'archive'"))
}

/// What the output location holds before a conversion.
enum Place {
    Empty,
    Incomplete,
    Complete,
}

pub fn run(a: Args, open: &OpenOptions) -> Result<()> {
    let opts = WriteOptions {
        chunk_size: a.chunk_size.unwrap_or(a.profile.default_chunk_size()),
        level: a.level.unwrap_or(a.profile.default_level()),
        threads: a.threads.max(1),
        part_bytes: a.part_size as usize,
        memory: a.memory as usize,
        source: Source {
            file: a.input.clone(),
            format: String::new(),
            fingerprint: None,
        },
        profile: a.profile,
    };
    opts.validate()?;
    if let Some(spec) = a.shard {
        return crate::shard::run(spec, &a.input, &a.output, opts, open, a.quiet);
    }
    if a.resume && a.input == "-" {
        bail!("--resume needs the input as a file or an s3:// URL, not standard input");
    }
    if !(a.checkpoint_every >= 0.0 && a.checkpoint_every.is_finite()) {
        bail!("--checkpoint-every must be a number of seconds >= 0");
    }
    let every = Duration::from_secs_f64(a.checkpoint_every);
    let store: Arc<dyn Storage> = Arc::from(storage::open_with(&a.output, &open.store)?);
    // A LIST first: on S3 its error says why access fails (a HEAD's 403 has no body).
    let place = if !store.any_under("")? {
        Place::Empty
    } else if store.head(metadata::METADATA_KEY)?.is_some() {
        Place::Complete
    } else {
        Place::Incomplete
    };
    let resume_cmd = format!("bams3 convert --resume {} {}", a.input, a.output);
    let say_resumable = || {
        eprintln!(
            "bams3: {} is incomplete: continue with `{resume_cmd}`, or remove it with `bams3 rm {}`",
            a.output, a.output
        )
    };
    let journal = match (place, a.resume) {
        (Place::Complete, false) => return Err(Error::AlreadyExists(a.output).into()),
        (Place::Incomplete, false) => bail!(
            "{}: an incomplete dataset (an interrupted conversion?): continue it with `{resume_cmd}`, or remove it with `bams3 rm {}`",
            a.output,
            a.output
        ),
        // An empty directory given as the output is refused as before: it may be a mistake.
        (Place::Empty, false) if !storage::is_s3(&a.output) && Path::new(&a.output).exists() => {
            return Err(Error::AlreadyExists(a.output).into())
        }
        (Place::Complete, true) => return already_complete(&a, store, open),
        (Place::Incomplete, true) => match Journal::load(&*store)? {
            Some(j) => Some(j),
            None => bail!(
                "{}: an incomplete dataset without a journal (not a BAM conversion, or stopped before it began), so it cannot be resumed: remove it with `bams3 rm {}` and convert again",
                a.output,
                a.output
            ),
        },
        (Place::Empty, _) => None,
    };
    let options = JournalOptions {
        chunk_size: opts.chunk_size,
        level: opts.level,
        part_bytes: opts.part_bytes as u64,
        profile: opts.profile_field(),
    };
    let cram = crate::cram::opener(crate::cram::Options {
        reference: a.reference.clone(),
        threads: a.threads,
    });
    let mut n: u64 = 0;
    let (mut input, bar, mut writer) = match journal {
        Some(j) => {
            let now = InputIdentity::of(&a.input, &open.store)?;
            if let Some(why) = now.mismatch(&j.start.input) {
                bail!(
                    "{}: not the input this conversion started from: {why}",
                    a.input
                );
            }
            if j.start.options != options {
                let o = &j.start.options;
                bail!(
                    "{}: the interrupted conversion used --chunk-size {} -l {} --profile {} (part size {}): resume it with the same options",
                    a.output,
                    o.chunk_size,
                    o.level,
                    o.profile.as_deref().unwrap_or("default"),
                    o.part_bytes
                );
            }
            let point = j.last.as_ref().filter(|c| !c.restart).and_then(|c| c.next);
            let (input, bar) = match point {
                Some(p) => {
                    n = j.last.as_ref().map_or(0, |c| c.records);
                    let input = AlignmentInput::reopen_at(&a.input, &open.store, p, a.threads)?;
                    (input, crate::progress::Progress::new(None, a.quiet, None))
                }
                None => crate::progress::open_input(
                    &a.input,
                    a.threads,
                    &open.store,
                    a.quiet,
                    Some(&cram),
                )?,
            };
            let opts = WriteOptions {
                source: source_of(&a.input, &input, Some(&now)),
                ..opts
            };
            let kept = j.last.as_ref().map_or(0, |c| c.chunks.len());
            let writer = DatasetWriter::resume(store, input.header().clone(), opts, &j, every)?;
            if !a.quiet {
                eprintln!(
                    "bams3: resuming {} at record {n}, keeping {kept} chunks",
                    a.output
                );
            }
            (input, bar, writer)
        }
        None => {
            let (mut input, bar) = crate::progress::open_input(
                &a.input,
                a.threads,
                &open.store,
                a.quiet,
                Some(&cram),
            )?;
            // Only a BAM file or object can be reopened at a record: the others get no journal.
            let identity = if a.input != "-" && input.format() == Format::Bam {
                Some(InputIdentity::of(&a.input, &open.store)?)
            } else {
                input.stop_resume_points();
                None
            };
            let opts = WriteOptions {
                source: source_of(&a.input, &input, identity.as_ref()),
                ..opts
            };
            let header = input.header().clone();
            let writer = match identity {
                Some(id) => DatasetWriter::create_journaled(
                    store,
                    header,
                    opts,
                    &JournalStart::new(id, options),
                    every,
                )?,
                None => DatasetWriter::create(store, header, opts)?,
            };
            (input, bar, writer)
        }
    };

    let cancelled = Arc::new(AtomicBool::new(false));
    {
        let c = cancelled.clone();
        // Ctrl+C stops the conversion between records; what was stored stays for --resume.
        let _ = ctrlc::set_handler(move || c.store(true, Ordering::SeqCst));
    }
    let start = Instant::now();
    let result = (|| -> Result<()> {
        while let Some(record) = input.read_record()? {
            if writer.checkpoint_due(&record) {
                if let Some(p) = input.resume_point() {
                    writer.checkpoint(&record, p, n)?;
                }
            }
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
        let kept = if resumable_failure(&e) {
            writer.suspend()
        } else {
            writer.abort();
            false
        };
        if kept {
            say_resumable();
        } else {
            remove_if_empty(Path::new(&a.output));
        }
        return Err(e);
    }
    bar.records(n);
    let journaled = writer.journaling();
    let summary = match writer.finish() {
        Ok(s) => s,
        Err(e) => {
            bar.finish();
            if journaled {
                say_resumable();
            }
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

/// The source recorded in the metadata: the input as given, its format, its fingerprint.
fn source_of(file: &str, input: &AlignmentInput, id: Option<&InputIdentity>) -> Source {
    Source {
        file: file.to_string(),
        format: input.format().name().into(),
        fingerprint: id.map(|i| i.fingerprint.clone()),
    }
}

/// Whether a conversion that failed with `e` is worth resuming: it was interrupted, or the
/// store or the network failed. Bad input fails again at the same record.
fn resumable_failure(e: &anyhow::Error) -> bool {
    !matches!(
        e.downcast_ref::<Error>(),
        Some(Error::Corrupt { .. } | Error::Invalid(_))
    )
}

/// `convert --resume` onto a complete dataset: nothing to do when it is of the same input.
fn already_complete(a: &Args, store: Arc<dyn Storage>, open: &OpenOptions) -> Result<()> {
    let ds = bams3_core::dataset::Dataset::open(store.clone())?;
    let now = InputIdentity::of(&a.input, &open.store)?;
    if ds.metadata().source.fingerprint.as_deref() != Some(now.fingerprint.as_str()) {
        bail!(
            "{}: already a complete dataset, converted from {}, not from {}: remove it with `bams3 rm --force` to convert again",
            a.output,
            ds.metadata().source.file,
            a.input
        );
    }
    // A commit interrupted after `_metadata.json` may have left its journal.
    for key in store.list(bams3_core::dataset::JOURNAL_PREFIX)? {
        store.delete(&key)?;
    }
    if !a.quiet {
        eprintln!(
            "bams3: {} is already a complete conversion of {}: nothing to do",
            a.output, a.input
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
