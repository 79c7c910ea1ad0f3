//! Small byte-level encodings shared by the chunk streams.

pub mod bases;
pub mod quality;
pub mod rans;
pub mod varint;
