//! `GET /search/messages` over 1,000,000 messages in 10,000 conversations, for a user who is a
//! member of 200 of them: the chat service in-process (real routing, SQL and JSON) over HTTP,
//! against PostgreSQL and Redis at `BENCH_DATABASE_URL` / `BENCH_REDIS_URL` (else the e2e
//! tests' `E2E_DATABASE_URL` / `E2E_REDIS_URL`). Skipped, with a line saying so, when
//! PostgreSQL does not answer.
//!
//! The corpus is generated in SQL (a Zipf vocabulary of 20,000 words, accented ones among
//! them; 4 to 16 words a message) into the database `bench_search_corpus`, which is KEPT
//! between runs because building it takes minutes: a run that finds it complete (its
//! `bench_corpus` row says so) only migrates it. `BENCH_SEARCH_FRESH=1` rebuilds it;
//! `BENCH_SEARCH_DROP=1` drops it at the end. Criterion measures each kind of two-word query
//! (common+rare, common+common, rare+rare, and a common phrase); then 500 requests of each
//! print p50 and p99 with the load average (`cargo bench -p bench --bench search`).
//!
//! In criterion's test mode (the test command) the corpus is 20,000 messages in 1,000
//! conversations, in `bench_search_corpus_test`, built every run and dropped at the end: the
//! kept corpus is left alone.

use std::cell::Cell;
use std::time::{Duration, Instant};

use bench::service::{self, Database, InProcess};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

const DB: &str = "bench_search_corpus";
/// Bumped whenever the corpus below changes, so a kept database of an older one is rebuilt.
const CORPUS_VERSION: i32 = 1;
const SECRET: &str = "bench-search-secret-0123456789";
/// The searching user.
const ME: &str = "me";

/// Vocabulary (ranks 1..=20,000; rank r is used with probability ~ 1/r, as words are in
/// text): the first ranks are common chat words (some accented), the rest are made of
/// syllables (a quarter of them accented), unique and stable. Messages: 1,000,000 spread
/// over 10,000 conversations of 5 members (the user in every 50th), 4-16 words each, every
/// 23rd deleted. `setseed` makes the corpus the same on every build.
const SEED: &str = "
    SELECT setseed(0.16);
    DROP TABLE IF EXISTS bench_words, bench_corpus;
    CREATE TABLE bench_corpus (version int NOT NULL);
    CREATE TABLE bench_words (rank int PRIMARY KEY, word text NOT NULL);
    INSERT INTO bench_words
    SELECT r, coalesce(
        (ARRAY['the','and','to','you','meeting','café','is','it','for','on','we','that','this',
               'tomorrow','ok','résumé','thanks','naïve','today','with','déjà','vu','lunch',
               'at','can','theme','plan','über','crème','brûlée','señor','año','mañana','are',
               'ship','release','Zürich','Málaga','São','Paulo'])[r],
        s[1 + r % 16] || s[1 + (r / 16) % 16] || s[1 + (r / 256) % 16]
            || CASE WHEN r >= 4096 THEN s[1 + (r / 4096) % 16] ELSE '' END)
    FROM generate_series(1, $V) r,
         (SELECT ARRAY['ka','lo','mi','ne','ru','sa','té','vo','zu','pé','ri','go','ça','dé',
                       'nu','fa'] AS s) syl;
    INSERT INTO conversations (id, name, type, created_at)
    SELECT md5('c' || i)::uuid, 'group ' || i, 'group', now() - interval '60 days'
    FROM generate_series(1, $C) i;
    INSERT INTO conversation_members (conversation_id, user_id, display_name, position)
    SELECT md5('c' || i)::uuid,
           CASE WHEN j = 0 AND i % 50 = 0 THEN 'me' ELSE 'user-' || ((i * 7 + j) % 5000) END,
           'User ' || j, j + 1
    FROM generate_series(1, $C) i, generate_series(0, 4) j;
    INSERT INTO messages (id, conversation_id, sender_id, body, sent_at, deleted_at)
    SELECT md5('m' || k)::uuid, md5('c' || (1 + (k::bigint * 7919) % $C))::uuid,
           'user-' || ((k * 13) % 5000),
           (SELECT string_agg((SELECT w.word FROM bench_words w WHERE w.rank = d.rank), ' '
                              ORDER BY d.j)
            FROM (SELECT j, least($V, floor(exp(random() * ln($V + 1)))::int) AS rank
                  FROM generate_series(1, 4 + (k * 7) % 13) j) d),
           now() - make_interval(secs => $N - k),
           CASE WHEN k % 23 = 0 THEN now() END
    FROM generate_series(1, $N) k
    ORDER BY k;
