//! Status codes, their text, and the thread-local last-error message.
//!
//! Every fallible function returns an `int`: [`BAMS3_OK`] (0) or one of the negative codes
//! below. On failure the function also stores a one-line message for the calling thread, which
//! `bams3_last_error()` returns until the next failure on that thread.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};

use bams3_core::Error;

/// Success.
pub const BAMS3_OK: c_int = 0;
/// A required pointer argument (handle, string or out-parameter) was NULL.
pub const BAMS3_ERR_NULL: c_int = -1;
/// An argument or option is out of range or malformed (including bad SAM/BAM records).
pub const BAMS3_ERR_INVALID: c_int = -2;
/// A string argument is not valid UTF-8.
pub const BAMS3_ERR_UTF8: c_int = -3;
/// The dataset, object or reference does not exist.
pub const BAMS3_ERR_NOT_FOUND: c_int = -4;
/// The output location already holds a dataset or other objects.
pub const BAMS3_ERR_EXISTS: c_int = -5;
/// The dataset was never committed (no `_metadata.json`).
pub const BAMS3_ERR_INCOMPLETE: c_int = -6;
/// Stored data or an input record is not valid BAMS3/BAM/SAM.
pub const BAMS3_ERR_CORRUPT: c_int = -7;
/// An I/O or object-store error.
pub const BAMS3_ERR_IO: c_int = -8;
/// A region string that cannot be parsed or names an unknown reference.
pub const BAMS3_ERR_REGION: c_int = -9;
/// The call is not allowed in the handle's state (e.g. adding after finish or abort).
pub const BAMS3_ERR_MISUSE: c_int = -10;
/// The library panicked; the handle involved should be freed and not used further.
pub const BAMS3_ERR_PANIC: c_int = -11;
/// The operation was cancelled.
pub const BAMS3_ERR_CANCELLED: c_int = -12;
/// A fault inside the library (a worker thread died, a lock was poisoned): not the caller's
/// input. Free the handle involved; worth a bug report.
pub const BAMS3_ERR_INTERNAL: c_int = -13;

/// A failure on its way to the C caller: a status code and the message for `bams3_last_error`.
#[derive(Debug)]
pub struct Failure {
    /// The status code returned to the caller.
    pub code: c_int,
    /// The one-line message `bams3_last_error` gives.
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: c_int, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// `BAMS3_ERR_NULL`: the argument `what` was NULL.
    pub fn null(what: &str) -> Self {
        Failure::new(BAMS3_ERR_NULL, format!("{what} is NULL"))
    }

    /// `BAMS3_ERR_MISUSE`: the call is not allowed in the handle's state.
    pub fn misuse(message: impl Into<String>) -> Self {
        Failure::new(BAMS3_ERR_MISUSE, message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Io { .. } => BAMS3_ERR_IO,
            Error::Corrupt { .. } => BAMS3_ERR_CORRUPT,
            Error::Incomplete(_) => BAMS3_ERR_INCOMPLETE,
            Error::NotFound(_) => BAMS3_ERR_NOT_FOUND,
            Error::AlreadyExists(_) => BAMS3_ERR_EXISTS,
            Error::Region { .. } => BAMS3_ERR_REGION,
            Error::Invalid(_) => BAMS3_ERR_INVALID,
            Error::Cancelled => BAMS3_ERR_CANCELLED,
            // Internal faults, and variants added after this ABI was defined.
            _ => BAMS3_ERR_INTERNAL,
        };
        Failure::new(code, e.to_string())
    }
}

/// Result type of the bodies of exported functions.
pub type FfiResult<T> = Result<T, Failure>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as the calling thread's last error.
pub fn set_last_error(message: &str) {
    // Interior NULs cannot be represented in a C string: show them as U+FFFD.
    let c = CString::new(message.replace('\0', "\u{fffd}")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = c);
}

/// The message of the last failed call on the calling thread.
///
/// Never NULL: an empty string when no call on this thread has failed yet. The message is not
/// cleared by successful calls, so read it only right after a call returned an error. The pointer
/// stays valid until the next failing call on the same thread.
#[no_mangle]
pub extern "C" fn bams3_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|l| l.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// A static, never-NULL description of a status code (e.g. "null pointer" for
/// `BAMS3_ERR_NULL`). Unknown codes give "unknown error".
#[no_mangle]
pub extern "C" fn bams3_strerror(code: c_int) -> *const c_char {
    strerror(code).as_ptr()
}

/// The text of `bams3_strerror`, for Rust callers (tests) too.
pub fn strerror(code: c_int) -> &'static CStr {
    match code {
        BAMS3_OK => c"success",
        BAMS3_ERR_NULL => c"null pointer",
        BAMS3_ERR_INVALID => c"invalid argument",
        BAMS3_ERR_UTF8 => c"invalid UTF-8",
        BAMS3_ERR_NOT_FOUND => c"not found",
        BAMS3_ERR_EXISTS => c"already exists",
        BAMS3_ERR_INCOMPLETE => c"incomplete dataset",
        BAMS3_ERR_CORRUPT => c"corrupt data",
        BAMS3_ERR_IO => c"I/O error",
        BAMS3_ERR_REGION => c"invalid region",
        BAMS3_ERR_MISUSE => c"invalid call for the handle's state",
        BAMS3_ERR_PANIC => c"internal error (panic)",
        BAMS3_ERR_CANCELLED => c"cancelled",
        BAMS3_ERR_INTERNAL => c"internal error",
        _ => c"unknown error",
    }
}
