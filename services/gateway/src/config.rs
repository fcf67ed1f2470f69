//! The gateway's settings, read once from its command line or environment (their names,
//! defaults and meanings are in `platform_core::settings`).

use std::net::SocketAddr;
use std::time::Duration;

use http::Uri;
use platform_core::client::TrustedProxies;
use platform_core::config::{ConfigError, Env, Listen, Stores};
use platform_core::cors::Origins;
use platform_core::identity::Trust;
use platform_core::ratelimit::Limit;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub chat: Uri,
    pub call: Uri,
    /// Longest wait for an upstream's response head on API routes (then 504).
    pub request_timeout: Duration,
    /// The same for Socket.IO long-polling, which is held open by design.
    pub poll_timeout: Duration,
    pub body_limit: usize,
    /// The largest upload (`ATTACHMENT_MAX_BYTES`, shared with the chat service), streamed
    /// rather than read: `body_limit` does not apply to it.
    pub attachment_max_bytes: u64,
    /// Allowed browser origins (`CORS_ORIGINS`).
    pub cors_origins: Origins,
    pub max_connections: usize,
    /// `SOCKET_DIR`: the chat service is co-located and listens there: API requests go over
    /// its Unix socket and Socket.IO WebSockets are handed to it (TCP and the tunnel stay
    /// the fallback when it is not listening there).
    pub socket_dir: Option<std::path::PathBuf>,
    /// Open connections per client address (`MAX_CONNECTIONS_PER_ADDRESS`).
    pub max_connections_per_address: usize,
    /// Whose `Forwarded`/`X-Forwarded-For` name the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// API requests forwarded at once; past this the gateway answers 503 at once instead of
    /// queueing work that would only time out.
    pub max_in_flight: usize,
    /// `AUTH_MODE` and the secret the services check.
    pub trust: Trust,
    /// Accounts live in PostgreSQL, sessions and rate counters in Redis.
    pub stores: Stores,
    /// `READY_GRACE_MS`: how long `/readyz` bears with a store that stopped answering.
    pub ready_grace: platform_core::health::Grace,
    /// `REDIS_WAIT_REPLICAS`: replicas a revocation must reach before it is confirmed.
    pub wait_replicas: u32,
    pub session_ttl: Duration,
    /// Live sessions per user; signing in again ends the oldest.
    pub max_sessions_per_user: u32,
    /// Sessions kept in memory (`SESSION_CACHE_MAX`; 0: every request looks its session up
    /// in Redis).
    pub session_cache_max: usize,
    pub limits: Limits,
}

/// The abuse limits the gateway enforces, per user and per client address.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Each kind of write, per user and per address (`RATE_<KIND>_PER_USER`,
    /// `RATE_<KIND>_PER_ADDRESS`).
    pub writes: [(Limit, Limit); Write::ALL.len()],
    /// Wrong passwords for one account from one address (other addresses are unaffected).
    pub login_failures_per_user: Limit,
    pub login_failures_per_address: Limit,
    pub registrations_per_address: Limit,
    pub connects_per_address: Limit,
}

/// A kind of write, limited on its own: the route table gives each write route one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Send,
    Edit,
    Delete,
    Conversation,
    Call,
    Signal,
    Members,
    Read,
    React,
    /// Not a write, but the most expensive read (`GET /search/messages`): limited likewise.
    Search,
    /// `POST /attachments`: each one up to `ATTACHMENT_MAX_BYTES` streamed to storage.
    Upload,
}

impl Write {
    pub const ALL: [Write; 11] = [
        Write::Send,
        Write::Edit,
        Write::Delete,
        Write::Conversation,
        Write::Call,
        Write::Signal,
        Write::Members,
        Write::Read,
        Write::React,
        Write::Search,
        Write::Upload,
    ];

