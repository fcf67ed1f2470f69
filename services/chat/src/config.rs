//! The chat service's settings, read once from its command line or environment (their
//! names, defaults and meanings are in `platform_core::settings`).

use std::net::SocketAddr;
use std::time::Duration;

use platform_core::attachment_urls::UrlSigner;
use platform_core::config::{ConfigError, Env, Listen, Stores};
use platform_core::cors::Origins;
use platform_core::identity::Trust;
use platform_core::ratelimit::Limit;
use platform_core::stream;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub stores: Stores,
    /// `READY_GRACE_MS`: how long `/readyz` bears with a store that stopped answering.
    pub ready_grace: platform_core::health::Grace,
    /// `STREAM_PARTITIONS`: the send stream's partitions (`platform_core::stream::Keys`).
    pub stream_partitions: usize,
    /// `RECOVERY_WINDOW_SECS`: how long recorded realtime events are kept for connection
    /// state recovery (off at 0).
    pub recovery_window: platform_core::recovery::Window,
    /// How long a send waits for the worker's commit before answering 202.
    pub send_wait: Duration,
    /// `REDIS_WAIT_REPLICAS`: replicas a queued send must reach before it is answered 202.
    pub wait_replicas: u32,
    pub body_limit: usize,
    pub message_max_chars: usize,
    /// How long `clientMessageId`s and pending marks are remembered in Redis.
    pub dedupe_ttl_secs: u64,
    pub max_connections: usize,
    /// `SOCKET_DIR`: also listen on Unix sockets there (`chat.sock` for HTTP, `handoff.sock`
    /// for WebSockets the co-located gateway hands over).
    pub socket_dir: Option<std::path::PathBuf>,
    /// Conversations whose member lists are kept in memory.
    pub member_cache_size: usize,
    /// `HISTORY_CACHE_BYTES`: memory for recent history pages (0: none kept).
    pub history_cache_bytes: usize,
    /// Socket.IO heartbeat: a ping every `ping_interval`, a pong due within `ping_timeout`.
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Largest Socket.IO message or polling body.
    pub socket_max_payload: usize,
    /// Browser origins allowed to long-poll this instance directly (`CORS_ORIGINS`).
    pub socket_cors: Origins,
    /// At most one `presence:update` per recipient this often.
    pub presence_coalesce: Duration,
    /// An instance silent this long is taken as crashed, and its users as offline.
    pub presence_stale: Duration,
    /// A user whose socket dropped without meaning to is shown offline only this much later
    /// (at most the recovery window, nothing when recovery is off): a client that recovers
    /// its session within it shows no offline/online flicker.
    pub presence_grace: Duration,
    /// `AUTH_MODE` and the gateway's shared secret.
    pub trust: Trust,
    /// Open Socket.IO connections one user may hold across every instance.
    pub max_sockets_per_user: u64,
    /// `typing:update` and `presence:join` one socket may send: a burst, then a rate.
    pub socket_event_burst: u32,
    pub socket_events_per_sec: u32,
    /// The same for one user across sockets and instances, per minute (shared in Redis).
    pub socket_events_per_user_per_min: u64,
    /// At most one reaction `message:updated` per message this often, per instance
    /// (`REACTION_EVENT_MS`; leading and trailing edge).
    pub reaction_event_interval: Duration,
    /// The longest one search may run in PostgreSQL (`SEARCH_TIMEOUT_MS`); 503 past it.
    pub search_timeout: Duration,
    /// Sends per user and per client address (`RATE_SENDS_PER_USER`,
    /// `RATE_SENDS_PER_ADDRESS`), counted in the script that queues them.
    pub send_limits: (Limit, Limit),
    /// Signs attachment URLs in answers and checks them when serving.
    pub urls: UrlSigner,
    pub attachments: AttachmentSettings,
}

/// Where attachments are stored and their limits.
#[derive(Debug, Clone)]
pub struct AttachmentSettings {
    /// `ATTACHMENT_DIR`: the local back end's directory.
    pub dir: std::path::PathBuf,
    /// `ATTACHMENT_MAX_BYTES`: largest upload (413 past it).
    pub max_bytes: u64,
    /// `ATTACHMENT_UNSENT_MAX_BYTES`: unsent uploads one user may hold (413 past it).
    pub unsent_max_bytes: u64,
    /// `ATTACHMENT_UPLOADS_MAX`: uploads streaming at once on this instance (503 past it).
    pub uploads_max: usize,
    /// `ATTACHMENT_SWEEP_SECS`: how often deleted and expired uploads are removed.
    pub sweep_every: Duration,
    /// `ATTACHMENT_UNSENT_TTL_SECS`: how long an upload may wait to be sent.
    pub unsent_ttl: Duration,
    /// `S3_*`: S3-compatible storage instead of `dir`, when `S3_BUCKET` is set.
    pub s3: Option<S3Settings>,
    /// `ATTACHMENT_THUMBNAIL_MAX_BYTES`: larger images get no thumbnail (read whole to make
    /// one).
    pub thumbnail_max_bytes: u64,
}

