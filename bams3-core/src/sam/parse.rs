//! One SAM alignment line → the BAM record bytes htslib 1.16 would write for it.
//!
//! The encoding mirrors htslib's `sam_parse1` followed by `bam_write1`: smallest integer tag
//! types, `f` tags rounded through `double` as `strtod` does, unplaced reads flagged unmapped,
//! the bin computed from the final CIGAR, and CIGARs of more than 65,535 operations written as
//! the `<l_seq>S<ref_len>N` placeholder plus a trailing `CG:B:I` tag. SEQ characters BAM has no
//! code for are stored as htslib stores them (see [`BASE_CODES`]) and counted, so the reader can
//! say how many were changed. Unlike htslib, anything else malformed is refused with an error
//! naming the field, instead of being read as 0 or rewritten with a warning.

use crate::record::{AuxIter, cigar_reference_len, flags, reg2bin};
use crate::{Error, Header, Record, Result};

use super::CIGAR_OPS;

/// Most CIGAR operations the BAM CIGAR field can hold; longer CIGARs go to a `CG` tag.
const MAX_INLINE_CIGAR_OPS: usize = 0xffff;

/// Largest CIGAR operation length (28 bits).
const MAX_CIGAR_OP_LEN: u64 = (1 << 28) - 1;

/// Largest 1-based position BAM can store (its 0-based field is an `i32`).
const MAX_POS_1BASED: u64 = 1 << 31;

/// CIGAR op codes that consume query bases (`M`, `I`, `S`, `=`, `X`; not `B`).
const CONSUMES_QUERY: [bool; 10] = [
    true, true, false, false, true, false, false, true, true, false,
];

/// BAM op code of a soft clip.
const OP_SOFT_CLIP: u32 = 4;
/// BAM op code of a reference skip.
const OP_REF_SKIP: u32 = 3;

/// Parses one SAM alignment line (without its newline) into BAM record bytes, exactly as
/// `samtools view -b` (htslib 1.16) would encode it.
///
/// Errors name the field that is wrong and why; an `RNAME` or `RNEXT` missing from the header
/// is an error rather than htslib's "treated as unmapped".
///
/// ```
/// use bams3_core::{sam, Header};
/// let header = Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n").unwrap();
/// let rec = sam::parse_record(b"r1\t0\tchr1\t100\t60\t4M\t*\t0\t0\tACGT\t*", &header).unwrap();
/// assert_eq!(rec.pos(), 99);
/// assert_eq!(rec.qual(), [0xff; 4]);
/// let err = sam::parse_record(b"r1\t0\tchr9\t100\t60\t4M\t*\t0\t0\tACGT\t*", &header);
/// assert!(err.unwrap_err().to_string().contains("chr9"));
/// ```
///
/// Each call looks the reference names up in `header`; a caller parsing many lines should
/// build [`super::ReferenceNames`] once and use [`parse_record_with`].
pub fn parse_record(line: &[u8], header: &Header) -> Result<Record> {
    let lookup = |name: &[u8]| {
        std::str::from_utf8(name)
            .ok()
            .and_then(|n| header.reference_index(n))
    };
    parse_line(line, &lookup)
        .map(|p| p.record)
        .map_err(|detail| Error::corrupt("SAM record", detail))
}

/// [`parse_record`] with the reference names already hashed: one lookup per record.
///
/// ```
/// use bams3_core::{sam, Header};
/// let header = Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n").unwrap();
/// let names = sam::ReferenceNames::new(&header).unwrap();
/// let rec = sam::parse_record_with(b"r1\t0\tchr1\t100\t60\t4M\t*\t0\t0\tACGT\t*", &names).unwrap();
/// assert_eq!(rec.ref_id(), 0);
/// ```
pub fn parse_record_with(line: &[u8], names: &super::ReferenceNames) -> Result<Record> {
    let lookup = |name: &[u8]| names.get(name);
    parse_line(line, &lookup)
        .map(|p| p.record)
        .map_err(|detail| Error::corrupt("SAM record", detail))
}

/// A parsed line: the record, and how many of its SEQ characters were not BAM bases.
pub(super) struct Parsed {
    pub record: Record,
    /// Characters outside `=ACMGRSVTWYHKDBN` (either case), stored as [`BASE_CODES`] says.
    pub replaced_bases: usize,
}

