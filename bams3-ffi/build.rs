//! Gives the shared library its SONAME, so that programs linked against it record
//! `libbams3.so.0` and keep working across compatible (same ABI major) releases.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libbams3.so.0");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
