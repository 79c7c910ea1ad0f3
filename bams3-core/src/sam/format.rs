//! BAM record bytes → one SAM line, as htslib 1.16's `sam_format1` prints it.

use std::io::Write;

use crate::record::AuxField;
use crate::{Error, Header, Record, Result};

use super::{CIGAR_OPS, NT16};

/// Appends `rec` as one SAM line, newline included, byte-identical to `samtools view` (1.16).
///
/// Long CIGARs are printed in full from their `CG` tag, which is then left out, as htslib
/// drops it when reading BAM (under htslib's exact conditions, see `htslib_cigar`). Malformed tags or out-of-range reference indices are errors.
///
/// ```
/// use bams3_core::{sam, Header, Record};
/// let header = Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n").unwrap();
/// let mut out = Vec::new();
/// sam::format_record(&Record::from_sam_fields_for_doc(), &header, &mut out).unwrap();
/// assert_eq!(out, b"r1\t0\tchr1\t100\t60\t4M\t*\t0\t0\tACGT\t????\n");
/// ```
pub fn format_record(rec: &Record, header: &Header, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let r = write_record(rec, header, out);
    if r.is_err() {
        // Leave no half-written line behind.
        out.truncate(start);
    }
    r.map_err(|detail| {
        Error::corrupt(
            format!("BAM record '{}'", String::from_utf8_lossy(rec.name())),
            detail,
        )
    })
}

fn write_record(
    rec: &Record,
    header: &Header,
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    out.extend_from_slice(rec.name());
    out.push(b'\t');
    push_num(out, rec.flag());
    out.push(b'\t');
    push_ref(out, header, rec.ref_id(), "reference")?;
    out.push(b'\t');
    push_num(out, rec.pos() as i64 + 1);
    out.push(b'\t');
    push_num(out, rec.mapq());
    out.push(b'\t');

    let (cigar, cg_index) = htslib_cigar(rec)?;
    if cigar.is_empty() {
        out.push(b'*');
    }
    for w in cigar.chunks_exact(4) {
        let op = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let Some(&c) = CIGAR_OPS.get((op & 0xf) as usize) else {
            return Err(format!("invalid CIGAR operation code {}", op & 0xf));
        };
        push_num(out, op >> 4);
        out.push(c);
    }
    out.push(b'\t');

    let next = rec.next_ref_id();
    if next >= 0 && next == rec.ref_id() {
        out.push(b'=');
    } else {
        push_ref(out, header, next, "mate reference")?;
    }
    out.push(b'\t');
    push_num(out, rec.next_pos() as i64 + 1);
    out.push(b'\t');
    push_num(out, rec.tlen());
    out.push(b'\t');

    let l_seq = rec.l_seq();
    if l_seq == 0 {
        out.extend_from_slice(b"*\t*");
    } else {
        push_bases(out, rec.packed_seq(), l_seq);
        out.push(b'\t');
        let qual = rec.qual();
        if qual[0] == 0xff {
            out.push(b'*');
        } else {
            out.extend(qual.iter().map(|&q| q.wrapping_add(33)));
        }
    }

    // htslib moves a long CIGAR out of its `CG` tag on input, so that tag is never printed.
    for (i, field) in rec.aux_fields().enumerate() {
        let field = field.map_err(|e| e.to_string())?;
        if Some(i) == cg_index {
            continue;
        }
        out.push(b'\t');
        push_tag(out, &field)?;
    }
    out.push(b'\n');
    Ok(())
}

/// The CIGAR `samtools view` prints, and the index of the tag it came from if it was a long
/// CIGAR's `CG` tag (htslib's rule, kept in one place: [`Record::long_cigar`]).
fn htslib_cigar(rec: &Record) -> std::result::Result<(&[u8], Option<usize>), String> {
    Ok(match rec.long_cigar() {
        Some((ops, i)) => (ops, Some(i)),
        None => (rec.raw_cigar(), None),
    })
}

/// Both bases of a packed byte (high nibble first), as text.
static NT16_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [NT16[i >> 4], NT16[i & 0xf]];
        i += 1;
    }
    t
};

/// Appends the `l_seq` bases of `packed` (4-bit codes, two a byte) as text: a byte at a time
/// into space made once, which is a tenth of what a base at a time cost.
fn push_bases(out: &mut Vec<u8>, packed: &[u8], l_seq: usize) {
    let start = out.len();
    out.resize(start + l_seq, 0);
    let dest = &mut out[start..];
    let (pairs, odd) = dest.split_at_mut(l_seq & !1);
    for (d, &b) in pairs.chunks_exact_mut(2).zip(packed) {
        d.copy_from_slice(&NT16_PAIRS[b as usize]);
    }
    if let (Some(d), Some(&b)) = (odd.first_mut(), packed.get(l_seq / 2)) {
        *d = NT16[(b >> 4) as usize];
    }
}

