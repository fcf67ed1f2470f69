//! The recovery store's layout, both sides of the choice (issue 15), against the Redis at
//! `BENCH_REDIS_URL` (else `E2E_REDIS_URL`, as the test command sets it); skipped, with a
//! line saying so, when Redis does not answer.
//! - Write: one event to a conversation of 1,000 members, recorded as one entry in the
//!   conversation's log (the layout chosen) or as 1,000 entries, one per recipient's log
//!   (the data once in a blob); plain PUBLISH (recovery off) for reference.
//! - Reconnect read: a user in 200 conversations who missed 50 of their 2,000 recent events:
//!   one replay call over the 200 conversation logs, or reading the user's one log.
//! - The worker's settle: one notice of 100 messages, recorded or plain.
//!
//! Afterwards `INFO commandstats` deltas print the server-side µs per call. Figures and the
//! choice: docs/perf/2026-12-recovery-layout.md (`cargo bench -p bench --bench recovery`).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use platform_core::pools::RedisPool;
use platform_core::recovery::{self, Entry, Offset, Window};
use platform_core::stream::Keys;
use tokio::runtime::Runtime;
use uuid::Uuid;

const MEMBERS: usize = 1_000;
const CONVERSATIONS: usize = 200;
const RECENT: usize = 2_000;
const MISSED: usize = 50;
const NOTICE: usize = 100;

/// A `message:created` payload of a usual size.
fn message(conversation: &Uuid, i: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": Uuid::now_v7(),
        "conversationId": conversation,
        "senderId": format!("user-{}", i % 977),
        "body": format!("message {i}: see you at the stand-up, I will bring the notes"),
        "sentAt": "2026-12-06T10:00:00.000Z",
        "editedAt": null,
        "clientMessageId": null,
    }))
    .expect("json")
}

struct Setup {
    rt: Runtime,
    redis: RedisPool,
    client: redis::Client,
    keys: Keys,
}

impl Setup {
    fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.rt
            .block_on(self.client.get_multiplexed_async_connection())
            .expect("redis")
    }

    /// Deletes the namespace's keys matching `pattern` (after the namespace).
    fn delete(&self, pattern: &str) {
        let mut c = self.conn();
        self.rt.block_on(async {
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{}:{pattern}", self.keys.namespace()))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await
                    .expect("SCAN");
                if !keys.is_empty() {
                    let _: i64 = redis::cmd("DEL")
                        .arg(&keys)
                        .query_async(&mut c)
                        .await
                        .expect("DEL");
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        });
    }

    /// `(calls, usec)` per command from `INFO commandstats`.
    fn commandstats(&self) -> Vec<(String, u64, u64)> {
        let mut c = self.conn();
        let info: String = self
            .rt
            .block_on(redis::cmd("INFO").arg("commandstats").query_async(&mut c))
            .expect("INFO");
        info.lines()
            .filter_map(|l| {
                let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let field = |f: &str| {
                    rest.split(',')
                        .find_map(|kv| kv.strip_prefix(f)?.strip_prefix('='))
                        .and_then(|v| v.parse().ok())
                };
                Some((name.to_string(), field("calls")?, field("usec")?))
            })
            .collect()
    }
}

