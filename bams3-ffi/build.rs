//! Gives the shared library its SONAME, so that programs linked against it record
//! `libbams3.so.0` and keep working across compatible (same ABI major) releases, and its
//! export list (`exports.map`), so that it exports the `bams3_` C API and nothing else.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libbams3.so.0");
        let map = concat!(env!("CARGO_MANIFEST_DIR"), "/exports.map");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={map}");
        println!("cargo:rerun-if-changed=exports.map");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
