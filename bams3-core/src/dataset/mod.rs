//! Datasets: writing records into chunks with the commit protocol, and reading them back.

mod names;
mod reader;
mod writer;

pub use names::{chunk_key, escape_reference};
pub use reader::{Dataset, Query, RecordFilter};
pub use writer::{DatasetWriter, WriteOptions, WriteSummary};
