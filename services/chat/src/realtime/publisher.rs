//! Publishes the events this instance's sockets raise (`typing:update`) on the events
//! channel, in the order they were raised, without each one waiting for Redis: envelopes
//! queue here, and one task sends whatever has gathered as one pipeline. So a socket's next
//! packet is handled while its previous event is still on the way, and a burst of events
//! costs one round trip, which is what relay throughput hangs on (see docs/perf/2026-11-relay.md).

use std::sync::{Arc, OnceLock};

use platform_core::events::Envelope;
use platform_core::{Context, Failure};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::State;

/// Envelopes waiting for Redis; past this, raising an event waits for room (back-pressure
/// on the socket that raises them) instead of growing memory.
const QUEUE: usize = 1024;
/// Most envelopes sent in one pipeline.
const PIPELINE: usize = 128;

struct Job {
    body: Vec<u8>,
    /// Told whether Redis took the envelope, when the caller waits for that.
    done: Option<oneshot::Sender<bool>>,
}

pub(super) struct Publisher {
    state: Arc<State>,
    /// Started on first use, from inside the runtime.
    tx: OnceLock<mpsc::Sender<Job>>,
}

impl Publisher {
    pub(super) fn new(state: Arc<State>) -> Self {
        Publisher {
            state,
            tx: OnceLock::new(),
        }
    }

    /// Queues `env` for every instance. With `confirm`, waits until Redis took it and says
    /// whether it did; otherwise returns once it is queued (false if it cannot be encoded
    /// or the publisher is gone).
    pub(super) async fn publish<T: Serialize>(&self, env: &Envelope<T>, confirm: bool) -> bool {
        let body = match serde_json::to_vec(env) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(event = %env.event, error = %e, "cannot encode event");
                return false;
            }
        };
        let (done, answer) = if confirm {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(self.state.clone(), rx));
            tx
        });
        if tx.send(Job { body, done }).await.is_err() {
            return false;
        }
        match answer {
            Some(rx) => rx.await.unwrap_or(false),
            None => true,
        }
    }
}

/// Sends queued envelopes, as many as have gathered per pipeline, until every sender is gone.
async fn run(state: Arc<State>, mut rx: mpsc::Receiver<Job>) {
    let channel = state.queue.keys().events.clone();
    let mut jobs = Vec::with_capacity(PIPELINE);
    while rx.recv_many(&mut jobs, PIPELINE).await > 0 {
        let mut pipe = redis::pipe();
        for j in &jobs {
            pipe.cmd(platform_core::pubsub::publish_command(&channel))
                .arg(&channel)
                .arg(&j.body)
                .ignore();
        }
        let sent = match state.redis.get().await {
            Ok(mut conn) => pipe.query_async::<()>(&mut *conn).await.context("PUBLISH"),
            Err(e) => Err(Failure::new("Redis pool", e)),
        };
        if let Err(e) = &sent {
            // Best effort, as every realtime event: clients read state back over HTTP.
            tracing::warn!(events = jobs.len(), error = %e, "events not published");
        }
        for j in jobs.drain(..) {
            if let Some(done) = j.done {
                let _ = done.send(sent.is_ok());
            }
        }
    }
}
