//! The panic boundary and pointer checks every exported function goes through.
//!
//! A panic unwinding into C is undefined behaviour, so each exported function runs its body in
//! [`guard`] (status-returning functions) or [`guard_value`] (plain getters): a panic becomes
//! `BAMS3_ERR_PANIC` (or the getter's documented default) with a message in
//! `bams3_last_error()`.

use std::any::Any;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{set_last_error, Failure, FfiResult, BAMS3_ERR_PANIC, BAMS3_ERR_UTF8, BAMS3_OK};

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error in libbams3 (panic): {what}")
}

/// Runs `body`, turning its failure or panic into a status code and a last-error message.
pub fn guard(body: impl FnOnce() -> FfiResult<()>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => BAMS3_OK,
        Ok(Err(f)) => {
            set_last_error(&f.message);
            f.code
        }
        Err(payload) => {
            set_last_error(&panic_message(payload));
            BAMS3_ERR_PANIC
        }
    }
}

/// Like [`guard`] for functions that return a value: `default` on failure or panic.
pub fn guard_value<T>(default: T, body: impl FnOnce() -> FfiResult<T>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(f)) => {
            set_last_error(&f.message);
            default
        }
        Err(payload) => {
            set_last_error(&panic_message(payload));
            default
        }
    }
}

/// A shared reference from a handle pointer, or `BAMS3_ERR_NULL` naming the argument.
///
/// # Safety
/// A non-NULL `p` must point to a live `T` created by this library.
pub unsafe fn handle<'a, T>(p: *const T, what: &str) -> FfiResult<&'a T> {
    p.as_ref().ok_or_else(|| Failure::null(what))
}

/// A mutable reference from a handle pointer, or `BAMS3_ERR_NULL`.
///
/// # Safety
/// A non-NULL `p` must point to a live `T` created by this library, not used elsewhere meanwhile.
pub unsafe fn handle_mut<'a, T>(p: *mut T, what: &str) -> FfiResult<&'a mut T> {
    p.as_mut().ok_or_else(|| Failure::null(what))
}

/// Checks an out-parameter before any work is done; it is written only on success.
pub fn out_param<T>(p: *mut T, what: &str) -> FfiResult<*mut T> {
    if p.is_null() {
        Err(Failure::null(what))
    } else {
        Ok(p)
    }
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// A non-NULL `p` must point to a NUL-terminated string that outlives the call.
pub unsafe fn c_str<'a>(p: *const c_char, what: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    utf8(CStr::from_ptr(p).to_bytes(), what)
}

/// Bytes that must be UTF-8.
pub fn utf8<'a>(bytes: &'a [u8], what: &str) -> FfiResult<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            BAMS3_ERR_UTF8,
            format!(
                "{what} is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{bams3_last_error, BAMS3_ERR_NULL};

    fn last_error() -> String {
        unsafe { CStr::from_ptr(bams3_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_an_error_code_and_message() {
        let rc = guard(|| panic!("boom"));
        assert_eq!(rc, BAMS3_ERR_PANIC);
        assert!(last_error().contains("boom"), "{}", last_error());
        assert_eq!(guard_value(7u8, || panic!("again")), 7);
        assert!(last_error().contains("again"));
    }

    #[test]
    fn failures_set_the_thread_local_message() {
        let rc = guard(|| Err(Failure::null("writer")));
        assert_eq!(rc, BAMS3_ERR_NULL);
        assert_eq!(last_error(), "writer is NULL");
        // Other threads have their own message.
        let other = std::thread::spawn(last_error).join().unwrap();
        assert_eq!(other, "");
        assert_eq!(guard(|| Ok(())), BAMS3_OK);
        assert_eq!(last_error(), "writer is NULL");
    }

    #[test]
    fn strings_are_checked() {
        assert_eq!(utf8(b"ok\xff", "line").unwrap_err().code, BAMS3_ERR_UTF8);
        let s = c"fine";
        assert_eq!(unsafe { c_str(s.as_ptr(), "x") }.unwrap(), "fine");
        assert_eq!(
            unsafe { c_str(std::ptr::null(), "x") }.unwrap_err().code,
            crate::error::BAMS3_ERR_NULL
        );
    }
}
