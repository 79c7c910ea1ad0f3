//! Target sets: the intervals a query selects, per reference, as samtools' region options
//! combine them (`-L FILE` alone, `-M` with regions, `-M -L` with and without regions).

use super::{Bed, Region};
use crate::{Error, Header, Result};

/// Sorted, merged intervals per reference (and whether the unplaced reads are wanted).
///
/// Overlap is samtools' test: a record `[pos, end)` (end as `bam_endpos`) overlaps `[beg, end)`
/// when `end > beg && interval_end > pos`, so an empty interval `[b, b)` selects the records
/// spanning `b`.
///
/// ```
/// use bams3_core::{region::{Region, Targets}, Header};
/// let h = Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n").unwrap();
/// let regions = [Region::parse("chr1:101-200", &h).unwrap(), Region::parse("chr1:150-300", &h).unwrap()];
/// let t = Targets::union_of_regions(&regions, &h);
/// assert!(t.overlaps(0, 250, 251));
/// assert!(!t.overlaps(0, 300, 301));
/// assert_eq!(t.intervals(0), &[(100, 300)]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    by_ref: Vec<Vec<(i64, i64)>>,
    unplaced: bool,
}

impl Targets {
    fn empty(header: &Header) -> Targets {
        Targets {
            by_ref: vec![Vec::new(); header.references.len()],
            unplaced: false,
        }
    }

    /// The BED's intervals on the header's references (names not in the header are ignored, as
    /// samtools ignores them).
    pub fn from_bed(bed: &Bed, header: &Header) -> Targets {
        let mut t = Targets::empty(header);
        for i in bed.intervals() {
            if i.name == "*" {
                t.unplaced = true;
            } else if let Some(id) = header.reference_index(&i.name) {
                t.by_ref[id].push((i.beg, i.end));
            }
        }
        t.unify();
        t
    }

    /// The union of `regions` (`samtools view -M` with regions and no BED).
    pub fn union_of_regions(regions: &[Region], header: &Header) -> Targets {
        let mut t = Targets::empty(header);
        t.add_regions(regions);
        t.unify();
        t
    }

    /// `self` restricted to `regions` (`samtools view -M -L FILE REGION...`): each interval
    /// clipped to each region it overlaps (strictly, as samtools' filter does).
    pub fn within_regions(&self, regions: &[Region], header: &Header) -> Targets {
        let limits = Targets::union_of_regions(regions, header);
        let mut t = Targets::empty(header);
        for (id, ivs) in self.by_ref.iter().enumerate() {
            for &(qb, qe) in limits.intervals(id) {
                for &(pb, pe) in ivs {
                    if pe > qb && pb < qe {
                        t.by_ref[id].push((pb.max(qb), pe.min(qe)));
                    }
                }
            }
        }
        t.unplaced = self.unplaced && limits.unplaced;
        t.unify();
        t
    }

    fn add_regions(&mut self, regions: &[Region]) {
        for r in regions {
            match *r {
                Region::Span { ref_id, beg, end } => self.by_ref[ref_id].push((beg, end)),
                Region::Unplaced => self.unplaced = true,
            }
        }
    }

    /// Sorts each reference's intervals and merges those that overlap or touch (samtools'
    /// `bed_unify`), which leaves the set of records they select unchanged.
    fn unify(&mut self) {
        for ivs in &mut self.by_ref {
            ivs.sort_unstable();
            let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ivs.len());
            for &(b, e) in ivs.iter() {
                match merged.last_mut() {
                    Some(last) if last.1 >= b => last.1 = last.1.max(e),
                    _ => merged.push((b, e)),
                }
            }
            *ivs = merged;
        }
    }

    /// The merged intervals of reference `ref_id`, in order.
    pub fn intervals(&self, ref_id: usize) -> &[(i64, i64)] {
        self.by_ref.get(ref_id).map_or(&[], Vec::as_slice)
    }

    /// Whether the unplaced reads (`*`) are selected.
    pub fn unplaced(&self) -> bool {
        self.unplaced
    }

    /// Whether nothing at all is selected.
    pub fn is_empty(&self) -> bool {
        !self.unplaced && self.by_ref.iter().all(Vec::is_empty)
    }

    /// Whether a record on `ref_id` spanning `[pos, end)` overlaps a target.
    pub fn overlaps(&self, ref_id: usize, pos: i64, end: i64) -> bool {
        let ivs = self.intervals(ref_id);
        // Merged intervals are disjoint, so their ends increase with their starts.
        let i = ivs.partition_point(|&(_, e)| e <= pos);
        ivs.get(i).is_some_and(|&(b, _)| b < end)
    }

    /// The smallest interval holding every target of `ref_id` that overlaps `[beg, end)`.
    pub fn hull_within(&self, ref_id: usize, beg: i64, end: i64) -> Option<(i64, i64)> {
        let ivs = self.intervals(ref_id);
        let first = ivs.partition_point(|&(_, e)| e <= beg);
        let last = ivs.partition_point(|&(b, _)| b < end);
        (first < last).then(|| (ivs[first].0, ivs[last - 1].1))
    }
}

