//! The gateway's route table: the one place that decides, for each request, its metric
//! label, where it goes (answered here, the accounts, or an upstream) and how a forwarded
//! request is let in (session; each write with its own rate limit; socket handshake limit).
//! A new route is one line, and a new write route names its limit there.

use http::Method;
use platform_core::router::Router;

use crate::auth::{self, Admit};
use crate::config::Write;

platform_core::route_labels! {
    /// The gateway's metric labels: its own routes, the accounts, and each upstream.
    pub enum Label {
        Healthz = "healthz",
        Readyz = "readyz",
        OpenApi = "openapi",
        Auth = "auth",
        Chat = "chat",
        Call = "call",
        SocketIo = "socket_io",
        Attachments = "attachments",
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Healthz,
    Readyz,
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
    /// The chat service's attachments: uploads and downloads streamed both ways, never held
    /// whole.
    Files,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub label: Label,
    pub target: Target,
}

/// Routes are tried in order: each write before the rest of its prefix. Every write route
/// names its limit (`Admit::Write`); reads need only the session. Metrics are not here: they
/// are served on the metrics port (`METRICS_PORT`), not the public one.
#[rustfmt::skip] // one line per route
pub(crate) fn table() -> Router<Route> {
    use auth::Route as A;
    use Method as M;
    use Target::*;
    use Upstream::*;
    let r = |label, target| Route { label, target };
    let chat = |w| r(Label::Chat, Forward(Chat, Admit::Write(w)));
    let call = |w| r(Label::Call, Forward(Call, Admit::Write(w)));
    Router::new()
        .route(M::GET, "/healthz", r(Label::Healthz, Healthz))
        .route(M::GET, "/readyz", r(Label::Readyz, Readyz))
        .route(M::GET, "/openapi.json", r(Label::OpenApi, OpenApi))
        .route(M::POST, "/auth/register", r(Label::Auth, Auth(A::Register)))
        .route(M::POST, "/auth/login", r(Label::Auth, Auth(A::Login)))
        .route(M::POST, "/auth/logout", r(Label::Auth, Auth(A::Logout)))
        .route(M::POST, "/auth/password", r(Label::Auth, Auth(A::Password)))
        .route(M::GET, "/me", r(Label::Auth, Auth(A::Me)))
        .route(M::POST, "/conversations", chat(Write::Conversation))
        .route(M::PATCH, "/conversations/:id", chat(Write::Conversation))
        .route(M::POST, "/conversations/:id/messages", chat(Write::Send))
        .route(M::PATCH, "/conversations/:id/messages/:messageId", chat(Write::Edit))
        .route(M::DELETE, "/conversations/:id/messages/:messageId", chat(Write::Delete))
        .route(M::POST, "/conversations/:id/members", chat(Write::Members))
        .route(M::PATCH, "/conversations/:id/members/:userId", chat(Write::Members))
        .route(M::DELETE, "/conversations/:id/members/:userId", chat(Write::Members))
        .route(M::POST, "/conversations/:id/read", chat(Write::Read))
        .route(M::PUT, "/conversations/:id/messages/:messageId/reactions/:emoji", chat(Write::React))
        .route(M::DELETE, "/conversations/:id/messages/:messageId/reactions/:emoji", chat(Write::React))
        .any("/conversations/*", r(Label::Chat, Forward(Chat, Admit::Session)))
        .route(M::POST, "/users/:userId/block", chat(Write::Members))
        .route(M::DELETE, "/users/:userId/block", chat(Write::Members))
        .any("/users/*", r(Label::Chat, Forward(Chat, Admit::Session)))
        .route(M::GET, "/search/messages", chat(Write::Search))
        .route(M::POST, "/attachments", r(Label::Attachments, Forward(Files, Admit::Write(Write::Upload))))
        // A file and its thumbnail; not the bare prefix, which takes only uploads (its 405
        // names POST alone).
        .route(M::GET, "/attachments/:id", r(Label::Attachments, Forward(Files, Admit::Open)))
        .route(M::GET, "/attachments/:id/thumbnail", r(Label::Attachments, Forward(Files, Admit::Open)))
        .route(M::POST, "/calls", call(Write::Call))
        .route(M::PATCH, "/calls/:callId/status", call(Write::Call))
        .route(M::POST, "/calls/:callId/signals/:kind", call(Write::Signal))
        .any("/calls/*", r(Label::Call, Forward(Call, Admit::Session)))
        .any("/socket.io/*", r(Label::SocketIo, Forward(SocketIo, Admit::Socket)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_core::router::{Allowed, Match};

    fn target(method: Method, path: &str) -> Option<Target> {
        match table().at(&method, path) {
            Match::Found(r, _) => Some(r.target),
            _ => None,
        }
    }

    #[test]
    fn sends_are_rate_limited_with_or_without_a_trailing_slash() {
        let send = Some(Target::Forward(Upstream::Chat, Admit::Write(Write::Send)));
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
        assert_eq!(target(Method::GET, "/conversations"), api);
    }

    #[test]
    fn every_write_has_a_limit() {
        let chat = |w| Some(Target::Forward(Upstream::Chat, Admit::Write(w)));
        let call = |w| Some(Target::Forward(Upstream::Call, Admit::Write(w)));
        assert_eq!(
            target(Method::POST, "/conversations"),
            chat(Write::Conversation)
        );
        assert_eq!(
            target(Method::POST, "/conversations/"),
            chat(Write::Conversation)
        );
        assert_eq!(
            target(Method::PATCH, "/conversations/c/messages/m"),
            chat(Write::Edit)
        );
        assert_eq!(
            target(Method::DELETE, "/conversations/c/messages/m/"),
            chat(Write::Delete)
        );
        assert_eq!(
            target(Method::DELETE, "/conversations/c/members/u"),
            chat(Write::Members)
        );
        assert_eq!(
            target(Method::POST, "/conversations/c/members"),
            chat(Write::Members)
        );
        assert_eq!(
            target(Method::PATCH, "/conversations/c/members/u"),
            chat(Write::Members)
        );
        assert_eq!(
            target(Method::PATCH, "/conversations/c"),
            chat(Write::Conversation)
        );
        assert_eq!(
            target(Method::POST, "/users/bob/block"),
            chat(Write::Members)
        );
        assert_eq!(
            target(Method::DELETE, "/users/bob/block/"),
            chat(Write::Members)
        );
        assert_eq!(
            target(Method::POST, "/conversations/c/read"),
            chat(Write::Read)
        );
        assert_eq!(
            target(
                Method::PUT,
                "/conversations/c/messages/m/reactions/%F0%9F%91%8D"
            ),
            chat(Write::React)
        );
        assert_eq!(
            target(Method::DELETE, "/conversations/c/messages/m/reactions/x"),
            chat(Write::React)
        );
        assert_eq!(
            target(Method::GET, "/conversations/c/reads"),
            Some(Target::Forward(Upstream::Chat, Admit::Session))
        );
        assert_eq!(target(Method::POST, "/calls"), call(Write::Call));
        assert_eq!(target(Method::PATCH, "/calls/x/status"), call(Write::Call));
        assert_eq!(
            target(Method::POST, "/calls/x/signals/offer"),
            call(Write::Signal)
        );
        // Every other method on a prefix is a read or answered 404/405 upstream; none of
        // them writes.
        let session = Some(Target::Forward(Upstream::Call, Admit::Session));
        assert_eq!(target(Method::GET, "/calls/x/signals/offer"), session);
        assert_eq!(target(Method::GET, "/metrics"), None);
    }

    #[test]
    fn attachments_are_streamed_uploads_limited_downloads_open() {
        let upload = Some(Target::Forward(
            Upstream::Files,
            Admit::Write(Write::Upload),
        ));
        assert_eq!(target(Method::POST, "/attachments"), upload);
        assert_eq!(target(Method::POST, "/attachments/"), upload);
        let open = Some(Target::Forward(Upstream::Files, Admit::Open));
        assert_eq!(target(Method::GET, "/attachments/abc"), open);
        assert_eq!(target(Method::HEAD, "/attachments/abc"), open);
        assert_eq!(target(Method::GET, "/attachments/abc/thumbnail"), open);
        assert_eq!(target(Method::GET, "/attachments/abc/other"), None);
        assert_eq!(
            table().at(&Method::GET, "/attachments"),
            Match::MethodNotAllowed(Allowed::of(&[Method::POST]))
        );
        assert_eq!(
            table().at(&Method::DELETE, "/attachments/abc"),
            Match::MethodNotAllowed(Allowed::of(&[Method::GET]))
        );
        assert_eq!(
            table().at(&Method::PUT, "/attachments"),
            Match::MethodNotAllowed(Allowed::of(&[Method::POST]))
        );
        assert!(Write::Upload.signed_in_only());
    }

    #[test]
    fn prefixes_are_forwarded_whatever_the_method() {
        let call = Some(Target::Forward(Upstream::Call, Admit::Session));
        assert_eq!(target(Method::GET, "/calls/conversation/x"), call);
        assert_eq!(target(Method::PUT, "/calls"), call);
        assert_eq!(
            target(Method::GET, "/users/bob"),
            Some(Target::Forward(Upstream::Chat, Admit::Session))
        );
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
        let post = Match::MethodNotAllowed(Allowed::of(&[Method::POST]));
        let get = Match::MethodNotAllowed(Allowed::of(&[Method::GET]));
        assert_eq!(t.at(&Method::GET, "/auth/login"), post);
        assert_eq!(t.at(&Method::POST, "/healthz"), get);
        assert_eq!(t.at(&Method::DELETE, "/openapi.json"), get);
    }
}