impl AttachmentSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(AttachmentSettings {
            dir: env.string("ATTACHMENT_DIR").into(),
            max_bytes: env.attachment_max_bytes()?,
            unsent_max_bytes: env.number("ATTACHMENT_UNSENT_MAX_BYTES", 1, 1 << 40)?,
            uploads_max: env.number("ATTACHMENT_UPLOADS_MAX", 1, 10_000)?,
            sweep_every: Duration::from_secs(env.number("ATTACHMENT_SWEEP_SECS", 1, 86_400)?),
            unsent_ttl: Duration::from_secs(env.number(
                "ATTACHMENT_UNSENT_TTL_SECS",
                1,
                365 * 86_400,
            )?),
            s3: S3Settings::from_env(env)?,
            thumbnail_max_bytes: env.number("ATTACHMENT_THUMBNAIL_MAX_BYTES", 0, 1 << 30)?,
        })
    }
}

/// `S3_*` settings: S3 is used when `S3_BUCKET` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `S3_ENDPOINT`: an S3-compatible server (`http://host:port`); unset, AWS itself.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// `S3_REGION`, default `us-east-1`.
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `S3_FORCE_PATH_STYLE`: `endpoint/bucket/key` rather than `bucket.endpoint/key`;
    /// default true with an endpoint (local servers have no per-bucket host names).
    pub force_path_style: bool,
}