/// The parser proper, with reference lookup abstracted so that [`super::Reader`] can use a hash
/// map. Returns the error detail as text so callers can put their own context (a line number)
/// in front of it.
pub(super) fn parse_line(
    line: &[u8],
    lookup: &dyn Fn(&[u8]) -> Option<usize>,
) -> std::result::Result<Parsed, String> {
    let mut fields = line.split(|&b| b == b'\t');
    let mut f: [&[u8]; 11] = [&[]; 11];
    for (i, slot) in f.iter_mut().enumerate() {
        *slot = fields
            .next()
            .ok_or_else(|| format!("expected at least 11 tab-separated fields, found {i}"))?;
    }
    let [
        qname,
        flag,
        rname,
        pos,
        mapq,
        cigar,
        rnext,
        pnext,
        tlen,
        seq,
        qual,
    ] = f;
    // Prefix every later error with the read name: it is what users search their files for.
    let fail = |detail: String| format!("read '{}': {detail}", show(qname));

    parse_qname(qname)?;
    let mut flag = parse_flag(flag).map_err(fail)?;
    let mut ref_id = parse_ref(rname, lookup, "RNAME").map_err(fail)?;
    let pos = parse_pos(pos, "POS").map_err(fail)?;
    // htslib's normalisations, which `samtools view -b` applies to every record (mostly with
    // a warning) and which BAM readers expect: a read at POS 0 cannot be placed, an unplaced
    // read is unmapped, a mapped read needs a CIGAR, and a mate at PNEXT 0 is unplaced. The
    // order matters: RNEXT `=` copies the RNAME as normalised.
    if pos < 0 && ref_id >= 0 {
        ref_id = -1;
    }
    let mapq = parse_uint(mapq, u8::MAX as u64, "MAPQ").map_err(fail)? as u8;
    let mut cigar = parse_cigar(cigar).map_err(fail)?;
    let mut next_ref_id = if rnext == b"=" {
        ref_id
    } else {
        parse_ref(rnext, lookup, "RNEXT").map_err(fail)?
    };
    let next_pos = parse_pos(pnext, "PNEXT").map_err(fail)?;
    if next_pos < 0 && next_ref_id >= 0 {
        next_ref_id = -1;
    }
    let tlen = parse_int(tlen, i32::MIN as i64, i32::MAX as i64, "TLEN").map_err(fail)? as i32;
    let (seq, replaced_bases) = parse_seq(seq).map_err(fail)?;
    let qual = parse_qual(qual, seq.len()).map_err(fail)?;
    let mut aux = Vec::new();
    for field in fields {
        parse_tag(field, &mut aux).map_err(fail)?;
    }

    if ref_id < 0 || cigar.is_empty() {
        flag |= flags::UNMAPPED;
    }

    check_query_len(&cigar, seq.len(), "CIGAR").map_err(fail)?;
    // A SAM line may already carry BAM's long-CIGAR convention; htslib resolves it on input.
    // htslib does not re-check the resolved CIGAR against SEQ; we do, since such a record
    // cannot be read back.
    if ref_id >= 0 && pos >= 0 && take_cg_tag(&mut cigar, &mut aux, seq.len()).map_err(fail)? {
        check_query_len(&cigar, seq.len(), "CIGAR from the CG tag").map_err(fail)?;
    }

    let cigar_bytes: Vec<u8> = cigar.iter().flat_map(|op| op.to_le_bytes()).collect();
    let ref_len = cigar_reference_len(&cigar_bytes);
    let span = if flag & flags::UNMAPPED != 0 {
        1
    } else {
        ref_len.max(1)
    };
    let bin = reg2bin(pos as i64, pos as i64 + span);

    let long = cigar.len() > MAX_INLINE_CIGAR_OPS;
    let stored_cigar = if long {
        if ref_len as u64 > MAX_CIGAR_OP_LEN || seq.len() as u64 > MAX_CIGAR_OP_LEN {
            return Err(fail(format!(
                "CIGAR of {} operations covers too much for BAM's long-CIGAR placeholder",
                cigar.len()
            )));
        }
        let mut p = Vec::with_capacity(8);
        p.extend_from_slice(&((seq.len() as u32) << 4 | OP_SOFT_CLIP).to_le_bytes());
        p.extend_from_slice(&((ref_len as u32) << 4 | OP_REF_SKIP).to_le_bytes());
        p
    } else {
        cigar_bytes.clone()
    };

    let mut buf = Vec::with_capacity(
        32 + qname.len() + 1 + stored_cigar.len() + seq.len() * 2 + aux.len() + 16,
    );
    buf.extend_from_slice(&ref_id.to_le_bytes());
    buf.extend_from_slice(&pos.to_le_bytes());
    buf.push((qname.len() + 1) as u8);
    buf.push(mapq);
    buf.extend_from_slice(&bin.to_le_bytes());
    buf.extend_from_slice(&((stored_cigar.len() / 4) as u16).to_le_bytes());
    buf.extend_from_slice(&flag.to_le_bytes());
    buf.extend_from_slice(&(seq.len() as i32).to_le_bytes());
    buf.extend_from_slice(&next_ref_id.to_le_bytes());
    buf.extend_from_slice(&next_pos.to_le_bytes());
    buf.extend_from_slice(&tlen.to_le_bytes());
    buf.extend_from_slice(qname);
    buf.push(0);
    buf.extend_from_slice(&stored_cigar);
    for pair in seq.chunks(2) {
        buf.push(pair[0] << 4 | pair.get(1).copied().unwrap_or(0));
    }
    buf.extend_from_slice(&qual);
    buf.extend_from_slice(&aux);
    if long {
        // htslib appends the real CIGAR after all other tags.
        buf.extend_from_slice(b"CGBI");
        buf.extend_from_slice(&(cigar.len() as u32).to_le_bytes());
        buf.extend_from_slice(&cigar_bytes);
    }
    let record =
        Record::from_bytes(buf).map_err(|e| fail(format!("internal encoding error: {e}")))?;
    Ok(Parsed {
        record,
        replaced_bases,
    })
}

