//! `bams3 depth` against `samtools depth` on real BAMs: same lines, for random regions and
//! the options samtools users reach for.

mod common;

use common::*;

/// Indexes a sorted copy of `bam` in `tmp` so `samtools depth -r` can answer.
fn indexed_copy(bam: &std::path::Path, tmp: &TempDir) -> std::path::PathBuf {
    let copy = tmp.join("sorted.bam");
    ok(samtools().args(["sort", "-o"]).arg(&copy).arg(bam));
    ok(samtools().arg("index").arg(&copy));
    copy
}

#[test]
fn depth_matches_samtools_depth() {
    let mut failures = Vec::new();
    for name in [
        "ex1.bam",
        "na12878-chrM-Y-trunc.bam",
        "NA12878.chr22.tiny.bam",
        "gviz_indels.bam",
    ] {
        let tmp = TempDir::new(&format!("depth-{name}"));
        let bam = indexed_copy(&real_bam(name), &tmp);
        let ds = tmp.join("ds.bams3");
        convert(&bam, &ds, &["--chunk-size", "256K"]);
        let header = String::from_utf8(ok(samtools().args(["view", "-H"]).arg(&bam))).unwrap();
        let refs = ref_lengths(&header);
        let mut rng = Lcg::new(42);
        let options: [&[&str]; 7] = [
            &[],
            &["-a"],
            &["-J"],
            &["-Q", "30"],
            &["-q", "20"],
            &["-g", "0x400"],
            &["-l", "100"],
        ];
        for (i, opts) in options.iter().enumerate() {
            let (name, len) = &refs[rng.below(refs.len() as u64) as usize];
            let start = rng.range(1, (*len).max(1));
            let width = rng.log_uniform(2_000_000);
            let region = if i == 0 {
                name.clone()
            } else {
                format!("{name}:{start}-{}", start + width)
            };
            soft(&mut failures, || {
                let want = ok(samtools()
                    .arg("depth")
                    .args(*opts)
                    .args(["-r", &region])
                    .arg(&bam));
                let got = ok(bams3().arg("depth").args(*opts).arg(&ds).arg(&region));
                assert!(
                    want == got,
                    "{name} depth {opts:?} {region}: {}",
                    first_diff(&lines(&want), &lines(&got)).unwrap_or_default()
                );
            });
        }
        // Without a region: every reference with reads, as samtools does.
        soft(&mut failures, || {
            let want = ok(samtools().arg("depth").arg(&bam));
            let got = ok(bams3().arg("depth").arg(&ds));
            assert!(want == got, "{name} depth (no region) differs");
        });
    }
    assert_no_failures("depth", &failures);
}

#[test]
fn depth_decodes_a_small_share_of_the_chunks() {
    let tmp = TempDir::new("depth-share");
    let ds = tmp.join("ds.bams3");
    convert(&real_bam("na12878-chrM-Y-trunc.bam"), &ds, &[]);
    let out = run(bams3().args(["depth", "--report"]).arg(&ds).arg("chrM"));
    assert!(out.status.success());
    let report = String::from_utf8_lossy(&out.stderr);
    let pct: f64 = report
        .split('(')
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no percentage in {report:?}"));
    assert!(
        pct > 0.0 && pct <= 20.0,
        "depth decoded {pct}% of the chunk bytes: {report}"
    );
}
