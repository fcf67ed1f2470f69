//! The response body shared by every service, and bounded reading of request bodies: at
//! most so many bytes (413), arriving in time (408). Headers have their own timeout in the
//! accept loop; without one for bodies, a client announcing a length and sending one byte
//! would hold its connection (and whatever it had taken) for good. Bodies too large to hold
//! (uploads) are read as a [`Limited`] stream under the same rules.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::error::ApiError;
use crate::failure::BoxError;

/// A stream of bytes from somewhere other than a connection (storage, for downloads).
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A response body: nothing, one buffer, a stream passed through from upstream, a bounded
/// request body being forwarded, or a boxed byte stream (downloads).
///
/// An enum rather than a boxed trait object so that building a response costs no allocation;
/// only the `Bytes` variant boxes, and only streams from storage use it.
#[derive(Default)]
pub enum Body {
    #[default]
    Empty,
    Full(Option<Bytes>),
    Stream(Incoming),
    Limited(Limited),
    Bytes(ByteStream),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Full(b) => f.debug_tuple("Body::Full").field(b).finish(),
            Body::Stream(s) => f.debug_tuple("Body::Stream").field(s).finish(),
            Body::Limited(l) => f.debug_tuple("Body::Limited").field(l).finish(),
            Body::Bytes(_) => f.write_str("Body::Bytes(..)"),
        }
    }
}

