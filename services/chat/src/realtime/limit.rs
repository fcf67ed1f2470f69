//! The limit on client → server socket events (`typing:update`, `presence:join`): a token
//! bucket per socket, checked in memory on every event, and a per-user budget shared by every
//! instance through Redis. Typing is high-frequency, so the shared budget is counted in
//! batches: one Redis round trip every [`SHARED_BATCH`] events a socket sends, not one per
//! keystroke. Events past either limit are dropped (acked `{"ok": false}`); the socket stays.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform_core::ratelimit::{self, Limit};
use platform_core::sync::lock;

use crate::State;

/// Events a socket sends per hit on its user's shared budget.
pub(super) const SHARED_BATCH: u32 = 10;

/// One socket's bucket.
#[derive(Debug)]
pub(super) struct Budget {
    tokens: f64,
    at: Instant,
    /// Events since the shared budget was last counted.
    unshared: u32,
    /// The user's shared budget is spent until then.
    blocked_until: Option<Instant>,
}

enum Verdict {
    Allow,
    Drop,
    /// Allowed here; a batch is due on the shared budget.
    CountShared,
}

impl Budget {
    pub(super) fn new(burst: u32) -> Self {
        Budget {
            tokens: f64::from(burst),
            at: Instant::now(),
            unshared: 0,
            blocked_until: None,
        }
    }

    fn take(&mut self, now: Instant, burst: u32, per_sec: u32) -> Verdict {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Verdict::Drop;
            }
            self.blocked_until = None;
        }
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * f64::from(per_sec)).min(f64::from(burst));
        if self.tokens < 1.0 {
            return Verdict::Drop;
        }
        self.tokens -= 1.0;
        self.unshared += 1;
        if self.unshared >= SHARED_BATCH {
            self.unshared = 0;
            return Verdict::CountShared;
        }
        Verdict::Allow
    }
}

pub(super) struct EventLimit {
    state: Arc<State>,
    shared: Limit,
}

impl EventLimit {
    pub(super) fn new(state: Arc<State>) -> Self {
        let per_min = state.config.socket_events_per_user_per_min;
        EventLimit {
            shared: Limit::per(
                (per_min / u64::from(SHARED_BATCH)).max(1),
                Duration::from_secs(60),
            ),
            state,
        }
    }

    /// Whether one more event of `user` on the socket owning `budget` may go.
    pub(super) async fn allow(&self, budget: &Mutex<Budget>, user: &str) -> bool {
        let cfg = &self.state.config;
        let verdict = lock(budget).take(
            Instant::now(),
            cfg.socket_event_burst,
            cfg.socket_events_per_sec,
        );
        match verdict {
            Verdict::Allow => true,
            Verdict::Drop => false,
            Verdict::CountShared => {
                let key = format!(
                    "{}:rl:socket-events:u:{user}",
                    self.state.queue.keys().namespace()
                );
                match ratelimit::hit(&self.state.redis, &[(&key, self.shared)], "events").await {
                    Ok(()) => true,
                    Err(e) => match e.retry_after {
                        Some(secs) if e.status == http::StatusCode::TOO_MANY_REQUESTS => {
                            lock(budget).blocked_until =
                                Some(Instant::now() + Duration::from_secs(secs));
                            false
                        }
                        // Redis unreachable: the socket's own bucket still bounds it.
                        _ => true,
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut b = Budget::new(5);
        let t0 = Instant::now();
        let allowed = (0..20)
            .filter(|_| !matches!(b.take(t0, 5, 2), Verdict::Drop))
            .count();
        assert_eq!(allowed, 5);
        assert!(!matches!(
            b.take(t0 + Duration::from_millis(600), 5, 2),
            Verdict::Drop
        ));
        assert!(matches!(
            b.take(t0 + Duration::from_millis(600), 5, 2),
            Verdict::Drop
        ));
    }

    #[test]
    fn the_shared_budget_is_counted_once_per_batch() {
        let mut b = Budget::new(100);
        let t0 = Instant::now();
        let due = (0..35)
            .filter(|_| matches!(b.take(t0, 100, 1), Verdict::CountShared))
            .count();
        assert_eq!(due, 3);
    }
}
