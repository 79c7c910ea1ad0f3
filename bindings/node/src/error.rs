//! Errors as JavaScript sees them: an `Error` whose `code` is the C ABI's name for the failure
//! (`BAMS3_ERR_NOT_FOUND`...) and whose message is the line the CLI prints after `bams3: `.

use napi::{Env, JsError};

/// A failure on its way to JavaScript.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The C ABI's name of the status code (`include/bams3.h`).
    pub code: &'static str,
    pub message: String,
}

pub const INVALID: &str = "BAMS3_ERR_INVALID";
pub const CORRUPT: &str = "BAMS3_ERR_CORRUPT";
pub const REGION: &str = "BAMS3_ERR_REGION";
pub const EXISTS: &str = "BAMS3_ERR_EXISTS";
pub const MISUSE: &str = "BAMS3_ERR_MISUSE";
pub const PANIC: &str = "BAMS3_ERR_PANIC";

impl Failure {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn misuse(message: impl Into<String>) -> Self {
        Failure::new(MISUSE, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Failure::new(INVALID, message)
    }

    /// The JavaScript `Error` for this failure, as a napi error that rejects with it as is.
    pub fn into_js(self, env: Env) -> napi::Error {
        let e = JsError::from(napi::Error::new(self.code, self.message));
        napi::Error::from(e.into_unknown(env))
    }
}

// The same mapping as bams3-ffi/src/error.rs, so that a code means the same in C and in Node.
impl From<bams3_core::Error> for Failure {
    fn from(e: bams3_core::Error) -> Self {
        use bams3_core::Error;
        let code = match &e {
            Error::Io { .. } => "BAMS3_ERR_IO",
            Error::Corrupt { .. } => CORRUPT,
            Error::Incomplete(_) => "BAMS3_ERR_INCOMPLETE",
            Error::NotFound(_) => "BAMS3_ERR_NOT_FOUND",
            Error::AlreadyExists(_) => EXISTS,
            Error::Region { .. } => REGION,
            Error::Invalid(_) => INVALID,
            Error::Cancelled => "BAMS3_ERR_CANCELLED",
            // Internal faults, and variants added to bams3-core later.
            _ => "BAMS3_ERR_INTERNAL",
        };
        Failure::new(code, e.to_string())
    }
}
