//! Round trips of the real BAM files fetched by tests/fetch-data.sh (MANIFEST):
//! convert -> export -> `samtools view` equal; record counts of `bams3 query -c`
//! (no region: the whole dataset) and `bams3 stats --json` equal `samtools view -c`.

mod common;

use common::*;
use std::path::Path;

/// Key under which `bams3 stats --json` reports the total number of records
/// (`statistics.total_reads`).
const TOTAL_KEYS: &[&str] = &["total_reads"];

fn samtools_count(bam: &Path) -> u64 {
    let out = ok(samtools().args(["view", "-c"]).arg(bam));
    String::from_utf8_lossy(&out)
        .trim()
        .parse()
        .expect("samtools view -c")
}

fn check_real(name: &str, profile: &str) {
    let bam = real_bam(name);
    let tmp = TempDir::new(&format!("{name}-{profile}"));
    let ds = tmp.join("ds.bams3");
    let out_bam = tmp.join("out.bam");
    convert(&bam, &ds, &["--profile", profile]);
    let mut errors = Vec::new();

    // The profile is recorded (and absent for the default, as before profiles existed).
    let meta = std::fs::read_to_string(ds.join("_metadata.json")).unwrap();
    let recorded = meta.contains(&format!("\"profile\": \"{profile}\""));
    if recorded != (profile != "default") {
        errors.push(format!("profile {profile}: _metadata.json says {meta}"));
    }

    let mut cmd = bams3();
    cmd.arg("validate").arg(&ds);
    let out = run(&mut cmd);
    if !out.status.success() || panicked(&out) {
        errors.push(format!(
            "`{}` failed: {}",
            describe(&cmd),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }

    export(&ds, &out_bam);
    if let Some(d) = compare_roundtrip(&bam, &out_bam) {
        errors.push(format!("bams3 convert {} + export: {d}", bam.display()));
    }

    let expected = samtools_count(&bam);

    let mut cmd = bams3();
    cmd.args(["query", "-c"]).arg(&ds);
    let got = String::from_utf8_lossy(&ok(&mut cmd)).trim().to_string();
    if got != expected.to_string() {
        errors.push(format!(
            "`{}` printed {got:?}, samtools view -c says {expected}",
            describe(&cmd)
        ));
    }

    let mut cmd = bams3();
    cmd.args(["stats", "--json"]).arg(&ds);
    let json = String::from_utf8_lossy(&ok(&mut cmd)).into_owned();
    match TOTAL_KEYS.iter().find_map(|k| json_u64(&json, k)) {
        Some(n) if n == expected => {}
        Some(n) => errors.push(format!(
            "`{}` reports {n} records, samtools view -c says {expected}",
            describe(&cmd)
        )),
        None => errors.push(format!(
            "`{}` has no total record count (looked for {TOTAL_KEYS:?}):\n{json}",
            describe(&cmd)
        )),
    }

    // The export to stdout is the same BAM content.
    let mut cmd = bams3();
    cmd.arg("export").arg(&ds).arg("-");
    let bytes = ok(&mut cmd);
    let stdout_bam = tmp.join("stdout.bam");
    std::fs::write(&stdout_bam, bytes).unwrap();
    if let Some(d) = compare_roundtrip(&bam, &stdout_bam) {
        errors.push(format!("bams3 export {} -: {d}", ds.display()));
    }

    assert!(errors.is_empty(), "{name}:\n{}", errors.join("\n"));
}

#[test]
fn manifest_is_complete() {
    let names: Vec<String> = manifest()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for n in [
        "human_mouse_smaller.bam",
        "na12878-chrM-Y-trunc.bam",
        "ex1.bam",
        "ex1_unsort.bam",
        "NA12878.chr22.tiny.bam",
        "gviz_indels.bam",
        "bowtie2_combined_reads.bam",
    ] {
        assert!(
            names.iter().any(|x| x == n),
            "{n} missing from MANIFEST: {FETCH_HINT}"
        );
    }
}

/// Every file in the MANIFEST, including any added later.
#[test]
fn every_manifest_bam_roundtrips() {
    roundtrip_all("default");
}

/// The same under the archive profile's codecs (qualities by read context, bases by a context
/// model): lossless on every real BAM.
#[test]
fn every_manifest_bam_roundtrips_archive() {
    roundtrip_all("archive");
}

fn roundtrip_all(profile: &str) {
    let mut failures = Vec::new();
    for bam in manifest() {
        let name = bam.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(e) = std::panic::catch_unwind(|| check_real(&name, profile)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{name}: {msg}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Stored bytes of a dataset's chunk objects.
fn chunk_bytes(d: &Path) -> u64 {
    find_chunks(d)
        .iter()
        .map(|c| c.metadata().unwrap().len())
        .sum()
}

/// The records `bams3 query` prints for a whole dataset.
fn query_lines(d: &Path) -> Vec<String> {
    lines(&ok(bams3().arg("query").arg(d)))
}

#[test]
fn upgrade_moves_a_dataset_between_profiles() {
    let bam = real_bam("na12878-chrM-Y-trunc.bam");
    let tmp = TempDir::new("profiles");
    let want = &sam_records(&bam, &[]);
    let default = tmp.join("default.bams3");
    convert(&bam, &default, &[]);
    let archive = tmp.join("archive.bams3");
    ok(bams3()
        .args(["upgrade", "--quiet", "--profile", "archive"])
        .arg(&default)
        .arg(&archive));
    let back = tmp.join("back.bams3");
    ok(bams3()
        .args(["upgrade", "--quiet", "--profile", "default"])
        .arg(&archive)
        .arg(&back));
    let meta = |d: &Path| std::fs::read_to_string(d.join("_metadata.json")).unwrap();
    assert!(
        meta(&archive).contains("\"archive\""),
        "no archive profile recorded"
    );
    assert!(
        !meta(&back).contains("\"archive\""),
        "the default dataset says archive"
    );
    for d in [&archive, &back] {
        assert_eq!(first_diff(want, &query_lines(d)), None);
    }
    assert!(
        chunk_bytes(&archive) < chunk_bytes(&back),
        "the archive profile is not smaller"
    );
    // An unknown profile is refused by the argument parser (clap's usage message).
    let out = run(bams3()
        .args(["upgrade", "--profile", "fast"])
        .arg(&default)
        .arg(tmp.join("x.bams3")));
    assert!(!out.status.success() && !panicked(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown profile 'fast'"));
    assert!(!tmp.join("x.bams3").exists());
}

#[test]
fn the_archive_profile_uses_wide_chunks_unless_told() {
    // Sparse data (RNA-seq): 8M bins make fewer, fuller chunks, hence a smaller archive.
    let bam = real_bam("human_mouse_smaller.bam");
    let tmp = TempDir::new("archive-chunks");
    let want = &sam_records(&bam, &[]);
    let chunk_size = |d: &Path| -> u64 {
        let meta = std::fs::read_to_string(d.join("_metadata.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&meta).unwrap();
        v["chunk_size"]
            .as_u64()
            .expect("chunk_size in _metadata.json")
    };
    let wide = tmp.join("wide.bams3");
    convert(&bam, &wide, &["--profile", "archive"]);
    let narrow = tmp.join("narrow.bams3");
    convert(
        &bam,
        &narrow,
        &["--profile", "archive", "--chunk-size", "1M"],
    );
    let default = tmp.join("default.bams3");
    convert(&bam, &default, &[]);
    assert_eq!(chunk_size(&wide), 8 << 20);
    assert_eq!(chunk_size(&narrow), 1 << 20);
    assert_eq!(chunk_size(&default), 1 << 20);
    for d in [&wide, &narrow] {
        assert_eq!(first_diff(want, &query_lines(d)), None);
    }
    let (w, n) = (chunk_bytes(&wide), chunk_bytes(&narrow));
    assert!(w * 10 < n * 8, "8M chunks {w} bytes, 1M chunks {n} bytes");
    // upgrade follows the same rule.
    let up = tmp.join("up.bams3");
    ok(bams3()
        .args(["upgrade", "--quiet", "--profile", "archive"])
        .arg(&default)
        .arg(&up));
    assert_eq!(chunk_size(&up), 8 << 20);
}

#[test]
fn stdin_input_bam_and_sam() {
    let bam = real_bam("ex1.bam");
    let tmp = TempDir::new("stdin");
    // BAM on stdin.
    let ds = tmp.join("bam.bams3");
    let bytes = std::fs::read(&bam).unwrap();
    let mut cmd = bams3();
    cmd.arg("convert").arg("-").arg(&ds);
    let out = run_with_stdin(&mut cmd, &bytes);
    check_ok(&cmd, &out);
    let out_bam = tmp.join("bam.out.bam");
    export(&ds, &out_bam);
    assert_eq!(compare_roundtrip(&bam, &out_bam), None, "BAM on stdin");

    // SAM on stdin.
    let sam = ok(samtools().args(["view", "-h", "--no-PG"]).arg(&bam));
    let ds = tmp.join("sam.bams3");
    let mut cmd = bams3();
    cmd.arg("convert").arg("-").arg(&ds);
    let out = run_with_stdin(&mut cmd, &sam);
    check_ok(&cmd, &out);
    let out_bam = tmp.join("sam.out.bam");
    export(&ds, &out_bam);
    assert_eq!(compare_roundtrip(&bam, &out_bam), None, "SAM on stdin");
}

#[test]
fn options_level_threads_chunk_size_do_not_change_content() {
    let bam = real_bam("na12878-chrM-Y-trunc.bam");
    let tmp = TempDir::new("opts");
    for (i, extra) in [
        vec!["-l", "1", "-@", "2"],
        vec!["--level", "19", "--threads", "1", "--chunk-size", "2M"],
    ]
    .iter()
    .enumerate()
    {
        let ds = tmp.join(format!("ds{i}.bams3"));
        convert(&bam, &ds, extra);
        let out_bam = tmp.join(format!("out{i}.bam"));
        export(&ds, &out_bam);
        assert_eq!(
            compare_roundtrip(&bam, &out_bam),
            None,
            "bams3 convert {extra:?} {}",
            bam.display()
        );
    }
}

/// `export --region` equals `samtools view REGION`; `--index` writes an index that
/// samtools uses for region queries; `to-bam` is an alias of `export`.
#[test]
fn export_region_index_and_alias() {
    let bam = real_bam("na12878-chrM-Y-trunc.bam");
    let tmp = TempDir::new("export-opts");
    let indexed = tmp.join("orig.bam");
    std::fs::copy(&bam, &indexed).unwrap();
    ok(samtools().arg("index").arg(&indexed));
    let ds = tmp.join("ds.bams3");
    convert(&bam, &ds, &[]);
    let header = sam_header(&bam);
    let refs = ref_lengths(&header);
    // Two regions on the references holding most reads.
    let counts: Vec<(String, usize)> = refs
        .iter()
        .map(|(n, _)| {
            let c = sam_region_records(&indexed, &["-c"], &[n])[0]
                .parse()
                .unwrap();
            (n.clone(), c)
        })
        .filter(|(_, c)| *c > 0)
        .collect();
    assert!(!counts.is_empty());
    let r1 = format!("{}:1000-20000", counts[0].0);
    let r2 = counts.last().unwrap().0.clone();

    let mut errors = Vec::new();
    let out = tmp.join("region.bam");
    ok(bams3()
        .args(["export", "--region", &r1, "--region", &r2])
        .arg(&ds)
        .arg(&out));
    let expected = sam_region_records(&indexed, &[], &[&r1, &r2]);
    let got = sam_records(&out, &[]);
    if let Some(d) = first_diff(&expected, &got) {
        errors.push(format!("bams3 export --region {r1} --region {r2}: {d}"));
    }

    let out = tmp.join("indexed.bam");
    ok(bams3().args(["to-bam", "--index"]).arg(&ds).arg(&out));
    let has_index = out.with_extension("bam.bai").is_file()
        || tmp.join("indexed.bam.bai").is_file()
        || tmp.join("indexed.bam.csi").is_file();
    if !has_index {
        errors.push("bams3 to-bam --index wrote no .bai/.csi".into());
    } else {
        for region in [r1.as_str(), r2.as_str()] {
            let expected = sam_region_records(&indexed, &[], &[region]);
            let got = sam_region_records(&out, &[], &[region]);
            if let Some(d) = first_diff(&expected, &got) {
                errors.push(format!(
                    "samtools view {region} on `bams3 to-bam --index` output: {d}"
                ));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
