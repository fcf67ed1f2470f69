//! Attachments: `POST /attachments` streams an upload to storage and records it as the
//! caller's; a send claims uploads with `attachmentIds` ([`claim`]); `GET|HEAD
//! /attachments/:id[/thumbnail]` serves a claimed file to whoever holds a signed, unexpired,
//! unrevoked URL (an `<img src>` sends no header, so the URL is the permission).
//!
//! - `store`: the storage back ends (`s3`: the S3-compatible one); `thumbnail`: previews of
//!   images; `wire`: names, content types, ranges, dispositions;
//!   `sweep`: removal of deleted, never-sent and orphaned uploads.

pub(crate) mod s3;
pub(crate) mod store;
pub(crate) mod sweep;
mod thumbnail;
mod wire;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use hyper::body::Incoming;
use platform_core::attachment_urls::UrlQuery;
use platform_core::body::Limited;
use platform_core::model::{Attachment, StoredAttachment};
use platform_core::{json, time, ApiError, Body, Response};
use serde::Serialize;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::lifecycle::signed_in;
use crate::State;
use store::Store;

/// Bytes of an upload's start kept to read image dimensions from (headers only).
const HEAD_BYTES: usize = 64 * 1024;
/// Most attachments one message carries.
pub(crate) const PER_MESSAGE_MAX: usize = 10;

/// The attachment part of the service's state.
pub(crate) struct Attachments {
    /// Shared with the thumbnail task.
    pub(crate) store: std::sync::Arc<Store>,
    /// Uploads streaming at once on this instance.
    uploads: Semaphore,
    thumbnails: thumbnail::Thumbnails,
}

impl Attachments {
    pub(crate) fn new(
        store: Store,
        uploads_max: usize,
        pg: platform_core::pools::PgPool,
        thumbnail_max_bytes: u64,
        events: thumbnail::Events,
    ) -> Self {
        let store = std::sync::Arc::new(store);
        Attachments {
            thumbnails: thumbnail::Thumbnails::new(store.clone(), pg, thumbnail_max_bytes, events),
            store,
            uploads: Semaphore::new(uploads_max),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Uploaded {
    id: Uuid,
    name: String,
    content_type: String,
    size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<i32>,
}

/// Passes a body through, keeping its first [`HEAD_BYTES`] (for image dimensions).
struct Sniffed<S> {
    inner: S,
    head: Vec<u8>,
}

impl<S: Stream<Item = Result<Bytes, ApiError>> + Unpin> Stream for Sniffed<S> {
    type Item = Result<Bytes, ApiError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = this.inner.poll_next_unpin(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            let room = HEAD_BYTES - this.head.len();
            this.head.extend_from_slice(&chunk[..room.min(chunk.len())]);
        }
        next
    }
}

fn too_large(message: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
}

/// `POST /attachments`: 201 `{"id", "name", "contentType", "size"[, "width", "height"]}`.
pub(crate) async fn upload(
    state: &State,
    caller: Option<&str>,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let owner = signed_in(caller)?;
    let name = wire::file_name(headers.get("x-filename").map(HeaderValue::as_bytes))?;
    let content_type = wire::content_type(headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()))?;
    let settings = &state.config.attachments;
    let body = Limited::new(headers, body, settings.max_bytes)?;
    // What this upload will add at least; a chunked body is checked again once stored.
    let declared = body.declared().unwrap_or(0);
    let unsent = unsent_bytes(state, owner).await?;
    if unsent.saturating_add(declared) > settings.unsent_max_bytes {
        return Err(quota_exceeded(settings.unsent_max_bytes));
    }
    let _permit = state.attachments.uploads.try_acquire().map_err(|_| {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many uploads at once: try again shortly",
        );
        e.retry_after = Some(1);
        e
    })?;
    let id = Uuid::now_v7();
    let key = store::key_of(&id);
    let mut sniffed = Sniffed {
        inner: body,
        head: Vec::new(),
    };
    let size = state.attachments.store.put(&key, &mut sniffed).await?;
    // From here the object is removed again unless its row is written: on a refusal below
    // before it is answered, and also when this future is dropped (the client went away
    // while we were recording).
    let stored = Unrecorded {
        store: Some(state.attachments.store.clone()),
        key: key.clone(),
    };
    let (width, height) = dimensions(&content_type, &sniffed.head);
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let recorded = async {
        if size == 0 {
            return Err(ApiError::bad_request("the file is empty"));
        }
        let fits = record(
            state,
            owner,
            id,
            &name,
            &content_type,
            size,
            &key,
            width,
            height,
        )
        .await?;
        if !fits {
            return Err(quota_exceeded(settings.unsent_max_bytes));
        }
        Ok(())
    }
    .await;
    match recorded {
        Ok(()) => stored.keep(),
        Err(e) => {
            stored.remove().await;
            return Err(e);
        }
    }
    let thumbs = &state.attachments.thumbnails;
    if thumbnail::wanted(&content_type, size, thumbs.max_bytes(), width, height) {
        thumbs.queue(thumbnail::Job { id, key });
    }
    let answer = Uploaded {
        id,
        name,
        content_type,
        size,
        width,
        height,
    };
    Ok(json::respond(StatusCode::CREATED, &answer))
}

