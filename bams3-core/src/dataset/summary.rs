//! What `bams3 stats` reports: a summary from the metadata and the index alone.

use super::Dataset;
use crate::Result;

impl Dataset {
    /// What `bams3 stats --json` prints (and the C ABI's `bams3_reader_stats_json` returns),
    /// from the metadata and index alone: no chunk is read. `location` is echoed as `dataset`.
    pub fn summary_json(&self, location: &str) -> Result<serde_json::Value> {
        let m = &self.metadata;
        let index = self.index()?;
        let all = || {
            index
                .references
                .iter()
                .flat_map(|r| &r.chunks)
                .chain(&index.unmapped)
        };
        let references: Vec<serde_json::Value> = index
            .references
            .iter()
            .filter_map(|r| {
                let reads: u64 = r.chunks.iter().map(|c| c.count).sum();
                let bytes: u64 = r.chunks.iter().map(|c| c.stored_bytes).sum();
                (reads > 0).then(|| {
                    serde_json::json!({"name": r.name, "length": r.length, "reads": reads,
                           "chunks": r.chunks.len(), "stored_bytes": bytes})
                })
            })
            .collect();
        Ok(serde_json::json!({
            "dataset": location,
            "format": m.format,
            "version": m.version,
            "created": m.created,
            "created_by": m.created_by,
            "source": m.source,
            "statistics": m.statistics,
            "chunk_size": m.chunk_size,
            "chunk_count": m.chunk_count,
            "compression": m.compression,
            "stored_bytes": all().map(|c| c.stored_bytes).sum::<u64>(),
            "raw_bam_record_bytes": all().map(|c| c.raw_bytes).sum::<u64>(),
            "unplaced_reads": index.unmapped.iter().map(|c| c.count).sum::<u64>(),
            "losses": self.losses(),
            "references": references,
        }))
    }
}
