//! The accept loop every service runs: a semaphore caps open connections, each connection is
//! served by hyper's HTTP/1 with keep-alive and upgrades, every response gets an
//! `x-request-id` and an access log line ([`crate::access`]), and on shutdown the listener
//! closes and in-flight requests drain until a deadline. Optionally, connections per client
//! address are capped too (the gateway's public port): one address cannot hold every slot.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Listen;
use crate::{request_id, Request, Response};

/// The connection a request came on, in the request's extensions.
#[derive(Clone, Debug)]
pub struct Connection {
    pub peer: std::net::SocketAddr,
    /// One of the `max_connections` permits (and of its address's). An upgraded connection
    /// outlives its HTTP task: the code that takes it over keeps a clone, so it still counts
    /// against the caps.
    pub permit: Arc<Slot>,
}

/// A connection's place under the caps, given back when the last holder drops it.
#[derive(Debug)]
pub struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    address: Mutex<Option<AddressSlot>>,
}

impl Slot {
    fn new(permit: tokio::sync::OwnedSemaphorePermit, address: Option<AddressSlot>) -> Self {
        Slot {
            _permit: permit,
            address: Mutex::new(address),
        }
    }

    /// Gives the connection's place under its address's cap back now, before the connection
    /// ends: one handed to another process counts there, and the client may open its next
    /// connection before this task has finished. What it returns takes the place again
    /// ([`Slot::reclaim`]) if the hand-off fails.
    pub fn release_address(&self) -> Option<Released> {
        let slot = crate::sync::lock(&self.address).take()?;
        Some(Released {
            key: slot.key,
            open: slot.open.clone(),
            cap: slot.cap,
        })
    }

    /// Takes the place given back by [`Slot::release_address`] again: false when the
    /// address is at its cap by now (the connection must then be refused).
    pub fn reclaim(&self, released: Released) -> bool {
        match AddressSlot::take(&released.open, released.key, released.cap) {
            Some(slot) => {
                *crate::sync::lock(&self.address) = Some(slot);
                true
            }
            None => false,
        }
    }
}

/// A place under an address's cap, given back for a while ([`Slot::release_address`]).
#[derive(Debug)]
pub struct Released {
    key: IpAddr,
    open: PerAddress,
    cap: usize,
}

/// Open connections per client address (IPv6: per /64).
type PerAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

#[derive(Debug)]
struct AddressSlot {
    key: IpAddr,
    open: PerAddress,
    cap: usize,
}

impl AddressSlot {
    /// A slot for `key`, unless it already holds `cap`.
    fn take(open: &PerAddress, key: IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut map = crate::sync::lock(open);
        let n = map.entry(key).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            key,
            open: open.clone(),
            cap,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = crate::sync::lock(&self.open);
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// What a connection over its address's cap gets before it is closed.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 97\r\n\r\n\
{\"statusCode\":429,\"error\":\"Too Many Requests\",\"message\":\"too many connections from this address\"}";

/// What a service answers requests with. Implemented by a `Clone` struct holding `Arc` state.
pub trait Handler: Clone + Send + Sync + 'static {
    fn handle(&self, req: Request) -> impl Future<Output = Response> + Send;

    /// Called with each TCP connection accepted (and admitted under the caps) before any
    /// HTTP is read from it: `None` means the handler took the connection over (the gateway
    /// hands WebSockets to a co-located chat service), `Some` serves it as usual.
    fn take_over(
        &self,
        stream: tokio::net::TcpStream,
        _conn: &Connection,
    ) -> impl Future<Output = Option<tokio::net::TcpStream>> + Send {
        std::future::ready(Some(stream))
    }
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections beyond this wait in the kernel's accept queue.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// A client must send its request head within this time.
    pub header_read_timeout: Duration,
    /// Open connections one client address may hold (`None`: no cap, for services only the
    /// gateway calls). Trusted proxies are exempt: many clients share their address.
    pub max_connections_per_address: Option<usize>,
    pub trusted_proxies: crate::client::TrustedProxies,
    /// Whether each request gets an access log line (not the metrics port's scrapes).
    pub access_log: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            max_connections_per_address: None,
            trusted_proxies: crate::client::TrustedProxies::default(),
            access_log: true,
        }
    }
}

/// Where a co-located service is reached besides its TCP port ([`crate::handoff`]).
#[derive(Debug, Default)]
pub struct Local {
    /// HTTP/1.1 over a Unix socket: the same routes and behaviour as the TCP port.
    pub http: Option<UnixListener>,
    /// Client connections the gateway hands over, one request each (a WebSocket upgrade).
    pub handoff: Option<UnixListener>,
}