    /// Its name in Redis keys and messages.
    pub fn name(self) -> &'static str {
        match self {
            Write::Send => "sends",
            Write::Edit => "edits",
            Write::Delete => "deletes",
            Write::Conversation => "conversations",
            Write::Call => "calls",
            Write::Signal => "signals",
            Write::Members => "members",
            Write::Read => "reads",
            Write::React => "reactions",
            Write::Search => "searches",
            Write::Upload => "uploads",
        }
    }

    /// Whether it needs a signed-in caller even in `AUTH_MODE=compat`: routes added after
    /// the original clients act for a person and have nobody to act as without a token.
    pub fn signed_in_only(self) -> bool {
        matches!(self, Write::Search | Write::React | Write::Upload)
    }

    /// Its settings, per user and per address, and the window. The variables are written out
    /// whole so that a search for a setting finds where it is read; their defaults are in the
    /// registry (`platform_core::settings`). An address may hold many users (an office, a
    /// carrier's NAT), so it gets ten times a user's share. Sends have none here: the chat service counts them as it queues them
    /// (`platform_core::ratelimit::send_limits`), with the address the gateway passes on.
    fn settings(self) -> Option<(Setting, Setting, Duration)> {
        Some(match self {
            Write::Send => return None,
            Write::Edit => ("RATE_EDITS_PER_USER", "RATE_EDITS_PER_ADDRESS", MINUTE),
            Write::Delete => ("RATE_DELETES_PER_USER", "RATE_DELETES_PER_ADDRESS", MINUTE),
            Write::Conversation => (
                "RATE_CONVERSATIONS_PER_USER",
                "RATE_CONVERSATIONS_PER_ADDRESS",
                MINUTE,
            ),
            // Starting, answering and ending calls.
            Write::Call => ("RATE_CALLS_PER_USER", "RATE_CALLS_PER_ADDRESS", MINUTE),
            // WebRTC offers, answers and ICE candidates: a few dozen per call set-up.
            Write::Signal => ("RATE_SIGNALS_PER_USER", "RATE_SIGNALS_PER_ADDRESS", MINUTE),
            // Leaving, blocking and unblocking (and membership changes).
            Write::Members => ("RATE_MEMBERS_PER_USER", "RATE_MEMBERS_PER_ADDRESS", MINUTE),
            // Read markers: a client marks read as messages arrive in the open
            // conversation and as the user switches conversations, so a couple per second.
            Write::Read => ("RATE_READS_PER_USER", "RATE_READS_PER_ADDRESS", MINUTE),
            // A search box searches as the user pauses typing: a few per second at most, and
            // each one reads the index, so less than a reader's share of the database.
            Write::Search => (
                "RATE_SEARCHES_PER_USER",
                "RATE_SEARCHES_PER_ADDRESS",
                MINUTE,
            ),
            // Adding and removing reactions: a user toggles a few in a row, never dozens a
            // second; each one is a transaction and a (coalesced) event for every member.
            Write::React => (
                "RATE_REACTIONS_PER_USER",
                "RATE_REACTIONS_PER_ADDRESS",
                MINUTE,
            ),
            // Uploads: a person attaches a handful of files at a time; each one may be 25 MiB
            // of storage and bandwidth.
            Write::Upload => ("RATE_UPLOADS_PER_USER", "RATE_UPLOADS_PER_ADDRESS", MINUTE),
        })
    }
}

/// A setting's variable.
type Setting = &'static str;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const QUARTER_HOUR: Duration = Duration::from_secs(15 * 60);
const HOUR: Duration = Duration::from_secs(3600);

