//! Datasets on S3, against a real S3-compatible server (moto) on loopback, reached through a
//! proxy that counts requests and bytes and injects faults (see common/s3.rs).
//!
//! Every command reading from S3 must print exactly what it prints for a local dataset
//! converted from the same input; faults must not change that; permanent errors must be one
//! clear line; and a query must cost few requests and bytes.

mod common;
// Declared here rather than in common/mod.rs, so other test binaries do not compile it.
#[path = "common/s3.rs"]
mod s3_server;

use std::path::Path;
use std::process::Command;

use common::*;
use s3_server::{Fault, Moto, Proxy, S3sFs};

const BUCKET: &str = "bams3-test";

/// One test's world: moto, a proxy in front of it, a bucket, a private cache directory.
struct World {
    moto: Moto,
    proxy: Proxy,
    tmp: TempDir,
}

impl World {
    fn new(tag: &str) -> World {
        let moto = Moto::start();
        moto.create_bucket(BUCKET);
        let proxy = Proxy::start(moto.port);
        World {
            moto,
            proxy,
            tmp: TempDir::new(tag),
        }
    }

    /// `bams3 --endpoint-url <proxy>` with test credentials and a private cache.
    fn bams3(&self) -> Command {
        self.bams3_at(&self.proxy.url())
    }

    /// Like [`World::bams3`], with another endpoint.
    fn bams3_at(&self, endpoint: &str) -> Command {
        let mut c = bams3();
        c.arg("--endpoint-url")
            .arg(endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.tmp.join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.tmp.join("no-aws-credentials"),
            )
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE")
            .env("XDG_CACHE_HOME", self.tmp.join("cache"));
        c
    }

    fn uri(&self, name: &str) -> String {
        format!("s3://{BUCKET}/{name}")
    }

    /// GET requests seen since the last reset, and the response bytes they carried.
    fn gets(&self) -> (usize, u64) {
        let seen = self.proxy.seen();
        let gets: Vec<_> = seen.iter().filter(|s| s.method == "GET").collect();
        (gets.len(), gets.iter().map(|s| s.bytes).sum())
    }
}

/// The input of the round-trip and fault tests: real reads, few chunks (every command reads
/// the whole dataset several times, through a slow Python server).
fn input() -> std::path::PathBuf {
    real_bam("na12878-chrM-Y-trunc.bam")
}

/// The input of the cost test: thousands of sparse chunks, as an RNA-seq dataset has.
fn sparse_input() -> std::path::PathBuf {
    real_bam("human_mouse_smaller.bam")
}

/// The bin of the chunk holding the most records: a region over several chunk parts.
fn busy_region(local: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(local.join("_index/spatial.json")).unwrap()).unwrap();
    let mut best = (0, String::new());
    for r in index["references"].as_array().unwrap() {
        for c in r["chunks"].as_array().unwrap() {
            let n = c["count"].as_u64().unwrap();
            if n > best.0 {
                best = (
                    n,
                    format!(
                        "{}:{}-{}",
                        r["name"].as_str().unwrap(),
                        c["bin_start"].as_i64().unwrap() + 1,
                        c["bin_end"].as_i64().unwrap()
                    ),
                );
            }
        }
    }
    best.1
}

/// Output of `cmd`, with the dataset location replaced so local and S3 runs compare.
fn output_of(mut cmd: Command, location: &str) -> Vec<u8> {
    let out = ok(&mut cmd);
    // The creation time differs between two conversions of the same input.
    let text = String::from_utf8_lossy(&out).replace(location, "DATASET");
    let mut kept = String::new();
    for line in text.split_inclusive('\n') {
        if !line.contains("created") {
            kept.push_str(line);
        }
    }
    kept.into_bytes()
}