/// Which records a query returns, from samtools view's region arguments, `-L FILE` and `-M`.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Each region in turn (a record overlapping two regions comes twice, as in samtools), or
    /// every record when there are none; with `within`, only the placed records overlapping
    /// one of its targets (`-L FILE` without `-M`).
    Regions {
        /// The regions, in the order given.
        regions: Vec<Region>,
        /// The BED's targets that records must also overlap.
        within: Option<Targets>,
    },
    /// Each record once, references in header order then the unplaced reads, overlapping
    /// any target (`-M`, samtools' multi-region iterator).
    Targets(Targets),
}

impl Selection {
    /// The selection samtools view makes from `regions`, an optional BED and `-M`.
    ///
    /// ```
    /// use bams3_core::{region::{Bed, Region, Selection}, Header};
    /// let h = Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n").unwrap();
    /// let bed = Bed::parse("chr1\t0\t100\n".as_bytes(), "t.bed").unwrap();
    /// let r = [Region::parse("chr1:51-500", &h).unwrap()];
    /// match Selection::new(&r, Some(&bed), true, &h).unwrap() {
    ///     Selection::Targets(t) => assert_eq!(t.intervals(0), &[(50, 100)]),
    ///     _ => unreachable!(),
    /// }
    /// assert!(Selection::new(&[], None, true, &h).is_err());
    /// ```
    pub fn new(
        regions: &[Region],
        bed: Option<&Bed>,
        multi: bool,
        header: &Header,
    ) -> Result<Selection> {
        let bed_targets = bed.map(|b| Targets::from_bed(b, header));
        if !multi {
            return Ok(Selection::Regions {
                regions: regions.to_vec(),
                within: bed_targets,
            });
        }
        let targets = match (bed_targets, regions.is_empty()) {
            (None, true) => {
                return Err(Error::Invalid(
                    "-M needs regions or a BED file (-L FILE)".into(),
                ));
            }
            (None, false) => Targets::union_of_regions(regions, header),
            (Some(t), true) => t,
            (Some(t), false) => t.within_regions(regions, header),
        };
        // samtools' multi-region iterator refuses an empty interval left on its own after
        // merging (`hts_itr_multi_bam`); refusing it too keeps `-M` output identical.
        for (id, ivs) in targets.by_ref.iter().enumerate() {
            if let Some(&(b, _)) = ivs.iter().find(|&&(b, e)| b >= e) {
                return Err(Error::Invalid(format!(
                    "-M cannot use the empty interval {}:{b}-{b} (0-based); give it a length or drop -M",
                    header.references[id].name
                )));
            }
        }
        if targets.is_empty() {
            // samtools aborts here too ("Region list is empty").
            return Err(Error::Invalid(
                "the region list is empty: no BED interval lies on a reference of the dataset and inside the regions".into(),
            ));
        }
        Ok(Selection::Targets(targets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header::from_sam_text("@SQ\tSN:a\tLN:1000\n@SQ\tSN:b\tLN:1000\n").unwrap()
    }

    #[test]
    fn empty_interval_selects_records_spanning_it() {
        let bed = Bed::parse("a\t10\t10\n".as_bytes(), "t").unwrap();
        let t = Targets::from_bed(&bed, &header());
        assert!(t.overlaps(0, 5, 15));
        assert!(!t.overlaps(0, 10, 15));
        assert!(!t.overlaps(0, 5, 10));
    }

    #[test]
    fn touching_intervals_merge_and_unknown_names_are_ignored() {
        let bed = Bed::parse("a 0 10\na 10 20\nzz 0 5\nb 7 8\n".as_bytes(), "t").unwrap();
        let t = Targets::from_bed(&bed, &header());
        assert_eq!(t.intervals(0), &[(0, 20)]);
        assert_eq!(t.intervals(1), &[(7, 8)]);
        assert_eq!(t.hull_within(0, 5, 6), Some((0, 20)));
        assert_eq!(t.hull_within(1, 0, 7), None);
    }

    #[test]
    fn intersection_keeps_only_references_in_both() {
        let h = header();
        let bed = Bed::parse("a 0 100\nb 0 100\n".as_bytes(), "t").unwrap();
        let regions = [
            Region::parse("a:51-60", &h).unwrap(),
            Region::parse("*", &h).unwrap(),
        ];
        let sel = Selection::new(&regions, Some(&bed), true, &h).unwrap();
        let Selection::Targets(t) = sel else {
            panic!("multi")
        };
        assert_eq!(t.intervals(0), &[(50, 60)]);
        assert!(t.intervals(1).is_empty());
        assert!(!t.unplaced());
        let none = [Region::parse("a:500-600", &h).unwrap()];
        assert!(Selection::new(&none, Some(&bed), true, &h).is_err());
    }
}
