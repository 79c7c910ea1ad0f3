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
        let packed = rec.packed_seq();
        out.extend((0..l_seq).map(|i| NT16[((packed[i / 2] >> (4 * (1 - i % 2))) & 0xf) as usize]));
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
/// `f` values.
fn push_g(out: &mut Vec<u8>, x: f32) {
    let _ = write!(out, "{}", fmt_g(x as f64));
}

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
