//! `open()` and the dataset handle: header, references, stats, count, and the start of queries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bams3_core::dataset::{Dataset, RecordFilter};
use bams3_core::region::Region;
use bams3_core::storage::{self, Storage, StoreOptions};
use napi::bindgen_prelude::AsyncTask;
use napi::Env;
use napi_derive::napi;

use crate::depth::{DepthOptions, NativeDepth};
use crate::error::Failure;
use crate::query::NativeQuery;
use crate::work::{task, Job, Work};

/// How `s3://` locations are reached; ignored for local paths.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Endpoint of an S3-compatible store (`http://127.0.0.1:9000`), with path-style addressing;
    /// `AWS_ENDPOINT_URL` is honoured too. As the CLI's `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// Unsigned requests (public buckets), as `--no-sign-request`.
    pub no_sign_request: Option<bool>,
    /// Also cache fetched chunk data locally, as `--cache-chunks`.
    pub cache_chunks: Option<bool>,
}

/// Record filters, as `bams3 query -q/-f/-F` (and `samtools view`).
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Keep records with MAPQ at least this (0-255).
    pub min_mapq: Option<u32>,
    /// Keep records with all these flag bits set.
    pub require_flags: Option<u32>,
    /// Keep records with none of these flag bits set.
    pub exclude_flags: Option<u32>,
}

/// A reference sequence of the header.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct Reference {
    pub name: String,
    pub length: i64,
}

/// Checked conversion of a JavaScript filter; a bad value fails the call that uses it.
pub fn record_filter(f: Option<Filter>) -> Result<RecordFilter, Failure> {
    let f = f.unwrap_or_default();
    let min_mapq = f.min_mapq.unwrap_or(0);
    let min_mapq = u8::try_from(min_mapq)
        .map_err(|_| Failure::invalid(format!("minMapq {min_mapq} is out of range (0-255)")))?;
    let flags = |v: Option<u32>, what: &str| {
        let v = v.unwrap_or(0);
        u16::try_from(v)
            .map_err(|_| Failure::invalid(format!("{what} {v:#x} is out of range (0-0xffff)")))
    };
    Ok(RecordFilter {
        min_mapq,
        require_flags: flags(f.require_flags, "requireFlags")?,
        exclude_flags: flags(f.exclude_flags, "excludeFlags")?,
    })
}

/// How bams3-core reaches a store for these options (passed at open: the library keeps no
/// global state, so two datasets of one process may use different endpoints).
pub fn store_options(opts: &OpenOptions) -> StoreOptions {
    StoreOptions {
        endpoint_url: opts.endpoint_url.clone().filter(|s| !s.is_empty()),
        no_sign_request: opts.no_sign_request.unwrap_or(false),
    }
}

/// The store at `location`, reached as `opts` say (for writers: reads go through
/// [`Dataset::open_location`] and its cache).
pub fn open_storage(location: &str, opts: &OpenOptions) -> Result<Box<dyn Storage>, Failure> {
    Ok(storage::open_with(location, &store_options(opts))?)
}

/// How a dataset is opened for reading: the store options and the local cache.
pub fn dataset_options(opts: &OpenOptions) -> bams3_core::dataset::OpenOptions {
    bams3_core::dataset::OpenOptions {
        store: store_options(opts),
        cache_chunks: opts.cache_chunks.unwrap_or(false),
        cache_dir: None,
    }
}

/// What every job on a dataset shares.
pub struct Shared {
    pub ds: Arc<Dataset>,
    pub location: String,
    closed: AtomicBool,
}

impl Shared {
    /// The dataset, unless `close()` was called.
    pub fn dataset(&self) -> Result<&Arc<Dataset>, Failure> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Failure::misuse(format!(
                "{}: dataset is closed",
                self.location
            )));
        }
        Ok(&self.ds)
    }

    pub fn regions(&self, regions: &[String]) -> Result<Vec<Region>, Failure> {
        let ds = self.dataset()?;
        regions
            .iter()
            .map(|r| Region::parse(r, ds.header()).map_err(Failure::from))
            .collect()
    }
}

