//! The gateway (port 3000): the public face of the platform. It answers CORS preflights,
//! forwards every API route to its service (`/conversations` and `/socket.io/` to chat,
//! `/calls` to call) and passes the answers through unchanged.
//!
//! - [`config`]: settings from the environment.
//! - `routes`: the route table: each request's label, destination and admission.
//! - `auth`: accounts and sessions (`/auth/*`, `/me`), and authenticating what is forwarded.
//! - `proxy`: forwarding, timeouts, WebSocket tunnelling.
//!
//! It also answers `/healthz`, `/readyz` (every upstream up) and `/openapi.json` (the HTTP
//! contract, `api/openapi.json`); `/metrics` is on the metrics port, not this one.
//!
//! Each request's client address is settled here, once: the peer's, unless the peer is a
//! trusted proxy (`TRUSTED_PROXIES`), whose forwarding headers then name it. Upstreams get
//! an `X-Forwarded-For` the gateway wrote: a client's own is replaced, a trusted proxy's is
//! extended with the proxy.

mod auth;
pub mod config;
mod proxy;
mod routes;
mod takeover;

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use platform_core::client::{ClientAddr, TrustedProxies};
use platform_core::cors::{self, Cors};
use platform_core::dispatch;
use platform_core::server::{self, Handler, ServeOptions};
use platform_core::{body, health, json, ApiError, Body, Context, Failure, Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::password;
pub use config::Config;
use routes::{Target, Upstream};

struct State {
    config: Config,
    client: proxy::HttpClient,
    chat: proxy::Pool,
    call: proxy::Pool,
    cors: Cors,
    metrics: platform_core::metrics::Metrics,
    routes: platform_core::router::Router<routes::Route>,
    in_flight: tokio::sync::Semaphore,
    shed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    auth: auth::Auth,
    /// Hands Socket.IO WebSockets to a co-located chat service (`SOCKET_DIR`).
    takeover: Option<takeover::Takeover>,
}

/// The HTTP contract as OpenAPI 3, served at `/openapi.json`.
const OPENAPI: &str = include_str!("../api/openapi.json");

#[derive(Clone)]
pub struct App {
    state: Arc<State>,
}

/// Builds the pools and the handler without touching the network.
pub fn app(config: Config) -> Result<App, platform_core::config::ConfigError> {
    let metrics = platform_core::metrics::Metrics::new::<routes::Label>("gateway");
    let chat_unix = config
        .socket_dir
        .as_deref()
        .map(|dir| proxy::UnixRoute::new(&config.chat, dir));
    let takeover = config.socket_dir.as_deref().map(|dir| {
        let handed = metrics.counter(
            "gateway_websockets_handed_off_total",
            "Socket.IO WebSockets passed to the co-located chat service.",
        );
        takeover::Takeover::new(dir, handed)
    });
    let auth = auth::Auth::new(&config)?;
    platform_core::pools::observe_stores(&metrics, &auth.pg, &auth.redis);
    Ok(App {
        state: Arc::new(State {
            auth,
            cors: Cors::new(config.cors_origins.clone(), cors::Policy::Api),
            client: proxy::client(chat_unix.clone()),
            chat: proxy::Pool::new(&config.chat, chat_unix),
            call: proxy::Pool::new(&config.call, None),
            in_flight: tokio::sync::Semaphore::new(config.max_in_flight),
            shed: metrics.counter(
                "gateway_shed_total",
                "API requests refused with 503 because too many were in flight.",
            ),
            metrics,
            routes: routes::table(),
            takeover,
            config,
        }),
    })
}

pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    let opts = ServeOptions {
        max_connections: config.max_connections,
        max_connections_per_address: Some(config.max_connections_per_address),
        trusted_proxies: config.trusted_proxies.clone(),
        ..ServeOptions::default()
    };
    let app = app(config).context("connection pools")?;
    // Accounts live in PostgreSQL: the schema must exist before the first sign-in.
    platform_core::migrate::at_start(&app.state.auth.pg).await?;
    app.state.auth.start(shutdown.clone());
    let c = &app.state.config;
    tracing::info!(addr = ?listener.local_addr().ok(), chat = %c.chat, call = %c.call, mode = ?c.trust.mode, "gateway listening");
    server::serve(listener, app, opts, shutdown).await;
    Ok(())
}

