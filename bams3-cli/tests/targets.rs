//! `-L FILE` (BED targets) and `-M` (each record once over several regions) against samtools:
//! `bams3 query`, `bams3 export` and `bams3 depth -b` must print what `samtools view` /
//! `samtools depth` print with the same options, on real BAMs, with seeded random BED files
//! that use samtools' leniencies (comments, track lines, CRLF, one-position lines, touching,
//! overlapping and empty intervals, unknown reference names).

mod common;

use common::*;
use std::path::PathBuf;

struct Fixture {
    bam: PathBuf,
    ds: PathBuf,
    refs: Vec<(String, u64)>,
    /// (reference index, POS) of placed records, to aim intervals where reads are.
    placed: Vec<(usize, u64)>,
    tmp: TempDir,
}

fn fixture(name: &str) -> Fixture {
    let tmp = TempDir::new(&format!("targets-{name}"));
    let bam = tmp.join(name);
    std::fs::copy(real_bam(name), &bam).unwrap();
    ok(samtools().arg("index").arg(&bam));
    let ds = tmp.join("ds.bams3");
    convert(&bam, &ds, &["--chunk-size", "256K"]);
    let refs = ref_lengths(&sam_header(&bam));
    let names: Vec<String> = refs.iter().map(|r| r.0.clone()).collect();
    let placed = sam_records(&bam, &[])
        .iter()
        .map(|r| coord_key(r, &names))
        .filter(|&(tid, pos)| tid != usize::MAX && pos > 0)
        .collect::<Vec<_>>();
    assert!(!placed.is_empty(), "{name}: no placed reads");
    Fixture {
        bam,
        ds,
        refs,
        placed,
        tmp,
    }
}

/// A BED file of `n` intervals near reads, with the odd lines samtools tolerates, and a copy
/// with a line on a reference the BAM does not have (samtools' -M iterator refuses those, so
/// only the plain -L cases use it); and a region around one of the intervals.
fn random_bed(f: &Fixture, rng: &mut Lcg, n: usize, tag: &str) -> (PathBuf, PathBuf, String) {
    let mut near = String::new();
    let mut text = String::from("track name=targets\r\n# comment\n\n");
    for i in 0..n {
        let (tid, pos) = f.placed[rng.below(f.placed.len() as u64) as usize];
        let name = &f.refs[tid].0;
        let beg = pos.saturating_sub(rng.below(3000));
        let width = rng.log_uniform(20_000);
        if i == 0 {
            near = format!("{name}:{}-{}", beg.saturating_sub(500).max(1), beg + 700);
        }
        match i % 7 {
            // An empty interval: selects the records spanning it.
            5 => text.push_str(&format!("{name}\t{beg}\t{beg}\n")),
            // One position, 1-based (VCF style).
            6 => text.push_str(&format!("{name} {}\n", pos.max(1))),
            // Touching the previous one, space separated, extra columns.
            3 => text.push_str(&format!("  {name} {beg} {} feature 0 +\r\n", beg + width)),
            _ => text.push_str(&format!("{name}\t{beg}\t{}\n", beg + width)),
        }
    }
    let path = f.tmp.join(format!("{tag}.bed"));
    std::fs::write(&path, &text).unwrap();
    text.push_str("no_such_reference\t0\t1000\n");
    let unknown = f.tmp.join(format!("{tag}-unknown.bed"));
    std::fs::write(&unknown, text).unwrap();
    (path, unknown, near)
}

fn random_region(f: &Fixture, rng: &mut Lcg) -> String {
    let (tid, pos) = f.placed[rng.below(f.placed.len() as u64) as usize];
    let width = rng.log_uniform(200_000);
    let start = pos.saturating_sub(rng.below(width)).max(1);
    format!("{}:{start}-{}", f.refs[tid].0, start + width)
}

fn compare(
    failures: &mut Vec<String>,
    want_cmd: &mut std::process::Command,
    got_cmd: &mut std::process::Command,
) -> usize {
    let want = run(want_cmd);
    let got = run(got_cmd);
    if !want.status.success() {
        // samtools refuses some selections (an empty region list with -M): so must bams3.
        if got.status.success() || panicked(&got) {
            failures.push(format!(
                "`{}` succeeded (or panicked) where `{}` failed: {}",
                describe(got_cmd),
                describe(want_cmd),
                String::from_utf8_lossy(&want.stderr).trim()
            ));
        }
        return 0;
    }
    check_ok(got_cmd, &got);
    let (want, got) = (lines(&want.stdout), lines(&got.stdout));
    if let Some(d) = first_diff(&want, &got) {
        failures.push(format!(
            "`{}` vs `{}`: {d}",
            describe(got_cmd),
            describe(want_cmd)
        ));
    }
    want.len()
}

