//! BAM files: reading records as raw bytes and writing them back, BGZF-compressed.

mod blocks;
mod reader;
mod writer;

pub use blocks::ResumePoint;
pub(crate) use blocks::{BlockLog, BlockTracker};
pub use reader::{Reader, bgzf_decoder};
pub use writer::Writer;

/// The magic at the start of a decompressed BAM stream.
pub const MAGIC: [u8; 4] = *b"BAM\x01";

/// The 28-byte empty BGZF block that ends every well-formed BAM file.
pub const BGZF_EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x06, 0x00, 0x42, 0x43, 0x02, 0x00,
    0x1b, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];
