//! SAM text ⇄ BAM record bytes, byte-compatible with htslib 1.16 (`samtools view`).
//!
//! [`Record`](crate::Record) is always the exact bytes of a BAM record, so SAM input is encoded
//! the way `samtools view -b` would encode it and SAM output is what `samtools view` would print
//! for the same bytes. That keeps SAM → BAMS3 → BAM and BAM → BAMS3 → SAM interchangeable with
//! the samtools route, which is what users compare us against.
//!
//! htslib's record normalisations are applied exactly as it applies them, because BAM readers
//! rely on them and byte identity with samtools is the point: `POS` 0 clears `RNAME`, `PNEXT` 0
//! clears `RNEXT`, unplaced reads and reads without a CIGAR get the unmapped flag, and CIGARs
//! longer than 65,535 operations move to a `CG` tag, and SEQ characters BAM has no code for (`U`,
//! `.`) are stored as `N` ([`Reader::replaced_bases`] counts them). Where htslib instead guesses
//! at broken input (an `RNAME` missing from the header becomes "unmapped", junk after a number
//! is ignored, an empty number is 0), this module refuses the line with an error.
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
pub use parse::{parse_record, parse_record_with};
pub use reader::{Reader, ReferenceNames, Replaced};

/// BAM 4-bit base codes, indexed by code (`=ACMGRSVTWYHKDBN`).
const NT16: &[u8; 16] = b"=ACMGRSVTWYHKDBN";