";

const VOCABULARY: i32 = 20_000;

/// Where the corpus lives and how large it is.
struct Corpus {
    db: &'static str,
    conversations: i32,
    messages: i32,
    /// Built once and kept between runs (the measured corpus), or built and dropped each run.
    kept: bool,
}

fn corpus() -> Corpus {
    if bench::test_mode() {
        Corpus {
            db: "bench_search_corpus_test",
            conversations: 1_000,
            messages: 20_000,
            kept: false,
        }
    } else {
        Corpus {
            db: DB,
            conversations: 10_000,
            messages: 1_000_000,
            kept: true,
        }
    }
}

struct Setup {
    s: InProcess,
    /// The words by rank (index 0 is rank 1).
    words: Vec<String>,
    /// Searches cancelled by `SEARCH_TIMEOUT_MS` (503) since the last report: a slow or
    /// loaded machine's figure says so instead of failing the run.
    cancelled: Cell<usize>,
}

/// Fills the migrated database with the corpus. The search index is dropped during the bulk
/// insert and built again once (as `CREATE INDEX` on a populated table, which is how the
/// migration meets an existing database), from its own definition, whatever it is.
async fn seed(d: &tokio_postgres::Client, corpus: &Corpus) {
    let started = Instant::now();
    let def: String = d
        .query_one("SELECT pg_get_indexdef('messages_search'::regclass)", &[])
        .await
        .expect("the search index of migration 10")
        .get::<_, String>(0)
        // A partitioned index (migration 13) is spelled `ON ONLY` the parent: built again
        // without it, it is built on every partition.
        .replacen(" ON ONLY ", " ON ", 1);
    d.batch_execute(
        "TRUNCATE conversations CASCADE; DROP INDEX messages_search; SET work_mem = '256MB'",
    )
    .await
    .expect("empty");
    let sql = SEED
        .replace("$C", &corpus.conversations.to_string())
        .replace("$N", &corpus.messages.to_string())
        .replace("$V", &VOCABULARY.to_string());
    d.batch_execute(&sql).await.expect("seed");
    let inserted = started.elapsed();
    d.batch_execute(&format!("SET maintenance_work_mem = '512MB'; {def}"))
        .await
        .expect("index");
    // VACUUM cannot share a batch (an implicit transaction); the marker goes last, so an
    // interrupted build is rebuilt.
    d.batch_execute("VACUUM ANALYZE").await.expect("vacuum");
    d.batch_execute(&format!(
        "INSERT INTO bench_corpus VALUES ({CORPUS_VERSION})"
    ))
    .await
    .expect("corpus marker");
    println!(
        "search: corpus built in {:.0?} (rows {:.0?}, index {:.0?})",
        started.elapsed(),
        inserted,
        started.elapsed() - inserted
    );
}

