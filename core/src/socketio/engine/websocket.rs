//! The WebSocket transport: the HTTP upgrade, the `2probe`/`3probe`/`5` upgrade of a polling
//! session, and the two tasks that serve a connection: one reads (and keeps the heartbeat),
//! one writes what the send queue holds.
//!
//! fastwebsockets answers the upgrade; frames are read by `reader` (no buffer held while
//! idle) and written by `batched`, straight into one buffer per burst.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::{sleep, Instant};

use super::batched::{self, FrameWriter};
use super::conn::{CloseReason, Conn};
use super::http::EioError;
use super::packet::{self as ep, Frame, Outgoing, Packet};
use super::queue::{self, Receiver, Recv};
use super::reader::{self, OpCode, Reader, WriteSide};
use super::session::{Inner, Session, Transport};
use super::{EngineHandler, Message};
use crate::sync::lock;
use crate::{Body, Request, Response};

type Writer = FrameWriter<WriteSide>;

/// Answers the upgrade request and spawns the connection's task.
pub(crate) fn upgrade<H: EngineHandler>(
    inner: Arc<Inner<H>>,
    req: &mut Request,
    session: Option<Arc<Session<H::Conn>>>,
) -> Result<Response, EioError> {
    // A second WebSocket for a session that already has one is accepted, then closed at
    // once, as the reference server does (clients expect a close, not an HTTP error).
    let refused = session.as_ref().is_some_and(|s| {
        s.transport.get() != Transport::Polling || s.ws_attached.swap(true, Ordering::AcqRel)
    });
    // Keeps the connection counted against the server's cap while the socket lives.
    let permit = req
        .extensions()
        .get::<crate::server::Connection>()
        .map(|c| c.permit.clone());
    let (res, fut) = match fastwebsockets::upgrade::upgrade(req) {
        Ok(x) => x,
        Err(_) => {
            if let (Some(s), false) = (&session, refused) {
                s.ws_attached.store(false, Ordering::Release);
            }
            return Err(EioError::BadRequest);
        }
    };
    let (parts, _) = res.into_parts();
    if refused {
        tokio::spawn(async move {
            if let Ok(ws) = fut.await {
                let mut wr = FrameWriter::new(ws.into_inner());
                wr.put_close();
                let _ = wr.flush().await;
            }
        });
        return Ok(Response::from_parts(parts, Body::Empty));
    }
    tokio::spawn(async move {
        let _permit = permit;
        let ws = match fut.await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                if let Some(s) = &session {
                    s.ws_attached.store(false, Ordering::Release);
                }
                return;
            }
        };
        // Control frames are answered through the send queue, so the reader never writes.
        let (mut rd, wr) =
            reader::split(ws.into_inner(), inner.config.max_payload.saturating_add(16));
        let wr = FrameWriter::new(wr);
        match session {
            None => direct(&inner, &mut rd, wr).await,
            Some(s) => upgraded(&inner, &s, &mut rd, wr).await,
        }
    });
    Ok(Response::from_parts(parts, Body::Empty))
}

/// A session that started on WebSocket.
async fn direct<H: EngineHandler>(inner: &Arc<Inner<H>>, reader: &mut Reader, mut wr: Writer) {
    let Some((conn, rx)) = inner.new_conn() else {
        // The cap was reached during the upgrade.
        wr.put_close();
        let _ = wr.flush().await;
        return;
    };
    let open = inner.open_packet(conn.sid(), false);
    let upper = inner.handler.open(&conn);
    if write(&mut wr, &Frame::Text(open)).await.is_err() {
        conn.close(CloseReason::TransportError);
    } else {
        serve(inner, &conn, &upper, rx, reader, wr).await;
    }
    inner.closed(&conn, &upper);
}

/// A polling session upgrading: the probe exchange, then the same loop as a direct one.
async fn upgraded<H: EngineHandler>(
    inner: &Arc<Inner<H>>,
    s: &Arc<Session<H::Conn>>,
    reader: &mut Reader,
    mut wr: Writer,
) {
    let probed =
        tokio::time::timeout(inner.config.upgrade_timeout, probe(s, reader, &mut wr)).await;
    if probed != Ok(true) {
        // The session carries on over polling.
        s.transport.switch(Transport::Upgrading, Transport::Polling);
        s.ws_attached.store(false, Ordering::Release);
        wr.put_close();
        let _ = wr.flush().await;
        return;
    }
    let Some(rx) = take_queue(s).await else {
        s.conn.close(CloseReason::TransportError);
        inner.finish(s);
        return;
    };
    s.transport.set(Transport::WebSocket);
    serve(inner, &s.conn, &s.upper, rx, reader, wr).await;
    inner.finish(s);
}