impl Body {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(Some(bytes.into()))
    }

    /// A body streamed from `stream`; an error mid-way aborts the response (the client sees
    /// a short body against the announced length, never a silently truncated file).
    pub fn stream(stream: impl Stream<Item = io::Result<Bytes>> + Send + 'static) -> Self {
        Body::Bytes(Box::pin(stream))
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

impl From<Limited> for Body {
    fn from(b: Limited) -> Self {
        Body::Limited(b)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    /// Boxed, since the variants fail differently (hyper, the limit, storage); both hyper's
    /// server and client accept it.
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(s) => Pin::new(s).poll_frame(cx).map_err(Into::into),
            Body::Limited(l) => Pin::new(l)
                .poll_next(cx)
                .map(|o| o.map(|r| r.map(Frame::data).map_err(Into::into))),
            Body::Bytes(s) => s
                .as_mut()
                .poll_next(cx)
                .map(|o| o.map(|r| r.map(Frame::data).map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Stream(s) => s.is_end_stream(),
            Body::Limited(l) => l.done,
            Body::Bytes(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Stream(s) => s.size_hint(),
            Body::Limited(l) => l.body.size_hint(),
            Body::Bytes(s) => {
                let (low, high) = s.size_hint();
                let mut h = SizeHint::new();
                h.set_lower(low as u64);
                if let Some(high) = high {
                    h.set_upper(high as u64);
                }
                h
            }
        }
    }
}

/// The ApiError behind a failed forward, if the failure was a [`Limited`] body's own (413,
/// 408, the client gone): the gateway answers that rather than 502.
pub fn limit_error(e: &(dyn std::error::Error + 'static)) -> Option<ApiError> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(api) = e.downcast_ref::<ApiError>() {
            return Some(api.clone());
        }
        cur = e.source();
    }
    None
}

/// A request body read as a stream of chunks, at most `limit` bytes (413) and no slower than
/// the process's [`Deadline`] (408): what [`read_limited`] enforces, without holding the body.
///
/// A `Stream` of `Result<Bytes, ApiError>` for a handler writing it somewhere, and a
/// [`Body`] (through `Body::Limited`) for the gateway forwarding it. After the first error it
/// ends.
pub struct Limited {
    body: Incoming,
    limit: u64,
    declared: Option<u64>,
    seen: u64,
    rule: Deadline,
    start: tokio::time::Instant,
    /// Boxed because `Sleep` is `!Unpin`; one allocation per upload.
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The deadline `timer` is set to, in bytes expected (reset only when this grows).
    timer_for: u64,
    done: bool,
}

impl fmt::Debug for Limited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limited")
            .field("limit", &self.limit)
            .field("declared", &self.declared)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl Limited {
    /// Refuses a declared `Content-Length` over `limit` with 413 before anything is read.
    pub fn new(headers: &http::HeaderMap, body: Incoming, limit: u64) -> Result<Self, ApiError> {
        Self::with_deadline(headers, body, limit, deadline())
    }

    fn with_deadline(
        headers: &http::HeaderMap,
        body: Incoming,
        limit: u64,
        rule: Deadline,
    ) -> Result<Self, ApiError> {
        let declared = declared_length(headers);
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let start = tokio::time::Instant::now();
        let expected = declared.unwrap_or(0);
        Ok(Limited {
            body,
            limit,
            declared,
            seen: 0,
            rule,
            start,
            timer: Box::pin(tokio::time::sleep_until(start + rule.allowed(expected))),
            timer_for: expected,
            done: false,
        })
    }

    /// The `Content-Length` the client announced, if any.
    pub fn declared(&self) -> Option<u64> {
        self.declared
    }

    /// Bytes received so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    fn fail(&mut self, e: ApiError) -> Poll<Option<Result<Bytes, ApiError>>> {
        self.done = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for Limited {
    type Item = Result<Bytes, ApiError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            // A chunked body earns more time as it arrives, like `read_limited`.
            let expected = this.declared.unwrap_or(0).max(this.seen);
            if expected > this.timer_for {
                this.timer_for = expected;
                let at = this.start + this.rule.allowed(expected);
                this.timer.as_mut().reset(at);
            }
            let frame = match http_body::Body::poll_frame(Pin::new(&mut this.body), cx) {
                Poll::Pending => {
                    ready!(this.timer.as_mut().poll(cx));
                    return this.fail(too_slow());
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if this.declared.is_some_and(|n| n != this.seen) {
                        return this.fail(ApiError::bad_request("request body ended early"));
                    }
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(_))) => {
                    return this.fail(ApiError::bad_request("request body could not be read"));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            // Trailers carry nothing we keep.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            this.seen += data.len() as u64;
            if this.seen > this.limit {
                return this.fail(too_large(this.limit));
            }
            if !data.is_empty() {
                return Poll::Ready(Some(Ok(data)));
            }
        }
    }
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// How long a request body may take: `grace` plus its length at `min_rate` bytes a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub grace: Duration,
    pub min_rate: u64,
}

impl Deadline {
    /// `BODY_TIMEOUT_MS` and `BODY_MIN_BYTES_PER_SEC`.
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        Ok(Deadline {
            grace: env.millis("BODY_TIMEOUT_MS", 100, 600_000)?,
            min_rate: env.number("BODY_MIN_BYTES_PER_SEC", 1, 1 << 30)?,
        })
    }

    /// The process's deadline (see [`configure`]).
    pub fn current() -> Self {
        deadline()
    }

    /// The time allowed for a body of `len` bytes.
    pub fn allowed(&self, len: u64) -> Duration {
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
    let declared = declared_length(headers);
    if let Some(n) = declared {
        if n > limit as u64 {
            return Err(too_large(limit as u64));
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
                return Err(too_large(limit as u64));
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

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        http::StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {limit} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one connection whose handler drains a [`Limited`] body of at most 10 bytes
    /// (grace 300 ms) and answers "status bytes-seen"; returns the answer's body to the raw
    /// request sent as `pieces` with `pause` between them.
    async fn exchange(pieces: &[&[u8]], pause: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let svc = hyper::service::service_fn(|req: hyper::Request<Incoming>| async move {
                let rule = Deadline {
                    grace: Duration::from_millis(300),
                    min_rate: 1 << 20,
                };
                let (parts, body) = req.into_parts();
                let answer = match Limited::with_deadline(&parts.headers, body, 10, rule) {
                    Err(e) => format!("{} early", e.status.as_u16()),
                    Ok(mut l) => {
                        let mut n = 0;
                        let mut status = 200;
                        while let Some(r) = l.next().await {
                            match r {
                                Ok(b) => n += b.len(),
                                Err(e) => {
                                    status = e.status.as_u16();
                                    break;
                                }
                            }
                        }
                        format!("{status} {n}")
                    }
                };
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Body::from(
                    answer.into_bytes(),
                )))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        for p in pieces {
            c.write_all(p).await.unwrap();
            tokio::time::sleep(pause).await;
        }
        // Every request says `connection: close`, so the answer ends at EOF.
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        text.rsplit("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test]
    async fn a_body_within_the_limit_streams_through() {
        let got = exchange(
            &[
                b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
                b"5\r\nworld\r\n0\r\n\r\n",
            ],
            Duration::from_millis(20),
        )
        .await;
        assert_eq!(got, "200 10");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let got = exchange(
            &[b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 11\r\n\r\n"],
            Duration::ZERO,
        )
        .await;
        assert_eq!(got, "413 early");
    }

    #[tokio::test]
    async fn a_chunked_body_over_the_limit_fails_when_it_passes_it() {
        let got = exchange(
            &[b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n"],
            Duration::ZERO,
        )
        .await;
        assert_eq!(got, "413 6");
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let got = exchange(
            &[b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 10\r\n\r\nabc"],
            Duration::ZERO,
        )
        .await;
        assert_eq!(got, "408 3");
    }

    #[test]
    fn a_limit_error_is_found_behind_other_errors() {
        let e: BoxError = Box::new(too_large(5));
        assert_eq!(
            limit_error(e.as_ref()).map(|e| e.status),
            Some(http::StatusCode::PAYLOAD_TOO_LARGE)
        );
        let io = io::Error::other("nope");
        assert!(limit_error(&io).is_none());
    }
}
