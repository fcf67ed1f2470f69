//! `GET /conversations/user/:userId` for a user in 1,000 conversations of 50 members each,
//! with unread counts: the chat service in-process (real routing, SQL and JSON) over HTTP,
//! against PostgreSQL and Redis at `BENCH_DATABASE_URL` / `BENCH_REDIS_URL` (else the e2e
//! tests' `E2E_DATABASE_URL` / `E2E_REDIS_URL`, as the test command sets them). Skipped, with
//! a line saying so, when PostgreSQL does not answer. Criterion measures the pages; then 500
//! requests of each 100-page (100 of the 500-page) print p50 and p99 with the load average
//! (`cargo bench -p bench --bench listing`; `scripts/bench-quick.sh listing`).

use bench::service::{self, Database, InProcess};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;

const CONVERSATIONS: i32 = 1000;
const MEMBERS: i32 = 50;
const MESSAGES_EACH: i32 = 30;

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

/// The service with the seeded database (dropped at the end).
fn setup() -> Option<InProcess> {
    let db = format!("bench_listing_{}", std::process::id());
    let database = Database {
        name: &db,
        recreate: false,
        drop_at_stop: true,
    };
    let s = InProcess::start("listing", database, &[("AUTH_MODE", "compat")])?;
    s.rt.block_on(async {
        let d = service::connect(&s.url).await?;
        let seed = SEED
            .replace("$C", &CONVERSATIONS.to_string())
            .replace("$M", &MEMBERS.to_string())
            .replace("$K", &MESSAGES_EACH.to_string());
        d.batch_execute(&seed).await.expect("seed");
        // As autovacuum leaves a table at rest: statistics and the visibility map.
        d.batch_execute("VACUUM ANALYZE").await.expect("vacuum");
        Some(())
    })?;
    Some(s)
}

/// One page: its body length and the next page's path.
async fn page(s: &InProcess, path: &str) -> (usize, Option<String>) {
    let res = s
        .client
        .get(format!("{}{path}", s.base).parse().expect("uri"))
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

fn listing(c: &mut Criterion) {
    let Some(s) = setup() else { return };
    let first = "/conversations/user/me?limit=100".to_string();
    let (len, next) = s.rt.block_on(page(&s, &first));
    assert!(len > 100_000, "a page of 100 conversations of 50 members");
    let second = next.expect("a second page");
    let (_, third) = s.rt.block_on(page(&s, &second));
    let third = third.expect("a third page");
    let largest = "/conversations/user/me?limit=500".to_string();
    let mut g = c.benchmark_group("listing");
    g.sample_size(20);
    for (name, path) in [
        ("first_page_100", &first),
        ("third_page_100", &third),
        ("first_page_500", &largest),
    ] {
        g.bench_function(name, |b| b.iter(|| s.rt.block_on(page(&s, path))));
    }
    g.finish();
    service::percentiles(
        "listing/first_page_100",
        500,
        |_| {
            s.rt.block_on(page(&s, &first));
        },
        |_| String::new(),
    );
    service::percentiles(
        "listing/third_page_100",
        500,
        |_| {
            s.rt.block_on(page(&s, &third));
        },
        |_| String::new(),
    );
    service::percentiles(
        "listing/first_page_500",
        100,
        |_| {
            s.rt.block_on(page(&s, &largest));
        },
        |_| String::new(),
    );
    s.stop();
}

criterion_group!(benches, listing);
criterion_main!(benches);