/// Serves `handler` on an already-bound listener until `shutdown` is cancelled, then drains.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: H,
    opts: ServeOptions,
    shutdown: CancellationToken,
) {
    serve_all(listener, Local::default(), handler, opts, shutdown).await;
}

/// What came in on one of the listeners.
enum Accepted {
    Tcp(tokio::net::TcpStream, std::net::SocketAddr),
    Unix(UnixStream),
    Handoff(UnixStream),
}

/// Accepts on `l`, or never when there is none.
async fn accept_unix(l: &Option<UnixListener>) -> std::io::Result<UnixStream> {
    match l {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// [`serve`], also on the Unix sockets of `local`. Every connection, whichever way it came,
/// takes one of the same `max_connections` permits and drains the same way on shutdown.
pub async fn serve_all<H: Handler>(
    listener: TcpListener,
    local: Local,
    handler: H,
    opts: ServeOptions,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let per_address = PerAddress::default();
    // Handed-off connections are capped per the address the gateway vouched for, in a map
    // of their own: the gateway's per-address counts stop at the hand-off.
    let handed_per_address = PerAddress::default();
    let tracker = TaskTracker::new();
    let shape = Shape {
        handed_off: false,
        access_log: opts.access_log,
    };
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);

    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r.map(|(s, peer)| Accepted::Tcp(s, peer)),
            r = accept_unix(&local.http) => r.map(Accepted::Unix),
            r = accept_unix(&local.handoff) => r.map(Accepted::Handoff),
            () = shutdown.cancelled() => break,
        };
        let accepted = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Accepted::Tcp(stream, peer) => (stream, peer),
            Accepted::Unix(stream) => {
                let conn_info = Connection {
                    // Chat does not read its peer; a local caller is loopback.
                    peer: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                    permit: Arc::new(Slot::new(permit, None)),
                };
                let conn = serve_conn(&builder, stream, conn_info, handler.clone(), shape);
                tracker.spawn(drive(conn, shutdown.clone()));
                continue;
            }
            Accepted::Handoff(stream) => {
                let (h, b, open) = (handler.clone(), builder.clone(), handed_per_address.clone());
                let stop = shutdown.clone();
                tracker.spawn(async move {
                    let (tcp, vouched) = match crate::handoff::receive(stream).await {
                        Ok(got) => got,
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            tracing::debug!(
                                "a hand-off connection closed with nothing handed over"
                            );
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "hand-off refused");
                            return;
                        }
                    };
                    let Ok(tcp) = tokio::net::TcpStream::from_std(tcp) else {
                        return;
                    };
                    let port = tcp.peer_addr().map_or(0, |a| a.port());
                    let address = match vouched.per_address_cap {
                        Some(cap) => {
                            match AddressSlot::take(&open, crate::client::key(vouched.client), cap)
                            {
                                Some(slot) => Some(slot),
                                None => return refuse(tcp).await,
                            }
                        }
                        None => None,
                    };
                    let conn_info = Connection {
                        peer: std::net::SocketAddr::new(vouched.client, port),
                        permit: Arc::new(Slot::new(permit, address)),
                    };
                    let handed = Shape {
                        handed_off: true,
                        ..shape
                    };
                    drive(serve_conn(&b, tcp, conn_info, h, handed), stop).await;
                });
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let address = match opts.max_connections_per_address {
            Some(cap) if !opts.trusted_proxies.contains(peer.ip()) => {
                match AddressSlot::take(&per_address, crate::client::key(peer.ip()), cap) {
                    Some(slot) => Some(slot),
                    None => {
                        tracker.spawn(refuse(stream));
                        continue;
                    }
                }
            }
            _ => None,
        };
        let h = handler.clone();
        let conn_info = Connection {
            peer,
            permit: Arc::new(Slot::new(permit, address)),
        };
        let b = builder.clone();
        let stop = shutdown.clone();
        tracker.spawn(async move {
            // The handler may take the connection over before any HTTP is read from it.
            let stream = tokio::select! {
                kept = h.take_over(stream, &conn_info) => match kept {
                    Some(stream) => stream,
                    None => return,
                },
                // Nothing was read yet: no request is in flight to finish.
                () = stop.cancelled() => return,
            };
            drive(serve_conn(&b, stream, conn_info, h, shape), stop).await;
        });
    }
    drop(listener);
    drop(local);
    tracker.close();
    tokio::select! {
        () = tracker.wait() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(opts.shutdown_grace) => {
            tracing::warn!(grace = ?opts.shutdown_grace, "shutdown deadline passed with connections still open");
        }
    }
}

