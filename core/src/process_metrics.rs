//! The process's own figures for `/metrics`, under the names Prometheus's client libraries
//! use (`process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`...),
//! read from `/proc/self` at scrape time: nothing is kept or updated between scrapes. Where
//! `/proc` cannot be read (not Linux), the series are left out rather than made up.

use std::fmt::Write;

/// The figures of one scrape.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

/// The fields of `/proc/self/stat` read here, still in the kernel's units.
#[derive(Debug, PartialEq)]
struct Stat {
    /// User and system CPU time, in clock ticks.
    utime: u64,
    stime: u64,
    /// When the process started, in clock ticks after boot.
    starttime: u64,
    vsize: u64,
    /// Resident set, in pages.
    rss: u64,
}

/// Parses `/proc/self/stat`. The command name (field 2) is in parentheses and may hold spaces
/// or parentheses itself: fields are counted from after its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        starttime: field(22)?,
        vsize: field(23)?,
        rss: field(24)?,
    })
}

/// The boot time (`btime`, seconds since the epoch) from `/proc/stat`.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn read() -> Figures {
    let mut f = Figures::default();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    if let Some(stat) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .as_deref()
        .and_then(parse_stat)
    {
        f.resident_bytes = Some(stat.rss * rustix::param::page_size() as u64);
        f.virtual_bytes = Some(stat.vsize);
        if ticks > 0.0 {
            f.cpu_seconds = Some((stat.utime + stat.stime) as f64 / ticks);
            f.start_time_seconds = std::fs::read_to_string("/proc/stat")
                .ok()
                .as_deref()
                .and_then(parse_boot_time)
                .map(|boot| boot as f64 + stat.starttime as f64 / ticks);
        }
    }
    f.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    f.max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    f
}

/// The series, in the order [`render`] gives their values: name, type, help.
const SERIES: [(&str, &str, &str); 6] = [
    (
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
    ),
    (
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
    ),
    (
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time, in seconds.",
    ),
    (
        "process_start_time_seconds",
        "gauge",
        "Start time since the Unix epoch, in seconds.",
    ),
    ("process_open_fds", "gauge", "Open file descriptors."),
    (
        "process_max_fds",
        "gauge",
        "The limit of open file descriptors (soft).",
    ),
];

/// Appends the process's figures, labelled with `service` like the rest of its metrics.
pub fn render(out: &mut String, service: &str) {
    let f = read();
    let count = |v: Option<u64>| v.map(|v| v as f64);
    let values = [
        count(f.resident_bytes),
        count(f.virtual_bytes),
        f.cpu_seconds,
        f.start_time_seconds,
        count(f.open_fds),
        count(f.max_fds),
    ];
    for ((name, kind, help), value) in SERIES.iter().zip(values) {
        if let Some(v) = value {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{service=\"{service}\"}} {v}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        // A name with a space and a parenthesis, as a thread may be called.
        let line = "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
                    150 75 0 0 20 0 9 0 987654 123456789 2500 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                utime: 150,
                stime: 75,
                starttime: 987654,
                vsize: 123456789,
                rss: 2500,
            })
        );
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1700000000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_plausible_figures() {
        let f = read();
        let rss = f.resident_bytes.unwrap();
        assert!(rss > 1 << 20, "{rss} bytes resident");
        assert!(f.virtual_bytes.unwrap() >= rss);
        let started = f.start_time_seconds.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // Started in the last hour, not in the future (clock ticks round down).
        assert!(
            started <= now + 1.0 && started > now - 3600.0,
            "{started} vs {now}"
        );
        let fds = f.open_fds.unwrap();
        assert!(fds >= 3 && fds <= f.max_fds.unwrap(), "{fds} open");
        let mut out = String::new();
        render(&mut out, "chat");
        assert!(out.contains("\nprocess_open_fds{service=\"chat\"} "));
        assert!(out.contains("# TYPE process_cpu_seconds_total counter\n"));
    }
}
