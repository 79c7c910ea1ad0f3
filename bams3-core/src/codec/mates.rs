//! Mate pairs inside a chunk (archive profile): the mate stream and the name stream code a
//! read whose mate lies later in the same chunk once for the pair.
//!
//! In a coordinate-sorted chunk both reads of most pairs sit a few dozen records apart. Their
//! mate fields mirror each other (each points at the other's reference and position, and the
//! template lengths are opposite) and their names are equal, so the second read of a pair
//! needs none of them: the *leading* read stores the distance to its mate, the *trailing*
//! read stores nothing, and its mate fields and name are copied back from the leading read.
//! This is what CRAM calls attached mates; `docs/FORMAT.md` ("Codecs 6 and 7") specifies the
//! bytes.
//!
//! The transforms here work on the raw streams of the default layout (three zig-zag LEB128
//! values per record in the mate stream, NUL-terminated names), so a decoder rebuilds exactly
//! those bytes and nothing downstream of it changes.
//!
//! ```
//! use bams3_core::codec::mates;
//! use bams3_core::{sam, Header};
//! let h = Header::from_sam_text("@SQ\tSN:c\tLN:100\n").unwrap();
//! let a = sam::parse_record(b"r\t99\tc\t10\t60\t4M\t=\t30\t24\tACGT\tIIII", &h).unwrap();
//! let b = sam::parse_record(b"r\t147\tc\t30\t60\t4M\t=\t10\t-24\tACGT\tIIII", &h).unwrap();
//! let recs = vec![a, b];
//! let links = mates::link(&recs);
//! assert_eq!(links, vec![1, 0]);
//! // The trailing read adds nothing to the mate stream: one LEB128 distance and one residual.
//! assert_eq!(mates::encode_mates(&recs, &links).len(), 2);
//! ```

use std::collections::HashMap;
use std::io::Write;

use super::rans::DecodeError;
use super::{columns, varint};
use crate::record::Record;

/// Leads of a chunk's records: `links[j] = k > 0` when record `j + k` is the mate of record `j`
/// whose mate fields and name are derived from it; 0 otherwise.
///
/// A pair is linked only when the derivation is exact: equal names, each read's mate reference
/// and position are the other's reference and position, and the template lengths are
/// opposite. Secondary and supplementary copies, mates in another chunk, and pairs that do not
/// mirror each other keep their fields explicitly.
pub fn link(records: &[Record]) -> Vec<u32> {
    let mut links = vec![0u32; records.len()];
    // Reads waiting for their mate, by name; a name is rarely held by more than two records.
    let mut waiting: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(list) = waiting.get_mut(r.name())
            && let Some(at) = list.iter().position(|&j| mirrored(&records[j], r))
        {
            let j = list.swap_remove(at);
            links[j] = (i - j) as u32;
            continue;
        }
        waiting.entry(r.name()).or_default().push(i);
    }
    links
}

/// Which records are trailing reads under `links` (their fields are derived, not stored).
fn trailing(links: &[u32]) -> Vec<bool> {
    let mut t = vec![false; links.len()];
    for (j, &k) in links.iter().enumerate() {
        if k > 0 {
            t[j + k as usize] = true;
        }
    }
    t
}

/// Whether `t`'s mate fields are exactly those derived from `l`'s (and `l`'s from `t`'s).
fn mirrored(l: &Record, t: &Record) -> bool {
    l.next_ref_id() == t.ref_id()
        && l.next_pos() == t.pos()
        && t.next_ref_id() == l.ref_id()
        && t.next_pos() == l.pos()
        && i64::from(t.tlen()) == -i64::from(l.tlen())
}