/// Checks that `cigar` consumes exactly `l_seq` query bases. SEQ `*` (no bases) goes with any
/// CIGAR: the bases are simply not stored.
fn check_query_len(cigar: &[u32], l_seq: usize, what: &str) -> std::result::Result<(), String> {
    if let Some(op) = cigar
        .iter()
        .find(|&&op| op & 0xf >= CONSUMES_QUERY.len() as u32)
    {
        return Err(format!(
            "{what} has the invalid operation code {}",
            op & 0xf
        ));
    }
    if cigar.is_empty() || l_seq == 0 {
        return Ok(());
    }
    let qlen: u64 = cigar
        .iter()
        .filter(|&&op| CONSUMES_QUERY[(op & 0xf) as usize])
        .map(|&op| (op >> 4) as u64)
        .sum();
    if qlen != l_seq as u64 {
        return Err(format!(
            "{what} covers {qlen} query bases but SEQ has {l_seq}"
        ));
    }
    Ok(())
}

/// Printable, length-limited rendering of input bytes for error messages.
fn show(b: &[u8]) -> String {
    const MAX: usize = 40;
    let s = String::from_utf8_lossy(&b[..b.len().min(MAX)]).into_owned();
    if b.len() > MAX { s + "…" } else { s }
}

fn parse_qname(qname: &[u8]) -> std::result::Result<(), String> {
    if qname.is_empty() {
        return Err("QNAME is empty".into());
    }
    if qname.len() > 254 {
        return Err(format!(
            "QNAME '{}' is {} characters long; BAM allows at most 254",
            show(qname),
            qname.len()
        ));
    }
    if let Some(c) = qname.iter().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "QNAME '{}' contains the non-printable byte 0x{c:02x}",
            show(qname)
        ));
    }
    Ok(())
}

/// A decimal number without sign, at most `max`.
fn parse_uint(field: &[u8], max: u64, name: &str) -> std::result::Result<u64, String> {
    let bad = || format!("{name} '{}' is not a number from 0 to {max}", show(field));
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let mut n: u64 = 0;
    for &d in field {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add((d - b'0') as u64))
            .filter(|&n| n <= max)
            .ok_or_else(bad)?;
    }
    Ok(n)
}

/// FLAG, in decimal as the spec says. htslib reads `0x..` as hex and a leading `0` as octal;
/// rather than pick one reading of `010`, a leading zero is refused.
fn parse_flag(field: &[u8]) -> std::result::Result<u16, String> {
    if field.len() > 1 && field[0] == b'0' {
        return Err(format!(
            "FLAG '{}' has a leading zero (htslib would read it as octal or hex, the SAM \
             spec as decimal); write it in plain decimal",
            show(field)
        ));
    }
    Ok(parse_uint(field, u16::MAX as u64, "FLAG")? as u16)
}

/// A decimal number with optional sign, in `min..=max`.
fn parse_int(field: &[u8], min: i64, max: i64, name: &str) -> std::result::Result<i64, String> {
    let (neg, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, field),
    };
    let bad = || {
        format!(
            "{name} '{}' is not a number from {min} to {max}",
            show(field)
        )
    };
    let limit = if neg { min.unsigned_abs() } else { max as u64 };
    let n = parse_uint(digits, limit, name).map_err(|_| bad())?;
    Ok(if neg {
        0i64.wrapping_sub_unsigned(n)
    } else {
        n as i64
    })
}

