//! Prometheus metrics without a registry crate: counters and histograms are plain atomics,
//! registered once at start-up with fixed labels, so recording on the hot path takes no lock
//! and allocates nothing. `render` writes the text exposition format for `/metrics`.
//!
//! Request metrics are labelled by a service's route enum ([`Label`], declared with
//! [`route_labels!`](crate::route_labels)); requests no route took are `unmatched`. Every
//! rendering ends with the process's own figures ([`crate::process_metrics`]) and
//! `build_info`.

use std::collections::BTreeMap;
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

/// The label of `route` (`None`: [`UNMATCHED`]).
pub fn label<L: Label>(route: Option<L>) -> &'static str {
    route.map_or(UNMATCHED, |r| {
        L::ALL.get(r.index()).copied().unwrap_or(UNMATCHED)
    })
}

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

/// The status codes the services answer, ascending: each has a counter of its own per route,
/// so counting one is an index and an atomic add. A dense array of every code (100..=599)
/// would cost 4 KB per route label (100 KB for chat's 25), nearly all of it zeros walked at
/// every scrape; these 23 cost 184 bytes. Any other code (the gateway passing on something
/// unexpected, or a new status nobody added here) is counted in [`Inner::other`], under a
/// lock: correct, only slower.
const CODES: [u16; 23] = [
    101, 200, 201, 202, 204, 206, 304, 400, 401, 403, 404, 405, 408, 409, 413, 414, 415, 416, 429,
    500, 502, 503, 504,
];

/// No slot in [`CODES`].
const NO_SLOT: u8 = u8::MAX;

