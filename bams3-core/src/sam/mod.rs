//! SAM text ⇄ BAM record bytes, byte-compatible with htslib 1.16 (`samtools view`).
//!
//! [`Record`](crate::Record) is always the exact bytes of a BAM record, so SAM input is encoded
//! the way `samtools view -b` would encode it and SAM output is what `samtools view` would print
//! for the same bytes. That keeps SAM → BAMS3 → BAM and BAM → BAMS3 → SAM interchangeable with
//! the samtools route, which is what users compare us against.
//!
//! Where htslib merely warns and rewrites a record (an `RNAME` missing from the header becomes
//! unmapped), this module refuses the line instead: silently changing alignments is not
//! lossless. Normalisations that the BAM format itself forces (unplaced reads get the unmapped
//! flag, long CIGARs move to a `CG` tag) are applied exactly as htslib applies them.
//!
//! ```
//! use bams3_core::{sam, Header};
//! let header = Header::from_sam_text("@SQ\tSN:chr1\tLN:1000\n").unwrap();
//! let line = b"r1\t0\tchr1\t100\t60\t4M\t*\t0\t0\tACGT\tIIII\tNM:i:0";
//! let rec = sam::parse_record(line, &header).unwrap();
//! let mut out = Vec::new();
//! sam::format_record(&rec, &header, &mut out).unwrap();
//! assert_eq!(out, [&line[..], b"\n"].concat());
//! ```

mod format;
mod parse;
mod reader;

pub use format::format_record;
pub use parse::parse_record;
pub use reader::Reader;

/// BAM 4-bit base codes, indexed by code (`=ACMGRSVTWYHKDBN`).
const NT16: &[u8; 16] = b"=ACMGRSVTWYHKDBN";

/// CIGAR operation characters, indexed by BAM op code.
const CIGAR_OPS: &[u8; 9] = b"MIDNSHP=X";

/// Tests against the real `samtools` 1.16 and the htslib/samtools test corpora. They fail (not
/// skip) when samtools is missing, because they are the evidence of byte compatibility.
#[cfg(test)]
mod samtools_tests {
    use std::io::Read;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::Record;

    /// Where Debian's `htslib-test` and `samtools-test` packages put their test files.
    const CORPORA: [&str; 2] = ["/usr/share/htslib-test/test", "/usr/share/samtools/test"];

    /// Files `samtools view` accepts (often with a warning) that we refuse on purpose.
    const WE_REJECT: &[(&str, &str)] = &[];

    /// Files `samtools view` rejects but we accept.
    const WE_ACCEPT: &[(&str, &str)] = &[];

    /// Files both accept whose records legitimately differ.
    const DIFFER: &[(&str, &str)] = &[];

    fn samtools(args: &[&str]) -> std::process::Output {
        Command::new("samtools")
            .args(args)
            .output()
            .expect("samtools 1.16 must be on PATH for these tests (apt-get install samtools)")
    }

