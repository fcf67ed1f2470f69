//! Sessions kept in memory at the gateway, so that a request with a known token costs no
//! Redis round trip. Revocations are pushed: every revoking script publishes the session ids
//! on [`Sessions::revocations`], and [`subscribe`] drops them here. The cache is used only
//! while that subscription is up: at start, after a lost connection or a Redis restart it is
//! empty and every lookup goes to Redis (as without a cache) until the subscription is back,
//! so a revocation published while nobody listened is never missed.
//!
//! A lookup fills the cache only if no revocation (and no change of the subscription) was
//! heard between its start and its end: a session revoked while its lookup was in flight is
//! either dropped by the revocation heard after the entry went in, or never goes in.
//! Entries end at the session's own expiry (sessions have a fixed lifetime); the count is
//! bounded (`SESSION_CACHE_MAX`), and a full cache drops an arbitrary entry for a new one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use platform_core::pubsub;
use platform_core::sessions::{self, Live, SessionUser, Sessions};
use platform_core::sync;
use tokio_util::sync::CancellationToken;

pub(crate) struct Cache {
    max: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Whether the revocations subscription is up: without it nothing is served or stored.
    live: bool,
    /// Moves with every revocation heard and every change of `live`: a lookup stores its
    /// answer only if it has not moved since the lookup started.
    version: u64,
    entries: HashMap<[u8; 32], Entry>,
}

struct Entry {
    user: SessionUser,
    expires: Instant,
}

/// Taken before a Redis lookup, given back with its answer to [`Cache::store`].
#[derive(Clone, Copy)]
pub(crate) struct Ticket(Option<u64>);

impl Cache {
    /// A cache of at most `max` sessions (0: none is kept).
    pub(crate) fn new(max: usize) -> Self {
        Cache {
            max,
            inner: Mutex::new(Inner {
                live: false,
                version: 0,
                entries: HashMap::new(),
            }),
        }
    }

    /// The user of the session with this token digest, while it is known and unexpired.
    pub(crate) fn get(&self, digest: &[u8; 32]) -> Option<SessionUser> {
        let mut inner = sync::lock(&self.inner);
        if !inner.live {
            return None;
        }
        let entry = inner.entries.get(digest)?;
        if entry.expires > Instant::now() {
            return Some(entry.user.clone());
        }
        inner.entries.remove(digest);
        None
    }

    /// What a lookup starting now must show [`Cache::store`] to keep its answer.
    pub(crate) fn ticket(&self) -> Ticket {
        let inner = sync::lock(&self.inner);
        Ticket(inner.live.then_some(inner.version))
    }

    /// Keeps a live session Redis answered, unless a revocation was heard (or the
    /// subscription changed) since `ticket` was taken.
    pub(crate) fn store(&self, ticket: Ticket, digest: [u8; 32], live: &Live) {
        // Within a second of its end it is not worth keeping (and PTTL rounds).
        if self.max == 0 || live.expires_in < Duration::from_secs(1) {
            return;
        }
        let expires = Instant::now() + live.expires_in - Duration::from_millis(500);
        let mut inner = sync::lock(&self.inner);
        if !inner.live || ticket.0 != Some(inner.version) {
            return;
        }
        if inner.entries.len() >= self.max && !inner.entries.contains_key(&digest) {
            // Full: drop any one. A dropped session is looked up in Redis again.
            if let Some(k) = inner.entries.keys().next().copied() {
                inner.entries.remove(&k);
            }
        }
        inner.entries.insert(
            digest,
            Entry {
                user: live.user.clone(),
                expires,
            },
        );
    }

    /// Drops one session (revoked here, before the answer says so).
    pub(crate) fn forget(&self, digest: &[u8; 32]) {
        let mut inner = sync::lock(&self.inner);
        inner.version += 1;
        inner.entries.remove(digest);
    }

    /// Drops every session of a user (a password change here revoked them all).
    pub(crate) fn forget_user(&self, user_id: &str) {
        let mut inner = sync::lock(&self.inner);
        inner.version += 1;
        inner.entries.retain(|_, e| e.user.user_id != user_id);
    }