fn quota_exceeded(max: u64) -> ApiError {
    too_large(format!(
        "unsent uploads may hold at most {max} bytes per user: send or wait for older ones to expire"
    ))
}

/// A stored object whose row is not written (yet): removed by [`Unrecorded::remove`] on a
/// refusal, or when dropped unless [`Unrecorded::keep`] (a dropped request; that removal is
/// spawned, since a drop must not wait). A failure is logged by the store and leaves a file
/// no row names.
struct Unrecorded {
    store: Option<std::sync::Arc<Store>>,
    key: String,
}

impl Unrecorded {
    /// Its row is written: the object stays.
    fn keep(mut self) {
        self.store = None;
    }

    /// Removes the object before the refusal is answered, so that nothing of it is left by
    /// then.
    async fn remove(mut self) {
        if let Some(store) = self.store.take() {
            let _ = store.delete(&self.key).await;
        }
    }
}

impl Drop for Unrecorded {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = store.delete(&key).await;
            });
        }
    }
}

/// Width and height of an image, read from its first bytes (no decoding).
fn dimensions(content_type: &str, head: &[u8]) -> (Option<i32>, Option<i32>) {
    if !content_type.starts_with("image/") {
        return (None, None);
    }
    match imagesize::blob_size(head) {
        Ok(d) => (i32::try_from(d.width).ok(), i32::try_from(d.height).ok()),
        Err(_) => (None, None),
    }
}

async fn unsent_bytes(state: &State, owner: &str) -> Result<u64, ApiError> {
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT coalesce(sum(size), 0)::bigint FROM attachments
             WHERE owner_id = $1 AND message_id IS NULL AND deleted_at IS NULL",
        )
        .await?;
    let sum: i64 = client.query_one(&stmt, &[&owner]).await?.get(0);
    Ok(u64::try_from(sum).unwrap_or(0))
}

