//! Thumbnails of uploaded images (PNG, JPEG, GIF, WebP; pure-Rust decoders of the `image`
//! crate, nothing native): at most 320x320 with the image's proportions, made in the
//! background after the upload is stored, one at a time per instance, stored under
//! `{key}.thumb` and recorded in `attachments.thumbnail_key` (then messages carry a
//! `thumbnailUrl`). Any failure leaves the attachment without one; nothing is retried.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use platform_core::pools::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::store::Store;

/// The longest side of a thumbnail.
pub(crate) const SIDE: u32 = 320;
/// Largest image decoded: its pixels take 4 bytes each while decoding (160 MB here), so at
/// most one at a time.
const MAX_PIXELS: u64 = 40_000_000;
/// Uploads waiting for a thumbnail; past this, new ones get none (a burst of images must not
/// queue work without bound).
const QUEUE: usize = 256;

/// An uploaded image to make a thumbnail of.
#[derive(Debug)]
pub(crate) struct Job {
    pub id: Uuid,
    pub key: String,
}

/// Whether an upload gets a thumbnail: one of the decoded formats, not larger than
/// `max_bytes` (`ATTACHMENT_THUMBNAIL_MAX_BYTES`, read whole) nor 40 megapixels (when its
/// dimensions were read; unknown ones are checked again while decoding).
pub(crate) fn wanted(
    content_type: &str,
    size: i64,
    max_bytes: u64,
    width: Option<i32>,
    height: Option<i32>,
) -> bool {
    let format = matches!(
        content_type.split(';').next().unwrap_or("").trim(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    );
    let pixels = match (width, height) {
        (Some(w), Some(h)) => (w.max(0) as u64) * (h.max(0) as u64),
        _ => 0,
    };
    format && u64::try_from(size).is_ok_and(|s| s <= max_bytes) && pixels <= MAX_PIXELS
}

/// Where a thumbnail of a sent attachment is announced (it changes the message's history
/// pages on every instance: [`crate::pages::HISTORY_CHANGED`]).
pub(crate) type Events = (platform_core::pools::RedisPool, platform_core::stream::Keys);

/// What the task needs, until it starts.
type Pending = (mpsc::Receiver<Job>, Arc<Store>, PgPool, Events);

/// The background maker: a bounded queue and one task, started with the first job (inside
/// the runtime, whereas the state is built before it).
pub(crate) struct Thumbnails {
    tx: mpsc::Sender<Job>,
    start: Mutex<Option<Pending>>,
    max_bytes: u64,
}

impl Thumbnails {
    pub(crate) fn new(store: Arc<Store>, pg: PgPool, max_bytes: u64, events: Events) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Thumbnails {
            tx,
            start: Mutex::new(Some((rx, store, pg, events))),
            max_bytes,
        }
    }

    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Queues `job`; a full queue drops it (that image gets no thumbnail).
    pub(crate) fn queue(&self, job: Job) {
        if let Some((rx, store, pg, events)) = platform_core::sync::lock(&self.start).take() {
            tokio::spawn(run(rx, store, pg, events, self.max_bytes));
        }
        if let Err(e) = self.tx.try_send(job) {
            tracing::warn!(error = %e, "thumbnail queue full; the image gets none");
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<Store>,
    pg: PgPool,
    (redis, keys): Events,
    max_bytes: u64,
) {
    while let Some(job) = rx.recv().await {
        match make(&store, &pg, &job, max_bytes).await {
            Ok(None) => {}
            // Already sent in a message: its pages now show the thumbnail.
            Ok(Some(conversation)) => {
                let env = crate::pages::changed(conversation);
                let window = platform_core::recovery::Window::OFF;
                if let Err(e) = platform_core::events::publish(&redis, &keys, window, &env).await {
                    tracing::warn!(id = %job.id, error = %e, "thumbnail change not published");
                }
            }
            // Storage and database errors were logged where they happened.
            Err(None) => {}
            Err(Some(reason)) => {
                tracing::warn!(id = %job.id, %reason, "no thumbnail for this image")
            }
        }
    }
}

/// `Err(Some(reason))` for an image that could not be made into a thumbnail, `Err(None)` for
/// a failure already logged; `Ok(Some(conversation))` when the attachment was already sent.
async fn make(
    store: &Store,
    pg: &PgPool,
    job: &Job,
    max_bytes: u64,
) -> Result<Option<Uuid>, Option<String>> {
    let Some(mut stream) = store.get(&job.key, None).await.map_err(|_| None)? else {
        return Ok(None); // removed meanwhile
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Some(format!("reading the image: {e}")))?;
        if (bytes.len() + chunk.len()) as u64 > max_bytes {
            return Err(Some("larger than ATTACHMENT_THUMBNAIL_MAX_BYTES".into()));
        }
        bytes.extend_from_slice(&chunk);
    }
    let thumb = tokio::task::spawn_blocking(move || render(&bytes))
        .await
        .map_err(|e| Some(format!("thumbnail task: {e}")))?
        .map_err(Some)?;
    let thumb_key = format!("{}.thumb", job.key);
    let body = futures_util::stream::iter([Ok(Bytes::from(thumb))]);
    store.put(&thumb_key, body).await.map_err(|_| None)?;
    let recorded = async {
        let client = pg.get().await?;
        client
            .query_opt(
                "UPDATE attachments SET thumbnail_key = $2 WHERE id = $1 AND deleted_at IS NULL
                 RETURNING conversation_id",
                &[&job.id, &thumb_key],
            )
            .await
            .map_err(platform_core::ApiError::from)
    }
    .await;
    match recorded {
        Ok(Some(row)) => Ok(row.get::<_, Option<Uuid>>(0)),
        // Deleted (or swept) while the thumbnail was made: it names nothing.
        Ok(None) => {
            let _ = store.delete(&thumb_key).await;
            Ok(None)
        }
        Err(_) => {
            let _ = store.delete(&thumb_key).await;
            Err(None)
        }
    }
}

/// Decodes `bytes` (format told by their content, within the pixel limit) and encodes its
/// thumbnail: PNG when the image has transparency, else JPEG (smaller for photos).
pub(crate) fn render(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP) => {}
        other => return Err(format!("not a thumbnail format: {other:?}")),
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| e.to_string())?;
    if u64::from(image.width()) * u64::from(image.height()) > MAX_PIXELS {
        return Err("more than 40 megapixels".into());
    }
    // `thumbnail` would enlarge a small image: that one is re-encoded as it is.
    let small = if image.width() <= SIDE && image.height() <= SIDE {
        image
    } else {
        image.thumbnail(SIDE, SIDE)
    };
    let mut out = Cursor::new(Vec::new());
    if small.color().has_alpha() {
        small
            .write_to(&mut out, ImageFormat::Png)
            .map_err(|e| e.to_string())?;
    } else {
        let rgb = DynamicImage::ImageRgb8(small.to_rgb8());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80);
        rgb.write_with_encoder(encoder).map_err(|e| e.to_string())?;
    }
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, alpha: bool) -> Vec<u8> {
        let image = if alpha {
            DynamicImage::ImageRgba8(image::RgbaImage::from_fn(w, h, |x, y| {
                image::Rgba([(x % 256) as u8, (y % 256) as u8, 7, 128])
            }))
        } else {
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
            }))
        };
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_large_image_shrinks_to_320_keeping_its_proportions() {
        let thumb = render(&png(1000, 500, false)).unwrap();
        let decoded = image::load_from_memory(&thumb).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 160));
        assert_eq!(
            image::guess_format(&thumb).unwrap(),
            ImageFormat::Jpeg,
            "opaque images become JPEG"
        );
        let thumb = render(&png(200, 900, true)).unwrap();
        assert_eq!(image::guess_format(&thumb).unwrap(), ImageFormat::Png);
        let decoded = image::load_from_memory(&thumb).unwrap();
        assert_eq!(decoded.height(), 320);
        assert!(decoded.width() == 71 || decoded.width() == 72);
    }

    #[test]
    fn small_images_stay_as_they_are_and_other_bytes_fail() {
        let thumb = render(&png(40, 30, false)).unwrap();
        let decoded = image::load_from_memory(&thumb).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (40, 30));
        assert!(render(b"<svg xmlns='http://www.w3.org/2000/svg'/>").is_err());
        let mut truncated = png(100, 100, false);
        truncated.truncate(truncated.len() / 2);
        assert!(render(&truncated).is_err());
    }

    #[test]
    fn only_decodable_formats_within_the_limits_are_wanted() {
        assert!(wanted("image/png", 10, 100, Some(10), Some(10)));
        assert!(wanted("image/jpeg; q=1", 10, 100, None, None));
        assert!(!wanted("image/svg+xml", 10, 100, Some(10), Some(10)));
        assert!(!wanted("image/png", 101, 100, Some(10), Some(10)));
        assert!(!wanted("image/png", 10, 100, Some(10_000), Some(10_000)));
    }
}
