//! JSON chunks (format `0.1.0` and `0.1.0-poc`): a top-level JSON array of read objects in one
//! of three key sets — current `bams3-go` (`reference_id`, `position`, `mapping_quality`,
//! `cigar`, `cigar_ops`, `sequence`, `quality`, `tags` plus the legacy duplicates), early
//! `bams3-go` (`ref`, `pos`, `mapq`, `cigar`, `seq`, `qual`, `tags`) and the Python POC (the
//! legacy keys, no tags, `cigar` may be `null`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{CIGAR_OPS, Ctx, Fields, build_record, check_cigar_op};
use crate::{Record, Result};

/// BAM 4-bit base codes by character (`=ACMGRSVTWYHKDBN`).
const BASES: &[u8; 16] = b"=ACMGRSVTWYHKDBN";
/// Quality read back for characters JSON could not carry (upstream replaced bytes >= 0x80, i.e.
/// Phred >= 95, with U+FFFD): the highest Phred score SAM text can express.
const LOST_QUALITY: u8 = 93;

/// One read object; every key is optional because each producer omitted different ones.
#[derive(Deserialize)]
struct JsonRead {
    name: Option<String>,
    flag: Option<i64>,
    reference_id: Option<i64>,
    position: Option<i64>,
    mapping_quality: Option<i64>,
    cigar: Option<String>,
    cigar_ops: Option<Vec<JsonCigarOp>>,
    sequence: Option<String>,
    quality: Option<String>,
    tags: Option<Tags>,
    #[serde(rename = "ref")]
    legacy_ref: Option<i64>,
    pos: Option<i64>,
    mapq: Option<i64>,
    seq: Option<String>,
    qual: Option<String>,
}

/// biogo's `CigarOp` serialized without JSON tags, hence the capitalised keys.
#[derive(Deserialize)]
struct JsonCigarOp {
    #[serde(rename = "Type")]
    ty: i64,
    #[serde(rename = "Length")]
    len: i64,
}

/// Tags in the order the file has them (`serde_json::Map` would sort them).
struct Tags(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tags;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of tag values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<Tags, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = m.next_entry::<String, Value>()? {
                    v.push(entry);
                }
                Ok(Tags(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// The Go reader's merge rule (`reader.go:186-218`): the new key wins unless it is zero/absent
/// and the legacy key is not.
fn merge_int(new: Option<i64>, legacy: Option<i64>) -> i64 {
    match new {
        Some(n) if n != 0 => n,
        _ => legacy.unwrap_or(0),
    }
}

fn merge_str(new: Option<String>, legacy: Option<String>) -> String {
    match new {
        Some(s) if !s.is_empty() => s,
        _ => legacy.unwrap_or_default(),
    }
}

/// Decodes a whole (decompressed) JSON chunk.
pub(crate) fn decode(data: &[u8], ctx: &Ctx<'_>) -> Result<Vec<Record>> {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return Err(super::Error::corrupt(
            ctx.what,
            "neither a zstd frame, a v0.2 binary chunk nor a JSON array",
        ));
    }
    let reads: Vec<JsonRead> = serde_json::from_slice(data)
        .map_err(|e| super::Error::corrupt(ctx.what, format!("bad JSON chunk: {e}")))?;
    reads
        .into_iter()
        .enumerate()
        .map(|(i, r)| decode_read(r, ctx, i))
        .collect()
}