/// CIGAR operation characters, indexed by BAM op code (`B`, "back", is htslib's op 9).
const CIGAR_OPS: &[u8; 10] = b"MIDNSHP=XB";

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

    /// Files with positions beyond BAM's 32-bit fields. `samtools view` prints them (htslib
    /// holds 64-bit positions in memory) but `samtools view -b` refuses them too, and a
    /// [`Record`] is BAM bytes, so we reject them; the test checks that `-b` fails.
    const BEYOND_BAM: &[&str] = &[
        "/usr/share/htslib-test/test/longrefs/longref.sam",
        "/usr/share/htslib-test/test/longrefs/longref_itr.expected.sam",
        "/usr/share/htslib-test/test/longrefs/longref_multi.expected.sam",
        "/usr/share/samtools/test/fixmate/8_isize_overflow_64bit.sam",
        "/usr/share/samtools/test/large_pos/longref.sam",
        "/usr/share/samtools/test/large_pos/longref2.sam",
        "/usr/share/samtools/test/large_pos/longref3.expected.sam",
        "/usr/share/samtools/test/large_pos/longref3.sam",
        "/usr/share/samtools/test/large_pos/longref_idx.expected.sam",
        "/usr/share/samtools/test/large_pos/longref_name.sam",
        "/usr/share/samtools/test/large_pos/merge.expected.sam",
        "/usr/share/samtools/test/markdup/7_mark_supp_dup.expected.sam",
        "/usr/share/samtools/test/markdup/7_mark_supp_dup.sam",
        "/usr/share/samtools/test/stat/1_map_cigar_large.sam",
        "/usr/share/samtools/test/stat/2_equal_cigar_full_seq_large.sam",
        "/usr/share/samtools/test/stat/3_map_cigar_equal_seq_large.sam",
        "/usr/share/samtools/test/stat/4_X_cigar_full_seq_large.sam",
        "/usr/share/samtools/test/stat/5_insert_cigar_large.sam",
        "/usr/share/samtools/test/stat/7_supp_large.sam",
        "/usr/share/samtools/test/stat/8_secondary_large.sam",
    ];

    /// Files `samtools view` rejects but we accept.
    const WE_ACCEPT: &[(&str, &str)] = &[
        (
            "/usr/share/samtools/test/markdup/1_name_sort.expected.sam",
            "empty file: samtools cannot detect a format in zero bytes; we read it as a SAM file \
             with no header and no records",
        ),
        (
            "/usr/share/htslib-test/test/base_mods/MM-explicit.sam",
            "an @CO line separated by spaces: samtools reads it but fails when it re-parses the \
             header to add its @PG line (it works with --no-PG); we keep the comment verbatim",
        ),
        (
            "/usr/share/samtools/test/mpileup/1read.sam",
            "a bare '@SQ' line: samtools ignores it with a warning, then fails when it re-parses \
             the header to add its @PG line (it works with --no-PG); we ignore it too",
        ),
    ];

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
                    if BEYOND_BAM.contains(&path) {
                        let bam = samtools(&["view", "-b", "--no-PG", "-o", "/dev/null", path]);
                        if bam.status.success() {
                            problems.push(format!(
                                "{path}: in BEYOND_BAM but samtools writes it as BAM"
                            ));
                        }
                        used.push(path);
                    } else if listed(WE_REJECT, path) {
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
            // The same file with CRLF line ends must read identically (index_dos.sam already has
            // them, and matches samtools as it is).
            let crlf: Vec<u8> = bytes
                .split_inclusive(|&c| c == b'\n')
                .flat_map(|l| match l.strip_suffix(b"\n") {
                    Some(body) if !body.ends_with(b"\r") => [body, b"\r\n"].concat(),
                    _ => l.to_vec(),
                })
                .collect();
            match ours(&crlf) {
                Ok((_, r)) if r == records => {}
                Ok(_) => diffs.push("CRLF version reads differently".into()),
                Err(e) => diffs.push(format!("CRLF version fails: {e}")),
            }
            match (diffs.is_empty(), listed(DIFFER, path)) {
                (true, false) => matched += 1,
                (false, true) => used.push(path),
                (true, true) => problems.push(format!("{path}: listed in DIFFER but matches")),
                (false, false) => problems.push(format!("{path}: {}", diffs.join("\n  "))),
            }
        }
        let listed_paths = WE_REJECT
            .iter()
            .chain(WE_ACCEPT)
            .chain(DIFFER)
            .map(|(p, _)| p);
        for path in listed_paths.chain(BEYOND_BAM) {
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

    /// A scratch file that removes itself.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &[u8]) -> TempFile {
            let path =
                std::env::temp_dir().join(format!("bams3-sam-{}-{name}", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }
        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Hand-written corner cases, each compared with samtools record by record: htslib's
    /// normalisations, integer type choice, float printing, odd sequences, CG input.
    #[test]
    fn corner_cases_match_samtools() {
        let sam = "@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:100000\n@SQ\tSN:chr2\tLN:5000\n\
            pos0\t0\tchr1\t0\t60\t4M\t*\t0\t0\tACGT\tIIII\n\
            unplaced\t0\t*\t0\t0\t*\t*\t0\t0\tACGT\t*\n\
            pos0mate\t0\tchr1\t0\t60\t4M\t=\t10\t0\tACGT\tIIII\n\
            pnext0\t1\tchr1\t5\t60\t4M\tchr2\t0\t0\tACGT\tIIII\n\
            pnext0eq\t1\tchr1\t5\t60\t4M\t=\t0\t0\tACGT\tIIII\n\
            nocigar\t0\tchr1\t5\t60\t*\tchr2\t7\t0\tACGT\t*\n\
            iupac\t16\tchr1\t5\t0\t16M\t=\t5\t-3\t=ACMGRSVTWYHKDBN\t!\"#$%&'()*+,-./0\n\
            lower\t0\tchr2\t4999\t255\t1S1M2I\tchr1\t1\t0\tacgn\t*\n\
            onebase\t0\tchr1\t1\t1\t1M\t*\t0\t0\tA\t*\n\
            noseq\t0\tchr1\t100\t1\t3M2D4M\t*\t0\t0\t*\t*\n\
            back\t0\tchr1\t100\t1\t2M1B2M\t*\t0\t0\tACGT\t*\n\
            span\t0\tchr1\t16380\t1\t10M\t*\t0\t2147483647\tAAAAAAAAAA\t*\n\
            ints\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*\ta0:i:-0\ta1:i:+5\ta2:i:-128\ta3:i:-129\t\
            a4:i:-32768\ta5:i:-32769\ta6:i:65535\ta7:i:65536\ta8:i:2147483648\ta9:I:4294967295\t\
            b0:i:-2147483648\tb1:i:255\tb2:i:256\n\
            floats\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*\tf0:f:0\tf1:f:-0\tf2:f:3.14159265\t\
            f3:f:1e-10\tf4:f:1e38\tf5:f:0.1\tf6:f:123456789\tf7:f:inf\tf8:f:-1.5E+3\t\
            f9:f:0.0001\tfa:f:0.00001\tfb:f:999999.5\tfc:f:16777217\tfd:f:nan\tfe:f:-nan\tff:f:1e-40\tfg:f:-inf\n\
            arrays\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*\tB0:B:c\tB1:B:c,-128,127\tB2:B:C,0,255\t\
            B3:B:s,-32768,32767\tB4:B:S,65535\tB5:B:i,-2147483648,2147483647\t\
            B6:B:I,4294967295,0\tB7:B:f,0.1,1e20,-3e-05,0\n\
            strings\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*\tZ0:Z:\tZ1:Z:a b:c\tH0:H:\tH1:H:0aFF\tA0:A:~\n\
            cgin\t0\tchr1\t10\t60\t4S3N\t*\t0\t0\tACGT\t*\tXA:i:1\tCG:B:I,32,34,32\tXB:i:2\n\
            cgshort\t0\tchr1\t10\t60\t4S3N\t*\t0\t0\tACGT\t*\tCG:B:I,64\n\
            cgz\t0\tchr1\t10\t60\t4S3N\t*\t0\t0\tACGT\t*\tCG:Z:x\tCG:B:I,32,34,32\n";
        let file = TempFile::new("corner.sam", sam.as_bytes());
        let view = samtools(&["view", file.path()]);
        let bam = samtools(&["view", "-b", "--no-PG", file.path()]);
        assert!(view.status.success() && bam.status.success());
        let (text, records) = ours(sam.as_bytes()).unwrap();
        let want = bam_records(&bam.stdout);
        let ours_lines: Vec<_> = String::from_utf8(text)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        let their_lines: Vec<_> = String::from_utf8(view.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(records.len(), want.len());
        for (i, (a, b)) in ours_lines.iter().zip(&their_lines).enumerate() {
            assert_eq!(a, b, "SAM text of record {}", i + 1);
            assert_eq!(records[i], want[i], "BAM bytes of record {} ({a})", i + 1);
        }
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
