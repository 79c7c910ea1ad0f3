//! CRAM input: `bams3 convert in.cram` stores exactly the records `samtools view` decodes from
//! the CRAM (compared as `samtools view` text of the dataset's export), for the CRAM files of
//! the Debian test suites and for CRAM 3.0 and 3.1 that samtools writes from every real test BAM
//! and from the suites' SAM files that have a reference; from a file, standard input and S3;
//! and a missing, wrong or cut-short input is a one-line error that leaves no dataset.
//!
//! Only ex1.bam and ex1_unsort.bam among the real BAMs have their reference in the test data
//! (samtools' examples/ex1.fa): they are written with an external and an embedded reference.
//! The others are written without one (`no_ref`), which still runs every codec on their
//! names, bases, qualities and tags.

mod common;
#[path = "common/s3.rs"]
mod s3_server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use s3_server::Moto;

const HTSLIB_TEST: &str = "/usr/share/htslib-test/test";
const SAMTOOLS_TEST: &str = "/usr/share/samtools/test";
const EX1_FA: &str = "/usr/share/doc/samtools/examples/ex1.fa";

/// Points REF_PATH and REF_CACHE (for samtools and bams3 alike) at an empty private directory:
/// references come only from what a test gives, never from a user's cache or the network.
fn isolate_references() {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bams3-cram-refs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Set once, before any test spawns a command (std serialises env access with spawns).
        std::env::set_var("REF_PATH", &dir);
        std::env::set_var("REF_CACHE", dir.join("%s"));
        dir
    });
}

