//! Where attachment bytes live: one interface over the back ends (a local directory here;
//! S3-compatible storage in `s3.rs`). Objects are streamed in and out; nothing holds a
//! whole file. Keys are made from ids only (`{2 hex}/{id}`), never from client names.

use std::io;
use std::ops::Range;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use platform_core::body::ByteStream;
use platform_core::ApiError;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Size of the read and write buffers of the local back end.
const BUFFER: usize = 64 * 1024;

/// The configured back end.
pub(crate) enum Store {
    Local(Local),
    S3(super::s3::S3),
}

impl Store {
    /// S3 when `S3_BUCKET` is set, else the local directory.
    pub(crate) fn open(
        settings: &crate::config::AttachmentSettings,
    ) -> Result<Self, platform_core::config::ConfigError> {
        Ok(match &settings.s3 {
            Some(s3) => Store::S3(super::s3::S3::new(s3)?),
            None => Store::Local(Local::new(&settings.dir)),
        })
    }

    /// Streams `body` to `key`; returns the size. On any error (including the body's own:
    /// 413, 408, the client gone) nothing remains under `key`.
    pub(crate) async fn put<S>(&self, key: &str, body: S) -> Result<u64, ApiError>
    where
        S: Stream<Item = Result<Bytes, ApiError>> + Send + Unpin,
    {
        match self {
            Store::Local(l) => l.put(key, body).await,
            Store::S3(s) => s.put(key, body).await,
        }
    }

    /// The object's bytes in `range` (start..end, end exclusive) or all; `None` if absent.
    pub(crate) async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<Option<ByteStream>, ApiError> {
        match self {
            Store::Local(l) => l.get(key, range).await,
            Store::S3(s) => s.get(key, range).await,
        }
    }

    /// Removes `key`; absent is fine.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), ApiError> {
        match self {
            Store::Local(l) => l.delete(key).await,
            Store::S3(s) => s.delete(key).await,
        }
    }
}

/// Storage failures are the service's, not the client's: 503, logged once with the key.
pub(crate) fn unavailable(key: &str, e: impl std::fmt::Display) -> ApiError {
    let mut err = ApiError::unavailable(&format!("attachment storage ({key})"), e);
    err.message = "storage unavailable".into();
    err
}

/// Files under a directory: `{root}/{key}`, written to `{root}/tmp/` first and renamed into
/// place once complete and synced, so a reader never sees half a file and a failed upload
/// leaves nothing under its key.
pub(crate) struct Local {
    root: PathBuf,
}

impl Local {
    pub(crate) fn new(root: impl Into<PathBuf>) -> Self {
        Local { root: root.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    async fn put<S>(&self, key: &str, mut body: S) -> Result<u64, ApiError>
    where
        S: Stream<Item = Result<Bytes, ApiError>> + Send + Unpin,
    {
        let tmp_dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&tmp_dir)
            .await
            .map_err(|e| unavailable(key, e))?;
        let tmp = tmp_dir.join(uuid::Uuid::new_v4().simple().to_string());
        // Removes the temporary file unless renamed into place, also when this future is
        // dropped mid-way (the client went away and the connection's task ended).
        let mut guard = TmpGuard(Some(tmp.clone()));
        let written = async {
            let file = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| unavailable(key, e))?;
            let mut out = tokio::io::BufWriter::with_capacity(BUFFER, file);
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                out.write_all(&chunk)
                    .await
                    .map_err(|e| unavailable(key, e))?;
            }
            out.flush().await.map_err(|e| unavailable(key, e))?;
            out.get_ref()
                .sync_all()
                .await
                .map_err(|e| unavailable(key, e))?;
            let dest = self.path(key);
            if let Some(dir) = dest.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| unavailable(key, e))?;
            }
            tokio::fs::rename(&tmp, &dest)
                .await
                .map_err(|e| unavailable(key, e))?;
            Ok::<_, ApiError>(size)
        }
        .await;
        if written.is_ok() {
            guard.0 = None;
        }
        written
    }

    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<Option<ByteStream>, ApiError> {
        let mut file = match tokio::fs::File::open(self.path(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(key, e)),
        };
        let remaining = match range {
            Some(r) => {
                file.seek(io::SeekFrom::Start(r.start))
                    .await
                    .map_err(|e| unavailable(key, e))?;
                r.end.saturating_sub(r.start)
            }
            None => u64::MAX,
        };
        let stream =
            futures_util::stream::unfold((file, remaining), |(mut file, left)| async move {
                if left == 0 {
                    return None;
                }
                let want = usize::try_from(left).unwrap_or(BUFFER).min(BUFFER);
                let mut buf = BytesMut::with_capacity(want);
                match (&mut file).take(want as u64).read_buf(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => Some((Ok(buf.freeze()), (file, left - n as u64))),
                    Err(e) => Some((Err(e), (file, 0))),
                }
            });
        Ok(Some(Box::pin(stream)))
    }

    async fn delete(&self, key: &str) -> Result<(), ApiError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(unavailable(key, e)),
        }
    }
}

/// A temporary file to remove when dropped (unless taken): an upload cut short, refused or
/// failed, or its request dropped mid-way.
struct TmpGuard(Option<PathBuf>);

impl Drop for TmpGuard {
    fn drop(&mut self) {
        // Removed here and now, not in a spawned task: a failed upload must leave nothing
        // behind by the time its error is answered (and outside a runtime too). One unlink
        // blocks for microseconds.
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The key of an attachment's object (and of its thumbnail: `{key}.thumb`).
pub(crate) fn key_of(id: &uuid::Uuid) -> String {
    let hex = id.simple().to_string();
    format!("{}/{hex}", &hex[..2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, ApiError>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    async fn read_all(s: ByteStream) -> Vec<u8> {
        s.map(|r| r.unwrap().to_vec()).concat().await
    }

    #[tokio::test]
    async fn local_round_trip_ranges_and_failures() {
        let dir = std::env::temp_dir().join(format!("att-store-{}", uuid::Uuid::new_v4()));
        let store = Store::Local(Local::new(&dir));
        let id = uuid::Uuid::now_v7();
        let key = key_of(&id);
        assert_eq!(
            store
                .put(&key, chunks(&[b"hello ", b"world"]))
                .await
                .unwrap(),
            11
        );
        let all = store.get(&key, None).await.unwrap().unwrap();
        assert_eq!(read_all(all).await, b"hello world");
        let part = store.get(&key, Some(6..9)).await.unwrap().unwrap();
        assert_eq!(read_all(part).await, b"wor");
        // A body failing mid-way leaves nothing under its key, not even the old name.
        let other = key_of(&uuid::Uuid::now_v7());
        let failing = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(ApiError::new(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "too big",
            )),
        ]);
        assert_eq!(store.put(&other, failing).await.unwrap_err().status, 413);
        assert!(store.get(&other, None).await.unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(store.get(&key, None).await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
