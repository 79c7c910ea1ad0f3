//! Lossless round trips over the SAM/BAM fidelity suites of htslib and samtools
//! (Debian htslib-test and samtools-test), plus generated extreme records.
//!
//! For every `.sam` file that `samtools view -b` accepts:
//!   SAM --samtools--> orig.bam --bams3 convert--> dataset --bams3 export--> out.bam
//!   SAM --bams3 convert (SAM input)--> dataset --bams3 export--> out.bam
//! and `samtools view` / `samtools view -H` of orig.bam and out.bam must agree.
//! For every file samtools rejects, `bams3 convert` must fail cleanly.

mod common;

use common::*;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const BEYOND_BAM: &str = "positions or TLEN beyond 2^31: valid SAM that BAM cannot hold \
     (samtools view -b: 'Positional data is too large for BAM format'); BAMS3 follows BAM's \
     limits, so bams3 convert must refuse it cleanly";

/// Files that legitimately cannot be represented in BAM (and so in BAMS3), with the
/// reason, as `suite:relative/path`. For these, samtools must refuse to write BAM
/// (else this list is stale) and bams3 convert must fail cleanly.
const UNREPRESENTABLE: &[(&str, &str)] = &[
    ("htslib:longrefs/longref.sam", BEYOND_BAM),
    ("htslib:longrefs/longref_itr.expected.sam", BEYOND_BAM),
    ("htslib:longrefs/longref_multi.expected.sam", BEYOND_BAM),
    ("samtools:fixmate/8_isize_overflow_64bit.sam", BEYOND_BAM),
    ("samtools:large_pos/longref.sam", BEYOND_BAM),
    ("samtools:large_pos/longref2.sam", BEYOND_BAM),
    ("samtools:large_pos/longref3.expected.sam", BEYOND_BAM),
    ("samtools:large_pos/longref3.sam", BEYOND_BAM),
    ("samtools:large_pos/longref_idx.expected.sam", BEYOND_BAM),
    ("samtools:large_pos/longref_name.sam", BEYOND_BAM),
    ("samtools:large_pos/merge.expected.sam", BEYOND_BAM),
    ("samtools:markdup/7_mark_supp_dup.expected.sam", BEYOND_BAM),
    ("samtools:markdup/7_mark_supp_dup.sam", BEYOND_BAM),
    ("samtools:stat/1_map_cigar_large.sam", BEYOND_BAM),
    ("samtools:stat/2_equal_cigar_full_seq_large.sam", BEYOND_BAM),
    ("samtools:stat/3_map_cigar_equal_seq_large.sam", BEYOND_BAM),
    ("samtools:stat/4_X_cigar_full_seq_large.sam", BEYOND_BAM),
    ("samtools:stat/5_insert_cigar_large.sam", BEYOND_BAM),
    ("samtools:stat/7_supp_large.sam", BEYOND_BAM),
    ("samtools:stat/8_secondary_large.sam", BEYOND_BAM),
];

/// Every `.sam` file below the suite directories, sorted.
fn suite_files() -> Vec<PathBuf> {
    require_suites();
    let mut files = Vec::new();
    for d in SUITE_DIRS {
        let mut stack = vec![PathBuf::from(d)];
        while let Some(dir) = stack.pop() {
            let mut entries: Vec<_> = fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "sam") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    files
}

fn short_name(p: &Path) -> String {
    for d in SUITE_DIRS {
        if let Ok(rel) = p.strip_prefix(d) {
            let suite = if d.contains("htslib") {
                "htslib"
            } else {
                "samtools"
            };
            return format!("{suite}:{}", rel.display());
        }
    }
    p.display().to_string()
}

fn unrepresentable(p: &Path) -> Option<&'static str> {
    let name = short_name(p);
    UNREPRESENTABLE
        .iter()
        .find(|(f, _)| name == *f)
        .map(|(_, why)| *why)
}

#[derive(Debug)]
enum Outcome {
    RoundTripped,
    RejectedCleanly,
    Unrepresentable,
    Failed(String),
}