impl Handler for App {
    /// A Socket.IO WebSocket upgrade goes to a co-located chat service, socket and all,
    /// after the admission it would get if forwarded; anything else is served here.
    async fn take_over(
        &self,
        stream: tokio::net::TcpStream,
        conn: &platform_core::server::Connection,
    ) -> Option<tokio::net::TcpStream> {
        let s = &*self.state;
        let Some(takeover) = &s.takeover else {
            return Some(stream);
        };
        let Some(head) = takeover::peek_upgrade(&stream).await else {
            return Some(stream);
        };
        // Before admission counts anything: a chat that is not listening leaves the
        // connection to the tunnel, which admits it then.
        // (`None` from here on means the connection was dealt with: never `?`.)
        let Some(sender) = takeover.connect().await else {
            return Some(stream);
        };
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.uri = head.uri;
        parts.headers = head.headers;
        parts.extensions.insert(conn.clone());
        settle_client(&s.config.trusted_proxies, &mut parts);
        if let Err(e) = s.auth.admit(&mut parts, auth::Admit::Socket).await {
            takeover::answer(stream, e).await;
            return None;
        }
        let client = parts
            .extensions
            .get::<ClientAddr>()
            .map_or(conn.peer.ip(), |c| c.0);
        let vouched = platform_core::handoff::Vouched {
            client,
            per_address_cap: takeover::cap_for(conn, &s.config),
        };
        // Chat counts it from here: its place under this address's cap here is given back
        // first, or the client's next connection could find it still taken.
        let released = conn.permit.release_address();
        // Sent: chat's now. Not sent: served here (tunnelled) after all, in its place again.
        let stream = takeover.send(sender, stream, vouched).await.err()?;
        if let Some(released) = released {
            if !conn.permit.reclaim(released) {
                server::refuse(stream).await;
                return None;
            }
        }
        Some(stream)
    }

    async fn handle(&self, req: Request) -> Response {
        let s = &*self.state;
        let (mut parts, body) = req.into_parts();
        settle_client(&s.config.trusted_proxies, &mut parts);
        let req = Request::from_parts(parts, body);
        if let Some(res) = s.cors.preflight(req.method(), req.headers()) {
            return res;
        }
        let origin = req.headers().get(http::header::ORIGIN).cloned();
        // Not `dispatch::dispatch`: forwarding needs the request whole, and the gateway is
        // where identity is established, not checked.
        dispatch::measured(&s.metrics, async {
            let path = req.uri().path();
            let route = dispatch::found(s.routes.at(req.method(), path), path).map(|(r, _)| *r);
            let label = route.as_ref().ok().map(|r| r.label);
            let result = match route {
                Ok(route) => self.route(route.target, req).await,
                Err(e) => Err(e),
            };
            let mut res = result.unwrap_or_else(ApiError::into_response);
            s.cors.decorate(origin.as_ref(), &mut res);
            (label, res)
        })
        .await
    }
}

/// Settles who `req` is from ([`ClientAddr`] in its extensions) and the `X-Forwarded-For`
/// upstreams get: from an untrusted peer, the peer alone (whatever the client wrote is
/// dropped, `Forwarded` too); from a trusted proxy, its chain with the proxy appended.
fn settle_client(trusted: &TrustedProxies, req: &mut http::request::Parts) {
    let Some(peer) = req
        .extensions
        .get::<platform_core::server::Connection>()
        .map(|c| c.peer.ip())
    else {
        return;
    };
    let client = trusted.client(peer, &req.headers);
    req.extensions.insert(ClientAddr(client));
    let headers = &mut req.headers;
    let peer_text = peer.to_string();
    let chain = if trusted.contains(peer) {
        let before: Vec<&str> = headers
            .get_all(XFF)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if before.is_empty() {
            peer_text
        } else {
            format!("{}, {peer_text}", before.join(", "))
        }
    } else {
        headers.remove(http::header::FORWARDED);
        peer_text
    };
    if let Ok(v) = HeaderValue::from_str(&chain) {
        headers.insert(XFF, v);
    }
}

const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");

