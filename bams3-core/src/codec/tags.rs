//! Tags by column (archive profile, codec 8): the tag stream of a chunk split into one column
//! per tag and type, each compressed on its own.
//!
//! An aligner writes the same tags in the same order on almost every read (minimap2: `NM ms AS
//! nn tp cm s1 de rl`), and each tag's values are alike from read to read (`tp:A:P` nearly always,
//! `NM` small, `AS` and `ms` close to each other). Interleaved, they are one mixed byte stream;
//! by column, each is homogeneous, and zstd codes most of them to a few bits a value. A record's
//! tags become its *signature* (the keys in order, an index into the chunk's list of
//! signatures) and one value in each key's column. Tag data that does not parse is kept as it
//! is, so the codec is lossless for any bytes. `docs/FORMAT.md` ("Codec 8") specifies the
//! layout.
//!
//! ```
//! use bams3_core::codec::tags;
//! let recs: Vec<&[u8]> = vec![b"NMC\x01tpAP", b"NMC\x00tpAP", b""];
//! let coded = tags::encode(&recs, |col| zstd::bulk::compress(col, 3)).unwrap();
//! let raw: Vec<u8> = recs.concat();
//! let unzstd = |z: &[u8], len| zstd::bulk::decompress(z, len);
//! assert_eq!(tags::decode(&coded, recs.len(), raw.len(), unzstd).unwrap(), raw);
//! ```

use std::collections::HashMap;

use super::rans::DecodeError;
use super::{columns, varint};
use crate::record::{AuxIter, aux_type_size};

/// Largest decoded column accepted (a corrupt length must not allocate without bound).
const MAX_COLUMN: u64 = 1 << 32;

/// A column key: the tag's two characters and its type.
type Key = [u8; 3];

