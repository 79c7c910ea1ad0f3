//! An open dataset: its metadata, header and index, from any store.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::index::{ChunkEntry, SpatialIndex};
use crate::legacy::{self, LegacyDataset};
use crate::metadata::{self, Metadata};
use crate::storage::{self, CachePolicy, CachedStore, Storage, StoreOptions};
use crate::{Error, Header, Result};

use super::filter::Proven;

/// Largest span of `_index/spatial.json` one region's sections may ask for (a whole reference
/// of a million chunks is ~700 MB; sections of a sane table are a few hundred kB).
const MAX_SECTION_SPAN: u64 = 1 << 30;

/// How [`Dataset::open_location`] reaches and caches a dataset.
///
/// ```
/// use bams3_core::dataset::OpenOptions;
/// let opts = OpenOptions { cache_chunks: true, ..Default::default() };
/// assert!(opts.store.endpoint_url.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// How the store is reached (S3 endpoint, unsigned requests).
    pub store: StoreOptions,
    /// Keep fetched chunk byte ranges in the local cache too, not only metadata.
    pub cache_chunks: bool,
    /// Where the local cache lives (default [`storage::cache_dir`]).
    pub cache_dir: Option<PathBuf>,
}

/// An open dataset.
///
/// ```no_run
/// use bams3_core::{dataset::{Dataset, RecordFilter}, region::Region, storage::LocalStorage};
/// use std::sync::Arc;
/// let ds = Dataset::open(Arc::new(LocalStorage::new("sample.bams3"))).unwrap();
/// let region = Region::parse("chr1:1000-2000", ds.header()).unwrap();
/// for record in ds.query(&[region], RecordFilter::default()) {
///     let record = record.unwrap();
///     println!("{}", String::from_utf8_lossy(record.name()));
/// }
/// ```
pub struct Dataset {
    pub(super) storage: Arc<dyn Storage>,
    pub(super) metadata: Metadata,
    pub(super) header: Header,
    /// The whole index: read on first use. Queries of datasets with index sections never need
    /// it: they read the sections near their regions (see [`Dataset::chunks`]).
    pub(super) index: OnceLock<SpatialIndex>,
    pub(super) source: Source,
}

/// What kind of dataset the chunks belong to, and so what its index can prove.
pub(super) enum Source {
    /// A v0.3 dataset: exact index statistics, chunks of field streams.
    Native,
    /// An upstream v0.1/v0.2 dataset, seen through an index built from its metadata whose
    /// statistics are placeholders (see [`Dataset::proven`]); its chunks are decoded by
    /// `legacy_source`.
    Legacy(LegacyDataset),
}

impl Dataset {
    /// The policy a dataset's reads are cached with: `_metadata.json` is written last, so
    /// while its version is unchanged the header, the index and every chunk are too.
    pub fn cache_policy(cache_chunks: bool) -> CachePolicy {
        CachePolicy {
            validator: metadata::METADATA_KEY.into(),
            whole: vec![metadata::HEADER_KEY.into(), metadata::INDEX_KEY.into()],
            ranges_of: vec![metadata::INDEX_KEY.into()],
            other_ranges: cache_chunks,
        }
    }

    /// Opens the dataset at `location` (a local directory or `s3://bucket/prefix`), reading
    /// through the local cache (revalidated against `_metadata.json`'s version).
    ///
    /// ```no_run
    /// use bams3_core::dataset::{Dataset, OpenOptions};
    /// let ds = Dataset::open_location("s3://bucket/sample.bams3", &OpenOptions::default()).unwrap();
    /// println!("{} references", ds.header().references.len());
    /// ```
    pub fn open_location(location: &str, options: &OpenOptions) -> Result<Arc<Dataset>> {
        let store = storage::open_with(location, &options.store)?;
        let cached = CachedStore::new(
            store,
            Self::cache_policy(options.cache_chunks),
            options.cache_dir.clone(),
        );
        Self::open(Arc::new(cached))
    }

    /// Opens the dataset in `storage`. A location with objects but no `_metadata.json` is an
    /// incomplete dataset (an interrupted conversion) and is refused.
    pub fn open(storage: Arc<dyn Storage>) -> Result<Arc<Dataset>> {
        let root = storage.root();
        let meta = match storage.get(metadata::METADATA_KEY) {
            Ok(b) => b,
            Err(Error::NotFound(_)) => {
                // One small request decides the message, whatever the number of objects.
                return Err(if storage.any_under("")? {
                    Error::Incomplete(root)
                } else {
                    Error::NotFound(format!(
                        "{root}: no BAMS3 dataset (a dataset directory or s3://bucket/prefix)"
                    ))
                });
            }
            Err(e) => return Err(e),
        };
        let what = |k: &str| format!("{root}/{k}");
        let version = serde_json::from_slice::<serde_json::Value>(&meta)
            .ok()
            .and_then(|v| {
                v.get("version")
                    .and_then(|v| v.as_str().map(str::to_string))
            });
        if version.is_some_and(|v| legacy::SUPPORTED_VERSIONS.contains(&v.as_str())) {
            let header = storage.get(metadata::HEADER_KEY)?;
            let ds = legacy::open(&meta, &header).map_err(|e| match e {
                Error::Corrupt { what: w, detail } => Error::corrupt(what(&w), detail),
                e => e,
            })?;
            return Ok(Arc::new(super::legacy_source::present(storage, ds)));
        }
        let mut metadata: Metadata = serde_json::from_slice(&meta)
            .map_err(|e| Error::corrupt(what(metadata::METADATA_KEY), e.to_string()))?;
        if metadata.format != "bams3" || !metadata.version.starts_with("0.3") {
            return Err(Error::corrupt(
                what(metadata::METADATA_KEY),
                format!("unsupported format version '{}'", metadata.version),
            ));
        }
        // The copy in `_metadata.json` saves a round trip; `validate` checks it is the same.
        let header: Header = match metadata.header.take() {
            Some(h) => h,
            None => serde_json::from_slice(&storage.get(metadata::HEADER_KEY)?)
                .map_err(|e| Error::corrupt(what(metadata::HEADER_KEY), e.to_string()))?,
        };
        let ds = Dataset {
            storage,
            metadata,
            header,
            index: OnceLock::new(),
            source: Source::Native,
        };
        // Without sections, every query needs the whole index: read it now, so that a
        // damaged one fails the open rather than the first query.
        if ds.metadata.index_sections.is_empty() {
            ds.index()?;
        }
        Ok(Arc::new(ds))
    }

