//! Durable sends: paging under concurrent sends, idempotent retries, edits right after async
//! sends, sends while the worker is down, and a worker killed mid-batch.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use e2e::Stack;
use futures_util::future::join_all;
use serde_json::{json, Value};

async fn stored_count(s: &Stack) -> i64 {
    s.db()
        .await
        .query_one("SELECT count(*) FROM messages", &[])
        .await
        .unwrap()
        .get(0)
}

fn page_ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn paging_while_sending_never_skips_or_repeats() {
    let s = Arc::new(Stack::start().await);
    let g = s.group(&["a", "b"]).await;
    // Something to page over before the writers start.
    s.send_messages(&g, "a", 30).await;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let s = s.clone();
            let g = g.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    let r = s
                        .post(
                            &format!("/conversations/{g}/messages"),
                            json!({"senderId": "b", "body": format!("w{w}-{i}")}),
                        )
                        .await;
                    assert!(r.status == 201 || r.status == 202, "{:?}", r.body);
                }
            })
        })
        .collect();

    // Forward reader: follows `after` cursors while the writers run.
    let first = s.get(&format!("/conversations/{g}/messages?limit=5")).await;
    let first_ids = page_ids(&first.body);
    let oldest_seen = first_ids[0].clone();
    let mut forward = first_ids.clone();
    let mut cursor = forward.last().unwrap().clone();
    let mut writers_done = false;
    let mut quiet_rounds = 0;
    while quiet_rounds < 3 {
        let page = s
            .get(&format!(
                "/conversations/{g}/messages?limit=7&after={cursor}"
            ))
            .await;
        assert_eq!(page.status, 200);
        let ids = page_ids(&page.body);
        if let Some(last) = ids.last() {
            cursor = last.clone();
        }
        if ids.is_empty() && writers_done {
            quiet_rounds += 1;
        }
        forward.extend(ids);
        if !writers_done && writers.iter().all(|w| w.is_finished()) {
            writers_done = true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for w in writers {
        w.await.unwrap();
    }

    // Backward reader: from the newest page back with `before` and the Link header.
    let mut backward: Vec<String> = Vec::new();
    let mut next = Some(format!("/conversations/{g}/messages?limit=9"));
    while let Some(path) = next.take() {
        let page = s.get(&path).await;
        let mut ids = page_ids(&page.body);
        ids.extend(backward);
        backward = ids;
        next = page.header("link").and_then(|l| {
            l.split(',').find(|p| p.contains("rel=\"prev\"")).map(|p| {
                let start = p.find('<').unwrap() + 1;
                let end = p.find('>').unwrap();
                p[start..end].to_string()
            })
        });
    }

    let all = s
        .get(&format!("/conversations/{g}/messages?limit=500"))
        .await;
    let all = page_ids(&all.body);
    assert_eq!(all.len(), 30 + 8 * 40);
    assert_eq!(
        backward, all,
        "backward paging differs from the full listing"
    );
    let start = all.iter().position(|id| *id == oldest_seen).unwrap();
    assert_eq!(
        forward,
        all[start..].to_vec(),
        "forward paging skipped or repeated a message"
    );
    assert_eq!(forward.iter().collect::<HashSet<_>>().len(), forward.len());
}

#[tokio::test]
async fn retries_with_a_client_message_id_store_one_message() {
    let s = Arc::new(Stack::start().await);
    let g = s.group(&["a", "b"]).await;
    let path = format!("/conversations/{g}/messages");
    let body = json!({"senderId": "a", "body": "once", "clientMessageId": "c-42"});
    let replies = join_all((0..10).map(|_| s.post(&path, body.clone()))).await;
    let ids: HashSet<String> = replies
        .iter()
        .map(|r| r.body["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "retries produced different messages");
    assert_eq!(
        replies.iter().filter(|r| r.status == 201).count(),
        1,
        "exactly the first is created"
    );
    assert!(replies.iter().all(|r| [200, 201].contains(&r.status)));
    // The same id from another sender, or in another conversation, is another message.
    let other = s
        .post(
            &path,
            json!({"senderId": "b", "body": "mine", "clientMessageId": "c-42"}),
        )
        .await;
    assert_eq!(other.status, 201);
    assert_ne!(
        other.body["id"].as_str().unwrap(),
        ids.iter().next().unwrap()
    );
    // A retry after the original was edited returns it as stored now.
    let id = ids.iter().next().unwrap();
    s.call(
        "PATCH",
        &format!("{path}/{id}"),
        Some(json!({"body": "edited"})),
    )
    .await;
    let later = s.post(&path, body).await;
    assert_eq!(later.status, 200);
    assert_eq!(later.body["body"], "edited");
    assert_eq!(stored_count(&s).await, 2);
}

#[tokio::test]
async fn edit_and_delete_right_after_async_sends_apply() {
    let s = Stack::start().await;
    let g = s.group(&["a", "b"]).await;
    let path = format!("/conversations/{g}/messages");
    for round in 0..20 {
        let sent = s
            .http
            .post(format!("{}{path}", s.url()))
            .header("prefer", "respond-async")
            .json(&json!({"senderId": "a", "body": format!("draft {round}")}))
            .send()
            .await
            .unwrap();
        let sent = e2e::Reply::from(sent).await;
        assert_eq!(sent.status, 202);
        let id = sent.body["id"].as_str().unwrap();
        if round % 2 == 0 {
            let edit = s
                .call(
                    "PATCH",
                    &format!("{path}/{id}"),
                    Some(json!({"body": format!("final {round}")})),
                )
                .await;
            assert_eq!(edit.status, 200, "{:?}", edit.body);
            assert_eq!(edit.body["body"], format!("final {round}"));
        } else {
            let del = s.call("DELETE", &format!("{path}/{id}"), None).await;
            assert_eq!(del.status, 200, "{:?}", del.body);
        }
    }
    let list = s.get(&format!("{path}?limit=500")).await.body;
    let bodies: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..20).step_by(2).map(|r| format!("final {r}")).collect();
    assert_eq!(bodies, expected);
}

#[tokio::test]
async fn sends_while_the_worker_is_down_are_stored_once_it_starts() {
    let mut s = Stack::empty().await;
    s.chat_env.push(("SEND_WAIT_MS".into(), "300".into()));
    s.start_chat().await;
    s.start_gateway(&[]).await;
    let g = s.group(&["a", "b"]).await;
    let path = format!("/conversations/{g}/messages");
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = s.post(&path, json!({"senderId": "a", "body": format!("queued {i}"), "clientMessageId": format!("q{i}")})).await;
        assert_eq!(r.status, 202, "no worker: accepted, not created");
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    // A retry while still queued returns the queued message, not a second one.
    let retry = s
        .post(
            &path,
            json!({"senderId": "a", "body": "queued 0", "clientMessageId": "q0"}),
        )
        .await;
    assert_eq!(retry.status, 202);
    assert_eq!(retry.body["id"], ids[0].as_str());
    // An edit of a queued message is queued behind it.
    let edit = s
        .call(
            "PATCH",
            &format!("{path}/{}", ids[1]),
            Some(json!({"body": "queued 1, edited"})),
        )
        .await;
    assert_eq!(edit.status, 202, "{:?}", edit.body);
    assert_eq!(edit.body["body"], "queued 1, edited");
    assert_eq!(stored_count(&s).await, 0);

    s.start_worker().await;
    s.eventually("queued sends stored", Duration::from_secs(20), || async {
        stored_count(&s).await == 5
    })
    .await;
    let list = s.get(&path).await.body;
    assert_eq!(page_ids(&list), ids);
    assert_eq!(list[1]["body"], "queued 1, edited");
    assert!(list[1]["editedAt"].is_string());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored_count(&s).await, 5, "stored exactly once");
}

#[tokio::test]
async fn a_worker_killed_mid_batch_loses_nothing_and_stores_nothing_twice() {
    let mut s = Stack::empty().await;
    s.chat_env.push(("SEND_WAIT_MS".into(), "200".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let s = Arc::new(tokio::sync::RwLock::new(s));
    let g = s.read().await.group(&["a", "b"]).await;
    let url = { format!("{}/conversations/{g}/messages", s.read().await.url()) };
    let http = s.read().await.http.clone();

    let senders: Vec<_> = (0..16)
        .map(|w| {
            let http = http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for i in 0..60 {
                    let r = http
                        .post(&url)
                        .header("prefer", "respond-async")
                        .json(&json!({"senderId": "a", "body": format!("{w}-{i}"), "clientMessageId": format!("{w}-{i}")}))
                        .send()
                        .await
                        .unwrap();
                    let r = e2e::Reply::from(r).await;
                    assert_eq!(r.status, 202);
                    accepted.push(r.body["id"].as_str().unwrap().to_string());
                }
                accepted
            })
        })
        .collect();

    // Kill the worker while batches are in flight, twice, starting a new one each time.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let mut guard = s.write().await;
        let w = guard.workers.remove(0);
        w.kill();
        tokio::time::sleep(Duration::from_millis(100)).await;
        guard.start_worker().await;
    }
    let mut accepted = HashSet::new();
    for t in senders {
        accepted.extend(t.await.unwrap());
    }
    assert_eq!(accepted.len(), 16 * 60);
    let s = s.read().await;
    s.eventually(
        "every accepted send stored",
        Duration::from_secs(30),
        || async { stored_count(&s).await >= accepted.len() as i64 },
    )
    .await;
    let db = s.db().await;
    let rows = db
        .query("SELECT id::text FROM messages", &[])
        .await
        .unwrap();
    let stored: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        stored, accepted,
        "stored messages differ from accepted ones"
    );
    // Stored twice would show as a body twice (under another id): the load's bodies are
    // unique, ids are unique by constraint.
    assert_each_body_once(&s, 16 * 60).await;
    // Entries committed but not acknowledged by a killed worker are taken over and settled.
    s.eventually("nothing left pending", Duration::from_secs(15), || async {
        s.pending_entries().await == 0
    })
    .await;
    assert_eq!(
        stored_count(&s).await,
        accepted.len() as i64,
        "a settled entry was stored again"
    );
}

