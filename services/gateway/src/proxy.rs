//! Forwarding to an upstream over pooled keep-alive connections. Status, body and end-to-end
//! headers pass through unchanged; hop-by-hop headers do not. No answer in time is 504, no
//! connection is 502, an oversized body is 413 before anything is sent. WebSocket upgrades
//! are tunnelled byte for byte once the upstream agrees to switch protocols.
//!
//! API requests use [`Pool`]: the task serving a request drives the upstream connection
//! itself, from writing the request to reading the last byte of the answer, instead of
//! handing it to a connection task and waiting to be woken (hyper's pooled client). Two
//! task wake-ups per request fewer, and the answer leaves in one write. Socket.IO (upgrades,
//! long-polls that stream) keeps the pooled client.
//!
//! With `SOCKET_DIR` set, both reach the chat service over its Unix socket, and go back to
//! TCP (said once) while it is not listening there.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::client::conn::http1;
use hyper::upgrade::Upgraded;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use platform_core::failure::BoxError;
use platform_core::sync;
use platform_core::{body, ApiError, Body, Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UnixStream};
use tokio_util::either::Either;

pub(crate) type HttpClient = Client<Connector, Body>;

/// A connection to an upstream: TCP, or the chat service's Unix socket.
type Stream = Either<TcpStream, UnixStream>;

/// Where the chat service is also reached locally, and whether that failed last time.
pub(crate) struct UnixRoute {
    /// The chat service's `host:port`: requests for it go over `path`.
    authority: String,
    path: PathBuf,
    down: AtomicBool,
}

impl UnixRoute {
    pub(crate) fn new(base: &Uri, dir: &Path) -> Arc<UnixRoute> {
        Arc::new(UnixRoute {
            authority: authority_of(base),
            path: dir.join(platform_core::handoff::HTTP_SOCKET),
            down: AtomicBool::new(false),
        })
    }

    /// The Unix socket, or `None` (said once until it is back) when nobody listens there.
    async fn connect(&self) -> Option<UnixStream> {
        match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&self.path)).await {
            Ok(Ok(s)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(path = %self.path.display(), "chat's Unix socket is back");
                }
                Some(s)
            }
            Ok(Err(e)) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(path = %self.path.display(), error = %e, "chat is not listening on its Unix socket; using TCP");
                }
                None
            }
            Err(_) => None,
        }
    }
}

/// `host:port` of `base` (port 80 when it names none).
fn authority_of(base: &Uri) -> String {
    let authority = base
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    if authority.contains(':') {
        authority
    } else {
        format!("{authority}:80")
    }
}

/// hyper's client connector: the chat service's Unix socket for its authority when there
/// is one, else TCP.
#[derive(Clone)]
pub(crate) struct Connector {
    tcp: HttpConnector,
    unix: Option<Arc<UnixRoute>>,
}

/// A client connection as hyper's client holds it.
pub(crate) struct Io(TokioIo<Stream>);

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connection for Io {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Io;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Io, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let unix = self
            .unix
            .clone()
            .filter(|u| authority_of(&uri) == u.authority);
        let mut tcp = self.tcp.clone();
        Box::pin(async move {
            if let Some(u) = unix {
                if let Some(s) = u.connect().await {
                    return Ok(Io(TokioIo::new(Either::Right(s))));
                }
            }
            let s = tcp.call(uri).await?;
            Ok(Io(TokioIo::new(Either::Left(s.into_inner()))))
        })
    }
}

/// hyper's pooled client, for Socket.IO (upgrades, long-polls), uploads and readiness.
pub(crate) fn client(unix: Option<Arc<UnixRoute>>) -> HttpClient {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(Duration::from_secs(2)));
    tcp.set_keepalive(Some(Duration::from_secs(60)));
    let connector = Connector { tcp, unix };
    Client::builder(TokioExecutor::new())
        // Shorter than the services' 30 s keep-alive idle limit, so the gateway drops an idle
        // connection before the other side does and never sends on one being closed.
        .pool_idle_timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(1024)
        .build(connector)
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Shorter than the services' 30 s keep-alive idle limit, so the gateway drops an idle
/// connection before the other side does and never sends on one being closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_IDLE: usize = 1024;

