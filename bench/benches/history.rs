//! `GET /conversations/:id/messages` (the history page) for a conversation of 2,000
//! messages: the chat service in-process over HTTP against PostgreSQL and Redis at
//! `BENCH_DATABASE_URL` / `BENCH_REDIS_URL` (else `E2E_DATABASE_URL` / `E2E_REDIS_URL`),
//! skipped with a line saying so when PostgreSQL does not answer. It measures what reading
//! replies and reactions (`platform_core::model::hydrate`) costs a page: with
//! `HISTORY_REACTIONS=1` every fifth message is a reply and every message has reactions
//! (1-3 emoji of 1-12 users each); without it the data is the same as before replies existed
//! (so the same file measures a build without them). Criterion measures the pages, then
//! 300 requests of each print p50 and p99 with the load average
//! (`cargo bench -p bench --bench history`).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use platform_core::config::Env;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

const MESSAGES: i32 = 2000;

const SEED: &str = "
    INSERT INTO conversations (id, name, type, created_at)
    VALUES (md5('c')::uuid, 'history', 'group', now() - interval '30 days');
    INSERT INTO conversation_members (conversation_id, user_id, display_name, position)
    SELECT md5('c')::uuid, 'user-' || j, 'User ' || j, j + 1 FROM generate_series(0, 49) j;
    INSERT INTO messages (id, conversation_id, sender_id, body, sent_at)
    SELECT md5('m' || k)::uuid, md5('c')::uuid, 'user-' || (k % 50),
           'message ' || k || ': see you at the stand-up, I will bring the notes',
           now() - make_interval(mins => $K - k)
    FROM generate_series(1, $K) k ORDER BY k;
";

/// Replies and reactions, for a build that has them.
const SEED_REACTIONS: &str = "
    UPDATE messages SET reply_to_id = md5('m' || (k - 3))::uuid
    FROM generate_series(5, $K, 5) k WHERE id = md5('m' || k)::uuid;
    INSERT INTO message_reactions (message_id, emoji, user_id, reacted_at)
    SELECT md5('m' || k)::uuid, (ARRAY['👍', '❤️', '😂'])[e], 'user-' || u,
           now() - make_interval(mins => $K - k) + make_interval(secs => e * 20 + u)
    FROM generate_series(1, $K) k, generate_series(1, 3) e, generate_series(1, 12) u
    WHERE e <= 1 + k % 3 AND u <= 1 + (k * e) % 12;
";

fn env(primary: &str, fallback: &str, default: &str) -> String {
    std::env::var(primary)
        .or_else(|_| std::env::var(fallback))
        .unwrap_or_else(|_| default.into())
}

async fn connect(url: &str) -> Option<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(client)
}

struct Setup {
    rt: Runtime,
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    shutdown: CancellationToken,
    admin: String,
    db: String,
}

fn setup() -> Option<Setup> {
    let admin = env(
        "BENCH_DATABASE_URL",
        "E2E_DATABASE_URL",
        "postgres://postgres@127.0.0.1:25432/postgres",
    );
    let redis = env(
        "BENCH_REDIS_URL",
        "E2E_REDIS_URL",
        "redis://127.0.0.1:26379",
    );
    let reactions = std::env::var("HISTORY_REACTIONS").is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let db = format!("bench_history_{}", std::process::id());
    let url = format!("{}/{db}", &admin[..admin.rfind('/')?]);
    let (base, shutdown) = rt.block_on(async {
        let Some(a) = connect(&admin).await else {
            println!("history: skipped (no PostgreSQL at {admin})");
            return None;
        };
        a.batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .ok()?;
        let config = chat::Config::from_env(&Env::from_pairs(&[
            ("CHAT_DATABASE_URL", &url),
            ("REDIS_URL", &redis),
            ("CHAT_NAMESPACE", &db),
            ("AUTH_MODE", "compat"),
        ]))
        .expect("chat configuration");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
        let base = format!("http://{}", listener.local_addr().ok()?);
        let shutdown = CancellationToken::new();
        tokio::spawn(chat::run(listener, config, shutdown.clone()));
        let probe: Client<HttpConnector, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = probe
                .get(format!("{base}/readyz").parse().ok()?)
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            if Instant::now() > deadline {
                println!("history: skipped (the chat service did not start; Redis at {redis}?)");
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let d = connect(&url).await?;
        let k = MESSAGES.to_string();
        d.batch_execute(&SEED.replace("$K", &k))
            .await
            .expect("seed");
        if reactions {
            d.batch_execute(&SEED_REACTIONS.replace("$K", &k))
                .await
                .expect("seed reactions");
        }
        d.batch_execute("VACUUM ANALYZE").await.expect("vacuum");
        Some((base, shutdown))
    })?;
    Some(Setup {
        rt,
        base,
        client: Client::builder(TokioExecutor::new()).build_http(),
        shutdown,
        admin,
        db,
    })
}

impl Setup {
    /// One page: its body length.
    async fn page(&self, path: &str) -> usize {
        let res = self
            .client
            .get(format!("{}{path}", self.base).parse().expect("uri"))
            .await
            .expect("request");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .len()
    }

    fn drop_database(&self) {
        self.shutdown.cancel();
        self.rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Some(a) = connect(&self.admin).await {
                let _ = a
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
                    .await;
            }
        });
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn percentiles(s: &Setup, name: &str, path: &str, n: usize) {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            s.rt.block_on(s.page(path));
            t.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name:<32} p50 {:>8.2?}  p99 {:>8.2?}  ({n} requests, {} bytes; load average {})",
        at(0.50),
        at(0.99),
        s.rt.block_on(s.page(path)),
        load_average()
    );
}

fn history(c: &mut Criterion) {
    let Some(s) = setup() else { return };
    let conversation = "4a8a08f0-9d37-b737-9564-9038408b5f33"; // md5('c')
    let newest = format!("/conversations/{conversation}/messages?limit=100");
    let largest = format!("/conversations/{conversation}/messages?limit=500");
    let mut g = c.benchmark_group("history");
    g.sample_size(30);
    for (name, path) in [("page_100", &newest), ("page_500", &largest)] {
        g.bench_function(name, |b| b.iter(|| s.rt.block_on(s.page(path))));
    }
    g.finish();
    percentiles(&s, "history/page_100", &newest, 300);
    percentiles(&s, "history/page_500", &largest, 100);
    s.drop_database();
}

criterion_group!(benches, history);
criterion_main!(benches);
