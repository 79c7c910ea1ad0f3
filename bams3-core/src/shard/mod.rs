//! Sharded conversion: N processes, on one machine or many, each convert a share of the
//! genomic bins of one indexed, coordinate-sorted BAM into the same dataset location, and
//! [`finalize`] commits the dataset once all are done (see `docs/SCALE_OUT.md`).
//!
//! One concept a module: `input_index` (where records begin in the input, from its
//! `.bai`/`.csi`), `plan` (shard boundaries on bin boundaries, balanced by bytes), `source`
//! (the input read by byte ranges, local or S3), `manifest` (what a shard committed),
//! `convert` (one shard), `finalize` (the dataset's commit).
//!
//! The commit protocol of a single conversion holds across processes: each shard stores its
//! chunks, then its manifest (`_shards/K-of-N.json`); `finalize` checks the manifests, then
//! writes the index and, last, `_metadata.json`. Until then every reader says the dataset is
//! incomplete, and `bams3 rm` removes it.

mod convert;
mod finalize;
mod input_index;
mod manifest;
mod plan;
mod source;

use std::str::FromStr;

pub(crate) use convert::read_header;
pub use convert::{ShardProgress, ShardSummary, convert_shard};
pub use finalize::{FinalizeSummary, finalize};
pub use input_index::{InputIndex, ReferenceOffsets, VirtualOffset};
pub use manifest::{
    MANIFEST_FORMAT, SHARDS_PREFIX, ShardChunk, ShardInput, ShardManifest, ShardOptions,
    manifest_key,
};
pub use plan::{BinId, ShardPlan};
pub(crate) use source::InputSource;

use crate::Error;

/// Shards in one conversion at most: far more machines than a BAM has useful shares.
pub const MAX_SHARDS: u32 = 10_000;

/// Which shard a process converts: `K/N`, K from 1 to N.
///
/// ```
/// use bams3_core::shard::ShardSpec;
/// let s: ShardSpec = "2/4".parse().unwrap();
/// assert_eq!((s.k, s.n), (2, 4));
/// assert!("0/4".parse::<ShardSpec>().is_err() && "5/4".parse::<ShardSpec>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// This shard, 1 to `n`.
    pub k: u32,
    /// Shards in all.
    pub n: u32,
}

impl FromStr for ShardSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::Invalid(format!(
                "shard '{s}': expected K/N with 1 <= K <= N <= {MAX_SHARDS} (e.g. 2/4)"
            ))
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n) = (
            k.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if k == 0 || k > n || n > MAX_SHARDS {
            return Err(bad());
        }
        Ok(ShardSpec { k, n })
    }
}