/// How a CRAM holds its reference.
#[derive(Clone, Copy, Debug)]
enum Refs<'a> {
    /// Against this FASTA, not stored.
    External(&'a Path),
    /// Stored in the file (`embed_ref`).
    Embedded(&'a Path),
    /// Bases stored verbatim (`no_ref`).
    None,
}

/// `samtools view -C` of `input` as CRAM `version` (e.g. "3.1" or "3.1,archive"); false when
/// samtools refuses the input (some suite files are meant to be invalid).
fn write_cram(input: &Path, out: &Path, version: &str, refs: Refs) -> bool {
    let (version, profile) = version.split_once(',').unwrap_or((version, ""));
    let mut cmd = samtools();
    cmd.args(["view", "--no-PG", "-C", "--output-fmt-option"])
        .arg(format!("version={version}"));
    if !profile.is_empty() {
        cmd.args(["--output-fmt-option", profile]);
    }
    match refs {
        Refs::External(fa) => {
            cmd.arg("-T").arg(fa);
        }
        Refs::Embedded(fa) => {
            cmd.arg("-T")
                .arg(fa)
                .args(["--output-fmt-option", "embed_ref=1"]);
        }
        Refs::None => {
            cmd.args(["--output-fmt-option", "no_ref=1"]);
        }
    }
    cmd.arg("-o").arg(out).arg(input);
    run(&mut cmd).status.success()
}

/// `samtools view --no-PG [-T fasta] args file` as lines.
fn view(file: &Path, fasta: Option<&Path>, args: &[&str]) -> Vec<String> {
    let mut cmd = samtools();
    cmd.args(["view", "--no-PG"]).args(args);
    if let Some(fa) = fasta {
        cmd.arg("-T").arg(fa);
    }
    lines(&ok(cmd.arg(file)))
}

/// Compares the export of a dataset converted from `cram` with what samtools decodes from it:
/// the header and the records, in order when the CRAM is in coordinate order, otherwise as
/// `samtools sort` orders them (export writes coordinate order). `None` when they agree.
fn compare_with_samtools(cram: &Path, fasta: Option<&Path>, exported: &Path) -> Option<String> {
    let mut want_records = view(cram, fasta, &[]);
    let mut want_header = view(cram, fasta, &["-H"]);
    let refs = ref_names(&want_header.join("\n"));
    if !is_coordinate_sorted(&want_records, &refs) {
        let mut cmd = samtools();
        cmd.args(["sort", "--no-PG", "-O", "sam", "-o", "-"]);
        if let Some(fa) = fasta {
            cmd.arg("--reference").arg(fa);
        }
        let sorted = lines(&ok(cmd.arg(cram)));
        let (h, r): (Vec<String>, Vec<String>) =
            sorted.into_iter().partition(|l| l.starts_with('@'));
        // The header is `samtools view -H`'s with sort's @HD line (SO:coordinate), as export
        // writes it: `samtools sort --reference` also rewrites @SQ LN to the FASTA's lengths
        // where they disagree (ex1_unsort.bam's do), which `samtools view -H` does not.
        let hd = h.iter().find(|l| l.starts_with("@HD")).cloned();
        if let Some(hd) = hd
            .as_ref()
            .filter(|_| !want_header[..].iter().any(|l| l.starts_with("@HD")))
        {
            // No @HD in the input: sort (and export) add one.
            want_header.insert(0, hd.clone());
        }
        want_header = want_header
            .into_iter()
            .map(|l| match &hd {
                Some(hd) if l.starts_with("@HD") => hd.clone(),
                _ => l,
            })
            // htslib drops bare `@CO` lines when it rewrites a header; the export keeps them.
            .filter(|l| l != "@CO")
            .collect();
        want_records = r;
    }
    let mut got_header = view(exported, None, &["-H"]);
    if got_header.len() != want_header.len() {
        got_header.retain(|l| l != "@CO");
    }
    if let Some(d) = first_diff(&want_header, &got_header) {
        return Some(format!("headers differ: {d}"));
    }
    let got = view(exported, None, &[]);
    first_diff(&want_records, &got).map(|d| format!("records differ: {d}"))
}

/// Converts `cram` (with `--reference fasta` when given), exports it, and compares.
fn check(cram: &Path, fasta: Option<&Path>, tmp: &TempDir, tag: &str) -> Option<String> {
    let ds = tmp.join(format!("{tag}.bams3"));
    let out = tmp.join(format!("{tag}.bam"));
    let mut cmd = bams3();
    cmd.arg("convert").arg("--quiet");
    if let Some(fa) = fasta {
        cmd.arg("--reference").arg(fa);
    }
    let res = run(cmd.arg(cram).arg(&ds));
    if !res.status.success() || panicked(&res) {
        return Some(format!(
            "convert failed: {}",
            String::from_utf8_lossy(&res.stderr).trim()
        ));
    }
    export(&ds, &out);
    compare_with_samtools(cram, fasta, &out)
}

/// A copy of a FASTA (and its .fai, built there) in `tmp`: the suites' directories may be
/// read-only, and tests that break a reference must not touch the original.
fn copy_fasta(fa: &Path, tmp: &TempDir, name: &str) -> PathBuf {
    let dst = tmp.join(name);
    std::fs::copy(fa, &dst).unwrap_or_else(|e| panic!("{}: {e}", fa.display()));
    ok(samtools().arg("faidx").arg(&dst));
    dst
}

#[test]
fn cram_written_by_samtools_from_every_real_bam() {
    isolate_references();
    let tmp = TempDir::new("cram-real");
    let ex1 = copy_fasta(Path::new(EX1_FA), &tmp, "ex1.fa");
    let mut failures = Vec::new();
    let mut checked = 0;
    for bam in manifest() {
        let name = bam.file_stem().unwrap().to_string_lossy().into_owned();
        let has_ref = name == "ex1" || name == "ex1_unsort";
        let mut cases = vec![("3.0", Refs::None), ("3.1", Refs::None)];
        if has_ref {
            cases.extend([
                ("3.0", Refs::External(&ex1)),
                ("3.1", Refs::External(&ex1)),
                ("3.1", Refs::Embedded(&ex1)),
                // fqzcomp qualities, arithmetic coder, tok3 names.
                ("3.1,archive", Refs::External(&ex1)),
            ]);
        }
        if name == "na12878-chrM-Y-trunc" {
            cases.push(("3.1,archive", Refs::None));
        }
        for (i, (version, refs)) in cases.into_iter().enumerate() {
            let cram = tmp.join(format!("{name}.{i}.cram"));
            let what = format!("{name} as CRAM {version} ({refs:?})");
            assert!(
                write_cram(&bam, &cram, version, refs),
                "samtools cannot write {what}"
            );
            let fasta = match refs {
                Refs::External(fa) => Some(fa),
                _ => None,
            };
            if let Some(d) = check(&cram, fasta, &tmp, &format!("{name}.{i}")) {
                failures.push(format!("{what}: {d}"));
            }
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} CRAM files checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cram_files_of_the_debian_test_suites() {
    isolate_references();
    require_suites();
    let tmp = TempDir::new("cram-suites");
    let h = |f: &str| Path::new(HTSLIB_TEST).join(f);
    let s = |f: &str| Path::new(SAMTOOLS_TEST).join(f);
    // Each CRAM with the FASTA its slices were written against (None: it needs none).
    let files: Vec<(PathBuf, Option<PathBuf>)> = vec![
        (h("auxf#values_java.cram"), Some(h("auxf.fa"))),
        (h("ce#5b_java.cram"), Some(h("ce.fa"))),
        (h("range.cram"), Some(h("ce.fa"))),
        (h("xx#large_aux_java.cram"), Some(h("xx.fa"))),
        (s("mpileup/ce#5b.cram"), Some(s("mpileup/ce.fa"))),
        // CRAM 2.1 and 3.0 written by older samtools.
        (
            s("quickcheck/6.quickcheck.cram21.ok.cram"),
            Some(s("dat/mpileup.ref.fa")),
        ),
        (
            s("quickcheck/7.quickcheck.cram30.ok.cram"),
            Some(s("dat/mpileup.ref.fa")),
        ),
        (s("dat/test_input_1_a.cram"), None),
    ];
    let mut failures = Vec::new();
    for (i, (cram, fa)) in files.iter().enumerate() {
        let fa = fa
            .as_ref()
            .map(|f| copy_fasta(f, &tmp, &format!("ref{i}.fa")));
        if let Some(d) = check(cram, fa.as_deref(), &tmp, &format!("suite{i}")) {
            failures.push(format!("{}: {d}", cram.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn suite_sam_files_through_cram_3_0_and_3_1() {
    isolate_references();
    require_suites();
    let tmp = TempDir::new("cram-suite-sams");
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut refused = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(HTSLIB_TEST)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sam"))
        .collect();
    entries.sort();
    for sam in entries {
        let name = sam.file_name().unwrap().to_string_lossy().into_owned();
        // The reference of `ce#1.sam` is `ce.fa`, of `realn01.sam` `realn01.fa`.
        let stem = name.split(['#', '.']).next().unwrap_or_default();
        let fa = Path::new(HTSLIB_TEST).join(format!("{stem}.fa"));
        if !fa.is_file() {
            continue;
        }
        for version in ["3.0", "3.1"] {
            let cram = tmp.join(format!("{name}.{version}.cram"));
            if !write_cram(&sam, &cram, version, Refs::External(&fa)) {
                // Meant-to-be-invalid input: samtools refuses it too.
                refused.push(format!("{name} {version}"));
                continue;
            }
            if let Some(d) = check(&cram, Some(&fa), &tmp, &format!("{name}.{version}")) {
                failures.push(format!("{name} as CRAM {version}: {d}"));
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 50,
        "only {checked} suite SAM files went through CRAM (samtools refused {refused:?})"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// ex1.bam as CRAM 3.1 against a copy of ex1.fa, in `tmp`.
fn ex1_cram(tmp: &TempDir) -> (PathBuf, PathBuf) {
    let fa = copy_fasta(Path::new(EX1_FA), tmp, "ex1.fa");
    let cram = tmp.join("ex1.cram");
    assert!(write_cram(
        &real_bam("ex1.bam"),
        &cram,
        "3.1",
        Refs::External(&fa)
    ));
    (cram, fa)
}

#[test]
fn cram_on_standard_input() {
    isolate_references();
    let tmp = TempDir::new("cram-stdin");
    let (cram, fa) = ex1_cram(&tmp);
    let ds = tmp.join("stdin.bams3");
    let mut cmd = bams3();
    cmd.args(["convert", "--quiet", "--reference"])
        .arg(&fa)
        .arg("-")
        .arg(&ds);
    let out = run_with_stdin(&mut cmd, &std::fs::read(&cram).unwrap());
    check_ok(&cmd, &out);
    let bam = tmp.join("stdin.bam");
    export(&ds, &bam);
    assert_eq!(compare_with_samtools(&cram, Some(&fa), &bam), None);
    let stats = String::from_utf8_lossy(&ok(bams3().arg("stats").arg(&ds))).into_owned();
    assert!(
        stats.contains("CRAM"),
        "stats do not name the source format: {stats}"
    );
}

#[test]
fn cram_from_s3() {
    isolate_references();
    let tmp = TempDir::new("cram-s3");
    let (cram, fa) = ex1_cram(&tmp);
    let moto = Moto::start();
    moto.create_bucket("crams");
    moto.put("crams", "in/ex1.cram", &std::fs::read(&cram).unwrap());
    let ds = tmp.join("s3.bams3");
    let mut cmd = bams3();
    cmd.arg("--endpoint-url")
        .arg(format!("http://127.0.0.1:{}", moto.port))
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
        .env("XDG_CACHE_HOME", tmp.join("cache"))
        .args(["convert", "--quiet", "--reference"])
        .arg(&fa)
        .arg("s3://crams/in/ex1.cram")
        .arg(&ds);
    ok(&mut cmd);
    let bam = tmp.join("s3.bam");
    export(&ds, &bam);
    assert_eq!(compare_with_samtools(&cram, Some(&fa), &bam), None);
}

/// `bams3 convert [--reference fa] cram` must fail with one line holding every phrase, and
/// leave no dataset behind.
fn refused(cram: &Path, fasta: Option<&Path>, tmp: &TempDir, phrases: &[&str]) -> String {
    let ds = tmp.join("refused.bams3");
    let mut cmd = bams3();
    cmd.arg("convert");
    if let Some(fa) = fasta {
        cmd.arg("--reference").arg(fa);
    }
    let line = fails_with(cmd.arg(cram).arg(&ds), phrases);
    assert!(
        find_metadata(&ds).is_empty(),
        "a failed CRAM conversion left a complete-looking dataset"
    );
    let _ = std::fs::remove_dir_all(&ds);
    line
}

#[test]
fn a_missing_reference_is_one_line_naming_the_sequence() {
    isolate_references();
    let tmp = TempDir::new("cram-noref");
    let (cram, fa) = ex1_cram(&tmp);
    // The @SQ UR tags point at the FASTA: gone, and REF_PATH/REF_CACHE are empty.
    std::fs::remove_file(&fa).unwrap();
    std::fs::remove_file(tmp.join("ex1.fa.fai")).unwrap();
    assert!(
        !run(samtools().args(["view", "-c"]).arg(&cram))
            .status
            .success(),
        "samtools itself should fail without the reference"
    );
    refused(&cram, None, &tmp, &["seq1", "no reference", "--reference"]);
    refused(
        &cram,
        Some(&tmp.join("nowhere.fa")),
        &tmp,
        &["nowhere.fa", "no such file"],
    );
}

#[test]
fn a_wrong_reference_is_an_md5_mismatch_naming_the_sequence() {
    isolate_references();
    let tmp = TempDir::new("cram-badref");
    let (cram, fa) = ex1_cram(&tmp);
    let text = std::fs::read_to_string(&fa).unwrap();
    // One base changed in a sequence (same length): samtools refuses it by its M5.
    let change = |seq: &str| -> PathBuf {
        let start = text.find(&format!(">{seq}\n")).unwrap() + seq.len() + 2;
        let mut bytes = text.clone().into_bytes();
        let at = start + 100;
        bytes[at] = if bytes[at] == b'A' { b'C' } else { b'A' };
        let wrong = tmp.join(format!("wrong-{seq}.fa"));
        std::fs::write(&wrong, bytes).unwrap();
        ok(samtools().arg("faidx").arg(&wrong));
        wrong
    };
    for seq in ["seq1", "seq2"] {
        let wrong = change(seq);
        assert!(
            !run(samtools().args(["view", "-c", "-T"]).arg(&wrong).arg(&cram))
                .status
                .success(),
            "samtools itself should refuse {}",
            wrong.display()
        );
        let line = refused(&cram, Some(&wrong), &tmp, &[seq, "MD5 mismatch"]);
        let other = if seq == "seq1" { "seq2" } else { "seq1" };
        assert!(
            !line.contains(&format!(" {other} ")),
            "the error names the wrong sequence: {line}"
        );
    }
}

#[test]
fn a_cut_short_cram_is_refused() {
    isolate_references();
    let tmp = TempDir::new("cram-cut");
    let (cram, fa) = ex1_cram(&tmp);
    let bytes = std::fs::read(&cram).unwrap();
    // Without its end-of-file container only (samtools just warns), and cut mid-container.
    for (tag, keep) in [("no-eof", bytes.len() - 38), ("mid", bytes.len() / 2)] {
        let cut = tmp.join(format!("{tag}.cram"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        refused(&cut, Some(&fa), &tmp, &[&format!("{tag}.cram")]);
    }
    refused(&tmp.join("no-eof.cram"), Some(&fa), &tmp, &["truncated"]);
    // The suites' own cut-short CRAM 2.1 and 3.0 files.
    let s = Path::new(SAMTOOLS_TEST);
    let ref_fa = copy_fasta(&s.join("dat/mpileup.ref.fa"), &tmp, "mpileup.ref.fa");
    for f in [
        "quickcheck/8.quickcheck.cram21.truncated.cram",
        "quickcheck/9.quickcheck.cram30.truncated.cram",
    ] {
        refused(&s.join(f), Some(&ref_fa), &tmp, &["truncated"]);
    }
}

#[test]
fn without_htslib_cram_input_is_one_line_saying_so() {
    // htslib is loaded only when CRAM is read; one that cannot be loaded is one clear line,
    // and every other input still converts.
    isolate_references();
    let tmp = TempDir::new("cram-nohts");
    let (cram, fa) = ex1_cram(&tmp);
    let ds = tmp.join("nohts.bams3");
    let missing = tmp.join("no-such-dir/libhts.so.3");
    let mut cmd = bams3();
    cmd.env("BAMS3_LIBHTS", &missing)
        .args(["convert", "--reference"])
        .arg(&fa)
        .arg(&cram)
        .arg(&ds);
    fails_with(
        &mut cmd,
        &["CRAM input needs htslib", "libhts3", "no-such-dir"],
    );
    assert!(find_metadata(&ds).is_empty(), "a dataset was left behind");
    let bam = real_bam("ex1.bam");
    let mut cmd = bams3();
    cmd.env("BAMS3_LIBHTS", &missing)
        .args(["convert", "--quiet"])
        .arg(&bam)
        .arg(&ds);
    ok(&mut cmd);
    assert!(!find_metadata(&ds).is_empty());
}

#[test]
fn convert_help_names_cram_and_reference() {
    // `bams3 query` etc. never read CRAM; convert's help says it does.
    let help = String::from_utf8_lossy(&ok(Command::new(bams3_bin()).args(["convert", "--help"])))
        .into_owned();
    assert!(
        help.contains("CRAM") && help.contains("--reference"),
        "convert --help does not mention CRAM input and --reference:\n{help}"
    );
}
