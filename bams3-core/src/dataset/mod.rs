//! Datasets: writing records into chunks with the commit protocol, reading them back, and
//! removing them.
//!
//! One concept a module: [`open`](Dataset::open) (metadata, header, index and its sections),
//! `filter` (which records a read keeps), `fetch` (one chunk's streams), `query` (the merge of
//! chunk parts in coordinate order), `count` (`query -c` without rebuilding records),
//! `flagstat` (`samtools flagstat` from three streams), `summary` (`stats`), `writer` (records
//! in, committed dataset out), `remove`, `names`.

mod count;
mod fetch;
mod filter;
mod flagstat;
pub(crate) mod journal;
mod legacy_source;
mod names;
mod open;
mod query;
mod remove;
mod summary;
mod writer;

pub(crate) use fetch::{ChunkRanges, read_chunk_in};
pub use filter::RecordFilter;
pub use flagstat::{FlagStatReport, FlagStats};
pub use journal::{
    Checkpoint, InputIdentity, JOURNAL_PREFIX, Journal, JournalOptions, JournalStart,
};
pub use names::{chunk_key, escape_reference};
pub use open::{Dataset, OpenOptions};
pub use query::Query;
pub use remove::remove;
pub(crate) use writer::{BinKey, bin_key, commit};
pub use writer::{DatasetWriter, WriteOptions, WriteSummary};
