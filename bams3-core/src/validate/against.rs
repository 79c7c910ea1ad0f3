//! `validate --against IN`: a dataset compared, record by record, with the file it was made
//! from.
//!
//! Both sides stream: the dataset's records in stored order (references in header order, each
//! in coordinate order, then the unplaced reads) against the input's, one pair at a time, so
//! memory stays that of one query whatever the size. A coordinate-sorted input is stored in its
//! own order, so the two sequences must be identical and the first difference is named. Any
//! other input was sorted on the way in: its records are then compared as a multiset, through
//! an order-independent digest (count and wrapping sums of two 64-bit hashes of each record's
//! bytes), which says *whether* they differ but cannot say where.

use std::hash::Hasher;

use crate::dataset::{Dataset, RecordFilter};
use crate::input::AlignmentInput;
use crate::{Record, Result};

/// What [`against`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// Same header and the same records.
    Same {
        /// Records compared.
        records: u64,
        /// Whether they were compared in order (a coordinate-sorted input) or as a multiset.
        in_order: bool,
    },
    /// The first difference.
    Differs(Difference),
}

/// Where a dataset and its source first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// 1-based number of the record (in the input's order), 0 for the header and for a
    /// multiset comparison.
    pub record: u64,
    /// Read name of the input's record there, when there is one.
    pub name: Option<String>,
    /// What differs: a SAM field name (`QNAME`, `FLAG`, ..., `TAGS`), `header`, `count` or
    /// `records`.
    pub field: &'static str,
    /// The two values, or what is missing.
    pub detail: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.record > 0 {
            write!(f, "record {}", self.record)?;
            if let Some(n) = &self.name {
                write!(f, " ({n})")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{} differs: {}", self.field, self.detail)
    }
}

/// Compares `ds` with `input`, the BAM/SAM file it was converted from, streaming both.
///
/// ```no_run
/// use bams3_core::{dataset::{Dataset, OpenOptions}, input::AlignmentInput};
/// use bams3_core::validate::{against, Comparison};
/// let ds = Dataset::open_location("sample.bams3", &OpenOptions::default()).unwrap();
/// let mut input = AlignmentInput::open("sample.bam", 2).unwrap();
/// match against(&ds, &mut input).unwrap() {
///     Comparison::Same { records, .. } => println!("{records} records identical"),
///     Comparison::Differs(d) => println!("{d}"),
/// }
/// ```
pub fn against(ds: &std::sync::Arc<Dataset>, input: &mut AlignmentInput) -> Result<Comparison> {
    if ds.header() != input.header() {
        let line = first_different_line(&ds.header().text, &input.header().text);
        return Ok(Comparison::Differs(Difference {
            record: 0,
            name: None,
            field: "header",
            detail: line,
        }));
    }
    let mut stored = ds.records(RecordFilter::default());
    let mut digests = [Digest::default(), Digest::default()];
    let mut n = 0u64;
    let mut sorted = true;
    let mut prev = (0u32, i64::MIN);
    // The first pair that differs, reported only if the input turns out sorted: in an unsorted
    // input, pairs are not meant to match.
    let mut first: Option<Comparison> = None;
    loop {
        let from_input = input.read_record()?;
        let from_ds = stored.next().transpose()?;
        if from_input.is_none() && from_ds.is_none() {
            break;
        }
        if let Some(a) = &from_input {
            n += 1;
            let key = sort_key(a);
            sorted &= key >= prev;
            prev = key;
            digests[0].add(a);
        }
        if let Some(b) = &from_ds {
            digests[1].add(b);
        }
        if first.is_some() {
            // Reading on: the difference stands only if no later record breaks the order, and
            // if one does, the digests need every record.
            continue;
        }
        first = match (&from_input, &from_ds) {
            (Some(a), None) => Some(differs(n, Some(a), "count", "the dataset ends here".into())),
            (None, Some(_)) => Some(differs(n + 1, None, "count", "the input ends here".into())),
            (Some(a), Some(b)) if a.as_bytes() != b.as_bytes() => {
                let (field, detail) = first_different_field(a, b);
                Some(differs(n, Some(a), field, detail))
            }
            _ => None,
        };
    }
    if sorted {
        if let Some(d) = first {
            return Ok(d);
        }
    } else if digests[0] != digests[1] {
        let (field, detail) = if digests[0].count != digests[1].count {
            (
                "count",
                format!(
                    "the input holds {} records, the dataset {}",
                    digests[0].count, digests[1].count
                ),
            )
        } else {
            (
                "records",
                format!(
                    "the same number ({n}) but not the same records (the input is not \
                     coordinate-sorted, so where they differ cannot be named: sort it with \
                     `samtools sort` and compare again)"
                ),
            )
        };
        return Ok(differs(0, None, field, detail));
    }
    Ok(Comparison::Same {
        records: n,
        in_order: sorted,
    })
}

