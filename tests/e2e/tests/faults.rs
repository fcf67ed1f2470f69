//! The fault suite: under steady send load, SIGKILL the worker, restart PostgreSQL, restart
//! Redis (append-only file on), crash (SIGKILL) PostgreSQL, crash Redis, restart a chat
//! instance. Afterwards every send answered 201 or 202 is stored exactly once (counted by
//! body, which the load makes unique), nothing is left pending or dead-lettered, sends are
//! accepted again after the last fault, the only refusals were "unavailable" ones, every
//! service answers ready again without being restarted by hand, and a realtime client (the
//! official one) has reconnected, caught up, and received no `message:created` twice.
//! It runs twice: as deployed by default (one partition, one worker), and with the send
//! stream in 4 partitions shared by 2 workers, the sends spread over a conversation in each
//! partition, so that the killed worker's partitions and pending entries move under load.
//!
//! What a crash can lose: PostgreSQL nothing committed (`synchronous_commit` on). Redis runs
//! with `appendfsync everysec`: it writes every command to the append-only file before
//! answering, and fsyncs once a second, so a SIGKILL of the process loses nothing it
//! answered (the file is in the kernel's page cache); a crash of the machine loses up to
//! about one second of answered writes (two when the disk stalls): sends answered 202 in
//! that second and never read by a worker would be gone. This test crashes the process.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::servers::{Postgres, Redis};
use e2e::{Follower, Stack};
use serde_json::json;

/// The two runs take turns: each is heavy enough for the machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_survive_worker_database_redis_and_chat_restarts() {
    let _turn = ONE_AT_A_TIME.lock().await;
    fault_suite(1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_with_four_partitions_and_two_workers() {
    let _turn = ONE_AT_A_TIME.lock().await;
    fault_suite(4, 2).await;
}

async fn fault_suite(partitions: usize, workers: usize) {
    let pg = Postgres::start();
    let mut redis = Redis::start();
    let mut s = Stack::empty_on(pg.admin_url(), redis.url()).await;
    s.partitions = partitions;
    s.chat_env.push(("SEND_WAIT_MS".into(), "500".into()));
    s.start_chat().await;
    s.start_workers(workers).await;
    s.start_gateway(&[("REQUEST_TIMEOUT_MS", "3000")]).await;
    // A conversation in every partition; the realtime client follows the first.
    let mut convs: Vec<String> = Vec::new();
    while (0..partitions).any(|p| {
        !convs
            .iter()
            .any(|c| platform_core::stream::partition_of(&c.parse().unwrap(), partitions) == p)
    }) {
        convs.push(s.group(&["a", "b", "watcher"]).await);
    }
    let conv = convs[0].clone();

    // The realtime client, through the gateway.
    let follower = Follower::start(&s.url(), &conv, "watcher").await;

    // Steady load: 8 senders, half asking for 202s, every send with its own clientMessageId.
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/conversations/{conv}/messages", s.url());
    let senders: Vec<_> = (0..8)
        .map(|w| {
            let url = format!(
                "{}/conversations/{}/messages",
                s.url(),
                convs[w % convs.len()]
            );
            let (http, stop) = (s.http.clone(), stop.clone());
            tokio::spawn(async move {
                // (when answered, id, body) of every send answered 201 or 202.
                let mut accepted = Vec::new();
                let mut other = HashMap::<String, u64>::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let body = format!("{w}-{i}");
                    let mut req = http
                        .post(&url)
                        .timeout(Duration::from_secs(5))
                        .json(&json!({"senderId": if w % 2 == 0 { "a" } else { "b" }, "body": body, "clientMessageId": body}));
                    if w % 2 == 0 {
                        req = req.header("prefer", "respond-async");
                    }
                    match req.send().await {
                        Ok(r) if r.status() == 201 || r.status() == 202 => {
                            let v: serde_json::Value = r.json().await.unwrap();
                            let id = v["id"].as_str().unwrap().to_string();
                            accepted.push((Instant::now(), id, body));
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
    // 1. A worker dies mid-batch; a new one (or, with two, the other one first) takes over
    //    its pending entries (and its partitions).
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
    // 4. PostgreSQL crashes (SIGKILL) and recovers from its write-ahead log.
    pg.crash();
    pause().await;
    // 5. Redis crashes (SIGKILL) and reloads its append-only file.
    redis.crash();
    pause().await;
    // 6. The chat instance behind the gateway restarts.
    let chat = s.chat.take().unwrap();
    let port = chat.port;
    let status = tokio::task::spawn_blocking(move || chat.terminate())
        .await
        .unwrap();
    assert!(status.success(), "chat did not stop cleanly: {status}");
    s.start_chat_on(port).await;
    let last_fault = Instant::now();
    pause().await;
    stop.store(true, Ordering::Relaxed);

    let mut accepted = HashSet::new();
    let mut bodies = HashSet::new();
    let mut after_faults = 0;
    let mut refused: HashMap<String, u64> = HashMap::new();
    for t in senders {
        let (sends, other) = t.await.unwrap();
        for (at, id, body) in sends {
            after_faults += usize::from(at > last_fault);
            accepted.insert(id);
            bodies.insert(body);
        }
        for (k, v) in other {
            *refused.entry(k).or_default() += v;
        }
    }
    println!(
        "accepted {} sends ({after_faults} after the last fault); refused or unanswered: {refused:?}",
        accepted.len()
    );
    assert!(
        accepted.len() > 200,
        "too little load got through: {}",
        accepted.len()
    );
    assert!(
        after_faults > 50,
        "sends were not accepted again after the faults: {after_faults}"
    );
    // While a dependency is down a send may be refused as unavailable (503 from the chat
    // service, 502/504 from the gateway while the instance restarts) or go unanswered;
    // anything else (a 500, a 4xx) is a defect.
    let unexpected: Vec<_> = refused
        .keys()
        .filter(|k| {
            ![
                "502 Bad Gateway",
                "503 Service Unavailable",
                "504 Gateway Timeout",
                "no answer",
            ]
            .contains(&k.as_str())
        })
        .collect();
    assert!(unexpected.is_empty(), "unexpected refusals: {refused:?}");

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
    // What the realtime client should have: its conversation's messages.
    let all: Vec<String> = db
        .query(
            "SELECT id::text FROM messages WHERE conversation_id = $1",
            &[&conv.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // What a user would see doubled: the same body twice (ids and clientMessageIds are
    // unique by constraint, so counting them could never show it).
    let stored_bodies = s.stored_bodies().await;
    let doubled: Vec<_> = stored_bodies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "stored more than once: {doubled:?}");
    assert!(
        bodies.iter().all(|b| stored_bodies.contains_key(b)),
        "an accepted body is missing"
    );
    s.eventually("nothing left pending", Duration::from_secs(30), || async {
        s.pending_entries().await == 0
    })
    .await;
    assert_eq!(
        s.dead_letters().await,
        0,
        "accepted sends were dead-lettered"
    );

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

    // The realtime client reconnected, caught up with everything stored, and no event
    // reached it twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = follower.finish().await;
    assert!(
        report["connects"].as_u64().unwrap() >= 2,
        "the client never reconnected: {report}"
    );
    let doubled = Follower::doubled(&report);
    assert!(
        doubled.is_empty(),
        "message:created received twice: {doubled:?}"
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
