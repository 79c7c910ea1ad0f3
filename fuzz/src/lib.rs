//! The fuzz targets' entry points, shared with the regression test that replays the corpus
//! (bams3-ffi/tests/fuzz_regressions.rs includes `targets.rs` by path).
pub mod targets;
