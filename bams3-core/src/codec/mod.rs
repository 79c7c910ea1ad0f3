//! Small byte-level encodings shared by the chunk streams.

pub mod rans;
pub mod varint;
