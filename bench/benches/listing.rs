//! `GET /conversations/user/:userId` for a user in 1,000 conversations of 50 members each,
//! with unread counts: the chat service in-process (real routing, SQL and JSON) over HTTP,
//! against PostgreSQL and Redis at `BENCH_DATABASE_URL` / `BENCH_REDIS_URL` (else the e2e
//! tests' `E2E_DATABASE_URL` / `E2E_REDIS_URL`, as the test command sets them). Skipped, with
//! a line saying so, when PostgreSQL does not answer. Criterion measures the pages; then 500
//! requests of each 100-page (100 of the 500-page) print p50 and p99 with the load average
//! (`cargo bench -p bench --bench listing`; `scripts/bench-quick.sh listing`).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use platform_core::config::Env;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

const CONVERSATIONS: i32 = 1000;
const MEMBERS: i32 = 50;
const MESSAGES_EACH: i32 = 30;

fn env(primary: &str, fallback: &str, default: &str) -> String {
    std::env::var(primary)
        .or_else(|_| std::env::var(fallback))
        .unwrap_or_else(|_| default.into())
}

/// The seeded user's conversations: every member list 50 long (the user and 49 of 5,000
/// others), 30 messages each interleaved across conversations (a fifth from the user, a
/// seventh deleted), and in every second conversation the user has read up to the 15th.
const SEED: &str = "
    INSERT INTO conversations (id, name, type, created_at)
    SELECT md5('c' || i)::uuid, 'group ' || i, 'group', now() - make_interval(days => 30, mins => i)
    FROM generate_series(1, $C) i;
    INSERT INTO conversation_members (conversation_id, user_id, display_name, position)
    SELECT md5('c' || i)::uuid, CASE WHEN j = 0 THEN 'me' ELSE 'user-' || ((i * 7 + j) % 5000) END,
           'User ' || j, j + 1
    FROM generate_series(1, $C) i, generate_series(0, $M - 1) j;
    INSERT INTO messages (id, conversation_id, sender_id, body, sent_at, deleted_at)
    SELECT md5('m' || i || '-' || k)::uuid, md5('c' || i)::uuid,
           CASE WHEN k % 5 = 0 THEN 'me' ELSE 'user-' || ((i * 7 + 1 + k % ($M - 1)) % 5000) END,
           'message ' || k || ': see you at the stand-up, I will bring the notes',
           now() - make_interval(mins => ($C * $K - (k * $C + (i * 7919) % $C))),
           CASE WHEN k % 7 = 0 THEN now() END
    FROM generate_series(1, $K) k, generate_series(1, $C) i
    ORDER BY k, (i * 7919) % $C;
    UPDATE conversation_members cm SET read_seq = m.seq, last_read_id = m.id, read_at = now()
    FROM generate_series(2, $C, 2) i JOIN messages m ON m.id = md5('m' || i || '-15')::uuid
    WHERE cm.conversation_id = md5('c' || i)::uuid AND cm.user_id = 'me';
";

struct Setup {
    rt: Runtime,
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    shutdown: CancellationToken,
    admin: String,
    db: String,
}

async fn connect(url: &str) -> Option<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(client)
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let db = format!("bench_listing_{}", std::process::id());
    let url = format!("{}/{db}", &admin[..admin.rfind('/')?]);
    let (base, shutdown) = rt.block_on(async {
        let Some(a) = connect(&admin).await else {
            println!("listing: skipped (no PostgreSQL at {admin})");
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
        // The service migrates the new database at start; seed once it answers.
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
                println!("listing: skipped (the chat service did not start; Redis at {redis}?)");
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let d = connect(&url).await?;
        let seed = SEED
            .replace("$C", &CONVERSATIONS.to_string())
            .replace("$M", &MEMBERS.to_string())
            .replace("$K", &MESSAGES_EACH.to_string());
        d.batch_execute(&seed).await.expect("seed");
        // As autovacuum leaves a table at rest: statistics and the visibility map.
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
    /// One page: its body length and the next page's path.
    async fn page(&self, path: &str) -> (usize, Option<String>) {
        let res = self
            .client
            .get(format!("{}{path}", self.base).parse().expect("uri"))
            .await
            .expect("request");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        let next = res
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| Some(l[1..l.find('>')?].to_string()));
        let body = res.into_body().collect().await.expect("body").to_bytes();
        (body.len(), next)
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
        "{name:<40} p50 {:>8.2?}  p99 {:>8.2?}  ({n} requests; load average {})",
        at(0.50),
        at(0.99),
        load_average()
    );
}

fn listing(c: &mut Criterion) {
    let Some(s) = setup() else { return };
    let first = "/conversations/user/me?limit=100".to_string();
    let (len, next) = s.rt.block_on(s.page(&first));
    assert!(len > 100_000, "a page of 100 conversations of 50 members");
    let second = next.expect("a second page");
    let (_, third) = s.rt.block_on(s.page(&second));
    let third = third.expect("a third page");
    let largest = "/conversations/user/me?limit=500".to_string();
    let mut g = c.benchmark_group("listing");
    g.sample_size(20);
    for (name, path) in [
        ("first_page_100", &first),
        ("third_page_100", &third),
        ("first_page_500", &largest),
    ] {
        g.bench_function(name, |b| b.iter(|| s.rt.block_on(s.page(path))));
    }
    g.finish();
    percentiles(&s, "listing/first_page_100", &first, 500);
    percentiles(&s, "listing/third_page_100", &third, 500);
    percentiles(&s, "listing/first_page_500", &largest, 100);
    s.drop_database();
}

criterion_group!(benches, listing);
criterion_main!(benches);
