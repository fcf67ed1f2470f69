//! The gateway (port 3000): the public face of the platform. It answers CORS preflights,
//! forwards every API route to its service (`/conversations` and `/socket.io/` to chat,
//! `/calls` to call) and passes the answers through unchanged.
//!
//! - [`config`]: settings from the environment.
//! - `auth`: accounts and sessions (`/auth/*`, `/me`), and authenticating what is forwarded.
//! - `proxy`: forwarding, timeouts, WebSocket tunnelling.
//!
//! It also answers `/healthz`, `/readyz` (every upstream up), `/metrics`, and `/openapi.json`
//! (the HTTP contract, `api/openapi.json`).

mod auth;
pub mod config;
mod proxy;

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use platform_core::cors::{self, Cors};
use platform_core::server::{self, Handler, ServeOptions};
use platform_core::{health, json, ApiError, Context, Failure, Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

struct State {
    config: Config,
    client: proxy::HttpClient,
    chat: proxy::Pool,
    call: proxy::Pool,
    cors: Cors,
    metrics: platform_core::metrics::Metrics,
    in_flight: tokio::sync::Semaphore,
    shed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    auth: auth::Auth,
}

/// Metric labels: local routes, then each upstream, then unmatched requests.
const LABELS: [&str; 9] = [
    "healthz",
    "readyz",
    "metrics",
    "chat",
    "call",
    "socket_io",
    "unmatched",
    "openapi",
    "auth",
];

/// The HTTP contract as OpenAPI 3, served at `/openapi.json`.
const OPENAPI: &str = include_str!("../api/openapi.json");

#[derive(Clone)]
pub struct App {
    state: Arc<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    Chat,
    Call,
}

/// Builds the pools and the handler without touching the network.
pub fn app(config: Config) -> Result<App, platform_core::config::ConfigError> {
    let metrics = platform_core::metrics::Metrics::new("gateway", &LABELS);
    Ok(App {
        state: Arc::new(State {
            auth: auth::Auth::new(&config)?,
            cors: Cors::new(config.cors_origins.clone(), cors::Policy::Api),
            client: proxy::client(),
            chat: proxy::Pool::new(&config.chat),
            call: proxy::Pool::new(&config.call),
            in_flight: tokio::sync::Semaphore::new(config.max_in_flight),
            shed: metrics.counter(
                "gateway_shed_total",
                "API requests refused with 503 because too many were in flight.",
            ),
            metrics,
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
        ..ServeOptions::default()
    };
    let app = app(config).context("connection pools")?;
    // Accounts live in PostgreSQL: the schema must exist before the first sign-in.
    platform_core::migrate::run(
        &app.state.auth.pg,
        platform_core::migrate::ALL,
        Duration::from_secs(60),
    )
    .await?;
    let c = &app.state.config;
    tracing::info!(addr = ?listener.local_addr().ok(), chat = %c.chat, call = %c.call, mode = ?c.trust.mode, "gateway listening");
    server::serve(listener, app, opts, shutdown).await;
    Ok(())
}

/// The metric label of a request path (an index into `LABELS`).
fn label_for(path: &str) -> usize {
    match path {
        "/healthz" => 0,
        "/readyz" => 1,
        "/metrics" => 2,
        "/openapi.json" => 7,
        "/me" => 8,
        _ if path.starts_with("/auth/") => 8,
        _ if path.starts_with("/socket.io") => 5,
        _ => match upstream_for(path) {
            Some(Upstream::Chat) => 3,
            Some(Upstream::Call) => 4,
            None => 6,
        },
    }
}

/// Which service owns a path, by its first segment.
fn upstream_for(path: &str) -> Option<Upstream> {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "conversations" | "socket.io" => Some(Upstream::Chat),
        "calls" => Some(Upstream::Call),
        _ => None,
    }
}

impl Handler for App {
    async fn handle(&self, req: Request) -> Response {
        let s = &*self.state;
        if let Some(res) = s.cors.preflight(req.method(), req.headers()) {
            return res;
        }
        let start = std::time::Instant::now();
        let label = label_for(req.uri().path());
        let origin = req.headers().get(http::header::ORIGIN).cloned();
        let mut res = self
            .route(req)
            .await
            .unwrap_or_else(ApiError::into_response);
        s.cors.decorate(origin.as_ref(), &mut res);
        s.metrics
            .record(label, res.status().as_u16(), start.elapsed());
        res
    }
}

impl App {
    async fn route(&self, mut req: Request) -> Result<Response, ApiError> {
        let s = &*self.state;
        let path = req.uri().path();
        match (req.method(), path) {
            (&Method::GET, "/healthz") => return Ok(health::alive()),
            (&Method::GET, "/readyz") => return Ok(self.ready().await),
            (&Method::GET, "/metrics") => return Ok(s.metrics.respond()),
            (&Method::GET, "/openapi.json") => {
                return Ok(json::respond_raw(StatusCode::OK, OPENAPI))
            }
            (_, "/healthz" | "/readyz" | "/metrics" | "/openapi.json") => {
                return Err(ApiError::method_not_allowed())
            }
            _ => {}
        }
        if let Some(route) = auth::route_for(req.method(), path) {
            return s.auth.handle(route?, req).await;
        }
        let Some(upstream) = upstream_for(path) else {
            return Err(ApiError::route_not_found(path));
        };
        // Long-polls are held open by design and bounded by the connection cap instead.
        let _permit = if path.starts_with("/socket.io") {
            None
        } else {
            match s.in_flight.try_acquire() {
                Ok(p) => Some(p),
                Err(_) => {
                    s.shed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let mut e = ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the platform is overloaded; retry shortly",
                    );
                    e.retry_after = Some(1);
                    return Err(e);
                }
            }
        };
        s.auth.admit(&mut req).await?;
        let path = req.uri().path();
        let (pool, base, timeout) = match upstream {
            Upstream::Chat if path.starts_with("/socket.io") => {
                (None, &s.config.chat, s.config.poll_timeout)
            }
            Upstream::Chat => (Some(&s.chat), &s.config.chat, s.config.request_timeout),
            Upstream::Call => (Some(&s.call), &s.config.call, s.config.request_timeout),
        };
        proxy::Forward {
            client: &s.client,
            pool,
            base,
            timeout,
            body_limit: s.config.body_limit,
        }
        .send(req)
        .await
    }

    /// Ready when every upstream answers its `/healthz`.
    async fn ready(&self) -> Response {
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
        let stores = async {
            health::ready(Some(&s.auth.pg), Some(&s.auth.redis))
                .await
                .status()
                .is_success()
        };
        let (chat, call, stores) =
            tokio::join!(check(&s.config.chat), check(&s.config.call), stores);
        let up = |ok: bool| if ok { "up" } else { "down" };
        let all = chat && call && stores;
        let body = serde_json::json!({
            "status": if all { "ready" } else { "unavailable" },
            "chat": up(chat),
            "call": up(call),
            "accounts": up(stores),
        });
        let status = if all {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json::respond(status, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_first_segment() {
        assert_eq!(
            upstream_for("/conversations/x/messages"),
            Some(Upstream::Chat)
        );
        assert_eq!(upstream_for("/socket.io/"), Some(Upstream::Chat));
        assert_eq!(upstream_for("/calls/conversation/x"), Some(Upstream::Call));
        assert_eq!(upstream_for("/conversationsx"), None);
        assert_eq!(upstream_for("/"), None);
    }
}
