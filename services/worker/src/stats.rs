//! The worker's metrics: batches and their commit time, messages stored, dead letters, and
//! the stream's depth and lag as last seen by maintenance.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use platform_core::metrics::{Histogram, Label, Metrics};

pub(crate) struct Stats {
    pub metrics: Metrics,
    pub batches: Arc<AtomicU64>,
    pub stored: Arc<AtomicU64>,
    pub dead_letters: Arc<AtomicU64>,
    /// Pages merged out of the search index's pending list (`search_merge`).
    pub search_merged: Arc<AtomicU64>,
    pub commit: Arc<Histogram>,
    pub batch_size: Arc<Histogram>,
    /// Entries in the stream, entries delivered but unacknowledged, age of the oldest of those.
    pub stream_length: Arc<AtomicU64>,
    pub pending: Arc<AtomicU64>,
    pub lag_ms: Arc<AtomicU64>,
}

impl Stats {
    /// `L`: the routes of the worker's small HTTP server.
    pub(crate) fn new<L: Label>() -> Stats {
        let metrics = Metrics::new::<L>("worker");
        let gauge = |name: &'static str, help: &'static str| {
            let v = Arc::new(AtomicU64::new(0));
            let read = v.clone();
            metrics.gauge(name, help, move || read.load(Ordering::Relaxed) as f64);
            v
        };
        let stream_length = gauge("stream_length", "Entries in the send stream.");
        let pending = gauge(
            "stream_pending",
            "Entries delivered to workers and not yet acknowledged.",
        );
        let lag_ms = gauge(
            "stream_lag_milliseconds",
            "Age of the oldest unacknowledged entry.",
        );
        Stats {
            batches: metrics.counter("worker_batches_total", "Batches committed."),
            stored: metrics.counter(
                "worker_messages_stored_total",
                "Messages stored (average batch size: this over batches).",
            ),
            dead_letters: metrics.counter(
                "worker_dead_letters_total",
                "Entries moved to the dead-letter stream.",
            ),
            search_merged: metrics.counter(
                "worker_search_pages_merged_total",
                "Pages merged from the search index's pending list into the index.",
            ),
            commit: metrics.histogram(
                "worker_batch_seconds",
                "Time to store and settle one batch.",
            ),
            batch_size: metrics.histogram_with(
                "worker_batch_size",
                "Entries per batch.",
                platform_core::metrics::SIZES,
            ),
            stream_length,
            pending,
            lag_ms,
            metrics,
        }
    }
}
