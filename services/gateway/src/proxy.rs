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

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use platform_core::{body, ApiError, Body, Request, Response};

pub type HttpClient = Client<HttpConnector, Body>;

/// hyper's pooled client, for Socket.IO (upgrades, long-polls) and readiness checks.
pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.set_keepalive(Some(Duration::from_secs(60)));
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
    conn: Pin<Box<http1::Connection<TokioIo<tokio::net::TcpStream>, Body>>>,
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
pub struct Pool {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    host: HeaderValue,
    idle: Mutex<Vec<(Upstream, Instant)>>,
}

impl Pool {
    pub fn new(base: &Uri) -> Pool {
        let authority = base
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let authority = if authority.contains(':') {
            authority
        } else {
            format!("{authority}:80")
        };
        Pool {
            host: HeaderValue::from_str(base.authority().map_or("", |a| a.as_str()))
                .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
            authority,
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn take(&self) -> Option<Upstream> {
        loop {
            let (mut up, since) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
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
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
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
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect(&self.authority),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
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
    async fn exchange(&self, mut req: hyper::Request<Body>) -> Result<Response, String> {
        req.headers_mut().insert(header::HOST, self.host.clone());
        loop {
            let (mut up, reused) = match self.take().await {
                Some(up) => (up, true),
                None => (self.connect().await.map_err(|e| e.to_string())?, false),
            };
            let sent = up.sender.try_send_request(req);
            let res = match up.drive(sent).await {
                Ok(res) => res,
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => {
                        req = unsent;
                        continue;
                    }
                    _ => return Err(e.into_error().to_string()),
                },
            };
            let (parts, incoming) = res.into_parts();
            let body = up
                .drive(incoming.collect())
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
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

fn is_upgrade(h: &HeaderMap) -> bool {
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
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(
        pq.parse()
            .map_err(|_| ApiError::bad_request("malformed request target"))?,
    );
    Uri::from_parts(parts).map_err(|_| ApiError::bad_request("malformed request target"))
}

pub struct Forward<'a> {
    /// Socket.IO: upgrades and long-polls.
    pub client: &'a HttpClient,
    /// API requests; `None` sends them with `client` too.
    pub pool: Option<&'a Pool>,
    pub base: &'a Uri,
    pub timeout: Duration,
    pub body_limit: usize,
}

impl Forward<'_> {
    pub async fn send(&self, req: Request) -> Result<Response, ApiError> {
        let uri = target(self.base, &req)?;
        if is_upgrade(req.headers()) {
            return self.tunnel(req, uri).await;
        }
        let client_addr = req
            .extensions()
            .get::<platform_core::server::Connection>()
            .map(|c| c.peer);
        let (mut parts, incoming) = req.into_parts();
        let bytes = body::read_limited(&parts.headers, incoming, self.body_limit).await?;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        if let Some(addr) = client_addr {
            if let Ok(v) = HeaderValue::from_str(&addr.ip().to_string()) {
                parts
                    .headers
                    .append(HeaderName::from_static("x-forwarded-for"), v);
            }
        }
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
                    let mut down = TokioIo::new(down);
                    let mut up = TokioIo::new(up);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
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
        let pool = Pool::new(&uri);
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
        let pool = Pool::new(&uri);
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
        assert!(Pool::new(&uri).exchange(get()).await.is_err());
    }
}