/// A 100 kb region overlapping exactly one chunk (and the bin of that chunk), from the index.
fn one_chunk_region(local: &Path) -> (String, String) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(local.join("_index/spatial.json")).unwrap()).unwrap();
    let mut best: Option<(u64, String, String)> = None;
    for r in index["references"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let chunks = r["chunks"].as_array().unwrap();
        for c in chunks {
            let first = c["first_pos"].as_i64().unwrap().max(0);
            let (beg, end) = (first, first + 100_000);
            let overlapping = chunks
                .iter()
                .filter(|o| {
                    o["count"].as_u64().unwrap() > 0
                        && o["first_pos"].as_i64().unwrap() < end
                        && o["max_end"].as_i64().unwrap() > beg
                })
                .count();
            let count = c["count"].as_u64().unwrap();
            if overlapping == 1 && best.as_ref().is_none_or(|b| count > b.0) {
                let bin = format!(
                    "{name}:{}-{}",
                    c["bin_start"].as_i64().unwrap() + 1,
                    c["bin_end"].as_i64().unwrap()
                );
                best = Some((count, format!("{name}:{}-{}", beg + 1, end), bin));
            }
        }
    }
    let (_, region, bin) = best.expect("no region overlapping a single chunk");
    (region, bin)
}

/// The same commands on a local dataset and on its S3 copy.
fn same_output(w: &World, local: &Path, remote: &str, region: &str) {
    let l = local.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["query", "-h"],
        vec!["query", "-c"],
        vec!["query", region],
        vec!["stats"],
        vec!["stats", "--json"],
        vec!["depth", region],
        vec!["validate"],
        vec!["export", "-", "--region", region],
    ];
    for args in cases {
        let (cmd, rest) = args.split_first().unwrap();
        let mut lc = bams3();
        lc.arg(cmd).arg(l).args(rest);
        let mut rc = w.bams3();
        rc.arg(cmd).arg(remote).args(rest);
        let a = output_of(lc, l);
        let b = output_of(rc, remote);
        assert!(
            a == b,
            "`bams3 {}` differs between local and S3 ({} vs {} bytes)",
            args.join(" "),
            a.len(),
            b.len()
        );
        assert!(
            !a.is_empty() || args[0] == "validate",
            "{args:?} printed nothing"
        );
    }
}

#[test]
fn convert_to_s3_then_every_command_matches_local() {
    let w = World::new("s3-roundtrip");
    let local = w.tmp.join("local.bams3");
    convert(&input(), &local, &[]);
    let remote = w.uri("sample.bams3/");
    ok(w.bams3().arg("convert").arg(input()).arg(&remote));
    let keys = w.moto.keys(BUCKET, "sample.bams3/");
    assert!(
        keys.iter().any(|k| k == "sample.bams3/_metadata.json"),
        "{keys:?}"
    );
    assert!(keys.iter().all(|k| !k.contains("//")), "{keys:?}");
    same_output(&w, &local, &remote, &busy_region(&local));

    // Converting into a prefix that already holds a dataset is refused.
    fails_with(
        w.bams3().arg("convert").arg(input()).arg(&remote),
        &["already exists"],
    );

    // `rm` deletes a complete dataset only with --force, and nothing beside its prefix.
    w.moto.put(BUCKET, "sample.bams3.bak", b"mine");
    w.moto.put(BUCKET, "sample.bams3x/keep", b"mine");
    fails_with(w.bams3().arg("rm").arg(&remote), &["without --force"]);
    assert!(w.moto.keys(BUCKET, "sample.bams3/").len() > 3);
    ok(w.bams3().arg("rm").arg("--force").arg(&remote));
    assert_eq!(w.moto.keys(BUCKET, "sample.bams3/"), Vec::<String>::new());
    assert_eq!(
        w.moto.keys(BUCKET, "sample.bams3"),
        ["sample.bams3.bak", "sample.bams3x/keep"]
    );
    // A prefix holding anything but dataset objects is never deleted.
    fails_with(
        w.bams3()
            .arg("rm")
            .arg("--force")
            .arg(w.uri("sample.bams3x")),
        &["not part of a BAMS3 dataset", "nothing deleted"],
    );
    assert_eq!(
        w.moto.keys(BUCKET, "sample.bams3x/"),
        ["sample.bams3x/keep"]
    );

    // What a killed conversion leaves (chunks, no _metadata.json) is refused by readers and
    // writers alike until `rm` clears it; then the conversion runs again.
    let partial = w.uri("partial.bams3");
    w.moto.put(
        BUCKET,
        "partial.bams3/data/chrM/000000000-001048576.chunk",
        b"torn",
    );
    fails_with(
        w.bams3().arg("query").arg("-c").arg(&partial),
        &["incomplete dataset", "bams3 rm"],
    );
    fails_with(
        w.bams3().arg("convert").arg(input()).arg(&partial),
        &["incomplete dataset", "--resume", "bams3 rm"],
    );
    // It has no journal (not a conversion that can continue): --resume says so.
    fails_with(
        w.bams3()
            .args(["convert", "--resume"])
            .arg(input())
            .arg(&partial),
        &["without a journal", "bams3 rm"],
    );
    ok(w.bams3().arg("rm").arg(&partial));
    ok(w.bams3().arg("convert").arg(input()).arg(&partial));
    let a = ok(bams3().arg("query").arg("-c").arg(&local));
    let b = ok(w.bams3().arg("query").arg("-c").arg(&partial));
    assert_eq!(a, b);
}