/// One HTTP/1.1 connection to an upstream, driven by whoever holds it.
struct Upstream {
    sender: http1::SendRequest<Body>,
    conn: Pin<Box<http1::Connection<TokioIo<Stream>, Body>>>,
    /// The connection future finished: the connection is gone.
    ended: bool,
}

impl Upstream {
    /// Runs `f` while driving the connection, which is what reads and writes for it.
    async fn drive<F: Future>(&mut self, f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        loop {
            if self.ended {
                return f.await;
            }
            tokio::select! {
                biased;
                out = f.as_mut() => return out,
                r = self.conn.as_mut() => {
                    self.ended = true;
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "upstream connection ended");
                    }
                }
            }
        }
    }

    /// Whether the connection can take a request: the last answer was read to its end, and
    /// the upstream kept the connection open. Polling the connection first lets it turn idle
    /// (or notice the upstream closed it) before the sender is asked.
    async fn ready(&mut self) -> bool {
        if self.ended {
            return false;
        }
        tokio::select! {
            biased;
            r = self.conn.as_mut() => {
                self.ended = true;
                if let Err(e) = r {
                    tracing::debug!(error = %e, "idle upstream connection ended");
                }
                false
            }
            r = self.sender.ready() => r.is_ok(),
        }
    }
}

/// Idle keep-alive connections to one upstream; most recently used first.
pub(crate) struct Pool {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    host: HeaderValue,
    idle: Mutex<Vec<(Upstream, Instant)>>,
    /// The upstream's Unix socket, tried first for every new connection.
    unix: Option<Arc<UnixRoute>>,
}