/// Converts `input` with bams3, exports it and compares with `oracle_bam`.
fn roundtrip_one(input: &Path, oracle_bam: &Path, tmp: &TempDir, tag: &str) -> Result<(), String> {
    let ds = tmp.join(format!("{tag}.bams3"));
    let out_bam = tmp.join(format!("{tag}.out.bam"));
    let mut cmd = bams3();
    cmd.arg("convert").arg(input).arg(&ds);
    let out = run(&mut cmd);
    if !out.status.success() || panicked(&out) {
        return Err(format!(
            "`{}` failed ({}): {}",
            describe(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut cmd = bams3();
    cmd.arg("export").arg(&ds).arg(&out_bam);
    let out = run(&mut cmd);
    if !out.status.success() || panicked(&out) {
        return Err(format!(
            "`{}` failed ({}): {}",
            describe(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // samtools must be able to read what we wrote.
    let mut cmd = samtools();
    cmd.args(["view", "-c"]).arg(&out_bam);
    let out = run(&mut cmd);
    if !out.status.success() {
        return Err(format!(
            "samtools cannot read the export of {tag}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    match compare_roundtrip(oracle_bam, &out_bam) {
        None => Ok(()),
        Some(d) => Err(format!(
            "{tag}: `bams3 convert {}` + export differs from samtools: {d}",
            input.display()
        )),
    }
}

fn check_file(sam: &Path) -> Outcome {
    let tmp = TempDir::new(&short_name(sam));
    let orig = tmp.join("orig.bam");
    let mut cmd = samtools();
    cmd.args(["view", "-b", "--no-PG", "-o"])
        .arg(&orig)
        .arg(sam);
    let accepted = run(&mut cmd).status.success();

    let known_unrepresentable = unrepresentable(sam).is_some();
    if known_unrepresentable && accepted {
        return Outcome::Failed(
            "listed in UNREPRESENTABLE but samtools writes it as BAM: update the list".into(),
        );
    }

    if !accepted {
        let ds = tmp.join("rejected.bams3");
        let mut cmd = bams3();
        cmd.arg("convert").arg(sam).arg(&ds);
        let out = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if panicked(&out) {
            return Outcome::Failed(format!("PANIC: {}\n{stderr}", describe(&cmd)));
        }
        if out.status.success() {
            return Outcome::Failed(format!(
                "samtools rejects it but `{}` succeeded",
                describe(&cmd)
            ));
        }
        let left = find_metadata(tmp.path());
        if !left.is_empty() {
            return Outcome::Failed(format!(
                "failed `{}` left {}",
                describe(&cmd),
                left[0].display()
            ));
        }
        return if known_unrepresentable {
            Outcome::Unrepresentable
        } else {
            Outcome::RejectedCleanly
        };
    }

    let mut errors = Vec::new();
    if let Err(e) = roundtrip_one(&orig, &orig, &tmp, "bam-input") {
        errors.push(e);
    }
    if let Err(e) = roundtrip_one(sam, &orig, &tmp, "sam-input") {
        errors.push(e);
    }
    if errors.is_empty() {
        Outcome::RoundTripped
    } else {
        Outcome::Failed(errors.join("\n  "))
    }
}

#[test]
fn suites_roundtrip() {
    let files = suite_files();
    assert!(
        files.len() > 100,
        "only {} .sam files in the suites: {FETCH_HINT}",
        files.len()
    );
    // Two workers: the machine has two cores.
    let results: Mutex<Vec<(PathBuf, Outcome)>> = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(f) = files.get(i) else { break };
                let o = check_file(f);
                results.lock().unwrap().push((f.clone(), o));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));

    let (mut ok, mut rejected, mut unrep) = (0, 0, 0);
    let mut failures = String::new();
    let mut nfail = 0;
    for (f, o) in &results {
        match o {
            Outcome::RoundTripped => ok += 1,
            Outcome::RejectedCleanly => rejected += 1,
            Outcome::Unrepresentable => unrep += 1,
            Outcome::Failed(msg) => {
                nfail += 1;
                let _ = writeln!(failures, "FAIL {}:\n  {msg}", short_name(f));
            }
        }
    }
    for (f, why) in UNREPRESENTABLE {
        eprintln!("unrepresentable: {f}: {why}");
    }
    eprintln!(
        "suites: {} files: {ok} round-tripped (BAM and SAM input), {rejected} rejected by \
         samtools and by bams3, {unrep} unrepresentable in BAM (refused cleanly), {nfail} failed",
        results.len()
    );
    assert!(nfail == 0, "{nfail} suite files failed:\n{failures}");
}

/// Random bases and qualities of length `n`.
fn seq_qual(rng: &mut Lcg, n: usize) -> (String, String) {
    let bases = b"ACGT";
    let seq: String = (0..n)
        .map(|_| bases[rng.below(4) as usize] as char)
        .collect();
    let qual: String = (0..n)
        .map(|_| (b'!' + 2 + rng.below(40) as u8) as char)
        .collect();
    (seq, qual)
}

#[test]
fn huge_cigar_and_long_read_roundtrip() {
    let tmp = TempDir::new("huge");
    let mut rng = Lcg::new(7);
    let mut sam = String::new();
    sam.push_str("@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chrL\tLN:1000000\n");
    sam.push_str("@RG\tID:rg1\tSM:sample\n");

    // A 100,000 bp read.
    let (s, q) = seq_qual(&mut rng, 100_000);
    let _ = writeln!(
        sam,
        "long100k\t0\tchrL\t100\t60\t100000M\t*\t0\t0\t{s}\t{q}\tRG:Z:rg1\tNM:i:0"
    );
    // A read whose CIGAR has 70,000 operations (more than BAM's 65,535 limit, so
    // samtools stores it as a placeholder CIGAR plus a CG:B,I tag).
    let cigar = "2M1I2M1D".repeat(17_500);
    let (s, q) = seq_qual(&mut rng, 17_500 * 5);
    let _ = writeln!(
        sam,
        "cigar70k\t0\tchrL\t200\t60\t{cigar}\t=\t5000\t4900\t{s}\t{q}\tRG:Z:rg1"
    );
    // Its mate and a few ordinary reads around it.
    for (i, pos) in [300u32, 5000, 5000, 120_000].iter().enumerate() {
        let (s, q) = seq_qual(&mut rng, 150);
        let flag = if i == 1 { 16 } else { 0 };
        let _ = writeln!(
            sam,
            "r{i}\t{flag}\tchrL\t{pos}\t{}\t150M\t*\t0\t0\t{s}\t{q}\tXA:f:1.5\tXB:B:s,-1,2,3",
            20 + i
        );
    }
    let (s, q) = seq_qual(&mut rng, 50);
    let _ = writeln!(sam, "unmapped\t4\t*\t0\t0\t*\t*\t0\t0\t{s}\t{q}");

    let sam_path = tmp.join("huge.sam");
    fs::write(&sam_path, sam).unwrap();
    let orig = tmp.join("orig.bam");
    ok(samtools()
        .args(["view", "-b", "--no-PG", "-o"])
        .arg(&orig)
        .arg(&sam_path));
    // Sanity: samtools gives the 70,000-operation CIGAR back.
    let recs = sam_records(&orig, &[]);
    assert!(
        recs.iter().any(|r| r.contains(&cigar)),
        "samtools lost the long CIGAR"
    );

    let mut errors = Vec::new();
    for (input, tag) in [(&orig, "bam-input"), (&sam_path, "sam-input")] {
        if let Err(e) = roundtrip_one(input, &orig, &tmp, tag) {
            errors.push(e);
        }
    }
    // A region query over the long reads returns them exactly as samtools does.
    let ds = tmp.join("bam-input.bams3");
    let idx = tmp.join("orig.bam");
    ok(samtools().arg("index").arg(&idx));
    for region in ["chrL:50000-50001", "chrL:1-150", "chrL:80000-90000", "chrL"] {
        let expected = sam_region_records(&idx, &[], &[region]);
        let got = lines(&ok(bams3().arg("query").arg(&ds).arg(region)));
        if let Some(d) = first_diff(&expected, &got) {
            errors.push(format!("bams3 query {} {region}: {d}", ds.display()));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