impl S3Settings {
    /// `None` when no `S3_*` variable is set; a partial setting is an error, so that a typo
    /// does not silently store files on the local disk.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        const VARS: [&str; 6] = [
            "S3_ENDPOINT",
            "S3_BUCKET",
            "S3_REGION",
            "S3_ACCESS_KEY_ID",
            "S3_SECRET_ACCESS_KEY",
            "S3_FORCE_PATH_STYLE",
        ];
        let set = |v: &str| env.raw(v).filter(|s| !s.is_empty());
        if !VARS.iter().any(|v| set(v).is_some()) {
            return Ok(None);
        }
        let required = |var: &str| {
            set(var).ok_or_else(|| ConfigError {
                var: var.into(),
                value: String::new(),
                reason: "required when any S3_* setting is given".into(),
            })
        };
        let endpoint = match set("S3_ENDPOINT") {
            Some(_) => Some(env.url("S3_ENDPOINT", &["http", "https"])?),
            None => None,
        };
        Ok(Some(S3Settings {
            bucket: required("S3_BUCKET")?,
            region: env.string("S3_REGION"),
            access_key_id: required("S3_ACCESS_KEY_ID")?,
            secret_access_key: required("S3_SECRET_ACCESS_KEY")?,
            // Unset: path style with an endpoint (local servers have no per-bucket host names).
            force_path_style: match set("S3_FORCE_PATH_STYLE") {
                Some(_) => env.boolean("S3_FORCE_PATH_STYLE")?,
                None => endpoint.is_some(),
            },
            endpoint,
        }))
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let recovery_window = platform_core::recovery::Window::from_env(env)?;
        let presence_grace = env
            .millis("PRESENCE_GRACE_MS", 0, 3_600_000)?
            .min(Duration::from_secs(recovery_window.secs()));
        let stores = Stores::from_env(env)?;
        Ok(Config {
            listen: Listen::from_env(env)?,
            wait_replicas: platform_core::config::wait_replicas(env, &stores)?,
            stores,
            ready_grace: platform_core::health::Grace::from_env(env)?,
            stream_partitions: env.number("STREAM_PARTITIONS", 1, stream::PARTITIONS_MAX)?,
            recovery_window,
            send_wait: env.millis("SEND_WAIT_MS", 0, 60_000)?,
            body_limit: env.number("BODY_LIMIT_BYTES", 1024, 64 << 20)?,
            message_max_chars: env.number("MESSAGE_MAX_CHARS", 1, 100_000)?,
            dedupe_ttl_secs: env.number("DEDUPE_TTL_SECS", 60, 365 * 86_400)?,
            max_connections: env.number("MAX_CONNECTIONS", 1, 1_000_000)?,
            socket_dir: platform_core::handoff::socket_dir(env)?,
            member_cache_size: env.number("MEMBER_CACHE_SIZE", 1, 100_000_000)?,
            history_cache_bytes: env.number("HISTORY_CACHE_BYTES", 0, 1 << 40)?,
            ping_interval: env.millis("PING_INTERVAL_MS", 100, 600_000)?,
            ping_timeout: env.millis("PING_TIMEOUT_MS", 100, 600_000)?,
            socket_max_payload: env.number("SOCKET_MAX_PAYLOAD", 1024, 64 << 20)?,
            socket_cors: Origins::from_env(env),
            presence_coalesce: env.millis("PRESENCE_COALESCE_MS", 0, 60_000)?,
            presence_stale: env.millis("PRESENCE_STALE_MS", 300, 3_600_000)?,
            presence_grace,
            trust: Trust::from_env(env)?,
            max_sockets_per_user: env.number("MAX_SOCKETS_PER_USER", 1, 100_000)?,
            socket_event_burst: env.number("SOCKET_EVENT_BURST", 1, 100_000)?,
            socket_events_per_sec: env.number("SOCKET_EVENTS_PER_SEC", 1, 100_000)?,
            socket_events_per_user_per_min: env.number(
                "SOCKET_EVENTS_PER_USER_PER_MIN",
                10,
                10_000_000,
            )?,
            reaction_event_interval: env.millis("REACTION_EVENT_MS", 0, 60_000)?,
            search_timeout: env.millis("SEARCH_TIMEOUT_MS", 10, 60_000)?,
            send_limits: platform_core::ratelimit::send_limits(env)?,
            urls: UrlSigner::from_env(env)?,
            attachments: AttachmentSettings::from_env(env)?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen.addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_exactly_its_declared_settings() {
        platform_core::settings::assert_reads(
            "chat",
            &[("INTERNAL_SECRET", "0123456789abcdef")],
            Config::from_env,
        );
    }

    #[test]
    fn defaults_come_from_the_registry() {
        let c = Config::from_env(&Env::from_pairs(
            "chat",
            &[("INTERNAL_SECRET", "0123456789abcdef")],
        ))
        .unwrap();
        assert_eq!(c.listen.port, 3001);
        assert_eq!(c.stores.pg_pool_size, 16);
        assert_eq!(c.history_cache_bytes, 64 << 20);
        assert_eq!(c.recovery_window.secs(), 300);
        // The grace is at most the recovery window.
        let c = Config::from_env(&Env::from_pairs(
            "chat",
            &[
                ("INTERNAL_SECRET", "0123456789abcdef"),
                ("RECOVERY_WINDOW_SECS", "5"),
            ],
        ))
        .unwrap();
        assert_eq!(c.presence_grace, Duration::from_secs(5));
    }

    #[test]
    fn settings_are_all_or_nothing() {
        assert_eq!(
            S3Settings::from_env(&Env::from_pairs("chat", &[])).unwrap(),
            None
        );
        let full = S3Settings::from_env(&Env::from_pairs(
            "chat",
            &[
                ("S3_ENDPOINT", "http://127.0.0.1:9000"),
                ("S3_BUCKET", "files"),
                ("S3_ACCESS_KEY_ID", "k"),
                ("S3_SECRET_ACCESS_KEY", "s"),
            ],
        ))
        .unwrap()
        .unwrap();
        assert_eq!(full.region, "us-east-1");
        assert!(full.force_path_style);
        let aws = S3Settings::from_env(&Env::from_pairs(
            "chat",
            &[
                ("S3_BUCKET", "files"),
                ("S3_ACCESS_KEY_ID", "k"),
                ("S3_SECRET_ACCESS_KEY", "s"),
            ],
        ))
        .unwrap()
        .unwrap();
        assert!(!aws.force_path_style && aws.endpoint.is_none());
        let e = S3Settings::from_env(&Env::from_pairs(
            "chat",
            &[("S3_ENDPOINT", "http://x:9000")],
        ))
        .unwrap_err();
        assert_eq!(e.var, "S3_BUCKET");
        let e = S3Settings::from_env(&Env::from_pairs("chat", &[("S3_BUCKET", "b")])).unwrap_err();
        assert_eq!(e.var, "S3_ACCESS_KEY_ID");
    }
}