    fn sam_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (apt-get install htslib-test samtools-test)",
                    dir.display()
                )
            })
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                sam_files(&p, out);
            } else if p.extension().is_some_and(|e| e == "sam") {
                out.push(p);
            }
        }
    }

    /// The records of a BAM file, as the bytes after each `block_size`.
    fn bam_records(bam: &[u8]) -> Vec<Vec<u8>> {
        let mut data = Vec::new();
        noodles_bgzf::io::Reader::new(bam)
            .read_to_end(&mut data)
            .expect("samtools wrote valid BGZF");
        let i32_at = |at: usize| i32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        assert_eq!(&data[..4], b"BAM\x01");
        let mut at = 8 + i32_at(4);
        let n_ref = i32_at(at);
        at += 4;
        for _ in 0..n_ref {
            at += 4 + i32_at(at) + 4;
        }
        let mut records = Vec::new();
        while at < data.len() {
            let n = i32_at(at);
            records.push(data[at + 4..at + 4 + n].to_vec());
            at += 4 + n;
        }
        records
    }

    /// Our reading of `bytes`: the formatted SAM text and the BAM record bytes.
    fn ours(bytes: &[u8]) -> crate::Result<(Vec<u8>, Vec<Vec<u8>>)> {
        let mut reader = Reader::new(bytes)?;
        let mut text = Vec::new();
        let mut records = Vec::new();
        while let Some(rec) = reader.read_record()? {
            format_record(&rec, reader.header(), &mut text)?;
            records.push(rec.into_bytes());
        }
        Ok((text, records))
    }

    fn first_difference<T: PartialEq + std::fmt::Debug>(a: &[T], b: &[T]) -> String {
        match a.iter().zip(b).position(|(x, y)| x != y) {
            Some(i) => format!("record {}: ours {:?}\n   samtools {:?}", i + 1, a[i], b[i]),
            None => format!("{} records vs samtools' {}", a.len(), b.len()),
        }
    }

    fn listed(list: &[(&str, &str)], path: &str) -> bool {
        list.iter().any(|(p, _)| *p == path)
    }

    #[test]
    fn corpus_matches_samtools_byte_for_byte() {
        let mut files = Vec::new();
        for dir in CORPORA {
            sam_files(Path::new(dir), &mut files);
        }
        assert!(files.len() > 100, "only {} .sam files found", files.len());
        let (mut matched, mut both_reject) = (0, 0);
        let mut used: Vec<&str> = Vec::new();
        let mut problems = Vec::new();
        for file in &files {
            let path = file.to_str().unwrap();
            let bytes = std::fs::read(file).unwrap();
            let view = samtools(&["view", path]);
            let mine = ours(&bytes);
            if !view.status.success() {
                match (&mine, listed(WE_ACCEPT, path)) {
                    (Err(_), false) => both_reject += 1,
                    (Ok(_), true) => used.push(path),
                    (Ok(_), false) => {
                        problems.push(format!("{path}: samtools rejects it, we accept it"))
                    }
                    (Err(e), true) => {
                        problems.push(format!("{path}: listed in WE_ACCEPT but we reject it: {e}"))
                    }
                }
                continue;
            }
            let (text, records) = match mine {
                Err(e) => {
                    if listed(WE_REJECT, path) {
                        used.push(path);
                    } else {
                        problems.push(format!("{path}: samtools accepts it, we reject it: {e}"));
                    }
                    continue;
                }
                Ok(v) => v,
            };
            let bam = samtools(&["view", "-b", "--no-PG", path]);
            assert!(bam.status.success(), "{path}: samtools view -b failed");
            let want_lines: Vec<&[u8]> = view.stdout.split(|&c| c == b'\n').collect();
            let got_lines: Vec<&[u8]> = text.split(|&c| c == b'\n').collect();
            let want_records = bam_records(&bam.stdout);
            let mut diffs = Vec::new();
            if got_lines != want_lines {
                let show = |l: &[&[u8]]| {
                    l.iter()
                        .map(|x| String::from_utf8_lossy(x).into_owned())
                        .collect::<Vec<_>>()
                };
                diffs.push(format!(
                    "SAM text: {}",
                    first_difference(&show(&got_lines), &show(&want_lines))
                ));
            }
            if records != want_records {
                diffs.push(format!(
                    "BAM bytes: {}",
                    first_difference(&records, &want_records)
                ));
            }
            match (diffs.is_empty(), listed(DIFFER, path)) {
                (true, false) => matched += 1,
                (false, true) => used.push(path),
                (true, true) => problems.push(format!("{path}: listed in DIFFER but matches")),
                (false, false) => problems.push(format!("{path}: {}", diffs.join("\n  "))),
            }
        }
        for (path, _) in WE_REJECT.iter().chain(WE_ACCEPT).chain(DIFFER) {
            if !used.contains(path) && !problems.iter().any(|p| p.starts_with(path)) {
                problems.push(format!(
                    "{path}: listed but not in that situation (stale entry?)"
                ));
            }
        }
        eprintln!(
            "{} .sam files: {matched} match samtools exactly, {both_reject} rejected by both, {} listed with reasons",
            files.len(),
            used.len()
        );
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }

    #[test]
    fn cigar_of_70000_ops_round_trips_through_samtools() {
        let n = 70_000;
        let cigar: String = (0..n / 2)
            .map(|i| if i % 2 == 0 { "2M1I" } else { "1D1M" })
            .collect();
        let l_seq = (n / 4) * (3 + 1);
        let seq: String = "ACGT".repeat(l_seq / 4);
        let qual: String = "I".repeat(l_seq);
        let header_text = "@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000000\n";
        let line =
            format!("long\t0\tchr1\t1001\t60\t{cigar}\t*\t0\t0\t{seq}\t{qual}\tNM:i:3\tRG:Z:x");
        let header = crate::Header::from_sam_text(header_text).unwrap();

        let rec = parse_record(line.as_bytes(), &header).unwrap();
        assert!(rec.has_long_cigar());
        let mut text = Vec::new();
        format_record(&rec, &header, &mut text).unwrap();
        assert!(
            text == format!("{line}\n").as_bytes(),
            "parse → format changed the line"
        );

        let dir = std::env::temp_dir().join(format!("bams3-sam-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sam = dir.join("long.sam");
        std::fs::write(&sam, format!("{header_text}{line}\n")).unwrap();
        let sam = sam.to_str().unwrap();
        let view = samtools(&["view", sam]);
        let bam = samtools(&["view", "-b", "--no-PG", sam]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(view.status.success() && bam.status.success());
        assert!(
            view.stdout == text,
            "samtools view prints the line differently"
        );
        let want = bam_records(&bam.stdout);
        assert_eq!(want.len(), 1);
        assert!(
            want[0] == rec.as_bytes(),
            "BAM bytes differ from samtools view -b"
        );
        // And the samtools-written bytes format back to the same line.
        let theirs = Record::from_bytes(want[0].clone()).unwrap();
        let mut again = Vec::new();
        format_record(&theirs, &header, &mut again).unwrap();
        assert!(again == text);
    }
}
