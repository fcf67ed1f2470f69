//! Prometheus metrics without a registry crate: counters and histograms are plain atomics,
//! registered once at start-up with fixed labels, so recording on the hot path takes no lock
//! and allocates nothing. `render` writes the text exposition format for `/metrics`.
//!
//! Request metrics are labelled by a service's route enum ([`Label`], declared with
//! [`route_labels!`](crate::route_labels)); requests no route took are `unmatched`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms.
pub const LATENCY: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds of size histograms (items per batch).
pub const SIZES: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
];

/// A cumulative histogram, of durations (in seconds) or of plain values.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Box<[AtomicU64]>,
    count: AtomicU64,
    /// The sum, in millionths, so it fits an atomic integer.
    sum_micro: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::with_bounds(LATENCY)
    }
}

impl Histogram {
    pub fn with_bounds(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micro: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        self.observe_value(d.as_secs_f64());
    }

    pub fn observe_value(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micro
            .fetch_add((v * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(self.counts.iter()) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micro.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// A service's routes as metric labels: a fieldless enum, one label per variant. Declare it
/// with [`route_labels!`](crate::route_labels), which writes both from one list.
pub trait Label: Copy + Send + Sync + 'static {
    /// Every label, in variant order.
    const ALL: &'static [&'static str];
    /// This variant's position in [`Label::ALL`].
    fn index(self) -> usize;
}

/// The label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// Declares a route enum and its metric labels in one list:
///
/// ```
/// platform_core::route_labels! {
///     /// The service's routes.
///     pub enum Route {
///         Healthz = "healthz",
///         SendMessage = "send_message",
///     }
/// }
/// use platform_core::metrics::Label;
/// assert_eq!(Route::ALL[Route::SendMessage.index()], "send_message");
/// ```
#[macro_export]
macro_rules! route_labels {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $label:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $crate::metrics::Label for $name {
            const ALL: &'static [&'static str] = &[$($label),+];
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

/// Requests of one route: counts per status class and a latency histogram.
#[derive(Debug, Default)]
pub struct RouteStats {
    by_class: [AtomicU64; 5],
    latency: Histogram,
}

/// A value read when rendering (connected sockets, queue depth...).
type Gauge = Box<dyn Fn() -> f64 + Send + Sync>;

enum Extra {
    Counter {
        name: &'static str,
        help: &'static str,
        value: Arc<AtomicU64>,
    },
    Gauge {
        name: &'static str,
        help: &'static str,
        read: Gauge,
    },
    Histogram {
        name: &'static str,
        help: &'static str,
        hist: Arc<Histogram>,
    },
}

/// A service's metrics.
pub struct Metrics {
    service: &'static str,
    routes: Vec<(&'static str, RouteStats)>,
    extra: Mutex<Vec<Extra>>,
}

impl Metrics {
    /// Metrics of `service`, whose requests are recorded by routes of type `L`.
    pub fn new<L: Label>(service: &'static str) -> Self {
        Metrics {
            service,
            routes: L::ALL
                .iter()
                .chain([&UNMATCHED])
                .map(|r| (*r, RouteStats::default()))
                .collect(),
            extra: Mutex::new(Vec::new()),
        }
    }

    /// Records one request of `route` (`None`: no route took it), with the `L` the metrics
    /// were made with.
    pub fn record<L: Label>(&self, route: Option<L>, status: u16, elapsed: Duration) {
        let index = route.map_or(L::ALL.len(), L::index);
        if let Some((_, s)) = self.routes.get(index) {
            let class = usize::from(status / 100).clamp(1, 5) - 1;
            s.by_class[class].fetch_add(1, Ordering::Relaxed);
            s.latency.observe(elapsed);
        }
    }

    pub fn counter(&self, name: &'static str, help: &'static str) -> Arc<AtomicU64> {
        let value = Arc::new(AtomicU64::new(0));
        self.push(Extra::Counter {
            name,
            help,
            value: value.clone(),
        });
        value
    }

    /// A latency histogram (seconds).
    pub fn histogram(&self, name: &'static str, help: &'static str) -> Arc<Histogram> {
        self.histogram_with(name, help, LATENCY)
    }

    pub fn histogram_with(
        &self,
        name: &'static str,
        help: &'static str,
        bounds: &'static [f64],
    ) -> Arc<Histogram> {
        let hist = Arc::new(Histogram::with_bounds(bounds));
        self.push(Extra::Histogram {
            name,
            help,
            hist: hist.clone(),
        });
        hist
    }

    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        self.push(Extra::Gauge {
            name,
            help,
            read: Box::new(read),
        });
    }

    fn push(&self, e: Extra) {
        crate::sync::lock(&self.extra).push(e);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let svc = self.service;
        let _ = writeln!(
            out,
            "# HELP http_requests_total Requests answered, by route and status class."
        );
        let _ = writeln!(out, "# TYPE http_requests_total counter");
        for (route, s) in &self.routes {
            for (i, c) in s.by_class.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "http_requests_total{{service=\"{svc}\",route=\"{route}\",status=\"{}xx\"}} {n}",
                        i + 1
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(out, "# TYPE http_request_duration_seconds histogram");
        for (route, s) in &self.routes {
            s.latency.render(
                &mut out,
                "http_request_duration_seconds",
                &format!("service=\"{svc}\",route=\"{route}\""),
            );
        }
        for e in crate::sync::lock(&self.extra).iter() {
            match e {
                Extra::Counter { name, help, value } => {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                    let _ = writeln!(
                        out,
                        "{name}{{service=\"{svc}\"}} {}",
                        value.load(Ordering::Relaxed)
                    );
                }
                Extra::Gauge { name, help, read } => {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                    let _ = writeln!(out, "{name}{{service=\"{svc}\"}} {}", read());
                }
                Extra::Histogram { name, help, hist } => {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
                    hist.render(&mut out, name, &format!("service=\"{svc}\""));
                }
            }
        }
        out
    }

    /// The `/metrics` response.
    pub fn respond(&self) -> crate::Response {
        let mut res = crate::Response::new(crate::Body::from(self.render().into_bytes()));
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::route_labels! {
        enum R {
            Send = "send",
            List = "list",
        }
    }

    #[test]
    fn renders_counts_buckets_and_extras() {
        let m = Metrics::new::<R>("chat");
        m.record(Some(R::Send), 201, Duration::from_millis(3));
        m.record(Some(R::Send), 202, Duration::from_millis(30));
        m.record(Some(R::List), 404, Duration::from_micros(100));
        m.record(None::<R>, 405, Duration::from_millis(1));
        let c = m.counter("dead_letters_total", "Entries dead-lettered.");
        c.fetch_add(2, Ordering::Relaxed);
        m.gauge("sockets_connected", "Sockets.", || 7.0);
        let text = m.render();
        assert!(
            text.contains("http_requests_total{service=\"chat\",route=\"send\",status=\"2xx\"} 2")
        );
        assert!(
            text.contains("http_requests_total{service=\"chat\",route=\"list\",status=\"4xx\"} 1")
        );
        assert!(text.contains(
            "http_requests_total{service=\"chat\",route=\"unmatched\",status=\"4xx\"} 1"
        ));
        assert!(text.contains("route=\"send\",le=\"0.005\"} 1"));
        assert!(text.contains("route=\"send\",le=\"0.05\"} 2"));
        assert!(text.contains("route=\"send\",le=\"+Inf\"} 2"));
        assert!(text.contains("dead_letters_total{service=\"chat\"} 2"));
        assert!(text.contains("sockets_connected{service=\"chat\"} 7"));
        let sizes = m.histogram_with("batch_size", "Items per batch.", SIZES);
        sizes.observe_value(3.0);
        sizes.observe_value(700.0);
        let text = m.render();
        assert!(text.contains("batch_size_bucket{service=\"chat\",le=\"5\"} 1"));
        assert!(text.contains("batch_size_bucket{service=\"chat\",le=\"1000\"} 2"));
        assert!(text.contains("batch_size_sum{service=\"chat\"} 703"));
    }
}
