//! The gateway's own behaviour (upstream failures, request ids, CORS), graceful shutdown,
//! and configuration errors.

use std::process::Command;
use std::time::Duration;

use e2e::Stack;
use serde_json::json;

#[tokio::test]
async fn upstream_down_is_502_and_silent_upstream_is_504() {
    let mut s = Stack::empty().await;
    // A "call service" that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
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
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "http://localhost:8080"
    );
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
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:8080"
    );
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
