//! The committed `include/bams3.h` must be exactly what cbindgen generates from this crate, so
//! that C callers always compile against the ABI the library exports.
//!
//! After changing the C API, regenerate with `BAMS3_BLESS=1 cargo test -p bams3-ffi header`.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../include/bams3.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut fresh);
    let fresh = String::from_utf8(fresh).unwrap();
    if std::env::var_os("BAMS3_BLESS").is_some() {
        std::fs::write(&header, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/bams3.h is stale: regenerate it with `BAMS3_BLESS=1 cargo test -p bams3-ffi header` and commit it"
    );
}

#[test]
fn version_string_macro_matches_the_package() {
    let header = include_str!("../../include/bams3.h");
    let want = format!(
        "#define BAMS3_VERSION_STRING \"{}\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        header.contains(&want),
        "update after_includes in bams3-ffi/cbindgen.toml"
    );
}
