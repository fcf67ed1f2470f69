//! Handing Socket.IO WebSockets to a co-located chat service: the gateway peeks at a new
//! connection's first request head (without consuming it; bounded in bytes and time), and
//! when it is a Socket.IO WebSocket upgrade it admits it as it would be forwarded
//! (`Admit::Socket`: the per-address connect limit), then passes the socket itself to chat
//! ([`platform_core::handoff`]) with the client's address. Chat reads the same request, answers
//! 101 and owns the WebSocket: no gateway hop per frame, and the connection outlives the
//! gateway. Anything else, or a chat that is not listening on its hand-off socket, goes the
//! usual way (hyper, and the tunnel for upgrades).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body_util::BodyExt;
use platform_core::handoff::{self, Vouched};
use platform_core::server::Connection;
use platform_core::{ApiError, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The largest request head looked at; a bigger one is not a Socket.IO upgrade we hand off.
const HEAD_MAX: usize = 8 * 1024;
/// How long the whole head may take to arrive before the connection goes the usual way
/// (where hyper's own header timeout applies).
const PEEK_TIME: Duration = Duration::from_secs(5);
/// How often a head that came in pieces is looked at again (peeking does not wait for
/// more bytes than are already there).
const PEEK_AGAIN: Duration = Duration::from_millis(5);
const PREFIX: &[u8] = b"GET /socket.io/";
const MAX_HEADERS: usize = 64;

/// The gateway's side of the hand-off.
pub(crate) struct Takeover {
    /// The chat service's hand-off socket.
    path: PathBuf,
    /// Chat was not listening last time: said once, not per connection.
    down: AtomicBool,
    pub(crate) handed: Arc<AtomicU64>,
}

/// A Socket.IO WebSocket upgrade's head, as far as admission needs it.
pub(crate) struct Head {
    pub(crate) uri: http::Uri,
    pub(crate) headers: HeaderMap,
}

impl Takeover {
    pub(crate) fn new(dir: &std::path::Path, handed: Arc<AtomicU64>) -> Takeover {
        Takeover {
            path: dir.join(handoff::HANDOFF_SOCKET),
            down: AtomicBool::new(false),
            handed,
        }
    }

    /// Connects to chat's hand-off socket; `None` (logged once until it is back) when chat
    /// is not listening there.
    pub(crate) async fn connect(&self) -> Option<handoff::Sender> {
        match handoff::Sender::connect(&self.path).await {
            Ok(s) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(path = %self.path.display(), "chat's hand-off socket is back; WebSockets are handed over again");
                }
                Some(s)
            }
            Err(e) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(path = %self.path.display(), error = %e, "chat is not listening on its hand-off socket; WebSockets are tunnelled");
                }
                None
            }
        }
    }

    /// Passes `stream` on. `Err` gives it back: nothing was sent.
    pub(crate) async fn send(
        &self,
        sender: handoff::Sender,
        stream: TcpStream,
        vouched: Vouched,
    ) -> Result<(), TcpStream> {
        match sender.send(&stream, vouched).await {
            Ok(()) => {
                self.handed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "hand-off failed; tunnelling this WebSocket");
                Err(stream)
            }
        }
    }
}

/// The first request head on `stream` when it is a Socket.IO WebSocket upgrade; `None` as
/// soon as it cannot be one (most connections: decided on the first bytes).
pub(crate) async fn peek_upgrade(stream: &TcpStream) -> Option<Head> {
    let mut buf = vec![0u8; HEAD_MAX];
    let deadline = tokio::time::Instant::now() + PEEK_TIME;
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        let got = &buf[..n];
        let sure = n.min(PREFIX.len());
        if n == 0 || got[..sure] != PREFIX[..sure] {
            return None;
        }
        if got.windows(4).any(|w| w == b"\r\n\r\n") {
            return parse(got);
        }
        if n == HEAD_MAX {
            return None;
        }
        if tokio::time::Instant::now() + PEEK_AGAIN >= deadline {
            return None;
        }
        tokio::time::sleep(PEEK_AGAIN).await;
    }
}

/// A complete head, if it is a Socket.IO WebSocket upgrade (`GET /socket.io/…`,
/// `transport=websocket`, `Upgrade: websocket`, `Connection: upgrade`).
fn parse(raw: &[u8]) -> Option<Head> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    if !req.parse(raw).ok()?.is_complete() || req.method? != "GET" || req.version? != 1 {
        return None;
    }
    let uri: http::Uri = req.path?.parse().ok()?;
    if !uri.path().starts_with("/socket.io/")
        || !uri
            .query()
            .unwrap_or("")
            .split('&')
            .any(|kv| kv == "transport=websocket")
    {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        headers.append(
            HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(h.value).ok()?,
        );
    }
    let websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    if !websocket || !crate::proxy::is_upgrade(&headers) {
        return None;
    }
    Some(Head { uri, headers })
}

/// What the client is told when admission refuses it before any hand-off (a 429 over the
/// connect limit): the error as the gateway would answer it, then the connection closes.
pub(crate) async fn answer(mut stream: TcpStream, e: ApiError) {
    let res: Response = e.into_response();
    let (parts, body) = res.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return;
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (k, v) in &parts.headers {
        if k == header::CONTENT_LENGTH || k == header::CONNECTION {
            continue;
        }
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "connection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    let write = async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// The per-address cap chat applies to a connection it is handed: the gateway's, except
/// for a trusted proxy's connections, which the gateway does not cap either.
pub(crate) fn cap_for(conn: &Connection, config: &crate::Config) -> Option<usize> {
    if config.trusted_proxies.contains(conn.peer.ip()) {
        None
    } else {
        Some(config.max_connections_per_address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Option<Head> {
        parse(text.replace('\n', "\r\n").as_bytes())
    }

    #[test]
    fn only_socket_io_websocket_upgrades_are_taken() {
        let ok = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\nHost: x\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n";
        let h = head(ok).expect("an upgrade");
        assert_eq!(h.uri.path(), "/socket.io/");
        assert_eq!(h.headers.get("host").unwrap(), "x");
        for bad in [
            ok.replace("transport=websocket", "transport=polling"),
            ok.replace("Upgrade: websocket\n", ""),
            ok.replace("Connection: Upgrade", "Connection: keep-alive"),
            ok.replace("GET /socket.io/", "GET /conversations/"),
            ok.replace("GET ", "POST "),
            ok.replace("HTTP/1.1", "HTTP/1.0"),
            ok.replace("\n\n", "\n"),
        ] {
            assert!(head(&bad).is_none(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_head_in_pieces_is_peeked_whole_and_left_unread() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let raw = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
        let (first, rest) = raw.split_at(30);
        client.write_all(first.as_bytes()).await.unwrap();
        let peek = tokio::spawn(async move {
            let h = peek_upgrade(&server).await;
            let mut all = vec![0u8; raw.len()];
            server.read_exact(&mut all).await.unwrap();
            (h.is_some(), all)
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        client.write_all(rest.as_bytes()).await.unwrap();
        let (taken, all) = peek.await.unwrap();
        assert!(taken);
        assert_eq!(all, raw.as_bytes(), "the head is still there to be read");

        // Another request is turned away on its first bytes, without waiting for the rest.
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(b"POST /conv").await.unwrap();
        let quick = tokio::time::timeout(Duration::from_secs(1), peek_upgrade(&server)).await;
        assert!(matches!(quick, Ok(None)));
    }
}
