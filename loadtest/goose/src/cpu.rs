//! CPU time of the services under test over a run (user + system, every thread: `utime` and
//! `stime` of `/proc/<pid>/stat`). Divided by the deliveries it gives a cost per event that
//! moves far less than throughput on a machine shared with other work.

/// Clock ticks per second of `/proc/<pid>/stat`: USER_HZ, 100 on every Linux architecture
/// this runs on.
const TICKS_PER_S: f64 = 100.0;

/// A process's CPU time so far in seconds; `None` once it is gone.
pub fn seconds(pid: u32) -> Option<f64> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime + stime` from a `/proc/<pid>/stat` line, in seconds.
fn parse_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11); // field 3 is the first after ')'
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_S)
}

/// Each process's CPU time at the start of a run.
pub struct Start(Vec<(String, u32, Option<f64>)>);

impl Start {
    pub fn now(pids: &[(String, u32)]) -> Start {
        Start(
            pids.iter()
                .map(|(n, p)| (n.clone(), *p, seconds(*p)))
                .collect(),
        )
    }

    /// Each process's CPU seconds since `now` (skipping any that was gone at either end).
    pub fn used(&self) -> Vec<(String, f64)> {
        self.0
            .iter()
            .filter_map(|(n, p, s)| Some((n.clone(), seconds(*p)? - (*s)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 1000000 500";
        assert_eq!(parse_stat(line), Some(3.0));
        assert_eq!(parse_stat("4242 (x) S 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_uses_cpu() {
        let me = vec![("me".to_string(), std::process::id())];
        let start = Start::now(&me);
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let used = start.used();
        assert_eq!(used.len(), 1);
        assert!(used[0].1 > 0.0, "{used:?}");
        assert!(seconds(u32::MAX).is_none());
    }
}