#[test]
fn archive_profile_on_s3_matches_local() {
    // The archive profile's mate and name streams decode from other streams (codecs 6 and 7):
    // a remote reader must fetch those too, whatever field set it asks for (flagstat's).
    let w = World::new("s3-archive");
    let local = w.tmp.join("local.bams3");
    convert(&input(), &local, &["--profile", "archive"]);
    let remote = w.uri("archive.bams3");
    ok(w.bams3()
        .args(["convert", "--profile", "archive"])
        .arg(input())
        .arg(&remote));
    same_output(&w, &local, &remote, &busy_region(&local));
    let a = ok(bams3().arg("flagstat").arg(&local));
    let b = ok(w.bams3().arg("flagstat").arg(&remote));
    assert!(a == b, "flagstat differs between local and S3");
    let want = std::process::Command::new("samtools")
        .arg("flagstat")
        .arg(input())
        .output()
        .expect("samtools runs");
    assert!(
        b == want.stdout,
        "flagstat of the S3 archive dataset differs from samtools flagstat"
    );
}

#[test]
fn convert_reads_its_input_from_s3() {
    let w = World::new("s3-input");
    let bytes = std::fs::read(input()).unwrap();
    w.moto.put(BUCKET, "in/sample.bam", &bytes);
    let local = w.tmp.join("local.bams3");
    convert(&input(), &local, &[]);
    let from_s3 = w.tmp.join("from-s3.bams3");
    ok(w.bams3()
        .arg("convert")
        .arg(w.uri("in/sample.bam"))
        .arg(&from_s3));
    let a = ok(bams3().arg("query").arg("-h").arg(&local));
    let b = ok(bams3().arg("query").arg("-h").arg(&from_s3));
    assert!(a == b, "converting from s3:// changed the records");
}

#[test]
fn long_reference_names_on_s3() {
    // A 301-character name and one whose escaped form passes 255 bytes: their keys use the
    // short fallback segment, the same as on a local disk.
    let w = World::new("s3-long-names");
    let names = [
        format!("contig_{}", "x".repeat(294)),
        format!("c{}", "*".repeat(100)),
    ];
    let mut sam = String::from("@HD\tVN:1.6\tSO:coordinate\n");
    for n in &names {
        sam.push_str(&format!("@SQ\tSN:{n}\tLN:5000\n"));
    }
    for (i, n) in names.iter().enumerate() {
        for k in 0..10 {
            let pos = 100 + k * 50;
            sam.push_str(&format!(
                "r{i}_{k}\t0\t{n}\t{pos}\t60\t4M\t*\t0\t0\tACGT\tIIII\n"
            ));
        }
    }
    let input = w.tmp.join("long.sam");
    std::fs::write(&input, sam).unwrap();
    let local = w.tmp.join("local.bams3");
    convert(&input, &local, &[]);
    let remote = w.uri("long.bams3/");
    ok(w.bams3().arg("convert").arg(&input).arg(&remote));
    let keys = w.moto.keys(BUCKET, "long.bams3/data/");
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        let folder = k.split('/').nth(2).unwrap();
        assert!(folder.len() <= 255 && folder.contains('~'), "{k}");
        assert!(
            local.join(k.trim_start_matches("long.bams3/")).is_file(),
            "{k} not local"
        );
    }
    for n in &names {
        let region = format!("{{{n}}}:200-400");
        let a = ok(bams3().arg("query").arg(&local).arg(&region));
        let b = ok(w.bams3().arg("query").arg(&remote).arg(&region));
        assert!(!a.is_empty() && a == b, "{region}: local and S3 differ");
    }
}