/// How a connection's requests are served besides their handler.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Handed over by the gateway ([`crate::handoff`]): one request, identity headers dropped.
    handed_off: bool,
    access_log: bool,
}

/// HTTP/1 with upgrades on `io`. A handed-off connection's requests lose the identity
/// headers: the gateway vouched for the connection, not for what the client wrote on it.
fn serve_conn<H, I>(
    builder: &http1::Builder,
    io: I,
    conn_info: Connection,
    h: H,
    shape: Shape,
) -> impl Future<Output = hyper::Result<()>> + GracefulConnection + Send
where
    H: Handler,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // A handed-off connection carries the one request the gateway looked at (an upgrade):
    // no keep-alive into the service's other routes. Not hyper's `keep_alive(false)`, which
    // would write `connection: close` on the 101 and break the WebSocket handshake.
    let Shape {
        handed_off,
        access_log,
    } = shape;
    let served = std::sync::atomic::AtomicBool::new(false);
    let svc = service_fn(move |mut req: Request| {
        // Travels with the request: the peer for forwarding headers and limits, the permit
        // for whoever takes over the connection on an upgrade.
        req.extensions_mut().insert(conn_info.clone());
        let again = handed_off && served.swap(true, std::sync::atomic::Ordering::Relaxed);
        if handed_off {
            req.headers_mut().remove(crate::identity::USER_HEADER);
            req.headers_mut().remove(crate::identity::SECRET_HEADER);
        }
        let h = h.clone();
        async move {
            if again {
                let mut res =
                    crate::ApiError::bad_request("a handed-off connection carries one request")
                        .into_response();
                res.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
                return Ok(res);
            }
            let mut res = with_request_id(h, req, access_log).await;
            if handed_off && res.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                res.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, Infallible>(res)
        }
    });
    builder
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
}

