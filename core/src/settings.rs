//! The registry of settings: every variable a service reads, the services that read it, its
//! default and its meaning, declared once. The command line ([`crate::cli`]: a flag per
//! setting), the configuration readers ([`crate::config::Env`], which take their defaults
//! from here and refuse a name that is not declared) and the README's Configuration table
//! ([`markdown`]) are all made from this table.
//!
//! One table for every service rather than one per service: a variable that several
//! services read (`PORT`, `BODY_LIMIT_BYTES`, `DEDUPE_TTL_SECS`) has one entry and one
//! meaning, and the README is rendered without depending on every service crate.

use std::fmt::Write as _;

/// The services, in the order the README and the help name them.
pub const SERVICES: [&str; 5] = ["gateway", "chat", "call", "worker", "web"];

/// The command-line tools that read settings too (not services: the README's "all" means
/// the five services, and a tool is named where it reads a setting).
pub const TOOLS: [&str; 1] = ["chatctl"];

/// One setting: an environment variable, and the flag made from it ([`flag`]).
#[derive(Debug)]
pub struct Setting {
    pub var: &'static str,
    /// The services that read it (each reads exactly these: see [`check_reads`]).
    pub services: &'static [&'static str],
    pub default: DefaultValue,
    /// What it does, as the README says it (Markdown: code in backticks).
    pub meaning: &'static str,
}

/// A setting's value when it is not given.
#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    /// The same for every service that reads it; read as if it had been given.
    Value(&'static str),
    /// One per service that reads it (`(service, value)`).
    PerService(&'static [(&'static str, &'static str)]),
    /// No value: the reader decides what its absence means, and this says it (Markdown).
    Unset(&'static str),
}

use DefaultValue::{PerService, Unset, Value};

impl Setting {
    pub fn read_by(&self, service: &str) -> bool {
        self.services.contains(&service)
    }

    /// Its default for `service`; `None` for [`DefaultValue::Unset`].
    pub fn default_for(&self, service: &str) -> Option<&'static str> {
        match self.default {
            Value(v) => Some(v),
            PerService(per) => Some(
                per.iter()
                    .find(|(s, _)| *s == service)
                    .unwrap_or_else(|| panic!("{} has no default for {service}", self.var))
                    .1,
            ),
            Unset(_) => None,
        }
    }
}

/// The command-line flag of a variable: `PG_POOL_SIZE` is `--pg-pool-size`.
pub fn flag(var: &str) -> String {
    format!("--{}", var.to_ascii_lowercase().replace('_', "-"))
}

/// The setting named `var`, if it is declared.
pub fn find(var: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.var == var)
}

/// The settings `service` reads, in the table's order.
pub fn of(service: &str) -> impl Iterator<Item = &'static Setting> + '_ {
    SETTINGS.iter().filter(move |s| s.read_by(service))
}

/// A value as the README writes it: numbers bare, anything else as code.
fn cell_value(v: &str) -> String {
    if v.is_empty() {
        "empty".into()
    } else if v.bytes().all(|b| b.is_ascii_digit()) {
        v.into()
    } else {
        format!("`{v}`")
    }
}

/// The README's Configuration table: one row per setting.
pub fn markdown() -> String {
    let mut out = String::from("| variable | services | default | meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let services = if s.services == SERVICES {
            "all".to_string()
        } else {
            s.services.join(", ")
        };
        let default = match s.default {
            Value(v) => cell_value(v),
            PerService(per) => per
                .iter()
                .map(|(service, v)| format!("{service} {}", cell_value(v)))
                .collect::<Vec<_>>()
                .join(", "),
            Unset(text) => text.to_string(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {services} | {default} | {} |",
            s.var, s.meaning
        );
    }
    out
}

/// Fails unless `read` is exactly what `service` declares: a setting read but not declared
/// for it, or declared but never read. For each service's tests, with the names its
/// configuration read ([`crate::config::Env::names_read`]) and what `launch` reads besides.
pub fn check_reads(service: &str, read: &std::collections::BTreeSet<String>) -> Result<(), String> {
    let declared: std::collections::BTreeSet<String> =
        of(service).map(|s| s.var.to_string()).collect();
    let undeclared: Vec<_> = read.difference(&declared).collect();
    let unread: Vec<_> = declared.difference(read).collect();
    if undeclared.is_empty() && unread.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{service}: read but not declared for it in platform_core::settings: {undeclared:?}; \
             declared for it but not read: {unread:?}"
        ))
    }
}

