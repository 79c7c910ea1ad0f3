//! What a failed request means (retry, missing, not modified, or a message saying what to fix),
//! and bounded retries with backoff. Retries are ours rather than the SDK's: the SDK does not
//! treat a body cut short as retryable, and counting attempts in one place keeps them bounded.

use std::io;
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Attempts per request, the first included.
pub(super) const MAX_ATTEMPTS: u32 = 6;
/// First backoff; doubled per attempt, with full jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest single backoff.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// How a failed attempt is handled.
pub(super) enum Failure {
    /// Worth another attempt (5xx, throttling, resets, timeouts, short bodies).
    Transient(String),
    /// The object does not exist.
    NotFound,
    /// `If-None-Match` matched: the cached copy is current.
    NotModified,
    /// Retrying cannot help; the message says what to fix.
    Permanent(io::ErrorKind, String),
}

pub(super) fn classify<E>(
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    bucket: &str,
) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = aws_sdk_s3::error::DisplayErrorContext(&e).to_string();
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().map(str::to_string);
    let lower = text.to_ascii_lowercase();
    if std::env::var_os("BAMS3_S3_DEBUG").is_some() {
        eprintln!("bams3: S3 error: status {status:?} code {code:?}: {text}");
    }
    if lower.contains("credential") && status.is_none() {
        return Failure::Permanent(
            io::ErrorKind::PermissionDenied,
            "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or \
             AWS_PROFILE, log in with `aws sso login`, or pass --no-sign-request for a public bucket"
                .into(),
        );
    }
    match (&e, status) {
        (SdkError::TimeoutError(_), _) => return Failure::Transient("timed out".into()),
        (SdkError::DispatchFailure(_), _) | (SdkError::ResponseError(_), _) => {
            return Failure::Transient(text);
        }
        _ => {}
    }
    let code_s = code.as_deref().unwrap_or("");
    match (status, code_s) {
        (Some(304), _) => Failure::NotModified,
        (_, "NoSuchBucket") => Failure::Permanent(
            io::ErrorKind::NotFound,
            format!(
                "no such bucket '{bucket}': check the bucket name, the region (AWS_REGION) and the endpoint (--endpoint-url)"
            ),
        ),
        (_, "NoSuchKey") | (Some(404), "" | "NotFound") => Failure::NotFound,
        (
            _,
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidToken"
            | "ExpiredToken"
            | "TokenRefreshRequired"
            | "NotSignedUp",
        ) => Failure::Permanent(
            io::ErrorKind::PermissionDenied,
            format!(
                "the store rejected the credentials ({code_s}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or refresh the session"
            ),
        ),
        (_, "AccessDenied" | "AllAccessDisabled") | (Some(403), _) => Failure::Permanent(
            io::ErrorKind::PermissionDenied,
            format!(
                "access denied to bucket '{bucket}': check the credentials and the bucket policy (or --no-sign-request for a public bucket)"
            ),
        ),
        (
            _,
            "PermanentRedirect"
            | "AuthorizationHeaderMalformed"
            | "IllegalLocationConstraintException",
        )
        | (Some(301 | 307), _) => Failure::Permanent(
            io::ErrorKind::InvalidInput,
            format!(
                "bucket '{bucket}' is in another region: set AWS_REGION to the bucket's region"
            ),
        ),
        (Some(s), _) if s >= 500 || s == 429 => Failure::Transient(format!("HTTP {s} {code_s}")),
        (
            _,
            "SlowDown"
            | "InternalError"
            | "RequestTimeout"
            | "ServiceUnavailable"
            | "Throttling"
            | "ThrottlingException"
            | "RequestTimeTooSkewed",
        ) => Failure::Transient(code_s.to_string()),
        (Some(s), _) => Failure::Permanent(
            io::ErrorKind::Other,
            format!(
                "HTTP {s} {code_s}: {}",
                e.message().unwrap_or("request refused")
            ),
        ),
        (None, _) => Failure::Transient(text),
    }
}

/// Backoff before attempt `attempt` (1-based retries): exponential with full jitter.
pub(super) fn backoff(attempt: u32) -> Duration {
    let max = BACKOFF_BASE
        .saturating_mul(1 << attempt.min(16))
        .min(BACKOFF_CAP);
    // Jitter from the clock's low bits: enough to spread clients, no RNG dependency.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let seed = nanos
        .wrapping_mul(6364136223846793005)
        .wrapping_add(std::process::id() as u64);
    let frac = (seed >> 33) as f64 / (1u64 << 31) as f64;
    max.mul_f64(0.5 + 0.5 * frac)
}

/// Runs `op` with bounded retries of transient failures.
pub(super) async fn retry<T, F, Fut>(what: &str, mut op: F) -> std::result::Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(Failure::Transient(msg)) => {
                attempt += 1;
                if attempt >= MAX_ATTEMPTS {
                    return Err(Failure::Transient(format!(
                        "{msg} (gave up after {MAX_ATTEMPTS} attempts on {what})"
                    )));
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
            r => return r,
        }
    }
}

impl Failure {
    /// A copy, to report one background failure from several calls.
    pub(super) fn again(&self) -> Failure {
        match self {
            Failure::Transient(m) => Failure::Transient(m.clone()),
            Failure::NotFound => Failure::NotFound,
            Failure::NotModified => Failure::NotModified,
            Failure::Permanent(k, m) => Failure::Permanent(*k, m.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        for a in 1..40 {
            assert!(backoff(a) <= BACKOFF_CAP);
        }
    }
}