impl App {
    async fn route(&self, target: Target, req: Request) -> Result<Response, ApiError> {
        let s = &*self.state;
        let (upstream, admit) = match target {
            Target::Healthz => return Ok(health::alive()),
            Target::Readyz => return Ok(self.ready().await),
            Target::OpenApi => return Ok(json::respond_raw(StatusCode::OK, OPENAPI)),
            Target::Auth(route) => return s.auth.handle(route, req).await,
            Target::Forward(upstream, admit) => (upstream, admit),
        };
        let (pool, base, timeout) = match upstream {
            Upstream::SocketIo => (None, &s.config.chat, s.config.poll_timeout),
            Upstream::Chat => (Some(&s.chat), &s.config.chat, s.config.request_timeout),
            Upstream::Call => (Some(&s.call), &s.config.call, s.config.request_timeout),
            // The answer's head comes after the whole upload: its time is the body's (which
            // `Limited` bounds) plus the usual.
            Upstream::Files => (
                None,
                &s.config.chat,
                s.config.request_timeout
                    + body::Deadline::current().allowed(s.config.attachment_max_bytes),
            ),
        };
        let forward = proxy::Forward {
            client: &s.client,
            pool,
            base,
            timeout,
            body_limit: s.config.body_limit,
        };
        let (mut parts, body) = req.into_parts();
        if upstream == Upstream::SocketIo {
            // Long-polls are held open by design and bounded by the connection cap instead;
            // an upgrade needs the request whole.
            s.auth.admit(&mut parts, admit).await?;
            return forward.send(Request::from_parts(parts, body)).await;
        }
        if upstream == Upstream::Files {
            return self.files(forward, admit, parts, body).await;
        }
        // The body first (within its deadline), then a permit: a client that stalls its body
        // holds its own connection, not the capacity everyone shares.
        let body =
            platform_core::body::read_limited(&parts.headers, body, s.config.body_limit).await?;
        let _permit = self.permit()?;
        s.auth.admit(&mut parts, admit).await?;
        forward.relay(parts, body).await
    }

    /// One of the API requests forwarded at once, or 503 at once.
    fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        let s = &*self.state;
        s.in_flight.try_acquire().map_err(|_| {
            s.shed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the platform is overloaded; retry shortly",
            );
            e.retry_after = Some(1);
            e
        })
    }

    /// Attachments: an upload's body is streamed to the chat service under
    /// `ATTACHMENT_MAX_BYTES` (413 from its declared length before anything is sent, or as
    /// soon as it passes it), after admission, so that a refused caller sends nothing on; a
    /// download's answer is streamed back. Other bodies (a GET's) are small and read whole.
    async fn files(
        &self,
        forward: proxy::Forward<'_>,
        admit: auth::Admit,
        mut parts: http::request::Parts,
        incoming: hyper::body::Incoming,
    ) -> Result<Response, ApiError> {
        let s = &*self.state;
        let body = if parts.method == http::Method::POST {
            Body::Limited(body::Limited::new(
                &parts.headers,
                incoming,
                s.config.attachment_max_bytes,
            )?)
        } else {
            let bytes = body::read_limited(&parts.headers, incoming, s.config.body_limit).await?;
            if bytes.is_empty() {
                Body::Empty
            } else {
                Body::from(bytes)
            }
        };
        s.auth.admit(&mut parts, admit).await?;
        // Held for the whole transfer: an upload is one request in flight until it ends.
        let _permit = self.permit()?;
        forward.stream(parts, body).await
    }

    /// Ready when every upstream answers its `/healthz` and the stores count as up
    /// ([`health::check`]: a store that stopped answering is borne with for its grace).
    async fn ready(&self) -> Response {
        if let Some(res) = health::shutting_down() {
            return res;
        }
        let s = &*self.state;
        let check = |base: &http::Uri| {
            let uri = format!("{base}healthz");
            async move {
                let Ok(uri) = uri.parse::<http::Uri>() else {
                    return false;
                };
                let req = hyper::Request::get(uri).body(platform_core::Body::Empty);
                let Ok(req) = req else { return false };
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), s.client.request(req)).await,
                    Ok(Ok(r)) if r.status().is_success()
                )
            }
        };
        let stores = health::check(s.config.ready_grace, Some(&s.auth.pg), Some(&s.auth.redis));
        let (chat, call, stores) =
            tokio::join!(check(&s.config.chat), check(&s.config.call), stores);
        let all = chat && call && stores.counted;
        let body = serde_json::json!({
            "status": if all { stores.status() } else { "unavailable" },
            "chat": health::up_or_down(chat),
            "call": health::up_or_down(call),
            "accounts": health::up_or_down(stores.all_up()),
        });
        let status = if all {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json::respond(status, &body)
    }
}