/// Runs the probe; true once the client sent `5`.
async fn probe<C>(s: &Session<C>, reader: &mut Reader, wr: &mut Writer) -> bool {
    loop {
        let next = tokio::select! {
            () = s.conn.token().cancelled() => return false,
            f = reader.next() => f,
        };
        let Some((OpCode::Text, true, data)) = next else {
            return false;
        };
        match ep::decode_text(data.freeze()) {
            Ok(Packet::Ping(p)) if &p[..] == b"probe" => {
                if write(wr, &Frame::Text(Bytes::from_static(b"3probe")))
                    .await
                    .is_err()
                {
                    return false;
                }
                s.transport.set(Transport::Upgrading);
                s.wake_poll.notify_one();
            }
            Ok(Packet::Pong(_)) => s.pong.notify_one(),
            Ok(Packet::Upgrade) if s.transport.get() == Transport::Upgrading => return true,
            Ok(Packet::Noop) => {}
            _ => return false,
        }
    }
}

/// Waits for the poll in flight (already told to end) to hand the queue back.
async fn take_queue<C>(s: &Session<C>) -> Option<Receiver> {
    for _ in 0..500 {
        if let Some(rx) = lock(&s.rx).take() {
            return Some(rx);
        }
        s.wake_poll.notify_one();
        sleep(Duration::from_millis(2)).await;
    }
    None
}

/// Writes one frame and sends it at once.
async fn write(wr: &mut Writer, f: &Frame) -> std::io::Result<()> {
    buffer(wr, f);
    wr.flush().await
}

/// Frames one frame into the connection's buffer; it goes out at the next flush.
fn buffer(wr: &mut Writer, f: &Frame) {
    match f {
        Frame::Text(b) => wr.put(batched::OpCode::Text, b),
        Frame::Binary(b) => wr.put(batched::OpCode::Binary, b),
        Frame::Pong(b) => wr.put(batched::OpCode::Pong, b),
    }
}

/// A message being reassembled from fragments.
struct Partial {
    text: bool,
    data: BytesMut,
}

/// Serves a connection until it is over; the reason is then on `conn`.
///
/// Two tasks: this one reads (and runs the handlers) and keeps the heartbeat; a second one
/// writes what the queue holds. A broadcast wakes only the writer, whose wake costs a queue
/// drain and one system call, rather than a poll of everything the connection waits on.
/// What this side sends (pings, pongs) goes through the queue too, so the writer alone
/// owns the socket's write half.
async fn serve<H: EngineHandler>(
    inner: &Inner<H>,
    conn: &Arc<Conn>,
    upper: &H::Conn,
    rx: Receiver,
    reader: &mut Reader,
    wr: Writer,
) {
    let writer = tokio::spawn(write_loop(conn.clone(), rx, wr));
    let reason = read_loop(inner, conn, upper, reader).await;
    // The root token (server shutdown) cancels without a reason of its own.
    conn.close(reason.unwrap_or(CloseReason::ServerShutdown));
    let _ = writer.await;
}