fn decode_read(r: JsonRead, ctx: &Ctx<'_>, index: usize) -> Result<Record> {
    let flag = r.flag.unwrap_or(0);
    let flag = u16::try_from(flag).map_err(|_| ctx.corrupt(index, format!("flag {flag}")))?;
    let mapq = merge_int(r.mapping_quality, r.mapq);
    let mapq = u8::try_from(mapq).map_err(|_| ctx.corrupt(index, format!("mapq {mapq}")))?;
    let ref_id = ctx.ref_id(index, merge_int(r.reference_id, r.legacy_ref))?;
    let pos = ctx.zero_based(index, merge_int(r.position, r.pos))?;

    let cigar = match r.cigar_ops.filter(|ops| !ops.is_empty()) {
        Some(ops) => ops
            .iter()
            .map(|op| {
                if !(0..1 << 28).contains(&op.len) || !(0..16).contains(&op.ty) {
                    return Err(ctx.corrupt(index, "CIGAR operation out of range"));
                }
                check_cigar_op(((op.len as u32) << 4) | op.ty as u32, ctx, index)
            })
            .collect::<Result<Vec<u32>>>()?,
        None => parse_cigar(r.cigar.as_deref().unwrap_or("*"))
            .ok_or_else(|| ctx.corrupt(index, "unparsable CIGAR string"))?,
    };

    let seq = merge_str(r.sequence, r.seq);
    let bases: Vec<u8> = if seq == "*" {
        Vec::new()
    } else {
        seq.chars().map(base_code).collect()
    };
    let qual = merge_str(r.quality, r.qual);
    let qual = if qual.is_empty() || qual == "*" {
        None
    } else {
        Some(
            qual.chars()
                .map(|c| {
                    // Phred+33 text; spaces (missing BAM qualities wrapped by +33) come back
                    // as 0xFF through the same wrap.
                    if c.is_ascii() {
                        (c as u8).wrapping_sub(33)
                    } else {
                        LOST_QUALITY
                    }
                })
                .collect(),
        )
    };

    let mut tags = Vec::new();
    for (tag, value) in r.tags.map(|t| t.0).unwrap_or_default() {
        let key: [u8; 2] = tag
            .as_bytes()
            .try_into()
            .map_err(|_| ctx.corrupt(index, format!("tag name {tag:?} is not two bytes")))?;
        let text = match value {
            Value::String(s) => s,
            // Upstream values are strings; Python writers could store numbers or booleans.
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(ctx.corrupt(index, format!("tag {tag} has a non-scalar value {other}")));
            }
        };
        tags.push((key, Cow::Owned(text.into_bytes())));
    }

    let name = r.name.unwrap_or_default();
    let fields = Fields {
        name: name.as_bytes(),
        flag,
        ref_id,
        pos,
        mapq,
        cigar,
        bases,
        qual,
        tags,
    };
    build_record(fields, ctx, index)
}

/// BAM code of a SAM base character, case-insensitively; characters outside
/// `=ACMGRSVTWYHKDBN` (such as `.`) become `N`.
fn base_code(c: char) -> u8 {
    let c = c.to_ascii_uppercase();
    BASES
        .iter()
        .position(|&b| char::from(b) == c)
        .map_or(15, |i| i as u8)
}

/// Parses a SAM CIGAR string into BAM words; `*` and the empty string mean no CIGAR.
fn parse_cigar(s: &str) -> Option<Vec<u32>> {
    if s.is_empty() || s == "*" {
        return Some(Vec::new());
    }
    let mut ops = Vec::new();
    let mut len: u32 = 0;
    let mut digits = false;
    for b in s.bytes() {
        if b.is_ascii_digit() {
            len = len.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
            digits = true;
        } else {
            let op = CIGAR_OPS.iter().position(|&o| o == b)? as u32;
            if !digits || len >= 1 << 28 {
                return None;
            }
            ops.push(len << 4 | op);
            len = 0;
            digits = false;
        }
    }
    (!digits).then_some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cigar_strings() {
        assert_eq!(parse_cigar("*"), Some(vec![]));
        assert_eq!(parse_cigar("3M1I"), Some(vec![3 << 4, 1 << 4 | 1]));
        assert_eq!(parse_cigar("2=1X"), Some(vec![2 << 4 | 7, 1 << 4 | 8]));
        for bad in ["M", "3", "3Q", "99999999999M", "3M4"] {
            assert_eq!(parse_cigar(bad), None, "{bad}");
        }
    }

    #[test]
    fn base_codes() {
        assert_eq!(base_code('='), 0);
        assert_eq!(base_code('a'), 1);
        assert_eq!(base_code('N'), 15);
        assert_eq!(base_code('.'), 15);
        assert_eq!(base_code('R'), 5);
    }
}
