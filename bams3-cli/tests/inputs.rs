//! Inputs that must work, found by trying bams3 as a new user would: reference names longer
//! than a file name may be, and SEQ letters BAM has no code for. Each is compared with what
//! samtools makes of the same SAM file. Also `validate --against`, which a user runs to be sure
//! a dataset holds exactly what its source held.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// A reference name of 300+ characters, one that shares its first 300 with it, and one whose
/// escaped form (`%2A` per `*`) passes 255 bytes although the name itself does not.
fn long_names() -> [String; 3] {
    let base = format!("contig_{}", "x".repeat(300));
    [
        format!("{base}A"),
        format!("{base}B"),
        format!("c{}", "*".repeat(100)),
    ]
}

/// SAM text with reads on each of `names`, in coordinate order.
fn sam_with_references(names: &[String]) -> String {
    let mut text = String::from("@HD\tVN:1.6\tSO:coordinate\n");
    for n in names {
        text.push_str(&format!("@SQ\tSN:{n}\tLN:5000\n"));
    }
    for (i, n) in names.iter().enumerate() {
        for k in 0..20 {
            text.push_str(&format!(
                "r{i}_{k}\t0\t{n}\t{}\t60\t8M\t*\t0\t0\tACGTACGT\tIIIIIIII\n",
                100 + k * 50
            ));
        }
    }
    text
}

/// `samtools view -b` of a SAM file: the oracle's own BAM of the same text.
fn samtools_bam(sam: &Path, bam: &Path) {
    ok(samtools()
        .args(["view", "--no-PG", "-b", "-o"])
        .arg(bam)
        .arg(sam));
}

