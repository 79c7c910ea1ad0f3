//! The region options samtools users reach for after plain regions: `-L FILE` (only records
//! overlapping a BED file's intervals) and `-M` (several regions, each record once), shared by
//! `query` and `export`.

use anyhow::Result;
use bams3_core::region::{Bed, Region, Selection};
use bams3_core::Header;

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Only records overlapping the intervals of this BED file (0-based, half-open, as samtools
    /// reads it; '-' for standard input; gzip accepted).
    #[arg(short = 'L', long = "target-file", value_name = "FILE")]
    target_file: Option<String>,
    /// Same as -M -L FILE.
    #[arg(
        long = "region-file",
        value_name = "FILE",
        conflicts_with = "target_file"
    )]
    region_file: Option<String>,
    /// Treat the regions (and the BED file) as one set: each record once, in coordinate order
    /// (samtools' multi-region iterator).
    #[arg(short = 'M', long = "use-index")]
    multi: bool,
}

impl Args {
    /// The records `regions` and these options select, as samtools view selects them.
    pub fn selection(&self, regions: &[String], header: &Header) -> Result<Selection> {
        let regions = regions
            .iter()
            .map(|r| Region::parse(r, header))
            .collect::<bams3_core::Result<Vec<_>>>()?;
        let bed = match self.target_file.as_ref().or(self.region_file.as_ref()) {
            Some(path) => Some(Bed::read(path)?),
            None => None,
        };
        let multi = self.multi || self.region_file.is_some();
        Ok(Selection::new(&regions, bed.as_ref(), multi, header)?)
    }
}
