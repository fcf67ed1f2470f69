//! The chat service's settings, read once from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use platform_core::attachment_urls::UrlSigner;
use platform_core::config::{ConfigError, Env, Listen, PoolSizes, Stores};
use platform_core::cors::Origins;
use platform_core::identity::Trust;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub stores: Stores,
    /// How long a send waits for the worker's commit before answering 202.
    pub send_wait: Duration,
    pub body_limit: usize,
    pub message_max_chars: usize,
    /// How long `clientMessageId`s and pending marks are remembered in Redis.
    pub dedupe_ttl_secs: u64,
    pub max_connections: usize,
    /// Conversations whose member lists are kept in memory.
    pub member_cache_size: usize,
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
}

impl AttachmentSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(AttachmentSettings {
            dir: env.string("ATTACHMENT_DIR", "data/attachments").into(),
            max_bytes: env.attachment_max_bytes()?,
            unsent_max_bytes: env.number("ATTACHMENT_UNSENT_MAX_BYTES", 250 << 20, 1, 1 << 40)?,
            uploads_max: env.number("ATTACHMENT_UPLOADS_MAX", 16, 1, 10_000)?,
            sweep_every: Duration::from_secs(env.number("ATTACHMENT_SWEEP_SECS", 60, 1, 86_400)?),
            unsent_ttl: Duration::from_secs(env.number(
                "ATTACHMENT_UNSENT_TTL_SECS",
                86_400,
                1,
                365 * 86_400,
            )?),
        })
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let stores = Stores::from_env(env, PoolSizes { pg: 16, redis: 4 })?;
        let window = Duration::from_secs(stores.recovery_window.secs());
        let presence_grace = env
            .millis("PRESENCE_GRACE_MS", 30_000, 0, 3_600_000)?
            .min(window);
        Ok(Config {
            listen: Listen::from_env(env, "0.0.0.0", 3001)?,
            stores,
            send_wait: env.millis("SEND_WAIT_MS", 2000, 0, 60_000)?,
            body_limit: env.number("BODY_LIMIT_BYTES", 1 << 20, 1024, 64 << 20)?,
            message_max_chars: env.number("MESSAGE_MAX_CHARS", 4000, 1, 100_000)?,
            dedupe_ttl_secs: env.number("DEDUPE_TTL_SECS", 7 * 86_400, 60, 365 * 86_400)?,
            max_connections: env.number("MAX_CONNECTIONS", 20_000, 1, 1_000_000)?,
            member_cache_size: env.number("MEMBER_CACHE_SIZE", 100_000, 1, 100_000_000)?,
            ping_interval: env.millis("PING_INTERVAL_MS", 25_000, 100, 600_000)?,
            ping_timeout: env.millis("PING_TIMEOUT_MS", 20_000, 100, 600_000)?,
            socket_max_payload: env.number("SOCKET_MAX_PAYLOAD", 1_000_000, 1024, 64 << 20)?,
            socket_cors: Origins::from_env(env),
            presence_coalesce: env.millis("PRESENCE_COALESCE_MS", 250, 0, 60_000)?,
            presence_stale: env.millis("PRESENCE_STALE_MS", 15_000, 300, 3_600_000)?,
            presence_grace,
            trust: Trust::from_env(env)?,
            max_sockets_per_user: env.number("MAX_SOCKETS_PER_USER", 20, 1, 100_000)?,
            socket_event_burst: env.number("SOCKET_EVENT_BURST", 20, 1, 100_000)?,
            socket_events_per_sec: env.number("SOCKET_EVENTS_PER_SEC", 5, 1, 100_000)?,
            socket_events_per_user_per_min: env.number(
                "SOCKET_EVENTS_PER_USER_PER_MIN",
                1200,
                10,
                10_000_000,
            )?,
            reaction_event_interval: env.millis("REACTION_EVENT_MS", 250, 0, 60_000)?,
            search_timeout: env.millis("SEARCH_TIMEOUT_MS", 2000, 10, 60_000)?,
            urls: UrlSigner::from_env(env)?,
            attachments: AttachmentSettings::from_env(env)?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen.addr()
    }
}
