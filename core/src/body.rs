//! The response body shared by every service, and bounded reading of request bodies: at
//! most so many bytes (413), arriving in time (408). Headers have their own timeout in the
//! accept loop; without one for bodies, a client announcing a length and sending one byte
//! would hold its connection (and whatever it had taken) for good.

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::error::ApiError;

/// A response body: nothing, one buffer, or a stream passed through from upstream.
///
/// An enum rather than a boxed trait object so that building a response costs no allocation.
#[derive(Debug, Default)]
pub enum Body {
    #[default]
    Empty,
    Full(Option<Bytes>),
    Stream(Incoming),
}

impl Body {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(Some(bytes.into()))
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::Full(Some(b))
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body::Full(Some(Bytes::from(b)))
    }
}

impl From<Incoming> for Body {
    fn from(b: Incoming) -> Self {
        Body::Stream(b)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Stream(s) => s.size_hint(),
        }
    }
}

/// How long a request body may take: `grace` plus its length at `min_rate` bytes a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub grace: Duration,
    pub min_rate: u64,
}

impl Deadline {
    /// `BODY_TIMEOUT_MS` (default 10 s) and `BODY_MIN_BYTES_PER_SEC` (default 8 KiB/s).
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        Ok(Deadline {
            grace: env.millis("BODY_TIMEOUT_MS", 10_000, 100, 600_000)?,
            min_rate: env.number("BODY_MIN_BYTES_PER_SEC", 8 * 1024, 1, 1 << 30)?,
        })
    }

    /// The time allowed for a body of `len` bytes.
    fn allowed(&self, len: u64) -> Duration {
        self.grace + Duration::from_millis(len.saturating_mul(1000) / self.min_rate)
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline {
            grace: Duration::from_secs(10),
            min_rate: 8 * 1024,
        }
    }
}

/// The process's body deadline, set once at launch (see [`configure`]).
static DEADLINE: OnceLock<Deadline> = OnceLock::new();

/// Sets the deadline every body read in this process keeps; the first call wins.
pub fn configure(deadline: Deadline) {
    let _ = DEADLINE.set(deadline);
}

fn deadline() -> Deadline {
    DEADLINE.get().copied().unwrap_or_default()
}

/// Reads a whole request body into one buffer, refusing more than `limit` bytes with 413 and
/// a body slower than the process's [`Deadline`] with 408.
///
/// A declared `Content-Length` over the limit is refused before anything is read. The time
/// allowed grows with the declared length, or with what has arrived of a chunked body. The
/// buffer is a `Vec` because simd-json parses in place.
pub async fn read_limited(
    headers: &http::HeaderMap,
    mut body: Incoming,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared {
        if n > limit as u64 {
            return Err(too_large(limit));
        }
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let rule = deadline();
    let start = tokio::time::Instant::now();
    loop {
        let expected = declared.unwrap_or(0).max(buf.len() as u64);
        let frame =
            match tokio::time::timeout_at(start + rule.allowed(expected), body.frame()).await {
                Err(_) => return Err(too_slow()),
                Ok(None) => break,
                Ok(Some(frame)) => frame,
            };
        let frame = frame.map_err(|_| ApiError::bad_request("request body could not be read"))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

fn too_slow() -> ApiError {
    ApiError::new(
        http::StatusCode::REQUEST_TIMEOUT,
        "the request body did not arrive in time",
    )
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        http::StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {limit} bytes"),
    )
}