/// The mate stream of `records` under `links` (codec 6, before zstd): per record that is not a
/// trailing read, LEB128 `k` (0: explicit, then the three values of the default layout; else
/// the mate is `k` records on, then the template length minus the distance to the mate's
/// position, zig-zag LEB128). Trailing reads add nothing.
pub fn encode_mates(records: &[Record], links: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 2);
    let trailing = trailing(links);
    for (i, r) in records.iter().enumerate() {
        if trailing[i] {
            continue;
        }
        let k = links[i] as usize;
        varint::put(&mut out, k as u64);
        if k == 0 {
            varint::put_signed(&mut out, i64::from(r.next_ref_id()) - i64::from(r.ref_id()));
            varint::put_signed(&mut out, i64::from(r.next_pos()) - i64::from(r.pos()));
            varint::put_signed(&mut out, i64::from(r.tlen()));
        } else {
            let span = i64::from(records[i + k].pos()) - i64::from(r.pos());
            varint::put_signed(&mut out, i64::from(r.tlen()) - span);
        }
    }
    out
}

/// Splits a name around its last run of ASCII digits when that run is a number written
/// canonically (no leading zero, at most 9 digits): `(prefix, number, suffix)`.
fn split_number(name: &[u8]) -> (&[u8], Option<u32>, &[u8]) {
    let Some(end) = name.iter().rposition(u8::is_ascii_digit).map(|e| e + 1) else {
        return (name, None, &[]);
    };
    let start = name[..end]
        .iter()
        .rposition(|c| !c.is_ascii_digit())
        .map_or(0, |s| s + 1);
    let digits = &name[start..end];
    if digits.len() > 9 || (digits.len() > 1 && digits[0] == b'0') {
        return (name, None, &[]);
    }
    let n = digits
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    (&name[..start], Some(n), &name[end..])
}

