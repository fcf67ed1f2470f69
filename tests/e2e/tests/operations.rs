//! What operators see: Prometheus metrics on every service (on its metrics port, not its
//! public one), and poison entries moved to the dead-letter stream (listed by the worker)
//! without blocking the stream.

use std::time::Duration;

use e2e::Stack;
use serde_json::json;

async fn metrics(s: &Stack, svc: &e2e::Service) -> String {
    let r = s.http.get(svc.metrics_url()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    r.text().await.unwrap()
}

/// The value of the first series whose line starts with `prefix`.
fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {prefix} in:\n{text}"))
}

/// Puts `data` on the message stream as a producer would, behind the chat service's back.
async fn queue(s: &Stack, data: &str) {
    let _: String = redis::cmd("XADD")
        .arg(format!("{}:messages", s.namespace))
        .arg("*")
        .arg("d")
        .arg(data)
        .query_async(&mut s.redis().await)
        .await
        .unwrap();
}

/// The worker's dead-letter listing.
async fn dead_letters(s: &Stack) -> serde_json::Value {
    s.http
        .get(format!("{}/dead-letters", s.workers[0].url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_service_exposes_metrics() {
    let s = Stack::start().await;
    let g = s.group(&["a", "b"]).await;
    s.send_messages(&g, "a", 5).await;
    s.get("/conversations/not-a-uuid").await.assert_error(400);

    let gw = metrics(&s, s.gateway.as_ref().unwrap()).await;
    assert!(
        value(
            &gw,
            "http_requests_total{service=\"gateway\",route=\"chat\",status=\"2xx\"}"
        ) >= 6.0
    );
    assert_eq!(
        value(
            &gw,
            "http_requests_total{service=\"gateway\",route=\"chat\",status=\"4xx\"}"
        ),
        1.0
    );
    let chat = metrics(&s, s.chat.as_ref().unwrap()).await;
    assert_eq!(
        value(
            &chat,
            "http_requests_total{service=\"chat\",route=\"send_message\",status=\"2xx\"}"
        ),
        5.0
    );
    assert_eq!(
        value(
            &chat,
            "http_request_duration_seconds_count{service=\"chat\",route=\"send_message\"}"
        ),
        5.0
    );
    assert_eq!(value(&chat, "socketio_sockets{service=\"chat\"}"), 0.0);
    let worker = metrics(&s, &s.workers[0]).await;
    assert_eq!(
        value(&worker, "worker_messages_stored_total{service=\"worker\"}"),
        5.0
    );
    assert!(value(&worker, "worker_batches_total{service=\"worker\"}") >= 1.0);
    assert!(worker.contains("stream_lag_milliseconds{service=\"worker\"}"));
    assert_eq!(
        value(&worker, "worker_batch_size_sum{service=\"worker\"}"),
        5.0
    );
    let call = metrics(&s, s.call.as_ref().unwrap()).await;
    assert!(call.contains("http_requests_total{service=\"call\",route=\"readyz\",status=\"2xx\"}"));
}

/// `/metrics` is not on any public port: it tells an outsider traffic, routes and load.
#[tokio::test]
async fn metrics_are_not_served_on_public_ports() {
    let s = Stack::start().await;
    let gw = s.get("/metrics").await;
    gw.assert_error(404);
    for svc in [
        s.chat.as_ref().unwrap(),
        s.call.as_ref().unwrap(),
        &s.workers[0],
    ] {
        let r = s
            .http
            .get(format!("{}/metrics", svc.url()))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 401 || r.status() == 404,
            "{} answered {} on its public port",
            svc.name,
            r.status()
        );
        assert!(!r.text().await.unwrap().contains("http_requests_total"));
    }
    // The metrics port is loopback by default: the harness's METRICS_PORT is all it sets.
    assert!(metrics(&s, s.gateway.as_ref().unwrap())
        .await
        .contains("gateway_shed_total"));
}

#[tokio::test]
async fn poison_entries_are_dead_lettered_without_blocking_the_stream() {
    let s = Stack::start().await;
    let g = s.group(&["a", "b"]).await;
    // Unreadable, and well-formed but for a conversation that does not exist.
    queue(&s, "{not json").await;
    let ghost = json!({"op": "create", "id": uuid::Uuid::now_v7(), "conversationId": uuid::Uuid::now_v7(),
        "senderId": "a", "body": "to nowhere", "sentAt": "2026-11-23T22:11:47.123Z", "editedAt": null});
    queue(&s, &ghost.to_string()).await;
    // Real sends queued around them are stored.
    let sent = s
        .post(
            &format!("/conversations/{g}/messages"),
            json!({"senderId": "a", "body": "fine"}),
        )
        .await;
    assert_eq!(sent.status, 201);

    s.eventually(
        "two dead letters listed",
        Duration::from_secs(10),
        || async {
            let list = dead_letters(&s).await;
            list.as_array().is_some_and(|l| l.len() == 2)
        },
    )
    .await;
    let list = dead_letters(&s).await;
    let reasons: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("unreadable")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("foreign key")),
        "{reasons:?}"
    );
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["entry"].as_str().unwrap().contains("to nowhere")));
    let m = metrics(&s, &s.workers[0]).await;
    assert_eq!(
        value(&m, "worker_dead_letters_total{service=\"worker\"}"),
        2.0
    );
    // Nothing stays pending: the stream moved on.
    s.eventually("no pending entries", Duration::from_secs(10), || async {
        s.pending_entries().await == 0
    })
    .await;
    let stored: i64 = s
        .db()
        .await
        .query_one("SELECT count(*) FROM messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn an_entry_that_keeps_failing_is_dead_lettered_after_its_deliveries() {
    let mut s = Stack::empty().await;
    s.worker_env.push(("MAX_DELIVERIES".into(), "2".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let g = s.group(&["a", "b"]).await;
    // An edit of a message that is marked queued but never arrives: the worker keeps it
    // pending, waiting for the message, until it gives up.
    let id = uuid::Uuid::now_v7();
    let mut r = s.redis().await;
    let _: () = redis::cmd("SET")
        .arg(format!("{}:pending:{id}", s.namespace))
        .arg("{}")
        .query_async(&mut r)
        .await
        .unwrap();
    let edit = json!({"op": "edit", "id": id, "conversationId": g, "body": "never", "at": "2026-11-23T22:11:47.123Z"});
    queue(&s, &edit.to_string()).await;
    let ok = s
        .post(
            &format!("/conversations/{g}/messages"),
            json!({"senderId": "a", "body": "meanwhile"}),
        )
        .await;
    assert_eq!(ok.status, 201, "the stuck entry does not hold up others");

    s.eventually(
        "dead-lettered after 2 deliveries",
        Duration::from_secs(20),
        || async {
            let list = dead_letters(&s).await;
            list.as_array().is_some_and(|l| {
                l.iter()
                    .any(|e| e["reason"].as_str().unwrap_or("").contains("deliveries"))
            })
        },
    )
    .await;
    let m = metrics(&s, &s.workers[0]).await;
    assert_eq!(
        value(&m, "worker_dead_letters_total{service=\"worker\"}"),
        1.0
    );
}