#[tokio::test]
async fn concurrent_sends_share_commits_and_a_lone_send_does_not_wait() {
    let mut s = Stack::empty().await;
    // A lone send must be stored well within this wait, or it would come back 202.
    s.chat_env.push(("SEND_WAIT_MS".into(), "1000".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let g = s.group(&["a", "b"]).await;
    let path = format!("/conversations/{g}/messages");
    let lone = s
        .post(&path, json!({"senderId": "a", "body": "alone"}))
        .await;
    assert_eq!(lone.status, 201);

    // The worker's own count of committed batches: exact, unlike pg_stat_database, which
    // PostgreSQL publishes at most once a second.
    let worker = s.workers[0].metrics_url();
    let batches = || s.metric(&worker, "worker_batches_total");
    let before = batches().await;
    let replies = join_all((0..200).map(|i| {
        s.post(
            &path,
            json!({"senderId": "b", "body": format!("burst {i}")}),
        )
    }))
    .await;
    assert!(replies.iter().all(|r| r.status == 201));
    let spent = batches().await - before;
    assert!(
        spent < 150.0,
        "200 concurrent sends took {spent} batches: no group commit"
    );
    assert_eq!(stored_count(&s).await, 201);
}

#[tokio::test]
async fn services_starting_together_migrate_once() {
    let mut s = Stack::empty().await;
    // Four workers race to migrate the same empty database.
    s.start_workers(4).await;
    let db = s.db().await;
    let row = db
        .query_one(
            "SELECT count(*), max(version)::bigint FROM schema_migrations",
            &[],
        )
        .await
        .unwrap();
    let (applied, newest): (i64, i64) = (row.get(0), row.get(1));
    // Every file of core/migrations (their numbers need not be contiguous), each once: the
    // version is the table's key.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../core/migrations");
    let files: Vec<i64> = std::fs::read_dir(dir)
        .expect("core/migrations")
        .filter_map(|e| e.ok()?.file_name().to_str()?.get(..4)?.parse().ok())
        .collect();
    assert!(applied >= 2);
    assert_eq!(
        applied,
        files.len() as i64,
        "every migration applied exactly once"
    );
    assert_eq!(Some(newest), files.iter().max().copied());
    s.start_chat().await;
    s.start_gateway(&[]).await;
    let g = s.group(&["a", "b"]).await;
    let r = s
        .post(
            &format!("/conversations/{g}/messages"),
            json!({"senderId": "a", "body": "hi"}),
        )
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn sigterm_lets_the_worker_finish_its_batch_and_leave_nothing_pending() {
    let mut s = Stack::empty().await;
    s.chat_env.push(("SEND_WAIT_MS".into(), "300".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let g = s.group(&["a", "b"]).await;
    let url = format!("{}/conversations/{g}/messages", s.url());
    let load: Vec<_> = (0..8)
        .map(|w| {
            let (http, url) = (s.http.clone(), url.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..40 {
                    let r = http
                        .post(&url)
                        .header("prefer", "respond-async")
                        .json(&json!({"senderId": "a", "body": format!("{w}-{i}")}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 202);
                    let v: Value = r.json().await.unwrap();
                    ids.push(v["id"].as_str().unwrap().to_string());
                }
                ids
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let worker = s.workers.remove(0);
    let status = tokio::task::spawn_blocking(move || worker.terminate())
        .await
        .unwrap();
    assert!(status.success(), "worker exited with {status}");
    // Whatever it had read, it stored and acknowledged before leaving.
    assert_eq!(s.pending_entries().await, 0, "entries left pending");
    let mut accepted = HashSet::new();
    for t in load {
        accepted.extend(t.await.unwrap());
    }
    s.start_worker().await;
    s.eventually("all stored", Duration::from_secs(20), || async {
        stored_count(&s).await == accepted.len() as i64
    })
    .await;
    assert_each_body_once(&s, accepted.len()).await;
}

/// Every body the load sent (`"{sender}-{i}"`, each unique) is stored exactly once.
async fn assert_each_body_once(s: &Stack, sent: usize) {
    let bodies = s.stored_bodies().await;
    let doubled: Vec<_> = bodies.iter().filter(|(_, n)| **n != 1).collect();
    assert!(doubled.is_empty(), "stored more than once: {doubled:?}");
    assert_eq!(bodies.len(), sent, "stored bodies differ from those sent");
}
