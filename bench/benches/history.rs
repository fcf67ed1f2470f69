//! `GET /conversations/:id/messages` (the history page) for a conversation of 2,000
//! messages: the chat service in-process over HTTP against PostgreSQL and Redis at
//! `BENCH_DATABASE_URL` / `BENCH_REDIS_URL` (else `E2E_DATABASE_URL` / `E2E_REDIS_URL`),
//! skipped with a line saying so when PostgreSQL does not answer. It measures what reading
//! replies and reactions (`platform_core::model::hydrate`) costs a page: with
//! `HISTORY_REACTIONS=1` every fifth message is a reply and every message has reactions
//! (1-3 emoji of 1-12 users each); without it the data is the same as before replies existed
//! (so the same file measures a build without them). The page is answered from the chat
//! service's page cache after the first read; `HISTORY_CACHE_BYTES=0` turns it off, so each
//! page is read from PostgreSQL (hydrate included). Criterion measures the pages, then
//! 300 requests of each print p50 and p99 with the load average
//! (`cargo bench -p bench --bench history`).

use bench::service::{self, Database, InProcess};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;

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

/// The service with the seeded database (dropped at the end).
fn setup() -> Option<InProcess> {
    let reactions = std::env::var("HISTORY_REACTIONS").is_ok_and(|v| v == "1");
    let db = format!("bench_history_{}", std::process::id());
    let database = Database {
        name: &db,
        recreate: false,
        drop_at_stop: true,
    };
    let cache = std::env::var("HISTORY_CACHE_BYTES").unwrap_or_else(|_| "67108864".into());
    let settings = [
        ("AUTH_MODE", "compat"),
        ("HISTORY_CACHE_BYTES", cache.as_str()),
    ];
    let s = InProcess::start("history", database, &settings)?;
    s.rt.block_on(async {
        let d = service::connect(&s.url).await?;
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
        Some(())
    })?;
    Some(s)
}

/// One page: its body length.
async fn page(s: &InProcess, path: &str) -> usize {
    let res = s
        .client
        .get(format!("{}{path}", s.base).parse().expect("uri"))
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

fn percentiles(s: &InProcess, name: &str, path: &str, n: usize) {
    let bytes = s.rt.block_on(page(s, path));
    service::percentiles(
        name,
        n,
        |_| {
            s.rt.block_on(page(s, path));
        },
        |_| format!(", {bytes} bytes"),
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
        g.bench_function(name, |b| b.iter(|| s.rt.block_on(page(&s, path))));
    }
    g.finish();
    percentiles(&s, "history/page_100", &newest, 300);
    percentiles(&s, "history/page_500", &largest, 100);
    s.stop();
}

criterion_group!(benches, history);
criterion_main!(benches);