#[test]
fn faults_are_retried_and_change_nothing() {
    let w = World::new("s3-faults");
    let local = w.tmp.join("local.bams3");
    convert(&input(), &local, &[]);
    let remote = w.uri("faulty.bams3");
    let all = [Fault::SlowDown, Fault::Reset, Fault::Truncate];
    // Every 3rd request fails, during the conversion (uploads) and every read after it.
    w.proxy.set_faults(Some(3), &all);
    ok(w.bams3().arg("convert").arg(input()).arg(&remote));
    same_output(&w, &local, &remote, &busy_region(&local));
    let seen = w.proxy.seen();
    for f in all {
        assert!(
            seen.iter().any(|s| s.fault == Some(f)),
            "fault {f:?} was never injected"
        );
    }
    // The same with every object over 64 KiB (all chunks) uploaded in parts: create, part,
    // complete, each of them hit by faults too.
    w.proxy.reset_counts();
    let parts = w.uri("multipart.bams3");
    ok(w.bams3()
        .env("BAMS3_S3_MULTIPART_THRESHOLD", "65536")
        .arg("convert")
        .arg(input())
        .arg(&parts));
    let seen = w.proxy.seen();
    let count = |f: &dyn Fn(&s3_server::Seen) -> bool| seen.iter().filter(|s| f(s)).count();
    // Chunks over the threshold (the same bytes as the local dataset's).
    let chunks = find_chunks(&local.join("data"))
        .iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() > 65536)
        .count();
    assert!(chunks >= 5, "{chunks} chunks over 64 KiB");
    let completed =
        count(&|s| s.method == "POST" && s.target.contains("uploadId=") && s.status == 200);
    assert!(
        completed >= chunks,
        "{completed} multipart uploads completed for {chunks} chunks"
    );
    assert!(count(&|s| s.method == "PUT" && s.target.contains("partNumber=")) >= chunks);
    assert!(
        count(&|s| s.fault.is_some() && s.target.contains("uploadId=")) > 0,
        "no fault hit a part"
    );
    same_output(&w, &local, &parts, &busy_region(&local));
    // Input streamed from S3 survives faults too (a cut body resumes with a ranged GET).
    w.moto
        .put(BUCKET, "in/x.bam", &std::fs::read(input()).unwrap());
    let out = w.tmp.join("from-faulty.bams3");
    w.proxy
        .set_faults(Some(2), &[Fault::Truncate, Fault::SlowDown]);
    ok(w.bams3().arg("convert").arg(w.uri("in/x.bam")).arg(&out));
    w.proxy.set_faults(None, &[]);
    let a = ok(bams3().arg("query").arg(&local));
    let b = ok(bams3().arg("query").arg(&out));
    assert!(a == b, "faults changed a conversion from s3://");
}

