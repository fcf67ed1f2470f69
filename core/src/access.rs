//! The access log: one line per request, at INFO under the target `access` (method, route
//! label, status, duration, request id), written by [`crate::server`] when the response
//! leaves the handler. The route label is the one the request's metrics were recorded under
//! ([`crate::dispatch::measured`] notes it in a task-local), `-` for requests answered
//! outside any route's metrics (the gateway's CORS preflights). Off unless `ACCESS_LOG=on`
//! ([`enable`], at start-up): a line per request is a lot to keep, and costs CPU at full
//! load (BENCHMARKS.md). `RUST_LOG=info,access=off` silences it too.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `ACCESS_LOG`, set once by [`crate::server::launch`].
static ON: AtomicBool = AtomicBool::new(false);

/// Turns the access log on or off for this process.
pub fn enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Whether requests are logged (and their routes noted for it).
pub(crate) fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The route of a request answered outside any route's metrics.
const NO_ROUTE: &str = "-";

tokio::task_local! {
    static ROUTE: Cell<&'static str>;
}

/// Runs `answer` where [`note_route`] can name its route, and returns the route with the
/// response.
pub(crate) async fn scoped<T>(answer: impl std::future::Future<Output = T>) -> (T, &'static str) {
    ROUTE
        .scope(Cell::new(NO_ROUTE), async {
            let out = answer.await;
            (out, ROUTE.with(Cell::get))
        })
        .await
}

/// Names the route of the request being answered (outside [`scoped`]: nothing to name).
pub(crate) fn note_route(label: &'static str) {
    let _ = ROUTE.try_with(|r| r.set(label));
}

/// Writes the line. Formatting is all it costs: the fields are borrowed.
pub(crate) fn log(
    method: &http::Method,
    route: &str,
    status: http::StatusCode,
    elapsed: Duration,
    request_id: &str,
) {
    tracing::info!(
        target: "access",
        method = %method,
        route = %route,
        status = status.as_u16(),
        duration_ms = elapsed.as_micros() as f64 / 1000.0,
        request_id = %request_id,
        "access"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_route_noted_inside_is_returned() {
        let (n, route) = scoped(async {
            note_route("send_message");
            7
        })
        .await;
        assert_eq!((n, route), (7, "send_message"));
        let ((), route) = scoped(async {}).await;
        assert_eq!(route, NO_ROUTE);
        // Outside a scope nothing is noted, and nothing breaks.
        note_route("ignored");
    }
}
