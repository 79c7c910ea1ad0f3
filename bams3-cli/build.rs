//! Links Debian's htslib (libhts-dev), which decodes CRAM input for `bams3 convert`.
//! Only this command links it: bams3-core and the bindings stay free of libhts.

fn main() {
    if let Err(e) = pkg_config::Config::new()
        .atleast_version("1.10")
        .probe("htslib")
    {
        // One clear line instead of a linker error later.
        panic!("bams3-cli reads CRAM through htslib >= 1.10: install libhts-dev (pkg-config htslib): {e}");
    }
}