fn check_file(name: &str) {
    let f = fixture(name);
    let mut rng = Lcg::new(name.len() as u64 * 7919);
    let mut failures = Vec::new();
    let mut nonempty = 0;
    for round in 0..4 {
        let (bed, unknown, r1) = random_bed(&f, &mut rng, 3 + round * 4, &format!("r{round}"));
        let (bed, unknown) = (bed.to_str().unwrap(), unknown.to_str().unwrap());
        let r2 = random_region(&f, &mut rng);
        // (options, regions): samtools wants its regions after the file.
        let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
            (vec!["-L", unknown], vec![]),
            (vec!["-L", unknown], vec![&r1, &r2]),
            (vec!["-M"], vec![&r1, &r2, &r1]),
            (vec!["-M", "-L", bed], vec![]),
            (vec!["-M", "-L", bed], vec![&r1, &r2]),
            (vec!["--region-file", bed], vec![]),
            (vec!["-c", "-L", bed], vec![]),
            (vec!["-c", "-M"], vec![&r1, &r2]),
            (vec!["-q", "20", "-F", "0x400", "-M", "-L", bed], vec![]),
        ];
        for (opts, regions) in &cases {
            let n = compare(
                &mut failures,
                samtools()
                    .args(["view", "--no-PG"])
                    .args(opts)
                    .arg(&f.bam)
                    .args(regions),
                bams3().arg("query").args(opts).arg(&f.ds).args(regions),
            );
            if n > 0 {
                nonempty += 1;
            }
        }
        // export: the BAM it writes holds the records samtools selects.
        let out = f.tmp.join(format!("e{round}.bam"));
        let mut export = bams3();
        export
            .args(["export", "--force", "-M", "-L", bed])
            .arg(&f.ds)
            .arg(&out);
        let exported = run(&mut export);
        let mut reference = samtools();
        reference
            .args(["view", "--no-PG", "-M", "-L", bed])
            .arg(&f.bam);
        if exported.status.success() {
            compare(
                &mut failures,
                &mut reference,
                samtools().args(["view", "--no-PG"]).arg(&out),
            );
        } else if panicked(&exported) || run(&mut reference).status.success() {
            failures.push(format!(
                "`{}` failed where samtools did not",
                describe(&export)
            ));
        }
        // depth -b: positions inside the intervals only, with and without -a and -r.
        for extra in [&[][..], &["-a", "-r", &r1][..], &["-r", &r1][..]] {
            compare(
                &mut failures,
                samtools()
                    .args(["depth", "-b", bed])
                    .args(extra)
                    .arg(&f.bam),
                bams3().args(["depth", "-b", bed]).args(extra).arg(&f.ds),
            );
        }
    }
    assert!(
        nonempty >= 10,
        "{name}: only {nonempty} non-empty selections"
    );
    assert_no_failures(name, &failures);
}

#[test]
fn targets_human_mouse_smaller() {
    check_file("human_mouse_smaller.bam");
}

#[test]
fn targets_na12878_chrm_y() {
    check_file("na12878-chrM-Y-trunc.bam");
}

#[test]
fn targets_ex1() {
    check_file("ex1.bam");
}

/// Bad BED input is a one-line error naming the file and line; `-M` without regions or a BED
/// file, and a BED with nothing inside the regions, fail as samtools does.
#[test]
fn bad_target_files_fail_cleanly() {
    let f = fixture("ex1.bam");
    let bad = f.tmp.join("bad.bed");
    std::fs::write(&bad, "seq1\t10\t20\nseq1\t200\t100\n").unwrap();
    let msg = fails_with(
        bams3().arg("query").arg("-L").arg(&bad).arg(&f.ds),
        &[
            "bad.bed: line 2",
            "end (100) must not be less than start (200)",
        ],
    );
    assert_eq!(msg.lines().count(), 1, "{msg}");
    fails_with(
        bams3()
            .arg("query")
            .arg("-L")
            .arg(f.tmp.join("missing.bed"))
            .arg(&f.ds),
        &["missing.bed"],
    );
    fails_with(
        bams3().args(["query", "-M"]).arg(&f.ds),
        &["-M needs regions"],
    );
    let far = f.tmp.join("far.bed");
    std::fs::write(&far, "seq2\t0\t100\n").unwrap();
    fails_with(
        bams3()
            .args(["query", "-M", "-L"])
            .arg(&far)
            .arg(&f.ds)
            .arg("seq1:1-100"),
        &["region list is empty"],
    );
    // samtools agrees that these are errors.
    let st = run(samtools()
        .args(["view", "-M", "-L"])
        .arg(&far)
        .arg(&f.bam)
        .arg("seq1:1-100"));
    assert!(
        !st.status.success(),
        "samtools accepted an empty region list"
    );
}
