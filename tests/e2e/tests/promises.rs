//! What an accepted send promises, tried the way it was broken: a database that turns
//! read-only (a failover) loses no 202; a send refused for its data releases its
//! `clientMessageId` and can be listed, replayed or dropped with `worker dead-letters`; a
//! batch committed by a worker that dies before acknowledging is still announced, once; an
//! edit queued behind its send never overwrites a later one, and finds its send through
//! the pending mark (which holds the entry's stream id); a body is stored as validated
//! (trimmed), and commit notices stay under their byte bound.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::servers::Postgres;
use e2e::{Follower, Stack};
use serde_json::{json, Value};

/// The fault hook: the worker exits right after its first commit, before acknowledging.
const EXIT_AFTER_COMMIT: (&str, &str) = ("WORKER_FAULT", "exit-after-commit");

async fn set_read_only(admin: &str, on: bool) {
    let (db, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(conn);
    // One statement each: ALTER SYSTEM cannot run inside a (multi-statement) transaction.
    db.batch_execute(&format!(
        "ALTER SYSTEM SET default_transaction_read_only = {on}"
    ))
    .await
    .expect("toggle read-only");
    db.batch_execute("SELECT pg_reload_conf()")
        .await
        .expect("reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_delays_sends_and_loses_none() {
    let pg = Postgres::start();
    let mut s = Stack::empty_on(pg.admin_url(), e2e::redis_url()).await;
    s.chat_env.push(("SEND_WAIT_MS".into(), "300".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let conv = s.group(&["a", "b"]).await;
    let url = format!("{}/conversations/{conv}/messages", s.url());
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|w| {
            let (http, url, stop) = (s.http.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                let mut refused = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let body = format!("ro {w}-{i}");
                    let mut req = http
                        .post(&url)
                        .json(&json!({"senderId": "a", "body": body, "clientMessageId": body}));
                    if w % 2 == 0 {
                        req = req.header("prefer", "respond-async");
                    }
                    let r = e2e::Reply::from(req.send().await.expect("send")).await;
                    match r.status {
                        201 | 202 => accepted.push(body),
                        other => refused.push(other),
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (accepted, refused)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    set_read_only(&pg.admin_url(), true).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    set_read_only(&pg.admin_url(), false).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut accepted = Vec::new();
    for t in senders {
        let (ok, refused) = t.await.unwrap();
        assert!(refused.is_empty(), "sends refused: {refused:?}");
        accepted.extend(ok);
    }
    s.eventually(
        "every accepted send stored",
        Duration::from_secs(30),
        || async {
            let stored = s.stored_bodies().await;
            accepted.iter().all(|b| stored.contains_key(b))
        },
    )
    .await;
    let stored = s.stored_bodies().await;
    let doubled: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "stored twice: {doubled:?}");
    assert_eq!(
        s.dead_letters().await,
        0,
        "accepted sends were dead-lettered"
    );
    s.eventually("nothing pending", Duration::from_secs(10), || async {
        s.pending_entries().await == 0
    })
    .await;
}

/// Runs `worker dead-letters <args>` with the stack's settings; its standard output.
async fn dead_letters_command(s: &Stack, args: &[&str]) -> String {
    let mut cmd = s.command("worker");
    cmd.arg("dead-letters").args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("worker dead-letters");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "worker dead-letters {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test]
async fn a_dead_letter_releases_its_client_message_id_and_can_be_replayed() {
    // An error in the data itself (SQLSTATE 23514): the only kind that is dead-lettered.
    let (s, path) = Stack::poisoned("1500").await;
    let db = s.db().await;
    let first = s
        .post(
            &path,
            json!({"senderId": "a", "body": "poison 1", "clientMessageId": "c1"}),
        )
        .await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    let second = s
        .post(
            &path,
            json!({"senderId": "a", "body": "poison 2", "clientMessageId": "c2"}),
        )
        .await;
    assert_eq!(second.status, 202);
    s.eventually("both dead-lettered", Duration::from_secs(10), || async {
        s.dead_letters().await == 2
    })
    .await;

    let list: Vec<Value> =
        serde_json::from_str(&dead_letters_command(&s, &["list"]).await).expect("a JSON list");
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(
        list.iter()
            .all(|d| d["reason"].as_str().unwrap().contains("23514")),
        "{list:?}"
    );
    let dead_id = |body: &str| {
        list.iter()
            .find(|d| d["entry"].as_str().unwrap().contains(body))
            .map(|d| d["deadLetterId"].as_str().unwrap().to_string())
            .expect("listed")
    };
    let (dead_first, dead_second) = (dead_id("poison 1"), dead_id("poison 2"));

    // The cause is fixed.
    db.batch_execute("ALTER TABLE messages DROP CONSTRAINT poison")
        .await
        .unwrap();
    // A retry with the dead send's clientMessageId is a new send, and it is stored.
    let retry = s
        .post(
            &path,
            json!({"senderId": "a", "body": "poison 1", "clientMessageId": "c1"}),
        )
        .await;
    assert_eq!(
        retry.status, 201,
        "the dead send kept its clientMessageId: {:?}",
        retry.body
    );
    assert_ne!(retry.body["id"], first.body["id"]);
    dead_letters_command(&s, &["drop", &dead_first]).await;
    // The other is replayed as it was: stored under the id its 202 promised.
    dead_letters_command(&s, &["replay", &dead_second]).await;
    let promised = second.body["id"].as_str().unwrap().to_string();
    s.eventually(
        "the replayed send stored",
        Duration::from_secs(10),
        || async {
            s.get(&format!("{path}?limit=10"))
                .await
                .body
                .as_array()
                .is_some_and(|a| a.iter().any(|m| m["id"] == promised.as_str()))
        },
    )
    .await;
    assert_eq!(s.dead_letters().await, 0);
    let stored = s.stored_bodies().await;
    assert_eq!(stored.get("poison 1"), Some(&1));
    assert_eq!(stored.get("poison 2"), Some(&1));
    // Unknown ids are an error, not a silent success.
    let mut cmd = s.command("worker");
    cmd.args(["dead-letters", "replay", "1-1"]);
    assert!(!cmd.output().unwrap().status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_committed_but_not_acknowledged_is_announced_once() {
    let mut s = Stack::empty().await;
    s.chat_env.push(("SEND_WAIT_MS".into(), "50".into()));
    s.start_chat().await;
    s.start_gateway(&[]).await;
    let conv = s.group(&["a", "watcher"]).await;
    let follower = Follower::start(&s.url(), &conv, "watcher").await;
    let path = format!("/conversations/{conv}/messages");
    let mut ids = Vec::new();
    for i in 0..20 {
        let r = s
            .call(
                "POST",
                &path,
                Some(json!({"senderId": "a", "body": format!("once {i}")})),
            )
            .await;
        assert!(r.status == 202 || r.status == 201, "{:?}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    // This worker commits the whole queue as one batch and dies before acknowledging it.
    let mut faulty = s.spawn_worker(&[EXIT_AFTER_COMMIT]);
    let status = faulty.exited(Duration::from_secs(20)).await;
    assert!(status.is_some(), "the fault hook did not fire");
    let db = s.db().await;
    let stored: i64 = db
        .query_one("SELECT count(*) FROM messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 20, "the batch was committed before the worker died");
    assert_eq!(s.pending_entries().await, 20, "and left unacknowledged");
    // Its successor takes the entries over, finds them stored, and announces them.
    s.start_worker().await;
    s.eventually("entries settled", Duration::from_secs(15), || async {
        s.pending_entries().await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = follower.finish().await;
    let events = Follower::event_counts(&report);
    for id in &ids {
        assert_eq!(
            events.get(id),
            Some(&1),
            "message:created for {id} reached the socket {:?} times",
            events.get(id)
        );
    }
}

/// Chat and the gateway but no worker yet (sends answer 202 after 200 ms and stay queued),
/// and the messages path of a conversation of a and b.
async fn without_a_worker() -> (Stack, String) {
    let mut s = Stack::empty().await;
    s.chat_env.push(("SEND_WAIT_MS".into(), "200".into()));
    s.start_chat().await;
    s.start_gateway(&[]).await;
    let conv = s.group(&["a", "b"]).await;
    (s, format!("/conversations/{conv}/messages"))
}

#[tokio::test]
async fn an_edit_queued_behind_its_send_never_overwrites_a_later_edit() {
    let (mut s, path) = without_a_worker().await;
    // No worker yet: the send stays queued, and so does its first edit.
    let sent = s.post(&path, json!({"senderId": "a", "body": "v0"})).await;
    assert_eq!(sent.status, 202);
    let id = sent.body["id"].as_str().unwrap().to_string();
    let older = s
        .call(
            "PATCH",
            &format!("{path}/{id}"),
            Some(json!({"body": "v1"})),
        )
        .await;
    assert_eq!(
        older.status, 202,
        "queued behind its send: {:?}",
        older.body
    );
    // A worker that reads one entry at a time stores the send alone and dies.
    let mut faulty = s.spawn_worker(&[EXIT_AFTER_COMMIT, ("BATCH_MAX", "1")]);
    assert!(faulty.exited(Duration::from_secs(20)).await.is_some());
    // The later edit finds the message stored and applies at once.
    let newer = s
        .call(
            "PATCH",
            &format!("{path}/{id}"),
            Some(json!({"body": "v2"})),
        )
        .await;
    assert_eq!(newer.status, 200, "{:?}", newer.body);
    // The queued (older) edit is applied by the next worker: it must not win.
    s.start_worker().await;
    s.eventually("the queue drained", Duration::from_secs(15), || async {
        s.queue_drained().await
    })
    .await;
    let body: String = s
        .db()
        .await
        .query_one("SELECT body FROM messages WHERE id::text = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(body, "v2", "an older edit overwrote a newer one");
}

/// The stream entry (id, JSON) holding the create of message `id`.
async fn queued_entry(s: &Stack, id: &str) -> (String, String) {
    let mut r = s.redis().await;
    for stream in s.streams() {
        let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream)
            .arg("-")
            .arg("+")
            .query_async(&mut r)
            .await
            .unwrap();
        let found = entries.ids.iter().find_map(|e| {
            let json: String = e.get("d")?;
            json.contains(id).then(|| (e.id.clone(), json))
        });
        if let Some(found) = found {
            return found;
        }
    }
    panic!("the send's entry is in no partition of the stream")
}

#[tokio::test]
async fn a_pending_mark_points_at_its_entry_and_queued_messages_stay_editable() {
    let (mut s, path) = without_a_worker().await;
    // No worker: both sends stay queued.
    let mut ids = Vec::new();
    for body in ["first", "second"] {
        let sent = s.post(&path, json!({"senderId": "a", "body": body})).await;
        assert_eq!(sent.status, 202);
        ids.push(sent.body["id"].as_str().unwrap().to_string());
    }
    let mut r = s.redis().await;
    let mark = |id: &str| format!("{}:pending:{id}", s.key_prefix());
    // The mark holds the entry's stream id, not a second copy of the message.
    let (stream_id, json) = queued_entry(&s, &ids[0]).await;
    let held: String = redis::cmd("GET")
        .arg(mark(&ids[0]))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(held, stream_id, "the pending mark of {}", ids[0]);
    // A mark written by an earlier version holds the entry itself: still read.
    let (_, second_json) = queued_entry(&s, &ids[1]).await;
    let _: () = redis::cmd("SET")
        .arg(mark(&ids[1]))
        .arg(&second_json)
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(json.contains("\"first\""));
    // Both are found queued: edited behind their sends (202), not 404.
    for (id, body) in ids.iter().zip(["first, edited", "second, edited"]) {
        let edit = s
            .call(
                "PATCH",
                &format!("{path}/{id}"),
                Some(json!({"body": body})),
            )
            .await;
        assert_eq!(edit.status, 202, "edit of queued {id}: {:?}", edit.body);
        assert_eq!(edit.body["body"], body);
    }
    s.start_worker().await;
    s.eventually("the queue drained", Duration::from_secs(15), || async {
        s.queue_drained().await
    })
    .await;
    let db = s.db().await;
    for (id, body) in ids.iter().zip(["first, edited", "second, edited"]) {
        let stored: String = db
            .query_one("SELECT body FROM messages WHERE id::text = $1", &[id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(stored, body);
    }
}

#[tokio::test]
async fn a_body_is_stored_as_it_was_validated() {
    let mut s = Stack::empty().await;
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let conv = s.group(&["a", "b"]).await;
    let path = format!("/conversations/{conv}/messages");
    // 4,000 characters as sent (the document's maxLength), padding included; one more is
    // refused however little of it is text.
    let padded = format!("  a{}", " ".repeat(3_997));
    let over = format!("{padded} ");
    s.post(&path, json!({"senderId": "a", "body": over}))
        .await
        .assert_error(400);
    let r = s
        .post(&path, json!({"senderId": "a", "body": padded}))
        .await;
    assert_eq!(r.status, 201);
    let shown = r.body["body"].as_str().unwrap();
    assert_eq!(shown.len(), 1, "the answer shows what is stored");
    let id = r.body["id"].as_str().unwrap().to_string();
    let edited = s
        .call(
            "PATCH",
            &format!("{path}/{id}"),
            Some(json!({"body": format!("b{}\n", " ".repeat(10_000))})),
        )
        .await;
    edited.assert_error(400);
    let edited = s
        .call(
            "PATCH",
            &format!("{path}/{id}"),
            Some(json!({"body": format!("b{}\n", " ".repeat(3_000))})),
        )
        .await;
    assert_eq!(edited.status, 200);
    assert_eq!(edited.body["body"].as_str().map(str::len), Some(1));
    let len: i32 = s
        .db()
        .await
        .query_one(
            "SELECT octet_length(body) FROM messages WHERE id::text = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(len, 1, "the untrimmed body was stored");
}

#[tokio::test]
async fn commit_notices_stay_under_their_byte_bound() {
    const BOUND: usize = 16_384;
    let mut s = Stack::empty().await;
    s.chat_env.push(("SEND_WAIT_MS".into(), "50".into()));
    s.worker_env
        .push(("NOTICE_MAX_BYTES".into(), BOUND.to_string()));
    s.start_chat().await;
    s.start_gateway(&[]).await;
    let conv = s.group(&["a", "b"]).await;
    let path = format!("/conversations/{conv}/messages");
    let mut pubsub = s.committed_notices().await;
    // Queued while no worker runs, so that one batch commits them all: 40 × 3,900 characters.
    let mut ids = HashSet::new();
    for i in 0..40 {
        let body = format!("{i} {}", "x".repeat(3_900));
        let r = s
            .call("POST", &path, Some(json!({"senderId": "a", "body": body})))
            .await;
        assert!(r.status == 202 || r.status == 201);
        ids.insert(r.body["id"].as_str().unwrap().to_string());
    }
    s.start_worker().await;
    let mut sizes = Vec::new();
    let mut released = HashSet::new();
    while released.len() < ids.len() {
        let msg = tokio::time::timeout(Duration::from_secs(20), pubsub.next())
            .await
            .expect("every send released within 20 s")
            .expect("subscription open");
        // The bound holds for the message as published: with its offset for recovery.
        let published = msg.get_payload_bytes();
        sizes.push(published.len());
        let (offset, payload) = platform_core::recovery::split(published);
        assert!(
            offset.is_some(),
            "recorded for recovery (the default window)"
        );
        let notice: Value = serde_json::from_slice(payload).expect("a JSON notice");
        for m in notice["created"].as_array().into_iter().flatten() {
            released.insert(m["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(released, ids);
    assert!(
        sizes.iter().all(|n| *n <= BOUND),
        "notices over {BOUND} bytes: {sizes:?}"
    );
}

#[tokio::test]
async fn display_names_are_stored_as_validated() {
    // A display name is 1-100 characters as sent, stored trimmed: the padding must not be
    // kept. Longer is refused, however little of it is text.
    let s = Stack::start().await;
    let padded = |name: &str| format!("  {name}{}", " ".repeat(95));
    let over = |name: &str| format!("{} ", padded(name));
    s.post(
        "/conversations",
        json!({"type": "group", "members": [
            {"userId": "a", "displayName": over("Ann")},
            {"userId": "b", "displayName": "Bob"},
        ]}),
    )
    .await
    .assert_error(400);
    let r = s
        .post(
            "/conversations",
            json!({"type": "group", "members": [
                {"userId": "a", "displayName": padded("Ann")},
                {"userId": "b", "displayName": "Bob"},
            ]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let shown = |v: &serde_json::Value| v.as_str().map(str::len);
    assert_eq!(
        shown(&r.body["members"][0]["displayName"]),
        Some(3),
        "answered untrimmed"
    );
    let conv = r.body["id"].as_str().unwrap().to_string();
    let stored: String = s
        .db()
        .await
        .query_one(
            "SELECT display_name FROM conversation_members WHERE user_id = 'a'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored == "Ann", "stored {} bytes, untrimmed", stored.len());
    let call = s
        .post(
            "/calls",
            json!({"conversationId": conv, "type": "audio", "participants": [
                {"userId": "a", "displayName": "Ann"},
                {"userId": "b", "displayName": padded("Bob")},
            ]}),
        )
        .await;
    assert_eq!(call.status, 201, "{:?}", call.body);
    assert_eq!(shown(&call.body["participants"][1]["displayName"]), Some(3));
    let id = call.body["id"].as_str().unwrap();
    let again = s.get(&format!("/calls/{id}")).await;
    assert_eq!(again.body["participants"][1]["displayName"], "Bob");
}
