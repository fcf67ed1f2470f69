//! The end-to-end harness: every test gets its own PostgreSQL database and Redis namespace,
//! and runs the real service binaries (gateway, chat, worker) as child processes on free
//! ports, so a worker can be stopped or SIGKILLed like in production.
//!
//! Environment: `E2E_DATABASE_URL` (an admin connection, default
//! `postgres://postgres@127.0.0.1:25432/postgres`), `E2E_REDIS_URL` (default
//! `redis://127.0.0.1:26379`), `E2E_BIN_DIR` (default `target/debug`). The test command
//! (`scripts/test-all.sh`) starts the servers and builds the binaries first. With
//! `E2E_REDIS_CLUSTER_NODES` (seed nodes, as `REDIS_CLUSTER_NODES` takes them) the services
//! use that Redis Cluster instead of `E2E_REDIS_URL`, and [`Stack::redis`] reaches the node
//! serving the stack's namespace. The fault tests
//! run private servers of their own ([`servers`]) so they can restart them. [`s3`] gives a
//! test its own bucket on the S3 server the test command starts.

pub mod s3;
pub mod servers;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn admin_url() -> String {
    std::env::var("E2E_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:25432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("E2E_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:26379".into())
}

/// `E2E_REDIS_CLUSTER_NODES`: the Redis Cluster the stacks use instead, if set.
pub fn redis_cluster_nodes() -> Option<String> {
    std::env::var("E2E_REDIS_CLUSTER_NODES")
        .ok()
        .filter(|n| !n.is_empty())
}

/// The `redis://` URLs of the master serving `key`'s slot in the cluster of seed `nodes`,
/// and of its replicas.
pub async fn slot_nodes(nodes: &str, key: &str) -> (String, Vec<String>) {
    let seed = nodes.split(',').next().unwrap_or_default();
    let seed = if seed.contains("://") {
        seed.to_string()
    } else {
        format!("redis://{seed}")
    };
    let mut c = redis::Client::open(seed.as_str())
        .expect("cluster seed url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to a cluster seed");
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("CLUSTER KEYSLOT");
    // Each range: [start, end, [host, port, id, ...] of its master, then of each replica].
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut c)
        .await
        .expect("CLUSTER SLOTS");
    let url = |node: &redis::Value| {
        let redis::Value::Array(n) = node else {
            panic!("a node in CLUSTER SLOTS: {node:?}")
        };
        let host: String = redis::from_redis_value_ref(&n[0]).expect("host");
        let port: i64 = redis::from_redis_value_ref(&n[1]).expect("port");
        format!("redis://{host}:{port}")
    };
    for range in ranges {
        let redis::Value::Array(r) = range else {
            continue;
        };
        let (Some(redis::Value::Int(start)), Some(redis::Value::Int(end))) = (r.first(), r.get(1))
        else {
            continue;
        };
        if (*start..=*end).contains(&slot) {
            return (url(&r[2]), r[3..].iter().map(url).collect());
        }
    }
    panic!("no master serves slot {slot}");
}

/// `node --test` of one file of `tests/node` (the official socket.io-client tests); add its
/// environment and give it to [`must_succeed`].
pub fn node_test(file: &str) -> Command {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node");
    assert!(
        dir.join("node_modules/socket.io-client").exists(),
        "run `npm ci` in tests/node first (scripts/test-all.sh does)"
    );
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=spec", file])
        .current_dir(dir);
    cmd
}

/// Runs a command to the end off the async threads, prints its output, and fails the test
/// with that output unless it succeeded.
pub async fn must_succeed(mut cmd: Command, what: &str) {
    let program = format!("{:?}", cmd.get_program());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot run {program} for {what}: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "{what} failed:\n{report}");
}

pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var("E2E_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug"));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first",
        path.display()
    );
    path
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// One running service process.
pub struct Service {
    pub name: &'static str,
    pub port: u16,
    /// Where it serves `/metrics` (`METRICS_PORT`).
    pub metrics_port: u16,
    child: Child,
}

