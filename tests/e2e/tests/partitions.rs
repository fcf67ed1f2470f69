//! The partitioned send stream (`STREAM_PARTITIONS`): workers share the partitions through
//! leases, a conversation's messages are stored in the order they were queued, a dead
//! worker's partitions and pending entries move to a live one, partitions commit in
//! parallel, and the conversation listing pages consistently across them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use e2e::{Stack, User};
use platform_core::stream;
use uuid::Uuid;

/// The Rust partition function and its SQL twin agree, on every count.
#[tokio::test]
async fn the_sql_partition_function_is_the_rust_one() {
    let s = Stack::empty().await;
    let db = s.db().await;
    let ids: Vec<Uuid> = (0..500)
        .map(|i| {
            if i % 2 == 0 {
                Uuid::now_v7()
            } else {
                Uuid::new_v4()
            }
        })
        .chain([Uuid::nil(), Uuid::max()])
        .collect();
    for n in [1usize, 2, 3, 4, 7, 16, 256] {
        let sql = format!(
            "SELECT {} FROM unnest($1::uuid[]) AS c",
            stream::partition_sql("c", "$2::bigint")
        );
        let got: Vec<i64> = db
            .query(&sql, &[&ids, &(n as i64)])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let want: Vec<i64> = ids
            .iter()
            .map(|c| stream::partition_of(c, n) as i64)
            .collect();
        assert_eq!(got, want, "{n} partitions");
    }
}

/// Waits until the leases are held by `owners` distinct workers, `per` partitions each.
async fn shared_as(s: &Stack, owners: usize, per: usize) {
    shared_within(s, owners, per, Duration::from_secs(20)).await;
}

async fn shared_within(s: &Stack, owners: usize, per: usize, limit: Duration) {
    s.eventually(
        &format!("{owners} workers owning {per} partitions each"),
        limit,
        || async {
            let leases = s.lease_owners().await;
            let mut by: HashMap<String, usize> = HashMap::new();
            for o in leases.iter().flatten() {
                *by.entry(o.clone()).or_default() += 1;
            }
            leases.iter().all(Option::is_some)
                && by.len() == owners
                && by.values().all(|n| *n == per)
        },
    )
    .await;
}

