//! The socketioxide peer of the load tests: the strongest Rust Socket.IO server doing what the
//! chat service does for `typing:update` and `message:created`, minus storage and identity.
//! - each client joins the room named by its CONNECT auth payload's `room` (none: "bench");
//! - `typing:update` is emitted to that room except its sender;
//! - `POST /conversations/<room>/messages` `{"senderId","body"}` answers 201 with a message
//!   (stored nowhere) and emits it as `message:created` to everyone in the room.
//!
//! Stock socketioxide settings, served by hyper on loopback.
//! `relay-peer-socketioxide [--listen 127.0.0.1:3305]`; prints `ready <addr>` once listening.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use loadtest::peer::{self, respond};
use serde_json::Value;
use socketioxide::extract::{Data, SocketRef, TryData};
use socketioxide::SocketIo;

/// What the HTTP side needs: the server to emit through, and the send counter for ids.
#[derive(Default)]
struct Sends {
    io: OnceLock<SocketIo>,
    next: AtomicU64,
}

/// Every request socketioxide does not take: the send route, or 404.
async fn http(
    sends: Arc<Sends>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let room = peer::send_room(req.uri().path()).map(str::to_string);
    let (Some(room), true) = (room, req.method() == hyper::Method::POST) else {
        return Ok(respond(StatusCode::NOT_FOUND, "{}".into()));
    };
    let Ok(body) = Limited::new(req.into_body(), 64 * 1024).collect().await else {
        return Ok(respond(StatusCode::BAD_REQUEST, "{}".into()));
    };
    let (Some((sender, text)), Some(io)) = (peer::send_body(&body.to_bytes()), sends.io.get())
    else {
        return Ok(respond(StatusCode::BAD_REQUEST, "{}".into()));
    };
    let seq = sends.next.fetch_add(1, Ordering::Relaxed);
    let m = peer::peer_message(&room, &sender, &text, seq);
    let data: Value = serde_json::from_str(&m).expect("peer_message is JSON");
    // Delivery is best effort, as in the chat service: a socket gone meanwhile is no error.
    let _ = io.to(room).emit("message:created", &data).await;
    Ok(respond(StatusCode::CREATED, m))
}

#[tokio::main]
async fn main() {
    let listen = peer::listen_addr("127.0.0.1:3305");
    let sends = Arc::new(Sends::default());
    let inner = {
        let sends = sends.clone();
        hyper::service::service_fn(move |req| http(sends.clone(), req))
    };
    let (svc, io) = SocketIo::new_inner_svc(inner);
    io.ns("/", async |s: SocketRef, TryData(auth): TryData<Value>| {
        let room = auth
            .ok()
            .and_then(|a| a["room"].as_str().map(str::to_string))
            .unwrap_or_else(|| "bench".into());
        s.join(room.clone());
        s.on(
            "typing:update",
            async move |s: SocketRef, Data(d): Data<Value>| {
                let _ = s.to(room.clone()).emit("typing:update", &d).await;
            },
        );
    });
    let _ = sends.io.set(io);

    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {listen}: {e}");
            std::process::exit(1)
        });
    println!("ready {}", listener.local_addr().expect("local address"));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = svc.clone();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}
