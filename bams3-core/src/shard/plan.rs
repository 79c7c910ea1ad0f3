//! Where shards begin: on bin boundaries (so no bin, hence no chunk, is split between two
//! processes), balanced by the input bytes the index says each share holds.

use serde::{Deserialize, Serialize};

use super::input_index::InputIndex;
use crate::dataset::BinKey;

/// The unplaced records' bin: it sorts after every reference, so it is always in the last
/// shard.
pub(crate) const UNPLACED: BinKey = (u32::MAX, 0);

/// A bin as manifests write it: `[reference, bin]`, reference -1 for the unplaced records.
///
/// ```
/// use bams3_core::shard::BinId;
/// let b: BinId = serde_json::from_str("[-1,0]").unwrap();
/// assert_eq!(b, BinId { reference: -1, bin: 0 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(i64, i64)", into = "(i64, i64)")]
pub struct BinId {
    /// Reference index in the header, or -1 for records without a reference.
    pub reference: i64,
    /// Bin number: the bin covers `[bin * chunk_size, (bin + 1) * chunk_size)`.
    pub bin: i64,
}

impl From<(i64, i64)> for BinId {
    fn from(t: (i64, i64)) -> Self {
        BinId {
            reference: t.0,
            bin: t.1,
        }
    }
}

impl From<BinId> for (i64, i64) {
    fn from(b: BinId) -> Self {
        (b.reference, b.bin)
    }
}

impl From<BinKey> for BinId {
    fn from(k: BinKey) -> Self {
        let reference = if k.0 == u32::MAX { -1 } else { k.0 as i64 };
        BinId {
            reference,
            bin: k.1,
        }
    }
}

impl BinId {
    /// The writer's sort key of this bin.
    pub(crate) fn key(self) -> BinKey {
        match u32::try_from(self.reference) {
            Ok(r) if r != u32::MAX => (r, self.bin),
            _ => UNPLACED,
        }
    }
}

/// The bins of each of `n` shards: shard `k` (1-based) converts the bins from `starts[k-1]`
/// up to, not including, `starts[k]` (the last one to the end, unplaced records included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlan {
    starts: Vec<BinKey>,
}

impl ShardPlan {
    /// Cuts the bins of `index` into `n` shares of about `file_size / n` input bytes each: shard
    /// `k` starts at the first bin whose records begin at or after byte `(k-1) * file_size / n`.
    /// Every shard computes the same plan from the same index.
    pub fn new(index: &InputIndex, chunk_size: u64, n: u32, file_size: u64) -> ShardPlan {
        let mut candidates: Vec<(BinKey, u64)> = Vec::new();
        for r in 0..index.references.len() {
            let end = index.covered_end(r);
            let bins = (end + chunk_size as i64 - 1) / chunk_size as i64;
            for b in 0..bins {
                let offset = index.lower_bound(r, b * chunk_size as i64).unwrap_or(0) >> 16;
                candidates.push(((r as u32, b), offset));
            }
        }
        candidates.push((UNPLACED, index.unplaced_lower_bound().unwrap_or(0) >> 16));
        let mut starts = vec![(0, 0)];
        for k in 1..n as u64 {
            let target = (k as u128 * file_size as u128 / n as u128) as u64;
            let at = candidates
                .iter()
                .find(|c| c.1 >= target)
                .map_or(UNPLACED, |c| c.0);
            let prev = *starts.last().expect("shard 1 starts at the first bin");
            starts.push(at.max(prev));
        }
        ShardPlan { starts }
    }

    /// The first bin of shard `k` (1-based) and the first bin of the next (`None` for the
    /// last shard).
    pub fn range(&self, k: u32) -> (BinKey, Option<BinKey>) {
        let i = k as usize - 1;
        (self.starts[i], self.starts.get(i + 1).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_ids_and_keys_agree() {
        assert_eq!(BinId::from(UNPLACED).key(), UNPLACED);
        assert_eq!(BinId::from((3i64, 7i64)).key(), (3, 7));
        assert_eq!(
            BinId {
                reference: -1,
                bin: 0
            },
            BinId::from(UNPLACED),
            "unplaced is -1 in manifests"
        );
    }
}