#[test]
fn permanent_errors_are_one_clear_line() {
    let w = World::new("s3-errors");
    fails_with(
        w.bams3()
            .arg("stats")
            .arg("s3://no-such-bucket-here/x.bams3"),
        &["no such bucket", "no-such-bucket-here"],
    );
    fails_with(
        w.bams3().arg("query").arg(w.uri("missing.bams3")),
        &["missing.bams3", "no bams3 dataset"],
    );
    // Incomplete: objects but no _metadata.json.
    w.moto.put(BUCKET, "partial.bams3/_header.json", b"{}");
    fails_with(
        w.bams3().arg("query").arg(w.uri("partial.bams3")),
        &["incomplete"],
    );
    fails_with(
        w.bams3()
            .arg("convert")
            .arg(w.uri("in/none.bam"))
            .arg(w.tmp.join("x.bams3")),
        &["in/none.bam", "not found"],
    );
    // A store that never stops throttling (moto does not check signatures, so the proxy
    // plays a store that throttles every request).
    let refuse = s3_server::Proxy::start(w.moto.port);
    refuse.set_faults(Some(1), &[Fault::SlowDown]);
    let mut c = w.bams3_at(&refuse.url());
    c.arg("stats").arg(w.uri("x.bams3"));
    // Throttled on every attempt: bounded retries, then one line.
    fails_with(&mut c, &["gave up after"]);
    // No credentials at all.
    fails_with(
        w.bams3()
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .arg("stats")
            .arg(w.uri("x.bams3")),
        &["credentials"],
    );
    // A failed conversion to S3 leaves no _metadata.json.
    let bad = w.tmp.join("bad.bam");
    let src = std::fs::read(input()).unwrap();
    std::fs::write(&bad, &src[..src.len() / 2]).unwrap();
    let mut c = w.bams3();
    c.arg("convert").arg(&bad).arg(w.uri("bad.bams3"));
    let out = run(&mut c);
    check_clean_failure(&c, &out);
    let keys = w.moto.keys(BUCKET, "bad.bams3/");
    assert!(
        keys.iter().all(|k| !k.ends_with("_metadata.json")),
        "failed conversion left {keys:?}"
    );
}

#[test]
fn a_store_that_checks_signatures() {
    // s3s-fs verifies every request's signature, which moto does not: a second, independent
    // server for the round trip, and the only way to see rejected credentials for real.
    let tmp = TempDir::new("s3s-fs");
    let server = S3sFs::start(&tmp.join("root"), "bams3-key", "bams3-secret");
    server.create_bucket("signed");
    let with = |key: &str, secret: &str| {
        let mut c = bams3();
        c.arg("--endpoint-url")
            .arg(server.url())
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
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
    };
    let good = || with("bams3-key", "bams3-secret");
    let local = tmp.join("local.bams3");
    convert(&input(), &local, &[]);
    let uri = "s3://signed/sample.bams3";
    ok(good().arg("convert").arg(input()).arg(uri));
    for args in [
        vec!["query", "-h"],
        vec!["stats", "--json"],
        vec!["validate"],
    ] {
        let (cmd, rest) = args.split_first().unwrap();
        let a = output_of(
            {
                let mut c = bams3();
                c.arg(cmd).arg(&local).args(rest);
                c
            },
            local.to_str().unwrap(),
        );
        let b = output_of(
            {
                let mut c = good();
                c.arg(cmd).arg(uri).args(rest);
                c
            },
            uri,
        );
        assert!(
            a == b,
            "`bams3 {}` differs between local and s3s-fs",
            args.join(" ")
        );
    }

    // Rejected credentials: one line saying what to fix, and a conversion writes nothing.
    fails_with(
        with("bams3-key", "wrong-secret").arg("stats").arg(uri),
        &["rejected the credentials", "SignatureDoesNotMatch"],
    );
    fails_with(
        with("someone-else", "bams3-secret").arg("stats").arg(uri),
        &["rejected the credentials"],
    );
    fails_with(
        with("bams3-key", "wrong-secret")
            .arg("convert")
            .arg(input())
            .arg("s3://signed/refused.bams3"),
        &["rejected the credentials"],
    );
    assert!(
        server
            .keys("signed")
            .iter()
            .all(|k| !k.starts_with("refused.bams3")),
        "{:?}",
        server.keys("signed")
    );
    // Unsigned requests to a private bucket.
    fails_with(
        good().arg("--no-sign-request").arg("stats").arg(uri),
        &["access denied", "signed"],
    );
}