/// A 1-based position → 0-based (`0` → -1).
fn parse_pos(field: &[u8], name: &str) -> std::result::Result<i32, String> {
    Ok((parse_uint(field, MAX_POS_1BASED, name)? as i64 - 1) as i32)
}

fn parse_ref(
    field: &[u8],
    lookup: &dyn Fn(&[u8]) -> Option<usize>,
    name: &str,
) -> std::result::Result<i32, String> {
    if field == b"*" {
        return Ok(-1);
    }
    match lookup(field) {
        Some(i) => i32::try_from(i).map_err(|_| format!("{name} index {i} is too large for BAM")),
        None => Err(format!(
            "{name} '{}' is not a reference in the header (no @SQ line with SN:{})",
            show(field),
            show(field)
        )),
    }
}

/// CIGAR text → BAM op words (`*` → none).
fn parse_cigar(field: &[u8]) -> std::result::Result<Vec<u32>, String> {
    if field == b"*" {
        return Ok(Vec::new());
    }
    if field.is_empty() {
        return Err("CIGAR is empty (use '*' for none)".into());
    }
    let mut ops = Vec::new();
    let mut len: u64 = 0;
    let mut have_digits = false;
    for (i, &c) in field.iter().enumerate() {
        if c.is_ascii_digit() {
            len = len * 10 + (c - b'0') as u64;
            have_digits = true;
            if len > MAX_CIGAR_OP_LEN {
                return Err(format!(
                    "CIGAR operation {} is longer than BAM's limit of {MAX_CIGAR_OP_LEN}",
                    ops.len() + 1
                ));
            }
            continue;
        }
        let Some(code) = CIGAR_OPS.iter().position(|&o| o == c) else {
            return Err(format!(
                "CIGAR '{}' has the invalid character '{}' at offset {i}",
                show(field),
                c.escape_ascii()
            ));
        };
        if !have_digits {
            return Err(format!(
                "CIGAR '{}' has an operation without a length at offset {i}",
                show(field)
            ));
        }
        ops.push((len as u32) << 4 | code as u32);
        len = 0;
        have_digits = false;
    }
    if have_digits {
        return Err(format!(
            "CIGAR '{}' ends in a length without an operation",
            show(field)
        ));
    }
    Ok(ops)
}

/// htslib's `seq_nt16_table`: the 4-bit code `samtools view -b` stores for each SEQ byte.
/// `=ACMGRSVTWYHKDBN` in either case map to themselves; the digits `0`-`3` (colour-space
/// SAM's bases) to `A`, `C`, `G`, `T`; every other byte (`U`, `.`, `X`, ...) to `N`.
const BASE_CODES: [u8; 256] = {
    let mut t = [15u8; 256];
    let mut code = 0;
    while code < 16 {
        let c = super::NT16[code];
        t[c as usize] = code as u8;
        t[c.to_ascii_lowercase() as usize] = code as u8;
        code += 1;
    }
    t[b'0' as usize] = 1;
    t[b'1' as usize] = 2;
    t[b'2' as usize] = 4;
    t[b'3' as usize] = 8;
    t
};

/// SEQ text → one 4-bit code per base (`*` → none), and how many characters were not BAM
/// bases (stored as [`BASE_CODES`] says, as samtools does).
fn parse_seq(field: &[u8]) -> std::result::Result<(Vec<u8>, usize), String> {
    if field == b"*" {
        return Ok((Vec::new(), 0));
    }
    if field.is_empty() {
        return Err("SEQ is empty (use '*' for none)".into());
    }
    if field.len() > i32::MAX as usize {
        return Err("SEQ is too long for BAM".into());
    }
    let codes: Vec<u8> = field.iter().map(|&c| BASE_CODES[c as usize]).collect();
    let replaced = field
        .iter()
        .zip(&codes)
        .filter(|&(&c, &code)| super::NT16[code as usize] != c.to_ascii_uppercase())
        .count();
    Ok((codes, replaced))
}

/// QUAL text → Phred values (`*` → `0xFF` for every base, as BAM marks missing qualities).
fn parse_qual(field: &[u8], l_seq: usize) -> std::result::Result<Vec<u8>, String> {
    // Like htslib, a lone `*` always means "missing", even for a one-base read.
    if field == b"*" {
        return Ok(vec![0xff; l_seq]);
    }
    if field.len() != l_seq {
        return Err(format!(
            "QUAL has {} characters but SEQ has {l_seq} bases",
            field.len()
        ));
    }
    field
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if (b'!'..=b'~').contains(&c) {
                Ok(c - 33)
            } else {
                Err(format!(
                    "QUAL has the invalid character '{}' at position {}",
                    c.escape_ascii(),
                    i + 1
                ))
            }
        })
        .collect()
}

