//! One shard of a sharded conversion: its share of the bins, from its byte range of the
//! input, into chunks and a manifest in the shared dataset location.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::ShardSpec;
use super::input_index::InputIndex;
use super::manifest::{ShardChunk, ShardInput, ShardManifest, ShardOptions, manifest_key};
use super::plan::{ShardPlan, UNPLACED};
use super::source::InputSource;
use crate::dataset::{BinKey, DatasetWriter, WriteOptions, bin_key, chunk_key};
use crate::metadata::{self, Source};
use crate::storage::{Storage, StoreOptions};
use crate::{Error, Header, Result, bam};

/// What one shard did.
#[derive(Debug, Clone)]
pub struct ShardSummary {
    /// The manifest it committed.
    pub manifest: ShardManifest,
    /// Bytes of its chunk objects.
    pub stored_bytes: u64,
    /// Bytes of the input's index, read besides [`ShardInput::bytes_read`].
    pub index_bytes: u64,
    /// Objects of earlier runs of this shard it removed (chunks no longer produced).
    pub replaced: usize,
}

/// How far a running shard has got, as [`convert_shard`] reports it to its callback: once
/// before the first record and then every few thousand records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardProgress {
    /// Records of this shard written so far.
    pub records: u64,
    /// Compressed input bytes of the shard's range consumed so far.
    pub bytes: u64,
    /// Compressed bytes of the shard's range as the input's index bounds it (the rest of the
    /// file for the last shard): what `bytes` grows towards.
    pub total_bytes: u64,
}