fn push_num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    // itoa, not `write!`: integers are most of a SAM line's fields, and core::fmt's
    // machinery was a tenth of a region query's time.
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn push_ref(
    out: &mut Vec<u8>,
    header: &Header,
    id: i32,
    what: &str,
) -> std::result::Result<(), String> {
    if id < 0 {
        out.push(b'*');
        return Ok(());
    }
    let r = usize::try_from(id)
        .ok()
        .and_then(|i| header.references.get(i))
        .ok_or_else(|| {
            format!(
                "{what} index {id} is out of range (the header has {} references)",
                header.references.len()
            )
        })?;
    out.extend_from_slice(r.name.as_bytes());
    Ok(())
}

fn push_tag(out: &mut Vec<u8>, f: &AuxField<'_>) -> std::result::Result<(), String> {
    out.extend_from_slice(&f.tag);
    out.push(b':');
    let v = f.value;
    match f.ty {
        b'A' => {
            out.extend_from_slice(b"A:");
            out.push(v[0]);
        }
        b'c' | b'C' | b's' | b'S' | b'i' | b'I' => {
            out.extend_from_slice(b"i:");
            push_num(out, int_at(f.ty, v));
        }
        b'f' => {
            out.extend_from_slice(b"f:");
            push_g(out, f32::from_le_bytes([v[0], v[1], v[2], v[3]]));
        }
        b'Z' | b'H' => {
            out.push(f.ty);
            out.push(b':');
            out.extend_from_slice(v);
        }
        b'B' => {
            let sub = v[0];
            let size = crate::record::aux_type_size(sub).unwrap_or(1);
            out.extend_from_slice(b"B:");
            out.push(sub);
            for e in v[5..].chunks_exact(size) {
                out.push(b',');
                if sub == b'f' {
                    push_g(out, f32::from_le_bytes([e[0], e[1], e[2], e[3]]));
                } else {
                    push_num(out, int_at(sub, e));
                }
            }
        }
        other => {
            // AuxIter rejects unknown types, so this is only reachable if it changes.
            return Err(format!(
                "tag {} has the unknown type '{}'",
                String::from_utf8_lossy(&f.tag),
                other.escape_ascii()
            ));
        }
    }
    Ok(())
}

/// An integer of BAM type `ty` from little-endian bytes (AuxIter has checked the length).
fn int_at(ty: u8, b: &[u8]) -> i64 {
    match ty {
        b'c' => b[0] as i8 as i64,
        b'C' => b[0] as i64,
        b's' => i16::from_le_bytes([b[0], b[1]]) as i64,
        b'S' => u16::from_le_bytes([b[0], b[1]]) as i64,
        b'i' => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
        _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
    }
}

/// Formats like C's `printf("%g")` (precision 6) as glibc does, which is what htslib uses for
/// `f` values. The six significant digits come from one exact rounding (`{:.5e}`, written to
/// the stack), from which either of `%g`'s styles is laid out: no allocation, one float
/// conversion (three allocations and two conversions were a twentieth of a region query).
fn push_g(out: &mut Vec<u8>, x: f32) {
    let x = f64::from(x);
    let special: Option<&[u8]> = match x {
        x if x.is_nan() => Some(if x.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        }),
        x if x.is_infinite() => Some(if x < 0.0 { b"-inf" } else { b"inf" }),
        x if x == 0.0 => Some(if x.is_sign_negative() { b"-0" } else { b"0" }),
        _ => None,
    };
    if let Some(s) = special {
        out.extend_from_slice(s);
        return;
    }
    let mut buf = [0u8; 40];
    let mut w = &mut buf[..];
    // A finite f64 in this form takes at most 13 bytes ("-1.23457e-308").
    let _ = write!(w, "{x:.5e}");
    let n = 40 - w.len();
    let s = &buf[..n];
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    // `d.ddddde[-]x`: the digits, then the exponent.
    let mut digits = [b'0'; 6];
    digits[0] = s[0];
    digits[1..].copy_from_slice(&s[2..7]);
    let exp = s[8..]
        .iter()
        .filter(|c| c.is_ascii_digit())
        .fold(0i32, |e, &c| e * 10 + i32::from(c - b'0'));
    let exp = if s.get(8) == Some(&b'-') { -exp } else { exp };
    let mut nd = 6;
    while nd > 1 && digits[nd - 1] == b'0' {
        nd -= 1;
    }
    if neg {
        out.push(b'-');
    }
    if (-4..6).contains(&exp) {
        if exp >= 0 {
            let int = exp as usize + 1;
            out.extend_from_slice(&digits[..int]);
            if nd > int {
                out.push(b'.');
                out.extend_from_slice(&digits[int..nd]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(&digits[..nd]);
        }
    } else {
        out.push(digits[0]);
        if nd > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..nd]);
        }
        out.extend_from_slice(if exp < 0 { b"e-" } else { b"e+" });
        if exp.unsigned_abs() < 10 {
            out.push(b'0');
        }
        push_num(out, exp.unsigned_abs());
    }
}