/// Appends one `TG:T:value` field to `aux` in BAM encoding.
fn parse_tag(field: &[u8], aux: &mut Vec<u8>) -> std::result::Result<(), String> {
    let bad_shape = || {
        format!(
            "tag field '{}' is not of the form TG:TYPE:VALUE",
            show(field)
        )
    };
    if field.len() < 5 || field[2] != b':' || field[4] != b':' {
        return Err(bad_shape());
    }
    let (tag, ty, value) = (&field[..2], field[3], &field[5..]);
    // The spec wants [A-Za-z][A-Za-z0-9], but htslib stores any two characters and its own
    // test data uses names like `A!`; only reject what BAM cannot hold sensibly.
    if !tag.iter().all(u8::is_ascii_graphic) {
        return Err(format!(
            "tag name '{}' must be two printable characters",
            show(tag)
        ));
    }
    let tag_s = String::from_utf8_lossy(tag);
    aux.extend_from_slice(tag);
    match ty {
        b'A' => {
            if value.len() != 1 || !value[0].is_ascii_graphic() {
                return Err(format!(
                    "tag {tag_s}:A: value '{}' is not one printable character",
                    show(value)
                ));
            }
            aux.push(b'A');
            aux.push(value[0]);
        }
        // `I` is not in the spec, but htslib (and older tools' output) accepts it.
        b'i' | b'I' => {
            let v = parse_int(
                value,
                i32::MIN as i64,
                u32::MAX as i64,
                &format!("tag {tag_s}:{}:", ty as char),
            )?;
            push_smallest_int(aux, v, value.first() == Some(&b'-'));
        }
        b'f' => {
            let v = parse_float(value)
                .ok_or_else(|| format!("tag {tag_s}:f: value '{}' is not a number", show(value)))?;
            aux.push(b'f');
            aux.extend_from_slice(&v.to_le_bytes());
        }
        b'Z' => {
            if let Some(c) = value.iter().find(|&&c| !(b' '..=b'~').contains(&c)) {
                return Err(format!(
                    "tag {tag_s}:Z: contains the non-printable byte 0x{c:02x}"
                ));
            }
            aux.push(b'Z');
            aux.extend_from_slice(value);
            aux.push(0);
        }
        b'H' => {
            if value.len() % 2 != 0 || !value.iter().all(u8::is_ascii_hexdigit) {
                return Err(format!(
                    "tag {tag_s}:H: value '{}' is not an even number of hex digits",
                    show(value)
                ));
            }
            aux.push(b'H');
            aux.extend_from_slice(value);
            aux.push(0);
        }
        b'B' => parse_array(value, aux, &tag_s)?,
        other => {
            return Err(format!(
                "tag {tag_s} has the unknown type '{}'",
                other.escape_ascii()
            ));
        }
    }
    Ok(())
}

/// Writes an integer tag with the smallest BAM type, the way htslib picks it: the sign in
/// the text (not the value) decides between the signed and unsigned families, so `-0` is `c`.
fn push_smallest_int(aux: &mut Vec<u8>, v: i64, negative_text: bool) {
    if negative_text {
        if v >= i8::MIN as i64 {
            aux.push(b'c');
            aux.push(v as i8 as u8);
        } else if v >= i16::MIN as i64 {
            aux.push(b's');
            aux.extend_from_slice(&(v as i16).to_le_bytes());
        } else {
            aux.push(b'i');
            aux.extend_from_slice(&(v as i32).to_le_bytes());
        }
    } else if v <= u8::MAX as i64 {
        aux.push(b'C');
        aux.push(v as u8);
    } else if v <= u16::MAX as i64 {
        aux.push(b'S');
        aux.extend_from_slice(&(v as u16).to_le_bytes());
    } else {
        aux.push(b'I');
        aux.extend_from_slice(&(v as u32).to_le_bytes());
    }
}

/// A float as htslib reads it: `strtod` to `double`, then rounded to `float` (rounding once
/// to `f32` directly could differ in the last bit). Unlike `strtod`, an empty value, leading
/// blanks or trailing junk are errors, not 0 or ignored.
fn parse_float(value: &[u8]) -> Option<f32> {
    let s = std::str::from_utf8(value).ok()?;
    s.parse::<f64>().ok().map(|d| d as f32)
}

