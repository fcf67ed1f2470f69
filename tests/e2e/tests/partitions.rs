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
    s.eventually(
        &format!("{owners} workers owning {per} partitions each"),
        Duration::from_secs(20),
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
    futures_util::future::join_all(
        conversations
            .iter()
            .map(|c| queue_in_order(&s, &ann, c, "m", 40)),
    )
    .await;
    s.eventually("the queue drained", Duration::from_secs(30), || {
        s.queue_drained()
    })
    .await;
    let want: Vec<String> = (0..40).map(|i| format!("m {i}")).collect();
    for c in &conversations {
        // Each stored once, in the order queued: one worker at a time owns a partition.
        assert_eq!(bodies(&s, &ann, c).await, want, "{c}");
    }
}
