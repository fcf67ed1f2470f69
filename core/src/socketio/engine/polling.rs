//! The HTTP long-polling transport: the poll (GET) that waits for queued packets, the post
//! (POST) that delivers a payload, and the heartbeat task each polling session runs until it
//! closes or upgrades to WebSocket.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use std::collections::VecDeque;

use tokio::time::Instant;

use super::conn::CloseReason;
use super::http::{respond, EioError};
use super::packet::{self as ep, Packet};
use super::queue;
use super::session::{Inner, Session, Transport};
use super::{EngineHandler, Message};
use crate::sync::lock;
use crate::{Request, Response};

pub(crate) fn text_response(body: Bytes) -> Response {
    respond(StatusCode::OK, "text/plain; charset=UTF-8", body)
}

/// Hands the queue back to the session when a poll ends, even if its request is dropped.
struct RxGuard<'a, C> {
    session: &'a Session<C>,
    rx: Option<queue::Receiver>,
}

impl<C> Drop for RxGuard<'_, C> {
    fn drop(&mut self) {
        if let Some(rx) = self.rx.take() {
            *lock(&self.session.rx) = Some(rx);
        }
    }
}

/// GET: waits until something is queued, then answers with everything queued.
pub(crate) async fn poll<C>(s: &Arc<Session<C>>) -> Result<Response, EioError> {
    if s.ws_attached.load(Ordering::Acquire) {
        // A WebSocket is taking over: the client's `2probe`/`5` may be in flight on it, and
        // this poll must see the outcome (refused after `5`) rather than race it.
        for _ in 0..25 {
            if s.transport.get() == Transport::WebSocket || !s.ws_attached.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    match s.transport.get() {
        Transport::WebSocket => return Err(EioError::BadRequest),
        Transport::Upgrading => return Ok(text_response(ep::noop())),
        _ => {}
    }
    let Some(rx) = lock(&s.rx).take() else {
        // Two polls at once break the protocol: close the session, the first poll ends.
        s.conn.close(CloseReason::ParseError);
        return Err(EioError::BadRequest);
    };
    let mut guard = RxGuard {
        session: s,
        rx: Some(rx),
    };
    let Some(rx) = guard.rx.as_mut() else {
        return Err(EioError::BadRequest);
    };
    // The queue is bounded, so so is this batch.
    let mut items = VecDeque::new();
    let closed = tokio::select! {
        biased;
        () = s.conn.token().cancelled() => true,
        () = s.wake_poll.notified() => return Ok(text_response(ep::noop())),
        r = rx.recv_all(&mut items) => r == queue::Recv::Closing,
    };
    if closed {
        // A client that asked to close gets a noop; anything else is told the session closed.
        let last = if s.conn.close_reason() == Some(CloseReason::ClientClose) {
            ep::noop()
        } else {
            Bytes::from_static(b"1")
        };
        return Ok(text_response(last));
    }
    let size: usize = items.iter().map(|i| i.polling_len() + 1).sum();
    let body = ep::encode_payload(items.iter().flat_map(|i| i.frames().iter()), size);
    Ok(text_response(body))
}

/// POST: decodes a payload and delivers its packets in order.
pub(crate) async fn post<H: EngineHandler>(
    inner: &Arc<Inner<H>>,
    s: &Arc<Session<H::Conn>>,
    req: Request,
) -> Result<Response, EioError> {
    if s.transport.get() == Transport::WebSocket {
        return Err(EioError::BadRequest);
    }
    if s.posting.swap(true, Ordering::AcqRel) {
        s.conn.close(CloseReason::ParseError);
        return Err(EioError::BadRequest);
    }
    let result = deliver(inner, s, req).await;
    s.posting.store(false, Ordering::Release);
    match result {
        Ok(()) => Ok(respond(
            StatusCode::OK,
            "text/html",
            Bytes::from_static(b"ok"),
        )),
        Err(e) => {
            s.conn.close(CloseReason::ParseError);
            Err(e)
        }
    }
}

async fn deliver<H: EngineHandler>(
    inner: &Arc<Inner<H>>,
    s: &Arc<Session<H::Conn>>,
    req: Request,
) -> Result<(), EioError> {
    let (parts, body) = req.into_parts();
    let body = crate::body::read_limited(&parts.headers, body, inner.config.max_payload)
        .await
        .map_err(|_| EioError::BadRequest)?;
    let packets = ep::decode_payload(Bytes::from(body)).map_err(|_| EioError::BadRequest)?;
    for p in packets {
        if s.conn.is_closed() {
            break;
        }
        let msg = match p {
            Packet::Message(t) => Message::Text(t),
            Packet::Binary(b) => Message::Binary(b),
            Packet::Pong(_) => {
                s.pong.notify_one();
                continue;
            }
            Packet::Close => {
                settle_poll(s).await;
                s.conn.close(CloseReason::ClientClose);
                break;
            }
            Packet::Noop | Packet::Ping(_) => continue,
            Packet::Open | Packet::Upgrade => return Err(EioError::BadRequest),
        };
        inner
            .handler
            .message(&s.upper, msg)
            .await
            .map_err(|_| EioError::BadRequest)?;
    }
    Ok(())
}

/// Clients send the close packet while their poll is in flight and expect that poll to end
/// with a noop; when both requests race, give the poll a moment to arrive first.
async fn settle_poll<C>(s: &Session<C>) {
    for _ in 0..25 {
        if lock(&s.rx).is_none() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Pings a polling session and closes it when a pong is late; ends when the session closes
/// (then it removes it) or upgrades (then the WebSocket task takes over).
pub(crate) async fn heartbeat<H: EngineHandler>(inner: Arc<Inner<H>>, s: Arc<Session<H::Conn>>) {
    let cfg = &inner.config;
    let token = s.conn.token().clone();
    // Absolute deadlines, so timer lateness does not add up across the interval and timeout.
    let mut next_ping = Instant::now() + cfg.ping_interval;
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            () = tokio::time::sleep_until(next_ping) => {}
        }
        if s.transport.get() == Transport::WebSocket {
            return;
        }
        // During an upgrade the ping waits in the queue and goes out over the new transport.
        if s.conn.send(ep::ping()).is_err() {
            break;
        }
        let deadline = next_ping + cfg.ping_timeout;
        *lock(&s.pong_deadline) = Some(deadline);
        tokio::select! {
            () = token.cancelled() => break,
            () = s.pong.notified() => {
                *lock(&s.pong_deadline) = None;
                next_ping = Instant::now() + cfg.ping_interval;
            }
            () = tokio::time::sleep_until(deadline) => {
                match s.transport.get() {
                    Transport::WebSocket => return,
                    Transport::Upgrading => next_ping = Instant::now() + cfg.ping_interval,
                    _ => {
                        s.conn.close(CloseReason::PingTimeout);
                        break;
                    }
                }
            }
        }
    }
    if s.transport.get() != Transport::WebSocket {
        inner.finish(&s);
    }
}
