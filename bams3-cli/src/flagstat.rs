//! `bams3 flagstat DATASET`: `samtools flagstat`, byte for byte, from the flag, MAPQ and mate
//! streams only.

use std::io::Write;

use anyhow::{bail, Result};
use bams3_core::dataset::{Dataset, FlagStats, OpenOptions};

use crate::output::open_stream;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
    /// Output format: default (samtools' text), json or tsv.
    #[arg(short = 'O', long = "output-fmt", default_value = "default")]
    format: String,
    /// Print to stderr how many chunk bytes were decoded.
    #[arg(long)]
    report: bool,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let format = a.format.to_ascii_lowercase();
    if !matches!(format.as_str(), "default" | "json" | "tsv") {
        bail!(
            "flagstat: unknown output format '{}' (default, json or tsv)",
            a.format
        );
    }
    let ds = Dataset::open_location(&a.dataset, opts)?;
    let (s, report) = ds.flagstat()?;
    let text = match format.as_str() {
        "json" => json(&s),
        "tsv" => tsv(&s),
        _ => text(&s),
    };
    let mut out = open_stream(None)?;
    out.write_all(text.as_bytes())?;
    out.flush()?;
    if a.report {
        eprintln!(
            "bams3 flagstat: decoded {} of {} stored bytes ({:.1}%) in {} chunks",
            report.stored_bytes,
            report.chunk_bytes,
            100.0 * report.stored_bytes as f64 / report.chunk_bytes.max(1) as f64,
            report.chunks
        );
    }
    Ok(())
}

/// samtools' percentage: a single-precision quotient times 100, `N/A` (JSON: `null`) of nothing.
fn percent(n: u64, total: u64, none: &str, sign: &str) -> String {
    if total == 0 {
        return none.to_string();
    }
    let q = n as f32 / total as f32;
    format!("{:.2}{sign}", f64::from(q) * 100.0)
}

fn text(s: &FlagStats) -> String {
    let p = |n: &[u64; 2], t: &[u64; 2]| {
        format!(
            "{} : {}",
            percent(n[0], t[0], "N/A", "%"),
            percent(n[1], t[1], "N/A", "%")
        )
    };
    let l = |n: &[u64; 2], what: &str| format!("{} + {} {what}\n", n[0], n[1]);
    [
        l(&s.total, "in total (QC-passed reads + QC-failed reads)"),
        l(&s.primary, "primary"),
        l(&s.secondary, "secondary"),
        l(&s.supplementary, "supplementary"),
        l(&s.duplicates, "duplicates"),
        l(&s.primary_duplicates, "primary duplicates"),
        l(&s.mapped, &format!("mapped ({})", p(&s.mapped, &s.total))),
        l(
            &s.primary_mapped,
            &format!("primary mapped ({})", p(&s.primary_mapped, &s.primary)),
        ),
        l(&s.paired, "paired in sequencing"),
        l(&s.read1, "read1"),
        l(&s.read2, "read2"),
        l(
            &s.properly_paired,
            &format!("properly paired ({})", p(&s.properly_paired, &s.paired)),
        ),
        l(&s.both_mapped, "with itself and mate mapped"),
        l(
            &s.singletons,
            &format!("singletons ({})", p(&s.singletons, &s.paired)),
        ),
        l(&s.mate_other_ref, "with mate mapped to a different chr"),
        l(
            &s.mate_other_ref_mapq5,
            "with mate mapped to a different chr (mapQ>=5)",
        ),
    ]
    .concat()
}

fn tsv(s: &FlagStats) -> String {
    let l = |n: &[u64; 2], what: &str| format!("{}\t{}\t{what}\n", n[0], n[1]);
    let p = |n: &[u64; 2], t: &[u64; 2], what: &str| {
        format!(
            "{}\t{}\t{what}\n",
            percent(n[0], t[0], "N/A", "%"),
            percent(n[1], t[1], "N/A", "%")
        )
    };
    [
        l(&s.total, "total (QC-passed reads + QC-failed reads)"),
        l(&s.primary, "primary"),
        l(&s.secondary, "secondary"),
        l(&s.supplementary, "supplementary"),
        l(&s.duplicates, "duplicates"),
        l(&s.primary_duplicates, "primary duplicates"),
        l(&s.mapped, "mapped"),
        p(&s.mapped, &s.total, "mapped %"),
        l(&s.primary_mapped, "primary mapped"),
        p(&s.primary_mapped, &s.primary, "primary mapped %"),
        l(&s.paired, "paired in sequencing"),
        l(&s.read1, "read1"),
        l(&s.read2, "read2"),
        l(&s.properly_paired, "properly paired"),
        p(&s.properly_paired, &s.paired, "properly paired %"),
        l(&s.both_mapped, "with itself and mate mapped"),
        l(&s.singletons, "singletons"),
        p(&s.singletons, &s.paired, "singletons %"),
        l(&s.mate_other_ref, "with mate mapped to a different chr"),
        l(
            &s.mate_other_ref_mapq5,
            "with mate mapped to a different chr (mapQ>=5)",
        ),
    ]
    .concat()
}

/// samtools' JSON, spaces before the newlines included.
fn json(s: &FlagStats) -> String {
    let block = |w: usize| {
        let p = |n: &[u64; 2], t: &[u64; 2]| percent(n[w], t[w], "null", "");
        let fields = [
            ("total", s.total[w].to_string()),
            ("primary", s.primary[w].to_string()),
            ("secondary", s.secondary[w].to_string()),
            ("supplementary", s.supplementary[w].to_string()),
            ("duplicates", s.duplicates[w].to_string()),
            ("primary duplicates", s.primary_duplicates[w].to_string()),
            ("mapped", s.mapped[w].to_string()),
            ("mapped %", p(&s.mapped, &s.total)),
            ("primary mapped", s.primary_mapped[w].to_string()),
            ("primary mapped %", p(&s.primary_mapped, &s.primary)),
            ("paired in sequencing", s.paired[w].to_string()),
            ("read1", s.read1[w].to_string()),
            ("read2", s.read2[w].to_string()),
            ("properly paired", s.properly_paired[w].to_string()),
            ("properly paired %", p(&s.properly_paired, &s.paired)),
            ("with itself and mate mapped", s.both_mapped[w].to_string()),
            ("singletons", s.singletons[w].to_string()),
            ("singletons %", p(&s.singletons, &s.paired)),
            (
                "with mate mapped to a different chr",
                s.mate_other_ref[w].to_string(),
            ),
            (
                "with mate mapped to a different chr (mapQ >= 5)",
                s.mate_other_ref_mapq5[w].to_string(),
            ),
        ];
        fields
            .iter()
            .map(|(k, v)| format!("  \"{k}\": {v}"))
            .collect::<Vec<_>>()
            .join(", \n")
    };
    format!(
        "{{\n \"QC-passed reads\": {{ \n{} \n }},\n \"QC-failed reads\": {{ \n{} \n }}\n}}\n",
        block(0),
        block(1)
    )
}