/// An open dataset. Use it through the `bams3` module's `open()`.
#[napi]
pub struct NativeDataset {
    shared: Arc<Shared>,
    header: String,
    references: Vec<Reference>,
}

pub struct OpenJob {
    location: String,
    opts: OpenOptions,
}

impl Job for OpenJob {
    type Output = NativeDataset;
    type Js = NativeDataset;

    fn run(&mut self) -> Result<NativeDataset, Failure> {
        let ds = Dataset::open_location(&self.location, &dataset_options(&self.opts))?;
        let header = ds.header().sam_text();
        let references = ds
            .header()
            .references
            .iter()
            .map(|r| Reference {
                name: r.name.clone(),
                length: i64::try_from(r.length).unwrap_or(i64::MAX),
            })
            .collect();
        Ok(NativeDataset {
            shared: Arc::new(Shared {
                ds,
                location: self.location.clone(),
                closed: AtomicBool::new(false),
            }),
            header,
            references,
        })
    }

    fn to_js(&mut self, _env: Env, out: NativeDataset) -> napi::Result<NativeDataset> {
        Ok(out)
    }
}

/// Opens the committed dataset at `location` (a directory or `s3://bucket/prefix`).
#[napi(ts_return_type = "Promise<NativeDataset>")]
pub fn open_dataset(location: String, options: Option<OpenOptions>) -> AsyncTask<Work<OpenJob>> {
    task(OpenJob {
        location,
        opts: options.unwrap_or_default(),
    })
}

pub struct StatsJob(Arc<Shared>);

impl Job for StatsJob {
    type Output = String;
    type Js = String;

    fn run(&mut self) -> Result<String, Failure> {
        let v = self.0.dataset()?.summary_json(&self.0.location)?;
        serde_json::to_string(&v)
            .map_err(|e| Failure::invalid(format!("statistics do not serialise: {e}")))
    }

    fn to_js(&mut self, _env: Env, out: String) -> napi::Result<String> {
        Ok(out)
    }
}

pub struct CountJob {
    shared: Arc<Shared>,
    regions: Vec<String>,
    filter: Result<RecordFilter, Failure>,
}

impl Job for CountJob {
    type Output = i64;
    type Js = i64;

    fn run(&mut self) -> Result<i64, Failure> {
        let filter = self.filter.clone()?;
        let regions = self.shared.regions(&self.regions)?;
        let ds = self.shared.dataset()?;
        // No region counts every record, as `bams3 query -c` does.
        let n = ds.count(&regions, filter)?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    fn to_js(&mut self, _env: Env, out: i64) -> napi::Result<i64> {
        Ok(out)
    }
}

#[napi]
impl NativeDataset {
    /// The SAM header text.
    #[napi]
    pub fn header(&self) -> String {
        self.header.clone()
    }

    /// The references of the header, in order.
    #[napi]
    pub fn references(&self) -> Vec<Reference> {
        self.references.clone()
    }

    /// The JSON text `bams3 stats --json` prints (compact).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn stats(&self) -> AsyncTask<Work<StatsJob>> {
        task(StatsJob(self.shared.clone()))
    }

    /// The number of records `bams3 query -c` counts; no region counts all.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn count(&self, regions: Vec<String>, filter: Option<Filter>) -> AsyncTask<Work<CountJob>> {
        task(CountJob {
            shared: self.shared.clone(),
            regions,
            filter: record_filter(filter),
        })
    }

    /// A query over `regions` (none: the whole dataset), started by its first `next()`.
    /// With `bam`, batches carry BAM records only; otherwise SAM lines too.
    #[napi]
    pub fn query(&self, regions: Vec<String>, filter: Option<Filter>, bam: bool) -> NativeQuery {
        NativeQuery::new(self.shared.clone(), regions, record_filter(filter), bam)
    }

    /// Per-base depth over `regions` (none: every reference with reads), as `bams3 depth`.
    #[napi]
    pub fn depth(&self, regions: Vec<String>, options: Option<DepthOptions>) -> NativeDepth {
        NativeDepth::new(self.shared.clone(), regions, options.unwrap_or_default())
    }

    /// Later calls on this dataset fail with `BAMS3_ERR_MISUSE`; running queries finish.
    #[napi]
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
    }
}