/// `B` array: `<subtype>[,value]*`.
fn parse_array(value: &[u8], aux: &mut Vec<u8>, tag: &str) -> std::result::Result<(), String> {
    let mut parts = value.split(|&c| c == b',');
    let sub = parts.next().unwrap_or_default();
    let &[sub] = sub else {
        return Err(format!(
            "tag {tag}:B: value '{}' does not start with a one-letter subtype",
            show(value)
        ));
    };
    if !b"cCsSiIf".contains(&sub) {
        return Err(format!(
            "tag {tag}:B: has the unknown subtype '{}' (expected one of cCsSiIf)",
            sub.escape_ascii()
        ));
    }
    let values: Vec<&[u8]> = parts.collect();
    aux.push(b'B');
    aux.push(sub);
    aux.extend_from_slice(&(values.len() as u32).to_le_bytes());
    let name = format!("tag {tag}:B:{} element", sub as char);
    for v in values {
        match sub {
            b'c' => aux.push(parse_int(v, i8::MIN as i64, i8::MAX as i64, &name)? as i8 as u8),
            b'C' => aux.push(parse_int(v, 0, u8::MAX as i64, &name)? as u8),
            b's' => aux.extend_from_slice(
                &(parse_int(v, i16::MIN as i64, i16::MAX as i64, &name)? as i16).to_le_bytes(),
            ),
            b'S' => aux.extend_from_slice(
                &(parse_int(v, 0, u16::MAX as i64, &name)? as u16).to_le_bytes(),
            ),
            b'i' => aux.extend_from_slice(
                &(parse_int(v, i32::MIN as i64, i32::MAX as i64, &name)? as i32).to_le_bytes(),
            ),
            b'I' => aux.extend_from_slice(
                &(parse_int(v, 0, u32::MAX as i64, &name)? as u32).to_le_bytes(),
            ),
            _ => {
                let f = parse_float(v)
                    .ok_or_else(|| format!("{name} '{}' is not a number", show(v)))?;
                aux.extend_from_slice(&f.to_le_bytes());
            }
        }
    }
    Ok(())
}

