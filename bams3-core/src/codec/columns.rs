//! Columns: byte strings each compressed on its own and stored back to back, the layout codecs
//! 7 and 8 share (`docs/FORMAT.md`): `LEB128 len`, then, when `len > 0`, `LEB128 stored_len`
//! and a zstd frame of `len` bytes.
//!
//! ```
//! use bams3_core::codec::columns;
//! let mut out = Vec::new();
//! columns::put(&mut out, b"aaaa", |c| zstd::bulk::compress(c, 3)).unwrap();
//! columns::put(&mut out, b"", |c| zstd::bulk::compress(c, 3)).unwrap();
//! let mut at = 0;
//! let unz = |z: &[u8], n| zstd::bulk::decompress(z, n);
//! assert_eq!(columns::get(&out, &mut at, 4, unz).unwrap(), b"aaaa");
//! assert_eq!(columns::get(&out, &mut at, 4, unz).unwrap(), b"");
//! assert_eq!(at, out.len());
//! ```

use super::rans::DecodeError;
use super::varint;

/// Appends `col`, compressed with `zstd` (one frame of the bytes given).
pub fn put(
    out: &mut Vec<u8>,
    col: &[u8],
    zstd: impl FnOnce(&[u8]) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<()> {
    varint::put(out, col.len() as u64);
    if !col.is_empty() {
        let z = zstd(col)?;
        varint::put(out, z.len() as u64);
        out.extend_from_slice(&z);
    }
    Ok(())
}

/// Reads the column at `coded[*at..]`, advancing `*at`; a column longer than `most` bytes is
/// corruption (so a corrupt length never allocates without bound). `unzstd(frame, len)`
/// decompresses.
pub fn get(
    coded: &[u8],
    at: &mut usize,
    most: u64,
    unzstd: impl FnOnce(&[u8], usize) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<u8>, DecodeError> {
    let short = DecodeError("column truncated or too long");
    let len = varint::get(coded, at).filter(|&l| l <= most).ok_or(short)?;
    if len == 0 {
        return Ok(Vec::new());
    }
    let stored = varint::get(coded, at).ok_or(short)?;
    let end = usize::try_from(stored)
        .ok()
        .and_then(|s| at.checked_add(s))
        .filter(|&e| e <= coded.len())
        .ok_or(short)?;
    let col = unzstd(&coded[*at..end], len as usize).map_err(|_| DecodeError("column: zstd"))?;
    if col.len() as u64 != len {
        return Err(DecodeError("column: length differs from its frame"));
    }
    *at = end;
    Ok(col)
}

/// zstd at level 3 in the shape [`put`] and [`get`] take, for the codecs' tests.
#[cfg(test)]
pub(crate) mod test_zstd {
    pub fn z(col: &[u8]) -> std::io::Result<Vec<u8>> {
        zstd::bulk::compress(col, 3)
    }

    pub fn unz(frame: &[u8], len: usize) -> std::io::Result<Vec<u8>> {
        zstd::bulk::decompress(frame, len)
    }
}
