//! `_shards/K-of-N.json`: what one shard of a sharded conversion committed.
//!
//! A manifest is a list of committed chunks with their index entries, plus what `finalize`
//! needs to check that the shards belong together (input fingerprint, header, options, N)
//! and cover the bins without gap or overlap. A shard writes it last, after its chunks are
//! stored: a manifest claims that every chunk it lists exists. Names under `_shards/` cannot
//! collide with chunk objects, which all live under `data/` (see `docs/FORMAT.md`).

use serde::{Deserialize, Serialize};

use super::plan::BinId;
use crate::index::ChunkEntry;
use crate::metadata::Source;
use crate::{Error, Header, Result};

/// Where manifests live in a dataset.
pub const SHARDS_PREFIX: &str = "_shards/";

/// `"bams3-shard-manifest"`.
pub const MANIFEST_FORMAT: &str = "bams3-shard-manifest";

/// Object key of shard `k`'s manifest among `n`: `_shards/K-of-N.json`.
///
/// ```
/// assert_eq!(bams3_core::shard::manifest_key(2, 4), "_shards/2-of-4.json");
/// ```
pub fn manifest_key(k: u32, n: u32) -> String {
    format!("{SHARDS_PREFIX}{k}-of-{n}.json")
}

/// The options that decide a dataset's bytes: the same options give the same chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardOptions {
    /// Bin span in bases.
    pub chunk_size: u64,
    /// zstd level.
    pub level: i32,
    /// Part budget in BAM-encoded bytes.
    pub part_bytes: u64,
    /// Codec profile when not the default (`"archive"`); absent for the default profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// Where a shard's share of the input lies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInput {
    /// Size of the whole input in bytes.
    pub size: u64,
    /// Compressed offset the shard started reading its records at.
    pub start: u64,
    /// Bytes of the input (header and records, not the index) the shard read.
    pub bytes_read: u64,
}

/// One committed chunk: its bin and its index entry, exactly as `_index/spatial.json` will
/// hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardChunk {
    /// The chunk's bin.
    pub bin: BinId,
    /// Its index entry.
    pub entry: ChunkEntry,
}

/// The contents of a shard manifest.
///
/// ```
/// use bams3_core::shard::{ShardManifest, BinId};
/// let json = r#"{"format":"bams3-shard-manifest","version":1,"shard":1,"of":2,
///   "fingerprint":"sha256:00","source":{"file":"x.bam","format":"BAM"},
///   "options":{"chunk_size":1048576,"level":3,"part_bytes":2097152},
///   "header":{"text":"","references":[]},"first":[0,0],"end":[0,5],
///   "input":{"size":100,"start":0,"bytes_read":60},"records":0,"sorted":true,"chunks":[]}"#;
/// let m = ShardManifest::from_json(json.as_bytes(), "m").unwrap();
/// assert_eq!(m.end, Some(BinId { reference: 0, bin: 5 }));
/// assert_eq!(ShardManifest::from_json(&m.to_json(), "m").unwrap(), m);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// Manifest version, 1.
    pub version: u32,
    /// This shard's number, 1 to `of`.
    pub shard: u32,
    /// Shards in all.
    pub of: u32,
    /// `sha256:` of the input's size, header and index: shards of one input agree on it.
    pub fingerprint: String,
    /// The input, as the dataset's metadata will record it.
    pub source: Source,
    /// The options that decide the chunks' bytes.
    pub options: ShardOptions,
    /// The input's header.
    pub header: Header,
    /// First bin of the shard.
    pub first: BinId,
    /// First bin of the next shard; `None` for the last (which holds the unplaced records).
    pub end: Option<BinId>,
    /// What the shard read of the input.
    pub input: ShardInput,
    /// Records converted.
    pub records: u64,
    /// Whether the records arrived coordinate-sorted.
    pub sorted: bool,
    /// The committed chunks, in index order.
    pub chunks: Vec<ShardChunk>,
}

impl ShardManifest {
    /// Parses a manifest; `what` names it in errors.
    pub fn from_json(bytes: &[u8], what: &str) -> Result<ShardManifest> {
        let m: ShardManifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(what, format!("not a shard manifest: {e}")))?;
        if m.format != MANIFEST_FORMAT || m.version != 1 {
            return Err(Error::corrupt(
                what,
                format!("not a version 1 {MANIFEST_FORMAT}"),
            ));
        }
        Ok(m)
    }

    /// The manifest as JSON: pretty, except one line per chunk and one for the header (as
    /// `_metadata.json` and the index are written).
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Top<'a> {
            format: &'a str,
            version: u32,
            shard: u32,
            of: u32,
            fingerprint: &'a str,
            source: &'a Source,
            options: &'a ShardOptions,
            first: BinId,
            end: Option<BinId>,
            input: &'a ShardInput,
            records: u64,
            sorted: bool,
        }
        let top = Top {
            format: &self.format,
            version: self.version,
            shard: self.shard,
            of: self.of,
            fingerprint: &self.fingerprint,
            source: &self.source,
            options: &self.options,
            first: self.first,
            end: self.end,
            input: &self.input,
            records: self.records,
            sorted: self.sorted,
        };
        // Plain structs of strings and numbers always serialise.
        let mut out = serde_json::to_vec_pretty(&top).expect("manifest serialises");
        out.truncate(out.len() - 2);
        out.extend_from_slice(b",\n  \"header\": ");
        serde_json::to_writer(&mut out, &self.header).expect("header serialises");
        out.extend_from_slice(b",\n  \"chunks\": [");
        for (i, c) in self.chunks.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            serde_json::to_writer(&mut out, c).expect("chunk serialises");
        }
        out.extend_from_slice(b"\n  ]\n}\n");
        out
    }
}