/// Writes the upload's row unless it takes the owner's unsent bytes past the quota (false).
/// Under a per-owner transaction lock, so concurrent uploads of one user cannot both pass.
#[allow(clippy::too_many_arguments)]
async fn record(
    state: &State,
    owner: &str,
    id: Uuid,
    name: &str,
    content_type: &str,
    size: i64,
    key: &str,
    width: Option<i32>,
    height: Option<i32>,
) -> Result<bool, ApiError> {
    let mut client = state.pg.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('attachments:' || $1, 0))",
        &[&owner],
    )
    .await?;
    let max = i64::try_from(state.config.attachments.unsent_max_bytes).unwrap_or(i64::MAX);
    let n = tx
        .execute(
            "INSERT INTO attachments (id, owner_id, name, content_type, size, storage_key,
                                      width, height)
             SELECT $1::uuid, $2::text, $3::text, $4::text, $5::bigint, $6::text, $7::int,
                    $8::int
             WHERE (SELECT coalesce(sum(size), 0)::bigint FROM attachments
                    WHERE owner_id = $2 AND message_id IS NULL AND deleted_at IS NULL)
                   + $5::bigint <= $9::bigint",
            &[
                &id,
                &owner,
                &name,
                &content_type,
                &size,
                &key,
                &width,
                &height,
                &max,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Claims `ids` (the sender's unsent uploads) for `message` in one statement: all or none.
/// 400 unless every id is the sender's, unsent and not deleted. The attachments, in the
/// order of `ids`, with URLs issued now.
pub(crate) async fn claim(
    state: &State,
    sender: &str,
    conversation: Uuid,
    message: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Attachment>, ApiError> {
    let mut client = state.pg.get().await?;
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "UPDATE attachments a
             SET message_id = $3, conversation_id = $4, claimed_at = now(),
                 position = (array_position($1::uuid[], a.id) - 1)::smallint
             WHERE a.id = ANY($1) AND a.owner_id = $2 AND a.message_id IS NULL
               AND a.deleted_at IS NULL
             RETURNING a.id, a.name, a.content_type, a.size, a.width, a.height,
                       a.thumbnail_key IS NOT NULL",
            &[&ids, &sender, &message, &conversation],
        )
        .await?;
    if rows.len() != ids.len() {
        tx.rollback().await?;
        return Err(ApiError::bad_request(
            "attachmentIds must be your own uploads, not yet sent in a message",
        ));
    }
    tx.commit().await?;
    let now = time::now_millis();
    let mut found: Vec<StoredAttachment> = rows
        .iter()
        .map(|r| StoredAttachment {
            id: r.get(0),
            name: r.get(1),
            content_type: r.get(2),
            size: r.get(3),
            width: r.get(4),
            height: r.get(5),
            has_thumbnail: r.get(6),
        })
        .collect();
    found.sort_by_key(|a| ids.iter().position(|id| *id == a.id));
    Ok(found
        .into_iter()
        .map(|a| a.signed(&state.config.urls, now))
        .collect())
}

/// Undoes a claim whose message was never queued (best effort: the sweeper removes claims
/// whose message never appeared).
pub(crate) async fn unclaim(state: &State, message: Uuid) {
    let undo = async {
        let client = state.pg.get().await?;
        client
            .execute(
                "UPDATE attachments
                 SET message_id = NULL, conversation_id = NULL, claimed_at = NULL, position = NULL
                 WHERE message_id = $1 AND deleted_at IS NULL",
                &[&message],
            )
            .await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = undo.await {
        tracing::warn!(%message, error = %e, "could not release the attachments of a failed send");
    }
}

/// Checks `attachmentIds` before anything is claimed: at most [`PER_MESSAGE_MAX`], no
/// duplicates.
pub(crate) fn check_ids(ids: &[Uuid]) -> Result<(), ApiError> {
    if ids.len() > PER_MESSAGE_MAX {
        return Err(ApiError::bad_request(format!(
            "attachmentIds may name at most {PER_MESSAGE_MAX} uploads"
        )));
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(ApiError::bad_request(format!(
                "attachmentIds names {id} twice"
            )));
        }
    }
    Ok(())
}

/// `GET|HEAD /attachments/:id[/thumbnail]` with the signed query.
pub(crate) async fn download(
    state: &State,
    method: &Method,
    id: &str,
    thumbnail: bool,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(id) = Uuid::try_parse(id) else {
        return Err(not_found());
    };
    let q = UrlQuery::parse(query)?;
    let now = time::now_millis();
    state.config.urls.verify(&id, &q, now)?;
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT a.storage_key, a.thumbnail_key, a.name, a.content_type, a.size,
                    a.message_id IS NOT NULL AND a.deleted_at IS NULL AND c.id IS NOT NULL
                      AND (m.id IS NULL OR m.deleted_at IS NULL),
                    c.attachments_revoked_at
             FROM attachments a
             LEFT JOIN conversations c ON c.id = a.conversation_id
             LEFT JOIN messages m ON m.id = a.message_id AND m.conversation_id = a.conversation_id
             WHERE a.id = $1",
        )
        .await?;
    let row = client.query_opt(&stmt, &[&id]).await?;
    drop(client);
    let Some(row) = row.filter(|r| r.get::<_, bool>(5)) else {
        return Err(not_found());
    };
    let revoked: Option<std::time::SystemTime> = row.get(6);
    if revoked.is_some_and(|at| q.issued <= time::to_millis(at)) {
        return Err(ApiError::forbidden(
            "the link was revoked when a member left: read the message again for a fresh one",
        ));
    }
    let max_age = (q.expires - now).max(0) / 1000;
    if thumbnail {
        let Some(key) = row.get::<_, Option<String>>(1) else {
            return Err(not_found());
        };
        return serve_thumbnail(state, method, &id, &key, max_age).await;
    }
    let key: String = row.get(0);
    let name: String = row.get(2);
    let content_type: String = row.get(3);
    let size = u64::try_from(row.get::<_, i64>(4)).unwrap_or(0);
    let wanted = wire::range(headers.get(header::RANGE).map(|v| v.as_bytes()), size);
    let mut res = Response::new(Body::Empty);
    let h = res.headers_mut();
    common_headers(h, &id, max_age);
    h.insert(header::CONTENT_TYPE, header_value(&content_type));
    h.insert(
        header::CONTENT_DISPOSITION,
        header_value(&wire::disposition(&content_type, &name)),
    );
    let range = match wanted {
        wire::Wanted::Unsatisfiable => {
            *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}")),
            );
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            return Ok(res);
        }
        wire::Wanted::Whole => None,
        wire::Wanted::Part(r) => {
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {}-{}/{size}", r.start, r.end - 1)),
            );
            Some(r)
        }
    };
    let len = range.as_ref().map_or(size, |r| r.end - r.start);
    res.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if method == Method::HEAD {
        return Ok(res);
    }
    let Some(stream) = state.attachments.store.get(&key, range).await? else {
        tracing::warn!(%id, key, "attachment row without its stored object");
        return Err(not_found());
    };
    *res.body_mut() = Body::stream(stream);
    Ok(res)
}