fn setup() -> Option<Setup> {
    let url = std::env::var("BENCH_REDIS_URL")
        .or_else(|_| std::env::var("E2E_REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:26379".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = redis::Client::open(url.as_str()).ok()?;
    let up = rt.block_on(async {
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut c).await.ok()
    });
    if up.is_none() {
        println!("recovery: skipped (no Redis at {url})");
        return None;
    }
    // The pool starts its reaper on the runtime.
    let redis = {
        let _in = rt.enter();
        platform_core::pools::redis(&url, 4).expect("pool")
    };
    Some(Setup {
        rt,
        redis,
        client,
        keys: Keys::new(&format!("bench_recovery_{}", std::process::id())),
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs `f` `iters` times, in rounds of at most 100 with `between` (untimed) after each.
fn timed(iters: u64, mut f: impl FnMut(), mut between: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let round = left.min(100);
        let t = Instant::now();
        for _ in 0..round {
            f();
        }
        total += t.elapsed();
        left -= round;
        between();
    }
    total
}

fn write(c: &mut Criterion, s: &Setup) {
    let w = Window::default();
    let conv = Uuid::now_v7();
    let data = message(&conv, 1);
    let body = data.clone();
    let members: Vec<String> = (0..MEMBERS).map(|i| format!("member-{i}")).collect();
    let channel = format!("{}:bench-events", s.keys.namespace());
    let publish = |entries: &[Entry<'_>], window: Window| {
        s.rt.block_on(recovery::publish(
            &s.redis, &s.keys, window, &channel, &body, entries,
        ))
        .expect("publish");
    };
    let per_conversation = Entry {
        event: "message:created",
        data: &data,
        conversation: Some(conv),
        users: &[],
        except: None,
    };
    let per_recipient = Entry {
        conversation: None,
        users: &members,
        ..per_conversation
    };
    let mut g = c.benchmark_group("recovery_write_1000_members");
    g.throughput(Throughput::Elements(1));
    g.bench_function("plain_publish", |b| {
        b.iter(|| publish(&[per_conversation], Window::OFF))
    });
    g.bench_function("per_conversation_log", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                || publish(&[per_conversation], w),
                || s.delete("rec:c:*"),
            )
        })
    });
    g.sample_size(10);
    g.bench_function("per_recipient_logs", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                || publish(&[per_recipient], w),
                || {
                    s.delete("rec:u:*");
                    s.delete("rec:p:*");
                },
            )
        })
    });
    g.finish();
    s.delete("rec:*");
}

fn reconnect(c: &mut Criterion, s: &Setup) {
    let w = Window::default();
    let convs: Vec<Uuid> = (0..CONVERSATIONS).map(|_| Uuid::now_v7()).collect();
    let user = "me".to_string();
    let users = [user.clone()];
    let channel = format!("{}:bench-events", s.keys.namespace());
    // The user's recent events: round-robin over the conversations, each written to its
    // conversation's log (layout chosen) and, separately, to the user's log (the other one).
    let mut offsets = Vec::with_capacity(RECENT);
    for i in 0..RECENT {
        let conv = convs[(i * 7) % CONVERSATIONS];
        let data = message(&conv, i);
        let by_conversation = Entry {
            event: "message:created",
            data: &data,
            conversation: Some(conv),
            users: &[],
            except: None,
        };
        let by_user = Entry {
            conversation: None,
            users: &users,
            ..by_conversation
        };
        let o =
            s.rt.block_on(recovery::publish(
                &s.redis,
                &s.keys,
                w,
                &channel,
                b"{}",
                &[by_conversation, by_user],
            ))
            .expect("publish")
            .expect("offset");
        offsets.push(o);
    }
    // Both entries of an event share a publish: its conversation entry is offsets[i], its
    // user entry offsets[i] + 1. Missed: the last MISSED events.
    let after: Offset = offsets[RECENT - MISSED - 1];
    let after = Offset {
        ms: after.ms,
        n: after.n + 1,
    };
    let replay = |conversations: &[Uuid]| {
        let r =
            s.rt.block_on(recovery::replay(
                &s.redis,
                &s.keys,
                w,
                &user,
                after,
                conversations,
                1_000,
            ))
            .expect("replay");
        r.events.len()
    };
    // Each event is in both layouts: the conversation logs give MISSED, the user log MISSED.
    assert_eq!(replay(&convs), 2 * MISSED);
    assert_eq!(replay(&[]), MISSED);
    // The per-conversation read alone: the user's own log moved aside (it holds only the copies).
    let mut conn = s.conn();
    let (): () =
        s.rt.block_on(
            redis::cmd("RENAME")
                .arg(s.keys.rec_user(&user))
                .arg(s.keys.rec_user("saved"))
                .query_async(&mut conn),
        )
        .expect("RENAME");
    assert_eq!(replay(&convs), MISSED);
    let mut g = c.benchmark_group("recovery_reconnect_200_conversations_50_missed");
    g.bench_function("per_conversation_logs", |b| b.iter(|| replay(&convs)));
    let (): () =
        s.rt.block_on(
            redis::cmd("RENAME")
                .arg(s.keys.rec_user("saved"))
                .arg(s.keys.rec_user(&user))
                .query_async(&mut conn),
        )
        .expect("RENAME");
    g.bench_function("per_user_log", |b| b.iter(|| replay(&[])));
    g.finish();
    s.delete("rec:*");
}

