//! The S3-compatible back end of the attachment store, through `object_store` (a maintained
//! client: SigV4 signing, multipart uploads, ranged reads, retries). An upload is buffered one
//! part at a time: S3's multipart parts must be at least 5 MiB (all but the last), so that is
//! the one buffer per upload; a file smaller than one part is a single PUT.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig,
};
use platform_core::body::ByteStream;
use platform_core::config::ConfigError;
use platform_core::ApiError;

use super::store::unavailable;
use crate::config::S3Settings;

/// S3's smallest part (all but the last); parts are cut at the first chunk boundary past it.
pub(crate) const PART_BYTES: usize = 5 * 1024 * 1024;

/// Objects in one bucket.
pub(crate) struct S3 {
    store: AmazonS3,
}

impl S3 {
    pub(crate) fn new(s: &S3Settings) -> Result<Self, ConfigError> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key)
            .with_virtual_hosted_style_request(!s.force_path_style)
            // A storage outage should be a prompt 503, not minutes of retries under a
            // client's request.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(2))
                    // Whole requests, a download's body included: long enough for 25 MiB to a
                    // slow client (which paces the read).
                    .with_timeout(Duration::from_secs(600))
                    .with_allow_http(true),
            );
        if let Some(e) = &s.endpoint {
            b = b.with_endpoint(e);
        }
        let store = b.build().map_err(|e| ConfigError {
            var: "S3_BUCKET".into(),
            value: s.bucket.clone(),
            reason: e.to_string(),
        })?;
        Ok(S3 { store })
    }

    /// Streams `body` to `key`; on any failure the multipart upload is aborted, so nothing
    /// remains under `key` (and no stray parts are billed).
    pub(crate) async fn put<S>(&self, key: &str, mut body: S) -> Result<u64, ApiError>
    where
        S: Stream<Item = Result<Bytes, ApiError>> + Send + Unpin,
    {
        let path = Path::from(key);
        let mut part: Vec<Bytes> = Vec::new();
        let mut part_len = 0usize;
        let mut size = 0u64;
        let mut upload = Upload(None);
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    upload.abort(key).await;
                    return Err(e);
                }
            };
            size += chunk.len() as u64;
            part_len += chunk.len();
            part.push(chunk);
            if part_len < PART_BYTES {
                continue;
            }
            if upload.0.is_none() {
                let started = self
                    .store
                    .put_multipart(&path)
                    .await
                    .map_err(|e| unavailable(key, e))?;
                upload.0 = Some(started);
            }
            let payload: PutPayload = std::mem::take(&mut part).into_iter().collect();
            part_len = 0;
            if let Err(e) = upload.put_part(payload).await {
                upload.abort(key).await;
                return Err(unavailable(key, e));
            }
        }
        let payload: PutPayload = part.into_iter().collect();
        match upload.0.as_mut() {
            None => {
                self.store
                    .put(&path, payload)
                    .await
                    .map_err(|e| unavailable(key, e))?;
            }
            Some(up) => {
                let done = async {
                    if part_len > 0 {
                        up.put_part(payload).await?;
                    }
                    up.complete().await
                }
                .await;
                if let Err(e) = done {
                    upload.abort(key).await;
                    return Err(unavailable(key, e));
                }
                upload.0 = None;
            }
        }
        Ok(size)
    }

    /// The object's bytes in `range` (end exclusive) or all; `None` if absent.
    pub(crate) async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<Option<ByteStream>, ApiError> {
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        match self.store.get_opts(&Path::from(key), opts).await {
            Ok(r) => Ok(Some(Box::pin(
                r.into_stream().map_err(std::io::Error::from),
            ))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable(key, e)),
        }
    }

    /// Removes `key`; absent is fine (S3 answers a delete of nothing with success anyway).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), ApiError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable(key, e)),
        }
    }

    /// Whether `key` exists (the tests' check that nothing stayed behind).
    #[cfg(test)]
    pub(crate) async fn exists(&self, key: &str) -> Result<bool, ApiError> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(unavailable(key, e)),
        }
    }
}

/// A multipart upload in progress. Dropped unfinished (the request was cancelled: the client
/// went away mid-upload), it is aborted in the background, so no parts stay behind.
struct Upload(Option<Box<dyn MultipartUpload>>);

impl Upload {
    async fn put_part(&mut self, payload: PutPayload) -> object_store::Result<()> {
        match self.0.as_mut() {
            Some(up) => up.put_part(payload).await,
            None => Ok(()),
        }
    }

