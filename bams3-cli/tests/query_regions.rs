//! Region queries against samtools on the real, coordinate-sorted BAM files:
//! 40 pseudo-random regions per file (fixed seed), run on a dataset converted with
//! the default chunk size and on one converted with `--chunk-size 256K`; the output
//! of `bams3 query` must equal `samtools view` exactly (same lines, same order).

mod common;

use common::*;
use std::path::{Path, PathBuf};

const REGIONS_PER_FILE: usize = 40;

struct Fixture {
    name: String,
    /// Indexed copy of the BAM for samtools.
    indexed: PathBuf,
    /// (dataset, conversion options) pairs.
    datasets: Vec<(PathBuf, &'static str)>,
    refs: Vec<(String, u64)>,
    /// (reference index, POS) of every placed record.
    placed: Vec<(usize, u64)>,
    has_unplaced: bool,
    tmp: TempDir,
}

fn fixture(name: &str) -> Option<Fixture> {
    let bam = real_bam(name);
    let tmp = TempDir::new(&format!("q-{name}"));
    let header = sam_header(&bam);
    let refs = ref_lengths(&header);
    let ref_names: Vec<String> = refs.iter().map(|r| r.0.clone()).collect();
    let records = sam_records(&bam, &[]);
    if refs.is_empty() || !is_coordinate_sorted(&records, &ref_names) {
        return None;
    }
    let mut placed = Vec::new();
    let mut has_unplaced = false;
    for r in &records {
        let (tid, pos) = coord_key(r, &ref_names);
        if tid == usize::MAX {
            has_unplaced = true;
        } else if pos > 0 {
            placed.push((tid, pos));
        }
    }
    drop(records);
    let indexed = tmp.join(name);
    std::fs::copy(&bam, &indexed).unwrap();
    ok(samtools().arg("index").arg(&indexed));

    let mut datasets = Vec::new();
    for (tag, opts) in [("default", ""), ("256k", "--chunk-size 256K")] {
        let ds = tmp.join(format!("{tag}.bams3"));
        let args: Vec<&str> = opts.split_whitespace().collect();
        convert(&bam, &ds, &args);
        datasets.push((ds, opts));
    }
    Some(Fixture {
        name: name.to_string(),
        indexed,
        datasets,
        refs,
        placed,
        has_unplaced,
        tmp,
    })
}

fn seed_of(name: &str) -> u64 {
    // FNV-1a, so every file gets its own fixed sequence.
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One query: options plus regions.
#[derive(Clone, Debug)]
struct Query {
    opts: Vec<String>,
    regions: Vec<String>,
}

fn anchored_region(f: &Fixture, rng: &mut Lcg) -> String {
    let (tid, pos) = f.placed[rng.below(f.placed.len() as u64) as usize];
    let name = &f.refs[tid].0;
    let width = rng.log_uniform(5_000_000);
    let start = pos.saturating_sub(rng.below(width)).max(1);
    format!("{name}:{start}-{}", start + width - 1)
}

fn boundary_region(f: &Fixture, rng: &mut Lcg) -> String {
    let (tid, pos) = f.placed[rng.below(f.placed.len() as u64) as usize];
    let name = &f.refs[tid].0;
    let span: u64 = if rng.below(2) == 0 { 1 << 18 } else { 1 << 20 };
    // The chunk boundary at or after the read, in 1-based coordinates.
    let boundary = (pos / span + 1) * span;
    let before = rng.range(0, 2000);
    let after = rng.range(0, 2000);
    let start = boundary.saturating_sub(before).max(1);
    format!("{name}:{start}-{}", boundary + after)
}

fn random_ref(f: &Fixture, rng: &mut Lcg) -> String {
    if rng.below(4) == 0 {
        // Any reference, possibly one without reads.
        f.refs[rng.below(f.refs.len() as u64) as usize].0.clone()
    } else {
        let (tid, _) = f.placed[rng.below(f.placed.len() as u64) as usize];
        f.refs[tid].0.clone()
    }
}

fn queries(f: &Fixture) -> Vec<Query> {
    let mut rng = Lcg::new(seed_of(&f.name));
    let mut qs = Vec::new();
    let plain = |regions: Vec<String>| Query {
        opts: vec![],
        regions,
    };
    for i in 0..REGIONS_PER_FILE {
        let q = match i % 10 {
            0 => plain(vec![anchored_region(f, &mut rng)]),
            1 => plain(vec![random_ref(f, &mut rng)]),
            2 => {
                let (tid, pos) = f.placed[rng.below(f.placed.len() as u64) as usize];
                let start = pos.saturating_sub(rng.below(1000)).max(1);
                plain(vec![format!("{}:{start}", f.refs[tid].0)])
            }
            3 => {
                if i < 10 || !f.has_unplaced {
                    plain(vec!["*".into()])
                } else {
                    // A whole, one-base and zero-read-reference mix.
                    let (tid, pos) = f.placed[rng.below(f.placed.len() as u64) as usize];
                    plain(vec![format!("{}:{pos}-{pos}", f.refs[tid].0)])
                }
            }
            4 | 5 => plain(vec![boundary_region(f, &mut rng)]),
            6 => Query {
                opts: vec!["-q".into(), "20".into()],
                regions: vec![anchored_region(f, &mut rng)],
            },
            7 => Query {
                opts: if i % 20 == 7 {
                    vec!["-f".into(), "0x10".into()]
                } else {
                    vec!["-F".into(), "0x400".into()]
                },
                regions: vec![anchored_region(f, &mut rng)],
            },
            8 => Query {
                opts: vec!["-c".into()],
                regions: vec![if i % 20 == 8 {
                    random_ref(f, &mut rng)
                } else {
                    anchored_region(f, &mut rng)
                }],
            },
            _ => {
                let n = rng.range(2, 3);
                let mut regions: Vec<String> =
                    (0..n).map(|_| anchored_region(f, &mut rng)).collect();
                if f.has_unplaced && i % 20 == 9 {
                    regions.push("*".into());
                }
                let opts = if i % 20 == 19 {
                    vec!["-q".into(), "20".into(), "-F".into(), "0x400".into()]
                } else {
                    vec![]
                };
                Query { opts, regions }
            }
        };
        qs.push(q);
    }
    qs
}

fn bams3_query(ds: &Path, q: &Query, extra: &[&str]) -> (String, Vec<u8>) {
    let mut cmd = bams3();
    cmd.arg("query")
        .args(extra)
        .args(&q.opts)
        .arg(ds)
        .args(&q.regions);
    let out = run(&mut cmd);
    check_ok(&cmd, &out);
    (describe(&cmd), out.stdout)
}

fn samtools_view(bam: &Path, q: &Query, extra: &[&str]) -> (String, Vec<u8>) {
    let mut cmd = samtools();
    cmd.args(["view", "--no-PG"])
        .args(extra)
        .args(&q.opts)
        .arg(bam)
        .args(&q.regions);
    let out = run(&mut cmd);
    check_ok(&cmd, &out);
    (describe(&cmd), out.stdout)
}

fn check_file(name: &str) {
    let Some(f) = fixture(name) else {
        panic!("{name} is not a coordinate-sorted BAM with references");
    };
    let qs = queries(&f);
    let mut failures = Vec::new();
    let mut nonempty = 0;
    for (qi, q) in qs.iter().enumerate() {
        let (scmd, expected) = samtools_view(&f.indexed, q, &[]);
        let expected_lines = lines(&expected);
        if !expected_lines.is_empty() && expected_lines != ["0"] {
            nonempty += 1;
        }
        for (ds, _opts) in &f.datasets {
            let (bcmd, got) = bams3_query(ds, q, &[]);
            if let Some(d) = first_diff(&expected_lines, &lines(&got)) {
                failures.push(format!("`{bcmd}` vs `{scmd}`: {d}"));
                continue;
            }
            let counting = q.opts.iter().any(|o| o == "-c");
            // -b: BAM output decoded by samtools equals; -h: header included.
            if qi.is_multiple_of(4) && !counting {
                let bam_out = f.tmp.join(format!("q{qi}.bam"));
                let (bcmd, _) = bams3_query(ds, q, &["-b", "-o", bam_out.to_str().unwrap()]);
                let mut cmd = samtools();
                cmd.args(["view", "-h", "--no-PG"]).arg(&bam_out);
                let out = run(&mut cmd);
                if !out.status.success() {
                    failures.push(format!(
                        "samtools cannot read the output of `{bcmd}`: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                    continue;
                }
                let (scmd_h, expected_h) = samtools_view(&f.indexed, q, &["-h"]);
                if let Some(d) = first_diff(&lines(&expected_h), &lines(&out.stdout)) {
                    failures.push(format!("`{bcmd}` decoded by samtools vs `{scmd_h}`: {d}"));
                }
            }
            if qi % 4 == 1 && !counting {
                let (scmd_h, expected_h) = samtools_view(&f.indexed, q, &["-h"]);
                let (bcmd, got_h) = bams3_query(ds, q, &["-h"]);
                if let Some(d) = first_diff(&lines(&expected_h), &lines(&got_h)) {
                    failures.push(format!("`{bcmd}` vs `{scmd_h}`: {d}"));
                }
            }
        }
    }
    eprintln!(
        "{name}: {} queries x {} datasets, {nonempty} non-empty, {} failures",
        qs.len(),
        f.datasets.len(),
        failures.len()
    );
    assert!(
        nonempty >= REGIONS_PER_FILE / 2,
        "{name}: only {nonempty} of the queries return reads: the region generator is broken"
    );
    assert!(
        failures.is_empty(),
        "{name}: {} failing queries:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn regions_human_mouse_smaller() {
    check_file("human_mouse_smaller.bam");
}

#[test]
fn regions_na12878_chrm_y() {
    check_file("na12878-chrM-Y-trunc.bam");
}

#[test]
fn regions_ex1() {
    check_file("ex1.bam");
}

#[test]
fn regions_na12878_chr22_tiny() {
    check_file("NA12878.chr22.tiny.bam");
}

#[test]
fn regions_gviz_indels() {
    check_file("gviz_indels.bam");
}

/// The test above covers every coordinate-sorted BAM of the MANIFEST.
#[test]
fn every_sorted_manifest_bam_is_covered() {
    let covered = [
        "human_mouse_smaller.bam",
        "na12878-chrM-Y-trunc.bam",
        "ex1.bam",
        "NA12878.chr22.tiny.bam",
        "gviz_indels.bam",
    ];
    for bam in manifest() {
        let name = bam.file_name().unwrap().to_string_lossy().into_owned();
        let header = sam_header(&bam);
        let refs = ref_names(&header);
        if refs.is_empty() || covered.contains(&name.as_str()) {
            continue;
        }
        let records = sam_records(&bam, &[]);
        assert!(
            !is_coordinate_sorted(&records, &refs),
            "{name} is coordinate-sorted but has no region test"
        );
    }
}

/// `-o FILE` writes what stdout would have, and `-c` with several regions counts
/// all of them as samtools does.
#[test]
fn output_file_and_multi_region_count() {
    let f = fixture("ex1.bam").expect("ex1.bam is sorted");
    let ds = &f.datasets[0].0;
    let out = f.tmp.join("o.sam");
    ok(bams3()
        .args(["query", "-o"])
        .arg(&out)
        .arg(ds)
        .args(["seq1:100-1000", "seq2:1-200"]));
    let q = Query {
        opts: vec![],
        regions: vec!["seq1:100-1000".into(), "seq2:1-200".into()],
    };
    let (_, expected) = samtools_view(&f.indexed, &q, &[]);
    assert_eq!(lines(&std::fs::read(&out).unwrap()), lines(&expected));

    let q = Query {
        opts: vec!["-c".into()],
        regions: vec!["seq1:100-1000".into(), "seq2".into(), "seq1:500-600".into()],
    };
    let (_, expected) = samtools_view(&f.indexed, &q, &[]);
    let (_, got) = bams3_query(ds, &q, &[]);
    assert_eq!(lines(&got), lines(&expected));
}
