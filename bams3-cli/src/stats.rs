//! `bams3 stats DATASET`: answered from the metadata and index, no chunk is read.

use anyhow::Result;
use bams3_core::dataset::Dataset;
use bams3_core::dataset::OpenOptions;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory or s3:// URL.
    dataset: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let ds = Dataset::open_location(&a.dataset, opts)?;
    let m = ds.metadata();
    let s = &m.statistics;
    let index = ds.index()?;
    let per_ref: Vec<_> = index
        .references
        .iter()
        .map(|r| {
            let reads: u64 = r.chunks.iter().map(|c| c.count).sum();
            let bytes: u64 = r.chunks.iter().map(|c| c.stored_bytes).sum();
            (r.name.as_str(), r.length, reads, r.chunks.len(), bytes)
        })
        .collect();
    let unplaced: u64 = index.unmapped.iter().map(|c| c.count).sum();
    let stored: u64 = index
        .references
        .iter()
        .flat_map(|r| &r.chunks)
        .chain(&index.unmapped)
        .map(|c| c.stored_bytes)
        .sum();
    if a.json {
        let v = ds.summary_json(&a.dataset)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let pct = |n: u64| {
        if s.total_reads == 0 {
            0.0
        } else {
            100.0 * n as f64 / s.total_reads as f64
        }
    };
    println!("dataset:        {}", a.dataset);
    println!("format:         {} {}", m.format, m.version);
    println!("created:        {} by {}", m.created, m.created_by);
    println!("source:         {} ({})", m.source.file, m.source.format);
    println!("total reads:    {}", s.total_reads);
    println!(
        "mapped:         {} ({:.2}%)",
        s.mapped_reads,
        pct(s.mapped_reads)
    );
    println!(
        "unmapped:       {} ({:.2}%)",
        s.unmapped_reads,
        pct(s.unmapped_reads)
    );
    println!("unplaced:       {}", unplaced);
    println!(
        "duplicates:     {} ({:.2}%)",
        s.duplicate_reads,
        pct(s.duplicate_reads)
    );
    println!("secondary/supp: {}", s.secondary_reads);
    println!("total bases:    {}", s.total_bases);
    println!("chunk size:     {} bp", m.chunk_size);
    println!("chunks:         {}", m.chunk_count);
    println!(
        "stored bytes:   {} ({} level {})",
        stored, m.compression.algorithm, m.compression.level
    );
    for loss in ds.losses() {
        println!("lost:           {loss}");
    }
    println!("references with reads:");
    for r in per_ref.iter().filter(|r| r.2 > 0) {
        println!("  {}\t{}\t{} reads\t{} chunks", r.0, r.1, r.2, r.3);
    }
    Ok(())
}