fn setup() -> Option<Setup> {
    let corpus = corpus();
    let database = Database {
        name: corpus.db,
        recreate: !corpus.kept || std::env::var("BENCH_SEARCH_FRESH").is_ok_and(|v| v == "1"),
        drop_at_stop: !corpus.kept || std::env::var("BENCH_SEARCH_DROP").is_ok_and(|v| v == "1"),
    };
    let settings = [("AUTH_MODE", "token"), ("INTERNAL_SECRET", SECRET)];
    let s = InProcess::start("search", database, &settings)?;
    let words = s.rt.block_on(async {
        let d = service::connect(&s.url).await?;
        let built = d
            .query_opt("SELECT version FROM bench_corpus", &[])
            .await
            .ok()
            .flatten()
            .is_some_and(|r| r.get::<_, i32>(0) == CORPUS_VERSION);
        if built {
            println!(
                "search: reusing the corpus in {} (BENCH_SEARCH_FRESH=1 rebuilds it)",
                corpus.db
            );
        } else {
            seed(&d, &corpus).await;
        }
        let words: Vec<String> = d
            .query("SELECT word FROM bench_words ORDER BY rank", &[])
            .await
            .expect("vocabulary")
            .iter()
            .map(|r| r.get(0))
            .collect();
        Some(words)
    })?;
    Some(Setup {
        s,
        words,
        cancelled: Cell::new(0),
    })
}

impl Setup {
    /// One search: the number of results (0 for one cancelled by its time limit, counted).
    async fn search(&self, q: &str) -> usize {
        let req = hyper::Request::get(format!(
            "{}/search/messages?q={}&limit=20",
            self.s.base,
            utf8_percent_encode(q, NON_ALPHANUMERIC)
        ))
        .header("x-user-id", ME)
        .header("x-internal-secret", SECRET)
        .body(Empty::new())
        .expect("request");
        let res = self.s.client.request(req).await.expect("request");
        let status = res.status();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        if status == hyper::StatusCode::SERVICE_UNAVAILABLE {
            self.cancelled.set(self.cancelled.get() + 1);
            return 0;
        }
        assert!(
            status.is_success(),
            "{q}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        let page: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json");
        page.len()
    }

    fn word(&self, rank: usize) -> &str {
        &self.words[rank - 1]
    }

    /// 20 queries of each kind. Common: ranks 1-12 (each in 7-40 % of messages); rare:
    /// ranks 2,000-20,000 (each in a few hundred messages of the million, so a handful of
    /// the user's).
    fn queries(&self) -> Vec<(&'static str, Vec<String>)> {
        let common = |i: usize| self.word(1 + i % 12);
        let rare = |i: usize| self.word(2000 + (i * 7919) % 18_000);
        let kinds: [(&'static str, &dyn Fn(usize) -> String); 4] = [
            ("common_rare", &|i| format!("{} {}", common(i), rare(i))),
            ("common_common", &|i| {
                format!("{} {}", common(i), common(i + 1 + i % 5))
            }),
            ("rare_rare", &|i| format!("{} {}", rare(i), rare(i + 3))),
            ("common_phrase", &|i| {
                format!("\"{} {}\"", common(i), common(i + 1 + i % 5))
            }),
        ];
        kinds
            .iter()
            .map(|(name, make)| (*name, (0..20).map(make).collect()))
            .collect()
    }
}

fn percentiles(s: &Setup, name: &str, queries: &[String], n: usize) {
    let found = Cell::new(0);
    s.cancelled.set(0);
    service::percentiles(
        &format!("search/{name}"),
        n,
        |i| found.set(found.get() + s.s.rt.block_on(s.search(&queries[i % queries.len()]))),
        |n| {
            let cancelled = match s.cancelled.get() {
                0 => String::new(),
                c => format!(", {c} cancelled by the time limit (503)"),
            };
            format!(
                ", {:.1} results each{cancelled}",
                found.get() as f64 / n as f64
            )
        },
    );
}

fn search(c: &mut Criterion) {
    let Some(s) = setup() else { return };
    let queries = s.queries();
    let mut g = c.benchmark_group("search");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    for (name, qs) in &queries {
        let mut i = 0;
        g.bench_function(*name, |b| {
            b.iter(|| {
                i += 1;
                s.s.rt.block_on(s.search(&qs[i % qs.len()]))
            })
        });
    }
    g.finish();
    if s.cancelled.get() > 0 {
        println!(
            "search: {} searches of the criterion runs cancelled by the time limit (503)",
            s.cancelled.get()
        );
    }
    for (name, qs) in &queries {
        percentiles(&s, name, qs, 500);
    }
    s.s.stop();
}

criterion_group!(benches, search);
criterion_main!(benches);
