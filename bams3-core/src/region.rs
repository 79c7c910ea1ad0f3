//! Region strings as samtools reads them, BED files of targets (`-L`), and how they combine
//! into the records a query selects (`-M`).

mod bed;
mod targets;

pub use bed::{Bed, BedInterval};
pub use targets::{Selection, Targets};

use crate::{Error, Header, Result};

/// A region resolved against a header: a reference and a 0-based half-open interval, or the
/// unplaced reads (`*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Records on reference `ref_id` overlapping `[beg, end)`.
    Span {
        /// Reference index.
        ref_id: usize,
        /// 0-based start.
        beg: i64,
        /// 0-based exclusive end.
        end: i64,
    },
    /// Records without a reference (`*`).
    Unplaced,
}

impl Region {
    /// Parses `chr`, `chr:start`, `chr:start-end` (1-based, inclusive, commas allowed) or `*`.
    /// A whole string naming a reference wins, so names containing `:` work; `{name}:1-10`
    /// braces disambiguate as in samtools.
    ///
    /// ```
    /// use bams3_core::{region::Region, Header};
    /// let h = Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n@SQ\tSN:HLA:1\tLN:50\n").unwrap();
    /// assert_eq!(Region::parse("chr1:1,001-2000", &h).unwrap(),
    ///            Region::Span { ref_id: 0, beg: 1000, end: 2000 });
    /// assert_eq!(Region::parse("HLA:1", &h).unwrap(), Region::Span { ref_id: 1, beg: 0, end: i64::MAX });
    /// assert!(Region::parse("chrZ:1-10", &h).is_err());
    /// ```
    pub fn parse(s: &str, header: &Header) -> Result<Region> {
        let err = |d: &str| Error::Region {
            region: s.to_string(),
            detail: d.to_string(),
        };
        if s == "*" {
            return Ok(Region::Unplaced);
        }
        let whole = |ref_id: usize| Region::Span {
            ref_id,
            beg: 0,
            end: i64::MAX,
        };
        let (name, coords) = if let Some(rest) = s.strip_prefix('{') {
            let close = rest.find('}').ok_or_else(|| err("unclosed '{'"))?;
            let coords = &rest[close + 1..];
            if !coords.is_empty() && !coords.starts_with(':') {
                return Err(err("expected ':' after '}'"));
            }
            (&rest[..close], coords.strip_prefix(':'))
        } else if let Some(id) = header.reference_index(s) {
            return Ok(whole(id));
        } else {
            match s.rsplit_once(':') {
                Some((n, c)) => (n, Some(c)),
                None => (s, None),
            }
        };
        let ref_id = header
            .reference_index(name)
            .ok_or_else(|| err(&format!("unknown reference '{name}'")))?;
        let Some(coords) = coords else {
            return Ok(whole(ref_id));
        };
        let num = |t: &str| -> Result<i64> {
            let t: String = t.chars().filter(|&c| c != ',').collect();
            t.parse::<i64>()
                .map_err(|_| err(&format!("'{t}' is not a position")))
        };
        let (beg, end) = match coords.split_once('-') {
            Some((b, "")) => (num(b)?, i64::MAX),
            Some((b, e)) => (num(b)?, num(e)?),
            None => (num(coords)?, i64::MAX),
        };
        if beg < 0 || end < 0 {
            return Err(err("negative position"));
        }
        if end < beg {
            return Err(err("end before start"));
        }
        Ok(Region::Span {
            ref_id,
            beg: (beg - 1).max(0),
            end,
        })
    }
}
