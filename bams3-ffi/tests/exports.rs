//! `libbams3.so` must export the C API and nothing else: a dependency's C symbols (crc-fast's
//! `crc_fast_*` came in with the AWS SDK) would collide with another library's in an aligner's
//! process. `exports.map`, passed to the linker by build.rs, keeps them local.

use std::path::PathBuf;
use std::process::Command;

/// The shared library cargo built with this test: `target/<profile>/deps/libbams3.so`, beside
/// the test executable (cargo copies it up to `target/<profile>/` only when it is asked for).
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let lib = exe
        .parent()
        .expect("test executable in target/<profile>/deps")
        .join("libbams3.so");
    assert!(
        lib.is_file(),
        "{} is missing: cargo builds the cdylib with the package's tests",
        lib.display()
    );
    lib
}

/// Defined dynamic symbols of the library, as `nm -D --defined-only` lists them.
fn exported_symbols() -> Vec<String> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only", "--format=posix"])
        .arg(library())
        .output()
        .expect("nm (binutils) must be installed: apt-get install binutils");
    assert!(
        out.status.success(),
        "nm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("nm prints text")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        // Version-definition symbols (the SONAME's), if the linker adds any, are not code.
        .filter(|s| !s.starts_with("LIBBAMS3"))
        .map(str::to_string)
        .collect()
}

#[test]
fn only_bams3_symbols_are_exported() {
    let symbols = exported_symbols();
    let foreign: Vec<&String> = symbols
        .iter()
        .filter(|s| !s.starts_with("bams3_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "libbams3.so exports symbols outside the C API; add them to the `local:` list of \
         bams3-ffi/exports.map:\n{}",
        foreign
            .iter()
            .map(|s| format!("    {s};"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_function_of_the_header_is_exported() {
    let symbols = exported_symbols();
    let header = include_str!("../../include/bams3.h");
    // Declarations, not comments: `<return type> bams3_name(` at the start of a line.
    let functions: Vec<&str> = header
        .lines()
        .filter(|l| !l.trim_start().starts_with(['*', '/', '#']))
        .filter_map(|l| {
            let name = l.split_once('(')?.0.rsplit([' ', '*']).next()?;
            name.starts_with("bams3_").then_some(name)
        })
        .collect();
    assert!(functions.len() > 20, "found {functions:?} in bams3.h");
    for f in &functions {
        assert!(
            symbols.iter().any(|s| s == f),
            "{f} is declared in include/bams3.h but not exported"
        );
    }
}
