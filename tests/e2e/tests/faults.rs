//! The fault suite: under steady send load, SIGKILL the worker, restart PostgreSQL, restart
//! Redis (append-only file on), restart a chat instance. Afterwards every send answered 201
//! or 202 is stored exactly once, every service answers ready again without being restarted
//! by hand, and a realtime client (the official one) has reconnected and caught up.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::servers::{Postgres, Redis};
use e2e::Stack;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_survive_worker_database_redis_and_chat_restarts() {
    let pg = Postgres::start();
    let mut redis = Redis::start();
    let mut s = Stack::empty_on(pg.admin_url(), redis.url()).await;
    s.chat_env.push(("SEND_WAIT_MS".into(), "500".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[("REQUEST_TIMEOUT_MS", "3000")]).await;
    let conv = s.group(&["a", "b", "watcher"]).await;

    // The realtime client, through the gateway.
    let node_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../node");
    let follower = Command::new("node")
        .arg("follower.mjs")
        .current_dir(&node_dir)
        .env("GATEWAY_URL", s.url())
        .env("CONVERSATION_ID", &conv)
        .env("USER_ID", "watcher")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");

    // Steady load: 8 senders, half asking for 202s, every send with its own clientMessageId.
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/conversations/{conv}/messages", s.url());
    let senders: Vec<_> = (0..8)
        .map(|w| {
            let (http, url, stop) = (s.http.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                let mut other = HashMap::<String, u64>::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let mut req = http
                        .post(&url)
                        .timeout(Duration::from_secs(5))
                        .json(&json!({"senderId": if w % 2 == 0 { "a" } else { "b" }, "body": format!("{w}-{i}"), "clientMessageId": format!("{w}-{i}")}));
                    if w % 2 == 0 {
                        req = req.header("prefer", "respond-async");
                    }
                    match req.send().await {
                        Ok(r) if r.status() == 201 || r.status() == 202 => {
                            let v: serde_json::Value = r.json().await.unwrap();
                            accepted.push(v["id"].as_str().unwrap().to_string());
                        }
                        Ok(r) => *other.entry(r.status().to_string()).or_default() += 1,
                        Err(_) => *other.entry("no answer".into()).or_default() += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (accepted, other)
            })
        })
        .collect();

    let pause = || tokio::time::sleep(Duration::from_millis(1500));
    pause().await;
    // 1. The worker dies mid-batch; a new one takes over its pending entries.
    s.workers.remove(0).kill();
    pause().await;
    s.start_worker().await;
    pause().await;
    // 2. PostgreSQL restarts: connections drop, in-flight transactions roll back.
    pg.restart();
    pause().await;
    // 3. Redis restarts (clean shutdown, append-only file reloaded).
    redis.restart();
    pause().await;
    // 4. The chat instance behind the gateway restarts.
    let chat = s.chat.take().unwrap();
    let port = chat.port;
    let status = tokio::task::spawn_blocking(move || chat.terminate())
        .await
        .unwrap();
    assert!(status.success(), "chat did not stop cleanly: {status}");
    s.start_chat_on(port).await;
    pause().await;
    stop.store(true, Ordering::Relaxed);

    let mut accepted = HashSet::new();
    let mut refused: HashMap<String, u64> = HashMap::new();
    for t in senders {
        let (ids, other) = t.await.unwrap();
        accepted.extend(ids);
        for (k, v) in other {
            *refused.entry(k).or_default() += v;
        }
    }
    println!(
        "accepted {} sends; refused or unanswered: {refused:?}",
        accepted.len()
    );
    assert!(
        accepted.len() > 200,
        "too little load got through: {}",
        accepted.len()
    );

    // Every accepted send stored exactly once.
    let db = s.db().await;
    let stored_ids = || async {
        db.query("SELECT id::text FROM messages", &[])
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    s.eventually(
        "every accepted send stored",
        Duration::from_secs(60),
        || async {
            let stored: HashSet<String> = stored_ids().await.into_iter().collect();
            accepted.is_subset(&stored)
        },
    )
    .await;
    let all = stored_ids().await;
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), unique.len());
    let dupes: i64 = db
        .query_one(
            "SELECT count(*) FROM (SELECT 1 FROM messages GROUP BY conversation_id, sender_id, client_message_id HAVING count(*) > 1) d",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dupes, 0, "a send was stored twice");

    // Every service recovered by itself.
    for svc in [
        s.chat.as_ref().unwrap(),
        &s.workers[0],
        s.gateway.as_ref().unwrap(),
    ] {
        let r = s
            .http
            .get(format!("{}/readyz", svc.url()))
            .send()
            .await
            .unwrap();
        let code = r.status();
        // The gateway's readiness includes the call service, which this stack does not run.
        if svc.name != "gateway" {
            assert_eq!(code, 200, "{} not ready after the faults", svc.name);
        }
    }

    // Realtime delivery works again: sends made after the faults must reach the client as
    // events (its HTTP catch-up could otherwise account for every message on its own).
    let mut after_faults = Vec::new();
    for i in 0..10 {
        let r = s
            .http
            .post(&url)
            .json(&json!({"senderId": "a", "body": format!("after-{i}"), "clientMessageId": format!("after-{i}")}))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 201 || r.status() == 202,
            "a send after the faults: {}",
            r.status()
        );
        let v: serde_json::Value = r.json().await.unwrap();
        after_faults.push(v["id"].as_str().unwrap().to_string());
    }
    let all: Vec<String> = all
        .into_iter()
        .chain(after_faults.iter().cloned())
        .collect();

    // The realtime client reconnected and caught up with everything stored.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(follower.id().to_string())
        .status();
    let out = follower.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        let head: String = String::from_utf8_lossy(&out.stdout)
            .chars()
            .take(300)
            .collect();
        panic!(
            "no report from the follower ({e}; {}): {head}... {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        report["connects"].as_u64().unwrap() >= 2,
        "the client never reconnected: {report}"
    );
    let seen: HashSet<String> = report["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let stored: HashSet<String> = all.into_iter().collect();
    let missing = stored.difference(&seen).count();
    assert_eq!(
        missing,
        0,
        "the client missed {missing} of {} messages",
        stored.len()
    );
    assert!(
        seen.is_subset(&stored),
        "the client saw messages that are not stored"
    );
    let events: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for id in &after_faults {
        let n = events.iter().filter(|e| **e == id.as_str()).count();
        assert_eq!(
            n, 1,
            "message {id}, sent after the faults, arrived as an event {n} times"
        );
    }
    println!(
        "the client saw {} messages, {} of them through events",
        seen.len(),
        events.len()
    );
}
