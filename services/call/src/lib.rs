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

use http::Method;
use platform_core::dispatch::{self, Routed};
use platform_core::pools::{PgPool, RedisPool};
use platform_core::router::Router;
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

platform_core::route_labels! {
    /// The service's routes, each also its metric label.
    pub enum Route {
        Healthz = "healthz",
        Readyz = "readyz",
        Start = "start_call",
        ForConversation = "conversation_calls",
        Get = "call",
        Status = "call_status",
        PostSignal = "post_signal",
        ListSignals = "list_signals",
    }
}

fn table() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/healthz", Route::Healthz)
        .route(Method::GET, "/readyz", Route::Readyz)
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
        metrics: platform_core::metrics::Metrics::new::<Route>("call"),
        config,
    };
    platform_core::pools::observe_stores(&state.metrics, &state.pg, &state.redis);
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
    platform_core::migrate::at_start(&app.state.pg).await?;
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
        dispatch::dispatch(self, req).await
    }
}

impl dispatch::Service for App {
    type Route = Route;

    fn router(&self) -> &Router<Route> {
        &self.router
    }

    fn metrics(&self) -> &platform_core::metrics::Metrics {
        &self.state.metrics
    }

    fn trust(&self) -> Option<&platform_core::identity::Trust> {
        Some(&self.state.config.trust)
    }

    fn public(route: Route) -> bool {
        matches!(route, Route::Healthz | Route::Readyz)
    }

    async fn call(&self, route: Route, req: Routed<'_>) -> Result<Response, ApiError> {
        let state = &*self.state;
        let Routed {
            params: p,
            parts,
            body,
            caller: who,
        } = req;
        let h = &parts.headers;
        match route {
            Route::Healthz => Ok(health::alive()),
            Route::Readyz => {
                let grace = state.config.ready_grace;
                Ok(health::ready(grace, Some(&state.pg), Some(&state.redis)).await)
            }
            Route::Start => calls::start(state, who, h, body).await,
            Route::ForConversation => calls::for_conversation(state, who, p.get(0)).await,
            Route::Get => calls::get(state, who, p.get(0)).await,
            Route::Status => calls::set_status(state, who, p.get(0), h, body).await,
            Route::PostSignal => signals::post(state, who, p.get(0), p.get(1), h, body).await,
            Route::ListSignals => {
                let q = parts.uri.query();
                signals::list(state, who, p.get(0), p.get(1), q).await
            }
        }
    }
}