#[test]
fn requests_and_bytes_per_query() {
    let w = World::new("s3-costs");
    let local = w.tmp.join("local.bams3");
    convert(&sparse_input(), &local, &[]);
    let remote = w.uri("costs.bams3");
    ok(w.bams3().arg("convert").arg(sparse_input()).arg(&remote));
    let (region, bin) = one_chunk_region(&local);

    w.proxy.reset_counts();
    let cold = ok(w.bams3().arg("query").arg(&remote).arg(&region));
    let (cold_gets, cold_bytes) = w.gets();
    let cold_all = w.proxy.seen().len();
    assert!(
        cold_gets <= 4 && cold_all <= 4,
        "cold query: {cold_gets} GETs, {cold_all} requests: {:#?}",
        w.proxy.seen()
    );
    // The header comes with _metadata.json (one GET fewer).
    assert!(
        !w.proxy
            .seen()
            .iter()
            .any(|s| s.target.contains("_header.json")),
        "{:#?}",
        w.proxy.seen()
    );
    // Bytes: the streams the region needs, the metadata (with its header copy), and only
    // the index sections near the region (never the index of all 4,660 chunks).
    let cost = region_cost(&local, &region);
    assert!(
        cold_bytes as f64 <= 1.2 * cost.streams as f64 + (cost.metadata + cost.sections) as f64,
        "cold query fetched {cold_bytes} bytes; {cost:?}"
    );
    assert!(
        cold_bytes * 10 < cost.index,
        "cold query fetched {cold_bytes} bytes, the whole index is {}",
        cost.index
    );

    w.proxy.reset_counts();
    let warm = ok(w.bams3().arg("query").arg(&remote).arg(&region));
    let warm_all = w.proxy.seen().len();
    assert!(warm_all <= 2, "warm query: {:#?}", w.proxy.seen());
    assert!(warm == cold, "warm and cold answers differ");
    assert!(
        w.proxy.seen().iter().any(|s| s.status == 304),
        "no revalidation"
    );

    // With --cache-chunks, a repeated query needs only the revalidation.
    ok(w.bams3()
        .arg("--cache-chunks")
        .arg("query")
        .arg(&remote)
        .arg(&region));
    w.proxy.reset_counts();
    ok(w.bams3()
        .arg("--cache-chunks")
        .arg("query")
        .arg(&remote)
        .arg(&region));
    assert!(w.proxy.seen().len() <= 1, "{:#?}", w.proxy.seen());
    ok(w.bams3().arg("cache").arg("clear"));
    assert!(!w.tmp.join("cache/bams3/s3-meta").exists());

    // A count of a region holding whole chunks comes from the index: no chunk is fetched.
    ok(w.bams3().arg("query").arg("-c").arg(&remote).arg(&bin));
    w.proxy.reset_counts();
    let n = ok(w.bams3().arg("query").arg("-c").arg(&remote).arg(&bin));
    assert_eq!(n, ok(bams3().arg("query").arg("-c").arg(&local).arg(&bin)));
    assert!(
        w.proxy.seen().iter().all(|s| !s.target.contains("/data/")),
        "query -c fetched chunk data: {:#?}",
        w.proxy.seen()
    );

    // Depth fetches only the coverage streams.
    w.proxy.reset_counts();
    ok(w.bams3().arg("query").arg(&remote).arg(&bin));
    let (_, full) = w.gets();
    w.proxy.reset_counts();
    ok(w.bams3().arg("depth").arg(&remote).arg(&bin));
    let (_, depth) = w.gets();
    assert!(
        depth * 5 <= full,
        "depth fetched {depth} bytes, a full query {full}"
    );
    eprintln!(
        "costs: cold query {cold_gets} GETs {cold_bytes} bytes; warm {warm_all} requests; \
         bin {bin}: query {full} bytes, depth {depth} bytes"
    );

    // A rewritten dataset is never served stale from the cache.
    ok(w.bams3().arg("query").arg("-c").arg(&remote).arg(&region));
    // Rewrite the prefix in place with another dataset (moto takes unsigned PUTs), metadata
    // last as the writer does.
    let tiny = real_bam("NA12878.chr22.tiny.bam");
    let l = w.tmp.join("tiny.bams3");
    convert(&tiny, &l, &[]);
    let mut files = Vec::new();
    let mut stack = vec![l.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort_by_key(|p| p.ends_with("_metadata.json"));
    // As a dataset written before index sections and the header copy existed: readers
    // fetch the whole index and _header.json.
    let meta = l.join("_metadata.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let fields = m.as_object_mut().unwrap();
    assert!(fields.remove("index_sections").is_some());
    assert!(fields.remove("header").is_some());
    std::fs::write(&meta, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    for f in files {
        let rel = f
            .strip_prefix(&l)
            .unwrap()
            .to_str()
            .unwrap()
            .replace('\\', "/");
        w.moto.put(
            BUCKET,
            &format!("costs.bams3/{rel}"),
            &std::fs::read(&f).unwrap(),
        );
    }
    let a = ok(w.bams3().arg("query").arg("-c").arg(&remote));
    let b = ok(bams3().arg("query").arg("-c").arg(&l));
    assert!(
        a == b,
        "stale metadata served after the dataset was rewritten"
    );
    let span = "q:1-5000";
    let a = ok(w.bams3().arg("query").arg(&remote).arg(span));
    let b = ok(bams3().arg("query").arg(&l).arg(span));
    assert!(
        !a.is_empty() && a == b,
        "a dataset without index sections reads differently"
    );
}

/// What a full-record query of `region` needs from a dataset, in bytes, by its local copy.
#[derive(Debug)]
struct RegionCost {
    /// Stored bytes (streams and record blocks) of the chunks overlapping the region.
    streams: u64,
    /// `_metadata.json` (which carries a copy of the header).
    metadata: u64,
    /// Index sections (listed in `_metadata.json`) that can overlap the region.
    sections: u64,
    /// The whole `_index/spatial.json`.
    index: u64,
}

fn region_cost(local: &Path, region: &str) -> RegionCost {
    let read = |k: &str| std::fs::read(local.join(k)).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&read("_metadata.json")).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&read("_index/spatial.json")).unwrap();
    let (name, span) = region.rsplit_once(':').unwrap();
    let (beg, end) = span.split_once('-').unwrap();
    let (beg, end) = (beg.parse::<i64>().unwrap() - 1, end.parse::<i64>().unwrap());
    let refs = index["references"].as_array().unwrap();
    let ref_id = refs.iter().position(|r| r["name"] == name).unwrap() as i64;
    let overlaps = |v: &serde_json::Value, first: &str, last: &str| {
        v[first].as_i64().unwrap() < end && v[last].as_i64().unwrap() > beg
    };
    // Every stored byte of those chunks but their headers (the index's stream table gives a
    // blocked stream's directory only; its blocks are in the rest of the object).
    const CHUNK_HEADER: u64 = 16 + 32 * 14 + 4;
    let streams = refs[ref_id as usize]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["count"].as_u64().unwrap() > 0 && overlaps(c, "first_pos", "max_end"))
        .map(|c| c["stored_bytes"].as_u64().unwrap() - CHUNK_HEADER)
        .sum();
    let sections = meta["index_sections"]
        .as_array()
        .expect("the writer records index sections")
        .iter()
        .filter(|s| s[0].as_i64() == Some(ref_id))
        .filter(|s| s[1].as_i64().unwrap() < end && s[2].as_i64().unwrap() > beg)
        .map(|s| s[4].as_u64().unwrap())
        .sum();
    RegionCost {
        streams,
        metadata: read("_metadata.json").len() as u64,
        sections,
        index: read("_index/spatial.json").len() as u64,
    }
}
