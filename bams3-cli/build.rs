//! Finds Debian's htslib (libhts-dev), which decodes CRAM input for `bams3 convert`, and
//! records its library directory. The command does not link it: it loads `libhts.so.3` the
//! first time CRAM is read (`src/cram/htslib.rs`), so every other command starts without it.
//! bams3-core and the bindings never use libhts.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    match pkg_config::Config::new()
        .atleast_version("1.10")
        .cargo_metadata(false)
        .probe("htslib")
    {
        Ok(lib) => {
            if let Some(dir) = lib.link_paths.first() {
                println!("cargo:rustc-env=BAMS3_LIBHTS_DIR={}", dir.display());
            }
        }
        // Not needed to build; CRAM input then looks for libhts.so.3 on the loader's path.
        Err(e) => println!(
            "cargo:warning=htslib >= 1.10 not found by pkg-config ({e}); CRAM input will look for libhts.so.3 at run time"
        ),
    }
}