/// The reference folders under `data/` of a local dataset.
fn reference_folders(ds: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(ds.join("data"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn reference_names_longer_than_a_file_name_convert_and_query() {
    let tmp = TempDir::new("long-names");
    let names = long_names();
    let sam = tmp.join("long.sam");
    fs::write(&sam, sam_with_references(&names)).unwrap();
    let bam = tmp.join("long.bam");
    samtools_bam(&sam, &bam);
    // samtools reads regions through an index.
    ok(samtools().arg("index").arg(&bam));

    for (input, tag) in [(&sam, "sam"), (&bam, "bam")] {
        let ds = tmp.join(format!("{tag}.bams3"));
        convert(input, &ds, &[]);
        let folders = reference_folders(&ds);
        assert_eq!(folders.len(), 3, "{folders:?}");
        for f in &folders {
            assert!(f.len() <= 255 && f.contains('~'), "{f} ({} bytes)", f.len());
        }
        assert!(folders[0].starts_with("c%2A%2A"), "{folders:?}");
        assert!(folders[1].starts_with("contig_xxx"), "{folders:?}");
        // Every reference reads back as samtools reads it, whole and in a region.
        for n in &names {
            for region in [format!("{{{n}}}"), format!("{{{n}}}:300-600")] {
                let want = sam_region_records(&bam, &[], &[&region]);
                let got = lines(&ok(bams3().arg("query").arg(&ds).arg(&region)));
                assert!(!want.is_empty(), "{region}");
                if let Some(d) = first_diff(&want, &got) {
                    panic!("{tag}: query {region}: {d}");
                }
            }
        }
        let back = tmp.join(format!("{tag}.back.bam"));
        export(&ds, &back);
        if let Some(d) = compare_roundtrip(&bam, &back) {
            panic!("{tag}: round trip: {d}");
        }
        validate_against(&ds, &bam);
    }
}

/// SEQ characters outside `=ACMGRSVTWYHKDBN`: `U` (RNA), `.`, `X`, digits (colour space).
const ODD_SEQ: &str = "AUGu.0123X!a=n";

#[test]
fn seq_letters_bam_cannot_hold_are_stored_as_samtools_stores_them() {
    let tmp = TempDir::new("odd-seq");
    let sam = tmp.join("odd.sam");
    let mut text = String::from("@SQ\tSN:chr1\tLN:1000\n");
    for i in 0..3 {
        text.push_str(&format!(
            "r{i}\t0\tchr1\t{}\t60\t14M\t*\t0\t0\t{ODD_SEQ}\t*\n",
            10 + i
        ));
    }
    text.push_str("plain\t0\tchr1\t20\t60\t4M\t*\t0\t0\tACGT\t*\n");
    fs::write(&sam, text).unwrap();
    let bam = tmp.join("odd.bam");
    samtools_bam(&sam, &bam);

    let ds = tmp.join("odd.bams3");
    let mut cmd = bams3();
    cmd.arg("convert").arg(&sam).arg(&ds);
    let out = run(&mut cmd);
    check_ok(&cmd, &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 9 characters per read are not BAM bases (U u . 0 1 2 3 X !), in 3 reads.
    assert!(
        stderr.contains("warning: 27 SEQ characters") && stderr.contains("in 3 records"),
        "{stderr}"
    );
    let want = sam_records(&bam, &[]);
    let got = lines(&ok(bams3().arg("query").arg(&ds)));
    assert!(want[0].contains("ANGNNACGTNNA=N"), "{want:?}");
    if let Some(d) = first_diff(&want, &got) {
        panic!("{d}");
    }
    // The dataset holds exactly what samtools' BAM of the same file holds.
    validate_against(&ds, &bam);
}

/// `samtools view -h` of `bam`, its records (split into fields) changed by `edit`, back to BAM
/// by samtools.
fn copy_with(
    tmp: &TempDir,
    bam: &Path,
    tag: &str,
    edit: impl Fn(&mut Vec<Vec<String>>),
) -> PathBuf {
    let text = String::from_utf8(ok(samtools().args(["view", "--no-PG", "-h"]).arg(bam))).unwrap();
    let (header, body): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('@'));
    let mut records: Vec<Vec<String>> = body
        .iter()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    edit(&mut records);
    let mut out: String = header.iter().map(|l| format!("{l}\n")).collect();
    for r in records {
        out.push_str(&r.join("\t"));
        out.push('\n');
    }
    let sam = tmp.join(format!("{tag}.sam"));
    fs::write(&sam, out).unwrap();
    let edited = tmp.join(format!("{tag}.bam"));
    samtools_bam(&sam, &edited);
    edited
}

/// Makes the first character of `field` another of `choices`.
fn bump(field: &mut String, choices: [char; 2]) {
    let c = field.remove(0);
    field.insert(
        0,
        if c == choices[0] {
            choices[1]
        } else {
            choices[0]
        },
    );
}

/// `bams3 validate DATASET --against SOURCE`, asserting success; its output.
fn validate_against(ds: &Path, source: &Path) -> String {
    let out = ok(bams3().arg("validate").arg(ds).arg("--against").arg(source));
    String::from_utf8(out).unwrap()
}

#[test]
fn validate_against_names_the_first_difference() {
    let tmp = TempDir::new("against");
    // samtools' own re-encoding, so that the edited copies differ only where edited.
    let source = copy_with(&tmp, &real_bam("ex1.bam"), "ex1", |_| {});
    let ds = tmp.join("ex1.bams3");
    convert(&source, &ds, &[]);
    let same = validate_against(&ds, &source);
    assert!(
        same.contains("same header and 3307 records") && same.contains("in the same order"),
        "{same}"
    );
    let against = |other: &Path, phrases: &[&str]| {
        fails_with(
            bams3().arg("validate").arg(&ds).arg("--against").arg(other),
            phrases,
        )
    };

    // One field of one record changed: that record, its name and the field are named.
    let mapq = copy_with(&tmp, &source, "mapq", |r| r[999][4] = "7".into());
    let name = sam_records(&mapq, &[])[999]
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    against(
        &mapq,
        &[
            "record 1000",
            &format!("({name})"),
            "MAPQ differs",
            "input 7",
        ],
    );
    let qual = copy_with(&tmp, &source, "qual", |r| {
        bump(&mut r[3306][10], ['I', '5'])
    });
    against(&qual, &["record 3307", "QUAL differs"]);
    let tag = copy_with(&tmp, &source, "tag", |r| r[0].push("XX:Z:extra".into()));
    against(&tag, &["record 1 (", "TAGS differs"]);
    let short = copy_with(&tmp, &source, "short", |r| {
        r.pop();
    });
    against(
        &short,
        &["record 3307", "count differs", "the input ends here"],
    );
    let header = tmp.join("header.sam");
    let mut text = sam_header(&source);
    text.push_str("@CO\tadded\n");
    text.push_str(&sam_records(&source, &[]).join("\n"));
    fs::write(&header, text + "\n").unwrap();
    against(&header, &["header differs", "@CO"]);

    // An unsorted source is compared as a set of records.
    let unsorted = copy_with(&tmp, &real_bam("ex1_unsort.bam"), "unsorted", |_| {});
    let uds = tmp.join("unsorted.bams3");
    convert(&unsorted, &uds, &[]);
    let same = validate_against(&uds, &unsorted);
    assert!(same.contains("as a set"), "{same}");
    let changed = copy_with(&tmp, &unsorted, "changed", |r| {
        bump(&mut r[4][9], ['A', 'C'])
    });
    fails_with(
        bams3()
            .arg("validate")
            .arg(&uds)
            .arg("--against")
            .arg(&changed),
        &["not the same records", "samtools sort"],
    );
}
