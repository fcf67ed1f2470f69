//! Connection state recovery for the chat's sockets: the session record behind each private
//! session id (`pid`), what a reconnecting socket missed, and keeping records alive while
//! their sockets are connected. The events themselves are kept by
//! `platform_core::recovery`, where every publisher records them.
//!
//! A record is a Redis hash `rec:s:<pid>`: who the socket was (`u`, `n`, signed in `v`),
//! whether it was online (`p`), and `s`, the offset at which its session began (what to
//! replay from when the client saw no event before it dropped). It lives for the window plus
//! two refresh periods while its socket is connected (every instance refreshes its own
//! sockets' records, so a crashed instance's records still outlive their window), for the
//! window after a disconnection the client did not mean, and not at all after one it meant.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use platform_core::recovery::{self, Offset, Replay, ReplayError, Window};
use platform_core::socketio::{Encoded, SocketIo};
use platform_core::ApiError;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::State;

/// Missed events one recovery replays at most; past it the client gets a new session and
/// reads its conversations over HTTP, which is cheaper than thousands of events.
const REPLAY_LIMIT: usize = 10_000;
/// Longest `pid` accepted from a client (ours are 32 hexadecimal digits).
const PID_MAX: usize = 64;
/// Records refreshed per Redis round trip.
const REFRESH_CHUNK: usize = 1_000;

/// A client's request for recovery, from its CONNECT auth payload.
#[derive(Debug, Default)]
pub(super) struct Asked {
    /// The private session id it had, if any (a reconnection).
    pub pid: Option<String>,
    /// The offset of the last event it got in that session.
    pub offset: Option<Offset>,
}

/// Who a session record says the socket was.
#[derive(Debug, Clone)]
pub(super) struct Record {
    /// Unknown for a compat-mode socket that had not said who it is.
    pub user: Option<String>,
    pub display_name: String,
    pub verified: bool,
    pub present: bool,
    pub start: Offset,
}

pub(super) struct Recovery {
    state: Arc<State>,
    window: Window,
}

impl Recovery {
    pub(super) fn new(state: Arc<State>) -> Self {
        let window = state.config.recovery_window;
        Recovery { state, window }
    }

    pub(super) fn enabled(&self) -> bool {
        !self.window.is_off()
    }

    /// How often every instance refreshes its sockets' records.
    fn refresh_period(&self) -> Duration {
        Duration::from_secs((self.window.secs() / 4).clamp(1, 60))
    }

    /// A connected socket's record outlives two missed refreshes by the window.
    fn connected_ttl(&self) -> u64 {
        self.window.secs() + 2 * self.refresh_period().as_secs()
    }

    /// What the client asked for: `None` unless it sent `"recovery": true` and recovery is on.
    /// A malformed pid or offset counts as absent (the client then gets a new session).
    pub(super) fn asked(&self, auth: &Value) -> Option<Asked> {
        if !self.enabled() || auth.get("recovery") != Some(&Value::Bool(true)) {
            return None;
        }
        let pid = auth
            .get("pid")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty() && p.len() <= PID_MAX)
            .filter(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(str::to_string);
        let offset = auth
            .get("offset")
            .and_then(Value::as_str)
            .and_then(|o| o.parse().ok());
        Some(Asked { pid, offset })
    }

    /// A new private session id (unguessable: it lets its holder resume the session).
    pub(super) fn new_pid() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// Writes a new session's record; its events start now (call it after the socket joined
    /// the rooms its events come through).
    pub(super) async fn open(
        &self,
        pid: &str,
        user: Option<(&str, &str, bool)>,
    ) -> Result<(), ApiError> {
        let keys = self.state.queue.keys();
        let (u, n, v) = user.unwrap_or(("", "", false));
        let mut conn = self.state.redis.get().await?;
        let _: i64 = OPEN_SCRIPT
            .key(keys.rec_seq())
            .key(keys.rec_session(pid))
            .arg(self.connected_ttl())
            .arg(u)
            .arg(n)
            .arg(if v { "1" } else { "0" })
            .invoke_async(&mut *conn)
            .await?;
        Ok(())
    }