/// A thumbnail is small (at most 320x320): read whole, its type told by its first bytes.
async fn serve_thumbnail(
    state: &State,
    method: &Method,
    id: &Uuid,
    key: &str,
    max_age: i64,
) -> Result<Response, ApiError> {
    let Some(mut stream) = state.attachments.store.get(key, None).await? else {
        return Err(not_found());
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| store::unavailable(key, e))?;
        if bytes.len() + chunk.len() > 4 << 20 {
            return Err(ApiError::internal(
                "thumbnail",
                format!("{key} is too large"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    let content_type = if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    };
    let mut res = Response::new(Body::Empty);
    let h = res.headers_mut();
    common_headers(h, id, max_age);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    if method != Method::HEAD {
        *res.body_mut() = Body::from(bytes);
    }
    Ok(res)
}

fn common_headers(h: &mut HeaderMap, id: &Uuid, max_age: i64) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // An uploaded HTML or SVG opened from its URL runs no script and reaches nothing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header_value(&format!("private, max-age={max_age}")),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, header_value(&format!("\"{id}\"")));
}

/// Values built from what we stored (checked at upload); a byte that still does not fit a
/// header is replaced rather than failing the download.
fn header_value(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or_else(|_| {
        let clean: String = v
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        HeaderValue::from_str(&clean)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"))
    })
}

fn not_found() -> ApiError {
    ApiError::not_found("no such attachment")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_and_distinct() {
        let ids: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
        assert!(check_ids(&ids).is_ok());
        assert!(check_ids(&[]).is_ok());
        let mut eleven = ids.clone();
        eleven.push(Uuid::now_v7());
        assert_eq!(check_ids(&eleven).unwrap_err().status, 400);
        let twice = [ids[0], ids[1], ids[0]];
        assert_eq!(check_ids(&twice).unwrap_err().status, 400);
    }

    #[test]
    fn dimensions_of_images_only() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&300u32.to_be_bytes());
        png.extend_from_slice(&200u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0]);
        assert_eq!(dimensions("image/png", &png), (Some(300), Some(200)));
        // Told by its bytes, not its declared type, but only for an image type.
        assert_eq!(dimensions("image/jpeg", &png), (Some(300), Some(200)));
        assert_eq!(dimensions("application/octet-stream", &png), (None, None));
        assert_eq!(dimensions("image/png", b"not an image"), (None, None));
    }

    #[tokio::test]
    async fn the_head_is_kept_while_streaming() {
        let chunks: Vec<Result<Bytes, ApiError>> = (0..3)
            .map(|i| Ok(Bytes::from(vec![i as u8; 40 * 1024])))
            .collect();
        let mut s = Sniffed {
            inner: futures_util::stream::iter(chunks),
            head: Vec::new(),
        };
        let mut total = 0;
        while let Some(c) = s.next().await {
            total += c.unwrap().len();
        }
        assert_eq!(total, 120 * 1024);
        assert_eq!(s.head.len(), HEAD_BYTES);
        assert_eq!(s.head[40 * 1024], 1);
    }
}