/// Converts shard `spec` of the indexed, coordinate-sorted BAM `input` into `output`: the
/// chunks of its bins, then its manifest. Never writes `_metadata.json`; refuses an output
/// that already has one. A run replaces what an earlier run of the same shard left (its old
/// manifest first, then any chunk of its bins it no longer writes) and touches nothing else.
/// `cancelled` is polled between records; `progress` hears how far the shard has got.
///
/// ```no_run
/// use bams3_core::{dataset::WriteOptions, shard::{convert_shard, ShardSpec}, storage};
/// use std::sync::{atomic::AtomicBool, Arc};
/// let out = Arc::from(storage::open("sample.bams3").unwrap());
/// let spec: ShardSpec = "2/4".parse().unwrap();
/// let s = convert_shard("in.bam", out, spec, WriteOptions::default(),
///     &Default::default(), &AtomicBool::new(false), &mut |p| eprint!("\r{} records", p.records))
///     .unwrap();
/// println!("{} records", s.manifest.records);
/// ```
pub fn convert_shard(
    input: &str,
    output: Arc<dyn Storage>,
    spec: ShardSpec,
    opts: WriteOptions,
    store: &StoreOptions,
    cancelled: &AtomicBool,
    progress: &mut dyn FnMut(ShardProgress),
) -> Result<ShardSummary> {
    opts.validate()?;
    if output.head(metadata::METADATA_KEY)?.is_some() {
        return Err(Error::Invalid(format!(
            "{}: already a complete dataset; remove it with `bams3 rm --force` to convert it again",
            output.root()
        )));
    }
    let src = InputSource::open(input, store)?;
    let size = src.size()?;
    let (index_name, index_bytes) = src.index()?;
    let index = InputIndex::parse(&index_bytes, &index_name)?;
    if size < bam::BGZF_EOF.len() as u64
        || src.range(size - bam::BGZF_EOF.len() as u64..size)? != bam::BGZF_EOF
    {
        return Err(Error::corrupt(
            input,
            "truncated file (no BGZF end-of-file block)",
        ));
    }
    let (header, header_len) = read_header(&src)?;
    if index.references.len() != header.references.len() {
        return Err(Error::corrupt(
            &index_name,
            format!(
                "indexes {} references but the BAM header has {}: not this file's index",
                index.references.len(),
                header.references.len()
            ),
        ));
    }

    let chunk_size = opts.chunk_size;
    let (first, end) = ShardPlan::new(&index, chunk_size, spec.n, size).range(spec.k);
    let start = if first == UNPLACED {
        index.unplaced_lower_bound()
    } else {
        index.lower_bound(first.0 as usize, first.1 * chunk_size as i64)
    };
    // Without any offset before the shard's records the index points at, they start right
    // after the header.
    let (block, within) = start.map_or((0, header_len), |v| (v >> 16, v & 0xffff));

    let key = manifest_key(spec.k, spec.n);
    output.delete(&key)?;
    let mut decoded = bam::bgzf_decoder(src.reader_at(block)?, opts.threads);
    let skipped = std::io::copy(&mut (&mut decoded).take(within), &mut std::io::sink())
        .map_err(|e| Error::corrupt(input, format!("at the index's offset {block}: {e}")))?;
    if skipped != within {
        return Err(Error::corrupt(
            &index_name,
            "points past the end of the BAM file",
        ));
    }
    let mut records = bam::Reader::resume(decoded, header.clone(), input);
    // The shard's byte range ends where the index puts the first record of the next shard.
    let stop = match end {
        None => size,
        Some(e) if e == UNPLACED => index.unplaced_lower_bound().map_or(size, |v| v >> 16),
        Some(e) => index
            .lower_bound(e.0 as usize, e.1 * chunk_size as i64)
            .map_or(size, |v| v >> 16),
    };
    let before = src.bytes_read();
    let report = |records: u64| ShardProgress {
        records,
        bytes: src.bytes_read().saturating_sub(before),
        total_bytes: stop.saturating_sub(block).max(1),
    };
    progress(report(0));

    let mut writer = DatasetWriter::create_shard(output.clone(), header.clone(), opts.clone())?;
    let mut count = 0u64;
    let mut last = (0u32, i64::MIN);
    let read = (|| -> Result<()> {
        while let Some(r) = records.read_record()? {
            let key = bin_key(r.ref_id(), r.pos() as i64, chunk_size);
            // The writer's own order: a shard stops at its end bin, which is sound only if
            // no record of an earlier bin comes later.
            let order = (key.0, if r.ref_id() < 0 { 0 } else { r.pos() as i64 });
            if order < last {
                return Err(Error::corrupt(
                    input,
                    format!(
                        "record '{}' is out of coordinate order: a sharded conversion needs a coordinate-sorted BAM",
                        String::from_utf8_lossy(r.name())
                    ),
                ));
            }
            last = order;
            if key < first {
                continue;
            }
            if end.is_some_and(|e| key >= e) {
                break;
            }
            writer.push(r)?;
            count += 1;
            if count.is_multiple_of(4096) {
                if cancelled.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                progress(report(count));
            }
        }
        Ok(())
    })();
    if let Err(e) = read {
        writer.abort();
        return Err(e);
    }
    let (entries, sorted) = writer.finish_shard()?;
    let replaced = remove_replaced(&*output, &header, chunk_size, (first, end), &entries)?;

    let stored_bytes = entries.iter().map(|(_, e)| e.stored_bytes).sum();
    let manifest = ShardManifest {
        format: super::manifest::MANIFEST_FORMAT.into(),
        version: 1,
        shard: spec.k,
        of: spec.n,
        fingerprint: fingerprint(size, &header, &index_bytes),
        source: Source {
            file: input.to_string(),
            format: "BAM".into(),
            // As a single `bams3 convert` records it, so the finalized metadata is the same.
            fingerprint: Some(crate::dataset::InputIdentity::of(input, store)?.fingerprint),
        },
        options: ShardOptions {
            chunk_size,
            level: opts.level,
            part_bytes: opts.part_bytes as u64,
            profile: opts.profile_field(),
        },
        header,
        first: first.into(),
        end: end.map(Into::into),
        input: ShardInput {
            size,
            start: block,
            bytes_read: src.bytes_read(),
        },
        records: count,
        sorted,
        chunks: entries
            .into_iter()
            .map(|(bin, entry)| ShardChunk {
                bin: bin.into(),
                entry,
            })
            .collect(),
    };
    // The shard's commit: its manifest claims its chunks, which the writer has flushed.
    output.put(&key, &manifest.to_json())?;
    output.flush()?;
    Ok(ShardSummary {
        manifest,
        stored_bytes,
        index_bytes: index_bytes.len() as u64,
        replaced,
    })
}

