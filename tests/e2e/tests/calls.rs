//! The call service through the gateway: lifecycle, status rules, signals, restarts and the
//! missed-call timeout.

use std::time::Duration;

use e2e::{members, Stack};
use serde_json::{json, Value};

async fn start_call(s: &Stack, conv: &str, users: &[&str]) -> String {
    let r = s
        .post(
            "/calls",
            json!({"conversationId": conv, "type": "video", "participants": members(users)}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn signal(s: &Stack, call: &str, kind: &str, body: Value) -> e2e::Reply {
    s.post(&format!("/calls/{call}/signals/{kind}"), body).await
}

async fn set_status(s: &Stack, call: &str, status: &str) -> e2e::Reply {
    s.call(
        "PATCH",
        &format!("/calls/{call}/status"),
        Some(json!({"status": status})),
    )
    .await
}

#[tokio::test]
async fn call_lifecycle_and_status_rules() {
    let s = Stack::start().await;
    let conv = s.group(&["a", "b", "c"]).await;
    let started = s
        .post(
            "/calls",
            json!({"conversationId": conv, "type": "audio", "participants": members(&["a", "b"])}),
        )
        .await;
    assert_eq!(started.status, 201);
    let call = started.body["id"].as_str().unwrap().to_string();
    assert_eq!(started.body["status"], "ringing");
    assert_eq!(started.body["type"], "audio");
    assert!(started.body.get("endedAt").is_none());
    assert_eq!(started.body["participants"], members(&["a", "b"]));

    let same = set_status(&s, &call, "ringing").await;
    assert_eq!(
        same.status, 200,
        "setting the current status again is a no-op"
    );
    let active = set_status(&s, &call, "active").await;
    assert_eq!(active.status, 200);
    assert_eq!(
        active.body["status"], "in_progress",
        "active is another name for in_progress"
    );
    assert_eq!(set_status(&s, &call, "in_progress").await.status, 200);
    set_status(&s, &call, "ringing").await.assert_error(409);
    set_status(&s, &call, "declined").await.assert_error(409);
    let ended = set_status(&s, &call, "ended").await;
    assert_eq!(ended.status, 200);
    assert!(ended.body["endedAt"].is_string());
    for next in ["in_progress", "ringing", "missed"] {
        set_status(&s, &call, next).await.assert_error(409);
    }
    assert_eq!(set_status(&s, &call, "ended").await.status, 200);

    let declined = start_call(&s, &conv, &["b", "c"]).await;
    let d = set_status(&s, &declined, "declined").await;
    assert_eq!(d.body["status"], "declined");
    assert!(d.body["endedAt"].is_string());
    set_status(&s, &declined, "ended").await.assert_error(409);

    let list = s.get(&format!("/calls/conversation/{conv}")).await;
    assert_eq!(list.status, 200);
    let ids: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![call.as_str(), declined.as_str()], "oldest first");
    let one = s.get(&format!("/calls/{call}")).await;
    assert_eq!(one.body["status"], "ended");
}

#[tokio::test]
async fn call_client_errors() {
    let s = Stack::start().await;
    let conv = s.group(&["a", "b"]).await;
    let unknown = uuid::Uuid::now_v7();
    s.post(
        "/calls",
        json!({"conversationId": unknown, "type": "video", "participants": members(&["a"])}),
    )
    .await
    .assert_error(404);
    for bad in [
        json!({"conversationId": conv, "type": "video", "participants": members(&["a", "z"])}),
        json!({"conversationId": conv, "type": "hologram", "participants": members(&["a"])}),
        json!({"conversationId": conv, "type": "video", "participants": []}),
        json!({"conversationId": "nope", "type": "video", "participants": members(&["a"])}),
        json!({"conversationId": conv, "type": "video", "participants": members(&["a", "a"])}),
    ] {
        s.post("/calls", bad).await.assert_error(400);
    }
    s.get(&format!("/calls/{unknown}")).await.assert_error(404);
    s.get("/calls/not-a-uuid").await.assert_error(400);
    s.get(&format!("/calls/conversation/{unknown}"))
        .await
        .assert_error(404);
    set_status(&s, &unknown.to_string(), "ended")
        .await
        .assert_error(404);
    let call = start_call(&s, &conv, &["a", "b"]).await;
    set_status(&s, &call, "paused").await.assert_error(400);

    for (kind, bad) in [
        (
            "offer",
            json!({"senderId": "a", "payload": {"type": "answer", "sdp": "v=0"}}),
        ),
        ("offer", json!({"senderId": "a", "payload": "v=0"})),
        (
            "answer",
            json!({"senderId": "b", "payload": {"type": "answer"}}),
        ),
        ("ice", json!({"senderId": "a", "payload": {"sdpMid": "0"}})),
        (
            "ice",
            json!({"senderId": "a", "payload": {"candidate": "c", "sdpMLineIndex": "zero"}}),
        ),
        (
            "offer",
            json!({"senderId": "z", "payload": {"type": "offer", "sdp": "v=0"}}),
        ),
        (
            "offer",
            json!({"senderId": "a", "targetId": "z", "payload": {"type": "offer", "sdp": "v=0"}}),
        ),
    ] {
        signal(&s, &call, kind, bad).await.assert_error(400);
    }
    signal(&s, &call, "shout", json!({"senderId": "a", "payload": {}}))
        .await
        .assert_error(404);
    s.post(
        &format!("/calls/{unknown}/signals/offer"),
        json!({"senderId": "a", "payload": {"type": "offer", "sdp": "v=0"}}),
    )
    .await
    .assert_error(404);
    s.get(&format!("/calls/{call}/signals/ice?after=yesterday"))
        .await
        .assert_error(400);

    set_status(&s, &call, "ended").await;
    signal(
        &s,
        &call,
        "ice",
        json!({"senderId": "a", "payload": {"candidate": "c"}}),
    )
    .await
    .assert_error(409);
}

#[tokio::test]
async fn signals_are_ordered_incremental_and_bounded() {
    let mut s = Stack::empty().await;
    s.start_chat().await;
    s.start_call(&[("MAX_SIGNALS_PER_CALL", "30")]).await;
    s.start_gateway(&[]).await;
    let conv = s.group(&["a", "b"]).await;
    let call = start_call(&s, &conv, &["a", "b"]).await;
    let offer = json!({"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"});
    let r = s
        .post(
            &format!("/calls/{call}/signals/offer"),
            json!({"senderId": "a", "targetId": "b", "payload": offer}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body, json!({"status": "ok"}));
    for i in 0..20 {
        let r = s
            .post(&format!("/calls/{call}/signals/ice"), json!({"senderId": "a", "payload": {"candidate": format!("candidate:{i}"), "sdpMid": "0", "sdpMLineIndex": 0}}))
            .await;
        assert_eq!(r.status, 201);
    }
    let offers = s.get(&format!("/calls/{call}/signals/offer")).await.body;
    assert_eq!(offers[0]["payload"], offer);
    assert_eq!(offers[0]["senderId"], "a");
    let ice = s.get(&format!("/calls/{call}/signals/ice")).await.body;
    let ice = ice.as_array().unwrap();
    assert_eq!(ice.len(), 20);
    for (i, c) in ice.iter().enumerate() {
        assert_eq!(
            c["payload"]["candidate"],
            format!("candidate:{i}"),
            "in order"
        );
    }
    // ?after= returns exactly the newer ones, even for signals sent within one millisecond.
    let cut = ice[9]["createdAt"].as_str().unwrap();
    let newer = s
        .get(&format!("/calls/{call}/signals/ice?after={cut}"))
        .await
        .body;
    assert_eq!(newer.as_array().unwrap().len(), 10);
    assert_eq!(newer[0]["payload"]["candidate"], "candidate:10");
    // Storage is bounded per call.
    let mut refused = 0;
    for i in 0..15 {
        let r = s
            .post(
                &format!("/calls/{call}/signals/ice"),
                json!({"senderId": "b", "payload": {"candidate": format!("late:{i}")}}),
            )
            .await;
        if r.status == 409 {
            refused += 1;
        }
    }
    assert_eq!(refused, 6, "30 signals at most: 21 stored, 9 more accepted");
}

#[tokio::test]
async fn a_call_survives_a_restart_of_the_call_service() {
    let s0 = Stack::start().await;
    let mut s = s0;
    let conv = s.group(&["a", "b"]).await;
    let call = start_call(&s, &conv, &["a", "b"]).await;
    assert_eq!(set_status(&s, &call, "in_progress").await.status, 200);
    let r = s
        .post(
            &format!("/calls/{call}/signals/offer"),
            json!({"senderId": "a", "payload": {"type": "offer", "sdp": "v=0"}}),
        )
        .await;
    assert_eq!(r.status, 201);

    let old = s.call.take().unwrap();
    let port = old.port;
    old.kill();
    s.get(&format!("/calls/{call}")).await.assert_error(502);
    s.start_call_on(port).await;
    let again = s.get(&format!("/calls/{call}")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["status"], "in_progress");
    assert_eq!(
        s.get(&format!("/calls/{call}/signals/offer"))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(set_status(&s, &call, "ended").await.status, 200);
}

#[tokio::test]
async fn a_call_left_ringing_becomes_missed() {
    let mut s = Stack::empty().await;
    s.start_chat().await;
    s.start_call(&[("RING_TIMEOUT_MS", "600")]).await;
    s.start_gateway(&[]).await;
    let conv = s.group(&["a", "b"]).await;
    let ringing = start_call(&s, &conv, &["a", "b"]).await;
    let answered = start_call(&s, &conv, &["a", "b"]).await;
    assert_eq!(set_status(&s, &answered, "in_progress").await.status, 200);
    assert_eq!(
        s.get(&format!("/calls/{ringing}")).await.body["status"],
        "ringing"
    );
    s.eventually(
        "the ringing call is missed",
        Duration::from_secs(10),
        || async { s.get(&format!("/calls/{ringing}")).await.body["status"] == "missed" },
    )
    .await;
    let missed = s.get(&format!("/calls/{ringing}")).await.body;
    assert!(missed["endedAt"].is_string());
    assert_eq!(
        s.get(&format!("/calls/{answered}")).await.body["status"],
        "in_progress",
        "answered calls are left alone"
    );
    set_status(&s, &ringing, "in_progress")
        .await
        .assert_error(409);
}
