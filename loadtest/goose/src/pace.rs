//! A fixed rate of transactions across all goose users (`--rate N` per second): each
//! transaction takes the next tick before it starts. Unlike goose's `--throttle-requests`,
//! the wait happens before a realtime flight starts its clock, so queueing for the rate is
//! never counted as delivery time, and socket-only transactions (typing) are paced too.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::{Interval, MissedTickBehavior};

static PACER: OnceLock<Mutex<Interval>> = OnceLock::new();

/// Sets the rate for the whole run (once, before goose starts); 0 leaves it unpaced.
pub fn set_rate(per_second: u64) {
    if per_second == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second as f64));
    // Behind schedule (the users are all busy), keep the spacing rather than burst.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let _ = PACER.set(Mutex::new(tick));
}

/// Waits for this transaction's turn; at once when no rate is set.
pub async fn turn() {
    if let Some(p) = PACER.get() {
        p.lock().await.tick().await;
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn turns_come_at_the_rate() {
        super::set_rate(100);
        let t = std::time::Instant::now();
        for _ in 0..11 {
            super::turn().await;
        }
        // The first tick is immediate; ten more at 10 ms each.
        assert!(t.elapsed() >= std::time::Duration::from_millis(95));
    }
}
