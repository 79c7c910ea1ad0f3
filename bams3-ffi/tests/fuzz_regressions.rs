//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) and every input a fuzzer ever crashed on
//! (`fuzz/regressions/<target>/`) through the fuzz targets' own entry points, so CI checks
//! each decoder against them without a fuzzer or a nightly toolchain. A panic fails the test;
//! the file's name says which input.

#[allow(dead_code)]
#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The targets share one scratch directory per process, which each test removes at its end:
/// the tests take turns.
static SCRATCH_TURN: Mutex<()> = Mutex::new(());

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.expect("directory entry").path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for (name, target) in targets::ALL {
        for file in inputs(&fuzz_dir().join(kind).join(name)) {
            let data = std::fs::read(&file).expect("readable input");
            let run = std::panic::catch_unwind(|| target(&data));
            assert!(run.is_ok(), "{name} panicked on {}", file.display());
            n += 1;
        }
    }
    n
}

#[test]
fn every_corpus_input_and_every_past_crash_decode_without_panic() {
    let _turn = SCRATCH_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let corpus = replay("corpus");
    let crashes = replay("regressions");
    targets::remove_scratch();
    for (name, _) in targets::ALL {
        assert!(
            !inputs(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "fuzz/corpus/{name} is empty: run bench/fuzz.sh and commit its minimised corpus"
        );
    }
    assert!(
        corpus > 0 && crashes > 0,
        "{corpus} corpus inputs, {crashes} regressions"
    );
}

/// Every target has a seed built from real objects. With `BAMS3_FUZZ_SEEDS` set (bench/fuzz.sh
/// does, when a target's corpus is empty) the seeds are written there; otherwise into a scratch
/// directory that is removed, so the test still checks that each target gets one.
#[test]
fn write_seed_corpus() {
    let _turn = SCRATCH_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = std::env::temp_dir().join(format!("bams3-fuzz-seeds-{}", std::process::id()));
    let dir = std::env::var_os("BAMS3_FUZZ_SEEDS").map_or_else(|| scratch.clone(), PathBuf::from);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut counts = std::collections::BTreeMap::new();
    for (target, bytes) in targets::seeds(&root) {
        let n = counts.entry(target).or_insert(0);
        *n += 1;
        let d = dir.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("seed-{n:03}")), bytes).unwrap();
    }
    targets::remove_scratch();
    let _ = std::fs::remove_dir_all(&scratch);
    for (name, _) in targets::ALL {
        assert!(counts.contains_key(name), "no seed for {name}");
    }
}
