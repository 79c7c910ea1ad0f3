//! Small byte-level encodings shared by the chunk streams.

pub mod bases;
pub mod columns;
pub mod mates;
pub mod quality;
pub mod rans;
pub mod tags;
pub mod varint;
