//! The htsget error responses: a type from the specification's table, its HTTP status, and a
//! message saying what to fix.

use hyper::StatusCode;

/// One of the error types of the htsget specification (plus `PayloadTooLarge` for a region over
/// the configured limit, and `Unavailable` when every stream slot stays busy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 401: the authorization provided is invalid.
    InvalidAuthentication,
    /// 403: authorization is required.
    PermissionDenied,
    /// 404: no such dataset or reference.
    NotFound,
    /// 400: a format other than BAM.
    UnsupportedFormat,
    /// 400: parameters that do not follow the specification.
    InvalidInput,
    /// 400: a range that cannot be satisfied (start after end).
    InvalidRange,
    /// 405: a method the route does not take (the response's `Allow` says which it does).
    MethodNotAllowed,
    /// 413: a region larger than `--max-region`.
    PayloadTooLarge,
    /// 503: too many streams at once, for longer than the timeout.
    Unavailable,
    /// 500: the dataset could not be read.
    Internal,
}

impl Kind {
    /// The name the specification gives the error (the JSON `error` field).
    pub fn name(self) -> &'static str {
        match self {
            Kind::InvalidAuthentication => "InvalidAuthentication",
            Kind::PermissionDenied => "PermissionDenied",
            Kind::NotFound => "NotFound",
            Kind::UnsupportedFormat => "UnsupportedFormat",
            Kind::InvalidInput => "InvalidInput",
            Kind::InvalidRange => "InvalidRange",
            Kind::MethodNotAllowed => "MethodNotAllowed",
            Kind::PayloadTooLarge => "PayloadTooLarge",
            Kind::Unavailable => "ServiceUnavailable",
            Kind::Internal => "InternalError",
        }
    }

    /// The HTTP status the specification pairs with it.
    pub fn status(self) -> StatusCode {
        match self {
            Kind::InvalidAuthentication => StatusCode::UNAUTHORIZED,
            Kind::PermissionDenied => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::UnsupportedFormat | Kind::InvalidInput | Kind::InvalidRange => {
                StatusCode::BAD_REQUEST
            }
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error response: its kind and message.
#[derive(Debug, Clone)]
pub struct HtsgetError {
    /// The error type.
    pub kind: Kind,
    /// What went wrong, for the user.
    pub message: String,
    /// The methods the route takes, for the `Allow` header of a 405.
    pub allow: Option<&'static str>,
}

impl HtsgetError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        HtsgetError {
            kind,
            message: message.into(),
            allow: None,
        }
    }

    /// A 405 for `method` on a route that takes `allow` (as the `Allow` header spells it).
    pub fn method_not_allowed(method: &hyper::Method, allow: &'static str) -> Self {
        HtsgetError {
            allow: Some(allow),
            ..Self::new(
                Kind::MethodNotAllowed,
                format!("{method} is not allowed here; use {allow}"),
            )
        }
    }

    /// The response body: `{"htsget":{"error":...,"message":...}}`.
    pub fn body(&self) -> String {
        serde_json::json!({"htsget": {"error": self.kind.name(), "message": self.message}})
            .to_string()
    }

    /// The library's error as an htsget error: a missing dataset or reference is `NotFound`, a
    /// bad region `InvalidRange`, anything else a server fault.
    pub fn from_core(e: &bams3_core::Error) -> Self {
        use bams3_core::Error as E;
        let kind = match e {
            E::NotFound(_) => Kind::NotFound,
            E::Region { .. } => Kind::InvalidRange,
            _ => Kind::Internal,
        };
        HtsgetError::new(kind, e.to_string())
    }
}

/// Shorthand for a `Result` whose error is an htsget error.
pub type Result<T> = std::result::Result<T, HtsgetError>;
