//! Shared pieces of the load generators: one keep-alive HTTP/1 connection per virtual user,
//! latency histograms, and the summary printed at the end. [`sio`] is the raw Socket.IO
//! client of the relay benchmark; [`peer`] what the Rust peer servers share.

pub mod peer;
pub mod sio;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

/// One keep-alive connection, as a browser tab or app would hold.
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    authority: String,
}

impl Conn {
    pub async fn open(authority: &str) -> std::io::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Conn {
            sender,
            authority: authority.to_string(),
        })
    }

    /// Sends a request and reads the whole response: `(status, body)`.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(u16, Bytes), String> {
        self.request_as(method, path, body, None).await
    }

    /// [`Conn::request`] with `Authorization: Bearer <token>` when a token is given.
    pub async fn request_as(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
        token: Option<&str>,
    ) -> Result<(u16, Bytes), String> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority);
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = b
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let res = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

/// A process's resident memory (VmRSS in `/proc/<pid>/status`) in KiB; 0 once it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The kernel's memory that sockets cost, in KiB: its slab caches (`Slab:` in
/// `/proc/meminfo`: socket, inode, file and epoll objects among the rest) plus the pages TCP
/// buffers hold (`mem` of the `TCP:` line of `/proc/net/sockstat`). Machine-wide: read before
/// and after opening many connections, its growth is what they cost the kernel (both ends of
/// each, on loopback).
pub fn kernel_socket_kib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let slab: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages: u64 = sockstat
        .lines()
        .find_map(|l| l.strip_prefix("TCP:"))
        .and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.windows(2).find(|w| w[0] == "mem")?.get(1)?.parse().ok()
        })
        .unwrap_or(0);
    slab + pages * 4
}

/// A latency histogram in microseconds, 1 µs to 60 s.
pub fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Summary line: rate and percentiles.
pub fn summary(
    label: &str,
    h: &hdrhistogram::Histogram<u64>,
    elapsed: Duration,
    errors: u64,
) -> String {
    format!(
        "{label}: {n} ok in {secs:.1} s = {rate:.0}/s, errors {errors}; latency ms p50 {p50:.2} p90 {p90:.2} p99 {p99:.2} p99.9 {p999:.2} max {max:.2}",
        n = h.len(),
        secs = elapsed.as_secs_f64(),
        rate = h.len() as f64 / elapsed.as_secs_f64(),
        p50 = ms(h.value_at_quantile(0.50)),
        p90 = ms(h.value_at_quantile(0.90)),
        p99 = ms(h.value_at_quantile(0.99)),
        p999 = ms(h.value_at_quantile(0.999)),
        max = ms(h.max()),
    )
}

/// The command line as `--name value` pairs (a name without a value gets "").
pub fn options() -> Vec<(String, String)> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    pairs(&argv)
}

/// `args` as `--name value` pairs (a name without a value gets "").
pub fn pairs(args: &[String]) -> Vec<(String, String)> {
    args.chunks(2)
        .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
        .collect()
}

/// A whole-number option value; anything else ends the program with a message.
pub fn number(v: &str) -> u64 {
    v.parse().unwrap_or_else(|_| {
        eprintln!("expected a number, got {v:?}");
        std::process::exit(2)
    })
}

/// Ends the program on an option it does not know.
pub fn unknown(option: &str) -> ! {
    eprintln!("unknown option {option}");
    std::process::exit(2)
}
