//! Finds Debian's htslib (libhts-dev), which decodes CRAM input for `bams3 convert`, and
//! records its library directory. The command does not link it: it loads `libhts.so.3` the
//! first time CRAM is read (`src/cram/htslib.rs`), so every other command starts without it.
//! bams3-core and the bindings never use libhts. It also links `bams3` as a position-dependent
//! executable on Linux (see below).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // A position-dependent executable. As a PIE, `bams3` starts by applying 41k relocations
    // to 600 KB of `.data.rel.ro` (vtables, string tables), which copies those pages on write:
    // ~165 page faults, about 1 ms of each process's life, a fifth of a one-base query
    // (measured in docs/BENCHMARKS.md). Without PIE the image sits at a fixed address (shared
    // libraries, stack and heap stay randomised); `BAMS3_BUILD_PIE=1` keeps PIE for those who
    // want the image randomised too, `bams3 serve` on an exposed host for instance.
    println!("cargo:rerun-if-env-changed=BAMS3_BUILD_PIE");
    let target = std::env::var("TARGET").unwrap_or_default();
    if std::env::var_os("BAMS3_BUILD_PIE").is_none() && target.contains("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
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
