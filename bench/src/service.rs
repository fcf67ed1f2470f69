//! The chat service in process for the HTTP benchmarks (`listing`, `history`, `search`): a
//! database of its own on the benchmark PostgreSQL (`BENCH_DATABASE_URL`, else the e2e tests'
//! `E2E_DATABASE_URL`) and Redis (`BENCH_REDIS_URL` / `E2E_REDIS_URL`), the real service bound
//! on a loopback port (it migrates its database as it starts), and timed requests summarised
//! as one line of p50 and p99 with the load average. A benchmark whose servers do not answer
//! prints that it was skipped instead of failing the test command.

use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use platform_core::config::Env;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// `primary`, else `fallback`, else `default`.
pub fn env(primary: &str, fallback: &str, default: &str) -> String {
    std::env::var(primary)
        .or_else(|_| std::env::var(fallback))
        .unwrap_or_else(|_| default.into())
}

/// A connection whose driver runs on the current runtime.
pub async fn connect(url: &str) -> Option<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(client)
}

/// The 1-, 5- and 15-minute load averages, as every printed figure carries them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Times `n` calls of `f` (given the call's index) and prints p50 and p99 on one line, with
/// `note(calls)` (what the calls found, read after them) and the load average. In criterion's
/// test mode ([`crate::test_mode`]) it makes 3 calls, whatever `n`.
pub fn percentiles(
    name: &str,
    n: usize,
    mut f: impl FnMut(usize),
    note: impl FnOnce(usize) -> String,
) {
    let n = if crate::test_mode() { n.min(3) } else { n };
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name:<40} p50 {:>8.2?}  p99 {:>8.2?}  ({n} requests{}; load average {})",
        at(0.50),
        at(0.99),
        note(n),
        load_average()
    );
}

/// Which database the service gets.
pub struct Database<'a> {
    pub name: &'a str,
    /// Dropped first if it exists (a fresh one every run).
    pub recreate: bool,
    /// Dropped by [`InProcess::stop`] (false for a corpus kept between runs).
    pub drop_at_stop: bool,
}

/// A running chat service and a client for it.
pub struct InProcess {
    pub rt: Runtime,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub client: Client<HttpConnector, Empty<Bytes>>,
    /// The service's database, for seeding.
    pub url: String,
    shutdown: CancellationToken,
    admin: String,
    db: String,
    drop_at_stop: bool,
}

impl InProcess {
    /// Starts the service for benchmark `bench` on database `db` (created when missing) with
    /// `settings` beyond its stores; `None` (and a line saying why) when PostgreSQL or the
    /// service does not come up.
    pub fn start(bench: &str, db: Database<'_>, settings: &[(&str, &str)]) -> Option<InProcess> {
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
        let url = format!("{}/{}", &admin[..admin.rfind('/')?], db.name);
        let (base, shutdown) = rt.block_on(async {
            let Some(a) = connect(&admin).await else {
                println!("{bench}: skipped (no PostgreSQL at {admin})");
                return None;
            };
            if db.recreate {
                a.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name))
                    .await
                    .ok()?;
            }
            let exists = a
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db.name])
                .await
                .ok()?
                .is_some();
            if !exists {
                a.batch_execute(&format!("CREATE DATABASE {}", db.name))
                    .await
                    .ok()?;
            }
            let mut pairs = vec![
                ("CHAT_DATABASE_URL", url.as_str()),
                ("REDIS_URL", redis.as_str()),
                ("CHAT_NAMESPACE", db.name),
            ];
            pairs.extend_from_slice(settings);
            let config = chat::Config::from_env(&Env::from_pairs("chat", &pairs))
                .expect("chat configuration");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
            let base = format!("http://{}", listener.local_addr().ok()?);
            let shutdown = CancellationToken::new();
            tokio::spawn(chat::run(listener, config, shutdown.clone()));
            // The service migrates the database as it starts: ready means migrated.
            let probe: Client<HttpConnector, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let ready = probe
                    .get(format!("{base}/readyz").parse().ok()?)
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    break;
                }
                if Instant::now() > deadline {
                    println!(
                        "{bench}: skipped (the chat service did not start; Redis at {redis}?)"
                    );
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some((base, shutdown))
        })?;
        Some(InProcess {
            rt,
            base,
            client: Client::builder(TokioExecutor::new()).build_http(),
            url,
            shutdown,
            admin,
            db: db.name.to_string(),
            drop_at_stop: db.drop_at_stop,
        })
    }

    /// Stops the service; drops its database unless it is kept.
    pub fn stop(&self) {
        self.shutdown.cancel();
        if !self.drop_at_stop {
            return;
        }
        self.rt.block_on(async {
            // Let the service's connections close before the database goes.
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Some(a) = connect(&self.admin).await {
                let _ = a
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
                    .await;
            }
        });
    }
}
