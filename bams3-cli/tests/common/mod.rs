//! Helpers shared by the integration tests: running `bams3` and `samtools`,
//! temporary directories, the real test data, and comparisons.
//!
//! Tests FAIL (never skip) when samtools or the test data is missing: run
//! `tests/fetch-data.sh` (or `./tests/run.sh`, which runs it).

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const FETCH_HINT: &str = "run tests/fetch-data.sh (or ./tests/run.sh) to install samtools, \
     htslib-test, samtools-test and the real BAM files";

/// Directories holding the SAM/BAM fidelity suites (Debian htslib-test, samtools-test).
pub const SUITE_DIRS: &[&str] = &["/usr/share/htslib-test/test", "/usr/share/samtools/test"];

/// The `bams3` binary under test.
pub fn bams3_bin() -> &'static str {
    env!("CARGO_BIN_EXE_bams3")
}

/// A `bams3` command.
pub fn bams3() -> Command {
    Command::new(bams3_bin())
}

/// A `samtools` command; panics with a hint when samtools is not installed.
pub fn samtools() -> Command {
    static CHECK: OnceLock<()> = OnceLock::new();
    CHECK.get_or_init(|| {
        let ok = Command::new("samtools")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "samtools is not installed: {FETCH_HINT}");
    });
    Command::new("samtools")
}

/// The directory of real BAM files made by tests/fetch-data.sh.
pub fn test_data_dir() -> PathBuf {
    match std::env::var_os("BAMS3_TEST_DATA") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let home = std::env::var_os("HOME").expect("HOME is not set");
            PathBuf::from(home).join(".cache/bams3/test-data")
        }
    }
}

/// The real BAM files listed in MANIFEST (full paths); panics with a hint when missing.
pub fn manifest() -> Vec<PathBuf> {
    let dir = test_data_dir();
    let m = dir.join("MANIFEST");
    let text = fs::read_to_string(&m)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}: {FETCH_HINT}", m.display()));
    let files: Vec<PathBuf> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| dir.join(l))
        .collect();
    assert!(!files.is_empty(), "{} is empty: {FETCH_HINT}", m.display());
    for f in &files {
        assert!(f.is_file(), "{} is missing: {FETCH_HINT}", f.display());
    }
    files
}

/// One real BAM file of the MANIFEST, by file name.
pub fn real_bam(name: &str) -> PathBuf {
    manifest()
        .into_iter()
        .find(|p| p.file_name() == Some(OsStr::new(name)))
        .unwrap_or_else(|| panic!("{name} is not in the MANIFEST: {FETCH_HINT}"))
}

/// Checks the suite directories exist; panics with a hint otherwise.
pub fn require_suites() {
    for d in SUITE_DIRS {
        assert!(Path::new(d).is_dir(), "{d} is missing: {FETCH_HINT}");
    }
}

/// A temporary directory removed on drop (kept when BAMS3_KEEP_TMP is set).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::var_os("BAMS3_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let tag: String = tag
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let p = base.join(format!(
            "bams3-test-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join<P: AsRef<Path>>(&self, p: P) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("BAMS3_KEEP_TMP").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A command line as text, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains([' ', '*', '#', '\'', '"']) {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Runs a command and returns its output (stdin closed).
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)))
}

/// Runs a command with `input` on stdin.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)));
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The command may stop reading early (e.g. on an error): ignore EPIPE.
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for child");
    let _ = writer.join();
    out
}

/// True when the process panicked (Rust's exit code 101) or printed a panic message.
pub fn panicked(out: &Output) -> bool {
    out.status.code() == Some(101) || String::from_utf8_lossy(&out.stderr).contains("panicked at")
}

/// Asserts success and no panic; returns stdout.
pub fn ok(cmd: &mut Command) -> Vec<u8> {
    let out = run(cmd);
    check_ok(cmd, &out);
    out.stdout
}

pub fn check_ok(cmd: &Command, out: &Output) {
    assert!(
        out.status.success() && !panicked(out),
        "command failed ({}): {}\nstderr:\n{}",
        out.status,
        describe(cmd),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts a clean failure: non-zero exit, not a panic, exactly one line on stderr.
/// Returns that line.
pub fn check_clean_failure(cmd: &Command, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected failure but it succeeded: {}\nstderr:\n{stderr}",
        describe(cmd)
    );
    assert!(
        !panicked(out),
        "PANIC (exit {:?}): {}\nstderr:\n{stderr}",
        out.status.code(),
        describe(cmd)
    );
    let trimmed = stderr.trim_end_matches(['\n', '\r']);
    assert!(
        !trimmed.is_empty() && !trimmed.contains('\n'),
        "expected exactly one line on stderr: {}\nstderr:\n{stderr}",
        describe(cmd)
    );
    trimmed.to_string()
}

/// Runs `cmd`, asserts a clean failure whose one stderr line contains every phrase.
pub fn fails_with(cmd: &mut Command, phrases: &[&str]) -> String {
    let out = run(cmd);
    let line = check_clean_failure(cmd, &out);
    for p in phrases {
        assert!(
            line.to_lowercase().contains(&p.to_lowercase()),
            "stderr of `{}` does not mention {p:?}:\n{line}",
            describe(cmd)
        );
    }
    line
}

/// Every `_metadata.json` below `dir` (there must be none after a failed convert).
pub fn find_metadata(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.is_file() {
            if d.file_name() == Some(OsStr::new("_metadata.json")) {
                found.push(d);
            }
            continue;
        }
        if let Ok(rd) = fs::read_dir(&d) {
            for e in rd.flatten() {
                stack.push(e.path());
            }
        }
    }
    found
}

