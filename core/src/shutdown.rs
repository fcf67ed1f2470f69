//! SIGINT/SIGTERM become a cancellation token that every task of a service watches. Between
//! the signal and the token there is a drain period (`SHUTDOWN_DRAIN_MS`): the service goes
//! on serving as before, except that readiness answers 503 ([`started`]), so a load balancer
//! probing it takes it out of rotation before it stops accepting connections.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Set at the first signal, before the drain period: never cleared.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Whether shutdown has begun (a signal arrived), drain period included.
pub fn started() -> bool {
    STARTED.load(Ordering::Relaxed)
}

/// A token cancelled `drain` after the first SIGINT or SIGTERM, or at once on a second one
/// (an operator who does not want to wait).
pub fn on_signal(drain: Duration) -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        STARTED.store(true, Ordering::Relaxed);
        if drain.is_zero() {
            tracing::info!("shutdown signal received");
        } else {
            tracing::info!(?drain, "shutdown signal received: not ready, draining");
            tokio::select! {
                () = tokio::time::sleep(drain) => {}
                () = wait_for_signal() => tracing::info!("second signal: drain cut short"),
            }
        }
        t.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