fn settle(c: &mut Criterion, s: &Setup) {
    let convs: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    let data: Vec<(Uuid, Vec<u8>)> = (0..NOTICE)
        .map(|i| (convs[i % 10], message(&convs[i % 10], i)))
        .collect();
    let mut body = b"{\"created\":[".to_vec();
    for (i, (_, d)) in data.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(d);
    }
    body.extend_from_slice(b"]}");
    let entries: Vec<Entry<'_>> = data
        .iter()
        .map(|(c, d)| Entry {
            event: "message:created",
            data: d,
            conversation: Some(*c),
            users: &[],
            except: None,
        })
        .collect();
    let channel = format!("{}:bench-committed", s.keys.namespace());
    let mut conn = s.conn();
    let mut run = |window: Window| {
        // As the worker does: one MULTI pipeline, EVAL with the script's text.
        let mut pipe = redis::pipe();
        pipe.atomic();
        recovery::add_publish(&mut pipe, &s.keys, window, &channel, &body, &entries);
        s.rt.block_on(pipe.query_async::<()>(&mut conn))
            .expect("settle");
    };
    let mut g = c.benchmark_group("recovery_settle_notice_100");
    g.throughput(Throughput::Elements(NOTICE as u64));
    g.bench_function("plain", |b| b.iter(|| run(Window::OFF)));
    g.bench_function("recorded", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for i in 0..iters {
                run(Window::default());
                if i % 100 == 99 {
                    s.delete("rec:c:*");
                }
            }
            t.elapsed()
        })
    });
    g.finish();
    s.delete("rec:*");
    for (name, window) in [
        ("settle_notice_100/plain", Window::OFF),
        ("settle_notice_100/recorded", Window::default()),
    ] {
        server_cost(s, name, 100, || {
            for _ in 0..100 {
                run(window);
            }
        });
    }
    s.delete("rec:*");
}

/// Server-side cost of `f`: µs per call of each command it ran (deltas of INFO commandstats;
/// the server is shared, so other clients' calls of the same commands count too).
fn server_cost(s: &Setup, name: &str, calls: u64, mut f: impl FnMut()) {
    let before = s.commandstats();
    f();
    let after = s.commandstats();
    let mut parts = Vec::new();
    for (cmd, n, us) in &after {
        let (n0, us0) = before
            .iter()
            .find(|b| &b.0 == cmd)
            .map_or((0, 0), |b| (b.1, b.2));
        if n - n0 >= calls
            && !matches!(
                cmd.as_str(),
                "info" | "ping" | "scan" | "del" | "exec" | "multi"
            )
        {
            parts.push(format!(
                "{cmd} {:.1} µs/call x{}",
                (us - us0) as f64 / (n - n0) as f64,
                n - n0
            ));
        }
    }
    println!(
        "{name:<44} server: {} (load average {})",
        parts.join(", "),
        load_average()
    );
}

fn layout(c: &mut Criterion) {
    let Some(s) = setup() else { return };
    println!("recovery: load average {}", load_average());
    write(c, &s);
    reconnect(c, &s);
    settle(c, &s);
    // Server-side costs of each write, 200 calls each.
    let conv = Uuid::now_v7();
    let data = message(&conv, 0);
    let members: Vec<String> = (0..MEMBERS).map(|i| format!("member-{i}")).collect();
    let channel = format!("{}:bench-events", s.keys.namespace());
    for (name, users, conversation) in [
        ("write/per_conversation_log", &[][..], Some(conv)),
        ("write/per_recipient_logs", &members[..], None),
    ] {
        let e = Entry {
            event: "message:created",
            data: &data,
            conversation,
            users,
            except: None,
        };
        server_cost(&s, name, 200, || {
            for _ in 0..200 {
                s.rt.block_on(recovery::publish(
                    &s.redis,
                    &s.keys,
                    Window::default(),
                    &channel,
                    &data,
                    &[e],
                ))
                .expect("publish");
            }
        });
        s.delete("rec:*");
    }
    s.delete("*");
}

criterion_group!(benches, layout);
criterion_main!(benches);
