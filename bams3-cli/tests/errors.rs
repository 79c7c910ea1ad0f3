//! Bad input and broken datasets: every failure is a non-zero exit that is not a
//! panic (exit code 101), with exactly one line on stderr naming the problem, and a
//! failed convert never leaves a `_metadata.json` behind.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tiny() -> PathBuf {
    real_bam("NA12878.chr22.tiny.bam")
}

/// Converts `input` into a fresh dataset in `tmp` and asserts a clean failure whose
/// message contains every phrase; asserts no `_metadata.json` was left.
fn convert_fails(tmp: &TempDir, input: &Path, phrases: &[&str]) -> String {
    let ds = tmp.join("out.bams3");
    let mut cmd = bams3();
    cmd.arg("convert").arg(input).arg(&ds);
    let line = fails_with(&mut cmd, phrases);
    let left = find_metadata(tmp.path());
    assert!(left.is_empty(), "failed `{}` left {left:?}", describe(&cmd));
    let _ = fs::remove_dir_all(&ds);
    line
}

#[test]
fn truncated_bam() {
    let src = fs::read(tiny()).unwrap();
    let len = src.len();
    // Offsets inside the BGZF header, the BAM header, the first records, a block
    // boundary region and just before the end (not only the EOF marker, which
    // samtools treats as a warning).
    let offsets = [
        1,
        10,
        17,
        100,
        1000,
        len / 3,
        len / 2,
        len * 9 / 10,
        len - 100,
    ];
    let mut failures = Vec::new();
    for cut in offsets {
        let tmp = TempDir::new(&format!("trunc{cut}"));
        let input = tmp.join(format!("truncated-at-{cut}.bam"));
        fs::write(&input, &src[..cut]).unwrap();
        // The oracle agrees it is broken.
        let st = run(samtools().args(["view", "-c"]).arg(&input));
        assert!(!st.status.success(), "samtools reads the BAM cut at {cut}");
        soft(&mut failures, || {
            convert_fails(&tmp, &input, &[&format!("truncated-at-{cut}.bam")]);
        });

        // The same bytes on stdin.
        soft(&mut failures, || {
            let ds = tmp.join("stdin.bams3");
            let mut cmd = bams3();
            cmd.arg("convert").arg("-").arg(&ds);
            let out = run_with_stdin(&mut cmd, &src[..cut]);
            check_clean_failure(&cmd, &out);
            assert!(
                find_metadata(tmp.path()).is_empty(),
                "failed convert from stdin (cut at {cut}) left _metadata.json"
            );
        });
    }
    assert_no_failures("truncated BAM", &failures);
}

#[test]
fn garbage_input() {
    let tmp = TempDir::new("garbage");
    let mut rng = Lcg::new(42);
    let bytes: Vec<u8> = (0..100_000).map(|_| rng.below(256) as u8).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random.bam", bytes.clone()),
        ("empty.bam", vec![]),
        ("text.sam", b"this is not\ta SAM file\nat all\n".to_vec()),
        ("gzip-not-bgzf.bam", {
            // Valid gzip magic followed by garbage.
            let mut v = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
            v.extend_from_slice(&bytes[..1000]);
            v
        }),
        (
            "bad-record.sam",
            b"@SQ\tSN:chr1\tLN:1000\nr1\tnotaflag\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\t####\n".to_vec(),
        ),
    ];
    let mut failures = Vec::new();
    for (name, data) in cases {
        let input = tmp.join(name);
        fs::write(&input, &data).unwrap();
        soft(&mut failures, || {
            convert_fails(&tmp, &input, &[name]);
        });
        soft(&mut failures, || {
            let ds = tmp.join("stdin.bams3");
            let mut cmd = bams3();
            cmd.arg("convert").arg("-").arg(&ds);
            let out = run_with_stdin(&mut cmd, &data);
            check_clean_failure(&cmd, &out);
            assert!(
                find_metadata(tmp.path()).is_empty(),
                "{name} on stdin left _metadata.json"
            );
        });
    }
    // A missing input file.
    soft(&mut failures, || {
        convert_fails(&tmp, &tmp.join("no-such-file.bam"), &["no-such-file.bam"]);
    });
    assert_no_failures("garbage input", &failures);
}

fn converted(tag: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new(tag);
    let ds = tmp.join("ds.bams3");
    convert(&tiny(), &ds, &[]);
    (tmp, ds)
}

