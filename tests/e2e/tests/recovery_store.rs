//! The recovery store (`platform_core::recovery`) against the real Redis: offsets, the
//! published order, the logs and blobs, the joined floor, replay and its refusals,
//! retention, and recovery turned off. The last tests run the real services and check that
//! the worker's commit notices and the chat service's events are recorded.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use e2e::Stack;
use futures_util::StreamExt;
use platform_core::events::{self, Envelope};
use platform_core::pools::RedisPool;
use platform_core::recovery::{self, Entry, Offset, ReplayError, Window};
use platform_core::stream::Keys;
use serde_json::{json, Value};
use uuid::Uuid;

struct Store {
    redis: RedisPool,
    keys: Keys,
    client: redis::Client,
}

impl Store {
    fn new() -> Store {
        let url = e2e::redis_url();
        Store {
            redis: platform_core::pools::redis(&url, 8).expect("redis pool"),
            keys: Keys::new(&format!("rs-{}", Uuid::now_v7().simple())),
            client: redis::Client::open(url).expect("redis url"),
        }
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.client
            .get_multiplexed_async_connection()
            .await
            .expect("redis")
    }

    async fn subscribe(&self, channel: &str) -> redis::aio::PubSub {
        let mut ps = self.client.get_async_pubsub().await.expect("pubsub");
        ps.subscribe(channel).await.expect("subscribe");
        ps
    }

    /// Publishes a recorded event to a conversation and/or users; its offset.
    async fn publish(
        &self,
        window: Window,
        event: &str,
        conversation: Option<Uuid>,
        users: &[&str],
        data: Value,
    ) -> Option<Offset> {
        let env = Envelope {
            event: event.to_string(),
            conversation,
            users: users.iter().map(|u| u.to_string()).collect(),
            except: None,
            data,
        };
        events::publish(&self.redis, &self.keys, window, &env)
            .await
            .expect("publish")
    }

    async fn replay(
        &self,
        user: &str,
        after: Offset,
        conversations: &[Uuid],
        limit: usize,
    ) -> Result<recovery::Replay, ReplayError> {
        recovery::replay(
            &self.redis,
            &self.keys,
            Window::default(),
            user,
            after,
            conversations,
            limit,
        )
        .await
    }

    async fn log(&self, key: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut c = self.conn().await;
        let raw: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(key)
            .arg("-")
            .arg("+")
            .query_async(&mut c)
            .await
            .unwrap();
        raw.into_iter()
            .map(|(id, f)| {
                let pairs = f.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
                (id, pairs)
            })
            .collect()
    }

    async fn ttl(&self, key: &str) -> i64 {
        let mut c = self.conn().await;
        redis::cmd("TTL")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap()
    }

    /// The first offset and the chained counter (`p`) of every message in the recent log.
    async fn recent(&self) -> Vec<(Offset, Option<u64>)> {
        recovery::recent_after(&self.redis, &self.keys, Offset::default(), 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (recovery::split(&p.message).0.unwrap(), p.prev))
            .collect()
    }

    async fn seq(&self) -> u64 {
        let mut c = self.conn().await;
        let n: Option<u64> = redis::cmd("HGET")
            .arg(self.keys.rec_seq())
            .arg("n")
            .query_async(&mut c)
            .await
            .unwrap();
        n.unwrap_or(0)
    }

    /// Removes every key of the namespace (the counter never expires by itself).
    async fn clean(&self) {
        let mut c = self.conn().await;
        let pattern = format!("{}:*", self.keys.namespace());
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut c)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut c)
                .await
                .unwrap();
        }
    }
}

