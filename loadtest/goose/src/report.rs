//! What goose's own report cannot hold: the socket side's HDR percentiles (every delivery,
//! and the time until every member had the event) and the services' memory. Written next to
//! goose's reports as `<name>-extra.json` and `<name>-extra.html`, and printed.

use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::memory::Usage;
use crate::sockets::{Realtime, KINDS};

/// The 1-minute load average, as `/proc/loadavg` has it.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
    json!({
        "count": h.len(),
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p99_9": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

/// The socket side of a run.
pub fn sockets(rt: &Realtime) -> Value {
    let secs = rt.measured_secs().max(1e-3);
    let c = &rt.counts;
    let mut events = serde_json::Map::new();
    for (k, (all, every)) in rt.histograms().iter().enumerate() {
        let sent = c.sent[k].load(Ordering::Relaxed);
        if sent == 0 {
            continue;
        }
        events.insert(
            KINDS[k].to_string(),
            json!({
                "sent": sent,
                "complete": c.complete[k].load(Ordering::Relaxed),
                "timeouts": c.timeouts[k].load(Ordering::Relaxed),
                "deliveries": c.delivered[k].load(Ordering::Relaxed),
                "late": c.late[k].load(Ordering::Relaxed),
                "events_per_s": (all.len() as f64 / secs).round(),
                "sends_per_s": ((sent as f64 / secs) * 10.0).round() / 10.0,
                "delivery_ms": percentiles(all),
                "every_member_ms": percentiles(every),
            }),
        );
    }
    json!({
        "seconds": (secs * 10.0).round() / 10.0,
        "rooms": rt.rooms.len(),
        "members": rt.senders() / rt.rooms.len().max(1),
        "failed_sends": c.failed_sends.load(Ordering::Relaxed),
        "closed_sockets": c.closed.load(Ordering::Relaxed),
        "events": events,
    })
}

pub fn memory(usage: &[Usage]) -> Value {
    usage
        .iter()
        .map(|u| {
            json!({"name": u.name, "start_kib": u.start_kib, "peak_kib": u.peak_kib, "end_kib": u.end_kib})
        })
        .collect()
}

/// Each process's CPU seconds over the run, by name.
pub fn cpu(used: &[(String, f64)]) -> Value {
    used.iter()
        .map(|(n, s)| (n.clone(), json!((s * 100.0).round() / 100.0)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Plain lines for the terminal.
pub fn print(name: &str, v: &Value) {
    if let Some(events) = v["sockets"]["events"].as_object() {
        for (kind, e) in events {
            let (d, a) = (&e["delivery_ms"], &e["every_member_ms"]);
            println!(
                "{name}: {kind}: {} sent, {} reached everyone, {} timed out; {} deliveries/s; \
                 delivery ms p50 {} p99 {} max {}; every member ms p50 {} p99 {} p99.9 {}",
                e["sent"],
                e["complete"],
                e["timeouts"],
                e["events_per_s"],
                d["p50"],
                d["p99"],
                d["max"],
                a["p50"],
                a["p99"],
                a["p99_9"]
            );
        }
    }
    if let Some(cpu) = v["cpu_seconds"].as_object() {
        let parts: Vec<String> = cpu.iter().map(|(n, s)| format!("{n} {s} s")).collect();
        println!("{name}: cpu: {}", parts.join(", "));
    }
    for m in v["memory"].as_array().into_iter().flatten() {
        println!(
            "{name}: memory {}: start {} KiB, peak {} KiB, end {} KiB",
            m["name"], m["start_kib"], m["peak_kib"], m["end_kib"]
        );
    }
}

/// A small page with the same figures, beside goose's HTML report.
pub fn html(name: &str, v: &Value) -> String {
    let mut rows = String::new();
    for (kind, e) in v["sockets"]["events"].as_object().into_iter().flatten() {
        for (what, key) in [
            ("each delivery", "delivery_ms"),
            ("every member", "every_member_ms"),
        ] {
            let p = &e[key];
            rows.push_str(&format!(
                "<tr><td>{kind}</td><td>{what}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                p["count"], p["p50"], p["p90"], p["p99"], p["p99_9"], p["max"]
            ));
        }
    }
    let mut mem = String::new();
    for m in v["memory"].as_array().into_iter().flatten() {
        mem.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            m["name"].as_str().unwrap_or_default(),
            m["start_kib"],
            m["peak_kib"],
            m["end_kib"]
        ));
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{name}: sockets and memory</title>\
         <style>body{{font-family:sans-serif}}td,th{{padding:2px 10px;text-align:right}}</style></head><body>\n\
         <h1>{name}: sockets and memory</h1>\n<p>Load average at start / end: {} / {}. Goose's own report \
         (HTTP requests, and the WS lines for the same events) is beside this page.</p>\n\
         <h2>Socket.IO deliveries (ms, HDR histograms)</h2>\n<table><tr><th>event</th><th>time until</th><th>count</th>\
         <th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n{rows}</table>\n\
         <h2>Memory (VmRSS, KiB)</h2>\n<table><tr><th>service</th><th>start</th><th>peak</th><th>end</th></tr>\n{mem}</table>\n\
         <pre>{}</pre></body></html>\n",
        v["loadavg"]["start"].as_str().unwrap_or_default(),
        v["loadavg"]["end"].as_str().unwrap_or_default(),
        serde_json::to_string_pretty(v)
            .unwrap_or_default()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
    )
}