/// Every file below `dir` whose name ends with `.chunk`, sorted.
pub fn find_chunks(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().contains(".chunk") {
                    found.push(p);
                }
            }
        }
    }
    found.sort();
    found
}

/// `bams3 convert [extra] input out`, asserting success.
pub fn convert(input: &Path, out: &Path, extra: &[&str]) {
    let mut cmd = bams3();
    cmd.arg("convert").args(extra).arg(input).arg(out);
    ok(&mut cmd);
    assert!(
        out.join("_metadata.json").is_file(),
        "{} succeeded but wrote no _metadata.json",
        describe(&cmd)
    );
}

/// `bams3 export dataset out.bam`, asserting success.
pub fn export(dataset: &Path, out: &Path) {
    ok(bams3().arg("export").arg(dataset).arg(out));
    assert!(out.is_file(), "bams3 export wrote no {}", out.display());
}

/// `samtools view --no-PG [args] file` as lines.
pub fn sam_records(file: &Path, args: &[&str]) -> Vec<String> {
    let out = ok(samtools().arg("view").arg("--no-PG").args(args).arg(file));
    lines(&out)
}

/// `samtools view -H --no-PG file`.
pub fn sam_header(file: &Path) -> String {
    let out = ok(samtools().args(["view", "-H", "--no-PG"]).arg(file));
    String::from_utf8_lossy(&out).into_owned()
}

/// Lines of `bytes`, split on '\n' only (a '\r' stays, so line endings are compared).
pub fn lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return Vec::new();
    }
    text.split('\n').map(str::to_string).collect()
}

/// `samtools view --no-PG [args] file regions...` as lines.
pub fn sam_region_records(file: &Path, args: &[&str], regions: &[&str]) -> Vec<String> {
    let out = ok(samtools()
        .arg("view")
        .arg("--no-PG")
        .args(args)
        .arg(file)
        .args(regions));
    lines(&out)
}

/// A short, readable first difference between two line lists, or None when equal.
pub fn first_diff(expected: &[String], actual: &[String]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let clip = |s: &str| -> String {
        if s.len() > 400 {
            let mut end = 400;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            format!("{:?}... ({} chars)", &s[..end], s.len())
        } else {
            format!("{s:?}")
        }
    };
    let n = expected.len().min(actual.len());
    for i in 0..n {
        if expected[i] != actual[i] {
            return Some(format!(
                "line {} differs ({} expected lines, {} actual)\n- {}\n+ {}",
                i + 1,
                expected.len(),
                actual.len(),
                clip(&expected[i]),
                clip(&actual[i])
            ));
        }
    }
    Some(format!(
        "lengths differ: {} expected lines, {} actual; first extra: {}",
        expected.len(),
        actual.len(),
        clip(if expected.len() > n {
            &expected[n]
        } else {
            &actual[n]
        })
    ))
}

/// Reference names in @SQ order, from header text.
pub fn ref_names(header: &str) -> Vec<String> {
    header
        .lines()
        .filter(|l| l.starts_with("@SQ\t"))
        .filter_map(|l| {
            l.split('\t')
                .find_map(|f| f.strip_prefix("SN:"))
                .map(str::to_string)
        })
        .collect()
}

/// Reference (name, length) in @SQ order, from header text.
pub fn ref_lengths(header: &str) -> Vec<(String, u64)> {
    header
        .lines()
        .filter(|l| l.starts_with("@SQ\t"))
        .filter_map(|l| {
            let name = l.split('\t').find_map(|f| f.strip_prefix("SN:"))?;
            let len = l
                .split('\t')
                .find_map(|f| f.strip_prefix("LN:"))?
                .parse()
                .ok()?;
            Some((name.to_string(), len))
        })
        .collect()
}

/// Coordinate-sort key of a SAM line: (reference index or MAX for '*', POS).
pub fn coord_key(line: &str, refs: &[String]) -> (usize, u64) {
    let mut f = line.split('\t');
    let rname = f.nth(2).unwrap_or("*");
    let pos: u64 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if rname == "*" {
        return (usize::MAX, 0);
    }
    let tid = refs
        .iter()
        .position(|r| r == rname)
        .unwrap_or(usize::MAX - 1);
    (tid, pos)
}

