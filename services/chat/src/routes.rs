//! The chat service's routing table and dispatch: one `match` from route to handler.

use std::time::Instant;

use http::Method;
use platform_core::router::{Match, Router};
use platform_core::server::Handler;
use platform_core::{health, ApiError, Request, Response};

use crate::{conversations, history, messages, App};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Readyz,
    CreateConversation,
    UserConversations,
    Conversation,
    ListMessages,
    SendMessage,
    EditMessage,
    DeleteMessage,
    Metrics,
}

/// Metric labels: one per [`Route`] in order, then Socket.IO and unmatched requests.
pub const LABELS: [&str; 12] = [
    "healthz",
    "readyz",
    "create_conversation",
    "user_conversations",
    "conversation",
    "list_messages",
    "send_message",
    "edit_message",
    "delete_message",
    "metrics",
    "socket_io",
    "unmatched",
];
const SOCKET_IO: usize = 10;
const UNMATCHED: usize = 11;

pub fn table() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/healthz", Route::Healthz)
        .route(Method::GET, "/readyz", Route::Readyz)
        .route(Method::GET, "/metrics", Route::Metrics)
        .route(Method::POST, "/conversations", Route::CreateConversation)
        .route(
            Method::GET,
            "/conversations/user/:userId",
            Route::UserConversations,
        )
        .route(Method::GET, "/conversations/:id", Route::Conversation)
        .route(
            Method::GET,
            "/conversations/:id/messages",
            Route::ListMessages,
        )
        .route(
            Method::POST,
            "/conversations/:id/messages",
            Route::SendMessage,
        )
        .route(
            Method::PATCH,
            "/conversations/:id/messages/:messageId",
            Route::EditMessage,
        )
        .route(
            Method::DELETE,
            "/conversations/:id/messages/:messageId",
            Route::DeleteMessage,
        )
}

impl Handler for App {
    async fn handle(&self, req: Request) -> Response {
        let start = Instant::now();
        let state = &*self.state;
        if req.uri().path().starts_with("/socket.io/") {
            let res = self.rt.io.handle(req).await;
            state
                .metrics
                .record(SOCKET_IO, res.status().as_u16(), start.elapsed());
            return res;
        }
        let (parts, body) = req.into_parts();
        let (path, h) = (parts.uri.path(), &parts.headers);
        let matched = self.router.at(&parts.method, path);
        // Every API route needs the gateway's word for who is calling (see `identity`).
        let caller = match matched {
            Match::Found(Route::Healthz | Route::Readyz | Route::Metrics, _) => Ok(None),
            _ => state.config.trust.caller(h),
        };
        let label = match matched {
            Match::Found(route, _) => *route as usize,
            _ => UNMATCHED,
        };
        let result = match (matched, caller) {
            (_, Err(e)) => Err(e),
            (Match::Found(route, p), Ok(who)) => match route {
                Route::Healthz => Ok(health::alive()),
                Route::Readyz => Ok(health::ready(Some(&state.pg), Some(&state.redis)).await),
                Route::CreateConversation => conversations::create(state, who, h, body).await,
                Route::UserConversations => conversations::for_user(state, who, p.get(0)).await,
                Route::Conversation => conversations::get(state, who, p.get(0)).await,
                Route::ListMessages => history::list(state, who, p.get(0), parts.uri.query()).await,
                Route::SendMessage => messages::send(state, who, p.get(0), h, body).await,
                Route::EditMessage => messages::edit(state, who, p.get(0), p.get(1), h, body).await,
                Route::DeleteMessage => messages::delete(state, who, p.get(0), p.get(1)).await,
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
