//! Small byte-level encodings shared by the chunk streams.

pub mod varint;
