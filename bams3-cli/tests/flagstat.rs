//! `bams3 flagstat` and `bams3 idxstats` against `samtools flagstat` / `samtools idxstats` on
//! the source BAM, byte for byte: every real BAM of the MANIFEST and every BAM of the htslib
//! and samtools test suites, locally, and one dataset on a loopback S3 server (moto), where
//! flagstat must fetch only a small share of the chunk bytes and idxstats no chunk at all.

mod common;
#[path = "common/s3.rs"]
mod s3_server;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use s3_server::{Moto, Proxy};

const FORMATS: [&str; 3] = ["default", "json", "tsv"];

/// `samtools idxstats` needs an index, so it runs on a sorted, indexed copy (same records).
fn samtools_idxstats(bam: &Path, tmp: &TempDir) -> Vec<u8> {
    let sorted = tmp.join("sorted.bam");
    ok(samtools().args(["sort", "-o"]).arg(&sorted).arg(bam));
    ok(samtools().arg("index").arg(&sorted));
    ok(samtools().arg("idxstats").arg(&sorted))
}

/// Compares flagstat (each format) and idxstats of `ds` with samtools on `bam`.
fn compare(bam: &Path, ds: &Path, tmp: &TempDir, errors: &mut Vec<String>) {
    for f in FORMATS {
        let expected = ok(samtools().args(["flagstat", "-O", f]).arg(bam));
        let mut cmd = bams3();
        cmd.args(["flagstat", "-O", f]).arg(ds);
        let got = ok(&mut cmd);
        if got != expected {
            errors.push(format!(
                "`{}` differs from samtools flagstat -O {f} {}:\n{}",
                describe(&cmd),
                bam.display(),
                first_diff(&lines(&expected), &lines(&got)).unwrap_or_default()
            ));
        }
    }
    let expected = samtools_idxstats(bam, tmp);
    let mut cmd = bams3();
    cmd.arg("idxstats").arg(ds);
    let got = ok(&mut cmd);
    if got != expected {
        errors.push(format!(
            "`{}` differs from samtools idxstats {}:\n{}",
            describe(&cmd),
            bam.display(),
            first_diff(&lines(&expected), &lines(&got)).unwrap_or_default()
        ));
    }
}

#[test]
fn flagstat_and_idxstats_match_samtools_on_real_bams() {
    let mut errors = Vec::new();
    let files = manifest();
    assert!(!files.is_empty(), "empty MANIFEST: {FETCH_HINT}");
    for bam in files {
        let name = bam.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = TempDir::new(&format!("flagstat-{name}"));
        let ds = tmp.join("ds.bams3");
        convert(&bam, &ds, &[]);
        compare(&bam, &ds, &tmp, &mut errors);
    }
    assert_no_failures("flagstat/idxstats on the real BAMs", &errors);
}

fn suite_bams() -> Vec<PathBuf> {
    require_suites();
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = SUITE_DIRS.iter().map(PathBuf::from).collect();
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "bam") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn flagstat_and_idxstats_match_samtools_on_suite_bams() {
    let mut errors = Vec::new();
    let (mut compared, mut invalid) = (0, Vec::new());
    for bam in suite_bams() {
        // Files samtools itself cannot read are the suites' invalid inputs: bams3 must refuse
        // them too (errors.rs checks how), so there is nothing to compare.
        let st = run(samtools().args(["flagstat"]).arg(&bam));
        if !st.status.success() {
            invalid.push(bam.display().to_string());
            continue;
        }
        let tmp = TempDir::new("flagstat-suite");
        let ds = tmp.join("ds.bams3");
        let mut cmd = bams3();
        cmd.arg("convert").arg(&bam).arg(&ds);
        let out = run(&mut cmd);
        // A BAM without its end-of-file block samtools reads with a warning; bams3 refuses it
        // as truncated (errors.rs), so it has no dataset to compare.
        let no_eof = String::from_utf8_lossy(&st.stderr).contains("EOF marker is absent");
        if no_eof && String::from_utf8_lossy(&out.stderr).contains("truncated file") {
            invalid.push(bam.display().to_string());
            continue;
        }
        if !out.status.success() {
            errors.push(format!(
                "`{}` failed on a BAM samtools reads: {}",
                describe(&cmd),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        compare(&bam, &ds, &tmp, &mut errors);
        compared += 1;
    }
    eprintln!(
        "suite BAMs: {compared} compared, {} invalid (samtools fails, or no EOF block): {invalid:?}",
        invalid.len()
    );
    assert!(compared >= 20, "only {compared} suite BAMs compared");
    assert_no_failures("flagstat/idxstats on the suite BAMs", &errors);
}

fn s3_bams3(endpoint: &str, tmp: &TempDir) -> Command {
    let mut c = bams3();
    c.arg("--endpoint-url")
        .arg(endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", tmp.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            tmp.join("no-aws-credentials"),
        )
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("XDG_CACHE_HOME", tmp.join("cache"));
    c
}

fn get_bytes(proxy: &Proxy) -> (usize, u64) {
    let seen = proxy.seen();
    let gets: Vec<_> = seen.iter().filter(|s| s.method == "GET").collect();
    (gets.len(), gets.iter().map(|s| s.bytes).sum())
}

#[test]
fn flagstat_and_idxstats_on_s3_read_few_bytes() {
    let bam = real_bam("na12878-chrM-Y-trunc.bam");
    let moto = Moto::start();
    moto.create_bucket("bams3-flagstat");
    let proxy = Proxy::start(moto.port);
    let tmp = TempDir::new("flagstat-s3");
    let local = tmp.join("local.bams3");
    convert(&bam, &local, &[]);
    let chunk_bytes: u64 = find_chunks(&local)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let uri = "s3://bams3-flagstat/sample.bams3";
    ok(s3_bams3(&proxy.url(), &tmp)
        .arg("convert")
        .arg(&bam)
        .arg(uri));
    let mut errors = Vec::new();

    for f in FORMATS {
        let expected = ok(samtools().args(["flagstat", "-O", f]).arg(&bam));
        proxy.reset_counts();
        let mut cmd = s3_bams3(&proxy.url(), &tmp);
        cmd.args(["flagstat", "-O", f, uri]);
        let got = ok(&mut cmd);
        if got != expected {
            errors.push(format!(
                "`{}` differs from samtools flagstat",
                describe(&cmd)
            ));
        }
        let (gets, bytes) = get_bytes(&proxy);
        eprintln!("{f}: {bytes} bytes in {gets} GETs of {chunk_bytes} chunk bytes");
        // Chunk bytes plus metadata, index and header: still a small share of the chunks.
        if bytes * 10 > chunk_bytes {
            errors.push(format!(
                "`{}` fetched {bytes} bytes in {gets} GETs, over 10% of the {chunk_bytes} chunk bytes",
                describe(&cmd)
            ));
        }
    }

    let expected = samtools_idxstats(&bam, &tmp);
    let mut cmd = s3_bams3(&proxy.url(), &tmp);
    cmd.args(["idxstats", uri]);
    proxy.reset_counts();
    let got = ok(&mut cmd);
    if got != expected {
        errors.push(format!(
            "`{}` differs from samtools idxstats",
            describe(&cmd)
        ));
    }
    let chunk_gets: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.target.contains(".chunk"))
        .collect();
    if !chunk_gets.is_empty() {
        errors.push(format!(
            "`{}` read {} chunk objects; idxstats needs the index alone",
            describe(&cmd),
            chunk_gets.len()
        ));
    }
    assert_no_failures("flagstat/idxstats on S3", &errors);
}
