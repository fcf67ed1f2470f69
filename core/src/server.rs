//! The accept loop every service runs: a semaphore caps open connections, each connection is
//! served by hyper's HTTP/1 with keep-alive and upgrades, or by HTTP/2 when the client opens
//! with its preface (h2c with prior knowledge: how the gateway reaches the services, many
//! requests sharing one connection and its reads and writes), every response gets an
//! `x-request-id`, and on shutdown the listener closes and in-flight requests drain until a
//! deadline.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{request_id, Request, Response};

/// The connection a request came on, in the request's extensions.
#[derive(Clone, Debug)]
pub struct Connection {
    pub peer: std::net::SocketAddr,
    /// One of the `max_connections` permits. An upgraded connection outlives its HTTP task:
    /// the code that takes it over keeps a clone, so it still counts against the cap.
    pub permit: Arc<tokio::sync::OwnedSemaphorePermit>,
}

/// What a service answers requests with. Implemented by a `Clone` struct holding `Arc` state.
pub trait Handler: Clone + Send + Sync + 'static {
    fn handle(&self, req: Request) -> impl Future<Output = Response> + Send;
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections beyond this wait in the kernel's accept queue.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// A client must send its request head within this time.
    pub header_read_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `handler` on an already-bound listener until `shutdown` is cancelled, then drains.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: H,
    opts: ServeOptions,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let tracker = TaskTracker::new();
    let mut h1 = http1::Builder::new();
    h1.keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        // A whole body up to the default limit flows without waiting for window updates.
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        // What HTTP/1 would accept in a head, so forwarding never loses a request to it.
        .max_header_list_size(H2_MAX_HEADER_LIST);
    let (h1, h2) = (Arc::new(h1), Arc::new(h2));

    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let h = handler.clone();
        let conn_info = Connection {
            peer,
            permit: Arc::new(permit),
        };
        let svc = service_fn(move |mut req: Request| {
            // Travels with the request: the peer for forwarding headers and limits, the permit
            // for whoever takes over the connection on an upgrade.
            req.extensions_mut().insert(conn_info.clone());
            let h = h.clone();
            async move { Ok::<_, Infallible>(with_request_id(h, req).await) }
        });
        let stop = shutdown.clone();
        let (h1, h2) = (h1.clone(), h2.clone());
        let sniff = opts.header_read_timeout;
        tracker.spawn(async move {
            let preface = tokio::select! {
                r = tokio::time::timeout(sniff, opens_with_h2_preface(&stream)) => r,
                () = stop.cancelled() => return,
            };
            let io = TokioIo::new(stream);
            let result = match preface {
                Ok(Ok(true)) => {
                    let conn = h2.serve_connection(io, svc);
                    drive(conn, |c| c.graceful_shutdown(), &stop).await
                }
                Ok(Ok(false)) => {
                    let conn = h1.serve_connection(io, svc).with_upgrades();
                    drive(conn, |c| c.graceful_shutdown(), &stop).await
                }
                // Silent past the head deadline, or gone: closed, as HTTP/1 would.
                Ok(Err(_)) | Err(_) => Ok(()),
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracker.close();
    tokio::select! {
        () = tracker.wait() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(opts.shutdown_grace) => {
            tracing::warn!(grace = ?opts.shutdown_grace, "shutdown deadline passed with connections still open");
        }
    }
}

/// Streams one gateway connection may have open at once: above the gateway's default
/// `MAX_IN_FLIGHT`, so its own limit is the one that answers 503.
const H2_MAX_STREAMS: u32 = 4096;
const H2_STREAM_WINDOW: u32 = 2 << 20;
const H2_CONNECTION_WINDOW: u32 = 16 << 20;
const H2_MAX_HEADER_LIST: u32 = 256 << 10;

/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the client starts with the HTTP/2 preface. Looks without consuming, so the
/// protocol chosen reads the connection from its first byte. An HTTP/1 request differs
/// within its first bytes; only a preface cut short needs a second look.
async fn opens_with_h2_preface(stream: &TcpStream) -> std::io::Result<bool> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 || buf[..n] != H2_PREFACE[..n] {
            return Ok(false);
        }
        if n == H2_PREFACE.len() {
            return Ok(true);
        }
        // Peeking again at once would return the same bytes: wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Serves a connection until it ends; once shutdown begins, the request(s) in flight finish
/// and the connection closes instead of staying open.
async fn drive<C, E>(conn: C, graceful: fn(Pin<&mut C>), stop: &CancellationToken) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        () = stop.cancelled() => {
            graceful(conn.as_mut());
            conn.await
        }
    }
}

async fn with_request_id<H: Handler>(h: H, mut req: Request) -> Response {
    use tracing::Instrument;
    let id = request_id::ensure(req.headers_mut());
    // Everything logged while handling the request carries its id.
    let span = tracing::info_span!("request", id = id.to_str().unwrap_or("-"));
    let mut res = h.handle(req).instrument(span).await;
    res.headers_mut().insert(request_id::HEADER, id);
    res
}

/// The whole of a service's `main`: tracing, configuration read and checked before any port
/// is bound (exit 2 naming the variable), the listener (exit 1 if the port is taken), then
/// `run` until SIGINT/SIGTERM (exit 1 if it fails).
pub async fn launch<C, Fut>(
    service: &'static str,
    config: impl FnOnce(&crate::config::Env) -> Result<C, crate::config::ConfigError>,
    addr: impl FnOnce(&C) -> std::net::SocketAddr,
    run: impl FnOnce(TcpListener, C, CancellationToken) -> Fut,
) where
    Fut: Future<Output = Result<(), String>>,
{
    crate::telemetry::init(service);
    let config = crate::config::exit_on_error(config(&crate::config::Env::process()));
    let listener = match bind(addr(&config)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let shutdown = crate::shutdown::on_signal();
    if let Err(e) = run(listener, config, shutdown).await {
        eprintln!("{service} failed: {e}");
        std::process::exit(1);
    }
}

/// Binds a listener, naming the address in the error.
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
