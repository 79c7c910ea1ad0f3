//! `bams3 convert --shard K/N IN OUT`: one shard of a sharded conversion (`bams3 finalize`
//! commits the dataset once all N are done; see docs/SCALE_OUT.md).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use bams3_core::dataset::{OpenOptions, WriteOptions};
use bams3_core::shard::{convert_shard, ShardProgress, ShardSpec};
use bams3_core::storage::{self, Storage};

use crate::progress::Progress;

/// Converts shard `spec` of `input` into `output` with `opts`; one summary line unless `quiet`.
pub fn run(
    spec: ShardSpec,
    input: &str,
    output: &str,
    opts: WriteOptions,
    open: &OpenOptions,
    quiet: bool,
) -> Result<()> {
    let store: Arc<dyn Storage> = Arc::from(storage::open_with(output, &open.store)?);
    let cancelled = Arc::new(AtomicBool::new(false));
    {
        let c = cancelled.clone();
        // Ctrl+C stops the shard between records; it then removes the chunks it wrote.
        let _ = ctrlc::set_handler(move || c.store(true, Ordering::SeqCst));
    }
    let start = Instant::now();
    // The bar is made at the first report, which brings the size of the shard's byte range.
    let bytes = Arc::new(AtomicU64::new(0));
    let mut bar: Option<Progress> = None;
    let mut on_progress = |p: ShardProgress| {
        bytes.store(p.bytes, Ordering::Relaxed);
        bar.get_or_insert_with(|| Progress::new(Some(p.total_bytes), quiet, Some(bytes.clone())))
            .records(p.records);
    };
    let result = convert_shard(
        input,
        store,
        spec,
        opts,
        &open.store,
        &cancelled,
        &mut on_progress,
    );
    if let Some(b) = &bar {
        b.finish();
    }
    let s = result?;
    if !quiet {
        let m = &s.manifest;
        let replaced = if s.replaced > 0 {
            format!(", replaced {} objects of an earlier run", s.replaced)
        } else {
            String::new()
        };
        eprintln!(
            "bams3: shard {}/{}: converted {} records into {} chunks, {} bytes; read {} of {} input bytes from offset {} (and a {}-byte index){replaced}, in {:.1} s",
            m.shard,
            m.of,
            m.records,
            m.chunks.len(),
            s.stored_bytes,
            m.input.bytes_read,
            m.input.size,
            m.input.start,
            s.index_bytes,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
