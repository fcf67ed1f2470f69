//! Identity at the gateway: accounts and sessions (`/auth/*`, `/me`), and authentication of
//! every request forwarded to the services.
//!
//! - `accounts`: the handlers of the auth routes.
//! - `password`: argon2id hashing on a bounded set of blocking threads.
//!
//! Forwarded requests lose any identity header the client sent; an authenticated one gets
//! `x-user-id` and every one gets the shared secret, which is how the services know the
//! gateway vouches for it (see `platform_core::identity`).

mod accounts;
mod password;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Method;
use platform_core::identity::{Mode, Trust, SECRET_HEADER, USER_HEADER};
use platform_core::pools::{PgPool, RedisPool};
use platform_core::ratelimit;
use platform_core::sessions::{self, SessionUser, Sessions};
use platform_core::{ApiError, Request, Response};

use crate::config::{Config, Limits};

pub struct Auth {
    pub pg: PgPool,
    pub redis: RedisPool,
    sessions: Sessions,
    trust: Trust,
    limits: Limits,
    namespace: String,
    hasher: password::Hasher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Register,
    Login,
    Logout,
    Password,
    Me,
}

/// The auth route of a request: `None` when the path is not one, 405 for a wrong method.
pub fn route_for(method: &Method, path: &str) -> Option<Result<Route, ApiError>> {
    let (want, route) = match path {
        "/auth/register" => (Method::POST, Route::Register),
        "/auth/login" => (Method::POST, Route::Login),
        "/auth/logout" => (Method::POST, Route::Logout),
        "/auth/password" => (Method::POST, Route::Password),
        "/me" => (Method::GET, Route::Me),
        _ => return None,
    };
    Some(if *method == want {
        Ok(route)
    } else {
        Err(ApiError::method_not_allowed())
    })
}

/// Whether a request sends a message (`POST /conversations/:id/messages`): rate limited.
fn is_send(method: &Method, path: &str) -> bool {
    if method != Method::POST {
        return false;
    }
    let mut it = path.trim_start_matches('/').split('/');
    matches!(
        (it.next(), it.next(), it.next(), it.next()),
        (Some("conversations"), Some(id), Some("messages"), None) if !id.is_empty()
    )
}

/// A Socket.IO request that opens a new session (no `sid` yet): counted per address.
fn is_handshake(path: &str, query: Option<&str>) -> bool {
    path.starts_with("/socket.io")
        && !query
            .unwrap_or("")
            .split('&')
            .any(|kv| kv.starts_with("sid="))
}

