//! The gateway's route table: the one place that decides, for each request, its metric
//! label, where it goes (answered here, the accounts, or an upstream) and how a forwarded
//! request is let in (session, send limits, socket handshake limit). A new route is one line.

use http::Method;
use platform_core::router::Router;

use crate::auth::{self, Admit};

platform_core::route_labels! {
    /// The gateway's metric labels: its own routes, the accounts, and each upstream.
    pub enum Label {
        Healthz = "healthz",
        Readyz = "readyz",
        Metrics = "metrics",
        OpenApi = "openapi",
        Auth = "auth",
        Chat = "chat",
        Call = "call",
        SocketIo = "socket_io",
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    /// Accounts and sessions, answered here.
    Auth(auth::Route),
    /// Passed on to a service whatever the method: the service answers 404/405.
    Forward(Upstream, Admit),
}

/// A service the gateway forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upstream {
    Chat,
    Call,
    /// The chat service's Socket.IO: long-polls and WebSocket tunnels.
    SocketIo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub label: Label,
    pub target: Target,
}

/// Routes are tried in order: the send before the rest of `/conversations`.
#[rustfmt::skip] // one line per route
pub(crate) fn table() -> Router<Route> {
    use auth::Route as A;
    use Method as M;
    use Target::*;
    use Upstream::*;
    let r = |label, target| Route { label, target };
    Router::new()
        .route(M::GET, "/healthz", r(Label::Healthz, Healthz))
        .route(M::GET, "/readyz", r(Label::Readyz, Readyz))
        .route(M::GET, "/metrics", r(Label::Metrics, Metrics))
        .route(M::GET, "/openapi.json", r(Label::OpenApi, OpenApi))
        .route(M::POST, "/auth/register", r(Label::Auth, Auth(A::Register)))
        .route(M::POST, "/auth/login", r(Label::Auth, Auth(A::Login)))
        .route(M::POST, "/auth/logout", r(Label::Auth, Auth(A::Logout)))
        .route(M::POST, "/auth/password", r(Label::Auth, Auth(A::Password)))
        .route(M::GET, "/me", r(Label::Auth, Auth(A::Me)))
        .route(M::POST, "/conversations/:id/messages", r(Label::Chat, Forward(Chat, Admit::Send)))
        .any("/conversations/*", r(Label::Chat, Forward(Chat, Admit::Session)))
        .any("/calls/*", r(Label::Call, Forward(Call, Admit::Session)))
        .any("/socket.io/*", r(Label::SocketIo, Forward(SocketIo, Admit::Socket)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_core::router::Match;

    fn target(method: Method, path: &str) -> Option<Target> {
        match table().at(&method, path) {
            Match::Found(r, _) => Some(r.target),
            _ => None,
        }
    }

    #[test]
    fn sends_are_rate_limited_with_or_without_a_trailing_slash() {
        let send = Some(Target::Forward(Upstream::Chat, Admit::Send));
        assert_eq!(target(Method::POST, "/conversations/abc/messages"), send);
        assert_eq!(target(Method::POST, "/conversations/abc/messages/"), send);
        assert!(matches!(
            table().at(&Method::POST, "/conversations/abc/messages/"),
            Match::Found(Route { label: Label::Chat, .. }, p) if p.get(0) == "abc"
        ));
        let api = Some(Target::Forward(Upstream::Chat, Admit::Session));
        assert_eq!(target(Method::GET, "/conversations/abc/messages"), api);
        assert_eq!(target(Method::POST, "/conversations//messages"), api);
        assert_eq!(target(Method::POST, "/conversations/abc/messages/x"), api);
        assert_eq!(target(Method::POST, "/conversations"), api);
    }

    #[test]
    fn prefixes_are_forwarded_whatever_the_method() {
        let call = Some(Target::Forward(Upstream::Call, Admit::Session));
        assert_eq!(target(Method::GET, "/calls/conversation/x"), call);
        assert_eq!(target(Method::PUT, "/calls"), call);
        assert_eq!(
            target(Method::GET, "/socket.io/"),
            Some(Target::Forward(Upstream::SocketIo, Admit::Socket))
        );
        assert_eq!(target(Method::GET, "/conversationsx"), None);
        assert_eq!(target(Method::GET, "/"), None);
    }

    #[test]
    fn local_and_auth_routes_refuse_other_methods() {
        let t = table();
        assert!(matches!(
            t.at(&Method::POST, "/auth/login"),
            Match::Found(
                Route {
                    label: Label::Auth,
                    target: Target::Auth(auth::Route::Login)
                },
                _
            )
        ));
        assert!(matches!(
            t.at(&Method::GET, "/me"),
            Match::Found(
                Route {
                    target: Target::Auth(auth::Route::Me),
                    ..
                },
                _
            )
        ));
        assert_eq!(t.at(&Method::GET, "/auth/login"), Match::MethodNotAllowed);
        assert_eq!(t.at(&Method::POST, "/healthz"), Match::MethodNotAllowed);
        assert_eq!(
            t.at(&Method::DELETE, "/openapi.json"),
            Match::MethodNotAllowed
        );
    }
}