/// The next message on a subscription, as bytes.
async fn next(ps: &mut redis::aio::PubSub) -> Vec<u8> {
    let msg = tokio::time::timeout(Duration::from_secs(5), ps.on_message().next())
        .await
        .expect("a published message")
        .expect("subscription open");
    msg.get_payload_bytes().to_vec()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn offsets_increase_and_publish_order_is_offset_order() {
    let s = Arc::new(Store::new());
    let mut ps = s.subscribe(&s.keys.events).await;
    let conv = Uuid::now_v7();
    let (publishers, each) = (8, 40);
    let tasks: Vec<_> = (0..publishers)
        .map(|p| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..each {
                    let data = json!({"p": p, "i": i});
                    let o = s
                        .publish(Window::default(), "message:created", Some(conv), &[], data)
                        .await
                        .expect("an offset");
                    got.push(o);
                }
                got
            })
        })
        .collect();
    let mut returned = HashSet::new();
    for t in tasks {
        let got = t.await.unwrap();
        // One publisher's own events are in its order.
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        returned.extend(got.into_iter().map(|o| o.n));
    }
    assert_eq!(returned.len(), publishers * each, "every offset is unique");
    let mut last: Option<Offset> = None;
    let mut heard = Vec::new();
    for _ in 0..publishers * each {
        let payload = next(&mut ps).await;
        let (offset, json) = recovery::split(&payload);
        let offset = offset.expect("recorded messages carry their offset");
        let env: Envelope<Value> = serde_json::from_slice(json).unwrap();
        assert_eq!(env.event, "message:created");
        if let Some(l) = last {
            assert!(offset.n > l.n, "the subscriber sees offset order");
            assert!(offset.ms >= l.ms, "ms never goes back");
        }
        assert!(returned.contains(&offset.n));
        heard.push(offset);
        last = Some(offset);
    }
    // The recent log chains them: each was recorded right after the one before it.
    let recent = s.recent().await;
    assert_eq!(recent.iter().map(|r| r.0).collect::<Vec<_>>(), heard);
    for w in recent.windows(2) {
        assert_eq!(
            w[1].1,
            Some(w[0].0.n),
            "no hole between {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    let log = s.log(&s.keys.rec_conversation(&conv)).await;
    assert_eq!(log.len(), publishers * each);
    s.clean().await;
}

/// What a Redis failover with asynchronous replication does: the promoted replica lacks the
/// last events recorded, which subscribers had heard. What it records next must be numbered
/// above them (else a socket that heard them, or an instance catching up from them, would
/// skip the new events that reused their numbers), and the recent log must say where it
/// follows on from.
#[tokio::test]
async fn a_promoted_replica_that_lost_heard_offsets_numbers_after_them() {
    let s = Store::new();
    let conv = Uuid::now_v7();
    let w = Window::default();
    let logs = [
        s.keys.rec_seq(),
        s.keys.rec_recent(),
        s.keys.rec_conversation(&conv),
    ];
    let e1 = s
        .publish(w, "message:created", Some(conv), &[], json!(1))
        .await
        .unwrap();
    let replica = e2e::dump_keys(&mut s.conn().await, &logs).await;
    let e2 = s
        .publish(w, "message:created", Some(conv), &[], json!(2))
        .await
        .unwrap();
    let e3 = s
        .publish(w, "message:created", Some(conv), &[], json!(3))
        .await
        .unwrap();
    // Failed over: e2 and e3 were heard, and are gone.
    e2e::restore_keys(&mut s.conn().await, &replica).await;
    assert_eq!(s.seq().await, e1.n);
    let e4 = s
        .publish(w, "message:created", Some(conv), &[], json!(4))
        .await
        .unwrap();
    assert!(e4 > e3, "{e4} numbered after {e3}, which was heard");
    // An instance that heard e3 reads e4 next, recorded after e1 (below e3: it follows on).
    assert_eq!(s.recent().await, vec![(e1, Some(0)), (e4, Some(e1.n))]);
    let after = recovery::recent_after(&s.redis, &s.keys, e3, 10)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(recovery::split(&after[0].message).0, Some(e4));
    // A socket whose last event was e2 or e3 recovers e4.
    for heard in [e2, e3] {
        let r = s.replay("u", heard, &[conv], 100).await.unwrap();
        let got: Vec<Offset> = r.events.iter().map(|m| m.offset).collect();
        assert_eq!(got, vec![e4], "after {heard}");
    }
    s.clean().await;
}

#[tokio::test]
async fn a_notice_takes_consecutive_offsets() {
    let s = Store::new();
    let mut ps = s.subscribe(&s.keys.notices).await;
    let (c1, c2) = (Uuid::now_v7(), Uuid::now_v7());
    let entries = [
        Entry {
            event: "message:created",
            data: br#"{"id":1}"#,
            conversation: Some(c1),
            users: &[],
            except: None,
        },
        Entry {
            event: "message:updated",
            data: br#"{"id":2}"#,
            conversation: Some(c2),
            users: &[],
            except: None,
        },
        Entry {
            event: "message:deleted",
            data: br#"{"id":3}"#,
            conversation: Some(c1),
            users: &[],
            except: None,
        },
    ];
    let mut pipe = redis::pipe();
    pipe.atomic();
    let body = br#"{"created":[]}"#;
    recovery::add_publish(
        &mut pipe,
        &s.keys,
        Window::default(),
        &s.keys.notices,
        body,
        &entries,
    );
    let mut c = s.conn().await;
    pipe.query_async::<()>(&mut c).await.unwrap();
    let payload = next(&mut ps).await;
    let (first, json) = recovery::split(&payload);
    let first = first.unwrap();
    assert_eq!(json, body);
    let l1 = s.log(&s.keys.rec_conversation(&c1)).await;
    let l2 = s.log(&s.keys.rec_conversation(&c2)).await;
    let id = |n: u64| format!("{}-{}", first.ms, n);
    assert_eq!(l1.len(), 2);
    assert_eq!(l1[0].0, id(first.n));
    assert_eq!(l1[0].1[0], ("e".into(), "message:created".into()));
    assert_eq!(l1[0].1[1], ("d".into(), r#"{"id":1}"#.into()));
    assert_eq!(l2[0].0, id(first.n + 1));
    assert_eq!(l1[1].0, id(first.n + 2));
    assert_eq!(l1[1].1[0].1, "message:deleted");
    assert_eq!(s.seq().await, first.n + 2);
    // The async form takes the next offsets.
    let o = recovery::publish(
        &s.redis,
        &s.keys,
        Window::default(),
        &s.keys.notices,
        body,
        &entries[..1],
    )
    .await
    .unwrap()
    .unwrap();
    assert!(o.n > first.n + 2);
    assert_eq!(recovery::split(&next(&mut ps).await).0, Some(o));
    // Recorded right after the notice's three.
    assert_eq!(
        s.recent().await,
        vec![(first, Some(0)), (o, Some(first.n + 2))]
    );
    s.clean().await;
}

#[tokio::test]
async fn logs_per_conversation_and_user_and_one_blob_for_many() {
    let s = Store::new();
    let conv = Uuid::now_v7();
    // To one user: the data in the entry.
    let o1 = s
        .publish(
            Window::default(),
            "call:signal",
            None,
            &["a"],
            json!({"k": 1}),
        )
        .await
        .unwrap();
    let ua = s.log(&s.keys.rec_user("a")).await;
    assert_eq!(ua.len(), 1);
    assert_eq!(ua[0].0, o1.to_string());
    assert_eq!(ua[0].1[1], ("d".into(), r#"{"k":1}"#.into()));
    assert!(s.ttl(&s.keys.rec_user("a")).await > 400);
    // To a conversation and two users: stored once, three entries pointing at it.
    let o2 = s
        .publish(
            Window::default(),
            "conversation:created",
            Some(conv),
            &["a", "b"],
            json!({"id": conv}),
        )
        .await
        .unwrap();
    for key in [
        s.keys.rec_conversation(&conv),
        s.keys.rec_user("a"),
        s.keys.rec_user("b"),
    ] {
        let log = s.log(&key).await;
        let last = log.last().unwrap();
        assert_eq!(last.0, o2.to_string(), "{key}");
        assert_eq!(last.1[1], ("r".into(), "1".into()));
        let ttl = s.ttl(&key).await;
        assert!((400..=420).contains(&ttl), "{key}: ttl {ttl}");
    }
    let mut c = s.conn().await;
    let blob: String = redis::cmd("GET")
        .arg(s.keys.rec_payload(&o2))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(blob, json!({"id": conv}).to_string());
    assert!(s.ttl(&s.keys.rec_payload(&o2)).await > 400);
    s.clean().await;
}

#[tokio::test]
async fn replay_is_ordered_exclusive_and_once() {
    let s = Store::new();
    let (c1, c2, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let w = Window::default();
    let first = s
        .publish(w, "message:created", Some(c1), &[], json!(0))
        .await
        .unwrap();
    let mut expected = Vec::new();
    for i in 1..=6 {
        let (conv, users): (Option<Uuid>, &[&str]) = match i % 3 {
            0 => (Some(c1), &[]),
            1 => (Some(c2), &[]),
            // In a conversation log AND the user's: replayed once.
            _ => (Some(c2), &["u"]),
        };
        let o = s
            .publish(w, "message:created", conv, users, json!({"i": i}))
            .await
            .unwrap();
        expected.push((o, json!({"i": i})));
    }
    // Not the user's: another conversation, another user, a volatile event.
    s.publish(w, "message:created", Some(other), &[], json!(9))
        .await
        .unwrap();
    s.publish(w, "call:signal", None, &["v"], json!(9))
        .await
        .unwrap();
    assert!(s
        .publish(w, "typing:update", Some(c1), &[], json!(9))
        .await
        .is_none());
    // Sent by the user themselves: never replayed to them.
    let env = Envelope {
        event: "message:created".to_string(),
        conversation: Some(c1),
        users: Vec::new(),
        except: Some("u".to_string()),
        data: json!(9),
    };
    events::publish(&s.redis, &s.keys, w, &env).await.unwrap();

    let r = s.replay("u", first, &[c1, c2], 100).await.unwrap();
    assert_eq!(r.cut, s.seq().await);
    let got: Vec<(Offset, Value)> = r
        .events
        .iter()
        .map(|m| (m.offset, serde_json::from_str(m.data.get()).unwrap()))
        .collect();
    assert_eq!(got, expected, "after the offset, in order, each once");
    assert!(r.events.iter().all(|m| m.event == "message:created"));
    // From the middle: only what follows.
    let mid = expected[2].0;
    let r = s.replay("u", mid, &[c1, c2], 100).await.unwrap();
    let ns: Vec<u64> = r.events.iter().map(|m| m.offset.n).collect();
    assert_eq!(ns, expected[3..].iter().map(|e| e.0.n).collect::<Vec<_>>());
    // From the end: nothing.
    let last = Offset {
        ms: now_ms(),
        n: s.seq().await,
    };
    assert!(s
        .replay("u", last, &[c1, c2], 100)
        .await
        .unwrap()
        .events
        .is_empty());
    s.clean().await;
}

#[tokio::test]
async fn replay_skips_what_came_before_the_user_joined() {
    let s = Store::new();
    let conv = Uuid::now_v7();
    let w = Window::default();
    let start = s
        .publish(w, "message:created", Some(conv), &[], json!("start"))
        .await
        .unwrap();
    s.publish(w, "message:created", Some(conv), &[], json!("before"))
        .await
        .unwrap();
    let mut pipe = redis::pipe();
    recovery::note_joined(&mut pipe, &s.keys, w, &conv, &["new"]);
    let mut c = s.conn().await;
    pipe.query_async::<()>(&mut c).await.unwrap();
    let after = s
        .publish(w, "message:created", Some(conv), &[], json!("after"))
        .await
        .unwrap();
    let r = s.replay("new", start, &[conv], 100).await.unwrap();
    assert_eq!(
        r.events.iter().map(|m| m.offset).collect::<Vec<_>>(),
        [after]
    );
    let r = s.replay("old", start, &[conv], 100).await.unwrap();
    assert_eq!(r.events.len(), 2, "other members keep everything");
    assert!(s.ttl(&s.keys.rec_joined(&conv)).await > 400);
    // Off: no floor is written.
    let mut pipe = redis::pipe();
    recovery::note_joined(&mut pipe, &s.keys, Window::OFF, &Uuid::now_v7(), &["x"]);
    assert!(pipe.is_empty());
    s.clean().await;
}

#[tokio::test]
async fn replay_reports_gaps() {
    let s = Store::new();
    let conv = Uuid::now_v7();
    let w = Window::default();
    let mut offsets = Vec::new();
    for i in 0..5 {
        offsets.push(
            s.publish(w, "message:created", Some(conv), &[], json!(i))
                .await
                .unwrap(),
        );
    }
    // Delete the first three events: from the first, two are gone. (Redis's trimming does
    // not report what it removed; ours only removes what is older than the window, which
    // the age check below covers.)
    let mut c = s.conn().await;
    let _: i64 = redis::cmd("XDEL")
        .arg(s.keys.rec_conversation(&conv))
        .arg(
            offsets[..3]
                .iter()
                .map(Offset::to_string)
                .collect::<Vec<_>>(),
        )
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(matches!(
        s.replay("u", offsets[0], &[conv], 100).await,
        Err(ReplayError::Gap)
    ));
    // From the last event deleted on, nothing is missing.
    let r = s.replay("u", offsets[2], &[conv], 100).await.unwrap();
    assert_eq!(r.events.len(), 2);
    // An offset older than the window is no gap by itself (an idle socket's last event):
    // the session record decides whether the client is within the window.
    let old = Offset {
        ms: now_ms() - 3_600_000,
        n: offsets[3].n,
    };
    assert_eq!(
        s.replay("u", old, &[conv], 100).await.unwrap().events.len(),
        1
    );
    // A multi-recipient event whose blob is gone.
    let o = s
        .publish(w, "conversation:updated", Some(conv), &["u", "v"], json!(1))
        .await
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(s.keys.rec_payload(&o))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(matches!(
        s.replay("u", offsets[4], &[conv], 100).await,
        Err(ReplayError::Gap)
    ));
    // Recovery off: nothing to replay from.
    assert!(matches!(
        recovery::replay(&s.redis, &s.keys, Window::OFF, "u", offsets[4], &[conv], 9).await,
        Err(ReplayError::Gap)
    ));
    s.clean().await;
}

#[tokio::test]
async fn replay_refuses_more_than_the_limit() {
    let s = Store::new();
    let (c1, c2) = (Uuid::now_v7(), Uuid::now_v7());
    let w = Window::default();
    let start = s
        .publish(w, "message:created", Some(c1), &[], json!(0))
        .await
        .unwrap();
    for i in 0..10 {
        let c = if i % 2 == 0 { c1 } else { c2 };
        s.publish(w, "message:created", Some(c), &[], json!(i))
            .await
            .unwrap();
    }
    assert!(matches!(
        s.replay("u", start, &[c1, c2], 9).await,
        Err(ReplayError::TooMany)
    ));
    assert_eq!(
        s.replay("u", start, &[c1, c2], 10)
            .await
            .unwrap()
            .events
            .len(),
        10
    );
    s.clean().await;
}

#[tokio::test]
async fn replay_over_many_conversations_reads_in_chunks_below_the_cut() {
    let s = Store::new();
    let w = Window::default();
    // More conversations than one script call takes; events in the first and last chunk.
    let convs: Vec<Uuid> = (0..recovery::REPLAY_CHUNK + 5)
        .map(|_| Uuid::now_v7())
        .collect();
    let start = s
        .publish(w, "message:created", Some(convs[0]), &[], json!(0))
        .await
        .unwrap();
    let mut expected = Vec::new();
    for (i, c) in [convs[3], convs[recovery::REPLAY_CHUNK + 2], convs[0]]
        .iter()
        .enumerate()
    {
        expected.push(
            s.publish(w, "message:created", Some(*c), &[], json!(i))
                .await
                .unwrap()
                .n,
        );
    }
    let r = s.replay("u", start, &convs, 100).await.unwrap();
    assert_eq!(r.cut, *expected.last().unwrap());
    assert_eq!(
        r.events.iter().map(|m| m.offset.n).collect::<Vec<_>>(),
        expected
    );
    // While replays run, events keep coming: each replay has every event up to its cut and
    // nothing past it.
    let s = Arc::new(s);
    let writer = {
        let s = s.clone();
        let convs = convs.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let c = convs[(i * 7) % convs.len()];
                s.publish(w, "message:created", Some(c), &[], json!(i))
                    .await
                    .unwrap();
            }
        })
    };
    while !writer.is_finished() {
        let r = s.replay("u", start, &convs, 10_000).await.unwrap();
        let ns: Vec<u64> = r.events.iter().map(|m| m.offset.n).collect();
        // Every event recorded by the cut is in the recent log by now.
        let want: Vec<u64> = s
            .recent()
            .await
            .into_iter()
            .map(|(o, _)| o.n)
            .filter(|n| *n > start.n && *n <= r.cut)
            .collect();
        assert_eq!(ns, want, "exactly the events up to the cut");
    }
    writer.await.unwrap();
    s.clean().await;
}

#[tokio::test]
async fn retention_trims_old_entries_and_expires_idle_logs() {
    let s = Store::new();
    let conv = Uuid::now_v7();
    let log = s.keys.rec_conversation(&conv);
    let mut c = s.conn().await;
    // 250 entries from two hours ago (three stream nodes of at most 100).
    let old = now_ms() - 7_200_000;
    let mut pipe = redis::pipe();
    for n in 1..=250 {
        pipe.cmd("XADD")
            .arg(&log)
            .arg(format!("{old}-{n}"))
            .arg("e")
            .arg("message:created")
            .arg("d")
            .arg("0")
            .ignore();
    }
    pipe.query_async::<()>(&mut c).await.unwrap();
    let w = Window::from_secs(60);
    let o = s
        .publish(w, "message:created", Some(conv), &[], json!("new"))
        .await
        .unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg(&log)
        .query_async(&mut c)
        .await
        .unwrap();
    // `MINID ~` removes whole nodes only: at least the two full ones.
    assert!(len <= 51, "old entries trimmed, {len} left");
    assert_eq!(s.log(&log).await.last().unwrap().0, o.to_string());
    let ttl = s.ttl(&log).await;
    assert!((170..=180).contains(&ttl), "window + 120 s, got {ttl}");
    // A log left idle goes away with its TTL (shortened here instead of waiting).
    let _: i64 = redis::cmd("PEXPIRE")
        .arg(&log)
        .arg(50)
        .query_async(&mut c)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let exists: bool = redis::cmd("EXISTS")
        .arg(&log)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(!exists);
    // The counter stays: offsets keep increasing.
    let o2 = s
        .publish(w, "message:created", Some(conv), &[], json!("again"))
        .await
        .unwrap();
    assert!(o2 > o);
    s.clean().await;
}

#[tokio::test]
async fn window_off_publishes_plain_json_and_records_nothing() {
    let s = Store::new();
    let mut ps = s.subscribe(&s.keys.events).await;
    let conv = Uuid::now_v7();
    assert!(s
        .publish(Window::OFF, "message:created", Some(conv), &["a"], json!(1))
        .await
        .is_none());
    let payload = next(&mut ps).await;
    assert_eq!(payload[0], b'{');
    let env: Envelope<Value> = serde_json::from_slice(&payload).unwrap();
    assert_eq!(env.data, json!(1));
    // Unrecorded events are plain with the window on too.
    s.publish(
        Window::default(),
        "presence:update",
        Some(conv),
        &[],
        json!(2),
    )
    .await;
    assert_eq!(next(&mut ps).await[0], b'{');
    // The pipeline form too.
    let mut pipe = redis::pipe();
    let entry = Entry {
        event: "message:created",
        data: b"1",
        conversation: Some(conv),
        users: &[],
        except: None,
    };
    recovery::add_publish(
        &mut pipe,
        &s.keys,
        Window::OFF,
        &s.keys.events,
        b"{}",
        &[entry],
    );
    let mut c = s.conn().await;
    pipe.query_async::<()>(&mut c).await.unwrap();
    assert_eq!(next(&mut ps).await, b"{}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", s.keys.namespace()))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(keys.is_empty(), "nothing recorded: {keys:?}");
}

/// The real services: a send, an edit and a delete are recorded by the worker (notice
/// offsets prefix the notices), the conversation's creation by the chat service.
#[tokio::test]
async fn services_record_notices_and_events() {
    let s = Stack::start().await;
    let client = redis::Client::open(e2e::redis_url()).unwrap();
    let mut ps = client.get_async_pubsub().await.unwrap();
    ps.subscribe(format!("{}:committed", s.namespace))
        .await
        .unwrap();
    let g = s.group(&["a", "b"]).await;
    let conv: Uuid = g.parse().unwrap();
    let keys = Keys::new(&s.namespace);
    s.send_messages(&g, "a", 1).await;
    let payload = next(&mut ps).await;
    let (offset, json) = recovery::split(&payload);
    let offset = offset.expect("a notice with messages is recorded");
    let notice: Value = serde_json::from_slice(json).unwrap();
    let id = notice["created"][0]["id"].as_str().unwrap().to_string();
    let store = Store {
        redis: platform_core::pools::redis(&e2e::redis_url(), 2).unwrap(),
        keys: keys.clone(),
        client: client.clone(),
    };
    let log = store.log(&keys.rec_conversation(&conv)).await;
    let entry = log
        .iter()
        .find(|e| e.0 == offset.to_string())
        .expect("entry");
    assert_eq!(entry.1[0].1, "message:created");
    let data: Value = serde_json::from_str(&entry.1[1].1).unwrap();
    assert_eq!(data["id"], id.as_str());
    // Each member has the conversation's creation in their log.
    for u in ["a", "b"] {
        let log = store.log(&keys.rec_user(u)).await;
        assert!(
            log.iter().any(|e| e.1[0].1 == "conversation:created"),
            "{u}: {log:?}"
        );
    }
    // The replay gives the member what followed the creation.
    let created = store.log(&keys.rec_user("b")).await[0].0.parse().unwrap();
    let r = store.replay("b", created, &[conv], 100).await.unwrap();
    assert_eq!(
        r.events.iter().map(|m| m.offset).collect::<Vec<_>>(),
        [offset]
    );
    store.clean().await;
}

/// With `RECOVERY_WINDOW_SECS=0` the services publish exactly as before: no offsets.
#[tokio::test]
async fn services_with_recovery_off_publish_plain() {
    let mut s = Stack::empty().await;
    for env in [&mut s.chat_env, &mut s.worker_env] {
        env.push(("RECOVERY_WINDOW_SECS".into(), "0".into()));
    }
    s.start_chat().await;
    s.start_worker().await;
    s.start_call(&[("RECOVERY_WINDOW_SECS", "0")]).await;
    s.start_gateway(&[]).await;
    let client = redis::Client::open(e2e::redis_url()).unwrap();
    let mut ps = client.get_async_pubsub().await.unwrap();
    ps.subscribe(format!("{}:committed", s.namespace))
        .await
        .unwrap();
    let g = s.group(&["a", "b"]).await;
    s.send_messages(&g, "a", 1).await;
    assert_eq!(next(&mut ps).await[0], b'{');
    let mut c = s.redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:rec:*", s.namespace))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(keys.is_empty(), "nothing recorded: {keys:?}");
}
