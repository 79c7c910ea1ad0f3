//! The v0.2 binary chunk of `bams3-go` (`binary_writer.go`): a 16-byte header (`33 4D 41 42`,
//! version `0x0200`, flags, record count, reserved) then records of
//! `record_size u32 | name_len u16 | seq_len u16 | n_cigar_ops u16 | num_tags u16 | name |
//! ref_id i32 | pos i32 | mapq u8 | flag u16 | cigar u32[] | 4-bit bases | quality | tags`,
//! every tag written as `XX` `Z` text NUL. All integers little-endian.

use std::borrow::Cow;

use super::{Ctx, Fields, build_record, check_cigar_op};
use crate::{Record, Result};

const HEADER_LEN: usize = 16;
const RECORD_HEADER_LEN: usize = 12;
const VERSION: u16 = 0x0200;
/// BAM 4-bit code for `N`.
const N: u8 = 15;

/// Bounds-checked little-endian reader over a byte slice.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Decodes a whole (decompressed) v0.2 chunk.
pub(crate) fn decode(data: &[u8], ctx: &Ctx<'_>) -> Result<Vec<Record>> {
    if data.len() < HEADER_LEN {
        return Err(ctx.corrupt(0, "binary chunk shorter than its 16-byte header"));
    }
    let version = u16::from_le_bytes([data[4], data[5]]);
    if version != VERSION {
        return Err(super::Error::corrupt(
            ctx.what,
            format!("binary chunk version {version:#06x}, only 0x0200 is known"),
        ));
    }
    // flags (bytes 6-7) and reserved (12-15) carry nothing a reader needs; upstream ignored them.
    let num_records = u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize;
    let mut rest = &data[HEADER_LEN..];
    // Never trust the count for allocation: each record takes at least 12 bytes.
    let mut out = Vec::with_capacity(num_records.min(rest.len() / RECORD_HEADER_LEN));
    for index in 0..num_records {
        if rest.len() < 4 {
            return Err(ctx.corrupt(index, "chunk truncated before the record"));
        }
        let size = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if size < RECORD_HEADER_LEN {
            return Err(ctx.corrupt(index, format!("record_size {size} below 12")));
        }
        if size > rest.len() {
            return Err(ctx.corrupt(
                index,
                format!("record_size {size} runs past the end of the chunk"),
            ));
        }
        let (record, tail) = rest.split_at(size);
        rest = tail;
        out.push(decode_record(record, ctx, index)?);
    }
    if !rest.is_empty() {
        return Err(super::Error::corrupt(
            ctx.what,
            format!(
                "{} bytes after the last of {num_records} records",
                rest.len()
            ),
        ));
    }
    Ok(out)
}

/// Decodes one record; `rec` is exactly `record_size` bytes.
fn decode_record(rec: &[u8], ctx: &Ctx<'_>, index: usize) -> Result<Record> {
    let short = || ctx.corrupt(index, "record shorter than the lengths it declares");
    let mut c = Cursor { buf: &rec[4..] };
    let name_len = c.u16().ok_or_else(short)? as usize;
    let seq_len = c.u16().ok_or_else(short)? as usize;
    let n_ops = c.u16().ok_or_else(short)? as usize;
    let num_tags = c.u16().ok_or_else(short)? as usize;
    let name = c.take(name_len).ok_or_else(short)?;
    let ref_id = c.i32().ok_or_else(short)?;
    let pos = c.i32().ok_or_else(short)?;
    let mapq = c.u8().ok_or_else(short)?;
    let flag = c.u16().ok_or_else(short)?;
    let mut cigar = Vec::with_capacity(n_ops);
    for _ in 0..n_ops {
        let word = c.u32().ok_or_else(short)?;
        cigar.push(check_cigar_op(word, ctx, index)?);
    }
    let packed = c.take(seq_len.div_ceil(2)).ok_or_else(short)?;
    let tail = c.buf;

    // The writer wrote len(Quality) bytes but the count says seq_len (upstream bug L6): a SAM
    // QUAL `*` (or a nil BAM quality) left one `*` byte. The layout is only right if the tags
    // then parse to exactly the end of the record, so try seq_len bytes first, then one `*`.
    let (qual, tags) = if let Some(tags) = tail.get(seq_len..).and_then(|t| parse_tags(t, num_tags))
    {
        (Some(&tail[..seq_len]), tags)
    } else if let Some(tags) = tail
        .strip_prefix(b"*")
        .and_then(|t| parse_tags(t, num_tags))
    {
        (None, tags)
    } else {
        return Err(ctx.corrupt(
            index,
            "quality and tags do not fit the record size (truncated or corrupt record)",
        ));
    };

    let mut bases: Vec<u8> = (0..seq_len)
        .map(|i| {
            let byte = packed[i / 2];
            let code = if i % 2 == 0 { byte >> 4 } else { byte & 0xF };
            // The writer encoded every non-ACGTN character as 0 (BAM `=`); it was never `=`.
            if code == 0 { N } else { code }
        })
        .collect();
    let mut qual = qual.map(|q| q.iter().map(|b| b.wrapping_sub(33)).collect::<Vec<u8>>());
    // SAM SEQ `*` was stored as one base of code 0 with quality `*`: give back `*`/`*`.
    if seq_len == 1 && packed[0] >> 4 == 0 && tail.first() == Some(&b'*') {
        bases.clear();
        qual = None;
    }

    let fields = Fields {
        name,
        flag,
        ref_id: ctx.ref_id(index, i64::from(ref_id))?,
        pos: ctx.zero_based(index, i64::from(pos))?,
        mapq,
        cigar,
        bases,
        qual,
        tags: tags
            .into_iter()
            .map(|(tag, value)| (tag, Cow::Borrowed(value)))
            .collect(),
    };
    build_record(fields, ctx, index)
}

/// Parses exactly `n` `XX Z text NUL` tags covering all of `buf`; `None` if they do not.
fn parse_tags(mut buf: &[u8], n: usize) -> Option<Vec<([u8; 2], &[u8])>> {
    let mut tags = Vec::with_capacity(n.min(buf.len() / 4));
    for _ in 0..n {
        if buf.len() < 4 || buf[2] != b'Z' {
            return None;
        }
        let tag = [buf[0], buf[1]];
        let body = &buf[3..];
        let end = body.iter().position(|&b| b == 0)?;
        tags.push((tag, &body[..end]));
        buf = &body[end + 1..];
    }
    buf.is_empty().then_some(tags)
}