/// Reads and dispatches frames and keeps the heartbeat, until the connection closes.
async fn read_loop<H: EngineHandler>(
    inner: &Inner<H>,
    conn: &Conn,
    upper: &H::Conn,
    reader: &mut Reader,
) -> Option<CloseReason> {
    let cfg = &inner.config;
    let heartbeat = sleep(cfg.ping_interval);
    let mut heartbeat = pin!(heartbeat);
    let mut awaiting_pong = false;
    let mut partial: Option<Partial> = None;
    // A send that fails has closed the connection (slow client) or found it closed.
    let send = |f: Frame| conn.send(Outgoing::Frame(f)).is_ok();
    loop {
        tokio::select! {
            biased;
            () = conn.token().cancelled() => return conn.close_reason(),
            () = &mut heartbeat => {
                if awaiting_pong {
                    return Some(CloseReason::PingTimeout);
                }
                if !send(Frame::Text(Bytes::from_static(b"2"))) {
                    return conn.close_reason();
                }
                awaiting_pong = true;
                heartbeat.as_mut().reset(Instant::now() + cfg.ping_timeout);
            }
            next = reader.next() => {
                let Some((op, fin, data)) = next else {
                    return Some(CloseReason::TransportError);
                };
                let msg = match op {
                    OpCode::Close => return Some(CloseReason::ClientClose),
                    OpCode::Ping => {
                        if !send(Frame::Pong(data.freeze())) {
                            return conn.close_reason();
                        }
                        continue;
                    }
                    OpCode::Pong => continue,
                    OpCode::Text | OpCode::Binary => {
                        if partial.is_some() {
                            return Some(CloseReason::ParseError);
                        }
                        let text = op == OpCode::Text;
                        if !fin {
                            partial = Some(Partial { text, data });
                            continue;
                        }
                        (text, data)
                    }
                    OpCode::Continue => {
                        let Some(p) = partial.as_mut() else {
                            return Some(CloseReason::ParseError);
                        };
                        if p.data.len() + data.len() > cfg.max_payload {
                            return Some(CloseReason::ParseError);
                        }
                        p.data.extend_from_slice(&data);
                        if !fin {
                            continue;
                        }
                        let Some(p) = partial.take() else { continue };
                        (p.text, p.data)
                    }
                    // The codec refuses reserved opcodes before they get here.
                    _ => return Some(CloseReason::ParseError),
                };
                let (text, data) = msg;
                let msg = if text {
                    match ep::decode_text(data.freeze()) {
                        Ok(Packet::Message(t)) => Message::Text(t),
                        Ok(Packet::Pong(_)) => {
                            awaiting_pong = false;
                            heartbeat.as_mut().reset(Instant::now() + cfg.ping_interval);
                            continue;
                        }
                        Ok(Packet::Ping(p)) => {
                            let mut pong = BytesMut::with_capacity(1 + p.len());
                            pong.extend_from_slice(b"3");
                            pong.extend_from_slice(&p);
                            if !send(Frame::Text(pong.freeze())) {
                                return conn.close_reason();
                            }
                            continue;
                        }
                        Ok(Packet::Close) => return Some(CloseReason::ClientClose),
                        Ok(Packet::Noop) => continue,
                        Ok(Packet::Open | Packet::Upgrade | Packet::Binary(_)) | Err(_) => {
                            return Some(CloseReason::ParseError)
                        }
                    }
                } else {
                    Message::Binary(data.freeze())
                };
                if inner.handler.message(upper, msg).await.is_err() {
                    return Some(CloseReason::ParseError);
                }
            }
        }
    }
}

/// How long a closing connection may take to send what it still has.
const CLOSE_DEADLINE: Duration = Duration::from_secs(1);

/// Writes what is queued until the connection closes; then whatever is still queued (a
/// CONNECT_ERROR, a last message) and a close frame, within [`CLOSE_DEADLINE`] since the
/// client may be the slow one.
async fn write_loop(conn: Arc<Conn>, mut rx: Receiver, mut wr: Writer) {
    let mut batch = VecDeque::new();
    let mut intact = true;
    while rx.recv_all(&mut batch).await == Recv::Items {
        let mut write = pin!(write_queued(&mut wr, &mut batch, &rx));
        let done = tokio::select! {
            biased;
            r = &mut write => Some(r),
            // A write that hangs (the client stopped reading) must not keep the connection.
            () = rx.closing() => None,
        };
        let r = match done {
            Some(r) => r,
            None => match tokio::time::timeout(CLOSE_DEADLINE, write).await {
                Ok(r) => r,
                Err(_) => {
                    intact = false;
                    break;
                }
            },
        };
        if r.is_err() {
            conn.close(CloseReason::TransportError);
            intact = false;
            break;
        }
    }
    if !intact {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_DEADLINE, async {
        rx.try_recv_all(&mut batch);
        for item in batch.drain(..) {
            if write_item(&mut wr, &item).await.is_err() {
                return;
            }
        }
        wr.put_close();
        let _ = wr.flush().await;
    })
    .await;
}

/// Frames `item`; past the high-water mark, what is buffered goes out first.
async fn write_item(wr: &mut Writer, item: &Outgoing) -> std::io::Result<()> {
    for f in item.frames() {
        buffer(wr, f);
        if wr.buffered() >= batched::HIGH_WATER {
            wr.flush().await?;
        }
    }
    Ok(())
}

/// Writes `batch` (what the queue held) and whatever is queued meanwhile, then flushes: a
/// burst of broadcasts costs one system call.
async fn write_queued(
    wr: &mut Writer,
    batch: &mut VecDeque<Outgoing>,
    rx: &Receiver,
) -> std::io::Result<()> {
    for item in batch.drain(..) {
        write_item(wr, &item).await?;
    }
    // One turn at the back of the run queue before the flush: under load, the broadcasts
    // being emitted meanwhile join this write instead of each costing a system call of their
    // own; when idle, the turn comes back at once. The queue is bounded, so is this batch.
    tokio::task::yield_now().await;
    if rx.try_recv_all(batch) {
        for item in batch.drain(..) {
            write_item(wr, &item).await?;
        }
    }
    queue::release(batch);
    wr.flush().await
}
