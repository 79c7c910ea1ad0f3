//! `bams3 export DATASET OUT.bam` (alias `to-bam`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use bams3_core::dataset::OpenOptions;
use bams3_core::dataset::{Dataset, RecordFilter};
use bams3_core::{Error, Header};

use crate::output::RecordSink;
use crate::progress::{self, Progress};

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
    /// Output BAM file, or '-' for standard output.
    output: String,
    /// Export only records overlapping this region (repeatable); default the whole dataset.
    #[arg(long)]
    region: Vec<String>,
    #[command(flatten)]
    select: crate::selection::Args,
    /// Also write OUT.bam.bai (or .csi for references over 512 Mbp).
    #[arg(long)]
    index: bool,
    /// BGZF compression threads.
    #[arg(short = '@', long, default_value_t = 2)]
    threads: usize,
    /// BGZF (deflate) compression level, 0-9.
    #[arg(short = 'l', long, default_value_t = 6)]
    level: u8,
    /// Overwrite an existing output file.
    #[arg(long)]
    force: bool,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let ds = Dataset::open_location(&a.dataset, opts)?;
    let to_stdout = a.output == "-";
    if !to_stdout && !a.force && Path::new(&a.output).exists() {
        return Err(Error::AlreadyExists(a.output).into());
    }
    if a.index && to_stdout {
        bail!("--index needs an output file, not standard output");
    }
    let selection = a.select.selection(&a.region, ds.header())?;
    let whole = matches!(&selection, bams3_core::region::Selection::Regions { regions, within: None } if regions.is_empty());
    // Export is always in coordinate order: say so when the index needs it, and when the
    // input was not sorted (its @HD SO would now be wrong), as samtools sort does.
    let header = if a.index || !ds.metadata().sorted_input {
        coordinate_sorted(ds.header())
    } else {
        ds.header().clone()
    };
    let path = (!to_stdout).then_some(a.output.as_str());
    let result = (|| -> Result<()> {
        let mut sink = RecordSink::bam(path, &header, a.threads, a.level)?;
        let records = ds.select(&selection, RecordFilter::default());
        // A bar over the dataset's records; a spinner for regions (their count is unknown).
        let total = whole.then_some(ds.metadata().statistics.total_reads);
        let bar = Progress::new(total, a.quiet, None);
        let mut n = 0u64;
        for r in records {
            sink.write(r?)?;
            n += 1;
            if n.is_multiple_of(progress::EVERY) {
                bar.records(n);
            }
        }
        bar.finish();
        sink.finish()
    })();
    if let Err(e) = result {
        if let Some(p) = path {
            // Never leave a BAM that looks whole but is missing records.
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    if a.index {
        let index = noodles_bam::fs::index(&a.output)
            .with_context(|| format!("{}: cannot index", a.output))?;
        // References longer than 2^29 bases need CSI; BAI otherwise, as samtools index does.
        let written = match &index {
            noodles_bam::Index::Bai(bai) => {
                let p = format!("{}.bai", a.output);
                noodles_bam::bai::fs::write(&p, bai).map(|_| p)
            }
            noodles_bam::Index::Csi(csi) => {
                let p = format!("{}.csi", a.output);
                noodles_csi::fs::write(&p, csi).map(|_| p)
            }
        };
        written.with_context(|| format!("{}: cannot write index", a.output))?;
    }
    Ok(())
}

/// The header with `@HD SO:coordinate`, which an index requires and export order guarantees,
/// changed as `samtools sort` changes it: `SO` replaced in place (or added), `GO` and `SS`
/// removed, and `@HD VN:1.6 SO:coordinate` added when there is no `@HD` line.
fn coordinate_sorted(h: &Header) -> Header {
    let mut lines: Vec<String> = h.text.lines().map(str::to_string).collect();
    match lines.first_mut().filter(|l| l.starts_with("@HD")) {
        Some(hd) => {
            let mut has_so = false;
            let mut fields: Vec<String> = Vec::new();
            for f in hd.split('\t') {
                if f.starts_with("SO:") {
                    has_so = true;
                    fields.push("SO:coordinate".into());
                } else if !f.starts_with("GO:") && !f.starts_with("SS:") {
                    fields.push(f.to_string());
                }
            }
            if !has_so {
                fields.push("SO:coordinate".into());
            }
            *hd = fields.join("\t");
        }
        None => lines.insert(0, "@HD\tVN:1.6\tSO:coordinate".into()),
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Header {
        text,
        references: h.references.clone(),
    }
}
