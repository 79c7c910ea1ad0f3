//! # libbams3: the BAMS3 C ABI
//!
//! A thin, panic-proof C skin over `bams3-core`, shaped after rustls-ffi: opaque handles created
//! and freed only by the library, `int` status codes (`BAMS3_OK` = 0, negative errors) with
//! `bams3_strerror()` and a thread-local `bams3_last_error()`, outputs through out-parameters
//! written only on success, every pointer checked, and every exported function behind one panic
//! boundary ([`panic::guard`]). `include/bams3.h` is generated from this crate by cbindgen; a
//! test fails when the committed header is stale (`BAMS3_BLESS=1 cargo test -p bams3-ffi`
//! regenerates it). See `docs/C_API.md`.
#![allow(non_camel_case_types)]
#![warn(missing_docs)]

pub mod batch;
pub mod error;
pub mod panic;
pub mod query;
pub mod reader;
pub mod stream;
pub mod writer;

use std::ffi::{c_char, c_uint};

pub use batch::*;
pub use error::*;

/// Major version of the C ABI: bumped on any incompatible change (and in the SONAME,
/// `libbams3.so.<major>`).
pub const BAMS3_ABI_VERSION_MAJOR: c_uint = 0;
/// Minor version of the C ABI: bumped when functions or option fields are added.
pub const BAMS3_ABI_VERSION_MINOR: c_uint = 1;
/// `(MAJOR << 16) | MINOR`, the value `bams3_abi_version()` returns for this header.
pub const BAMS3_ABI_VERSION: c_uint = (BAMS3_ABI_VERSION_MAJOR << 16) | BAMS3_ABI_VERSION_MINOR;

/// Library (package) version, major part.
pub const BAMS3_VERSION_MAJOR: c_uint = 0;
/// Library (package) version, minor part.
pub const BAMS3_VERSION_MINOR: c_uint = 3;
/// Library (package) version, patch part.
pub const BAMS3_VERSION_PATCH: c_uint = 0;

static VERSION: &std::ffi::CStr = c"0.3.0";

/// The library version as text, e.g. "0.3.0". Static, never NULL.
#[no_mangle]
pub extern "C" fn bams3_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The ABI version of the loaded library, `(major << 16) | minor`. A program compiled against
/// this header works with a library whose major equals `BAMS3_ABI_VERSION_MAJOR` and whose minor
/// is at least `BAMS3_ABI_VERSION_MINOR`:
///
/// ```c
/// unsigned v = bams3_abi_version();
/// if ((v >> 16) != BAMS3_ABI_VERSION_MAJOR || (v & 0xffff) < BAMS3_ABI_VERSION_MINOR) abort();
/// ```
#[no_mangle]
pub extern "C" fn bams3_abi_version() -> c_uint {
    BAMS3_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_the_package() {
        let v = env!("CARGO_PKG_VERSION");
        assert_eq!(VERSION.to_str().unwrap(), v);
        assert_eq!(
            format!("{BAMS3_VERSION_MAJOR}.{BAMS3_VERSION_MINOR}.{BAMS3_VERSION_PATCH}"),
            v
        );
    }
}
