//! Datasets: writing records into chunks with the commit protocol, reading them back, and
//! removing them.

mod count;
mod names;
mod reader;
mod remove;
mod writer;

pub use names::{chunk_key, escape_reference};
pub use reader::{Dataset, Query, RecordFilter};
pub use remove::remove;
pub use writer::{DatasetWriter, WriteOptions, WriteSummary};