impl Service {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its metrics port's `/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `limit` for the process to exit by itself; its status if it did.
    pub async fn exited(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, not waiting for the process to exit ([`Service::exited`] does).
    pub fn signal_term(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal_term();
        self.child.wait().expect("wait for service")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the stack's services authenticate callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `AUTH_MODE=compat`: no tokens, identities taken from requests (the original's clients).
    Compat,
    /// `AUTH_MODE=token` with this `INTERNAL_SECRET`.
    Token(String),
}

/// A database, a namespace and the services using them.
pub struct Stack {
    pub auth: Auth,
    pub database_url: String,
    pub namespace: String,
    db_name: String,
    pub chat: Option<Service>,
    pub call: Option<Service>,
    pub workers: Vec<Service>,
    pub gateway: Option<Service>,
    pub http: reqwest::Client,
    log_dir: PathBuf,
    /// Extra environment for the chat service.
    pub chat_env: Vec<(String, String)>,
    pub worker_env: Vec<(String, String)>,
    admin_url: String,
    redis_url: String,
    /// The Redis Cluster's seed nodes, when the stack uses one ([`redis_cluster_nodes`]).
    pub redis_cluster: Option<String>,
    /// `SOCKET_DIR` of the stack's chat service and gateways (Unix sockets between them, and
    /// WebSockets handed to chat); `None` before starting them: TCP only, as on separate hosts.
    pub socket_dir: Option<PathBuf>,
    /// `STREAM_PARTITIONS` of its chat instances, workers and chatctl: 1 unless a test sets
    /// it before starting them, or `E2E_STREAM_PARTITIONS` does for every stack.
    pub partitions: usize,
}

impl Stack {
    /// Gateway + chat + one worker + call, ready, in compat mode (no tokens).
    pub async fn start() -> Stack {
        let mut s = Stack::empty().await;
        s.start_chat().await;
        s.start_worker().await;
        s.start_call(&[]).await;
        s.start_gateway(&[]).await;
        s
    }