    /// Reads `_index/spatial.json` whole.
    fn load_index(&self) -> Result<SpatialIndex> {
        let what = format!("{}/{}", self.storage.root(), metadata::INDEX_KEY);
        let index: SpatialIndex = serde_json::from_slice(&self.storage.get(metadata::INDEX_KEY)?)
            .map_err(|e| Error::corrupt(&what, e.to_string()))?;
        if index.references.len() != self.header.references.len() {
            return Err(Error::corrupt(
                what,
                "reference list differs from _header.json",
            ));
        }
        Ok(index)
    }

    /// For an upstream v0.1/v0.2 dataset, what it lost relative to its source, in plain words;
    /// empty for v0.3 datasets, which are lossless.
    pub fn losses(&self) -> &[String] {
        match &self.source {
            Source::Legacy(l) => l.losses.as_slice(),
            Source::Native => &[],
        }
    }

    /// Whether this is an upstream v0.1/v0.2 dataset.
    pub fn is_legacy(&self) -> bool {
        matches!(self.source, Source::Legacy(_))
    }

    /// `e` with its statistics trusted, for the index shortcuts (skipping chunks no record of
    /// which can pass a filter, counting chunks unread); `None` when they are placeholders.
    pub(crate) fn proven<'a>(&self, e: &'a ChunkEntry) -> Option<Proven<'a>> {
        match self.source {
            Source::Native => Some(Proven(e)),
            Source::Legacy(_) => None,
        }
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The SAM header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The whole spatial index, read on first use when the dataset was opened without it.
    pub fn index(&self) -> Result<&SpatialIndex> {
        if let Some(index) = self.index.get() {
            return Ok(index);
        }
        let index = self.load_index()?;
        // Two threads may both have read it; either copy is the same.
        Ok(self.index.get_or_init(|| index))
    }

    /// The chunks of reference `ref_id` (or, for `None`, the unplaced chunks) that may hold
    /// records overlapping the 0-based half-open `span` (all of them without a span), in
    /// index order.
    ///
    /// With the whole index in memory this filters it; otherwise it fetches only the index
    /// sections that `_metadata.json` says can overlap, in one ranged read.
    ///
    /// ```no_run
    /// use bams3_core::{dataset::Dataset, storage::LocalStorage};
    /// use std::sync::Arc;
    /// let ds = Dataset::open(Arc::new(LocalStorage::new("sample.bams3"))).unwrap();
    /// let chunks = ds.chunks(Some(0), Some((0, 100_000))).unwrap();
    /// println!("{} chunks to read", chunks.len());
    /// ```
    pub fn chunks(
        &self,
        ref_id: Option<usize>,
        span: Option<(i64, i64)>,
    ) -> Result<Vec<ChunkEntry>> {
        let keep = |e: &ChunkEntry| span.is_none_or(|(beg, end)| e.overlaps(beg, end));
        if let Some(index) = self.index.get() {
            let list = match ref_id {
                Some(id) => index.references.get(id).map_or(&[][..], |r| &r.chunks),
                None => &index.unmapped,
            };
            return Ok(list.iter().filter(|e| keep(e)).cloned().collect());
        }
        let reference = ref_id.map_or(-1, |id| id as i64);
        let sections: Vec<_> = self
            .metadata
            .index_sections
            .iter()
            .filter(|s| s.reference == reference)
            .filter(|s| span.is_none_or(|(beg, end)| s.overlaps(beg, end)))
            .collect();
        let (Some(lo), Some(hi)) = (
            sections.iter().map(|s| s.offset).min(),
            sections
                .iter()
                .map(|s| s.offset.saturating_add(s.length))
                .max(),
        ) else {
            return Ok(Vec::new());
        };
        let what = || format!("{}/{}", self.storage.root(), metadata::INDEX_KEY);
        // A section table from a damaged _metadata.json must not become a huge read.
        if hi - lo > MAX_SECTION_SPAN {
            return Err(Error::corrupt(
                format!("{}/{}", self.storage.root(), metadata::METADATA_KEY),
                format!("index sections span {} bytes of the index", hi - lo),
            ));
        }
        // Sections near one region are neighbours in the object: one GET covers them.
        let bytes = self.storage.get_range(metadata::INDEX_KEY, lo..hi)?;
        let mut out = Vec::new();
        for s in sections {
            let at = (s.offset - lo) as usize;
            let part = bytes
                .get(at..at.saturating_add(s.length as usize))
                .ok_or_else(|| Error::corrupt(what(), "short read of an index section"))?;
            let entries = s.parse(part).map_err(|e| Error::corrupt(what(), e))?;
            out.extend(entries.into_iter().filter(|e| keep(e)));
        }
        Ok(out)
    }

    /// The storage the dataset lives in.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}
