//! Parsing sizes, flags and levels the way samtools users type them.

use anyhow::{bail, Result};

/// `256K`, `1M`, `2MB`, `0.5G` (binary units) or a plain number of bytes/bases.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let (num, mult) = match upper.trim_end_matches('B') {
        x if x.ends_with('K') => (&x[..x.len() - 1], 1u64 << 10),
        x if x.ends_with('M') => (&x[..x.len() - 1], 1 << 20),
        x if x.ends_with('G') => (&x[..x.len() - 1], 1 << 30),
        x => (x, 1),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size '{s}' (examples: 256K, 1M, 512M)"))?;
    if !(v.is_finite() && v > 0.0) {
        bail!("invalid size '{s}'");
    }
    Ok((v * mult as f64).round() as u64)
}

/// A clap value parser for sizes.
pub fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

const FLAG_NAMES: [(&str, u16); 12] = [
    ("PAIRED", 0x1),
    ("PROPER_PAIR", 0x2),
    ("UNMAP", 0x4),
    ("MUNMAP", 0x8),
    ("REVERSE", 0x10),
    ("MREVERSE", 0x20),
    ("READ1", 0x40),
    ("READ2", 0x80),
    ("SECONDARY", 0x100),
    ("QCFAIL", 0x200),
    ("DUP", 0x400),
    ("SUPPLEMENTARY", 0x800),
];

/// A flag value as samtools accepts it: decimal, `0x` hex, `0` octal, or names like `UNMAP,DUP`.
pub fn flag_arg(s: &str) -> Result<u16, String> {
    let t = s.trim();
    let num = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u16::from_str_radix(h, 16).ok()
    } else if t.len() > 1 && t.starts_with('0') && t.bytes().all(|b| b.is_ascii_digit()) {
        u16::from_str_radix(&t[1..], 8).ok()
    } else {
        t.parse().ok()
    };
    if let Some(n) = num {
        return Ok(n);
    }
    let mut v = 0;
    for name in t.split(',') {
        let bit = FLAG_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, b)| *b)
            .ok_or_else(|| format!("unknown flag '{name}'"))?;
        v |= bit;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1M").unwrap(), 1 << 20);
        assert_eq!(parse_size("256k").unwrap(), 256 << 10);
        assert_eq!(parse_size("0.5MB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert!(parse_size("abc").is_err());
        assert!(parse_size("-1M").is_err());
    }

    #[test]
    fn flags() {
        assert_eq!(flag_arg("0x400").unwrap(), 0x400);
        assert_eq!(flag_arg("1024").unwrap(), 0x400);
        assert_eq!(flag_arg("UNMAP,DUP").unwrap(), 0x404);
        assert!(flag_arg("NOPE").is_err());
    }
}