    /// A revocation message: session ids separated by spaces.
    fn revoked(&self, ids: &str) {
        let mut inner = sync::lock(&self.inner);
        inner.version += 1;
        for id in ids.split_ascii_whitespace() {
            match sessions::id_digest(id) {
                Some(d) => {
                    inner.entries.remove(&d);
                }
                // Unreadable: some session we cannot name was revoked; forget them all.
                None => inner.entries.clear(),
            }
        }
    }

    /// The subscription came up (`true`, it hears every revocation from now on) or went down:
    /// either way, start empty.
    fn set_live(&self, live: bool) {
        let mut inner = sync::lock(&self.inner);
        inner.version += 1;
        inner.live = live && self.max > 0;
        inner.entries = HashMap::new();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        sync::lock(&self.inner).entries.len()
    }
}

/// Keeps the revocations subscription up until `shutdown`, the cache live while it is.
pub(crate) async fn subscribe(
    cache: std::sync::Arc<Cache>,
    stores: platform_core::config::Stores,
    sessions: Sessions,
    shutdown: CancellationToken,
) {
    if cache.max == 0 {
        return;
    }
    let channel = sessions.revocations();
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match pubsub::subscribe(&stores, &[&channel]).await {
            Ok((probe, mut messages)) => {
                backoff = Duration::from_millis(100);
                cache.set_live(true);
                // A connection that hangs without closing would deliver nothing and look
                // alive: it is pinged, and one that does not answer counts as lost.
                let probe = probe.until_unanswered();
                let mut probe = std::pin::pin!(probe);
                loop {
                    tokio::select! {
                        m = messages.next() => {
                            let Some(msg) = m else { break };
                            cache.revoked(std::str::from_utf8(msg.get_payload_bytes()).unwrap_or("?"));
                        }
                        () = &mut probe => {
                            tracing::warn!("the session revocations subscription did not answer a ping");
                            break;
                        }
                        () = shutdown.cancelled() => break,
                    }
                }
                cache.set_live(false);
                if shutdown.is_cancelled() {
                    return;
                }
                tracing::warn!("session revocations subscription lost; sessions are looked up in Redis until it is back");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to session revocations; sessions are looked up in Redis")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(user: &str, secs: u64) -> Live {
        Live {
            user: SessionUser {
                user_id: user.into(),
                display_name: user.into(),
            },
            id: String::new(),
            expires_in: Duration::from_secs(secs),
        }
    }

    #[test]
    fn serves_only_while_subscribed_and_unrevoked() {
        let c = Cache::new(2);
        let (a, b, d) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        // Down: nothing stored.
        c.store(c.ticket(), a, &live("ann", 60));
        assert!(c.get(&a).is_none());
        c.set_live(true);
        c.store(c.ticket(), a, &live("ann", 60));
        assert_eq!(c.get(&a).unwrap().user_id, "ann");
        // A revocation heard during a lookup: its answer is not kept.
        let t = c.ticket();
        c.revoked(&"02".repeat(32));
        c.store(t, b, &live("bob", 60));
        assert!(c.get(&b).is_none());
        // Revoked by id.
        c.revoked(&format!("{} {}", "01".repeat(32), "09".repeat(32)));
        assert!(c.get(&a).is_none());
        // Bounded.
        for (k, u) in [(a, "ann"), (b, "bob"), (d, "dee")] {
            c.store(c.ticket(), k, &live(u, 60));
        }
        assert_eq!(c.len(), 2);
        assert!(c.get(&d).is_some());
        // Going down forgets everything.
        c.set_live(false);
        assert!(c.get(&d).is_none());
        c.set_live(true);
        assert!(c.get(&d).is_none());
        // Too close to its end, or a password change.
        c.store(c.ticket(), a, &live("ann", 0));
        assert!(c.get(&a).is_none());
        c.store(c.ticket(), a, &live("ann", 60));
        c.forget_user("ann");
        assert!(c.get(&a).is_none());
    }
}
