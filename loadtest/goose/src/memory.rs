//! Memory of the services under test, sampled while a run goes: each process's resident
//! set (VmRSS in `/proc/<pid>/status`) every `every`, kept as a time series (written as CSV)
//! and summed up as start / peak / end per service.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// Seconds since the start, and each process's KiB in the order given.
type Sample = (f64, Vec<u64>);

pub struct Sampler {
    names: Vec<String>,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: JoinHandle<()>,
}

/// One service's memory over the run, in KiB.
#[derive(Debug, PartialEq)]
pub struct Usage {
    pub name: String,
    pub start_kib: u64,
    pub peak_kib: u64,
    pub end_kib: u64,
}

/// `name=pid,name=pid` → pairs; an error names the bad entry.
pub fn parse_pids(list: &str) -> Result<Vec<(String, u32)>, String> {
    list.split(',')
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (n, p) = e
                .split_once('=')
                .ok_or_else(|| format!("--pids: expected name=pid, got {e:?}"))?;
            let pid = p
                .parse()
                .map_err(|_| format!("--pids: {p:?} is not a process id"))?;
            Ok((n.to_string(), pid))
        })
        .collect()
}

impl Sampler {
    pub fn start(pids: Vec<(String, u32)>, every: Duration) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let names = pids.iter().map(|(n, _)| n.clone()).collect();
        let task = {
            let samples = samples.clone();
            tokio::spawn(async move {
                let t0 = Instant::now();
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let row = pids.iter().map(|(_, p)| loadtest::rss_kib(*p)).collect();
                    samples
                        .lock()
                        .expect("samples")
                        .push((t0.elapsed().as_secs_f64(), row));
                }
            })
        };
        Sampler {
            names,
            samples,
            task,
        }
    }

    /// Stops sampling (after one last sample); the time series as CSV and the summary.
    pub fn finish(self, pids: &[(String, u32)]) -> (String, Vec<Usage>) {
        self.task.abort();
        let mut samples = self.samples.lock().expect("samples").clone();
        let last_t = samples.last().map_or(0.0, |s| s.0);
        samples.push((
            last_t,
            pids.iter().map(|(_, p)| loadtest::rss_kib(*p)).collect(),
        ));
        let mut csv = format!("seconds,{}\n", self.names.join(","));
        for (t, row) in &samples {
            let cols: Vec<String> = row.iter().map(u64::to_string).collect();
            csv.push_str(&format!("{t:.1},{}\n", cols.join(",")));
        }
        (csv, summarize(&self.names, &samples))
    }
}

fn summarize(names: &[String], samples: &[Sample]) -> Vec<Usage> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            // A process that is gone reads 0: its last sample while alive is its end.
            let alive: Vec<u64> = samples.iter().map(|s| s.1[i]).filter(|&k| k > 0).collect();
            Usage {
                name: n.clone(),
                start_kib: alive.first().copied().unwrap_or(0),
                peak_kib: alive.iter().copied().max().unwrap_or(0),
                end_kib: alive.last().copied().unwrap_or(0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_lists() {
        assert_eq!(
            parse_pids("chat=12,worker=13").unwrap(),
            vec![("chat".into(), 12), ("worker".into(), 13)]
        );
        assert!(parse_pids("chat").is_err());
        assert!(parse_pids("chat=x").is_err());
    }

    #[test]
    fn start_peak_end_ignore_the_dead() {
        let names = vec!["a".to_string()];
        let s = vec![
            (0.0, vec![10]),
            (1.0, vec![30]),
            (2.0, vec![20]),
            (3.0, vec![0]),
        ];
        assert_eq!(
            summarize(&names, &s),
            vec![Usage {
                name: "a".into(),
                start_kib: 10,
                peak_kib: 30,
                end_kib: 20
            }]
        );
    }

    #[tokio::test]
    async fn samples_this_process() {
        let me = vec![("me".to_string(), std::process::id())];
        let s = Sampler::start(me.clone(), Duration::from_millis(5));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (csv, usage) = s.finish(&me);
        assert!(
            csv.starts_with("seconds,me\n") && csv.lines().count() > 2,
            "{csv}"
        );
        assert!(usage[0].start_kib > 0 && usage[0].peak_kib >= usage[0].end_kib);
    }
}
