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

use super::rans::DecodeError;
use super::varint;
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
    let mut trailing = vec![false; records.len()];
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
            trailing[i + k] = true;
            let span = i64::from(records[i + k].pos()) - i64::from(r.pos());
            varint::put_signed(&mut out, i64::from(r.tlen()) - span);
        }
    }
    out
}

/// The name stream of `records` under `links` (codec 7, before zstd): the NUL-terminated names
/// of the records that are not trailing reads, in order.
pub fn encode_names(records: &[Record], links: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut trailing = vec![false; records.len()];
    for (i, r) in records.iter().enumerate() {
        if links[i] > 0 {
            trailing[i + links[i] as usize] = true;
        }
        if !trailing[i] {
            out.extend_from_slice(r.name());
            out.push(0);
        }
    }
    out
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

/// Rebuilds the default name stream from codec 7's bytes and the leads of the mate stream.
pub fn decode_names(coded: &[u8], leads: &[u32]) -> Result<Vec<u8>, DecodeError> {
    let mut raw = Vec::with_capacity(coded.len() * 2);
    // Where each record's name (without its NUL) sits in `raw`.
    let mut names: Vec<(usize, usize)> = Vec::with_capacity(leads.len());
    let mut at = 0usize;
    for &lead in leads {
        let start = raw.len();
        if lead != NO_LEAD {
            let (s, e) = *names
                .get(lead as usize)
                .ok_or(DecodeError("names: lead after its mate"))?;
            raw.extend_from_within(s..e);
        } else {
            let len = coded
                .get(at..)
                .and_then(|rest| rest.iter().position(|&b| b == 0))
                .ok_or(DecodeError("names: coded stream truncated"))?;
            raw.extend_from_slice(&coded[at..at + len]);
            at += len + 1;
        }
        names.push((start, raw.len()));
        raw.push(0);
    }
    if at != coded.len() {
        return Err(DecodeError("names: trailing bytes"));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            decode_names(&encode_names(records, &links), &m.leads).unwrap(),
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
        let links = round_trip(&many);
        assert_eq!(links.iter().filter(|&&k| k > 0).count(), 20);
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
        assert!(decode_names(b"a", &m.leads).is_err());
        assert!(decode_names(b"a\0b\0", &m.leads).is_err());
        assert!(decode_names(b"", &[1, NO_LEAD]).is_err());
    }
}