/// Queues `n` messages to `conversation` one after the other (each accepted, 202, before
/// the next is sent), bodies `<tag> 0`, `<tag> 1`, …
async fn queue_in_order(s: &Stack, u: &User, conversation: &str, tag: &str, n: usize) {
    let url = format!("{}/conversations/{conversation}/messages", s.url());
    for i in 0..n {
        let r = s
            .http
            .post(&url)
            .bearer_auth(&u.token)
            .header("prefer", "respond-async")
            .json(&serde_json::json!({"senderId": u.id, "body": format!("{tag} {i}")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

/// Queues `n` messages in order to each of `conversations` at once (see [`queue_in_order`]),
/// then waits until the workers have stored them all.
async fn queue_all_and_drain(s: &Stack, u: &User, conversations: &[String], tag: &str, n: usize) {
    futures_util::future::join_all(
        conversations
            .iter()
            .map(|c| queue_in_order(s, u, c, tag, n)),
    )
    .await;
    s.eventually("the queue drained", Duration::from_secs(30), || {
        s.queue_drained()
    })
    .await;
}

/// The first page of `u`'s conversation listing, `limit` long.
async fn first_page(s: &Stack, u: &User, limit: usize) -> e2e::Reply {
    let r = s
        .request(
            "GET",
            &format!("/conversations/user/{}?limit={limit}", u.id),
            Some(&u.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r
}

/// The bodies of `conversation`, oldest first (in `seq` order), as history serves them.
async fn bodies(s: &Stack, u: &User, conversation: &str) -> Vec<String> {
    s.history_of(u, conversation)
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn workers_share_the_partitions_and_keep_each_conversations_order() {
    let mut s = Stack::secure_partitioned(4, 1).await;
    // One worker alone owns every partition; a second one joining gets half of them.
    shared_as(&s, 1, 4).await;
    s.start_worker().await;
    shared_as(&s, 2, 2).await;

    let (ann, ben) = (s.sign_up("ann").await, s.sign_up("ben").await);
    let mut conversations = Vec::new();
    let mut partitions = HashSet::new();
    while partitions.len() < 4 || conversations.len() < 8 {
        let c = s.group_of(&ann, &[&ben]).await;
        partitions.insert(stream::partition_of(&c.parse().unwrap(), 4));
        conversations.push(c);
    }
    // Every conversation queued at once, each in order: both workers store at the same time.
    queue_all_and_drain(&s, &ann, &conversations, "m", 40).await;
    let want: Vec<String> = (0..40).map(|i| format!("m {i}")).collect();
    for c in &conversations {
        // Each stored once, in the order queued: one worker at a time owns a partition.
        assert_eq!(bodies(&s, &ann, c).await, want, "{c}");
    }
}

/// Conversations of Ann's (with Ben) until every one of `partitions` holds at least
/// `per` of them.
async fn spread(s: &Stack, ann: &User, ben: &User, partitions: usize, per: usize) -> Vec<String> {
    let mut conversations = Vec::new();
    let mut count = vec![0; partitions];
    while count.iter().any(|n| *n < per) {
        let c = s.group_of(ann, &[ben]).await;
        count[stream::partition_of(&c.parse().unwrap(), partitions)] += 1;
        conversations.push(c);
    }
    conversations
}

#[tokio::test]
async fn a_dead_workers_partitions_and_pending_entries_move_to_a_live_one() {
    let mut s = Stack::secure_partitioned(4, 0).await;
    let (ann, ben) = (s.sign_up("ann").await, s.sign_up("ben").await);
    let conversations = spread(&s, &ann, &ben, 4, 2).await;
    // Queued while no worker runs.
    futures_util::future::join_all(
        conversations
            .iter()
            .map(|c| queue_in_order(&s, &ann, c, "q", 10)),
    )
    .await;
    // A worker that takes every partition, commits its first batch and dies before
    // acknowledging it: its entries stay pending on it, its leases held until they expire.
    let mut doomed = s.spawn_worker(&[("WORKER_FAULT", "exit-after-commit")]);
    let status = doomed.exited(Duration::from_secs(20)).await;
    assert_eq!(status.and_then(|s| s.code()), Some(3), "the fault fired");
    let dead: HashSet<String> = s.lease_owners().await.into_iter().flatten().collect();
    assert_eq!(dead.len(), 1, "the dead worker still holds its leases");
    assert!(s.pending_entries().await > 0, "it left entries pending");

    // A live worker gets every partition once the leases expire, takes over what was left
    // pending (stored already: acknowledged and announced, not stored twice) and stores
    // the rest, each conversation in order.
    s.start_worker().await;
    s.eventually(
        "the live worker owning every partition",
        Duration::from_secs(20),
        || async {
            let owners = s.lease_owners().await;
            owners
                .iter()
                .all(|o| o.as_ref().is_some_and(|o| !dead.contains(o)))
        },
    )
    .await;
    shared_as(&s, 1, 4).await;
    s.eventually("the queue drained", Duration::from_secs(30), || {
        s.queue_drained()
    })
    .await;
    assert!(s
        .log("worker")
        .contains("took over the partition's pending entries"));
    let want: Vec<String> = (0..10).map(|i| format!("q {i}")).collect();
    for c in &conversations {
        assert_eq!(bodies(&s, &ann, c).await, want, "{c}");
    }

    // A second worker shares the partitions; killed, its half moves back to the first.
    s.start_worker().await;
    shared_as(&s, 2, 2).await;
    s.workers.remove(0).kill();
    shared_as(&s, 1, 4).await;
    queue_all_and_drain(&s, &ann, &conversations, "after", 3).await;
    for c in &conversations {
        let got = bodies(&s, &ann, c).await;
        assert_eq!(got[10..], ["after 0", "after 1", "after 2"], "{c}");
    }
}

/// Follows `rel="next"` links from `first`; the ids of every page after it.
async fn rest_of_walk(s: &Stack, u: &User, first: &e2e::Reply) -> Vec<String> {
    let next = |r: &e2e::Reply| {
        r.header("link")
            .map(|l| l[1..l.find('>').unwrap()].to_string())
    };
    let mut ids = Vec::new();
    let mut path = next(first);
    while let Some(p) = path.take() {
        let r = s.request("GET", &p, Some(&u.token), None).await;
        assert_eq!(r.status, 200, "{p}: {:?}", r.body);
        ids.extend(
            r.body
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        path = next(&r);
    }
    ids
}

/// A partition whose batch commits late (its `seq`s taken, not yet visible) while another
/// partition's later batch is already visible: a single snapshot bound would let the late
/// messages move their conversation between pages. With one bound per partition the walk
/// neither skips nor repeats it. And the other partition is not held up meanwhile: its
/// send is stored (201) while the first one's commit lock is held.
#[tokio::test]
async fn the_listing_pages_consistently_while_another_partition_commits_late() {
    let s = Stack::secure_partitioned(2, 1).await;
    let (ann, ben) = (s.sign_up("ann").await, s.sign_up("ben").await);
    // The oldest conversation, and no message: it sorts last.
    let late = s.group_of(&ann, &[&ben]).await;
    let held = stream::partition_of(&late.parse().unwrap(), 2);
    let mut others = Vec::new();
    while others.len() < 5
        || others
            .iter()
            .all(|c: &String| stream::partition_of(&c.parse().unwrap(), 2) == held)
    {
        let c = s.group_of(&ann, &[&ben]).await;
        s.send_as(&ben, &c, "early").await;
        others.push(c);
    }
    let free = others
        .iter()
        .find(|c| stream::partition_of(&c.parse().unwrap(), 2) != held)
        .unwrap()
        .clone();

    // A batch of partition `held` mid-commit, as its worker would hold it: lock taken,
    // message inserted (its seq drawn), not committed.
    let db = s.db().await;
    db.batch_execute("BEGIN").await.unwrap();
    db.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&stream::commit_lock(held)],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO messages (id, conversation_id, sender_id, body, sent_at)
         VALUES ($1, $2, $3, 'late', now())",
        &[&Uuid::now_v7(), &late.parse::<Uuid>().unwrap(), &ben.id],
    )
    .await
    .unwrap();
    let r = s
        .send_json(&ben, &free, serde_json::json!({"body": "meanwhile"}))
        .await;
    assert_eq!(r.status, 201, "the other partition commits meanwhile");

    let first = first_page(&s, &ann, 2).await;
    assert_eq!(
        first.body[0]["id"],
        free.as_str(),
        "the newest activity first"
    );
    db.batch_execute("COMMIT").await.unwrap();

    let mut walked: Vec<String> = first
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    walked.extend(rest_of_walk(&s, &ann, &first).await);
    let all: HashSet<String> = others.iter().cloned().chain([late.clone()]).collect();
    assert_eq!(walked.len(), all.len(), "no repeats: {walked:?}");
    assert_eq!(
        walked.iter().cloned().collect::<HashSet<_>>(),
        all,
        "no skips"
    );
    assert_eq!(walked.last(), Some(&late), "placed as of the first page");
    // A new listing sees the late message (stamped before "meanwhile"): second newest.
    let again = first_page(&s, &ann, 2).await;
    assert_eq!(again.body[0]["id"], free.as_str());
    assert_eq!(again.body[1]["id"], late.as_str());
}

#[tokio::test]
async fn services_with_another_partition_count_refuse_to_start() {
    let mut s = Stack::secure_partitioned(4, 1).await;
    s.partitions = 2;
    let mut worker = s.spawn_worker(&[]);
    let status = worker.exited(Duration::from_secs(20)).await;
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    let why = "STREAM_PARTITIONS is 2 but this deployment's send stream has 4 partitions";
    assert!(s.log("worker").contains(why), "{}", s.log("worker"));
    let mut chat = s.command("chat");
    chat.env("PORT", e2e::free_port().to_string())
        .env("METRICS_PORT", e2e::free_port().to_string());
    let chat = tokio::task::spawn_blocking(move || chat.output())
        .await
        .unwrap()
        .unwrap();
    assert!(!chat.status.success());
    let out = String::from_utf8_lossy(&chat.stdout) + String::from_utf8_lossy(&chat.stderr);
    assert!(out.contains(why), "{out}");
}

#[tokio::test]
async fn a_stopping_worker_hands_its_partitions_over_at_once() {
    let mut s = Stack::empty().await;
    s.partitions = 4;
    // Leases that would take a minute to expire: only a release hands them over sooner.
    s.worker_env.push(("CLAIM_IDLE_MS".into(), "60000".into()));
    s.start_chat().await;
    s.start_workers(2).await;
    s.start_gateway(&[]).await;
    shared_as(&s, 2, 2).await;

    let stopping = s.workers.remove(0);
    let status = tokio::task::spawn_blocking(move || stopping.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    // SIGTERM: it finished its batch, released its leases and left the live workers, so the
    // other one takes everything within a round, not when the leases would have expired.
    shared_within(&s, 1, 4, Duration::from_secs(10)).await;

    let mut conversations = Vec::new();
    let mut seen = HashSet::new();
    while seen.len() < 4 {
        let c = s.group(&["a", "b"]).await;
        seen.insert(stream::partition_of(&c.parse().unwrap(), 4));
        conversations.push(c);
    }
    for c in &conversations {
        s.send_messages(c, "a", 3).await;
    }
}

/// Batches of `worker`'s that held more than `le` entries, and all its batches.
async fn batches_over(s: &Stack, worker: usize, le: u32) -> (f64, f64) {
    let url = s.workers[worker].metrics_url();
    let all = s.metric(&url, "worker_batch_size_count").await;
    let within = s
        .metric(
            &url,
            &format!("worker_batch_size_bucket{{service=\"worker\",le=\"{le}\"}}"),
        )
        .await;
    (all - within, all)
}

#[tokio::test]
async fn a_backlog_fills_whole_batches_and_no_batch_exceeds_batch_max() {
    let mut s = Stack::secure_partitioned(4, 0).await;
    s.worker_env.push(("BATCH_MAX".into(), "10".into()));
    let (ann, ben) = (s.sign_up("ann").await, s.sign_up("ben").await);
    let conversations = spread(&s, &ann, &ben, 4, 2).await;

    // One busy partition among four idle ones still gets whole batches of 10.
    queue_in_order(&s, &ann, &conversations[0], "hot", 40).await;
    s.start_worker().await;
    s.eventually("the queue drained", Duration::from_secs(30), || {
        s.queue_drained()
    })
    .await;
    let (over_5, all) = batches_over(&s, 0, 5).await;
    let (over_10, _) = batches_over(&s, 0, 10).await;
    assert!(over_5 > 0.0, "no batch over 5 entries in {all}");
    assert_eq!(over_10, 0.0, "a batch over BATCH_MAX");

    // Every partition busy: one read brings up to 10 from each, stored 10 at a time, each
    // conversation in order.
    let stopping = s.workers.remove(0);
    tokio::task::spawn_blocking(move || stopping.terminate())
        .await
        .unwrap();
    futures_util::future::join_all(
        conversations
            .iter()
            .map(|c| queue_in_order(&s, &ann, c, "all", 10)),
    )
    .await;
    s.start_worker().await;
    s.eventually("the queue drained", Duration::from_secs(30), || {
        s.queue_drained()
    })
    .await;
    let (over_10, all) = batches_over(&s, 0, 10).await;
    assert!(all >= 8.0, "{all} batches");
    assert_eq!(over_10, 0.0, "a batch over BATCH_MAX");
    let want: Vec<String> = (0..10).map(|i| format!("all {i}")).collect();
    for c in &conversations {
        let got = bodies(&s, &ann, c).await;
        let got: Vec<String> = got.into_iter().filter(|b| b.starts_with("all")).collect();
        assert_eq!(got, want, "{c}");
    }
}
