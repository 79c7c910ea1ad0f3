//! # bams3-core
//!
//! BAMS3 is "BAM for S3": an alignment dataset stored as a directory (or object-store prefix) of
//! JSON metadata, a spatial index and one compressed, field-separated object per genomic chunk.
//! A region query reads a few small objects instead of a whole BAM file.
//!
//! This crate holds the format (see `docs/FORMAT.md`), the storage abstraction, BAM/SAM
//! conversion in both directions, region queries, statistics and validation.
#![warn(missing_docs)]

pub mod bam;
pub mod bamstream;
pub mod chunk;
pub mod codec;
pub mod dataset;
pub mod depth;
pub mod error;
pub mod header;
pub mod index;
pub mod input;
pub mod legacy;
pub mod metadata;
pub mod record;
pub mod region;
pub mod sam;
pub mod shard;
pub mod storage;
pub mod validate;

pub use error::{Error, Result};
pub use header::{Header, Reference};
pub use record::Record;