/// Runs one connection until it ends; on shutdown, finishes the request in flight and
/// closes instead of keeping alive.
async fn drive<C>(conn: C, stop: CancellationToken)
where
    C: Future<Output = hyper::Result<()>> + GracefulConnection,
{
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// hyper's upgradeable connection, whatever it serves, as [`drive`] needs it.
trait GracefulConnection {
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S> GracefulConnection for http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = crate::Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

/// Answers 429 on a connection over its address's cap and closes it, without reading it
/// (also for a connection the gateway failed to hand off and could not take back).
pub async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let write = async {
        stream.write_all(TOO_MANY_CONNECTIONS).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Answers `req` with its request id on the response and, when `access_log`, logs it once
/// answered: a long-poll or a WebSocket upgrade when it answers, not when its connection ends.
async fn with_request_id<H: Handler>(h: H, mut req: Request, access_log: bool) -> Response {
    use tracing::Instrument;
    let id = request_id::ensure(req.headers_mut());
    // Everything logged while handling the request carries its id.
    let span = tracing::info_span!("request", id = id.to_str().unwrap_or("-"));
    // Nothing of the access log's is done (clock, method, route scope) when it is off.
    let mut res = if access_log && crate::access::enabled() {
        let (start, method) = (std::time::Instant::now(), req.method().clone());
        let (res, route) = crate::access::scoped(h.handle(req).instrument(span)).await;
        let id = id.to_str().unwrap_or("-");
        crate::access::log(&method, route, res.status(), start.elapsed(), id);
        res
    } else {
        h.handle(req).instrument(span).await
    };
    res.headers_mut().insert(request_id::HEADER, id);
    if res.status() == http::StatusCode::REQUEST_TIMEOUT {
        // The body was not read to its end: the connection cannot carry another request.
        res.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    res
}

/// What `launch` reads for every service besides its own configuration: how it logs, the
/// request-body deadline and where metrics are served.
pub struct Common {
    pub logging: crate::telemetry::Logging,
    pub deadline: crate::body::Deadline,
    /// `METRICS_HOST` and `METRICS_PORT`: one port per service by default, so the services
    /// can share a host (two instances of one service on a host need another).
    pub metrics: Listen,
    /// `SHUTDOWN_DRAIN_MS`: after SIGTERM, how long to keep serving with `/readyz` at 503.
    pub drain: std::time::Duration,
    /// `ACCESS_LOG`: a line per request ([`crate::access`]).
    pub access_log: bool,
}

impl Common {
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        Ok(Common {
            logging: crate::telemetry::Logging::from_env(env)?,
            deadline: crate::body::Deadline::from_env(env)?,
            metrics: Listen::from_vars(env, "METRICS_HOST", "METRICS_PORT")?,
            drain: env.millis("SHUTDOWN_DRAIN_MS", 0, 600_000)?,
            access_log: env.boolean("ACCESS_LOG")?,
        })
    }
}

/// The whole of a service's `main` after its command line ([`crate::cli::parse`]):
/// configuration read and checked before any port is bound (exit 2 naming the variable; the
/// body deadline and logging included), tracing, the listener (exit 1 if the port is taken),
/// the metrics port, then `run` until SIGINT/SIGTERM and its drain period,
/// `SHUTDOWN_DRAIN_MS` (exit 1 if it fails).
pub async fn launch<C, Fut>(
    env: crate::config::Env,
    config: impl FnOnce(&crate::config::Env) -> Result<C, crate::config::ConfigError>,
    addr: impl FnOnce(&C) -> std::net::SocketAddr,
    run: impl FnOnce(TcpListener, C, CancellationToken) -> Fut,
) where
    Fut: Future<Output = Result<(), crate::Failure>>,
{
    let service = env.service();
    let common = crate::config::exit_on_error(Common::from_env(&env));
    // Held to the end: dropping it writes out the lines still queued.
    let logs = crate::telemetry::init(service, common.logging);
    crate::access::enable(common.access_log);
    let config = crate::config::exit_on_error(config(&env));
    drop(env);
    crate::body::configure(common.deadline);
    let listener = match bind(addr(&config)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let shutdown = crate::shutdown::on_signal(common.drain);
    // Not fatal: a second instance on a host, or a script's stack beside a running one,
    // still serves its users; the error says to give it a `METRICS_PORT` of its own.
    match bind(common.metrics.addr()).await {
        Ok(listener) => {
            let opts = ServeOptions {
                max_connections: 64,
                // A scrape every few seconds is not traffic an operator reads logs for.
                access_log: false,
                ..ServeOptions::default()
            };
            tokio::spawn(serve(listener, MetricsPort, opts, shutdown.clone()));
        }
        Err(e) => tracing::error!(error = %e, "metrics are not served: set METRICS_PORT"),
    }
    let result = run(listener, config, shutdown).await;
    // What is still queued is written before the process ends, whichever way it ends.
    drop(logs);
    if let Err(e) = result {
        eprintln!("{service} failed: {e}");
        std::process::exit(1);
    }
}

/// The metrics port: Prometheus text at `/metrics`, apart from the service's own port so it
/// can stay private (loopback unless `METRICS_HOST` says otherwise).
#[derive(Clone)]
struct MetricsPort;

impl Handler for MetricsPort {
    async fn handle(&self, req: Request) -> Response {
        use crate::ApiError;
        match (req.method(), req.uri().path()) {
            (&http::Method::GET, "/metrics") => crate::metrics::respond_process(),
            (_, "/metrics") => {
                let get = crate::router::Allowed::of(&[http::Method::GET]);
                ApiError::method_not_allowed(get).into_response()
            }
            (_, path) => ApiError::route_not_found(path).into_response(),
        }
    }
}

/// Binds a listener, naming the address in the error.
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_of(map: &PerAddress, key: IpAddr) -> usize {
        crate::sync::lock(map).get(&key).copied().unwrap_or(0)
    }

    /// A connection handed to another process gives its place under the address's cap back
    /// before it ends (the client's next connection may come first), and takes it again if
    /// the hand-off fails, unless the address filled up meanwhile.
    #[test]
    fn an_address_place_is_given_back_and_taken_again() {
        let map = PerAddress::default();
        let key: IpAddr = "192.0.2.7".parse().unwrap();
        let permits = Arc::new(tokio::sync::Semaphore::new(4));
        let slot = |m: &PerAddress| {
            Slot::new(
                permits.clone().try_acquire_owned().unwrap(),
                AddressSlot::take(m, key, 2),
            )
        };
        let first = slot(&map);
        let _second = slot(&map);
        assert_eq!(open_of(&map, key), 2);
        assert!(AddressSlot::take(&map, key, 2).is_none(), "at the cap");

        let released = first.release_address().expect("it held a place");
        assert_eq!(open_of(&map, key), 1);
        assert!(first.release_address().is_none(), "given back once");
        assert!(first.reclaim(released));
        assert_eq!(open_of(&map, key), 2);

        // Given back, and the place taken by another connection meanwhile: no way back.
        let released = first.release_address().unwrap();
        let _third = slot(&map);
        assert!(!first.reclaim(released));
        assert_eq!(open_of(&map, key), 2);
        drop(first);
        assert_eq!(open_of(&map, key), 2, "nothing given back twice");
    }
}