    /// The same with authentication on (`AUTH_MODE=token`); the lists add to the chat
    /// service's and the gateway's environment (socket caps, rate limits, session lifetime).
    pub async fn secure(chat_env: &[(&str, &str)], gateway_env: &[(&str, &str)]) -> Stack {
        let mut s = Stack::empty().await;
        s.auth = Auth::Token(unique("secret-0123456789abcdef"));
        s.chat_env
            .extend(chat_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        s.start_chat().await;
        s.start_worker().await;
        s.start_call(&[]).await;
        s.start_gateway(gateway_env).await;
        s
    }

    /// [`Stack::secure`] with the send stream in `partitions` partitions, and `workers`
    /// workers sharing them.
    pub async fn secure_partitioned(partitions: usize, workers: usize) -> Stack {
        let mut s = Stack::empty().await;
        s.auth = Auth::Token(unique("secret-0123456789abcdef"));
        s.partitions = partitions;
        s.start_chat().await;
        s.start_workers(workers).await;
        s.start_call(&[]).await;
        s.start_gateway(&[]).await;
        s
    }

    /// Which worker (consumer name) holds each partition's lease now.
    pub async fn lease_owners(&self) -> Vec<Option<String>> {
        let keys =
            platform_core::stream::Keys::new(&self.key_prefix()).partitioned(self.partitions);
        let mut r = self.redis().await;
        let mut out = Vec::new();
        for p in 0..self.partitions {
            let owner: Option<String> = redis::cmd("GET")
                .arg(keys.lease(p))
                .query_async(&mut r)
                .await
                .expect("GET lease");
            out.push(owner);
        }
        out
    }

    pub async fn start_call(&mut self, env: &[(&str, &str)]) {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let svc = self.spawn("call", free_port(), &env);
        self.wait_ready(&svc, "/readyz").await;
        self.call = Some(svc);
    }

    /// Starts the call service again on the port the gateway already knows.
    pub async fn start_call_on(&mut self, port: u16) {
        let svc = self.spawn("call", port, &[]);
        self.wait_ready(&svc, "/readyz").await;
        self.call = Some(svc);
    }

    /// A fresh database and namespace, no services yet.
    pub async fn empty() -> Stack {
        Stack::empty_on(admin_url(), redis_url()).await
    }

    /// The same, on given servers (the fault tests run their own).
    pub async fn empty_on(admin: String, redis: String) -> Stack {
        let db_name = unique("e2e");
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach PostgreSQL at {admin}: {e} (start it with scripts/test-all.sh)"
                )
            });
        tokio::spawn(conn);
        // PostgreSQL refuses to copy template1 while any session is connected to it (another
        // tool's, briefly): retry a few times before giving up.
        let mut attempt = 0;
        while let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE {db_name}"))
            .await
        {
            attempt += 1;
            assert!(attempt < 20, "create test database: {e}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let database_url = match admin.rfind('/') {
            Some(i) => format!("{}/{db_name}", &admin[..i]),
            None => panic!("E2E_DATABASE_URL needs a database path"),
        };
        let log_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/e2e-logs")
            .join(&db_name);
        std::fs::create_dir_all(&log_dir).expect("log dir");
        Stack {
            auth: Auth::Compat,
            database_url,
            namespace: unique("ns"),
            db_name,
            chat: None,
            call: None,
            workers: Vec::new(),
            gateway: None,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .expect("http client"),
            log_dir,
            chat_env: Vec::new(),
            worker_env: Vec::new(),
            admin_url: admin,
            redis_url: redis,
            redis_cluster: redis_cluster_nodes(),
            // Short, under /tmp: a Unix socket path holds at most 107 bytes.
            socket_dir: Some(std::env::temp_dir().join("e2e-sock").join(unique("s"))),
            partitions: std::env::var("E2E_STREAM_PARTITIONS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
        }
    }

    /// The send stream's partitions, by number.
    pub fn streams(&self) -> Vec<String> {
        platform_core::stream::Keys::new(&self.key_prefix())
            .partitioned(self.partitions)
            .streams()
            .to_vec()
    }

    fn spawn(&self, name: &'static str, port: u16, env: &[(String, String)]) -> Service {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{name}.log")))
            .expect("log file");
        let mut cmd = self.command(name);
        // The port just freed for the service is likely to come back: not that one.
        let metrics_port = std::iter::repeat_with(free_port)
            .find(|p| *p != port)
            .expect("a free port");
        cmd.env("PORT", port.to_string())
            .env("METRICS_PORT", metrics_port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Service {
            name,
            port,
            metrics_port,
            child,
        }
    }

    /// What the stack's `name` services (every instance) have logged so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// A service binary with this stack's environment (database, Redis, namespace, auth),
    /// not started: for its subcommands (`worker dead-letters …`).
    pub fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(bin(name));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("CHAT_DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env(
                "REDIS_CLUSTER_NODES",
                self.redis_cluster.as_deref().unwrap_or_default(),
            )
            .env("CHAT_NAMESPACE", &self.namespace)
            .env("STREAM_PARTITIONS", self.partitions.to_string())
            // Tests send fast from one address: limits are raised unless a test sets them.
            .env("RATE_SENDS_PER_ADDRESS", "1000000")
            .env("RATE_SENDS_PER_USER", "1000000")
            .env("RATE_EDITS_PER_ADDRESS", "1000000")
            .env("RATE_EDITS_PER_USER", "1000000")
            .env("RATE_DELETES_PER_ADDRESS", "1000000")
            .env("RATE_DELETES_PER_USER", "1000000")
            .env("RATE_CONVERSATIONS_PER_ADDRESS", "1000000")
            .env("RATE_CONVERSATIONS_PER_USER", "1000000")
            .env("RATE_CALLS_PER_ADDRESS", "1000000")
            .env("RATE_CALLS_PER_USER", "1000000")
            .env("RATE_SIGNALS_PER_ADDRESS", "1000000")
            .env("RATE_SIGNALS_PER_USER", "1000000")
            .env("RATE_MEMBERS_PER_ADDRESS", "1000000")
            .env("RATE_MEMBERS_PER_USER", "1000000")
            .env("RATE_READS_PER_ADDRESS", "1000000")
            .env("RATE_READS_PER_USER", "1000000")
            .env("RATE_SEARCHES_PER_ADDRESS", "1000000")
            .env("RATE_SEARCHES_PER_USER", "1000000")
            .env("MAX_CONNECTIONS_PER_ADDRESS", "1000000")
            .env("RATE_CONNECTS_PER_ADDRESS", "1000000")
            .env("RATE_REGISTRATIONS_PER_ADDRESS", "1000000")
            .env("RATE_LOGIN_FAILURES_PER_ADDRESS", "1000000")
            .env("RATE_UPLOADS_PER_ADDRESS", "1000000")
            .env("RATE_UPLOADS_PER_USER", "1000000")
            // Uploads land beside the stack's logs unless a test names a directory (the
            // default, data/attachments, would be relative to wherever the tests run).
            .env("ATTACHMENT_DIR", self.log_dir.join("attachments"))
            .env(
                "RUST_LOG",
                std::env::var("E2E_LOG").unwrap_or_else(|_| "info".into()),
            );
        match &self.auth {
            Auth::Compat => cmd.env("AUTH_MODE", "compat"),
            Auth::Token(secret) => cmd.env("AUTH_MODE", "token").env("INTERNAL_SECRET", secret),
        };
        cmd
    }

    async fn wait_ready(&self, svc: &Service, path: &str) {
        let url = format!("{}{path}", svc.url());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(&url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} never became ready at {url}",
                svc.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Another chat instance on the same database and namespace, owned by the caller.
    pub async fn start_chat_instance(&self) -> Service {
        let svc = self.spawn("chat", free_port(), &self.chat_env);
        self.wait_ready(&svc, "/readyz").await;
        svc
    }

    /// Another chat instance on a given port (one restarted where its clients expect it),
    /// owned by the caller.
    pub async fn start_chat_instance_on(&self, port: u16) -> Service {
        let svc = self.spawn("chat", port, &self.chat_env);
        self.wait_ready(&svc, "/readyz").await;
        svc
    }

    /// The primary chat instance's environment: `chat_env` and the stack's socket directory
    /// (other instances stay on TCP: one directory holds one instance's sockets).
    fn primary_chat_env(&self) -> Vec<(String, String)> {
        let mut env = self.chat_env.clone();
        if let Some(dir) = &self.socket_dir {
            env.push(("SOCKET_DIR".into(), dir.display().to_string()));
        }
        env
    }

    /// Starts the chat service again on the port the gateway already knows.
    pub async fn start_chat_on(&mut self, port: u16) {
        let svc = self.spawn("chat", port, &self.primary_chat_env());
        self.wait_ready(&svc, "/readyz").await;
        self.chat = Some(svc);
    }

    pub async fn start_chat(&mut self) {
        let svc = self.spawn("chat", free_port(), &self.primary_chat_env());
        self.wait_ready(&svc, "/readyz").await;
        self.chat = Some(svc);
    }

    pub async fn start_worker(&mut self) {
        self.start_workers(1).await;
    }

    /// Starts `n` workers at once, then waits for all of them.
    pub async fn start_workers(&mut self, n: usize) {
        let started: Vec<Service> = (0..n).map(|_| self.spawn_worker(&[])).collect();
        for svc in &started {
            self.wait_ready(svc, "/readyz").await;
        }
        self.workers.extend(started);
    }

    /// A worker with the test settings, `worker_env` and `extra`, not waited for (one with a
    /// fault hook may exit before it ever answers); owned by the caller.
    pub fn spawn_worker(&self, extra: &[(&str, &str)]) -> Service {
        let mut env = vec![
            ("CLAIM_IDLE_MS".to_string(), "1000".to_string()),
            ("MAINTENANCE_MS".into(), "200".into()),
        ];
        env.extend(self.worker_env.iter().cloned());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.spawn("worker", free_port(), &env)
    }

    pub async fn start_gateway(&mut self, env: &[(&str, &str)]) {
        let svc = self.start_gateway_instance(env).await;
        self.gateway = Some(svc);
    }

    /// Another gateway in front of the same services and stores, owned by the caller.
    pub async fn start_gateway_instance(&self, env: &[(&str, &str)]) -> Service {
        let chat = self
            .chat
            .as_ref()
            .map(|c| c.url())
            .unwrap_or_else(|| "http://127.0.0.1:9".into());
        let call = self
            .call
            .as_ref()
            .map(|c| c.url())
            .unwrap_or_else(|| "http://127.0.0.1:9".into());
        let mut full = vec![
            ("CHAT_SERVICE_URL".to_string(), chat),
            ("CALL_SERVICE_URL".to_string(), call),
        ];
        if let Some(dir) = &self.socket_dir {
            full.push(("SOCKET_DIR".into(), dir.display().to_string()));
        }
        full.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let svc = self.spawn("gateway", free_port(), &full);
        self.wait_ready(&svc, "/healthz").await;
        svc
    }

    /// The gateway's base URL.
    pub fn url(&self) -> String {
        self.gateway.as_ref().expect("gateway running").url()
    }

    /// One value from a service's `/metrics` at `url`: the first line `name{labels} value` or
    /// `name value`.
    pub async fn metric(&self, url: &str, name: &str) -> f64 {
        let text = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {url}"))
    }
    /// A stack (chat with `SEND_WAIT_MS` = `send_wait_ms`, a worker, the gateway) whose
    /// `messages` table refuses any body starting with "poison": an error in the data itself
    /// (SQLSTATE 23514), the kind the worker dead-letters. Returns it with the messages path
    /// of a group of `a` and `b`. Drop the constraint (`poison`) to let replays through.
    pub async fn poisoned(send_wait_ms: &str) -> (Stack, String) {
        let mut s = Stack::empty().await;
        s.chat_env
            .push(("SEND_WAIT_MS".into(), send_wait_ms.to_string()));
        s.start_chat().await;
        s.start_worker().await;
        s.start_gateway(&[]).await;
        let conv = s.group(&["a", "b"]).await;
        s.db()
            .await
            .batch_execute(
                "ALTER TABLE messages ADD CONSTRAINT poison CHECK (body NOT LIKE 'poison%')",
            )
            .await
            .unwrap();
        (s, format!("/conversations/{conv}/messages"))
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
            .await
            .expect("connect to test database");
        tokio::spawn(conn);
        client
    }

    /// The prefix of the stack's Redis keys and channels (the namespace, in braces on a
    /// cluster: `platform_core::config::key_prefix`).
    pub fn key_prefix(&self) -> String {
        platform_core::config::key_prefix(&self.namespace, self.redis_cluster.is_some())
    }

    /// A connection to the stack's Redis: on a cluster, to the master serving the
    /// namespace's slot (every key of the stack is there).
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        let url = match &self.redis_cluster {
            Some(nodes) => slot_nodes(nodes, &self.key_prefix()).await.0,
            None => self.redis_url.clone(),
        };
        redis::Client::open(url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis")
    }

    /// Entries of the send stream (every partition) delivered to a worker and not yet
    /// acknowledged.
    pub async fn pending_entries(&self) -> i64 {
        let mut r = self.redis().await;
        let mut total = 0;
        for stream in self.streams() {
            let summary: redis::Value = redis::cmd("XPENDING")
                .arg(stream)
                .arg("workers")
                .query_async(&mut r)
                .await
                .expect("XPENDING");
            total += match summary {
                redis::Value::Array(v) => match v.first() {
                    Some(redis::Value::Int(n)) => *n,
                    other => panic!("unexpected XPENDING count {other:?}"),
                },
                other => panic!("unexpected XPENDING reply {other:?}"),
            };
        }
        total
    }

    /// Every entry of the send stream read by a worker and acknowledged: nothing left to
    /// deliver (the group's lag is 0) and nothing delivered but unacknowledged. Unlike
    /// `pending_entries() == 0`, false while a worker has yet to read what is queued.
    pub async fn queue_drained(&self) -> bool {
        let mut r = self.redis().await;
        for stream in self.streams() {
            let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(stream)
                .query_async(&mut r)
                .await
                .expect("XINFO GROUPS");
            let drained = info
                .groups
                .iter()
                .find(|g| g.name == "workers")
                .is_some_and(|g| g.pending == 0 && g.lag == Some(0));
            if !drained {
                return false;
            }
        }
        true
    }

    /// Entries in the dead-letter stream.
    pub async fn dead_letters(&self) -> i64 {
        let mut r = self.redis().await;
        redis::cmd("XLEN")
            .arg(format!("{}:messages:dead", self.key_prefix()))
            .query_async(&mut r)
            .await
            .expect("XLEN")
    }

    /// How many times each body is stored (deleted messages included): what a user would
    /// see doubled, which ids and `clientMessageId`s (unique by constraint) cannot show.
    pub async fn stored_bodies(&self) -> std::collections::HashMap<String, i64> {
        self.db()
            .await
            .query("SELECT body, count(*) FROM messages GROUP BY body", &[])
            .await
            .expect("stored bodies")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// A request through the gateway: `(status, headers, JSON body or Null)`.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let req = self.http.request(
            method.parse().expect("method"),
            format!("{}{path}", self.url()),
        );
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        Reply::from(req.send().await.expect("request")).await
    }

    /// A request through the gateway with `Authorization: Bearer <token>` when given.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(
            method.parse().expect("method"),
            format!("{}{path}", self.url()),
        );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::from(req.send().await.expect("request")).await
    }

    /// Registers `user` (display name `User <user>`, password `password-<user>`); its token.
    pub async fn register(&self, user: &str) -> String {
        let r = self
            .post(
                "/auth/register",
                serde_json::json!({
                    "userId": user,
                    "displayName": format!("User {user}"),
                    "password": format!("password-{user}"),
                }),
            )
            .await;
        assert_eq!(r.status, 201, "register {user}: {:?}", r.body);
        r.body["token"].as_str().expect("token").to_string()
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }

    /// Creates a group conversation of the given users; returns its id.
    pub async fn group(&self, users: &[&str]) -> String {
        let r = self
            .post(
                "/conversations",
                serde_json::json!({"type": "group", "name": "test", "members": members(users)}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_str().expect("id").to_string()
    }

    /// Registers `name` ([`Stack::register`]): a signed-in user of a token-mode stack.
    pub async fn sign_up(&self, name: &str) -> User {
        User {
            id: name.to_string(),
            token: self.register(name).await,
        }
    }

    /// Creates, as `owner`, a group of `owner` and `others` (201); returns its id.
    pub async fn group_of(&self, owner: &User, others: &[&User]) -> String {
        let users: Vec<&str> = std::iter::once(owner.id.as_str())
            .chain(others.iter().map(|u| u.id.as_str()))
            .collect();
        let r = self
            .request(
                "POST",
                "/conversations",
                Some(&owner.token),
                Some(serde_json::json!({"type": "group", "name": "test", "members": members(&users)})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_str().expect("id").to_string()
    }

    /// Sends `body` as `u` and waits for it to be stored (201); returns its id.
    pub async fn send_as(&self, u: &User, conversation: &str, body: &str) -> String {
        let r = self
            .request(
                "POST",
                &format!("/conversations/{conversation}/messages"),
                Some(&u.token),
                Some(serde_json::json!({"senderId": u.id, "body": body})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_str().expect("id").to_string()
    }

    /// The newest page of `conversation`'s history as `u` sees it (200).
    pub async fn history_of(&self, u: &User, conversation: &str) -> Vec<serde_json::Value> {
        let r = self
            .request(
                "GET",
                &format!("/conversations/{conversation}/messages"),
                Some(&u.token),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body.as_array().expect("a page").clone()
    }

    /// The first page of `u`'s conversation listing (its default size), as `u` sees it (200).
    pub async fn listing_of(&self, u: &User) -> Vec<serde_json::Value> {
        let r = self
            .request(
                "GET",
                &format!("/conversations/user/{}", u.id),
                Some(&u.token),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body.as_array().expect("a page").clone()
    }

    /// `POST /conversations/:id/messages` as `u` with `body` (its `senderId` set to `u`).
    pub async fn send_json(&self, u: &User, conversation: &str, mut body: Value) -> Reply {
        body["senderId"] = Value::from(u.id.as_str());
        let path = format!("/conversations/{conversation}/messages");
        self.request("POST", &path, Some(&u.token), Some(body))
            .await
    }

    /// `DELETE /conversations/:id/messages/:messageId` as `u`.
    pub async fn delete_message(&self, u: &User, conversation: &str, id: &Value) -> Reply {
        let id = id.as_str().expect("a message id");
        let path = format!("/conversations/{conversation}/messages/{id}");
        self.request("DELETE", &path, Some(&u.token), None).await
    }

    /// `DELETE /conversations/:id/members/:userId` as `by` (a removal, or leaving).
    pub async fn remove_member(&self, by: &User, conversation: &str, user_id: &str) -> Reply {
        let path = format!("/conversations/{conversation}/members/{user_id}");
        self.request("DELETE", &path, Some(&by.token), None).await
    }

    /// The stack's stores as its services read them (for `platform_core` calls in tests).
    pub fn stores(&self) -> platform_core::config::Stores {
        platform_core::config::Stores {
            database_url: self.database_url.clone(),
            redis_url: self.redis_url.clone(),
            redis_cluster: self
                .redis_cluster
                .as_deref()
                .map(|n| n.split(',').map(|n| format!("redis://{n}")).collect())
                .unwrap_or_default(),
            namespace: self.key_prefix(),
            pg_pool_size: 4,
            redis_pool_size: 4,
        }
    }

    /// The worker's commit notices of this stack, as the chat service hears them (sharded
    /// on a cluster): `next()` is the next one.
    pub async fn committed_notices(&self) -> platform_core::pubsub::Messages {
        let channel = platform_core::stream::Keys::new(&self.key_prefix()).notices;
        let (_probe, messages) = platform_core::pubsub::subscribe(&self.stores(), &[&channel])
            .await
            .expect("subscribe to the commit notices");
        messages
    }

    /// Sends `n` messages from `sender` to `conversation`, bodies `m0`, `m1`, …; each is
    /// stored at once (201).
    pub async fn send_messages(&self, conversation: &str, sender: &str, n: usize) {
        let path = format!("/conversations/{conversation}/messages");
        for i in 0..n {
            let r = self
                .post(
                    &path,
                    serde_json::json!({"senderId": sender, "body": format!("m{i}")}),
                )
                .await;
            assert_eq!(r.status, 201, "{:?}", r.body);
        }
    }

    /// Polls until `f` holds or the deadline passes.
    pub async fn eventually<F, Fut>(&self, what: &str, limit: Duration, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        while !f().await {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.gateway.take();
        self.chat.take();
        self.call.take();
        self.workers.clear();
        if let Some(dir) = &self.socket_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        let db = self.db_name.clone();
        let admin = self.admin_url.clone();
        // Drop runs outside async context guarantees: use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// A signed-in user of a token-mode stack ([`Stack::sign_up`]).
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

/// The people of a conversation or call as the API takes them: `User <id>` display names.
pub fn members(users: &[&str]) -> Value {
    Value::Array(
        users
            .iter()
            .map(|u| serde_json::json!({"userId": u, "displayName": format!("User {u}")}))
            .collect(),
    )
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from(r: reqwest::Response) -> Reply {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the contract's error body for this status.
    pub fn assert_error(&self, status: u16) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.body["statusCode"], status, "{:?}", self.body);
        assert!(self.body["error"].is_string(), "{:?}", self.body);
        assert!(self.body["message"].is_string(), "{:?}", self.body);
    }
}

/// The realtime client of the fault tests (`tests/node/follower.mjs`, the official client):
/// follows one conversation through the gateway; [`Follower::finish`] returns its report
/// `{"ids": [...], "events": [every message:created id received, repeats kept], "connects": n}`.
pub struct Follower {
    child: Child,
}

impl Follower {
    /// Starts it and waits until its socket is connected and has joined.
    pub async fn start(gateway: &str, conversation: &str, user: &str) -> Follower {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node");
        let mut child = Command::new("node")
            .arg("follower.mjs")
            .current_dir(&dir)
            .env("GATEWAY_URL", gateway)
            .env("CONVERSATION_ID", conversation)
            .env("USER_ID", user)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node");
        let stderr = child.stderr.take().expect("stderr");
        let connected = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stderr).lines();
            let seen = lines.any(|l| l.is_ok_and(|l| l == "connected"));
            // Keep draining, so the follower never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            seen
        });
        let connected = tokio::time::timeout(Duration::from_secs(15), connected)
            .await
            .expect("the follower did not connect within 15 s")
            .expect("join");
        assert!(connected, "the follower exited before connecting");
        // Its presence:join subscribes it to the conversation: give that a moment.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Follower { child }
    }

    /// SIGTERM, then its report.
    pub async fn finish(self) -> Value {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let child = self.child;
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("join")
            .expect("follower output");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            let head: String = String::from_utf8_lossy(&out.stdout)
                .chars()
                .take(300)
                .collect();
            panic!("no report from the follower ({e}; {}): {head}", out.status)
        })
    }

    /// How many times each message's `message:created` reached the socket.
    pub fn event_counts(report: &Value) -> HashMap<String, u64> {
        let mut counts = HashMap::new();
        for id in report["events"].as_array().expect("events") {
            *counts
                .entry(id.as_str().expect("an id").to_string())
                .or_default() += 1;
        }
        counts
    }

    /// Message ids whose `message:created` reached the socket more than once.
    pub fn doubled(report: &Value) -> Vec<(String, u64)> {
        Follower::event_counts(report)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect()
    }
}

/// `GET /me` at `base` with `token`: its status.
pub async fn me(s: &Stack, base: &str, token: &str) -> u16 {
    s.http
        .get(format!("{base}/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Polls `GET /me` at `base` until it is 401 (panics past `limit`), then checks that it stays
/// 401 for a while: a revoked token is never accepted again.
pub async fn refused_from_now_on(s: &Stack, base: &str, token: &str, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        let status = me(s, base, token).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200, "{what}");
        assert!(
            Instant::now() < deadline,
            "{what}: still accepted after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..40 {
        assert_eq!(me(s, base, token).await, 401, "{what}: accepted again");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Deletes the stack's one session from Redis without publishing its revocation: a
/// revocation nobody heard, as if it was published while a gateway was not subscribed.
pub async fn end_session_unannounced(s: &Stack) {
    let mut redis = s.redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:session:*", s.key_prefix()))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let _: i64 = redis::cmd("DEL")
        .arg(&keys[0])
        .query_async(&mut redis)
        .await
        .unwrap();
}

/// What `keys` hold now (`DUMP` and `PTTL`; a key that does not exist is left out), to be
/// put back by [`restore_keys`]: the state of a replica that never receives what is written
/// after it, for tests of a failover that loses writes.
pub async fn dump_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &[String],
) -> Vec<(String, Vec<u8>, i64)> {
    let mut out = Vec::new();
    for k in keys {
        let (dump, ttl): (Option<Vec<u8>>, i64) = redis::pipe()
            .cmd("DUMP")
            .arg(k)
            .cmd("PTTL")
            .arg(k)
            .query_async(conn)
            .await
            .expect("DUMP");
        if let Some(dump) = dump {
            out.push((k.clone(), dump, ttl.max(0)));
        }
    }
    out
}

/// Puts back what [`dump_keys`] read, with what was left of each key's TTL.
pub async fn restore_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    dumped: &[(String, Vec<u8>, i64)],
) {
    for (k, dump, ttl) in dumped {
        let (): () = redis::cmd("RESTORE")
            .arg(k)
            .arg(*ttl)
            .arg(dump.as_slice())
            .arg("REPLACE")
            .query_async(conn)
            .await
            .expect("RESTORE");
    }
}

/// Makes the stack's Redis hold every command for `ms` milliseconds (`CLIENT PAUSE ... ALL`),
/// as a connection that hangs without closing would look to its clients, then waits until
/// the pause is over and half a second more. Disturbs every test sharing that Redis: call it
/// from a test file of its own.
pub async fn hang_redis(s: &Stack, ms: u64) {
    let mut redis = s.redis().await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(ms)
        .arg("ALL")
        .query_async(&mut redis)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(ms + 500)).await;
}

/// The message bodies of a history page answered 200 (panics on any other answer).
pub fn page_bodies(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
        .as_array()
        .expect("a page")
        .iter()
        .map(|m| m["body"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Whether `url` answers 200 within `tries` requests made with `client` (a connection slot
/// freed a moment ago is found by one of them).
pub async fn answers_within(client: &reqwest::Client, url: &str, tries: usize) -> bool {
    for _ in 0..tries {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return true;
        }
    }
    false
}