    /// The record of `pid`, if it still exists.
    pub(super) async fn find(&self, pid: &str) -> Result<Option<Record>, ApiError> {
        let mut conn = self.state.redis.get().await?;
        let fields: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.state.queue.keys().rec_session(pid))
            .query_async(&mut *conn)
            .await?;
        let Some(start) = fields.get("s").and_then(|s| s.parse().ok()) else {
            return Ok(None);
        };
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        Ok(Some(Record {
            user: Some(get("u")).filter(|u| !u.is_empty()).map(str::to_string),
            display_name: get("n").to_string(),
            verified: get("v") == "1",
            present: get("p") == "1",
            start,
        }))
    }

    /// What `user` missed after `after`, as packets encoded for the socket, and the cut; the
    /// conversations are the user's current ones, so nothing is replayed from one they left.
    pub(super) async fn missed(
        &self,
        user: &str,
        after: Offset,
    ) -> Result<(Vec<Encoded>, u64), ReplayError> {
        let conversations: Vec<uuid::Uuid> = {
            let client = self.state.pg.get().await.map_err(ApiError::from)?;
            client
                .query(
                    "SELECT conversation_id FROM conversation_members WHERE user_id = $1",
                    &[&user],
                )
                .await
                .map_err(ApiError::from)?
                .iter()
                .map(|r| r.get(0))
                .collect()
        };
        let keys = self.state.queue.keys();
        let Replay { cut, events } = recovery::replay(
            &self.state.redis,
            keys,
            self.window,
            user,
            after,
            &conversations,
            REPLAY_LIMIT,
        )
        .await?;
        let mut out = Vec::with_capacity(events.len());
        for m in events {
            let enc = Encoded::recorded("/", &m.event, &m.data, &m.offset.to_string(), m.offset.n)
                .map_err(|e| {
                    ReplayError::Store(ApiError::internal("encoding a missed event", e))
                })?;
            out.push(enc);
        }
        Ok((out, cut))
    }

    /// The socket resumed its session: its record lives on as a connected one's.
    pub(super) async fn resumed(&self, pid: &str) -> Result<(), ApiError> {
        let mut conn = self.state.redis.get().await?;
        let _: i64 = redis::cmd("EXPIRE")
            .arg(self.state.queue.keys().rec_session(pid))
            .arg(self.connected_ttl())
            .query_async(&mut *conn)
            .await?;
        Ok(())
    }

    /// The socket said who it is (compat mode) or came online: kept for its recovery.
    pub(super) async fn joined(
        &self,
        pid: &str,
        user: &str,
        display_name: &str,
    ) -> Result<(), ApiError> {
        let mut conn = self.state.redis.get().await?;
        let _: i64 = JOINED_SCRIPT
            .key(self.state.queue.keys().rec_session(pid))
            .arg(user)
            .arg(display_name)
            .invoke_async(&mut *conn)
            .await?;
        Ok(())
    }

    /// The socket is gone: its record is kept for the window if the client may come back
    /// for it (`recoverable`), dropped otherwise.
    pub(super) async fn closed(&self, pid: &str, recoverable: bool) -> Result<(), ApiError> {
        let key = self.state.queue.keys().rec_session(pid);
        let mut conn = self.state.redis.get().await?;
        let cmd = if recoverable {
            let mut c = redis::cmd("EXPIRE");
            c.arg(&key).arg(self.window.secs());
            c
        } else {
            let mut c = redis::cmd("DEL");
            c.arg(&key);
            c
        };
        let _: i64 = cmd.query_async(&mut *conn).await?;
        Ok(())
    }

    /// Refreshes the records of this instance's connected sockets until shutdown.
    pub(super) async fn run(
        self: Arc<Self>,
        io: SocketIo,
        pid_of: fn(&platform_core::socketio::Socket) -> Option<Box<str>>,
        shutdown: CancellationToken,
    ) {
        if !self.enabled() {
            return;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.refresh_period()) => {}
                () = shutdown.cancelled() => return,
            }
            let pids: Vec<Box<str>> = io.of("/").sockets().iter().filter_map(pid_of).collect();
            for chunk in pids.chunks(REFRESH_CHUNK) {
                if let Err(e) = self.refresh(chunk).await {
                    tracing::warn!(error = %e, "recovery records not refreshed");
                    break;
                }
            }
        }
    }

    async fn refresh(&self, pids: &[Box<str>]) -> Result<(), ApiError> {
        let keys = self.state.queue.keys();
        let ttl = self.connected_ttl();
        let mut pipe = redis::pipe();
        for pid in pids {
            pipe.cmd("EXPIRE")
                .arg(keys.rec_session(pid))
                .arg(ttl)
                .ignore();
        }
        let mut conn = self.state.redis.get().await?;
        pipe.query_async::<()>(&mut *conn).await?;
        Ok(())
    }
}

/// KEYS: the offsets' counter hash, the record. ARGV: TTL, user, display name, signed in.
/// The session starts at the latest offset handed out.
const OPEN: &str = r"
local n = redis.call('HGET', KEYS[1], 'n') or '0'
local ms = redis.call('HGET', KEYS[1], 'ms') or '0'
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 's', ms .. '-' .. n, 'u', ARGV[2], 'n', ARGV[3], 'v', ARGV[4], 'p', '0')
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 0
";

static OPEN_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(OPEN));

/// KEYS: the record. ARGV: user, display name. Only while the record exists.
const JOINED: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'u', ARGV[1], 'n', ARGV[2], 'p', '1')
end
return 0
";

static JOINED_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(JOINED));