/// The name stream of `records` under `links` (codec 7): the names of the records that are
/// not trailing reads, each split around its last number (`split_number`), as two columns
/// compressed with `zstd`: the text (LEB128 prefix length, prefix, `u8` 1 when a number
/// follows else 0, LEB128 suffix length, suffix) and the numbers (`u32`, as four byte planes:
/// every number's low byte, then every second byte, ...). Random read ids
/// cost their entropy as binary numbers, not as decimal digits.
pub fn encode_names(
    records: &[Record],
    links: &[u32],
    mut zstd: impl FnMut(&[u8]) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<Vec<u8>> {
    let (mut text, mut numbers) = (Vec::new(), Vec::<u32>::new());
    for (r, trailing) in records.iter().zip(trailing(links)) {
        if trailing {
            continue;
        }
        let (prefix, number, suffix) = split_number(r.name());
        varint::put(&mut text, prefix.len() as u64);
        text.extend_from_slice(prefix);
        text.push(u8::from(number.is_some()));
        varint::put(&mut text, suffix.len() as u64);
        text.extend_from_slice(suffix);
        numbers.extend(number);
    }
    // Byte planes (all low bytes, then the next...): zstd's literal coder then sees each
    // byte position's own distribution (read ids below 2^24 leave the top plane all zero).
    let numbers: Vec<u8> = (0..4)
        .flat_map(|b| numbers.iter().map(move |n| (n >> (8 * b)) as u8))
        .collect();
    let mut out = Vec::new();
    columns::put(&mut out, &text, &mut zstd)?;
    columns::put(&mut out, &numbers, &mut zstd)?;
    Ok(out)
}

/// A decoded mate stream: the default layout's bytes, and for each trailing read the record
/// it was derived from (`u32::MAX` for the others), which the name stream needs.
#[derive(Debug)]
pub struct Mates {
    /// The mate stream in the default layout.
    pub raw: Vec<u8>,
    /// `leads[i]`: the leading read of trailing read `i`, or `u32::MAX`.
    pub leads: Vec<u32>,
}

const NO_LEAD: u32 = u32::MAX;

/// Rebuilds the default mate stream of `n` records from codec 6's bytes and the decoded
/// reference (`i32` LE per record) and position (zig-zag deltas) streams.
pub fn decode_mates(
    coded: &[u8],
    ref_ids: &[u8],
    pos: &[u8],
    n: usize,
) -> Result<Mates, DecodeError> {
    if ref_ids.len()
        != n.checked_mul(4)
            .ok_or(DecodeError("mates: too many records"))?
    {
        return Err(DecodeError("mates: reference stream of the wrong length"));
    }
    let refs: Vec<i64> = ref_ids
        .chunks_exact(4)
        .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    let mut starts = Vec::with_capacity(n);
    let (mut at, mut p) = (0usize, 0i64);
    for _ in 0..n {
        let d = varint::get_signed(pos, &mut at).ok_or(DecodeError("mates: positions short"))?;
        p = p
            .checked_add(d)
            .ok_or(DecodeError("mates: position overflow"))?;
        starts.push(p);
    }
    let mut raw = Vec::with_capacity(n * 4);
    let mut leads = vec![NO_LEAD; n];
    // The template length of each record, for its trailing read.
    let mut tlens = vec![0i64; n];
    let mut at = 0usize;
    let short = DecodeError("mates: coded stream truncated");
    for i in 0..n {
        let (next_ref, next_pos, tlen) = if leads[i] != NO_LEAD {
            let j = leads[i] as usize;
            (refs[j], starts[j], -tlens[j])
        } else {
            let k = varint::get(coded, &mut at).ok_or(short)?;
            if k == 0 {
                let dr = varint::get_signed(coded, &mut at).ok_or(short)?;
                let dp = varint::get_signed(coded, &mut at).ok_or(short)?;
                let t = varint::get_signed(coded, &mut at).ok_or(short)?;
                let nr = refs[i]
                    .checked_add(dr)
                    .ok_or(DecodeError("mates: overflow"))?;
                let np = starts[i]
                    .checked_add(dp)
                    .ok_or(DecodeError("mates: overflow"))?;
                (nr, np, t)
            } else {
                let m = usize::try_from(k)
                    .ok()
                    .and_then(|k| i.checked_add(k))
                    .filter(|&m| m < n)
                    .ok_or(DecodeError("mates: mate past the chunk's end"))?;
                if leads[m] != NO_LEAD {
                    return Err(DecodeError("mates: two reads name the same mate"));
                }
                leads[m] = i as u32;
                let residual = varint::get_signed(coded, &mut at).ok_or(short)?;
                let t = residual
                    .checked_add(starts[m] - starts[i])
                    .ok_or(DecodeError("mates: overflow"))?;
                (refs[m], starts[m], t)
            }
        };
        if i32::try_from(tlen).is_err() {
            return Err(DecodeError("mates: template length out of range"));
        }
        tlens[i] = tlen;
        varint::put_signed(&mut raw, next_ref - refs[i]);
        varint::put_signed(&mut raw, next_pos - starts[i]);
        varint::put_signed(&mut raw, tlen);
    }
    if at != coded.len() {
        return Err(DecodeError("mates: trailing bytes"));
    }
    Ok(Mates { raw, leads })
}

/// Rebuilds the default name stream (`raw_len` bytes) from codec 7's bytes and the leads of
/// the mate stream; `unzstd(frame, len)` decompresses a column.
pub fn decode_names(
    coded: &[u8],
    leads: &[u32],
    raw_len: usize,
    mut unzstd: impl FnMut(&[u8], usize) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<u8>, DecodeError> {
    let mut at = 0usize;
    // Neither column is longer than the names it rebuilds plus a few bytes a record.
    let most = (raw_len as u64).saturating_add(16 * leads.len() as u64);
    let text = columns::get(coded, &mut at, most, &mut unzstd)?;
    let numbers = columns::get(coded, &mut at, most, &mut unzstd)?;
    if at != coded.len() || !numbers.len().is_multiple_of(4) {
        return Err(DecodeError("names: trailing bytes"));
    }
    let count = numbers.len() / 4;
    let mut raw = Vec::with_capacity(raw_len.min(1 << 24));
    // Where each record's name (without its NUL) sits in `raw`.
    let mut names: Vec<(usize, usize)> = Vec::with_capacity(leads.len());
    let (mut t, mut n) = (0usize, 0usize);
    let bad = DecodeError("names: columns short or inconsistent");
    let piece = |t: &mut usize| -> Result<std::ops::Range<usize>, DecodeError> {
        let len = varint::get(&text, t).ok_or(bad)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| t.checked_add(l))
            .filter(|&e| e <= text.len())
            .ok_or(bad)?;
        let r = *t..end;
        *t = end;
        Ok(r)
    };
    for &lead in leads {
        let start = raw.len();
        if lead != NO_LEAD {
            let (s, e) = *names
                .get(lead as usize)
                .ok_or(DecodeError("names: lead after its mate"))?;
            raw.extend_from_within(s..e);
        } else {
            let prefix = piece(&mut t)?;
            raw.extend_from_slice(&text[prefix]);
            let has = *text.get(t).ok_or(bad)?;
            t += 1;
            match has {
                0 => {}
                1 => {
                    if n >= count {
                        return Err(bad);
                    }
                    let v = (0..4).fold(0u32, |v, b| {
                        v | u32::from(numbers[b * count + n]) << (8 * b)
                    });
                    n += 1;
                    if v > 999_999_999 {
                        return Err(bad);
                    }
                    // Formatted in place: no String per name on the read path.
                    write!(raw, "{v}").expect("writing to a Vec cannot fail");
                }
                _ => return Err(bad),
            }
            let suffix = piece(&mut t)?;
            raw.extend_from_slice(&text[suffix]);
        }
        names.push((start, raw.len()));
        raw.push(0);
        if raw.len() > raw_len {
            return Err(DecodeError("names: longer than the stream"));
        }
    }
    if t != text.len() || n != count || raw.len() != raw_len {
        return Err(DecodeError("names: columns and stream length disagree"));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::codec::columns::test_zstd::{unz, z};

    #[test]
    fn names_split_around_their_last_number() {
        assert_eq!(
            split_number(b"X-1806988"),
            (&b"X-"[..], Some(1806988), &b""[..])
        );
        assert_eq!(
            split_number(b"A:1:22/1"),
            (&b"A:1:22/"[..], Some(1), &b""[..])
        );
        // Leading zeros, ten digits, no digits: kept as text.
        assert_eq!(split_number(b"r007"), (&b"r007"[..], None, &b""[..]));
        assert_eq!(split_number(b"r0"), (&b"r"[..], Some(0), &b""[..]));
        assert_eq!(
            split_number(b"1234567890"),
            (&b"1234567890"[..], None, &b""[..])
        );
        assert_eq!(split_number(b"abc"), (&b"abc"[..], None, &b""[..]));
        assert_eq!(split_number(b""), (&b""[..], None, &b""[..]));
    }

    fn rec(line: &str) -> Record {
        let h =
            crate::Header::from_sam_text("@SQ\tSN:c1\tLN:100000\n@SQ\tSN:c2\tLN:100000\n").unwrap();
        crate::sam::parse_record(line.as_bytes(), &h).unwrap()
    }

    /// The default layouts, as the encoder writes them.
    fn default_streams(records: &[Record]) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
        let (mut refs, mut pos, mut mate, mut names) = (vec![], vec![], vec![], vec![]);
        let mut prev = 0i64;
        for r in records {
            refs.extend_from_slice(&r.ref_id().to_le_bytes());
            varint::put_signed(&mut pos, i64::from(r.pos()) - prev);
            prev = i64::from(r.pos());
            varint::put_signed(
                &mut mate,
                i64::from(r.next_ref_id()) - i64::from(r.ref_id()),
            );
            varint::put_signed(&mut mate, i64::from(r.next_pos()) - i64::from(r.pos()));
            varint::put_signed(&mut mate, i64::from(r.tlen()));
            names.extend_from_slice(r.name());
            names.push(0);
        }
        (refs, pos, mate, names)
    }

    fn round_trip(records: &[Record]) -> Vec<u32> {
        let links = link(records);
        let (refs, pos, mate, names) = default_streams(records);
        let m = decode_mates(&encode_mates(records, &links), &refs, &pos, records.len()).unwrap();
        assert_eq!(m.raw, mate);
        let coded = encode_names(records, &links, z).unwrap();
        assert_eq!(
            decode_names(&coded, &m.leads, names.len(), unz).unwrap(),
            names
        );
        links
    }

    #[test]
    fn pairs_link_and_round_trip() {
        let recs = vec![
            rec("a\t99\tc1\t100\t60\t10M\t=\t150\t60\tACGTACGTAC\t*"),
            rec("b\t0\tc1\t120\t60\t10M\t*\t0\t0\tACGTACGTAC\t*"),
            // A supplementary copy of a: same name, mirrors nothing.
            rec("a\t2115\tc1\t130\t60\t5M\t=\t150\t0\tACGTA\t*"),
            rec("a\t147\tc1\t150\t60\t10M\t=\t100\t-60\tACGTACGTAC\t*"),
            // Mate on the other reference, in the same chunk.
            rec("x\t97\tc1\t160\t60\t10M\tc2\t5\t0\tACGTACGTAC\t*"),
            rec("x\t145\tc2\t5\t60\t10M\tc1\t160\t0\tACGTACGTAC\t*"),
            // Mate fields that do not mirror (tlen not opposite): stays explicit.
            rec("y\t99\tc2\t10\t60\t10M\t=\t20\t20\tACGTACGTAC\t*"),
            rec("y\t147\tc2\t20\t60\t10M\t=\t10\t-19\tACGTACGTAC\t*"),
            // Mate outside the chunk.
            rec("z\t99\tc2\t30\t60\t10M\t=\t9000\t9000\tACGTACGTAC\t*"),
            // Both unmapped, unplaced.
            rec("u\t77\t*\t0\t0\t*\t*\t0\t0\tACGT\t*"),
            rec("u\t141\t*\t0\t0\t*\t*\t0\t0\tACGT\t*"),
        ];
        let links = round_trip(&recs);
        assert_eq!(links, vec![3, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn edge_cases_round_trip() {
        assert_eq!(round_trip(&[]), Vec::<u32>::new());
        let one = [rec("only\t0\tc1\t1\t0\t*\t*\t0\t0\t*\t*")];
        assert_eq!(round_trip(&one), vec![0]);
        // Extreme template lengths: -i32::MIN does not fit, so no link.
        let recs = vec![
            rec(&format!("e\t99\tc1\t1\t60\t1M\t=\t2\t{}\tA\t*", i32::MIN)),
            rec(&format!("e\t147\tc1\t2\t60\t1M\t=\t1\t{}\tA\t*", i32::MIN)),
            rec(&format!("f\t99\tc1\t3\t60\t1M\t=\t4\t{}\tA\t*", i32::MAX)),
            rec(&format!("f\t147\tc1\t4\t60\t1M\t=\t3\t{}\tA\t*", -i32::MAX)),
        ];
        assert_eq!(round_trip(&recs), vec![0, 0, 1, 0]);
        // Many reads of one name (a read mapped many times): each pair still links once.
        let mut many = Vec::new();
        for p in 1..=20 {
            let q = p + 1000;
            many.push(rec(&format!(
                "m\t99\tc1\t{p}\t60\t1M\t=\t{q}\t{}\tA\t*",
                q - p + 1
            )));
        }
        for p in 1..=20 {
            let q = p + 1000;
            many.push(rec(&format!(
                "m\t147\tc1\t{q}\t60\t1M\t=\t{p}\t{}\tA\t*",
                p - q - 1
            )));
        }
        // Names with numbers, canonical or not, and a pair of them.
        for name in [
            "X-17",
            "X-017",
            "r1/2",
            "12345678901",
            "0",
            "999999999",
            "a1b2",
        ] {
            many.push(rec(&format!("{name}\t0\tc1\t5000\t60\t1M\t*\t0\t0\tA\t*")));
        }
        many.push(rec("X-4294967295\t99\tc1\t6000\t60\t1M\t=\t6001\t2\tA\t*"));
        many.push(rec(
            "X-4294967295\t147\tc1\t6001\t60\t1M\t=\t6000\t-2\tA\t*",
        ));
        let links = round_trip(&many);
        assert_eq!(links.iter().filter(|&&k| k > 0).count(), 21);
    }

    #[test]
    fn mutated_input_never_panics() {
        let mut recs = Vec::new();
        for j in 0..30 {
            let (p, m) = (100 + j * 9, 130 + j * 9);
            recs.push((
                p,
                format!("X-{j}7\t99\tc1\t{p}\t60\t10M\t=\t{m}\t40\tACGTACGTAC\t*"),
            ));
            recs.push((
                m,
                format!("X-{j}7\t147\tc1\t{m}\t60\t10M\t=\t{p}\t-40\tACGTACGTAC\t*"),
            ));
        }
        recs.sort_by_key(|(p, _)| *p);
        let recs: Vec<Record> = recs.iter().map(|(_, l)| rec(l)).collect();
        let links = link(&recs);
        let (refs, pos, _, names) = default_streams(&recs);
        let mates = encode_mates(&recs, &links);
        let coded_names = encode_names(&recs, &links, z).unwrap();
        let leads = decode_mates(&mates, &refs, &pos, recs.len()).unwrap().leads;
        for at in 0..mates.len().max(coded_names.len()) {
            for x in [1u8, 0x80, 0xff] {
                let mut m = mates.clone();
                if let Some(b) = m.get_mut(at) {
                    *b ^= x;
                    let _ = decode_mates(&m, &refs, &pos, recs.len());
                }
                let mut n = coded_names.clone();
                if let Some(b) = n.get_mut(at) {
                    *b ^= x;
                    let _ = decode_names(&n, &leads, names.len(), unz);
                }
            }
        }
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let recs = vec![
            rec("a\t99\tc1\t100\t60\t10M\t=\t150\t60\tACGTACGTAC\t*"),
            rec("a\t147\tc1\t150\t60\t10M\t=\t100\t-60\tACGTACGTAC\t*"),
        ];
        let links = link(&recs);
        let (refs, pos, _, _) = default_streams(&recs);
        let coded = encode_mates(&recs, &links);
        for cut in 0..coded.len() {
            assert!(decode_mates(&coded[..cut], &refs, &pos, 2).is_err());
        }
        // A mate past the end, and two leads naming one mate.
        assert!(decode_mates(&[5, 0], &refs, &pos, 2).is_err());
        assert!(decode_mates(&[2, 0, 1, 0], &[0; 12], &[0; 3], 3).is_err());
        assert!(decode_mates(&[2, 0, 0, 0, 0, 0], &[0; 12], &[0; 3], 3).is_ok());
        assert!(decode_mates(&coded, &refs[..4], &pos, 2).is_err());
        let m = decode_mates(&coded, &refs, &pos, 2).unwrap();
        let names = encode_names(&recs, &links, z).unwrap();
        assert!(decode_names(&names, &m.leads, 4, unz).is_ok());
        for cut in 0..names.len() {
            assert!(decode_names(&names[..cut], &m.leads, 4, unz).is_err());
        }
        assert!(decode_names(&names, &m.leads, 3, unz).is_err());
        assert!(decode_names(&names, &[NO_LEAD, NO_LEAD], 4, unz).is_err());
        assert!(decode_names(&names, &[1, NO_LEAD], 4, unz).is_err());
    }
}
