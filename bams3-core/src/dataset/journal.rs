//! The journal of a resumable conversion: what lets `bams3 convert --resume` continue an
//! interrupted conversion instead of starting again.
//!
//! A conversion of a coordinate-sorted BAM file writes `_journal/start.json` before its first
//! chunk (which input, which options), then every few seconds a checkpoint
//! `_journal/NNNNNNNNNNNN.json`: the chunks stored since the previous one and the place in the
//! input where the next bin's first record starts. A checkpoint is put only after the
//! [`Storage::flush`] barrier, so every chunk it names is stored; each object is written whole
//! (a rename locally, a single PUT on S3), so a crash leaves the journal at its last
//! checkpoint. Resuming keeps the chunks the checkpoints name, deletes every other chunk
//! object, and reopens the input at the checkpoint's point: since a sorted conversion's chunk
//! layout depends only on the records, the result is byte for byte the uninterrupted one.
//! The commit deletes the journal after `_metadata.json`.
//!
//! Input that turns out to be unsorted keeps every bin open until its end, so it has no point
//! to resume from: its journal gets a `restart` checkpoint and a resume starts it again.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bam::ResumePoint;
use crate::shard::{BinId, ShardChunk};
use crate::storage::{Storage, StoreOptions};
use crate::{Error, Result};

/// Where the journal lives in a dataset.
pub const JOURNAL_PREFIX: &str = "_journal/";
const START_KEY: &str = "_journal/start.json";
const FORMAT: &str = "bams3-journal";

/// Raw bytes at the start of the input that go into its fingerprint: the BAM header and the
/// first blocks of records.
const FINGERPRINT_BYTES: u64 = 1 << 20;

/// What identifies an input file: a different file, or the same one rewritten, differs in at
/// least one field.
///
/// ```no_run
/// use bams3_core::dataset::InputIdentity;
/// let id = InputIdentity::of("in.bam", &Default::default()).unwrap();
/// println!("{} bytes, {}", id.size, id.fingerprint);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputIdentity {
    /// The input as given.
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time (a local file) or ETag (an S3 object).
    pub version: String,
    /// `sha256:` of its size and first MiB.
    pub fingerprint: String,
}

impl InputIdentity {
    /// The identity of `location` (a path or `s3://bucket/key`; not standard input).
    pub fn of(location: &str, store: &StoreOptions) -> Result<InputIdentity> {
        let src = crate::shard::InputSource::open(location, store)?;
        let (size, version) = src.size_and_version()?;
        let head = src.range(0..size.min(FINGERPRINT_BYTES))?;
        let mut h = Sha256::new();
        h.update(size.to_le_bytes());
        h.update(&head);
        Ok(InputIdentity {
            location: location.to_string(),
            size,
            version,
            fingerprint: format!("sha256:{}", hex::encode(h.finalize())),
        })
    }

    /// Why `self` (the input given now) is not `started` (the journal's), if it is not.
    /// The location may differ (a file moved); size, version and content may not.
    pub fn mismatch(&self, started: &InputIdentity) -> Option<String> {
        if self.size != started.size {
            Some(format!(
                "{} bytes, the conversion started from {} bytes",
                self.size, started.size
            ))
        } else if self.fingerprint != started.fingerprint {
            Some(
                "its header and first blocks differ from the input the conversion started from"
                    .into(),
            )
        } else if self.version != started.version {
            Some(format!(
                "modified ({}) since the conversion started ({})",
                self.version, started.version
            ))
        } else {
            None
        }
    }
}

/// The options that decide a dataset's bytes: a resume must use the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalOptions {
    /// Bin span in bases.
    pub chunk_size: u64,
    /// zstd level.
    pub level: i32,
    /// Part size in BAM-encoded bytes.
    pub part_bytes: u64,
    /// Codec profile when not the default (`"archive"`); absent for the default profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// `_journal/start.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStart {
    /// `bams3-journal`.
    pub format: String,
    /// 1.
    pub version: u32,
    /// The input.
    pub input: InputIdentity,
    /// The options.
    pub options: JournalOptions,
}

impl JournalStart {
    /// The start of a journal for `input` converted with `options`.
    pub fn new(input: InputIdentity, options: JournalOptions) -> JournalStart {
        JournalStart {
            format: FORMAT.into(),
            version: 1,
            input,
            options,
        }
    }
}

/// One checkpoint object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// 1, 2, ...: the object's number.
    pub seq: u64,
    /// The input turned out unsorted: nothing before can be kept; a resume starts again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
    /// Where the first record not yet in a stored chunk starts.
    pub next: Option<ResumePoint>,
    /// Records before `next`.
    pub records: u64,
    /// Bin of the last record before `next`, and its writer order (reference, position).
    pub last_bin: Option<BinId>,
    /// Writer order of the last record before `next`.
    pub last_order: (u32, i64),
    /// Chunks stored since the previous checkpoint, in index order.
    pub chunks: Vec<ShardChunk>,
}

/// A journal as a resume finds it.
#[derive(Debug, Clone)]
pub struct Journal {
    /// Its start.
    pub start: JournalStart,
    /// Its last checkpoint (`None` before the first), with `chunks` holding every chunk of
    /// every checkpoint.
    pub last: Option<Checkpoint>,
}

pub(crate) fn checkpoint_key(seq: u64) -> String {
    format!("{JOURNAL_PREFIX}{seq:012}.json")
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    let mut j = serde_json::to_vec(v).expect("journal serialises");
    j.push(b'\n');
    j
}

