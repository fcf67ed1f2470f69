//! Socket.IO behaviour over real sockets: namespaces, auth, events, acks both ways, binary
//! attachments, rooms and broadcasts, slow-client eviction, disconnects and shutdown.

mod support;

use std::time::Duration;

use platform_core::socketio::{AckError, Encoded, Payload};
use serde_json::json;
use support::*;

/// A WebSocket client joined to `nsp` (`""` for the main namespace); returns it and its id.
async fn joined(addr: std::net::SocketAddr, nsp: &str) -> (Ws, String) {
    let mut ws = ws_session(addr).await;
    let sep = if nsp.is_empty() { "" } else { "," };
    ws.send(&format!("40{nsp}{sep}")).await;
    let connect = ws.text().await;
    let json = &connect[2 + nsp.len() + sep.len()..];
    let sid = serde_json::from_str::<serde_json::Value>(json).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let _auth = ws.text().await;
    (ws, sid)
}

async fn wait_until(mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn connects_to_namespaces_with_auth() {
    let (io, addr, _t) = io_server(fast()).await;
    let mut ws = ws_session(addr).await;
    ws.send(r#"40{"token":"123"}"#).await;
    assert!(ws.text().await.starts_with("40{\"sid\":"));
    assert_eq!(ws.text().await, r#"42["auth",{"token":"123"}]"#);
    ws.send(r#"40/custom,{"token":"abc"}"#).await;
    assert!(ws.text().await.starts_with("40/custom,{\"sid\":"));
    assert_eq!(ws.text().await, r#"42/custom,["auth",{"token":"abc"}]"#);
    ws.send("40/random").await;
    assert_eq!(
        ws.text().await,
        r#"44/random,{"message":"Invalid namespace"}"#
    );
    ws.send(r#"40/custom2,{"reject":1}"#).await;
    assert_eq!(
        ws.text().await,
        r#"44/custom2,{"message":"Invalid namespace"}"#
    );
    assert_eq!(io.socket_count(), 2);
}

#[tokio::test]
async fn refused_connect_gets_connect_error() {
    let (io, addr, _t) = io_server(fast()).await;
    let mut ws = ws_session(addr).await;
    ws.send(r#"40{"reject":true}"#).await;
    assert_eq!(ws.text().await, r#"44{"message":"rejected"}"#);
    assert_eq!(io.socket_count(), 0);
}

#[tokio::test]
async fn events_and_client_acks() {
    let (_io, addr, _t) = io_server(fast()).await;
    let (mut ws, _) = joined(addr, "").await;
    ws.send(r#"42["message",1,"2",{"3":[true]}]"#).await;
    assert_eq!(ws.text().await, r#"42["message-back",1,"2",{"3":[true]}]"#);
    ws.send(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#)
        .await;
    assert_eq!(ws.text().await, r#"43456[1,"2",{"3":[false]}]"#);
}

#[tokio::test]
async fn binary_attachments_round_trip() {
    let (_io, addr, _t) = io_server(fast()).await;
    let (mut ws, _) = joined(addr, "").await;
    ws.send(r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    ws.send_binary(&[1, 2, 3]).await;
    ws.send_binary(&[4, 5, 6]).await;
    assert_eq!(
        ws.text().await,
        r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert!(matches!(ws.recv().await, Msg::Binary(b) if b == [1, 2, 3]));
    assert!(matches!(ws.recv().await, Msg::Binary(b) if b == [4, 5, 6]));
}

#[tokio::test]
async fn unexpected_binary_closes() {
    let (_io, addr, _t) = io_server(fast()).await;
    let (mut ws, _) = joined(addr, "").await;
    ws.send_binary(&[1]).await;
    assert!(ws.closed().await);
}

#[tokio::test]
async fn server_emit_with_ack_and_timeout() {
    let (io, addr, _t) = io_server(fast().ack_timeout(Duration::from_millis(200))).await;
    let (mut ws, sid) = joined(addr, "").await;
    let socket = io
        .of("/")
        .sockets()
        .into_iter()
        .find(|s| s.id() == sid)
        .unwrap();
    let s2 = socket.clone();
    let asked = tokio::spawn(async move { s2.emit_with_ack("question", &json!({"q": 1})).await });
    let pkt = ws.text().await;
    // `42<id>["question",{"q":1}]`
    let id: String = pkt[2..].chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(&pkt[2 + id.len()..], r#"["question",{"q":1}]"#);
    ws.send(&format!("43{id}[\"answer\"]")).await;
    let got = asked.await.unwrap().unwrap();
    assert_eq!(got.args, vec![json!("answer")]);

    let unanswered = socket.emit_with_ack("question", &1).await;
    assert_eq!(unanswered, Err(AckError::Timeout));
}

#[tokio::test]
async fn rooms_broadcast_except_sender_and_encoded_once() {
    let (io, addr, _t) = io_server(fast()).await;
    let (mut a, sid_a) = joined(addr, "").await;
    let (mut b, _) = joined(addr, "").await;
    let (mut c, _) = joined(addr, "").await;
    a.send(r#"42["join","r"]"#).await;
    b.send(r#"42["join","r"]"#).await;
    wait_until(|| io.room_size("/", "r") == 2).await;
    let n = io
        .to("r")
        .except(&sid_a)
        .emit("news", &json!({"n": 1}))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(b.text().await, r#"42["news",{"n":1}]"#);
    let enc = Encoded::event("/", "all", &2).unwrap();
    assert_eq!(io.emit_encoded_to_room("r", &enc), 2);
    assert_eq!(a.text().await, r#"42["all",2]"#);
    assert_eq!(b.text().await, r#"42["all",2]"#);
    assert_eq!(io.emit("everyone", &3).unwrap(), 3);
    assert_eq!(c.text().await, r#"42["everyone",3]"#);
    // Excluding a room leaves out its members.
    assert_eq!(io.of("/").except("r").emit("others", &4).unwrap(), 1);
    assert_eq!(c.text().await, r#"42["others",4]"#);
}

#[tokio::test]
async fn binary_broadcast_payload() {
    let (io, addr, _t) = io_server(fast()).await;
    let (mut a, _) = joined(addr, "").await;
    let mut p = Payload::default();
    let ph = p.attach(bytes::Bytes::from_static(&[9, 9]));
    p.args.push(json!({ "file": ph }));
    assert_eq!(io.of("/").emit_payload("file", &p).unwrap(), 1);
    assert_eq!(
        a.text().await,
        r#"451-["file",{"file":{"_placeholder":true,"num":0}}]"#
    );
    assert!(matches!(a.recv().await, Msg::Binary(b) if b == [9, 9]));
}

#[tokio::test]
async fn slow_client_is_disconnected() {
    let (io, addr, _t) = io_server(fast().send_queue(8)).await;
    let (sid, _) = polling_session(addr, "/socket.io/").await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(post(addr, &url, b"40").await.0, 200);
    wait_until(|| io.socket_count() == 1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Nobody polls: the queue fills and the client is dropped.
    for i in 0..20 {
        let _ = io.emit("flood", &i);
    }
    wait_until(|| io.socket_count() == 0).await;
    assert_eq!(get(addr, &url).await.0, 400);
}

#[tokio::test]
async fn disconnects_both_ways() {
    let (io, addr, _t) = io_server(fast()).await;
    let (mut ws, _) = joined(addr, "").await;
    ws.send("41").await;
    wait_until(|| io.socket_count() == 0).await;
    // The connection stays usable for another namespace.
    ws.send("40/custom,").await;
    assert!(ws.text().await.starts_with("40/custom,"));
    let _auth = ws.text().await;
    wait_until(|| io.socket_count() == 1).await;
    for s in io.of("/custom").sockets() {
        s.disconnect();
    }
    assert_eq!(ws.text().await, "41/custom,");
    assert_eq!(io.socket_count(), 0);
}

#[tokio::test]
async fn no_connect_within_timeout_closes() {
    let (_io, addr, _t) = io_server(fast().ping_interval(Duration::from_secs(5))).await;
    let mut ws = ws_session(addr).await;
    let started = std::time::Instant::now();
    assert!(ws.closed().await);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn close_all_closes_every_connection() {
    let (io, addr, _t) = io_server(fast()).await;
    let (mut a, _) = joined(addr, "").await;
    let (sid, _) = polling_session(addr, "/socket.io/").await;
    io.close_all();
    assert!(a.closed().await);
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(get(addr, &url).await.0, 400);
    wait_until(|| io.connection_count() == 0).await;
}

#[tokio::test]
async fn no_attachment_is_held_before_connect() {
    let (_io, addr, _t) = io_server(fast()).await;
    let mut ws = ws_session(addr).await;
    // A binary event before any CONNECT: refused at its header, before any attachment.
    ws.send(r#"451-["message",{"_placeholder":true,"num":0}]"#)
        .await;
    assert!(ws.closed().await);
    // The same for a namespace the client has not joined.
    let (mut ws, _) = joined(addr, "").await;
    ws.send(r#"451-/custom,["message",{"_placeholder":true,"num":0}]"#)
        .await;
    assert!(ws.closed().await);
}

#[tokio::test]
async fn pending_attachment_bytes_are_bounded() {
    let (_io, addr, _t) = io_server(
        fast()
            .ping_interval(Duration::from_secs(20))
            .max_pending_bytes(1000, 1500),
    )
    .await;
    // Within the connection's bound: delivered.
    let (mut ws, _) = joined(addr, "").await;
    ws.send(r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    ws.send_binary(&[0; 400]).await;
    ws.send_binary(&[0; 400]).await;
    assert!(ws.text().await.starts_with("452-[\"message-back\""));
    for _ in 0..2 {
        assert!(matches!(ws.recv().await, Msg::Binary(b) if b.len() == 400));
    }
    // Past it: closed.
    ws.send(r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    ws.send_binary(&[0; 600]).await;
    ws.send_binary(&[0; 600]).await;
    assert!(ws.closed().await);
    // Past the server's total, with each connection within its own (a server of its own:
    // the closed connection's bytes are released once the server has seen the close).
    let (_io, addr, _t) = io_server(
        fast()
            .ping_interval(Duration::from_secs(20))
            .max_pending_bytes(1000, 1500),
    )
    .await;
    let (mut a, _) = joined(addr, "").await;
    let (mut b, _) = joined(addr, "").await;
    for ws in [&mut a, &mut b] {
        ws.send(r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
            .await;
        ws.send_binary(&[0; 900]).await;
        // The first one's bytes are held before the second one's arrive.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(b.closed().await);
    // The first one's bytes are still held; they are released when it completes.
    a.send_binary(&[0; 10]).await;
    let m = a.recv().await;
    assert!(
        matches!(&m, Msg::Text(t) if t.starts_with("452-[\"message-back\"")),
        "{m:?}"
    );
}

/// Counts accepted connects and disconnects; a connect takes 300 ms to decide.
struct SlowConnect {
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    disconnected: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl platform_core::socketio::NamespaceHandler for SlowConnect {
    async fn on_connect(
        &self,
        _socket: platform_core::socketio::Socket,
        _auth: serde_json::Value,
    ) -> Result<(), serde_json::Value> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.accepted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn on_event(
        &self,
        _socket: platform_core::socketio::Socket,
        _event: String,
        _payload: Payload,
        _ack: Option<platform_core::socketio::Ack>,
    ) {
    }

    async fn on_disconnect(
        &self,
        _socket: platform_core::socketio::Socket,
        _reason: platform_core::socketio::DisconnectReason,
    ) {
        self.disconnected
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_connect_accepted_as_the_connection_closes_is_disconnected() {
    use std::sync::atomic::Ordering::SeqCst;
    // The connection closes (its connect timeout) while the handler still decides: whatever
    // the handler took for an accepted socket (a quota slot) must be given back.
    let io = fast().connect_timeout(Duration::from_millis(100)).build();
    let handler = SlowConnect {
        accepted: Default::default(),
        disconnected: Default::default(),
    };
    let (accepted, disconnected) = (handler.accepted.clone(), handler.disconnected.clone());
    io.namespace("/", handler);
    let (addr, _t) = start(io.clone()).await;
    let mut ws = ws_session(addr).await;
    ws.send("40").await;
    assert!(ws.closed().await);
    wait_until(|| accepted.load(SeqCst) == 1 && disconnected.load(SeqCst) == 1).await;
    assert_eq!(io.socket_count(), 0);
}