#[test]
fn corrupt_chunk() {
    let (tmp, ds) = converted("corrupt");
    let chunks = find_chunks(&ds.join("data"));
    assert!(!chunks.is_empty(), "no .chunk files under {}", ds.display());
    // The biggest chunk holds records; flip one byte in its middle.
    let chunk = chunks
        .iter()
        .max_by_key(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap()
        .clone();
    let mut bytes = fs::read(&chunk).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    fs::write(&chunk, &bytes).unwrap();
    let chunk_name = chunk.file_name().unwrap().to_string_lossy().into_owned();

    fails_with(bams3().arg("validate").arg(&ds), &[&chunk_name]);
    fails_with(
        bams3().arg("export").arg(&ds).arg(tmp.join("x.bam")),
        &[&chunk_name],
    );
    fails_with(bams3().arg("query").arg(&ds).arg("q"), &[&chunk_name]);
    // `-c` decodes only the coverage streams of the chunks a region covers in part: damage
    // the position stream (stream 1) too, and count at a position inside the chunk.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(ds.join("_index/spatial.json")).unwrap()).unwrap();
    let entry = index["references"][0]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"].as_str().unwrap().ends_with(&chunk_name))
        .unwrap();
    let pos_stream = &entry["streams"][1];
    let at = pos_stream[0].as_u64().unwrap() + pos_stream[1].as_u64().unwrap() / 2;
    bytes[at as usize] ^= 0x5a;
    fs::write(&chunk, &bytes).unwrap();
    let inside = entry["first_pos"].as_i64().unwrap() + 2;
    fails_with(
        bams3()
            .args(["query", "-c"])
            .arg(&ds)
            .arg(format!("q:{inside}-{inside}")),
        &[&chunk_name],
    );
    // Chunks wholly inside the region are counted from the index, as documented (`validate`
    // is the check of every byte).
    let n = ok(bams3().args(["query", "-c"]).arg(&ds).arg("q"));
    assert_eq!(String::from_utf8(n).unwrap().trim(), entry_total(&index));
}

/// Records of reference 0 by the index.
fn entry_total(index: &serde_json::Value) -> String {
    index["references"][0]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum::<u64>()
        .to_string()
}

#[test]
fn index_sections_that_disagree_with_the_index() {
    // Several references, so several sections (dropping the only one would look like a
    // dataset written before sections existed, which is valid).
    let tmp = TempDir::new("sections");
    let ds = tmp.join("ds.bams3");
    convert(&real_bam("na12878-chrM-Y-trunc.bam"), &ds, &[]);
    ok(bams3().arg("validate").arg(&ds));
    let meta = ds.join("_metadata.json");
    let original: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let sections = original["index_sections"].as_array().unwrap();
    assert!(sections.len() > 1, "{sections:?}");
    // Each lie in turn: a byte range one byte short, a wrong CRC, a position range that
    // would hide chunks from a region query, and a section dropped.
    type Lie = fn(&mut serde_json::Value);
    let lies: [(&str, Lie); 4] = [
        ("checksum", |s| {
            s[0][4] = (s[0][4].as_u64().unwrap() - 1).into()
        }),
        ("checksum", |s| {
            s[0][5] = (s[0][5].as_u64().unwrap() ^ 1).into()
        }),
        ("position range", |s| {
            s[0][2] = (s[0][2].as_i64().unwrap() - 1).into()
        }),
        ("cover", |s| {
            s.as_array_mut().unwrap().pop();
        }),
    ];
    for (phrase, lie) in lies {
        let mut m = original.clone();
        lie(&mut m["index_sections"]);
        fs::write(&meta, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        fails_with(bams3().arg("validate").arg(&ds), &["index section", phrase]);
    }
    // Readers take the header from its copy in _metadata.json; _header.json must agree.
    fs::write(&meta, serde_json::to_vec_pretty(&original).unwrap()).unwrap();
    ok(bams3().arg("validate").arg(&ds));
    let hpath = ds.join("_header.json");
    let mut h: serde_json::Value = serde_json::from_slice(&fs::read(&hpath).unwrap()).unwrap();
    assert_eq!(h, original["header"], "_metadata.json carries the header");
    h["text"] = format!("{}@CO\tedited\n", h["text"].as_str().unwrap()).into();
    fs::write(&hpath, serde_json::to_vec(&h).unwrap()).unwrap();
    fails_with(
        bams3().arg("validate").arg(&ds),
        &["_header.json", "differs from the header in _metadata.json"],
    );
}

#[test]
fn truncated_chunk() {
    let (_tmp, ds) = converted("shortchunk");
    let chunks = find_chunks(&ds.join("data"));
    let chunk = chunks
        .iter()
        .max_by_key(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap()
        .clone();
    let bytes = fs::read(&chunk).unwrap();
    fs::write(&chunk, &bytes[..bytes.len() / 2]).unwrap();
    let chunk_name = chunk.file_name().unwrap().to_string_lossy().into_owned();
    fails_with(bams3().arg("validate").arg(&ds), &[&chunk_name]);
    fails_with(bams3().arg("query").arg(&ds).arg("q"), &[&chunk_name]);
}

#[test]
fn missing_metadata_is_incomplete() {
    let (tmp, ds) = converted("incomplete");
    fs::remove_file(ds.join("_metadata.json")).unwrap();
    let phrase = "incomplete dataset";
    fails_with(bams3().arg("validate").arg(&ds), &[phrase]);
    fails_with(bams3().arg("stats").arg(&ds), &[phrase]);
    fails_with(bams3().args(["stats", "--json"]).arg(&ds), &[phrase]);
    fails_with(bams3().arg("query").arg(&ds).arg("q"), &[phrase]);
    fails_with(
        bams3().arg("export").arg(&ds).arg(tmp.join("x.bam")),
        &[phrase, "bams3 rm"],
    );
    // The way out: `bams3 rm` takes the whole directory, then the same output converts again.
    ok(bams3().arg("rm").arg(&ds));
    assert!(!ds.exists(), "bams3 rm left {}", ds.display());
    convert(&tiny(), &ds, &[]);
    fails_with(bams3().arg("rm").arg(&ds), &["without --force"]);
    // A directory with other files in it is not removed, with or without --force.
    fs::write(ds.join("notes.txt"), b"mine").unwrap();
    fails_with(bams3().args(["rm", "--force"]).arg(&ds), &["notes.txt"]);
    assert!(ds.join("_metadata.json").is_file());
    // Not a dataset at all.
    let empty = tmp.join("empty-dir");
    fs::create_dir(&empty).unwrap();
    let mut cmd = bams3();
    cmd.arg("query").arg(&empty).arg("q");
    let out = run(&mut cmd);
    check_clean_failure(&cmd, &out);
    let mut cmd = bams3();
    cmd.arg("validate").arg(tmp.join("no-such-dataset"));
    let out = run(&mut cmd);
    check_clean_failure(&cmd, &out);
}

#[test]
fn unknown_reference_and_bad_regions() {
    let (_tmp, ds) = converted("badregion");
    fails_with(
        bams3().arg("query").arg(&ds).arg("chrNOPE:1-100"),
        &["chrNOPE"],
    );
    fails_with(bams3().arg("query").arg(&ds).arg("chrNOPE"), &["chrNOPE"]);
    fails_with(
        bams3()
            .args(["query", "-c"])
            .arg(&ds)
            .args(["q:1-10", "nope2"]),
        &["nope2"],
    );
    // Malformed coordinates.
    for bad in ["q:abc-100", "q:100-50", "q:-5", "q:0-0x"] {
        let mut cmd = bams3();
        cmd.arg("query").arg(&ds).arg(bad);
        let out = run(&mut cmd);
        // samtools treats some of these as empty; require only "no panic".
        assert!(
            !panicked(&out),
            "PANIC: {}\n{}",
            describe(&cmd),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn output_already_exists() {
    let tmp = TempDir::new("exists");
    // An existing directory (here: a complete dataset) is never overwritten.
    let ds = tmp.join("ds.bams3");
    convert(&tiny(), &ds, &[]);
    let before = fs::read(ds.join("_metadata.json")).unwrap();
    let name = ds.file_name().unwrap().to_string_lossy().into_owned();
    fails_with(
        bams3().arg("convert").arg(tiny()).arg(&ds),
        &[&name, "exist"],
    );
    assert_eq!(fs::read(ds.join("_metadata.json")).unwrap(), before);

    // An existing plain file.
    let file = tmp.join("plain-file");
    fs::write(&file, b"keep me").unwrap();
    fails_with(
        bams3().arg("convert").arg(tiny()).arg(&file),
        &["plain-file", "exist"],
    );
    assert_eq!(fs::read(&file).unwrap(), b"keep me");
    // An existing empty directory.
    let dir = tmp.join("empty-dir");
    fs::create_dir(&dir).unwrap();
    fails_with(
        bams3().arg("convert").arg(tiny()).arg(&dir),
        &["empty-dir", "exist"],
    );
    assert!(find_metadata(&dir).is_empty());
}

#[test]
fn convert_into_non_writable_location() {
    let tmp = TempDir::new("nonwritable");
    // A path below a regular file cannot be created, even by root.
    let blocker = tmp.join("blocker");
    fs::write(&blocker, b"x").unwrap();
    let out = blocker.join("sub").join("ds.bams3");
    let mut cmd = bams3();
    cmd.arg("convert").arg(tiny()).arg(&out);
    fails_with(&mut cmd, &["ds.bams3"]);
    assert!(find_metadata(tmp.path()).is_empty());

    // /proc is not writable for anyone.
    let mut cmd = bams3();
    cmd.arg("convert").arg(tiny()).arg("/proc/bams3-test.bams3");
    fails_with(&mut cmd, &["/proc/bams3-test.bams3"]);

    // Export into a non-writable location.
    let (_t, ds) = converted("nonwritable-export");
    let target = blocker.join("x.bam");
    fails_with(bams3().arg("export").arg(&ds).arg(&target), &["x.bam"]);
}

/// `bams3 query ... | head -1`: a closed stdout is not a panic.
#[test]
fn closed_stdout_is_not_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let tmp = TempDir::new("epipe");
    let ds = tmp.join("ds.bams3");
    convert(&real_bam("human_mouse_smaller.bam"), &ds, &[]);
    for args in [vec!["query"], vec!["export"]] {
        let mut cmd = bams3();
        cmd.args(&args).arg(&ds);
        if args[0] == "export" {
            cmd.arg("-");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut r = BufReader::new(child.stdout.take().unwrap());
            let mut line = Vec::new();
            let _ = r.read_until(b'\n', &mut line);
        } // stdout closed here
        let out = child.wait_with_output().unwrap();
        assert!(
            !panicked(&out),
            "`{} | head -1` panicked:\n{}",
            describe(&cmd),
            String::from_utf8_lossy(&out.stderr)
        );
        // SAM text is formatted on a second thread past the first batch of records: the
        // closed pipe it meets must still end the command quietly, as samtools does.
        if args[0] == "query" {
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "`{} | head -1`: {:?}\n{}",
                describe(&cmd),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Inputs that used to be refused although valid: a reference named like an unplaced part
/// (its folder collided with `data/unmapped.p1.chunk`), and plain-gzip SAM.
#[test]
fn names_and_compressions_that_used_to_fail() {
    let tmp = TempDir::new("names-gzip");
    // Enough unplaced reads for a second unplaced part (parts hold 2 MiB of BAM records).
    let mut sam = String::from(
        "@HD\tVN:1.6\n@SQ\tSN:unmapped.p1.chunk\tLN:1000\n@SQ\tSN:unmapped.chunk\tLN:1000\n",
    );
    sam.push_str("r0\t0\tunmapped.p1.chunk\t10\t60\t4M\t*\t0\t0\tACGT\tIIII\n");
    sam.push_str("r1\t0\tunmapped.chunk\t20\t60\t4M\t*\t0\t0\tACGT\tIIII\n");
    let seq = "ACGT".repeat(75);
    let qual = "I".repeat(300);
    for i in 0..9000 {
        sam.push_str(&format!("u{i}\t4\t*\t0\t0\t*\t*\t0\t0\t{seq}\t{qual}\n"));
    }
    let plain = tmp.join("in.sam");
    std::fs::write(&plain, &sam).unwrap();
    let ds = tmp.join("ds");
    ok(bams3().arg("convert").arg("--quiet").arg(&plain).arg(&ds));
    assert!(
        ds.join("data/unmapped.p1.chunk").is_file(),
        "the test needs a second unplaced part"
    );
    let all = lines(&ok(bams3().arg("query").arg(&ds)));
    assert_eq!(all.len(), 9002);
    let one = lines(&ok(bams3().arg("query").arg(&ds).arg("unmapped.p1.chunk")));
    assert_eq!(one.len(), 1, "{one:?}");
    assert!(one[0].starts_with("r0\t"));
    ok(bams3().arg("validate").arg(&ds));

    // The same SAM compressed with plain gzip (not BGZF) converts to the same records.
    let gz = tmp.join("in.sam.gz");
    let status = Command::new("gzip")
        .arg("-k")
        .arg(&plain)
        .status()
        .expect("gzip runs");
    assert!(status.success());
    let ds_gz = tmp.join("ds-gz");
    ok(bams3().arg("convert").arg("--quiet").arg(&gz).arg(&ds_gz));
    assert_eq!(lines(&ok(bams3().arg("query").arg(&ds_gz))), all);
}
