//! Test helpers: a server on port 0, a raw HTTP/1.1 client and a WebSocket client, so the
//! tests see the bytes on the wire exactly as a Socket.IO client would.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

mod echo;

use std::net::SocketAddr;
use std::time::Duration;

use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
use platform_core::server::{serve, Handler, ServeOptions};
use platform_core::socketio::{
    Ack, Builder, NamespaceHandler, Payload as SioPayload, Socket, SocketIo,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Serves `handler` on a free port until the token is dropped... or the test ends.
pub(crate) async fn start<H: Handler>(handler: H) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let opts = ServeOptions {
        shutdown_grace: Duration::from_millis(100),
        ..ServeOptions::default()
    };
    tokio::spawn(serve(listener, handler, opts, token.clone()));
    (addr, token)
}

/// The conformance behaviour: `auth` on connect, `message` echoed, `message-with-ack` acked.
pub(crate) struct Echo;

impl NamespaceHandler for Echo {
    async fn on_connect(&self, socket: Socket, auth: Value) -> Result<(), Value> {
        if auth.get("reject").is_some() {
            return Err(Value::String("rejected".into()));
        }
        let _ = socket.emit("auth", &auth);
        Ok(())
    }

    async fn on_event(
        &self,
        socket: Socket,
        event: String,
        payload: SioPayload,
        mut ack: Option<Ack>,
    ) {
        if echo::echo(&socket, &event, &payload, &mut ack) {
            return;
        }
        if event == "join" {
            socket.join(payload.args[0].as_str().unwrap_or(""));
        }
    }
}

pub(crate) fn fast() -> Builder {
    SocketIo::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(1000))
}

pub(crate) async fn io_server(b: Builder) -> (SocketIo, SocketAddr, CancellationToken) {
    let io = b.build();
    io.namespace("/", Echo);
    io.namespace("/custom", Echo);
    let (addr, token) = start(io.clone()).await;
    (io, addr, token)
}

/// One request on its own connection; returns the status and body.
pub(crate) async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, b"").await
}

pub(crate) async fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    http(addr, "POST", path, body).await
}

/// Opens a polling session; returns its sid and the handshake JSON.
pub(crate) async fn polling_session(addr: SocketAddr, base: &str) -> (String, Value) {
    let (status, body) = get(addr, &format!("{base}?EIO=4&transport=polling")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with('0'));
    let v: Value = serde_json::from_str(&body[1..]).unwrap();
    (v["sid"].as_str().unwrap().to_string(), v)
}

pub(crate) struct Ws {
    ws: WebSocket<TcpStream>,
}

/// Opens a WebSocket to `path` (query included); None if the server refused the upgrade.
pub(crate) async fn ws_connect(addr: SocketAddr, path: &str) -> Option<Ws> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // Byte by byte, so no frame after the head is swallowed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await.ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return None;
    }
    Some(Ws {
        ws: WebSocket::after_handshake(s, Role::Client),
    })
}

/// A WebSocket session at the root path, its OPEN packet read: ready for a CONNECT.
pub(crate) async fn ws_session(addr: SocketAddr) -> Ws {
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    let _open = ws.text().await;
    ws
}

#[derive(Debug)]
pub(crate) enum Msg {
    Text(String),
    Binary(Vec<u8>),
    Closed,
}

impl Ws {
    pub(crate) async fn send(&mut self, text: &str) {
        self.ws
            .write_frame(Frame::text(Payload::Owned(text.as_bytes().to_vec())))
            .await
            .unwrap();
    }

    pub(crate) async fn send_binary(&mut self, data: &[u8]) {
        self.ws
            .write_frame(Frame::binary(Payload::Owned(data.to_vec())))
            .await
            .unwrap();
    }

    /// The next data message, or Closed; panics after 3 s of silence.
    pub(crate) async fn recv(&mut self) -> Msg {
        loop {
            let f = tokio::time::timeout(Duration::from_secs(3), self.ws.read_frame())
                .await
                .expect("no message within 3 s");
            let Ok(f) = f else { return Msg::Closed };
            match f.opcode {
                OpCode::Text => return Msg::Text(String::from_utf8(f.payload.to_vec()).unwrap()),
                OpCode::Binary => return Msg::Binary(f.payload.to_vec()),
                OpCode::Close => return Msg::Closed,
                _ => {}
            }
        }
    }

    /// The next text message that is not a ping.
    pub(crate) async fn text(&mut self) -> String {
        loop {
            match self.recv().await {
                Msg::Text(t) if t == "2" => continue,
                Msg::Text(t) => return t,
                Msg::Binary(_) => panic!("unexpected binary"),
                Msg::Closed => panic!("unexpected close"),
            }
        }
    }

    /// True once the server closes the connection (pings are ignored).
    pub(crate) async fn closed(&mut self) -> bool {
        loop {
            if let Msg::Closed = self.recv().await {
                return true;
            }
        }
    }
}