/// Writes `_journal/start.json`.
pub(crate) fn put_start(storage: &dyn Storage, start: &JournalStart) -> Result<()> {
    storage.put(START_KEY, &to_json(start))?;
    storage.flush()
}

/// Writes checkpoint `c`; the caller has flushed the chunks it names.
pub(crate) fn put_checkpoint(storage: &dyn Storage, c: &Checkpoint) -> Result<()> {
    storage.put(&checkpoint_key(c.seq), &to_json(c))?;
    storage.flush()
}

/// Removes the journal (after the commit).
pub(crate) fn delete(storage: &dyn Storage) -> Result<()> {
    for key in storage.list(JOURNAL_PREFIX)? {
        storage.delete(&key)?;
    }
    Ok(())
}

impl Journal {
    /// The journal in `storage`, or `None` when there is none.
    pub fn load(storage: &dyn Storage) -> Result<Option<Journal>> {
        let keys = storage.list(JOURNAL_PREFIX)?;
        if !keys.iter().any(|k| k == START_KEY) {
            return Ok(None);
        }
        let damaged = |key: &str, e: String| {
            Error::corrupt(
                format!("{}/{key}", storage.root()),
                format!(
                    "damaged journal ({e}): remove the dataset with `bams3 rm` and convert again"
                ),
            )
        };
        let bytes = storage.get(START_KEY)?;
        let start: JournalStart =
            serde_json::from_slice(&bytes).map_err(|e| damaged(START_KEY, e.to_string()))?;
        if start.format != FORMAT || start.version != 1 {
            return Err(damaged(START_KEY, "not a journal this bams3 reads".into()));
        }
        let mut last: Option<Checkpoint> = None;
        let mut chunks = Vec::new();
        // Checkpoint names sort by number (fixed width); a local write in progress (`.NAME.tmp-PID`)
        // is not a checkpoint.
        for key in &keys {
            let Some(name) = key.strip_prefix(JOURNAL_PREFIX) else {
                continue;
            };
            let Some(seq) = name
                .strip_suffix(".json")
                .filter(|s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let bytes = storage.get(key)?;
            let c: Checkpoint =
                serde_json::from_slice(&bytes).map_err(|e| damaged(key, e.to_string()))?;
            let expected = last.as_ref().map_or(1, |l| l.seq + 1);
            if c.seq != seq || seq != expected {
                return Err(damaged(
                    key,
                    format!("checkpoint {seq} where {expected} was due"),
                ));
            }
            if c.restart {
                chunks.clear();
            } else {
                chunks.extend(c.chunks.iter().cloned());
            }
            last = Some(c);
        }
        if let Some(l) = &mut last {
            l.chunks = chunks;
        }
        Ok(Some(Journal { start, last }))
    }
}

/// A file's modification time as the journal records it.
pub(crate) fn mtime_version(m: &std::fs::Metadata) -> String {
    match m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
    {
        Some(d) => format!("mtime:{}.{:09}", d.as_secs(), d.subsec_nanos()),
        None => "mtime:unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;

    #[test]
    fn a_journal_reads_back_its_checkpoints_in_order() {
        let dir = std::env::temp_dir().join(format!("bams3-journal-{}", std::process::id()));
        let s = LocalStorage::new(&dir);
        assert!(Journal::load(&s).unwrap().is_none());
        let id = InputIdentity {
            location: "in.bam".into(),
            size: 10,
            version: "mtime:1.0".into(),
            fingerprint: "sha256:00".into(),
        };
        let opts = JournalOptions {
            chunk_size: 1 << 20,
            level: 3,
            part_bytes: 2 << 20,
            profile: None,
        };
        put_start(&s, &JournalStart::new(id.clone(), opts)).unwrap();
        let j = Journal::load(&s).unwrap().unwrap();
        assert!(j.last.is_none());
        assert_eq!(j.start.input, id);
        let point = ResumePoint {
            block: 100,
            block_start: 2000,
            within: 7,
        };
        for seq in 1..=3 {
            let c = Checkpoint {
                seq,
                restart: false,
                next: Some(point),
                records: seq * 10,
                last_bin: Some(BinId::from((0i64, seq as i64))),
                last_order: (0, seq as i64),
                chunks: vec![],
            };
            put_checkpoint(&s, &c).unwrap();
        }
        let j = Journal::load(&s).unwrap().unwrap();
        assert_eq!(j.last.as_ref().unwrap().seq, 3);
        assert_eq!(j.last.unwrap().records, 30);
        // A gap in the numbers is damage, named as such.
        s.delete(&checkpoint_key(2)).unwrap();
        let e = Journal::load(&s).unwrap_err().to_string();
        assert!(e.contains("damaged journal"), "{e}");
        delete(&s).unwrap();
        assert!(Journal::load(&s).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn identities_name_what_changed() {
        let a = InputIdentity {
            location: "a.bam".into(),
            size: 10,
            version: "v1".into(),
            fingerprint: "f1".into(),
        };
        assert!(a.mismatch(&a).is_none());
        let moved = InputIdentity {
            location: "b.bam".into(),
            ..a.clone()
        };
        assert!(moved.mismatch(&a).is_none());
        let bigger = InputIdentity {
            size: 11,
            ..a.clone()
        };
        assert!(bigger.mismatch(&a).unwrap().contains("11 bytes"));
        let touched = InputIdentity {
            version: "v2".into(),
            ..a.clone()
        };
        assert!(touched.mismatch(&a).unwrap().contains("modified"));
    }
}