fn differs(record: u64, rec: Option<&Record>, field: &'static str, detail: String) -> Comparison {
    Comparison::Differs(Difference {
        record,
        name: rec.map(|r| String::from_utf8_lossy(r.name()).into_owned()),
        field,
        detail,
    })
}

/// Coordinate order as the dataset stores it: references in header order, unplaced last.
fn sort_key(r: &Record) -> (u32, i64) {
    (r.ref_id() as u32, r.pos() as i64)
}

/// Count and two wrapping sums of independent 64-bit hashes of each record's bytes: equal for
/// equal multisets whatever the order, and unequal otherwise but with negligible probability.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Digest {
    count: u64,
    sums: [u64; 2],
}

impl Digest {
    fn add(&mut self, r: &Record) {
        self.count += 1;
        for (seed, sum) in self.sums.iter_mut().enumerate() {
            let mut h = std::hash::DefaultHasher::new();
            h.write_u64(seed as u64);
            h.write(r.as_bytes());
            *sum = sum.wrapping_add(h.finish());
        }
    }
}

/// A record field read as a number, and as bytes.
type NumberField = fn(&Record) -> i64;
type BytesField = fn(&Record) -> &[u8];

/// The first SAM field in which two records differ, with both values.
fn first_different_field(a: &Record, b: &Record) -> (&'static str, String) {
    if a.name() != b.name() {
        let name = |r: &Record| String::from_utf8_lossy(r.name()).into_owned();
        return (
            "QNAME",
            format!("input {:?}, dataset {:?}", name(a), name(b)),
        );
    }
    // Positions as SAM prints them (1-based).
    let numbers: [(&'static str, NumberField); 8] = [
        ("FLAG", |r| r.flag() as i64),
        ("RNAME", |r| r.ref_id() as i64),
        ("POS", |r| r.pos() as i64 + 1),
        ("MAPQ", |r| r.mapq() as i64),
        ("RNEXT", |r| r.next_ref_id() as i64),
        ("PNEXT", |r| r.next_pos() as i64 + 1),
        ("TLEN", |r| r.tlen() as i64),
        ("BIN", |r| r.bin() as i64),
    ];
    let bytes: [(&'static str, BytesField); 4] = [
        ("CIGAR", Record::raw_cigar),
        ("SEQ", Record::packed_seq),
        ("QUAL", Record::qual),
        ("TAGS", Record::aux),
    ];
    let hex = |s: &[u8]| {
        let h: String = s.iter().take(24).map(|b| format!("{b:02x}")).collect();
        if s.len() > 24 {
            format!("{h}… ({} bytes)", s.len())
        } else {
            h
        }
    };
    // The bin last: it follows from POS and CIGAR, so they explain a different one better.
    for &(field, get) in &numbers[..7] {
        if get(a) != get(b) {
            return (field, format!("input {}, dataset {}", get(a), get(b)));
        }
    }
    for (field, get) in bytes {
        if get(a) != get(b) {
            return (
                field,
                format!("input {}, dataset {}", hex(get(a)), hex(get(b))),
            );
        }
    }
    let (field, get) = numbers[7];
    (field, format!("input {}, dataset {}", get(a), get(b)))
}

/// The first line in which two header texts differ, shown from both.
fn first_different_line(ds: &str, input: &str) -> String {
    let (mut a, mut b) = (input.lines(), ds.lines());
    let mut line = 1;
    loop {
        match (a.next(), b.next()) {
            (None, None) => return "the texts agree but the reference lists differ".into(),
            (Some(x), Some(y)) if x == y => line += 1,
            (x, y) => {
                return format!(
                    "line {line}: input {:?}, dataset {:?}",
                    x.unwrap_or("(end)"),
                    y.unwrap_or("(end)")
                );
            }
        }
    }
}
