//! LEB128 variable-length integers and zig-zag mapping of signed values.
//!
//! Positions are stored as deltas and lengths are mostly small, so one or two bytes per value
//! before zstd is what makes those streams nearly free.

/// Appends `v` as unsigned LEB128.
///
/// ```
/// use bams3_core::codec::varint::{put, get};
/// let mut b = Vec::new();
/// put(&mut b, 300);
/// let mut at = 0;
/// assert_eq!(get(&b, &mut at), Some(300));
/// ```
#[inline]
pub fn put(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads one unsigned LEB128 value at `*at`, advancing it; `None` if truncated or over 64 bits.
#[inline]
pub fn get(buf: &[u8], at: &mut usize) -> Option<u64> {
    // Most values of the small streams take one byte.
    if let Some(&b) = buf.get(*at)
        && b < 0x80
    {
        *at += 1;
        return Some(u64::from(b));
    }
    get_long(buf, at)
}

fn get_long(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *buf.get(*at)?;
        *at += 1;
        if shift >= 64 {
            return None;
        }
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
    }
}

/// Zig-zag maps a signed value so small magnitudes of either sign become small unsigned values.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends a signed value, zig-zag mapped.
#[inline]
pub fn put_signed(buf: &mut Vec<u8>, v: i64) {
    put(buf, zigzag(v));
}

/// Reads a signed, zig-zag mapped value.
#[inline]
pub fn get_signed(buf: &[u8], at: &mut usize) -> Option<i64> {
    get(buf, at).map(unzigzag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extremes() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            1 << 40,
            i64::MIN,
            i64::MAX,
            i32::MIN as i64,
        ] {
            let mut b = Vec::new();
            put_signed(&mut b, v);
            let mut at = 0;
            assert_eq!(get_signed(&b, &mut at), Some(v));
            assert_eq!(at, b.len());
        }
    }

    #[test]
    fn truncated_is_none() {
        let mut at = 0;
        assert_eq!(get(&[0x80, 0x80], &mut at), None);
        let mut at = 0;
        assert_eq!(get(&[0xff; 11], &mut at), None);
    }
}