impl Pool {
    pub(crate) fn new(base: &Uri, unix: Option<Arc<UnixRoute>>) -> Pool {
        let authority = authority_of(base);
        Pool {
            unix,
            host: HeaderValue::from_str(base.authority().map_or("", |a| a.as_str()))
                .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
            authority,
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn take(&self) -> Option<Upstream> {
        loop {
            let (mut up, since) = sync::lock(&self.idle).pop()?;
            if since.elapsed() < IDLE_TIMEOUT && up.ready().await {
                return Some(up);
            }
        }
    }

    /// Keeps `up` for the next request, and closes connections idle too long. Returned in
    /// time order, so the expired ones are at the front; without this, connections opened
    /// for a burst would sit below the busy ones for good.
    fn give_back(&self, up: Upstream) {
        let expired: Vec<(Upstream, Instant)> = {
            let mut idle = sync::lock(&self.idle);
            let stale = idle.partition_point(|(_, since)| since.elapsed() >= IDLE_TIMEOUT);
            let expired = idle.drain(..stale).collect();
            if idle.len() < MAX_IDLE {
                idle.push((up, Instant::now()));
            }
            expired
        };
        drop(expired);
    }

    async fn connect(&self) -> std::io::Result<Upstream> {
        if let Some(u) = &self.unix {
            if let Some(s) = u.connect().await {
                return Self::handshake(Either::Right(s)).await;
            }
        }
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect(&self.authority),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Self::handshake(Either::Left(stream)).await
    }

    async fn handshake(stream: Stream) -> std::io::Result<Upstream> {
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        Ok(Upstream {
            sender,
            conn: Box::pin(conn),
            ended: false,
        })
    }

    /// Sends `req` and reads the whole answer. A kept-alive connection the upstream closed
    /// meanwhile is noticed before the request is written, and the request goes on a new one.
    async fn exchange(&self, mut req: hyper::Request<Body>) -> Result<Response, BoxError> {
        req.headers_mut().insert(header::HOST, self.host.clone());
        loop {
            let (mut up, reused) = match self.take().await {
                Some(up) => (up, true),
                None => (self.connect().await?, false),
            };
            let sent = up.sender.try_send_request(req);
            let res = match up.drive(sent).await {
                Ok(res) => res,
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => {
                        req = unsent;
                        continue;
                    }
                    _ => return Err(e.into_error().into()),
                },
            };
            let (parts, incoming) = res.into_parts();
            let body = up.drive(incoming.collect()).await?.to_bytes();
            if !up.ended {
                self.give_back(up);
            }
            return Ok(hyper::Response::from_parts(parts, Body::from(body)));
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named.iter().chain(HOP_BY_HOP.iter()) {
        h.remove(n);
    }
}

pub(crate) fn is_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE).is_some()
        && h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

fn target(base: &Uri, req: &Request) -> Result<Uri, ApiError> {
    target_of(base, req.uri())
}

fn target_of(base: &Uri, uri: &Uri) -> Result<Uri, ApiError> {
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(
        pq.parse()
            .map_err(|_| ApiError::bad_request("malformed request target"))?,
    );
    Uri::from_parts(parts).map_err(|_| ApiError::bad_request("malformed request target"))
}

pub(crate) struct Forward<'a> {
    /// Socket.IO: upgrades and long-polls.
    pub client: &'a HttpClient,
    /// API requests; `None` sends them with `client` too.
    pub pool: Option<&'a Pool>,
    pub base: &'a Uri,
    pub timeout: Duration,
    pub body_limit: usize,
}

impl Forward<'_> {
    /// Forwards `req`: tunnels an upgrade, else reads its body and relays it.
    pub(crate) async fn send(&self, req: Request) -> Result<Response, ApiError> {
        if is_upgrade(req.headers()) {
            let uri = target(self.base, &req)?;
            return self.tunnel(req, uri).await;
        }
        let (parts, incoming) = req.into_parts();
        let bytes = body::read_limited(&parts.headers, incoming, self.body_limit).await?;
        self.relay(parts, bytes).await
    }