/// `%g` as first written, through `format!`: the reference [`push_g`] is tested against.
#[cfg(test)]
fn fmt_g(x: f64) -> String {
    const P: i32 = 6;
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // The exponent after rounding to P significant digits decides between the two styles.
    let e_form = format!("{:.*e}", (P - 1) as usize, x);
    let (mantissa, exp) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..P).contains(&exp) {
        let fixed = format!("{:.*}", (P - 1 - exp) as usize, x);
        strip_zeros(&fixed).to_string()
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_zeros(mantissa), exp.abs())
    }
}

/// Drops trailing fractional zeros and a then-trailing point, as `%g` does.
#[cfg(test)]
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam::parse_record;

    #[test]
    fn g_matches_printf() {
        let cases: [(f64, &str); 14] = [
            (1.0, "1"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-3.25, "-3.25"),
            (123.456789, "123.457"),
            (999999.5, "1e+06"),
            (1e100, "1e+100"),
            (f64::INFINITY, "inf"),
            (-0.0, "-0"),
            (0.000123456789, "0.000123457"),
        ];
        for (x, want) in cases {
            assert_eq!(fmt_g(x), want, "{x}");
            if x as f32 as f64 == x || !x.is_finite() {
                let mut out = Vec::new();
                push_g(&mut out, x as f32);
                assert_eq!(String::from_utf8(out).unwrap(), want, "{x}");
            }
        }
        // Every exponent, rounding edges and random bit patterns: the stack version gives
        // exactly what the format! version gives.
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut xs: Vec<f32> = (0..200_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                f32::from_bits(seed as u32)
            })
            .collect();
        xs.extend([
            9.999995e-5f32,
            9.999995e5,
            0.00067,
            1e-45,
            f32::MAX,
            -f32::MIN_POSITIVE,
        ]);
        xs.extend((0..60).map(|e| 10f32.powi(e - 45) * 0.9999995));
        for x in xs {
            let mut out = Vec::new();
            push_g(&mut out, x);
            assert_eq!(String::from_utf8(out).unwrap(), fmt_g(x as f64), "{x:e}");
        }
    }

    #[test]
    fn bases_of_every_length_and_code() {
        for len in 0..40usize {
            let packed: Vec<u8> = (0..len.div_ceil(2)).map(|i| (i * 37 + len) as u8).collect();
            let want: Vec<u8> = (0..len)
                .map(|i| NT16[((packed[i / 2] >> (4 * (1 - i % 2))) & 0xf) as usize])
                .collect();
            let mut out = b"x".to_vec();
            push_bases(&mut out, &packed, len);
            assert_eq!(&out[1..], &want[..], "{len}");
        }
    }

    #[test]
    fn round_trips_every_field_kind() {
        let header =
            Header::from_sam_text("@SQ\tSN:chr1\tLN:100000\n@SQ\tSN:chr2\tLN:5000\n").unwrap();
        for line in [
            "r1\t99\tchr1\t100\t60\t2M1I1M\t=\t200\t150\tACGT\tIIII\tNM:i:-5\tXA:A:x",
            "r2\t67\tchr1\t100\t0\t4M\tchr2\t1\t-10\tacgt\t*\tXF:f:0.25\tXB:B:f,1.5,-2",
            "r3\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*\tXH:H:00FF\tXZ:Z:hello world\tXC:B:c,-1,2",
            "r4\t4\t*\t0\t0\t*\t*\t0\t0\t=ACMGRSVTWYHKDBN\t*\tXI:B:I,4294967295\tXE:B:S",
        ] {
            let rec = parse_record(line.as_bytes(), &header).unwrap();
            let mut out = Vec::new();
            format_record(&rec, &header, &mut out).unwrap();
            let want = line.replace("acgt", "ACGT") + "\n";
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn bad_reference_index_and_aux_are_errors() {
        let header = Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n").unwrap();
        let mut bytes = Record::from_sam_fields_for_doc().into_bytes();
        bytes[0] = 5;
        let rec = Record::from_bytes(bytes.clone()).unwrap();
        let mut out = b"keep".to_vec();
        let e = format_record(&rec, &header, &mut out).unwrap_err();
        assert!(e.to_string().contains("index 5"), "{e}");
        assert_eq!(out, b"keep");

        bytes[0] = 0;
        bytes.extend_from_slice(b"XZZno-nul");
        let rec = Record::from_bytes(bytes).unwrap();
        assert!(format_record(&rec, &header, &mut out).is_err());
    }
}
