//! The raw Engine.IO/Socket.IO client of the relay benchmark: a WebSocket straight to
//! `/socket.io/?EIO=4&transport=websocket`, the open packet, the `40` namespace join, and
//! nothing more. Lean on purpose, so that a thousand of them leave the CPU to the server.

use std::future::Future;

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocket, WebSocketRead, WebSocketWrite};
use http_body_util::Empty;
use hyper::header::{CONNECTION, HOST, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{ReadHalf, WriteHalf};

pub type Io = TokioIo<Upgraded>;
pub type Reader = WebSocketRead<ReadHalf<Io>>;
pub type Writer = WebSocketWrite<WriteHalf<Io>>;

/// Runs hyper's handshake background work on the tokio runtime.
struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut);
    }
}

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Connects, reads the Engine.IO open packet, joins `/` (with `auth`, a JSON object, as
/// the CONNECT payload when given); returns the socket split in two.
pub async fn connect(addr: &str, auth: Option<&str>) -> Result<(Reader, Writer), Error> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let req = hyper::Request::builder()
        .method("GET")
        .uri("/socket.io/?EIO=4&transport=websocket")
        .header(HOST, addr)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13")
        .body(Empty::<Bytes>::new())?;
    let (mut ws, _) = fastwebsockets::handshake::client(&SpawnExecutor, req, stream).await?;
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    let open = next_text(&mut ws).await?;
    if !open.starts_with(b"0{") {
        return Err(format!(
            "expected an open packet, got {:?}",
            String::from_utf8_lossy(&open)
        )
        .into());
    }
    match auth {
        Some(a) => send(&mut ws, format!("40{a}").as_bytes()).await?,
        None => send(&mut ws, b"40").await?,
    }
    loop {
        let t = next_text(&mut ws).await?;
        match &t[..] {
            b"2" => send(&mut ws, b"3").await?,
            t if t.starts_with(b"40") => break,
            // CONNECT_ERROR: refused, e.g. an invalid token.
            t if t.starts_with(b"44") => {
                return Err(format!("refused: {}", String::from_utf8_lossy(t)).into())
            }
            _ => {}
        }
    }
    Ok(ws.split(tokio::io::split))
}

async fn next_text(ws: &mut WebSocket<Io>) -> Result<Vec<u8>, Error> {
    loop {
        let f = ws.read_frame().await?;
        match f.opcode {
            OpCode::Text => return Ok(f.payload.to_vec()),
            OpCode::Close => return Err("closed by the server".into()),
            _ => {}
        }
    }
}

async fn send(ws: &mut WebSocket<Io>, text: &[u8]) -> Result<(), Error> {
    ws.write_frame(Frame::text(Payload::Borrowed(text))).await?;
    Ok(())
}

/// Writes one text frame.
pub async fn write_text(wr: &mut Writer, text: &[u8]) -> Result<(), Error> {
    wr.write_frame(Frame::text(Payload::Borrowed(text))).await?;
    Ok(())
}

/// Reads the next text frame and hands its payload to `f` without copying it; `None` once
/// the connection is over. WebSocket pings are answered by the reader through `wr`.
pub async fn read_text<R>(
    rd: &mut Reader,
    wr: &tokio::sync::Mutex<Writer>,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    loop {
        let mut send_fn = |f: Frame<'_>| {
            let owned = Frame::new(true, f.opcode, None, Payload::Owned(f.payload.to_vec()));
            async move { wr.lock().await.write_frame(owned).await }
        };
        let frame = rd.read_frame(&mut send_fn).await.ok()?;
        match frame.opcode {
            OpCode::Text => return Some(f(&frame.payload)),
            OpCode::Close => return None,
            _ => {}
        }
    }
}
