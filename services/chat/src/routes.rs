//! The chat service's routing table and its one `match` from route to handler; the wrapper
//! around it (timing, identity check, 404/405, metrics) is `platform_core::dispatch`.

use http::Method;
use platform_core::dispatch::{self, Routed};
use platform_core::router::Router;
use platform_core::server::Handler;
use platform_core::{health, ApiError, Request, Response};

use crate::{
    attachments, blocks, conversations, history, lifecycle, messages, reactions, reads, search, App,
};

platform_core::route_labels! {
    /// The service's routes, each also its metric label.
    pub enum Route {
        Healthz = "healthz",
        Readyz = "readyz",
        CreateConversation = "create_conversation",
        UserConversations = "user_conversations",
        Conversation = "conversation",
        ListMessages = "list_messages",
        SendMessage = "send_message",
        EditMessage = "edit_message",
        DeleteMessage = "delete_message",
        AddReaction = "add_reaction",
        RemoveReaction = "remove_reaction",
        RenameConversation = "rename_conversation",
        AddMembers = "add_members",
        SetRole = "set_role",
        RemoveMember = "remove_member",
        MarkRead = "mark_read",
        Reads = "reads",
        Block = "block",
        Unblock = "unblock",
        SearchMessages = "search_messages",
        UploadAttachment = "upload_attachment",
        /// `GET` and `HEAD`: the signed URL is the permission (no caller).
        DownloadAttachment = "download_attachment",
        DownloadThumbnail = "download_thumbnail",
        /// Everything under `/socket.io/`, answered before routing.
        SocketIo = "socket_io",
    }
}

pub fn table() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/healthz", Route::Healthz)
        .route(Method::GET, "/readyz", Route::Readyz)
        .route(Method::POST, "/conversations", Route::CreateConversation)
        .route(
            Method::GET,
            "/conversations/user/:userId",
            Route::UserConversations,
        )
        .route(Method::GET, "/conversations/:id", Route::Conversation)
        .route(
            Method::PATCH,
            "/conversations/:id",
            Route::RenameConversation,
        )
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
        .route(
            Method::PUT,
            "/conversations/:id/messages/:messageId/reactions/:emoji",
            Route::AddReaction,
        )
        .route(
            Method::DELETE,
            "/conversations/:id/messages/:messageId/reactions/:emoji",
            Route::RemoveReaction,
        )
        .route(
            Method::POST,
            "/conversations/:id/members",
            Route::AddMembers,
        )
        .route(
            Method::PATCH,
            "/conversations/:id/members/:userId",
            Route::SetRole,
        )
        .route(
            Method::DELETE,
            "/conversations/:id/members/:userId",
            Route::RemoveMember,
        )
        .route(Method::POST, "/conversations/:id/read", Route::MarkRead)
        .route(Method::GET, "/conversations/:id/reads", Route::Reads)
        .route(Method::POST, "/users/:userId/block", Route::Block)
        .route(Method::DELETE, "/users/:userId/block", Route::Unblock)
        .route(Method::GET, "/search/messages", Route::SearchMessages)
        .route(Method::POST, "/attachments", Route::UploadAttachment)
        .route(Method::GET, "/attachments/:id", Route::DownloadAttachment)
        .route(
            Method::GET,
            "/attachments/:id/thumbnail",
            Route::DownloadThumbnail,
        )
}

impl Handler for App {
    async fn handle(&self, req: Request) -> Response {
        if req.uri().path().starts_with("/socket.io/") {
            // Sockets authenticate in their CONNECT packet, not by the gateway's word.
            let answer = async { (Some(Route::SocketIo), self.rt.io.handle(req).await) };
            return dispatch::measured(&self.state.metrics, answer).await;
        }
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
        // Downloads carry their permission in the signed URL: an `<img src>` sends no header,
        // and the gateway forwards them without a caller.
        matches!(
            route,
            Route::Healthz | Route::Readyz | Route::DownloadAttachment | Route::DownloadThumbnail
        )
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
            Route::CreateConversation => conversations::create(state, who, h, body).await,
            Route::UserConversations => {
                conversations::for_user(state, who, p.get(0), parts.uri.query()).await
            }
            Route::Conversation => conversations::get(state, who, p.get(0)).await,
            Route::ListMessages => history::list(state, who, p.get(0), parts.uri.query()).await,
            Route::SendMessage => messages::send(state, who, p.get(0), h, body).await,
            Route::EditMessage => messages::edit(state, who, p.get(0), p.get(1), h, body).await,
            Route::DeleteMessage => messages::delete(state, who, p.get(0), p.get(1)).await,
            Route::AddReaction => {
                reactions::add(&self.state, who, p.get(0), p.get(1), p.get(2)).await
            }
            Route::RemoveReaction => {
                reactions::remove(&self.state, who, p.get(0), p.get(1), p.get(2)).await
            }
            Route::RenameConversation => lifecycle::rename(state, who, p.get(0), h, body).await,
            Route::AddMembers => lifecycle::add(state, who, p.get(0), h, body).await,
            Route::SetRole => lifecycle::set_role(state, who, p.get(0), p.get(1), h, body).await,
            Route::RemoveMember => lifecycle::remove(state, who, p.get(0), p.get(1)).await,
            Route::MarkRead => reads::mark(state, who, p.get(0), h, body).await,
            Route::Reads => reads::list(state, who, p.get(0)).await,
            Route::Block => blocks::block(state, who, p.get(0)).await,
            Route::Unblock => blocks::unblock(state, who, p.get(0)).await,
            Route::SearchMessages => search::messages(state, who, parts.uri.query()).await,
            Route::UploadAttachment => attachments::upload(state, who, h, body).await,
            Route::DownloadAttachment | Route::DownloadThumbnail => {
                let thumbnail = route == Route::DownloadThumbnail;
                let q = parts.uri.query();
                attachments::download(state, &parts.method, p.get(0), thumbnail, q, h).await
            }
            // Not in the table: `handle` answers it before routing.
            Route::SocketIo => Err(ApiError::route_not_found(parts.uri.path())),
        }
    }
}
