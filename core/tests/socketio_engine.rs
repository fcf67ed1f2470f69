//! Engine.IO behaviour over real sockets: handshake shape, error answers, polling framing,
//! upgrade probe, heartbeat timeouts and the payload limit.

mod support;

use std::time::Duration;

use support::*;

const BASE: &str = "/socket.io/";

#[tokio::test]
async fn polling_handshake_has_the_protocol_shape() {
    let (_io, addr, _t) = io_server(fast()).await;
    let (_, v) = polling_session(addr, BASE).await;
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ]
    );
    assert_eq!(v["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(v["pingInterval"], 300);
    assert_eq!(v["pingTimeout"], 200);
    assert_eq!(v["maxPayload"], 1_000_000);
}

#[tokio::test]
async fn websocket_handshake_offers_no_upgrade() {
    let (_io, addr, _t) = io_server(fast()).await;
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    let open = ws.text().await;
    let v: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    assert_eq!(v["upgrades"], serde_json::json!([]));
}

#[tokio::test]
async fn protocol_errors_answer_400_with_code() {
    let (_io, addr, _t) = io_server(fast()).await;
    let cases = [
        ("GET", "/socket.io/?EIO=4&transport=abc", 0),
        ("GET", "/socket.io/?EIO=4", 0),
        ("GET", "/socket.io/?EIO=4&transport=polling&sid=nope", 1),
        ("POST", "/socket.io/?EIO=4&transport=polling", 2),
        ("GET", "/socket.io/?EIO=3&transport=polling", 5),
        ("GET", "/socket.io/?transport=polling", 5),
        ("GET", "/socket.io/?EIO=4&transport=websocket", 3),
    ];
    for (method, path, code) in cases {
        let (status, body) = http(addr, method, path, b"").await;
        assert_eq!(status, 400, "{method} {path}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["code"], code, "{method} {path}: {body}");
        assert!(v["message"].is_string());
    }
    assert_eq!(
        get(addr, "/elsewhere/?EIO=4&transport=polling").await.0,
        404
    );
}

#[tokio::test]
async fn preflight_and_cors_headers() {
    let (_io, addr, _t) = io_server(fast().cors(platform_core::cors::Origins::Any)).await;
    let (status, _) = http(addr, "OPTIONS", "/socket.io/?EIO=4&transport=polling", b"").await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn polling_frames_packets_with_record_separator_and_base64() {
    let (_io, addr, _t) = io_server(fast()).await;
    let (sid, _) = polling_session(addr, BASE).await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(post(addr, &url, b"40").await, (200, "ok".into()));
    // The CONNECT answer, then the event emitted in on_connect (possibly in the same poll).
    let (_, mut body) = get(addr, &url).await;
    if !body.contains('\x1e') {
        body.push('\x1e');
        body.push_str(&get(addr, &url).await.1);
    }
    let (connect, auth) = body.split_once('\x1e').unwrap();
    assert!(connect.starts_with("40{\"sid\":"), "{body}");
    assert_eq!(auth, r#"42["auth",{}]"#);
    let payload =
        b"42[\"message\",1]\x1e451-[\"message\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID";
    assert_eq!(post(addr, &url, payload).await.0, 200);
    let (_, body) = get(addr, &url).await;
    assert_eq!(
        body,
        "42[\"message-back\",1]\x1e451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"
    );
}

#[tokio::test]
async fn concurrent_polls_close_the_session() {
    let (_io, addr, _t) = io_server(fast()).await;
    let (sid, _) = polling_session(addr, BASE).await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let first = tokio::spawn(async move { get(addr, &url).await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(get(addr, &url).await.0, 400);
    assert_eq!(first.await.unwrap(), (200, "1".into()));
    assert_eq!(get(addr, &url).await.0, 400);
}

#[tokio::test]
async fn upgrade_probe_then_websocket_carries_the_session() {
    let (_io, addr, _t) = io_server(fast()).await;
    let (sid, _) = polling_session(addr, BASE).await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let mut ws = ws_connect(
        addr,
        &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
    )
    .await
    .unwrap();
    ws.send("2probe").await;
    assert_eq!(ws.text().await, "3probe");
    assert_eq!(get(addr, &url).await, (200, "6".into()));
    ws.send("5").await;
    ws.send("40").await;
    assert!(ws.text().await.starts_with("40{"));
    assert_eq!(ws.text().await, r#"42["auth",{}]"#);
    // The polling side is now refused, and so is a second WebSocket.
    assert_eq!(get(addr, &url).await.0, 400);
    let mut again = ws_connect(
        addr,
        &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
    )
    .await
    .unwrap();
    assert!(again.closed().await);
}

#[tokio::test]
async fn websocket_without_pong_is_closed() {
    let (io, addr, _t) = io_server(fast()).await;
    let mut ws = ws_session(addr).await;
    ws.send("40").await;
    let started = std::time::Instant::now();
    assert!(ws.closed().await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(io.socket_count(), 0);
    assert_eq!(io.connection_count(), 0);
}

#[tokio::test]
async fn websocket_answering_pongs_stays_open() {
    let (io, addr, _t) = io_server(fast()).await;
    let mut ws = ws_session(addr).await;
    ws.send("40").await;
    let mut pings = 0;
    while pings < 3 {
        if let Msg::Text(t) = ws.recv().await {
            if t == "2" {
                pings += 1;
                ws.send("3").await;
            }
        }
    }
    assert_eq!(io.socket_count(), 1);
}

#[tokio::test]
async fn polling_without_pong_is_closed() {
    let (_io, addr, _t) = io_server(fast()).await;
    let (sid, _) = polling_session(addr, BASE).await;
    tokio::time::sleep(Duration::from_millis(520)).await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(get(addr, &url).await.0, 400);
}

#[tokio::test]
async fn payload_limit_is_enforced() {
    let (_io, addr, _t) = io_server(fast().max_payload(100)).await;
    let (sid, v) = polling_session(addr, BASE).await;
    assert_eq!(v["maxPayload"], 100);
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let big = format!("4{}", "x".repeat(200));
    assert_eq!(post(addr, &url, big.as_bytes()).await.0, 400);
    assert_eq!(get(addr, &url).await.0, 400);

    let mut ws = ws_session(addr).await;
    ws.send(&big).await;
    assert!(ws.closed().await);
}

#[tokio::test]
async fn malformed_packets_close_without_panicking() {
    let (_io, addr, _t) = io_server(fast()).await;
    for bad in ["abc", "4abc", "42{}", "42abc[\"m\"]", "", "\u{1e}"] {
        let mut ws = ws_session(addr).await;
        ws.send(bad).await;
        assert!(ws.closed().await, "{bad:?}");
    }
    // The server still works.
    let (_sid, _) = polling_session(addr, BASE).await;
}

#[tokio::test]
async fn polling_sessions_count_against_the_connection_cap() {
    let (io, addr, _t) = io_server(fast().max_connections(2)).await;
    // Each handshake is its own HTTP connection, closed after the answer: only the sessions
    // remain open, and they are what the cap counts.
    let (first, _) = polling_session(addr, BASE).await;
    let _second = polling_session(addr, BASE).await;
    assert_eq!(io.connection_count(), 2);
    let (status, body) = get(addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, 503, "{body}");
    assert!(ws_connect(addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .is_none());
    // Closing a session frees its slot.
    let (status, _) = post(
        addr,
        &format!("{BASE}?EIO=4&transport=polling&sid={first}"),
        b"1",
    )
    .await;
    assert_eq!(status, 200);
    for _ in 0..100 {
        if io.connection_count() < 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _third = polling_session(addr, BASE).await;
}