    async fn abort(&mut self, key: &str) {
        if let Some(mut up) = self.0.take() {
            if let Err(e) = up.abort().await {
                tracing::warn!(key, error = %e, "aborting a multipart upload failed");
            }
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(mut up) = self.0.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = up.abort().await {
                        tracing::warn!(error = %e, "aborting a cancelled multipart upload failed");
                    }
                });
            }
        }
    }
}

/// Against the real S3 server the test harness starts (`scripts/test-all.sh` exports
/// `E2E_S3_*`; `s3s-fs` keeps each bucket as a folder of `E2E_S3_DIR`, so a fresh bucket is a
/// new folder).
#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn store() -> S3 {
        let var = |v: &str| {
            std::env::var(v).unwrap_or_else(|_| {
                panic!("{v} is not set: run the tests with scripts/test-all.sh (it starts an S3 server)")
            })
        };
        let bucket = format!("unit-{}", uuid::Uuid::new_v4().simple());
        std::fs::create_dir_all(std::path::Path::new(&var("E2E_S3_DIR")).join(&bucket))
            .expect("bucket folder");
        S3::new(&S3Settings {
            endpoint: Some(var("E2E_S3_ENDPOINT")),
            bucket,
            region: "us-east-1".into(),
            access_key_id: var("E2E_S3_ACCESS_KEY_ID"),
            secret_access_key: var("E2E_S3_SECRET_ACCESS_KEY"),
            force_path_style: true,
        })
        .expect("S3 settings")
    }

    /// `total` bytes (a repeating pattern) in chunks of `chunk`.
    fn body(total: usize, chunk: usize) -> (Vec<u8>, Vec<Result<Bytes, ApiError>>) {
        let all: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        let chunks = all
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        (all, chunks)
    }

    async fn read(s: &S3, key: &str, range: Option<Range<u64>>) -> Option<Vec<u8>> {
        let stream = s.get(key, range).await.unwrap()?;
        let parts: Vec<Bytes> = stream.try_collect().await.unwrap();
        Some(parts.concat())
    }

    #[tokio::test]
    async fn small_and_multipart_objects_round_trip_with_ranges() {
        let s = store();
        let (small, chunks) = body(1000, 300);
        assert_eq!(s.put("ab/small", stream::iter(chunks)).await.unwrap(), 1000);
        assert_eq!(read(&s, "ab/small", None).await.unwrap(), small);
        assert_eq!(
            read(&s, "ab/small", Some(10..20)).await.unwrap(),
            &small[10..20]
        );

        // Three parts: two of 5 MiB and change, and the rest.
        let total = 2 * PART_BYTES + 123_457;
        let (big, chunks) = body(total, 64 * 1024);
        assert_eq!(
            s.put("cd/big", stream::iter(chunks)).await.unwrap(),
            total as u64
        );
        let start = PART_BYTES as u64 - 5;
        let got = read(&s, "cd/big", Some(start..start + 10)).await.unwrap();
        assert_eq!(got, &big[start as usize..start as usize + 10]);
        assert_eq!(read(&s, "cd/big", None).await.unwrap(), big);

        assert!(s.exists("cd/big").await.unwrap());
        s.delete("cd/big").await.unwrap();
        s.delete("cd/big").await.unwrap();
        assert!(!s.exists("cd/big").await.unwrap());
        assert!(read(&s, "cd/big", None).await.is_none());
    }

    #[tokio::test]
    async fn a_body_failing_mid_way_leaves_no_object() {
        let s = store();
        for total in [1000, PART_BYTES + 10] {
            let (_, mut chunks) = body(total, 64 * 1024);
            chunks.push(Err(ApiError::new(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "too big",
            )));
            let e = s.put("ef/failed", stream::iter(chunks)).await.unwrap_err();
            assert_eq!(e.status, http::StatusCode::PAYLOAD_TOO_LARGE);
            assert!(!s.exists("ef/failed").await.unwrap(), "{total} bytes");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_503() {
        let s = S3::new(&S3Settings {
            endpoint: Some("http://127.0.0.1:9".into()),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            force_path_style: true,
        })
        .unwrap();
        let e = s.delete("ab/x").await.unwrap_err();
        assert_eq!(e.status, http::StatusCode::SERVICE_UNAVAILABLE);
    }
}