impl Limits {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let n = |var: &str| env.number(var, 1, 1_000_000_000);
        // Sends' entry is never read (see `Write::settings`).
        let mut writes = [(Limit::per(1, SECOND), Limit::per(1, SECOND)); Write::ALL.len()];
        for w in Write::ALL {
            if let Some((user, address, window)) = w.settings() {
                writes[w as usize] = (
                    Limit::per(n(user)?, window),
                    Limit::per(n(address)?, window),
                );
            }
        }
        Ok(Limits {
            writes,
            login_failures_per_user: Limit::per(n("RATE_LOGIN_FAILURES_PER_USER")?, QUARTER_HOUR),
            login_failures_per_address: Limit::per(
                n("RATE_LOGIN_FAILURES_PER_ADDRESS")?,
                QUARTER_HOUR,
            ),
            registrations_per_address: Limit::per(n("RATE_REGISTRATIONS_PER_ADDRESS")?, HOUR),
            connects_per_address: Limit::per(n("RATE_CONNECTS_PER_ADDRESS")?, MINUTE),
        })
    }

    /// The limits of `w`: per user, per address (not for sends: see `Write::settings`).
    pub fn write(&self, w: Write) -> (Limit, Limit) {
        self.writes[w as usize]
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let stores = Stores::from_env(env)?;
        Ok(Config {
            listen: Listen::from_env(env)?,
            chat: upstream(env, "CHAT_SERVICE_URL")?,
            call: upstream(env, "CALL_SERVICE_URL")?,
            request_timeout: env.millis("REQUEST_TIMEOUT_MS", 100, 600_000)?,
            poll_timeout: env.millis("POLL_TIMEOUT_MS", 1_000, 600_000)?,
            body_limit: env.number("BODY_LIMIT_BYTES", 1024, 64 << 20)?,
            attachment_max_bytes: env.attachment_max_bytes()?,
            cors_origins: Origins::from_env(env),
            max_connections: env.number("MAX_CONNECTIONS", 1, 1_000_000)?,
            socket_dir: platform_core::handoff::socket_dir(env)?,
            max_connections_per_address: env.number("MAX_CONNECTIONS_PER_ADDRESS", 1, 1_000_000)?,
            trusted_proxies: TrustedProxies::from_env(env)?,
            max_in_flight: env.number("MAX_IN_FLIGHT", 1, 1_000_000)?,
            trust: Trust::from_env(env)?,
            wait_replicas: platform_core::config::wait_replicas(env, &stores)?,
            stores,
            ready_grace: platform_core::health::Grace::from_env(env)?,
            session_ttl: Duration::from_secs(env.number("SESSION_TTL_SECS", 1, 365 * 86_400)?),
            max_sessions_per_user: env.number("MAX_SESSIONS_PER_USER", 1, 10_000)?,
            session_cache_max: env.number("SESSION_CACHE_MAX", 0, 10_000_000)?,
            limits: Limits::from_env(env)?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen.addr()
    }
}

/// An upstream base URL: `http://host:port`, nothing after the authority.
fn upstream(env: &Env, var: &str) -> Result<Uri, ConfigError> {
    let raw = env.url(var, &["http"])?;
    let bad = |reason: &str| ConfigError {
        var: var.into(),
        value: raw.clone(),
        reason: reason.into(),
    };
    let uri: Uri = raw
        .trim_end_matches('/')
        .parse()
        .map_err(|_| bad("not a URL"))?;
    if uri.authority().is_none() || uri.path().len() > 1 || uri.query().is_some() {
        return Err(bad("expected http://host:port with no path"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_exactly_its_declared_settings() {
        platform_core::settings::assert_reads(
            "gateway",
            &[("INTERNAL_SECRET", "0123456789abcdef")],
            Config::from_env,
        );
    }

    #[test]
    fn upstreams_are_checked() {
        let ok = Config::from_env(&Env::from_pairs(
            "gateway",
            &[
                ("CHAT_SERVICE_URL", "http://chat:3001/"),
                ("INTERNAL_SECRET", "0123456789abcdef"),
            ],
        ))
        .unwrap();
        assert_eq!(ok.chat.authority().unwrap().as_str(), "chat:3001");
        for bad in ["https://x", "http://x/path", "chat:3001"] {
            let e = Config::from_env(&Env::from_pairs("gateway", &[("CHAT_SERVICE_URL", bad)]))
                .unwrap_err();
            assert_eq!(e.var, "CHAT_SERVICE_URL", "{bad}");
        }
    }

    #[test]
    fn limits_default_and_are_checked() {
        let env = |pairs: &[(&str, &str)]| {
            let mut all = vec![("AUTH_MODE", "compat")];
            all.extend_from_slice(pairs);
            Config::from_env(&Env::from_pairs("gateway", &all))
        };
        let c = env(&[]).unwrap();
        assert_eq!(c.limits.write(Write::Edit).0.max, 60);
        assert_eq!(c.limits.write(Write::Signal).1.max, 6000);
        assert_eq!(
            c.limits.write(Write::Upload),
            (Limit::per(60, MINUTE), Limit::per(600, MINUTE))
        );
        assert_eq!(c.attachment_max_bytes, 26_214_400);
        let c = env(&[
            ("RATE_EDITS_PER_ADDRESS", "7"),
            ("TRUSTED_PROXIES", "10.0.0.0/8"),
        ])
        .unwrap();
        assert_eq!(c.limits.write(Write::Edit).1, Limit::per(7, MINUTE));
        assert!(!c.trusted_proxies.is_empty());
        let e = env(&[("TRUSTED_PROXIES", "10.0.0.0/99")]).unwrap_err();
        assert_eq!(e.var, "TRUSTED_PROXIES");
        assert_eq!(c.session_ttl, Duration::from_secs(7 * 86_400));
        let e = env(&[("RATE_EDITS_PER_USER", "0")]).unwrap_err();
        assert_eq!(e.var, "RATE_EDITS_PER_USER");
        let e = env(&[("SESSION_TTL_SECS", "forever")]).unwrap_err();
        assert_eq!(e.var, "SESSION_TTL_SECS");
    }
}