/// True when the records are in coordinate order (unplaced reads last).
pub fn is_coordinate_sorted(records: &[String], refs: &[String]) -> bool {
    records
        .windows(2)
        .all(|w| coord_key(&w[0], refs) <= coord_key(&w[1], refs))
}

/// Compares the records of `original` and `exported` (both BAM/SAM files readable by
/// samtools) and their headers (verbatim). When the original is in coordinate order,
/// the records must be identical and in the same order; otherwise the export must
/// equal `samtools sort` of the original (coordinate order, unplaced reads last, ties
/// as samtools breaks them).
/// Returns a description of the first difference, or None.
pub fn compare_roundtrip(original: &Path, exported: &Path) -> Option<String> {
    let r1 = sam_records(original, &[]);
    let mut h1 = sam_header(original);
    if !is_coordinate_sorted(&r1, &ref_names(&h1)) {
        // Export of unsorted input is in coordinate order and says so (@HD SO:coordinate),
        // exactly as `samtools sort` rewrites the header.
        let out = run(samtools()
            .args(["sort", "--no-PG", "-O", "sam", "-o", "-"])
            .arg(original));
        let sorted = String::from_utf8_lossy(&out.stdout);
        h1 = sorted
            .lines()
            .filter(|l| l.starts_with('@'))
            .map(|l| format!("{l}\n"))
            .collect();
    }
    let mut h2 = sam_header(exported);
    if !is_coordinate_sorted(&r1, &ref_names(&h1)) {
        // htslib drops empty `@CO` lines when it rewrites a header (sort does); we keep the
        // header text verbatim, so those lines are not compared.
        let no_bare_co = |h: &str| -> String {
            h.lines()
                .filter(|l| *l != "@CO")
                .map(|l| format!("{l}\n"))
                .collect()
        };
        h1 = no_bare_co(&h1);
        h2 = no_bare_co(&h2);
    }
    if h1 != h2 {
        return Some(format!(
            "headers differ: {}",
            first_diff(&lines(h1.as_bytes()), &lines(h2.as_bytes())).unwrap_or_default()
        ));
    }
    let r2 = sam_records(exported, &[]);
    let refs = ref_names(&h1);
    if is_coordinate_sorted(&r1, &refs) {
        return first_diff(&r1, &r2).map(|d| format!("records differ: {d}"));
    }
    if !is_coordinate_sorted(&r2, &refs) {
        return Some("unsorted input: the export is not in coordinate order".into());
    }
    let sorted = samtools_sorted_records(original);
    if let Some(d) = first_diff(&sorted, &r2) {
        let mut s1 = r1;
        let mut s2 = r2;
        s1.sort();
        s2.sort();
        let same_set = s1 == s2;
        return Some(format!(
            "unsorted input: export differs from `samtools sort` ({}): {d}",
            if same_set {
                "same records, different order of ties"
            } else {
                "different records"
            }
        ));
    }
    None
}

/// `samtools sort` of `file`, as SAM record lines.
pub fn samtools_sorted_records(file: &Path) -> Vec<String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let prefix = std::env::temp_dir().join(format!(
        "bams3-sort-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let mut cmd = samtools();
    cmd.args(["sort", "--no-PG", "-O", "SAM", "-T"])
        .arg(prefix)
        .arg(file);
    let out = ok(&mut cmd);
    lines(&out)
        .into_iter()
        .filter(|l| !l.starts_with('@'))
        .collect()
}

/// Extracts a top-level-ish unsigned integer field `"key": N` from JSON text.
pub fn json_u64(json: &str, key: &str) -> Option<u64> {
    let pat = format!("\"{key}\"");
    let mut from = 0;
    while let Some(i) = json[from..].find(&pat) {
        let rest = json[from + i + pat.len()..].trim_start();
        if let Some(rest) = rest.strip_prefix(':') {
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
        from += i + pat.len();
    }
    None
}

/// A tiny deterministic LCG (Knuth MMIX constants), so tests need no rand crate.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }

    /// Uniform in [0, n) (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in [lo, hi] (inclusive).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Log-uniform in [1, max].
    pub fn log_uniform(&mut self, max: u64) -> u64 {
        let bits = 64 - max.leading_zeros() as u64;
        let b = self.range(0, bits);
        let hi = (1u64 << b).min(max);
        let lo = (hi / 2).max(1);
        self.range(lo, hi)
    }
}

/// Runs `f`, turning a panic (a failed assertion) into a message pushed to
/// `failures`, so one test can report every failing case instead of the first.
pub fn soft<F: FnOnce()>(failures: &mut Vec<String>, f: F) {
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        failures.push(msg);
    }
}

/// Panics listing every failure, if any.
pub fn assert_no_failures(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{what}: {} failing cases:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