/// Codes the tag data of `records` (one slice a record, BAM-encoded), compressing each column
/// with `zstd` (one zstd frame of the bytes given; the caller picks the level and context).
pub fn encode(
    records: &[&[u8]],
    mut zstd: impl FnMut(&[u8]) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<Vec<u8>> {
    let mut keys: Vec<Key> = Vec::new();
    let mut key_index: HashMap<Key, usize> = HashMap::new();
    // Signature -> its number (1-based, in order of first use).
    let mut sig_index: HashMap<Vec<usize>, usize> = HashMap::new();
    let mut sig_col = Vec::with_capacity(records.len());
    let mut fallback = Vec::new();
    let mut values: Vec<Vec<u8>> = Vec::new();
    let mut sig = Vec::new();
    // The previous parsed record's signature and its number (at first one no record has:
    // no key has that index).
    let (mut last_sig, mut last_number): (Vec<usize>, usize) = (vec![usize::MAX], 0);
    // Reused across records: a record's parsed tags are only kept until they are stored.
    let mut fields = Vec::new();
    for aux in records {
        sig.clear();
        fields.clear();
        let mut parsed = true;
        for f in AuxIter::new(aux) {
            match f {
                Ok(f) => fields.push(f),
                Err(_) => parsed = false,
            }
        }
        if !parsed {
            // Unparseable tag data: signature 0, the bytes as they are.
            varint::put(&mut sig_col, 0);
            varint::put(&mut fallback, aux.len() as u64);
            fallback.extend_from_slice(aux);
            continue;
        };
        for (j, f) in fields.iter().enumerate() {
            let key = [f.tag[0], f.tag[1], f.ty];
            // Reads mostly repeat the previous read's keys in its order: try that key first.
            let k = match last_sig.get(j) {
                Some(&k) if keys.get(k) == Some(&key) => k,
                _ => *key_index.entry(key).or_insert_with(|| {
                    keys.push(key);
                    values.push(Vec::new());
                    keys.len() - 1
                }),
            };
            sig.push(k);
            let col = &mut values[k];
            col.extend_from_slice(f.value);
            if f.ty == b'Z' || f.ty == b'H' {
                col.push(0);
            }
        }
        if sig != last_sig {
            let next = sig_index.len() + 1;
            last_number = *sig_index.entry(sig.clone()).or_insert(next);
            std::mem::swap(&mut sig, &mut last_sig);
        }
        varint::put(&mut sig_col, last_number as u64);
    }
    let mut out = Vec::new();
    varint::put(&mut out, keys.len() as u64);
    for k in &keys {
        out.extend_from_slice(k);
    }
    let mut sigs: Vec<(&Vec<usize>, usize)> = sig_index.iter().map(|(s, &n)| (s, n)).collect();
    sigs.sort_unstable_by_key(|&(_, n)| n);
    varint::put(&mut out, sigs.len() as u64);
    for (s, _) in sigs {
        varint::put(&mut out, s.len() as u64);
        for &k in s {
            varint::put(&mut out, k as u64);
        }
    }
    for col in [&sig_col, &fallback].into_iter().chain(&values) {
        columns::put(&mut out, col, &mut zstd)?;
    }
    Ok(out)
}

/// The length of the value of type `ty` at `col[at..]` (strings with their NUL), if it is
/// there whole.
fn value_len(col: &[u8], at: usize, ty: u8) -> Option<usize> {
    let rest = col.get(at..)?;
    let len = match ty {
        b'Z' | b'H' => rest.iter().position(|&c| c == 0)? + 1,
        b'B' => {
            let size = aux_type_size(*rest.first()?).filter(|_| rest[0] != b'A')?;
            let n = u32::from_le_bytes(rest.get(1..5)?.try_into().ok()?) as usize;
            n.checked_mul(size)?.checked_add(5)?
        }
        t => aux_type_size(t)?,
    };
    (len <= rest.len()).then_some(len)
}

/// Rebuilds the tag stream (the records' tag data back to back) of `n` records, `raw_len`
/// bytes long, from codec 8's bytes; `unzstd(frame, len)` decompresses a column of `len` bytes.
pub fn decode(
    coded: &[u8],
    n: usize,
    raw_len: usize,
    unzstd: impl FnMut(&[u8], usize) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<u8>, DecodeError> {
    decode_in(coded, n, raw_len, unzstd, || vec![0u8; raw_len])
}

/// Like [`decode`], into `out` (exactly the stream's length): a record block's tags go
/// straight into the block's buffer.
///
/// ```
/// use bams3_core::codec::tags;
/// let recs: Vec<&[u8]> = vec![b"NMC\x01", b"NMC\x02"];
/// let coded = tags::encode(&recs, |col| zstd::bulk::compress(col, 3)).unwrap();
/// let mut out = [0u8; 8];
/// tags::decode_into(&coded, 2, &mut out, |z: &[u8], n| zstd::bulk::decompress(z, n)).unwrap();
/// assert_eq!(&out, b"NMC\x01NMC\x02");
/// ```
pub fn decode_into(
    coded: &[u8],
    n: usize,
    out: &mut [u8],
    unzstd: impl FnMut(&[u8], usize) -> std::io::Result<Vec<u8>>,
) -> Result<(), DecodeError> {
    let raw_len = out.len();
    decode_in(coded, n, raw_len, unzstd, || out).map(|_| ())
}

/// [`decode`] into the buffer of `raw_len` bytes that `buffer` gives, asked for once the
/// columns show the length is possible.
fn decode_in<B: AsMut<[u8]>>(
    coded: &[u8],
    n: usize,
    raw_len: usize,
    mut unzstd: impl FnMut(&[u8], usize) -> std::io::Result<Vec<u8>>,
    buffer: impl FnOnce() -> B,
) -> Result<B, DecodeError> {
    let short = DecodeError("tags: coded stream truncated");
    let mut at = 0usize;
    let n_keys = varint::get(coded, &mut at).ok_or(short)?;
    let keys_len = usize::try_from(n_keys)
        .ok()
        .and_then(|k| k.checked_mul(3))
        .ok_or(short)?;
    let keys: Vec<Key> = coded
        .get(at..at.checked_add(keys_len).ok_or(short)?)
        .ok_or(short)?
        .chunks_exact(3)
        .map(|k| [k[0], k[1], k[2]])
        .collect();
    at += keys_len;
    let n_sigs = varint::get(coded, &mut at).ok_or(short)?;
    let mut sigs: Vec<Vec<usize>> = Vec::new();
    for _ in 0..n_sigs {
        let len = varint::get(coded, &mut at).ok_or(short)?;
        // Every key index takes at least a byte: a length past the rest is corruption.
        if len > (coded.len() - at) as u64 {
            return Err(short);
        }
        let mut s = Vec::with_capacity(len as usize);
        for _ in 0..len {
            let k = varint::get(coded, &mut at).ok_or(short)?;
            if k >= keys.len() as u64 {
                return Err(DecodeError("tags: signature names no key"));
            }
            s.push(k as usize);
        }
        sigs.push(s);
    }
    let mut cols = Vec::with_capacity(keys.len() + 2);
    // No column is longer than what it rebuilds (plus a few LEB128 bytes a record for the
    // signatures and the unparsed lengths): a corrupt length must not allocate without bound.
    let most = (raw_len as u64)
        .saturating_add(10 * n as u64)
        .min(MAX_COLUMN);
    for _ in 0..keys.len() + 2 {
        cols.push(columns::get(coded, &mut at, most, &mut unzstd)?);
    }
    if at != coded.len() {
        return Err(DecodeError("tags: trailing bytes"));
    }
    // The values of fixed-size types are copied without looking at them (0: sized by value).
    let fixed: Vec<usize> = keys
        .iter()
        .map(|k| match k[2] {
            b'Z' | b'H' | b'B' => 0,
            t => aux_type_size(t).unwrap_or(0),
        })
        .collect();
    let mut pos = vec![0usize; cols.len()];
    // Written in place into the length the stream table promises, not pushed: a record's tags
    // are ten small copies, where growing a vector cost more than the copies.
    // Every value takes at least a byte of its column and its key three more, so a longer
    // stream is corruption, found before anything that large is allocated.
    let most = cols[1].len() + 4 * cols[2..].iter().map(|c| c.len()).sum::<usize>();
    if raw_len > most {
        return Err(DecodeError("tags: columns and stream length disagree"));
    }
    let mut buf = buffer();
    let out = buf.as_mut();
    if out.len() != raw_len {
        return Err(DecodeError("tags: columns and stream length disagree"));
    }
    let mut o = 0usize;
    let bad = DecodeError("tags: a column is short or holds a bad value");
    let long = DecodeError("tags: longer than the stream");
    for _ in 0..n {
        let s = varint::get(&cols[0], &mut pos[0]).ok_or(bad)?;
        if s == 0 {
            let len = varint::get(&cols[1], &mut pos[1]).ok_or(bad)?;
            let from = pos[1];
            let to = usize::try_from(len)
                .ok()
                .and_then(|l| from.checked_add(l))
                .filter(|&t| t <= cols[1].len())
                .ok_or(bad)?;
            let dest = o
                .checked_add(to - from)
                .and_then(|end| out.get_mut(o..end))
                .ok_or(long)?;
            dest.copy_from_slice(&cols[1][from..to]);
            o += to - from;
            pos[1] = to;
            continue;
        }
        let sig = sigs.get(s as usize - 1).ok_or(bad)?;
        for &k in sig {
            let (key, c) = (keys[k], k + 2);
            let len = match fixed[k] {
                0 => value_len(&cols[c], pos[c], key[2]).ok_or(bad)?,
                n => n,
            };
            let value = cols[c].get(pos[c]..pos[c] + len).ok_or(bad)?;
            let dest = out.get_mut(o..o + 3 + len).ok_or(long)?;
            dest[..3].copy_from_slice(&key);
            // Strings keep their NUL in the column, as in BAM.
            match len {
                1 => dest[3] = value[0],
                2 => dest[3..5].copy_from_slice(&value[..2]),
                4 => dest[3..7].copy_from_slice(&value[..4]),
                _ => dest[3..].copy_from_slice(value),
            }
            o += 3 + len;
            pos[c] += len;
        }
    }
    if o != raw_len || pos.iter().zip(&cols).any(|(&p, c)| p != c.len()) {
        return Err(DecodeError("tags: columns and stream length disagree"));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::codec::columns::test_zstd::{unz, z};

    fn round_trip(recs: &[&[u8]]) -> usize {
        let coded = encode(recs, z).unwrap();
        let raw = recs.concat();
        assert_eq!(decode(&coded, recs.len(), raw.len(), unz).unwrap(), raw);
        coded.len()
    }

    #[test]
    fn every_type_round_trips() {
        let b_arr: &[u8] = b"XBBs\x02\x00\x00\x00\x01\x00\xff\xff";
        let all: Vec<u8> = [
            &b"XAAz"[..],
            b"XcC\x05",
            b"Xcc\xfb",
            b"XsS\x01\x02",
            b"Xss\xfe\xff",
            b"XiI\x01\x02\x03\x04",
            b"Xii\xff\xff\xff\xff",
            b"Xff\x00\x00\x80\x3f",
            b"XZZhello\0",
            b"XHH1AE3\0",
            b_arr,
            b"XEBf\x00\x00\x00\x00",
        ]
        .concat();
        round_trip(&[&all, &all, b"", &all[4..]]);
        round_trip(&[]);
        round_trip(&[b""]);
        round_trip(&[b"XZZ\0", b"XZZ\0XZZ\0"]);
        // A signature seen before comes back after another one (the encoder tries the
        // previous record's first).
        round_trip(&[b"NMC\x01", b"XZZa\0NMC\x01", b"NMC\x02", b"", b"NMC\x03"]);
    }

    #[test]
    fn malformed_tags_are_kept_as_they_are() {
        let recs: [&[u8]; 5] = [
            b"NMi\x01",
            b"X",
            b"XBBc\xff\xff\xff\xff",
            b"NMC\x02",
            b"XZZab",
        ];
        round_trip(&recs);
    }

    #[test]
    fn columns_beat_the_interleaved_stream() {
        // minimap2-like tags on 2,000 reads.
        let mut recs = Vec::new();
        for i in 0u32..2000 {
            let mut a = Vec::new();
            a.extend_from_slice(b"NMC");
            a.push((i % 3) as u8);
            a.extend_from_slice(b"msS");
            a.extend_from_slice(&(280 + (i * 7919 % 20) as u16).to_le_bytes());
            a.extend_from_slice(b"ASS");
            a.extend_from_slice(&(280 + (i * 7919 % 20) as u16 - (i % 3) as u16).to_le_bytes());
            a.extend_from_slice(b"nnC\x00tpAPcmC");
            a.push((20 + i * 31 % 11) as u8);
            recs.push(a);
        }
        let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
        let by_column = round_trip(&refs);
        let interleaved = zstd::bulk::compress(&refs.concat(), 3).unwrap().len();
        assert!(by_column < interleaved, "{by_column} vs {interleaved}");
    }

    #[test]
    fn mutated_input_never_panics() {
        let recs: [&[u8]; 4] = [
            b"NMC\x01tpAPXZZab\0",
            b"NMC\x00tpAP",
            b"XBBs\x02\x00\x00\x00\x01\x00\xff\xff",
            b"NMi\x01",
        ];
        let coded = encode(&recs, z).unwrap();
        let raw_len = recs.concat().len();
        for at in 0..coded.len() {
            for x in [1u8, 0x80, 0xff] {
                let mut c = coded.clone();
                c[at] ^= x;
                let _ = decode(&c, recs.len(), raw_len, unz);
            }
        }
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let recs: [&[u8]; 3] = [b"NMC\x01tpAP", b"NMC\x00tpAP", b"XZZabc\0"];
        let coded = encode(&recs, z).unwrap();
        let raw_len = recs.concat().len();
        for cut in 0..coded.len() {
            assert!(decode(&coded[..cut], 3, raw_len, unz).is_err(), "cut {cut}");
        }
        assert!(decode(&coded, 2, raw_len, unz).is_err());
        assert!(decode(&coded, 4, raw_len, unz).is_err());
        assert!(decode(&coded, 3, raw_len - 1, unz).is_err());
        // A signature naming a key that is not there (the first signature's first key, 0 -> 9).
        let at = 1 + 3 * 3 + 1 + 1;
        assert_eq!(coded[at], 0);
        let mut bad = coded.clone();
        bad[at] = 9;
        assert!(decode(&bad, 3, raw_len, unz).is_err());
    }
}