    /// Forwards a request whose body was read already.
    pub(crate) async fn relay(
        &self,
        mut parts: http::request::Parts,
        bytes: Vec<u8>,
    ) -> Result<Response, ApiError> {
        let uri = target_of(self.base, &parts.uri)?;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        if !bytes.is_empty() || parts.headers.contains_key(header::CONTENT_LENGTH) {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
        parts.version = http::Version::HTTP_11;
        let (mut parts, body) = match self.pool {
            Some(pool) => {
                parts.uri = uri
                    .path_and_query()
                    .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
                let out = hyper::Request::from_parts(parts, Body::from(bytes));
                match tokio::time::timeout(self.timeout, pool.exchange(out)).await {
                    Err(_) => return Err(self.timed_out()),
                    Ok(Err(e)) => return Err(self.unreachable(e)),
                    Ok(Ok(res)) => res.into_parts(),
                }
            }
            None => {
                parts.uri = uri;
                let out = hyper::Request::from_parts(parts, Body::from(bytes));
                let (parts, incoming) = self.exchange(out).await?.into_parts();
                (parts, Body::Stream(incoming))
            }
        };
        strip_hop_by_hop(&mut parts.headers);
        Ok(hyper::Response::from_parts(parts, body))
    }

    /// Forwards a request whose body is streamed (an upload, or nothing) and passes the
    /// answer on as it arrives (a download): neither is held whole. A failure of the body
    /// itself (413, 408, the client gone) is answered as such, not as an unreachable upstream.
    pub(crate) async fn stream(
        &self,
        mut parts: http::request::Parts,
        body: Body,
    ) -> Result<Response, ApiError> {
        parts.uri = target_of(self.base, &parts.uri)?;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        // Answered by our own server when it first reads the body (curl asks for uploads
        // over 1 MiB); hyper's client would not wait for a 100 from upstream anyway.
        parts.headers.remove(header::EXPECT);
        parts.version = http::Version::HTTP_11;
        let out = hyper::Request::from_parts(parts, body);
        let res = match tokio::time::timeout(self.timeout, self.client.request(out)).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(e)) => {
                return Err(body::limit_error(&e).unwrap_or_else(|| self.unreachable(e)));
            }
            Ok(Ok(res)) => res,
        };
        let (mut parts, incoming) = res.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(hyper::Response::from_parts(parts, Body::Stream(incoming)))
    }

    fn timed_out(&self) -> ApiError {
        tracing::warn!(upstream = %self.base, "upstream timed out");
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "the upstream service did not answer in time",
        )
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> ApiError {
        tracing::warn!(upstream = %self.base, error = %e, "upstream unreachable");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the upstream service is unreachable",
        )
    }

    async fn exchange(
        &self,
        req: hyper::Request<Body>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ApiError> {
        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Err(_) => Err(self.timed_out()),
            Ok(Err(e)) => Err(self.unreachable(e)),
            Ok(Ok(res)) => Ok(res),
        }
    }

    /// Passes the upgrade request on; if the upstream switches protocols, joins the two
    /// upgraded connections.
    async fn tunnel(&self, mut req: Request, uri: Uri) -> Result<Response, ApiError> {
        let permit = req
            .extensions()
            .get::<platform_core::server::Connection>()
            .map(|c| c.permit.clone());
        let downstream = hyper::upgrade::on(&mut req);
        let (mut parts, _) = req.into_parts();
        parts.headers.remove(header::HOST);
        parts.uri = uri;
        let out = hyper::Request::from_parts(parts, Body::Empty);
        let mut res = self.exchange(out).await?;
        if res.status() != StatusCode::SWITCHING_PROTOCOLS {
            let (parts, incoming) = res.into_parts();
            return Ok(hyper::Response::from_parts(parts, Body::Stream(incoming)));
        }
        let upstream = hyper::upgrade::on(&mut res);
        tokio::spawn(async move {
            // The tunnel still counts against the gateway's connection cap.
            let _permit = permit;
            match tokio::try_join!(downstream, upstream) {
                Ok((down, up)) => {
                    if let Err(e) = join(down, up).await {
                        tracing::debug!(error = %e, "websocket tunnel closed");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        let (parts, _) = res.into_parts();
        Ok(hyper::Response::from_parts(parts, Body::Empty))
    }
}

/// One side of a tunnel: its socket when hyper's upgrade wraps one (it does on both sides:
/// our server and our [`Connector`]), else hyper's upgraded I/O as it is.
type TunnelIo = Either<Stream, TokioIo<Upgraded>>;

/// Unwraps an upgraded connection to its socket, with the bytes hyper had already read past
/// the handshake (they belong to the other side).
fn unwrap_upgraded(io: Upgraded) -> (TunnelIo, Bytes) {
    let io = match io.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            return (
                Either::Left(Either::Left(parts.io.into_inner())),
                parts.read_buf,
            )
        }
        Err(io) => io,
    };
    match io.downcast::<Io>() {
        Ok(parts) => (Either::Left(parts.io.0.into_inner()), parts.read_buf),
        Err(io) => (Either::Right(TokioIo::new(io)), Bytes::new()),
    }
}

/// Copies both ways until either side closes. Straight between the two sockets: through hyper's
/// boxed, rewindable upgraded I/O every read and write took two more dynamic calls and a
/// buffer check for nothing.
async fn join(down: Upgraded, up: Upgraded) -> std::io::Result<(u64, u64)> {
    let (mut down, down_early) = unwrap_upgraded(down);
    let (mut up, up_early) = unwrap_upgraded(up);
    up.write_all(&down_early).await?;
    down.write_all(&up_early).await?;
    tokio::io::copy_bidirectional_with_sizes(&mut down, &mut up, TUNNEL_BUF, TUNNEL_BUF).await
}

/// Each direction's copy buffer. Allocated for the tunnel's whole life, so it is idle memory
/// per open WebSocket; Socket.IO traffic reads far less than this at a time.
const TUNNEL_BUF: usize = 8 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }

    use std::time::Duration;

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
    use tokio::net::TcpListener;

    /// An upgrade request with `early` right behind it, as a client may send its first frame.
    fn upgrade_request(early: &str) -> Vec<u8> {
        format!("GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: test\r\n\r\n{early}")
            .into_bytes()
    }

    /// Serves one HTTP/1 upgrade on `io` (hyper's server, as the gateway runs it) and hands
    /// back the upgraded connection.
    async fn upgraded<I>(io: I) -> Upgraded
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            if let Some(tx) = tx.lock().expect("sender").take() {
                let _ = tx.send(hyper::upgrade::on(&mut req));
            }
            async {
                let mut res = hyper::Response::new(http_body_util::Empty::<Bytes>::new());
                *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                res.headers_mut()
                    .insert(header::UPGRADE, HeaderValue::from_static("test"));
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                Ok::<_, std::convert::Infallible>(res)
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        tokio::spawn(conn);
        rx.await.expect("a request").await.expect("upgraded")
    }

    /// Reads until `want` has arrived (after whatever came first, e.g. the 101 response).
    async fn read_until(io: &mut (impl AsyncRead + Unpin), want: &str) -> String {
        let mut got = Vec::new();
        let read = async {
            while !String::from_utf8_lossy(&got).contains(want) {
                let mut buf = [0u8; 256];
                let n = io.read(&mut buf).await.expect("read");
                assert!(
                    n > 0,
                    "closed before {want:?} came: {:?}",
                    String::from_utf8_lossy(&got)
                );
                got.extend_from_slice(&buf[..n]);
            }
        };
        // Only a guard against hanging on a broken tunnel, not a speed check.
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .unwrap_or_else(|_| panic!("{want:?} never came"));
        String::from_utf8_lossy(&got).into_owned()
    }

    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    #[tokio::test]
    async fn a_tcp_upgrade_is_unwrapped_to_its_socket_with_the_bytes_read_early() {
        let (mut client, server) = tcp_pair().await;
        client
            .write_all(&upgrade_request("first frame"))
            .await
            .expect("write");
        let (io, early) = unwrap_upgraded(upgraded(server).await);
        assert!(matches!(io, Either::Left(_)), "not unwrapped to the socket");
        assert_eq!(&early[..], b"first frame");

        // Anything else (here an in-memory pipe) stays hyper's upgraded I/O, early bytes and all.
        let (mut client, server) = tokio::io::duplex(1024);
        client
            .write_all(&upgrade_request("first frame"))
            .await
            .expect("write");
        let (mut io, early) = unwrap_upgraded(upgraded(server).await);
        assert!(matches!(io, Either::Right(_)));
        assert!(early.is_empty());
        read_until(&mut io, "first frame").await;
    }

    #[tokio::test]
    async fn a_tunnel_passes_early_bytes_then_copies_both_ways_until_closed() {
        // The client's side over TCP; the upstream's over a pipe, so both paths of
        // `unwrap_upgraded` run.
        let (mut client, server) = tcp_pair().await;
        client
            .write_all(&upgrade_request("early from the client"))
            .await
            .expect("write");
        let down = upgraded(server).await;
        let (mut upstream, pipe) = tokio::io::duplex(1024);
        upstream
            .write_all(&upgrade_request("early from upstream"))
            .await
            .expect("write");
        let up = upgraded(pipe).await;
        let tunnel = tokio::spawn(join(down, up));

        let got = read_until(&mut client, "early from upstream").await;
        assert!(got.starts_with("HTTP/1.1 101"), "{got}");
        read_until(&mut upstream, "early from the client").await;
        client.write_all(b"ping").await.expect("write");
        read_until(&mut upstream, "ping").await;
        upstream.write_all(b"pong").await.expect("write");
        read_until(&mut client, "pong").await;

        client.shutdown().await.expect("shutdown");
        let mut rest = Vec::new();
        upstream.read_to_end(&mut rest).await.expect("read");
        assert!(rest.is_empty(), "{rest:?}");
        drop(upstream);
        let (to_up, to_down) = tunnel.await.expect("joined").expect("copied");
        // The socket's early bytes were written before the copy; the pipe's came through
        // hyper's I/O, so the copy counted them.
        assert_eq!(to_up, "ping".len() as u64);
        assert_eq!(to_down, ("early from upstream".len() + "pong".len()) as u64);
    }

    #[test]
    fn upgrades_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!is_upgrade(&h));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(is_upgrade(&h));
    }

    /// A raw HTTP/1.1 upstream: answers each request with `200 ok` (keep-alive), then
    /// closes the connection if `close_after` is set. Counts the connections it accepted.
    async fn upstream(close_after: bool) -> (Uri, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 1024];
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            continue;
                        }
                        buf.clear();
                        let res = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if sock.write_all(res).await.is_err() || close_after {
                            return;
                        }
                    }
                });
            }
        });
        (uri, accepted)
    }

    fn get() -> hyper::Request<Body> {
        hyper::Request::get("/x").body(Body::Empty).unwrap()
    }

    #[tokio::test]
    async fn pooled_connections_are_reused() {
        let (uri, accepted) = upstream(false).await;
        let pool = Pool::new(&uri, None);
        for _ in 0..3 {
            let res = pool.exchange(get()).await.unwrap();
            assert_eq!(res.status(), 200);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"ok");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_replaced_before_sending() {
        let (uri, accepted) = upstream(true).await;
        let pool = Pool::new(&uri, None);
        for _ in 0..3 {
            let res = pool.exchange(get()).await.unwrap();
            assert_eq!(res.status(), 200);
            // Let the close arrive while the connection sits idle in the pool.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_upstream_that_is_not_listening_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        drop(listener);
        assert!(Pool::new(&uri, None).exchange(get()).await.is_err());
    }

    /// The same raw upstream on a Unix socket in a fresh directory.
    async fn unix_upstream() -> (std::path::PathBuf, tokio::net::UnixListener) {
        let dir = std::env::temp_dir().join(format!(
            "pool-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let l = platform_core::handoff::bind(&dir, platform_core::handoff::HTTP_SOCKET)
            .await
            .unwrap();
        (dir, l)
    }

    #[tokio::test]
    async fn requests_go_over_the_unix_socket_and_back_to_tcp_when_nobody_listens_there() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (tcp_uri, tcp_accepted) = upstream(false).await;
        let (dir, listener) = unix_upstream().await;
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = served.clone();
        let server = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut buf).await.unwrap();
                    assert!(n > 0);
                    got.extend_from_slice(&buf[..n]);
                }
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let res = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 4\r\n\r\nunix";
                sock.write_all(res).await.unwrap();
            }
        });
        let route = UnixRoute::new(&tcp_uri, &dir);
        let pool = Pool::new(&tcp_uri, Some(route.clone()));
        let res = pool.exchange(get()).await.unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"unix");
        // hyper's client (long-polls, readiness) goes the same way for the same upstream.
        let client = client(Some(route));
        let res = client
            .request(
                hyper::Request::get(format!("{tcp_uri}x"))
                    .body(Body::Empty)
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(tcp_accepted.load(std::sync::atomic::Ordering::SeqCst), 0);

        // Nobody on the socket any more: TCP.
        server.abort();
        let _ = server.await;
        std::fs::remove_dir_all(&dir).unwrap();
        let res = pool.exchange(get()).await.unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        assert_eq!(tcp_accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