/// Reads the BAM header from the start of the input; returns it and its decompressed length.
pub(crate) fn read_header(src: &InputSource) -> Result<(Header, u64)> {
    struct Counted<R>(R, Arc<AtomicU64>);
    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        }
    }
    let n = Arc::new(AtomicU64::new(0));
    let decoded = Counted(bam::bgzf_decoder(src.reader_at(0)?, 1), n.clone());
    let reader = bam::Reader::new(decoded, src.location())?;
    Ok((reader.header().clone(), n.load(Ordering::Relaxed)))
}

/// Identifies the input: its size, header and index. A BAM rewritten in any way changes its
/// index's offsets, so shards of two different files never agree on it.
fn fingerprint(size: u64, header: &Header, index: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    h.update((header.text.len() as u64).to_le_bytes());
    h.update(header.text.as_bytes());
    for r in &header.references {
        h.update((r.name.len() as u64).to_le_bytes());
        h.update(r.name.as_bytes());
        h.update(r.length.to_le_bytes());
    }
    h.update(index);
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Deletes the objects under `data/` that belong to this shard's bins but that this run did
/// not write: chunks of an earlier run with other options, and local temporary files a
/// killed run left. Objects of other bins are never touched.
fn remove_replaced(
    output: &dyn Storage,
    header: &Header,
    chunk_size: u64,
    (first, end): (BinKey, Option<BinKey>),
    written: &[(BinKey, crate::index::ChunkEntry)],
) -> Result<usize> {
    let written: HashSet<&str> = written.iter().map(|(_, e)| e.path.as_str()).collect();
    let in_range = |k: BinKey| k >= first && end.is_none_or(|e| k < e);
    // The folder of each reference the shard may hold: the writer's own names, so this never
    // parses a reference name back.
    let last_ref = end.map_or(header.references.len(), |e| e.0 as usize + 1);
    let folders: HashMap<String, u32> = (first.0 as usize..last_ref.min(header.references.len()))
        .map(|r| {
            let key = chunk_key(Some(&header.references[r].name), 0, 1, 0);
            let folder = key
                .rsplit_once('/')
                .map_or(key.clone(), |f| f.0.to_string());
            (folder, r as u32)
        })
        .collect();
    let mut removed = 0;
    for key in output.list("data/")? {
        if written.contains(key.as_str()) {
            continue;
        }
        let Some((folder, file)) = key.rsplit_once('/') else {
            continue;
        };
        // A local write in progress is `.NAME.tmp-PID`.
        let name = file
            .strip_prefix('.')
            .and_then(|f| f.rsplit_once(".tmp-").map(|(n, _)| n))
            .unwrap_or(file);
        let bin = if folder == "data" {
            let unplaced = name == "unmapped.chunk"
                || name
                    .strip_prefix("unmapped.p")
                    .and_then(|p| p.strip_suffix(".chunk"))
                    .is_some_and(|p| p.parse::<u32>().is_ok());
            unplaced.then_some(UNPLACED)
        } else {
            folders
                .get(folder)
                .and_then(|&r| bin_start(name).map(|s| (r, s / chunk_size as i64)))
        };
        if bin.is_some_and(in_range) {
            output.delete(&key)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The bin start of a chunk file name `SSSSSSSSS-EEEEEEEEE[.pN].chunk`.
fn bin_start(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".chunk")?;
    let stem = match stem.rsplit_once(".p") {
        Some((s, p)) if p.parse::<u32>().is_ok() => s,
        _ => stem,
    };
    let (start, end) = stem.split_once('-')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(start) || !all_digits(end) {
        return None;
    }
    start.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_names_give_their_bin_start() {
        assert_eq!(bin_start("000000000-001048576.chunk"), Some(0));
        assert_eq!(bin_start("001048576-002097152.p3.chunk"), Some(1 << 20));
        assert_eq!(bin_start("notes.txt"), None);
        assert_eq!(bin_start("x-y.chunk"), None);
    }
}
