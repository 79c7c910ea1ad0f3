//! Upstream v0.1/v0.2 datasets (fixtures under tests/fixtures/legacy, built byte by byte from
//! the upstream format description) open, query, export, validate and upgrade.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/legacy")
        .join(name)
}

const FIXTURES: [&str; 4] = ["v01_go", "v01_poc", "v02_go", "v02_stdin"];

/// The fixture's expected records (in stored order, as the generator wrote them).
fn expected(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(name).join("expected.sam")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('@'))
        .map(str::to_string)
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Records with a position must come back in coordinate order. (Upstream kept records by
/// chunk, and the Python tool put every flag-0x4 record in its unmapped chunk, so such a record
/// with an RNAME comes back with the unplaced ones.)
fn placed_in_order(records: &[String], name: &str) {
    let header = String::from_utf8(ok(bams3().args(["query", "-H"]).arg(fixture(name)))).unwrap();
    let refs = ref_names(&header);
    let placed: Vec<String> = records
        .iter()
        .filter(|l| l.split('\t').nth(3) != Some("0"))
        .cloned()
        .collect();
    assert!(
        is_coordinate_sorted(&placed, &refs),
        "{name}: not in coordinate order: {placed:?}"
    );
}

#[test]
fn legacy_fixtures_query_export_validate() {
    let mut failures = Vec::new();
    for name in FIXTURES {
        let ds = fixture(name);
        soft(&mut failures, || {
            let got = lines(&ok(bams3().arg("query").arg(&ds)));
            let want = expected(name);
            assert!(
                sorted(got.clone()) == sorted(want.clone()),
                "{name}: {}",
                first_diff(&sorted(want), &sorted(got.clone())).unwrap_or_default()
            );
            placed_in_order(&got, name);
        });
        soft(&mut failures, || {
            ok(bams3().arg("validate").arg(&ds));
            let stats = String::from_utf8(ok(bams3().args(["stats", "--json"]).arg(&ds))).unwrap();
            assert_eq!(
                json_u64(&stats, "total_reads"),
                Some(expected(name).len() as u64),
                "{name}"
            );
            assert!(
                stats.contains("\"losses\""),
                "{name}: stats must list what the dataset lost"
            );
        });
        soft(&mut failures, || {
            let tmp = TempDir::new(&format!("legacy-{name}"));
            let bam = tmp.join("out.bam");
            export(&ds, &bam);
            let via_samtools = sam_records(&bam, &[]);
            let ours = lines(&ok(bams3().arg("query").arg(&ds)));
            assert!(
                via_samtools == ours,
                "{name}: exported BAM differs from the query"
            );
            // Upgrade to v0.3: same records, now a lossless, validated dataset.
            let up = tmp.join("up.bams3");
            ok(bams3().arg("upgrade").arg(&ds).arg(&up));
            ok(bams3().arg("validate").arg(&up));
            let upgraded = lines(&ok(bams3().arg("query").arg(&up)));
            assert!(
                sorted(upgraded.clone()) == sorted(ours),
                "{name}: upgrade changed the records"
            );
            placed_in_order(&upgraded, name);
        });
    }
    assert_no_failures("legacy fixtures", &failures);
}

#[test]
fn legacy_region_queries_look_back_into_earlier_chunks() {
    // g002 starts at 1,048,572 in the first chunk and overlaps the second chunk's range.
    let got = lines(&ok(bams3()
        .arg("query")
        .arg(fixture("v02_go"))
        .arg("chr1:1048577-1048578")));
    let names: Vec<&str> = got.iter().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(names, ["g002", "g004"], "{got:?}");
}

#[test]
fn corrupt_legacy_chunk_is_refused() {
    let tmp = TempDir::new("legacy-corrupt");
    let ds = tmp.join("ds");
    copy_dir(&fixture("v02_go"), &ds);
    let chunk = ds.join("data/chr2/000000000-001048576.chunk");
    let mut bytes = std::fs::read(&chunk).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&chunk, bytes).unwrap();
    fails_with(
        bams3().arg("query").arg(&ds).arg("chr2"),
        &["000000000-001048576.chunk", "checksum"],
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