/// For each service's tests: reads its configuration (`config`) and what `launch` reads for
/// every service ([`crate::server::Common`]) from `pairs`, as `service`, and panics unless
/// exactly the settings declared for it were read ([`check_reads`]). `pairs` must make a
/// valid configuration, with every optional setting that guards others (`S3_BUCKET`) unset.
pub fn assert_reads<C>(
    service: &'static str,
    pairs: &[(&str, &str)],
    config: impl FnOnce(&crate::config::Env) -> Result<C, crate::config::ConfigError>,
) {
    let env = crate::config::Env::from_pairs(service, pairs);
    if let Err(e) = crate::server::Common::from_env(&env) {
        panic!("{service}: {e}");
    }
    if let Err(e) = config(&env) {
        panic!("{service}: {e}");
    }
    if let Err(e) = check_reads(service, &env.names_read()) {
        panic!("{e}");
    }
}

/// Every setting. Keep the README's order: the table is rendered in this order.
pub const SETTINGS: &[Setting] = &[
    Setting {
        var: "PORT",
        services: &["gateway", "chat", "call", "worker", "web"],
        default: PerService(&[("gateway", "3000"), ("chat", "3001"), ("call", "3002"), ("worker", "3003"), ("web", "8080")]),
        meaning: "listening port",
    },
    Setting {
        var: "HOST",
        services: &["gateway", "chat", "call", "worker", "web"],
        default: PerService(&[("gateway", "0.0.0.0"), ("chat", "0.0.0.0"), ("call", "127.0.0.1"), ("worker", "127.0.0.1"), ("web", "0.0.0.0")]),
        meaning: "listening address (worker and call: loopback by default, only the gateway calls them)",
    },
    Setting {
        var: "CHAT_DATABASE_URL",
        services: &["gateway", "chat", "call", "worker", "chatctl"],
        default: Value("postgres://postgres:postgres@127.0.0.1:5432/chat"),
        meaning: "PostgreSQL (the gateway keeps accounts there)",
    },
    Setting {
        var: "REDIS_URL",
        services: &["gateway", "chat", "call", "worker", "chatctl"],
        default: Unset("`redis://REDIS_HOST:REDIS_PORT`"),
        meaning: "Redis (the gateway keeps sessions and rate counters there): `redis://`, `rediss://` or `redis+unix://`",
    },
    Setting {
        var: "REDIS_HOST",
        services: &["gateway", "chat", "call", "worker", "chatctl"],
        default: Value("127.0.0.1"),
        meaning: "Redis's host, when `REDIS_URL` is unset",
    },
    Setting {
        var: "REDIS_PORT",
        services: &["gateway", "chat", "call", "worker", "chatctl"],
        default: Value("6379"),
        meaning: "Redis's port, when `REDIS_URL` is unset",
    },
    Setting {
        var: "REDIS_CLUSTER_NODES",
        services: &["gateway", "chat", "call", "worker", "chatctl"],
        default: Unset("unset (one Redis, `REDIS_URL`)"),
        meaning: "Redis Cluster instead of one Redis: comma-separated seed nodes (`host:port` or `redis://` URLs; the others are discovered). Every key and channel of the namespace is then in one hash slot (the prefix becomes `{CHAT_NAMESPACE}`) and channels are sharded (`SPUBLISH`/`SSUBSCRIBE`); `REDIS_URL` is not used",
    },
    Setting {
        var: "REDIS_WAIT_REPLICAS",
        services: &["gateway", "chat", "chatctl"],
        default: Unset("1 with `REDIS_CLUSTER_NODES`, else 0"),
        meaning: "Redis replicas that must hold a promised write before it is confirmed (Redis `WAIT`, at most 250 ms; after a wait in vain, sends skip it for 2 s): a send before its 202 (one not replicated in time and not yet stored is answered 503: retry it with the same `clientMessageId`), a queued message's edit or delete before its 202, a sign-out or revocation before it is answered (else 503: retry). A failover then cannot lose what was confirmed. 0 to 16; 0: no waiting",
    },
    Setting {
        var: "CHAT_NAMESPACE",
        services: &["gateway", "chat", "call", "worker", "chatctl"],
        default: Value("chat"),
        meaning: "prefix of every Redis key and channel",
    },
    Setting {
        var: "STREAM_PARTITIONS",
        services: &["chat", "worker", "chatctl"],
        default: Value("1"),
        meaning: "partitions of the send stream (1 to 256; a conversation always on the same one, each owned by one worker at a time); the same on every chat instance and worker, and changed only with the streams drained",
    },
    Setting {
        var: "CHAT_SERVICE_URL",
        services: &["gateway"],
        default: Value("http://127.0.0.1:3001"),
        meaning: "chat upstream",
    },
    Setting {
        var: "SOCKET_DIR",
        services: &["gateway", "chat"],
        default: Unset("unset (TCP only)"),
        meaning: "chat and the gateway on one machine: chat also listens on `chat.sock` and `handoff.sock` there (the folder made 0700; hand-offs accepted only from a process of the same uid, checked with SO_PEERCRED); the gateway sends API requests and long-polls over `chat.sock` and passes each Socket.IO WebSocket (the socket itself, after its connect limit, with the client address it settled) to chat over `handoff.sock`, so frames no longer cross the gateway and sockets outlive a gateway restart. While chat is not listening there the gateway uses `CHAT_SERVICE_URL` and tunnels (logged once). A handed-off socket counts against chat's `MAX_CONNECTIONS` and, per client address, against the gateway's `MAX_CONNECTIONS_PER_ADDRESS` (applied by chat). `scripts/run-stack.sh` sets it (`$CHAT_DATA_DIR/run`); leave it unset when the services are on separate hosts",
    },
    Setting {
        var: "CALL_SERVICE_URL",
        services: &["gateway"],
        default: Value("http://127.0.0.1:3002"),
        meaning: "call upstream",
    },
    Setting {
        var: "REQUEST_TIMEOUT_MS",
        services: &["gateway"],
        default: Value("15000"),
        meaning: "upstream answer deadline (then 504)",
    },
    Setting {
        var: "POLL_TIMEOUT_MS",
        services: &["gateway"],
        default: Value("60000"),
        meaning: "the same for Socket.IO long-polling",
    },
    Setting {
        var: "METRICS_HOST",
        services: &["gateway", "chat", "call", "worker", "web"],
        default: Value("127.0.0.1"),
        meaning: "where `GET /metrics` is served (not the public port)",
    },
    Setting {
        var: "METRICS_PORT",
        services: &["gateway", "chat", "call", "worker", "web"],
        default: PerService(&[("gateway", "9180"), ("chat", "9181"), ("call", "9182"), ("worker", "9183"), ("web", "9184")]),
        meaning: "the port `GET /metrics` is served on; two instances of one service on a host need different ones",
    },
    Setting {
        var: "CORS_ORIGINS",
        services: &["gateway", "chat"],
        default: Value("*"),
        meaning: "comma-separated allowed browser origins (`*`: any, answered as a literal `*` without credentials; listed origins are echoed with credentials): for the gateway's API, and for long-polling a chat instance directly",
    },
    Setting {
        var: "BODY_LIMIT_BYTES",
        services: &["gateway", "chat", "call"],
        default: Value("1048576"),
        meaning: "larger bodies are 413",
    },
    Setting {
        var: "BODY_TIMEOUT_MS",
        services: &["gateway", "chat", "call", "worker", "web"],
        default: Value("10000"),
        meaning: "a request body must arrive within this plus its length at `BODY_MIN_BYTES_PER_SEC`, else 408",
    },
    Setting {
        var: "BODY_MIN_BYTES_PER_SEC",
        services: &["gateway", "chat", "call", "worker", "web"],
        default: Value("8192"),
        meaning: "the slowest a request body may arrive after `BODY_TIMEOUT_MS`, else 408",
    },
    Setting {
        var: "MAX_CONNECTIONS",
        services: &["gateway", "chat", "call", "web"],
        default: Value("20000"),
        meaning: "open connections per process (WebSockets included; in chat, Socket.IO long-polling sessions too)",
    },
    Setting {
        var: "MAX_CONNECTIONS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("256"),
        meaning: "open connections per client address (IPv6: per /64; trusted proxies exempt); the one past it is answered 429 and closed",
    },
    Setting {
        var: "TRUSTED_PROXIES",
        services: &["gateway"],
        default: Unset("none"),
        meaning: "comma-separated addresses or CIDR networks (`10.0.0.0/8`, `fd00::/8`) whose `Forwarded`/`X-Forwarded-For` name the client",
    },
    Setting {
        var: "MAX_IN_FLIGHT",
        services: &["gateway"],
        default: Value("2048"),
        meaning: "API requests forwarded at once; beyond, 503 at once",
    },
    Setting {
        var: "SEND_WAIT_MS",
        services: &["chat"],
        default: Value("2000"),
        meaning: "wait for the commit before answering 202",
    },
    Setting {
        var: "MESSAGE_MAX_CHARS",
        services: &["chat"],
        default: Value("4000"),
        meaning: "message body limit, in characters as sent (stored trimmed)",
    },
    Setting {
        var: "DEDUPE_TTL_SECS",
        services: &["chat", "worker", "chatctl"],
        default: Value("604800"),
        meaning: "how long a `clientMessageId` is remembered; for the worker and chatctl, the lifetime of what `dead-letters replay` queues again",
    },
    Setting {
        var: "PG_POOL_SIZE",
        services: &["gateway", "chat", "call", "worker", "chatctl"],
        default: PerService(&[("gateway", "8"), ("chat", "16"), ("call", "8"), ("worker", "4"), ("chatctl", "2")]),
        meaning: "most PostgreSQL connections one process opens (chat's history page reads have a pool of half the size, at least 2, of their own besides)",
    },
    Setting {
        var: "REDIS_POOL_SIZE",
        services: &["gateway", "chat", "call", "worker", "chatctl"],
        default: PerService(&[("gateway", "4"), ("chat", "4"), ("call", "4"), ("worker", "2"), ("chatctl", "2")]),
        meaning: "most Redis connections one process opens (the worker's stream reader and chat's event subscriber have a connection of their own besides)",
    },
    Setting {
        var: "BATCH_MAX",
        services: &["worker"],
        default: Value("1000"),
        meaning: "most messages per transaction",
    },
    Setting {
        var: "BATCH_WAIT_MS",
        services: &["worker"],
        default: Value("0"),
        meaning: "extra wait to grow a batch (0: never delay a lone send)",
    },
    Setting {
        var: "BATCH_BLOCK_MS",
        services: &["worker"],
        default: Value("1000"),
        meaning: "how long one blocking read of the stream waits for entries",
    },
    Setting {
        var: "CLAIM_IDLE_MS",
        services: &["worker"],
        default: Value("15000"),
        meaning: "take over another worker's entries idle this long",
    },
    Setting {
        var: "MAINTENANCE_MS",
        services: &["worker"],
        default: Value("2000"),
        meaning: "how often pending entries are checked and the stream trimmed",
    },
    Setting {
        var: "SEARCH_MERGE_MS",
        services: &["worker"],
        default: Value("1000"),
        meaning: "merge the search index's pending list this often, beside the inserts (0: inserts and autovacuum merge it)",
    },
    Setting {
        var: "MAX_DELIVERIES",
        services: &["worker"],
        default: Value("5"),
        meaning: "deliveries after which an entry is stored on its own (not dead-lettered for that, unless it is an edit still waiting for its message)",
    },
    Setting {
        var: "NOTICE_MAX_BYTES",
        services: &["worker"],
        default: Value("1048576"),
        meaning: "largest commit notice published; bigger ones are split (4096 to 16 MiB)",
    },
    Setting {
        var: "DEAD_LETTER_MAX",
        services: &["worker"],
        default: Value("10000"),
        meaning: "dead letters kept, about (`XADD MAXLEN ~`)",
    },
    Setting {
        var: "WORKER_CONSUMER",
        services: &["worker"],
        default: Unset("`worker-<HOSTNAME>-<pid>`"),
        meaning: "this worker's name in the stream's consumer group; unique per process unless set",
    },
    Setting {
        var: "WORKER_FAULT",
        services: &["worker"],
        default: Unset("none"),
        meaning: "test-only fault hook: `exit-after-commit` exits (status 3) right after the first batch commits, before it is acknowledged; inert unless set, never set it in production",
    },
    Setting {
        var: "RECOVERY_WINDOW_SECS",
        services: &["chat", "call", "worker"],
        default: Value("300"),
        meaning: "how long recorded realtime events (`message:*`, `conversation:*`, `call:*`) are kept in Redis for Socket.IO connection state recovery (0 to 86400; 0 turns recording and recovery off, and every event is published as plain JSON)",
    },
    Setting {
        var: "MEMBER_CACHE_SIZE",
        services: &["chat"],
        default: Value("100000"),
        meaning: "conversations whose member lists are kept in memory",
    },
    Setting {
        var: "PING_INTERVAL_MS",
        services: &["chat"],
        default: Value("25000"),
        meaning: "Socket.IO heartbeat: a ping this often",
    },
    Setting {
        var: "PING_TIMEOUT_MS",
        services: &["chat"],
        default: Value("20000"),
        meaning: "Socket.IO heartbeat: the pong is due within this",
    },
    Setting {
        var: "SOCKET_MAX_PAYLOAD",
        services: &["chat"],
        default: Value("1000000"),
        meaning: "largest Socket.IO message or polling body",
    },
    Setting {
        var: "PRESENCE_COALESCE_MS",
        services: &["chat"],
        default: Value("250"),
        meaning: "at most one `presence:update` per user this often",
    },
    Setting {
        var: "REACTION_EVENT_MS",
        services: &["chat"],
        default: Value("250"),
        meaning: "at most one reaction `message:updated` per message per instance this often (first and last change of a burst always sent)",
    },
    Setting {
        var: "HISTORY_CACHE_BYTES",
        services: &["chat"],
        default: Value("67108864"),
        meaning: "memory for recent history pages kept per instance and served without PostgreSQL (0 turns it off). Any change to a conversation (a commit, an edit, a delete, a reaction, a thumbnail, a membership change) drops its pages on every instance as its Redis event arrives, on the instance that made it before it answers; a lost Redis subscription drops them all and nothing is kept until it is back (the subscription is pinged every second, and one that takes over 2 s to answer counts as lost); a page is kept at most 60 s (and half `ATTACHMENT_URL_TTL_SECS`). A page from memory checks the caller's membership against the member cache: a removal applies on other instances when its marker arrives (milliseconds). The page reads themselves use a pool whose sessions force PostgreSQL's generic plans (`plan_cache_mode`; the database URL's `options` override it)",
    },
    Setting {
        var: "SEARCH_TIMEOUT_MS",
        services: &["chat"],
        default: Value("2000"),
        meaning: "the longest one search may run in PostgreSQL; past it the search is cancelled and answered 503",
    },
    Setting {
        var: "ATTACHMENT_DIR",
        services: &["chat"],
        default: Value("data/attachments"),
        meaning: "the local storage back end's directory (`scripts/run-stack.sh` sets `$CHAT_DATA_DIR/attachments`)",
    },
    Setting {
        var: "ATTACHMENT_MAX_BYTES",
        services: &["gateway", "chat"],
        default: Value("26214400"),
        meaning: "largest upload (413 past it)",
    },
    Setting {
        var: "ATTACHMENT_UNSENT_MAX_BYTES",
        services: &["chat"],
        default: Value("262144000"),
        meaning: "uploads not yet sent one user may hold (413 past it)",
    },
    Setting {
        var: "ATTACHMENT_UPLOADS_MAX",
        services: &["chat"],
        default: Value("16"),
        meaning: "uploads streaming at once per chat instance (503 past it)",
    },
    Setting {
        var: "ATTACHMENT_URL_SECRET",
        services: &["chat", "worker"],
        default: Unset("derived from `INTERNAL_SECRET`"),
        meaning: "key of the download URLs' signatures (16+ characters); the same in every chat and worker process",
    },
    Setting {
        var: "ATTACHMENT_URL_TTL_SECS",
        services: &["chat", "worker"],
        default: Value("3600"),
        meaning: "how long a download URL works",
    },
    Setting {
        var: "ATTACHMENT_URL_BASE",
        services: &["chat", "worker"],
        default: Value(""),
        meaning: "prefix of download URLs (empty: relative to the API's base URL)",
    },
    Setting {
        var: "ATTACHMENT_SWEEP_SECS",
        services: &["chat"],
        default: Value("60"),
        meaning: "how often deleted and expired uploads are removed from storage",
    },
    Setting {
        var: "ATTACHMENT_UNSENT_TTL_SECS",
        services: &["chat"],
        default: Value("86400"),
        meaning: "an upload never sent is removed after this",
    },
    Setting {
        var: "PRESENCE_STALE_MS",
        services: &["chat"],
        default: Value("15000"),
        meaning: "a silent instance's users count as offline after this",
    },
    Setting {
        var: "PRESENCE_GRACE_MS",
        services: &["chat"],
        default: Value("30000"),
        meaning: "a user whose socket dropped without meaning to (recovery on) is shown offline only this much later; at most the recovery window, 0 to 3600000",
    },
    Setting {
        var: "RING_TIMEOUT_MS",
        services: &["call"],
        default: Value("45000"),
        meaning: "a call ringing this long becomes `missed`",
    },
    Setting {
        var: "MAX_SIGNALS_PER_CALL",
        services: &["call"],
        default: Value("500"),
        meaning: "signals one call may store (then 409)",
    },
    Setting {
        var: "MAX_SIGNAL_BYTES",
        services: &["call"],
        default: Value("65536"),
        meaning: "largest signal payload",
    },
    Setting {
        var: "MAX_CALL_PARTICIPANTS",
        services: &["call"],
        default: Value("64"),
        meaning: "participants per call",
    },
    Setting {
        var: "S3_BUCKET",
        services: &["chat"],
        default: Unset("none"),
        meaning: "store attachments in this S3 bucket instead of `ATTACHMENT_DIR`; with it `S3_ACCESS_KEY_ID` and `S3_SECRET_ACCESS_KEY` are required (a partial S3 setting stops the service)",
    },
    Setting {
        var: "S3_ENDPOINT",
        services: &["chat"],
        default: Unset("none (AWS)"),
        meaning: "an S3-compatible server, `http(s)://host:port`",
    },
    Setting {
        var: "S3_REGION",
        services: &["chat"],
        default: Value("us-east-1"),
        meaning: "the bucket's region (signatures name it)",
    },
    Setting {
        var: "S3_ACCESS_KEY_ID",
        services: &["chat"],
        default: Unset("none"),
        meaning: "the access key S3 requests are signed with (SigV4)",
    },
    Setting {
        var: "S3_SECRET_ACCESS_KEY",
        services: &["chat"],
        default: Unset("none"),
        meaning: "the secret key S3 requests are signed with (SigV4)",
    },
    Setting {
        var: "S3_FORCE_PATH_STYLE",
        services: &["chat"],
        default: Unset("true with `S3_ENDPOINT`, else false"),
        meaning: "`endpoint/bucket/key` URLs rather than `bucket.endpoint/key`",
    },
    Setting {
        var: "ATTACHMENT_THUMBNAIL_MAX_BYTES",
        services: &["chat"],
        default: Value("10485760"),
        meaning: "larger images get no thumbnail (the image is read whole to make one)",
    },
    Setting {
        var: "AUTH_MODE",
        services: &["gateway", "chat", "call"],
        default: Value("token"),
        meaning: "`token`, or `compat` (insecure: see Identity and access)",
    },
    Setting {
        var: "INTERNAL_SECRET",
        services: &["gateway", "chat", "call", "worker"],
        default: Unset("none (required in `token` mode; `scripts/run-stack.sh` makes one per run)"),
        meaning: "shared secret the gateway proves itself with; 16+ characters (chat and the worker derive the attachment URL key from it unless `ATTACHMENT_URL_SECRET` is set)",
    },
    Setting {
        var: "SESSION_TTL_SECS",
        services: &["gateway"],
        default: Value("604800"),
        meaning: "token lifetime",
    },
    Setting {
        var: "MAX_SESSIONS_PER_USER",
        services: &["gateway"],
        default: Value("50"),
        meaning: "live tokens per user; signing in again ends the oldest",
    },
    Setting {
        var: "SESSION_CACHE_MAX",
        services: &["gateway"],
        default: Value("100000"),
        meaning: "sessions kept in memory (0: every request looks its session up in Redis)",
    },
    Setting {
        var: "RATE_SENDS_PER_USER",
        services: &["chat"],
        default: Value("100"),
        meaning: "sends per second per user, counted in the script that queues them",
    },
    Setting {
        var: "RATE_SENDS_PER_ADDRESS",
        services: &["chat"],
        default: Value("1000"),
        meaning: "sends per second per client address (the client address the gateway passes on; a request reaching chat directly counts per user only)",
    },
    Setting {
        var: "RATE_EDITS_PER_USER",
        services: &["gateway"],
        default: Value("60"),
        meaning: "message edits per minute per user",
    },
    Setting {
        var: "RATE_EDITS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("600"),
        meaning: "message edits per minute per client address",
    },
    Setting {
        var: "RATE_DELETES_PER_USER",
        services: &["gateway"],
        default: Value("60"),
        meaning: "message deletes per minute per user",
    },
    Setting {
        var: "RATE_DELETES_PER_ADDRESS",
        services: &["gateway"],
        default: Value("600"),
        meaning: "message deletes per minute per client address",
    },
    Setting {
        var: "RATE_CONVERSATIONS_PER_USER",
        services: &["gateway"],
        default: Value("20"),
        meaning: "conversations created or renamed per minute per user",
    },
    Setting {
        var: "RATE_CONVERSATIONS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("200"),
        meaning: "conversations created or renamed per minute per client address",
    },
    Setting {
        var: "RATE_CALLS_PER_USER",
        services: &["gateway"],
        default: Value("30"),
        meaning: "calls started and call status changes per minute per user",
    },
    Setting {
        var: "RATE_CALLS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("300"),
        meaning: "calls started and call status changes per minute per client address",
    },
    Setting {
        var: "RATE_SIGNALS_PER_USER",
        services: &["gateway"],
        default: Value("600"),
        meaning: "call signals (offers, answers, ICE candidates) per minute per user",
    },
    Setting {
        var: "RATE_SIGNALS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("6000"),
        meaning: "call signals (offers, answers, ICE candidates) per minute per client address",
    },
    Setting {
        var: "RATE_MEMBERS_PER_USER",
        services: &["gateway"],
        default: Value("30"),
        meaning: "membership changes (adding, removing, leaving, role changes) and blocks/unblocks per minute per user",
    },
    Setting {
        var: "RATE_MEMBERS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("300"),
        meaning: "membership changes (adding, removing, leaving, role changes) and blocks/unblocks per minute per client address",
    },
    Setting {
        var: "RATE_READS_PER_USER",
        services: &["gateway"],
        default: Value("120"),
        meaning: "read markers moved (`POST /conversations/:id/read`) per minute per user",
    },
    Setting {
        var: "RATE_READS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("1200"),
        meaning: "read markers moved (`POST /conversations/:id/read`) per minute per client address",
    },
    Setting {
        var: "RATE_REACTIONS_PER_USER",
        services: &["gateway"],
        default: Value("120"),
        meaning: "reactions added or removed (`PUT`/`DELETE /conversations/:id/messages/:messageId/reactions/:emoji`) per minute per user",
    },
    Setting {
        var: "RATE_REACTIONS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("1200"),
        meaning: "reactions added or removed (`PUT`/`DELETE /conversations/:id/messages/:messageId/reactions/:emoji`) per minute per client address",
    },
    Setting {
        var: "RATE_SEARCHES_PER_USER",
        services: &["gateway"],
        default: Value("60"),
        meaning: "searches (`GET /search/messages`) per minute per user",
    },
    Setting {
        var: "RATE_SEARCHES_PER_ADDRESS",
        services: &["gateway"],
        default: Value("600"),
        meaning: "searches (`GET /search/messages`) per minute per client address",
    },
    Setting {
        var: "RATE_UPLOADS_PER_USER",
        services: &["gateway"],
        default: Value("60"),
        meaning: "attachment uploads (`POST /attachments`, signed in only) per minute per user",
    },
    Setting {
        var: "RATE_UPLOADS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("600"),
        meaning: "attachment uploads (`POST /attachments`, signed in only) per minute per client address",
    },
    Setting {
        var: "RATE_LOGIN_FAILURES_PER_USER",
        services: &["gateway"],
        default: Value("10"),
        meaning: "failed sign-ins per 15 minutes for one user id from one address (other addresses are unaffected)",
    },
    Setting {
        var: "RATE_LOGIN_FAILURES_PER_ADDRESS",
        services: &["gateway"],
        default: Value("50"),
        meaning: "failed sign-ins per 15 minutes from one address",
    },
    Setting {
        var: "RATE_REGISTRATIONS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("20"),
        meaning: "registrations per hour per client address",
    },
    Setting {
        var: "RATE_CONNECTS_PER_ADDRESS",
        services: &["gateway"],
        default: Value("300"),
        meaning: "new Socket.IO sessions per minute per client address",
    },
    Setting {
        var: "MAX_SOCKETS_PER_USER",
        services: &["chat"],
        default: Value("20"),
        meaning: "open Socket.IO connections per user",
    },
    Setting {
        var: "SOCKET_EVENT_BURST",
        services: &["chat"],
        default: Value("20"),
        meaning: "`typing:update` / `presence:join` per socket: the burst allowed",
    },
    Setting {
        var: "SOCKET_EVENTS_PER_SEC",
        services: &["chat"],
        default: Value("5"),
        meaning: "`typing:update` / `presence:join` per socket: the rate after the burst",
    },
    Setting {
        var: "SOCKET_EVENTS_PER_USER_PER_MIN",
        services: &["chat"],
        default: Value("1200"),
        meaning: "`typing:update` / `presence:join` per user across sockets and instances",
    },
    Setting {
        var: "STATIC_DIR",
        services: &["web"],
        default: Value("frontend/dist"),
        meaning: "the built UI (must hold `index.html`)",
    },
    Setting {
        var: "GATEWAY_PUBLIC_URL",
        services: &["web"],
        default: Value("http://localhost:3000"),
        meaning: "the gateway as browsers reach it (`http(s)://host[:port]`, or `same-origin`), served in `/config.json`",
    },
    Setting {
        var: "ICE_SERVERS",
        services: &["web"],
        default: Unset("none"),
        meaning: "STUN/TURN servers for calls (`stun:`, `turn:`, `turns:` URLs, comma-separated), served in `/config.json`; none is enough on one network",
    },
    Setting {
        var: "ICE_USERNAME",
        services: &["web"],
        default: Unset("none"),
        meaning: "the TURN servers' user name (every browser receives it: use restricted credentials); with `ICE_CREDENTIAL`",
    },
    Setting {
        var: "ICE_CREDENTIAL",
        services: &["web"],
        default: Unset("none"),
        meaning: "the TURN servers' credential (every browser receives it: use restricted ones); with `ICE_USERNAME`",
    },
    Setting {
        var: "RUST_LOG",
        services: &["gateway", "chat", "call", "worker", "web"],
        default: Value("info"),
        meaning: "log filter (`tracing` directives, e.g. `info,chat=debug`; `info,access=off`: no access log)",
    },
    Setting {
        var: "LOG_FORMAT",
        services: &["gateway", "chat", "call", "worker", "web"],
        default: Value("text"),
        meaning: "`text`, or `json` for structured logs",
    },
    Setting {
        var: "ACCESS_LOG",
        services: &["gateway", "chat", "call", "worker", "web"],
        default: Value("off"),
        meaning: "`on`: one line per request at INFO under the target `access` (method, route, status, duration, request id). Off by default: a line per request is a lot of log to keep (about 200 bytes each), and at full load it costs CPU (BENCHMARKS.md)",
    },
    Setting {
        var: "READY_GRACE_MS",
        services: &["gateway", "chat", "call", "worker"],
        default: Value("20000"),
        meaning: "how long `/readyz` still answers 200 (status `degraded`) once PostgreSQL or Redis, having answered before, stops answering: a failover of a store every instance shares must not take every instance out of a load balancer at once (0 to 600000; set it above the stores' failover time)",
    },
    Setting {
        var: "SHUTDOWN_DRAIN_MS",
        services: &["gateway", "chat", "call", "worker", "web"],
        default: Value("0"),
        meaning: "after SIGTERM, keep serving this long with `/readyz` answering 503 before accepting stops (0 to 600000)",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for s in SETTINGS {
            assert!(seen.insert(s.var), "{} is declared twice", s.var);
            assert!(
                s.var
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                s.var
            );
            assert!(!s.services.is_empty(), "{} is read by nobody", s.var);
            for service in s.services {
                assert!(
                    SERVICES.contains(service) || TOOLS.contains(service),
                    "{}: unknown {service}",
                    s.var
                );
            }
            // A table cell: no pipe, no line break.
            assert!(!s.meaning.contains(['|', '\n']), "{}", s.var);
            if let PerService(per) = s.default {
                let named: Vec<&str> = per.iter().map(|(service, _)| *service).collect();
                assert_eq!(named, s.services, "{}: one default per service", s.var);
            }
        }
    }

    #[test]
    fn flags_are_the_variables_in_lower_case() {
        assert_eq!(flag("PG_POOL_SIZE"), "--pg-pool-size");
        assert_eq!(flag("PORT"), "--port");
        assert_eq!(find("PORT").unwrap().default_for("web"), Some("8080"));
        assert_eq!(
            find("PG_POOL_SIZE").unwrap().default_for("chat"),
            Some("16")
        );
        assert_eq!(find("SOCKET_DIR").unwrap().default_for("chat"), None);
        assert!(find("NOT_A_SETTING").is_none());
    }

    #[test]
    fn constants_elsewhere_agree_with_the_registry() {
        let default = |var: &str| find(var).unwrap().default_for("chat").unwrap();
        assert_eq!(
            default("RECOVERY_WINDOW_SECS"),
            crate::recovery::DEFAULT_WINDOW_SECS.to_string()
        );
        assert_eq!(
            default("READY_GRACE_MS"),
            crate::health::Grace::DEFAULT_MS.to_string()
        );
        assert_eq!(
            find("MAX_SESSIONS_PER_USER")
                .unwrap()
                .default_for("gateway"),
            Some(crate::sessions::MAX_PER_USER.to_string().as_str())
        );
    }

    /// Settings are read through `config::Env`, which knows the registry; reading the process
    /// environment directly would bypass it (and the command line). Only these may.
    #[test]
    fn nothing_reads_the_environment_behind_the_registry() {
        let allowed = [
            // A release build's fallback for an undeclared name.
            "core/src/config.rs",
            // The machine's name in the worker's default consumer name: not a setting.
            "services/worker/src/config.rs",
            // Tests: where the S3 server of the test harness is; and this test.
            "services/chat/src/attachments/s3.rs",
            "core/src/settings.rs",
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut dirs = vec![root.join("core/src")];
        dirs.extend(
            SERVICES
                .iter()
                .map(|s| root.join("services").join(s).join("src")),
        );
        dirs.extend(TOOLS.iter().map(|t| root.join(t).join("src")));
        let mut offenders = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("source folder") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let rel = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let direct = ["env::var(", "env::var_os(", "env::vars("]
                    .iter()
                    .any(|needle| text.contains(needle));
                if direct && !allowed.contains(&rel.as_str()) {
                    offenders.push(rel);
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "read the environment through config::Env and declare the setting in \
             core/src/settings.rs: {offenders:?}"
        );
    }

    /// The README's Configuration table is this registry rendered; `UPDATE_README=1 cargo
    /// test -p platform-core settings` rewrites it.
    #[test]
    fn the_readme_table_is_the_registry() {
        const BEGIN: &str = "<!-- settings table: generated from core/src/settings.rs -->\n";
        const END: &str = "<!-- end of settings table -->\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let start = readme
            .find(BEGIN)
            .expect("the README marks the settings table")
            + BEGIN.len();
        let end = start + readme[start..].find(END).expect("the table's end marker");
        let table = markdown();
        if readme[start..end] == table {
            return;
        }
        if std::env::var_os("UPDATE_README").is_some() {
            let updated = format!("{}{table}{}", &readme[..start], &readme[end..]);
            std::fs::write(&path, updated).expect("write README.md");
            return;
        }
        let old: Vec<&str> = readme[start..end].lines().collect();
        let new: Vec<&str> = table.lines().collect();
        let diff: Vec<String> = old
            .iter()
            .filter(|l| !new.contains(l))
            .map(|l| format!("- {l}"))
            .chain(
                new.iter()
                    .filter(|l| !old.contains(l))
                    .map(|l| format!("+ {l}")),
            )
            .collect();
        panic!(
            "README.md's settings table differs from core/src/settings.rs; rewrite it with \
             `UPDATE_README=1 cargo test -p platform-core settings`:\n{}",
            diff.join("\n")
        );
    }
}
