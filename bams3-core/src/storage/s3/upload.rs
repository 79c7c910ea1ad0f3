//! Uploads: one PUT for small objects, a multipart upload for large ones.

use std::sync::OnceLock;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::retry::{Failure, classify, retry};

/// Objects larger than this are uploaded in parts, unless `BAMS3_S3_MULTIPART_THRESHOLD`
/// (bytes) says otherwise; see [`multipart_threshold`].
const MULTIPART_THRESHOLD: usize = 16 << 20;
/// Size of each multipart part (S3 requires at least 5 MiB except for the last).
const PART_SIZE: usize = 8 << 20;

/// Size above which an object is uploaded in parts: `BAMS3_S3_MULTIPART_THRESHOLD` (a byte
/// count) when set, else 16 MiB. Parts stay 8 MiB whatever the threshold (S3 wants at least
/// 5 MiB but for the last), so a lower threshold makes smaller objects one-part uploads: stores
/// that cap single PUTs lower, and tests of the multipart path on small datasets, use it.
fn multipart_threshold() -> usize {
    static T: OnceLock<usize> = OnceLock::new();
    *T.get_or_init(|| {
        std::env::var("BAMS3_S3_MULTIPART_THRESHOLD")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(MULTIPART_THRESHOLD)
    })
}

/// Uploads one object, in parts when it is large.
pub(super) async fn upload(
    client: &Client,
    bucket: &str,
    key: &str,
    data: &[u8],
) -> std::result::Result<(), Failure> {
    if data.len() <= multipart_threshold() {
        return retry(key, || async {
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(data.to_vec()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(e, bucket))
        })
        .await;
    }
    let created = retry(key, || async {
        client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(e, bucket))
    })
    .await?;
    let upload_id = created
        .upload_id()
        .ok_or_else(|| Failure::Transient("no upload id".into()))?
        .to_string();
    let result = async {
        let mut parts = Vec::new();
        for (i, part) in data.chunks(PART_SIZE).enumerate() {
            let n = i as i32 + 1;
            let out = retry(key, || async {
                client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(n)
                    .body(ByteStream::from(part.to_vec()))
                    .send()
                    .await
                    .map_err(|e| classify(e, bucket))
            })
            .await?;
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
        }
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let mut sent = false;
        retry(key, || {
            let again = std::mem::replace(&mut sent, true);
            let done = done.clone();
            let upload_id = upload_id.clone();
            async move {
                let r = client
                    .complete_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(done)
                    .send()
                    .await;
                match r {
                    Ok(_) => Ok(()),
                    // The upload is gone after a retry: the earlier attempt completed it and
                    // only its answer was lost, if the object is there with every byte.
                    Err(e) if again && e.code() == Some("NoSuchUpload") => {
                        match client.head_object().bucket(bucket).key(key).send().await {
                            Ok(h) if h.content_length() == Some(data.len() as i64) => Ok(()),
                            _ => Err(classify(e, bucket)),
                        }
                    }
                    Err(e) => Err(classify(e, bucket)),
                }
            }
        })
        .await
    }
    .await;
    if result.is_err() {
        // Parts of an abandoned upload are billed until aborted.
        let _ = client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}
