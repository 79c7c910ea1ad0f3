//! The native half of the `bams3` npm package: napi-rs bindings over bams3-core.
//!
//! Every function that touches a dataset returns a promise computed on the libuv thread pool
//! ([`work::task`]); records cross into JavaScript in batches (one Buffer of BAM records, one of
//! SAM lines), and the package's `bams3.js` turns them into async iterators of record objects.
// The `#[napi]` registrations are compiled out of `cargo test` builds, which leaves the items
// they export looking unused there.
#![cfg_attr(test, allow(dead_code))]

mod convert;
mod dataset;
mod depth;
mod error;
mod query;
mod work;
mod writer;