/// The slot in [`CODES`] of every code below 600, or [`NO_SLOT`].
const SLOTS: [u8; 600] = {
    let mut t = [NO_SLOT; 600];
    let mut i = 0;
    while i < CODES.len() {
        t[CODES[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Requests of one route: counts per status code and a latency histogram.
#[derive(Debug, Default)]
pub struct RouteStats {
    by_code: [AtomicU64; CODES.len()],
    latency: Histogram,
}

/// A value read when rendering (connected sockets, queue depth...).
type Gauge = Box<dyn Fn() -> f64 + Send + Sync>;

/// Values read when rendering, one per value of a label: the closure reports each series
/// (label value, value) to the function it is given.
type Gauges = Box<dyn Fn(&mut dyn FnMut(&str, f64)) + Send + Sync>;

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
    Gauges {
        name: &'static str,
        help: &'static str,
        label: &'static str,
        read: Gauges,
    },
    Histogram {
        name: &'static str,
        help: &'static str,
        hist: Arc<Histogram>,
    },
}

/// A service's metrics. Cheap to clone: clones share the counters.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    service: &'static str,
    routes: Vec<(&'static str, RouteStats)>,
    /// Requests answered with a code outside [`CODES`], by (route index, code).
    other: Mutex<BTreeMap<(usize, u16), u64>>,
    extra: Mutex<Vec<Extra>>,
}

/// The metrics the metrics port serves: the process's service's, the last made.
static PROCESS: Mutex<Option<Metrics>> = Mutex::new(None);

/// The answer of the metrics port's `/metrics`: the process's metrics, or 503 before the
/// service has made them.
pub fn respond_process() -> crate::Response {
    match crate::sync::lock(&PROCESS).clone() {
        Some(m) => m.respond(),
        None => crate::ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not ready yet",
        )
        .into_response(),
    }
}

impl Metrics {
    /// Metrics of `service`, whose requests are recorded by routes of type `L`.
    pub fn new<L: Label>(service: &'static str) -> Self {
        let m = Metrics {
            inner: Arc::new(Inner {
                service,
                routes: L::ALL
                    .iter()
                    .chain([&UNMATCHED])
                    .map(|r| (*r, RouteStats::default()))
                    .collect(),
                other: Mutex::new(BTreeMap::new()),
                extra: Mutex::new(Vec::new()),
            }),
        };
        *crate::sync::lock(&PROCESS) = Some(m.clone());
        m
    }

    /// Records one request of `route` (`None`: no route took it), with the `L` the metrics
    /// were made with.
    pub fn record<L: Label>(&self, route: Option<L>, status: u16, elapsed: Duration) {
        let index = route.map_or(L::ALL.len(), L::index);
        if let Some((_, s)) = self.inner.routes.get(index) {
            match SLOTS.get(usize::from(status)) {
                Some(&slot) if slot != NO_SLOT => {
                    s.by_code[usize::from(slot)].fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    *crate::sync::lock(&self.inner.other)
                        .entry((index, status))
                        .or_insert(0) += 1
                }
            }
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

    /// Gauges named `name`, one series per value of `label` (a pool's, say), read when
    /// rendering: `read` reports each `(label value, value)`.
    pub fn gauges(
        &self,
        name: &'static str,
        help: &'static str,
        label: &'static str,
        read: impl Fn(&mut dyn FnMut(&str, f64)) + Send + Sync + 'static,
    ) {
        self.push(Extra::Gauges {
            name,
            help,
            label,
            read: Box::new(read),
        });
    }

    fn push(&self, e: Extra) {
        crate::sync::lock(&self.inner.extra).push(e);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let svc = self.inner.service;
        let _ = writeln!(
            out,
            "# HELP http_requests_total Requests answered, by route and status code."
        );
        let _ = writeln!(out, "# TYPE http_requests_total counter");
        let other = crate::sync::lock(&self.inner.other).clone();
        for (index, (route, s)) in self.inner.routes.iter().enumerate() {
            let known = CODES
                .iter()
                .zip(&s.by_code)
                .map(|(code, n)| (*code, n.load(Ordering::Relaxed)));
            let unusual = other
                .range((index, 0)..(index + 1, 0))
                .map(|((_, code), n)| (*code, *n));
            let mut counts: Vec<(u16, u64)> =
                known.chain(unusual).filter(|(_, n)| *n > 0).collect();
            counts.sort_unstable();
            for (code, n) in counts {
                let _ = writeln!(
                    out,
                    "http_requests_total{{service=\"{svc}\",route=\"{route}\",status=\"{code}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(out, "# TYPE http_request_duration_seconds histogram");
        for (route, s) in &self.inner.routes {
            s.latency.render(
                &mut out,
                "http_request_duration_seconds",
                &format!("service=\"{svc}\",route=\"{route}\""),
            );
        }
        for e in crate::sync::lock(&self.inner.extra).iter() {
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
                Extra::Gauges {
                    name,
                    help,
                    label,
                    read,
                } => {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                    read(&mut |value, v| {
                        let _ =
                            writeln!(out, "{name}{{service=\"{svc}\",{label}=\"{value}\"}} {v}");
                    });
                }
                Extra::Histogram { name, help, hist } => {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
                    hist.render(&mut out, name, &format!("service=\"{svc}\""));
                }
            }
        }
        crate::process_metrics::render(&mut out, svc);
        let _ = writeln!(
            out,
            "# HELP build_info The running build: its version and commit.\n# TYPE build_info gauge"
        );
        let _ = writeln!(
            out,
            "build_info{{service=\"{svc}\",version=\"{}\",commit=\"{}\"}} 1",
            crate::build::VERSION,
            crate::build::COMMIT
        );
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
    use crate::test_support::R;

    #[test]
    fn renders_counts_buckets_and_extras() {
        let m = Metrics::new::<R>("chat");
        m.record(Some(R::Send), 201, Duration::from_millis(3));
        m.record(Some(R::Send), 202, Duration::from_millis(30));
        m.record(Some(R::Send), 201, Duration::from_millis(3));
        m.record(Some(R::List), 404, Duration::from_micros(100));
        m.record(None::<R>, 405, Duration::from_millis(1));
        // Codes no service answers on purpose are counted as themselves too.
        m.record(Some(R::List), 418, Duration::from_millis(1));
        m.record(Some(R::List), 599, Duration::from_millis(1));
        m.record(Some(R::List), 418, Duration::from_millis(1));
        m.record(Some(R::List), 999, Duration::from_millis(1));
        let c = m.counter("dead_letters_total", "Entries dead-lettered.");
        c.fetch_add(2, Ordering::Relaxed);
        m.gauge("sockets_connected", "Sockets.", || 7.0);
        m.gauges("pool_waiting", "Waiters.", "pool", |report| {
            report("postgres", 3.0);
            report("redis", 0.0);
        });
        let text = m.render();
        let requests: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("http_requests_total{"))
            .collect();
        assert_eq!(
            requests,
            [
                "http_requests_total{service=\"chat\",route=\"send\",status=\"201\"} 2",
                "http_requests_total{service=\"chat\",route=\"send\",status=\"202\"} 1",
                "http_requests_total{service=\"chat\",route=\"list\",status=\"404\"} 1",
                "http_requests_total{service=\"chat\",route=\"list\",status=\"418\"} 2",
                "http_requests_total{service=\"chat\",route=\"list\",status=\"599\"} 1",
                "http_requests_total{service=\"chat\",route=\"list\",status=\"999\"} 1",
                "http_requests_total{service=\"chat\",route=\"unmatched\",status=\"405\"} 1",
            ]
        );
        assert!(text.contains("pool_waiting{service=\"chat\",pool=\"postgres\"} 3\n"));
        assert!(text.contains("pool_waiting{service=\"chat\",pool=\"redis\"} 0\n"));
        assert_eq!(text.matches("# TYPE pool_waiting gauge").count(), 1);
        assert!(text.contains(&format!(
            "build_info{{service=\"chat\",version=\"{}\",commit=\"{}\"}} 1\n",
            crate::build::VERSION,
            crate::build::COMMIT
        )));
        assert!(text.contains("route=\"send\",le=\"0.005\"} 2"));
        assert!(text.contains("route=\"send\",le=\"0.05\"} 3"));
        assert!(text.contains("route=\"send\",le=\"+Inf\"} 3"));
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
