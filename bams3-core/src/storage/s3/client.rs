//! The AWS SDK client and the runtime the synchronous [`super::super::Storage`] calls block on.
//!
//! The trait is synchronous because the CLI, the C ABI and R call it from plain threads; this
//! module owns one lazily created multi-thread tokio runtime and blocks on it, so no caller has
//! to bring a runtime (and none may call in from inside another tokio runtime).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_s3::Client;

use crate::storage::StoreOptions;
use crate::{Error, Result};

pub(super) fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            // Requests are I/O bound; two workers keep many in flight without competing with
            // the compression threads for cores.
            .worker_threads(2)
            .thread_name("bams3-s3")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::Internal(format!("cannot start the S3 runtime: {e}")))
}

/// Runs `fut` to completion on the library's runtime.
pub(super) fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(fut))
}

/// Splits `s3://bucket/prefix` into bucket and prefix (without trailing slashes).
pub fn parse_uri(uri: &str) -> Result<(String, String)> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| Error::Invalid(format!("{uri}: not an s3:// URI")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::Invalid(format!(
            "{uri}: no bucket name (expected s3://bucket/prefix)"
        )));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// Builds a client from the AWS configuration chain plus `opts`.
pub(super) fn client(opts: &StoreOptions) -> Result<Client> {
    static CLIENTS: OnceLock<Mutex<Vec<(StoreOptions, Client)>>> = OnceLock::new();
    let cache = CLIENTS.get_or_init(|| Mutex::new(Vec::new()));
    if let Some((_, c)) = cache
        .lock()
        .ok()
        .and_then(|v| v.iter().find(|(o, _)| o == opts).cloned())
    {
        return Ok(c);
    }
    let c = block_on(async {
        let region = aws_config::meta::region::RegionProviderChain::default_provider()
            // S3-compatible stores ignore the region, but the signer needs one.
            .or_else(aws_config::Region::from_static("us-east-1"));
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(region)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .read_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if opts.no_sign_request {
            loader = loader.no_credentials();
        }
        let shared = loader.load().await;
        let custom_endpoint = shared.endpoint_url().is_some();
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(custom_endpoint)
            // Checksums only where S3 requires them: S3-compatible stores differ in their
            // support for the newer trailing checksums, and every stream carries its own CRC.
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        Client::from_conf(conf)
    })?;
    if let Ok(mut v) = cache.lock() {
        v.push((opts.clone(), c.clone()));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            parse_uri("s3://b/x/y.bams3/").unwrap(),
            ("b".into(), "x/y.bams3".into())
        );
        assert_eq!(parse_uri("s3://b").unwrap(), ("b".into(), "".into()));
        assert!(parse_uri("s3:///x").is_err());
        assert!(parse_uri("/x").is_err());
    }
}
