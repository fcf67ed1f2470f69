//! Requests waiting for the worker's commit of a message, released by its commit notice.
//! The registry is sharded by message id so that thousands of concurrent sends do not
//! contend on one lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use platform_core::model::Message;
use platform_core::sync;
use tokio::sync::oneshot;
use uuid::Uuid;

/// How a queued message ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Stored under its own id.
    Stored,
    /// Not stored: its `clientMessageId` was already used by this stored message.
    Duplicate(Message),
}

const SHARDS: usize = 32;

type Shard = Mutex<HashMap<Uuid, Vec<oneshot::Sender<Outcome>>>>;

#[derive(Clone)]
pub(crate) struct Waiters {
    shards: Arc<[Shard]>,
}

impl Default for Waiters {
    fn default() -> Self {
        Waiters {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

/// A registered wait; dropping it (answered or timed out) removes it.
pub(crate) struct Wait {
    rx: Option<oneshot::Receiver<Outcome>>,
    id: Uuid,
    waiters: Waiters,
}

impl Waiters {
    fn shard(&self, id: &Uuid) -> &Shard {
        // v7 ids: the low bits are random.
        &self.shards[(id.as_u128() as usize) % SHARDS]
    }

    /// Registers interest in `id` before the event can happen, so none is missed.
    pub(crate) fn register(&self, id: Uuid) -> Wait {
        let (tx, rx) = oneshot::channel();
        sync::lock(self.shard(&id)).entry(id).or_default().push(tx);
        Wait {
            rx: Some(rx),
            id,
            waiters: self.clone(),
        }
    }

    /// Releases everyone waiting on `id`.
    pub(crate) fn release(&self, id: &Uuid, outcome: Outcome) {
        let senders = sync::lock(self.shard(id)).remove(id);
        for tx in senders.into_iter().flatten() {
            let _ = tx.send(outcome.clone());
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().len()).sum()
    }
}

impl Wait {
    /// Waits up to `limit`; `None` on timeout.
    pub(crate) async fn until(mut self, limit: std::time::Duration) -> Option<Outcome> {
        let rx = self.rx.take()?;
        tokio::time::timeout(limit, rx)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut shard = sync::lock(self.waiters.shard(&self.id));
        if let Some(list) = shard.get_mut(&self.id) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                shard.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn release_wakes_every_waiter() {
        let w = Waiters::default();
        let id = Uuid::now_v7();
        let a = w.register(id);
        let b = w.register(id);
        w.release(&id, Outcome::Stored);
        assert!(matches!(
            a.until(Duration::from_secs(1)).await,
            Some(Outcome::Stored)
        ));
        assert!(matches!(
            b.until(Duration::from_secs(1)).await,
            Some(Outcome::Stored)
        ));
        assert_eq!(w.len(), 0);
    }

    #[tokio::test]
    async fn timeouts_and_drops_leave_nothing_behind() {
        let w = Waiters::default();
        let id = Uuid::now_v7();
        assert!(w
            .register(id)
            .until(Duration::from_millis(5))
            .await
            .is_none());
        drop(w.register(Uuid::now_v7()));
        assert_eq!(w.len(), 0);
        // Releasing an id nobody waits for is harmless.
        w.release(&id, Outcome::Stored);
    }
}