/// htslib's `bam_tag2cigar`: when the CIGAR is the long-CIGAR placeholder (first op a soft clip
/// of the whole read) and the first `CG` tag is a `B:I`/`B:i` array at least as long, the array
/// becomes the CIGAR and the tag is removed. Returns whether it did.
fn take_cg_tag(
    cigar: &mut Vec<u32>,
    aux: &mut Vec<u8>,
    l_seq: usize,
) -> std::result::Result<bool, String> {
    let Some(&first) = cigar.first() else {
        return Ok(false);
    };
    if first & 0xf != OP_SOFT_CLIP || (first >> 4) as usize != l_seq {
        return Ok(false);
    }
    let mut found = None;
    for field in AuxIter::new(aux) {
        let field = field.map_err(|e| format!("internal tag encoding error: {e}"))?;
        if &field.tag == b"CG" {
            if field.ty == b'B' && matches!(field.value.first(), Some(b'I' | b'i')) {
                let start = field.value.as_ptr() as usize - aux.as_ptr() as usize - 3;
                found = Some((start, start + 3 + field.value.len()));
            }
            break;
        }
    }
    let Some((start, end)) = found else {
        return Ok(false);
    };
    let words = &aux[start + 8..end];
    let n = words.len() / 4;
    if n < cigar.len() || n >= 1 << 29 {
        return Ok(false);
    }
    *cigar = words
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    aux.drain(start..end);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header::from_sam_text("@SQ\tSN:chr1\tLN:100000\n@SQ\tSN:chr2\tLN:5000\n").unwrap()
    }

    fn parse(line: &str) -> Result<Record> {
        parse_record(line.as_bytes(), &header())
    }

    fn err(line: &str) -> String {
        parse(line).unwrap_err().to_string()
    }

    #[test]
    fn encodes_fixed_fields() {
        let r = parse("r1\t99\tchr1\t100\t60\t2M1I1M\t=\t200\t150\tACGT\tIIII").unwrap();
        assert_eq!(r.ref_id(), 0);
        assert_eq!(r.pos(), 99);
        assert_eq!(r.flag(), 99);
        assert_eq!(r.mapq(), 60);
        assert_eq!(r.next_ref_id(), 0);
        assert_eq!(r.next_pos(), 199);
        assert_eq!(r.tlen(), 150);
        assert_eq!(r.bin(), reg2bin(99, 102));
        assert_eq!(r.packed_seq(), [0x12, 0x48]);
        assert_eq!(r.qual(), [40; 4]);
    }

    #[test]
    fn unplaced_reads_get_bin_4680_and_unmapped_flag() {
        let r = parse("u\t0\t*\t0\t0\t*\t*\t0\t0\tAC=n\t*").unwrap();
        assert_eq!(r.bin(), 4680);
        assert_eq!(r.flag(), flags::UNMAPPED);
        assert_eq!(r.packed_seq(), [0x12, 0x0f]);
        assert_eq!(r.qual(), [0xff; 4]);
    }

    #[test]
    fn integer_tags_use_the_smallest_type() {
        let r = parse(
            "r\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*\ta0:i:0\ta1:i:-1\ta2:i:255\ta3:i:256\ta4:i:-129\
             \ta5:i:65536\ta6:i:-32769\ta7:i:-0\ta8:i:4294967295",
        )
        .unwrap();
        let types: Vec<u8> = r.aux_fields().map(|f| f.unwrap().ty).collect();
        assert_eq!(types, b"CcCSsIicI");
        assert!(err("r\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*\ta0:i:4294967296").contains("a0:i:"));
        assert!(err("r\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*\ta0:i:-2147483649").contains("a0:i:"));
    }

    #[test]
    fn long_cigar_goes_to_a_cg_tag() {
        let n = 70_000;
        let cigar: String = (0..n / 2).map(|_| "1M1I").collect();
        let seq = "A".repeat(n);
        let line = format!("r\t0\tchr1\t1\t60\t{cigar}\t*\t0\t0\t{seq}\t*\tNM:i:1");
        let r = parse(&line).unwrap();
        assert_eq!(r.n_cigar_op(), 2);
        assert!(r.has_long_cigar());
        assert_eq!(r.cigar().len(), 4 * n);
        assert_eq!(r.reference_len(), n as i64 / 2);
        let tags: Vec<[u8; 2]> = r.aux_fields().map(|f| f.unwrap().tag).collect();
        assert_eq!(tags, [*b"NM", *b"CG"]);
    }

    #[test]
    fn seq_characters_bam_cannot_hold_are_stored_as_samtools_stores_them() {
        // `samtools view -b` (htslib 1.16) of this SEQ prints back ANGNNACGTNNA=N.
        let line = "r\t0\tchr1\t1\t60\t14M\t*\t0\t0\tAUGu.0123X!a=n\t*";
        let p = parse_line(line.as_bytes(), &|_| Some(0)).unwrap();
        let mut sam = Vec::new();
        crate::sam::format_record(&p.record, &header(), &mut sam).unwrap();
        let sam = String::from_utf8(sam).unwrap();
        assert_eq!(sam.split('\t').nth(9), Some("ANGNNACGTNNA=N"));
        assert_eq!(p.replaced_bases, 9);
        let p = parse_line(b"r\t4\t*\t0\t0\t*\t*\t0\t0\tacgtn=\t*", &|_| None).unwrap();
        assert_eq!(p.replaced_bases, 0);
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_field() {
        let cases = [
            ("r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT", "11"),
            ("r\tx\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*", "FLAG"),
            ("r\t70000\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*", "FLAG"),
            ("r\t010\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*", "leading zero"),
            ("r\t0x10\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*", "leading zero"),
            ("r\t+4\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*", "FLAG"),
            ("r\t\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*", "FLAG"),
            ("r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*\tNM:i:++5", "NM:i:"),
            ("r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*\tNM:i:5x", "NM:i:"),
            ("r\t0\tchrX\t1\t60\t4M\t*\t0\t0\tACGT\t*", "RNAME 'chrX'"),
            ("r\t0\tchr1\t-1\t60\t4M\t*\t0\t0\tACGT\t*", "POS"),
            ("r\t0\tchr1\t1\t256\t4M\t*\t0\t0\tACGT\t*", "MAPQ"),
            ("r\t0\tchr1\t1\t60\t4Q\t*\t0\t0\tACGT\t*", "CIGAR"),
            ("r\t0\tchr1\t1\t60\tM\t*\t0\t0\tACGT\t*", "CIGAR"),
            ("r\t0\tchr1\t1\t60\t4\t*\t0\t0\tACGT\t*", "CIGAR"),
            ("r\t0\tchr1\t1\t60\t5M\t*\t0\t0\tACGT\t*", "CIGAR covers 5"),
            ("r\t0\tchr1\t1\t60\t4M\tchrY\t0\t0\tACGT\t*", "RNEXT 'chrY'"),
            ("r\t0\tchr1\t1\t60\t4M\t*\tx\t0\tACGT\t*", "PNEXT"),
            ("r\t0\tchr1\t1\t60\t4M\t*\t0\t3000000000\tACGT\t*", "TLEN"),
            ("r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\tIII", "QUAL has 3"),
            ("r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\tII I", "QUAL"),
            (
                "r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*\tNM",
                "TG:TYPE:VALUE",
            ),
            ("r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*\tNM:i:x", "NM:i:"),
            ("r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*\tXF:f:abc", "XF:f:"),
            ("r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*\tXH:H:ABC", "XH:H:"),
            ("r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*\tXA:A:ab", "XA:A:"),
            (
                "r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*\tXB:B:q,1",
                "subtype",
            ),
            (
                "r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*\tXB:B:c,200",
                "XB:B:c",
            ),
            (
                "r\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*\tXX:Q:1",
                "unknown type",
            ),
            ("\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t*", "QNAME"),
        ];
        for (line, want) in cases {
            let e = err(line);
            assert!(e.contains(want), "{line:?}: error {e:?} lacks {want:?}");
        }
    }

    #[test]
    fn arrays_and_strings_encode_like_bam() {
        let r = parse("r\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*\tXB:B:s,-1,2\tXZ:Z:a b\tXH:H:1A\tXE:B:f")
            .unwrap();
        assert_eq!(
            r.aux(),
            b"XBBs\x02\0\0\0\xff\xff\x02\0XZZa b\0XHH1A\0XEBf\0\0\0\0"
        );
    }

    /// Random byte mutations of valid lines must give `Ok` or `Err`, never a panic, and what
    /// parses must format and re-parse to the same text.
    #[test]
    fn mutated_lines_never_panic() {
        let h = header();
        let seeds: [&[u8]; 3] = [
            b"r1\t99\tchr1\t100\t60\t2M1I1M\t=\t200\t150\tACGT\tIIII\tNM:i:1\tXB:B:s,-1,2",
            b"r2\t4\t*\t0\t0\t*\tchr2\t5\t-1\tAC\t*\tXF:f:1.5\tXH:H:0AFF\tXZ:Z:ab c",
            b"r3\t0\tchr1\t10\t60\t4S3N\t*\t0\t0\tACGT\t*\tCG:B:I,48,48\tXA:A:q",
        ];
        let alphabet = b"\t:,*=-+0123456789.eEMIDNSHPXBAZHfiIcCsSq\\x00\\xff@ ";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut ok, mut bad) = (0, 0);
        for _ in 0..20_000 {
            let mut line = seeds[next() as usize % seeds.len()].to_vec();
            for _ in 0..1 + next() % 3 {
                let at = next() as usize % (line.len() + 1);
                let c = alphabet[next() as usize % alphabet.len()];
                match next() % 3 {
                    0 if at < line.len() => line[at] = c,
                    1 if at < line.len() => {
                        line.remove(at);
                    }
                    _ => line.insert(at, c),
                }
            }
            match parse_record(&line, &h) {
                Err(_) => bad += 1,
                Ok(rec) => {
                    ok += 1;
                    let mut once = Vec::new();
                    crate::sam::format_record(&rec, &h, &mut once).unwrap();
                    let again = parse_record(&once[..once.len() - 1], &h).unwrap();
                    let mut twice = Vec::new();
                    crate::sam::format_record(&again, &h, &mut twice).unwrap();
                    assert_eq!(once, twice, "{}", String::from_utf8_lossy(&line));
                }
            }
        }
        assert!(ok > 1000 && bad > 1000, "ok {ok}, bad {bad}");
    }

    #[test]
    fn cg_tag_in_sam_input_is_resolved_like_htslib() {
        let r =
            parse("r\t0\tchr1\t1\t60\t4S3N\t*\t0\t0\tACGT\t*\tCG:B:I,32,34,32\tNM:i:0").unwrap();
        // Three real ops fit in the CIGAR field, so no placeholder is written back.
        assert_eq!(r.n_cigar_op(), 3);
        assert_eq!(r.raw_cigar(), b"\x20\0\0\0\x22\0\0\0\x20\0\0\0");
        assert_eq!(r.aux(), b"NMC\0");
        assert_eq!(r.bin(), reg2bin(0, 6));
        let e = err("r\t0\tchr1\t1\t60\t4S3N\t*\t0\t0\tACGT\t*\tCG:B:I,32,47");
        assert!(e.contains("invalid operation code 15"), "{e}");
        // htslib would accept a CG CIGAR that disagrees with SEQ; we do not.
        let e = err("r\t0\tchr1\t1\t60\t4S3N\t*\t0\t0\tACGT\t*\tCG:B:I,48,48");
        assert!(e.contains("CIGAR from the CG tag covers 6"), "{e}");
    }
}
