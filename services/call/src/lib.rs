//! The call service (port 3002): audio/video call sessions and WebRTC signalling, stored in
//! PostgreSQL so a call survives a restart. It holds no sockets: its realtime events go
//! through Redis to the chat instances, like message events.
//!
//! - [`config`]: settings from the environment.
//! - `calls`: start, fetch, list, status changes; `status`: the contract's status rules.
//! - `access`: membership and participation checks for authenticated callers.
//! - `signals`: offers, answers and ICE candidates.
//! - `sweep`: ringing calls that time out become `missed`.

mod access;
mod calls;
pub mod config;
mod signals;
mod status;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use platform_core::pools::{PgPool, RedisPool};
use platform_core::router::{Match, Router};
use platform_core::server::{self, Handler, ServeOptions};
use platform_core::stream::Keys;
use platform_core::{health, ApiError, Request, Response};
use platform_core::{Context, Failure};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

pub struct State {
    pub config: Config,
    pub pg: PgPool,
    pub redis: RedisPool,
    pub keys: Keys,
    pub metrics: platform_core::metrics::Metrics,
}

/// Metric labels: one per [`Route`] in order, then unmatched requests.
const LABELS: [&str; 10] = [
    "healthz",
    "readyz",
    "start_call",
    "conversation_calls",
    "call",
    "call_status",
    "post_signal",
    "list_signals",
    "metrics",
    "unmatched",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Healthz,
    Readyz,
    Start,
    ForConversation,
    Get,
    Status,
    PostSignal,
    ListSignals,
    Metrics,
}

fn table() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/healthz", Route::Healthz)
        .route(Method::GET, "/readyz", Route::Readyz)
        .route(Method::GET, "/metrics", Route::Metrics)
        .route(Method::POST, "/calls", Route::Start)
        .route(
            Method::GET,
            "/calls/conversation/:conversationId",
            Route::ForConversation,
        )
        .route(Method::GET, "/calls/:callId", Route::Get)
        .route(Method::PATCH, "/calls/:callId/status", Route::Status)
        .route(
            Method::POST,
            "/calls/:callId/signals/:kind",
            Route::PostSignal,
        )
        .route(
            Method::GET,
            "/calls/:callId/signals/:kind",
            Route::ListSignals,
        )
}

#[derive(Clone)]
pub struct App {
    state: Arc<State>,
    router: Arc<Router<Route>>,
}

pub fn app(config: Config) -> Result<App, platform_core::config::ConfigError> {
    let state = State {
        pg: config.stores.postgres()?,
        redis: config.stores.redis()?,
        keys: Keys::new(&config.stores.namespace),
        metrics: platform_core::metrics::Metrics::new("call", &LABELS),
        config,
    };
    Ok(App {
        state: Arc::new(state),
        router: Arc::new(table()),
    })
}

pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    let app = app(config).context("connection pools")?;
    platform_core::migrate::run(
        &app.state.pg,
        platform_core::migrate::ALL,
        Duration::from_secs(60),
    )
    .await?;
    tokio::spawn(sweep::run(app.state.clone(), shutdown.clone()));
    tracing::info!(addr = ?listener.local_addr().ok(), "call service listening");
    let opts = ServeOptions {
        max_connections: app.state.config.max_connections,
        ..ServeOptions::default()
    };
    server::serve(listener, app, opts, shutdown).await;
    Ok(())
}

impl Handler for App {
    async fn handle(&self, req: Request) -> Response {
        let start = std::time::Instant::now();
        let state = &*self.state;
        let (parts, body) = req.into_parts();
        let (path, h) = (parts.uri.path(), &parts.headers);
        let matched = self.router.at(&parts.method, path);
        let label = match matched {
            Match::Found(route, _) => *route as usize,
            _ => LABELS.len() - 1,
        };
        // Every API route needs the gateway's word for who is calling (see `identity`).
        let caller = match matched {
            Match::Found(Route::Healthz | Route::Readyz | Route::Metrics, _) => Ok(None),
            _ => state.config.trust.caller(h),
        };
        let result = match (matched, caller) {
            (_, Err(e)) => Err(e),
            (Match::Found(route, p), Ok(who)) => match route {
                Route::Healthz => Ok(health::alive()),
                Route::Readyz => Ok(health::ready(Some(&state.pg), Some(&state.redis)).await),
                Route::Start => calls::start(state, who, h, body).await,
                Route::ForConversation => calls::for_conversation(state, who, p.get(0)).await,
                Route::Get => calls::get(state, who, p.get(0)).await,
                Route::Status => calls::set_status(state, who, p.get(0), h, body).await,
                Route::PostSignal => signals::post(state, who, p.get(0), p.get(1), h, body).await,
                Route::ListSignals => {
                    let q = parts.uri.query();
                    signals::list(state, who, p.get(0), p.get(1), q).await
                }
                Route::Metrics => Ok(state.metrics.respond()),
            },
            (Match::MethodNotAllowed, _) => Err(ApiError::method_not_allowed()),
            (Match::NotFound, _) => Err(ApiError::route_not_found(path)),
        };
        let res = result.unwrap_or_else(ApiError::into_response);
        state
            .metrics
            .record(label, res.status().as_u16(), start.elapsed());
        res
    }
}
