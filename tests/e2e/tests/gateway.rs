//! The gateway's own behaviour (upstream failures, request ids, CORS), graceful shutdown,
//! and configuration errors.

use std::process::Command;
use std::time::Duration;

use e2e::{answers_within, Stack};
use serde_json::json;

/// An upstream that accepts connections and never answers; returns its URL.
async fn silent_upstream() -> String {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    url
}

#[tokio::test]
async fn upstream_down_is_502_and_silent_upstream_is_504() {
    let mut s = Stack::empty().await;
    // A "call service" that never answers.
    let silent_url = silent_upstream().await;
    s.start_gateway(&[
        ("CALL_SERVICE_URL", &silent_url),
        ("REQUEST_TIMEOUT_MS", "300"),
    ])
    .await;
    // No chat service is running: 502 in the contract's shape.
    s.get("/conversations/user/u1").await.assert_error(502);
    s.get("/calls/conversation/x").await.assert_error(504);
    let ready = s.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["chat"], "down");
}

#[tokio::test]
async fn statuses_bodies_and_request_ids_pass_through() {
    let s = Stack::start().await;
    let r = s
        .http
        .get(format!(
            "{}/conversations/{}",
            s.url(),
            uuid::Uuid::now_v7()
        ))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");
    e2e::Reply::from(r).await.assert_error(404);
    let fresh = s.get("/conversations/user/u1").await;
    assert_eq!(fresh.status, 200);
    assert!(fresh.header("x-request-id").is_some_and(|id| id.len() > 8));
    let direct = s
        .http
        .get(format!("{}/healthz", s.chat.as_ref().unwrap().url()))
        .send()
        .await
        .unwrap();
    assert!(
        direct.headers().contains_key("x-request-id"),
        "services set request ids too"
    );
    assert_eq!(s.get("/readyz").await.status, 200, "every upstream is up");
    assert_eq!(s.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let s = Stack::start().await;
    let pre = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/conversations", s.url()),
        )
        .header("origin", "http://localhost:8080")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    // The default `CORS_ORIGINS=*`: a literal `*`, never the origin echoed with credentials.
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert!(pre.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PATCH"));
    let g = s.group(&["a", "b"]).await;
    let r = s
        .http
        .get(format!("{}/conversations/{g}", s.url()))
        .header("origin", "http://localhost:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("x-request-id"));
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let mut s = Stack::empty().await;
    // No worker: a send waits the whole SEND_WAIT before its 202.
    s.chat_env.push(("SEND_WAIT_MS".into(), "1500".into()));
    s.start_chat().await;
    s.start_gateway(&[]).await;
    let g = s.group(&["a", "b"]).await;
    let url = format!("{}/conversations/{g}/messages", s.url());
    let http = s.http.clone();
    let pending = tokio::spawn(async move {
        http.post(url)
            .json(&json!({"senderId": "a", "body": "in flight"}))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let chat = s.chat.take().unwrap();
    let status = tokio::task::spawn_blocking(move || chat.terminate())
        .await
        .unwrap();
    assert!(status.success(), "chat exited with {status}");
    let r = pending.await.unwrap().expect("in-flight request answered");
    assert_eq!(r.status(), 202);
}

#[test]
fn bad_configuration_exits_non_zero_naming_the_variable() {
    for (bin, var, value) in [
        ("chat", "PORT", "not-a-port"),
        ("chat", "CHAT_DATABASE_URL", "mysql://x"),
        ("worker", "BATCH_MAX", "0"),
        ("gateway", "CHAT_SERVICE_URL", "ftp://x"),
        ("gateway", "REQUEST_TIMEOUT_MS", "soon"),
    ] {
        let out = Command::new(e2e::bin(bin))
            .env(var, value)
            .env("PORT", if var == "PORT" { value } else { "0" })
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bin} {var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var), "{bin}: {err}");
    }
}

/// Opens a raw WebSocket upgrade to `/socket.io/` and returns the open stream.
async fn websocket(port: u16) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

#[tokio::test]
async fn websocket_connections_count_against_the_connection_cap() {
    let mut s = Stack::empty().await;
    // The readiness probe's keep-alive connection stays open: it holds the first slot.
    s.chat_env.push(("MAX_CONNECTIONS".into(), "3".into()));
    s.start_chat().await;
    let chat = s.chat.as_ref().unwrap();
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let first = websocket(chat.port).await;
    let _second = websocket(chat.port).await;
    // At the cap the listener stops accepting: the request waits unanswered until the
    // client gives up. Any other outcome (an answer, a refused or reset connection) is not
    // the cap at work.
    match fresh.get(format!("{}/healthz", chat.url())).send().await {
        Ok(r) => panic!(
            "a third connection was served beyond the cap of 2: {}",
            r.status()
        ),
        Err(e) => assert!(e.is_timeout(), "expected a wait at the cap, got: {e}"),
    }
    drop(first);
    let served = answers_within(&fresh, &format!("{}/healthz", chat.url()), 20).await;
    assert!(
        served,
        "closing a websocket did not free its connection slot"
    );
}

#[tokio::test]
async fn past_capacity_the_gateway_sheds_load_at_once() {
    let mut s = Stack::empty().await;
    let silent_url = silent_upstream().await;
    s.start_gateway(&[
        ("CALL_SERVICE_URL", &silent_url),
        ("REQUEST_TIMEOUT_MS", "2000"),
        ("MAX_IN_FLIGHT", "2"),
    ])
    .await;
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let (http, url) = (
                s.http.clone(),
                format!("{}/calls/{}", s.url(), uuid::Uuid::now_v7()),
            );
            tokio::spawn(async move { http.get(url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let shed = s.get(&format!("/calls/{}", uuid::Uuid::now_v7())).await;
    shed.assert_error(503);
    assert_eq!(shed.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "shedding took {:?}",
        started.elapsed()
    );
    for t in stuck {
        assert_eq!(t.await.unwrap().unwrap(), 504);
    }
    // Capacity is back once they finished.
    let after = s.get(&format!("/calls/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(after.status, 504);
    let url = s.gateway.as_ref().unwrap().metrics_url();
    assert_eq!(s.metric(&url, "gateway_shed_total").await, 1.0);
}