/// The address a request came from, for per-address limits.
fn peer(req: &Request) -> String {
    req.extensions()
        .get::<platform_core::server::Connection>()
        .map(|c| c.peer.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl Auth {
    pub fn new(config: &Config) -> Result<Self, platform_core::config::ConfigError> {
        Ok(Auth {
            pg: config.stores.postgres()?,
            redis: config.stores.redis()?,
            sessions: Sessions::new(&config.stores.namespace, config.session_ttl)
                .with_max_per_user(config.max_sessions_per_user),
            trust: config.trust.clone(),
            limits: config.limits.clone(),
            namespace: config.stores.namespace.clone(),
            hasher: password::Hasher::new(),
        })
    }

    fn key(&self, kind: &str, subject: &str) -> String {
        format!("{}:rl:{kind}:{subject}", self.namespace)
    }

    /// Serves an auth route.
    pub async fn handle(&self, route: Route, req: Request) -> Result<Response, ApiError> {
        let address = peer(&req);
        let (parts, body) = req.into_parts();
        let h = &parts.headers;
        match route {
            Route::Register => accounts::register(self, &address, h, body).await,
            Route::Login => accounts::login(self, &address, h, body).await,
            Route::Logout => {
                let (token, user) = self.signed_in(h).await?;
                accounts::logout(self, token, &user).await
            }
            Route::Password => {
                let (_, user) = self.signed_in(h).await?;
                accounts::change_password(self, &address, &user, h, body).await
            }
            Route::Me => {
                let (_, user) = self.signed_in(h).await?;
                Ok(accounts::me(&user))
            }
        }
    }

    /// The session a request presents: 401 without a valid one.
    async fn signed_in<'h>(&self, h: &'h HeaderMap) -> Result<(&'h str, SessionUser), ApiError> {
        let token = sessions::bearer(h).ok_or_else(not_signed_in)?;
        let user = self
            .sessions
            .lookup(&self.redis, token)
            .await?
            .ok_or_else(invalid_token)?;
        Ok((token, user))
    }

    /// Checks who sends `req` before it is forwarded, enforces the per-request limits, and
    /// rewrites the identity headers the services trust.
    pub async fn admit(&self, req: &mut Request) -> Result<(), ApiError> {
        let headers = req.headers_mut();
        headers.remove(USER_HEADER);
        headers.remove(SECRET_HEADER);
        let path = req.uri().path();
        if path.starts_with("/socket.io") {
            // Sockets authenticate in their CONNECT packet, at the chat service.
            if is_handshake(path, req.uri().query()) {
                let key = self.key("connect:a", &peer(req));
                let limit = [(key.as_str(), self.limits.connects_per_address)];
                ratelimit::hit(&self.redis, &limit, "connections").await?;
            }
            return Ok(());
        }
        let send = is_send(req.method(), req.uri().path());
        let by_address = send.then(|| self.key("send:a", &peer(req)));
        let token = match req.headers().get(http::header::AUTHORIZATION) {
            Some(_) => Some(sessions::bearer(req.headers()).ok_or_else(invalid_token)?),
            None => None,
        };
        let user = match (token, &by_address) {
            // A send: the session and both of its limits in one round trip.
            (Some(t), Some(address)) => {
                let user_prefix = self.key("send:u", "");
                let (user, wait) = self
                    .sessions
                    .lookup_counting(
                        &self.redis,
                        t,
                        (address, self.limits.sends_per_address),
                        (&user_prefix, self.limits.sends_per_user),
                    )
                    .await?;
                let user = user.ok_or_else(invalid_token)?;
                if let Some(wait) = wait {
                    return Err(ApiError::rate_limited(
                        "too many messages; retry later",
                        wait,
                    ));
                }
                Some(user)
            }
            (Some(t), None) => Some(
                self.sessions
                    .lookup(&self.redis, t)
                    .await?
                    .ok_or_else(invalid_token)?,
            ),
            (None, _) if self.trust.mode == Mode::Token => return Err(not_signed_in()),
            (None, address) => {
                if let Some(address) = address {
                    let limit = [(address.as_str(), self.limits.sends_per_address)];
                    ratelimit::hit(&self.redis, &limit, "messages").await?;
                }
                None
            }
        };
        let headers = req.headers_mut();
        if let Some(u) = user {
            let v = HeaderValue::from_str(&u.user_id)
                .map_err(|e| ApiError::internal("session user id", e))?;
            headers.insert(HeaderName::from_static(USER_HEADER), v);
        }
        if let Some(secret) = self.trust.secret() {
            let v = HeaderValue::from_bytes(secret)
                .map_err(|e| ApiError::internal("INTERNAL_SECRET as a header", e))?;
            headers.insert(HeaderName::from_static(SECRET_HEADER), v);
        }
        Ok(())
    }
}

fn not_signed_in() -> ApiError {
    ApiError::unauthorized("sign in first: send Authorization: Bearer <token>")
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("the token is invalid, expired or revoked; sign in again")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_recognised() {
        assert!(is_send(&Method::POST, "/conversations/abc/messages"));
        assert!(!is_send(&Method::GET, "/conversations/abc/messages"));
        assert!(!is_send(&Method::POST, "/conversations//messages"));
        assert!(!is_send(&Method::POST, "/conversations/abc/messages/x"));
        assert!(!is_send(&Method::POST, "/conversations"));
    }

    #[test]
    fn handshakes_have_no_sid() {
        assert!(is_handshake("/socket.io/", Some("EIO=4&transport=polling")));
        assert!(is_handshake(
            "/socket.io/",
            Some("EIO=4&transport=websocket")
        ));
        assert!(!is_handshake(
            "/socket.io/",
            Some("EIO=4&transport=polling&sid=abc")
        ));
    }

    #[test]
    fn auth_routes_and_methods() {
        assert_eq!(
            route_for(&Method::POST, "/auth/login").unwrap().unwrap(),
            Route::Login
        );
        assert_eq!(route_for(&Method::GET, "/me").unwrap().unwrap(), Route::Me);
        assert_eq!(
            route_for(&Method::GET, "/auth/login")
                .unwrap()
                .unwrap_err()
                .status,
            405
        );
        assert!(route_for(&Method::GET, "/conversations").is_none());
    }
}
