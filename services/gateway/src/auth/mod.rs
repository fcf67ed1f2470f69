//! Identity at the gateway: accounts and sessions (`/auth/*`, `/me`), and authentication of
//! every request forwarded to the services.
//!
//! - `accounts`: the handlers of the auth routes.
//! - `password`: argon2id hashing on a bounded set of blocking threads.
//! - `cache`: sessions kept in memory, dropped by the revocations Redis publishes.
//!
//! Forwarded requests lose any identity header the client sent; an authenticated one gets
//! `x-user-id` and every one gets the shared secret, which is how the services know the
//! gateway vouches for it (see `platform_core::identity`).

mod accounts;
mod cache;
pub mod password;

use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use platform_core::client::{self, ClientAddr};
use platform_core::identity::{Mode, Trust, SECRET_HEADER, USER_HEADER};
use platform_core::pools::{PgPool, RedisPool};
use platform_core::ratelimit::{self, ADDRESS_HEADER};
use platform_core::sessions::{self, SessionUser, Sessions};
use platform_core::{ApiError, Request, Response};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Limits, Write};

pub(crate) struct Auth {
    pub pg: PgPool,
    pub redis: RedisPool,
    sessions: Sessions,
    trust: Trust,
    limits: Limits,
    namespace: String,
    hasher: password::Hasher,
    cache: Arc<cache::Cache>,
    /// Where the revocations subscription connects.
    stores: platform_core::config::Stores,
}

/// The accounts' routes (their paths are in the gateway's route table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Register,
    Login,
    Logout,
    Password,
    Me,
}

/// How a forwarded request is let in (the route table says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Its session, if it presents one (required when `AUTH_MODE=token`).
    Session,
    /// A write: the session and the write's limits, per user and per address, counted in
    /// the same round trip as the session lookup (or alone, with the session from memory).
    /// Sends are counted where they are queued, by the chat service: the gateway passes the
    /// client's address on (`ratelimit::ADDRESS_HEADER`).
    Write(Write),
    /// A socket: it signs in with its CONNECT packet at the chat service; opening one is
    /// counted per address.
    Socket,
    /// No session: the request carries its own proof (an attachment URL's signature, checked
    /// by the chat service). Nothing about the caller is passed on, so that an `<img src>`
    /// works the same for everyone holding the URL.
    Open,
}

/// A Socket.IO request that opens a new session (no `sid` yet): counted per address.
fn is_handshake(query: Option<&str>) -> bool {
    !query
        .unwrap_or("")
        .split('&')
        .any(|kv| kv.starts_with("sid="))
}

/// The address a request came from (behind trusted proxies, the client's), as per-address
/// limits count it: an IPv6 client by its /64.
fn peer(extensions: &http::Extensions) -> String {
    extensions
        .get::<ClientAddr>()
        .map(|c| client::key(c.0).to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl Auth {
    pub(crate) fn new(config: &Config) -> Result<Self, platform_core::config::ConfigError> {
        Ok(Auth {
            pg: config.stores.postgres()?,
            redis: config.stores.redis()?,
            sessions: Sessions::new(&config.stores.namespace, config.session_ttl)
                .with_max_per_user(config.max_sessions_per_user)
                .with_wait_replicas(config.wait_replicas),
            trust: config.trust.clone(),
            limits: config.limits.clone(),
            namespace: config.stores.namespace.clone(),
            hasher: password::Hasher::new(),
            cache: Arc::new(cache::Cache::new(config.session_cache_max)),
            stores: config.stores.clone(),
        })
    }

    /// Keeps the session cache's revocations subscription up until `shutdown` (the cache is
    /// unused until it is).
    pub(crate) fn start(&self, shutdown: CancellationToken) {
        tokio::spawn(cache::subscribe(
            self.cache.clone(),
            self.stores.clone(),
            self.sessions.clone(),
            shutdown,
        ));
    }

    /// The user of a token's live session: from memory when known, else from Redis (then
    /// kept, see `cache`).
    async fn session(&self, token: &str) -> Result<Option<SessionUser>, ApiError> {
        let digest = sessions::digest(token);
        if let Some(user) = self.cache.get(&digest) {
            return Ok(Some(user));
        }
        let ticket = self.cache.ticket();
        let live = self.sessions.lookup_live(&self.redis, token).await?;
        if let Some(live) = &live {
            self.cache.store(ticket, digest, live);
        }
        Ok(live.map(|l| l.user))
    }

    /// A write's session and both of its limits: one round trip either way (the limits alone
    /// when the session is in memory).
    async fn session_counting(
        &self,
        token: &str,
        w: Write,
        address: &str,
    ) -> Result<SessionUser, ApiError> {
        let (per_user, per_address) = self.limits.write(w);
        let by_address = self.key(w.name(), address);
        let user_prefix = self.key(w.name(), "u:");
        let digest = sessions::digest(token);
        if let Some(user) = self.cache.get(&digest) {
            let by_user = format!("{user_prefix}{}", user.user_id);
            let limits = [
                (by_address.as_str(), per_address),
                (by_user.as_str(), per_user),
            ];
            ratelimit::hit(&self.redis, &limits, w.name()).await?;
            return Ok(user);
        }
        let ticket = self.cache.ticket();
        let (live, wait) = self
            .sessions
            .lookup_counting(
                &self.redis,
                token,
                (&by_address, per_address),
                (&user_prefix, per_user),
            )
            .await?;
        let live = live.ok_or_else(invalid_token)?;
        self.cache.store(ticket, digest, &live);
        if let Some(wait) = wait {
            return Err(too_many(w, wait));
        }
        Ok(live.user)
    }

    fn key(&self, kind: &str, subject: &str) -> String {
        ratelimit::key(&self.namespace, kind, subject)
    }

    /// Serves an auth route.
    pub(crate) async fn handle(&self, route: Route, req: Request) -> Result<Response, ApiError> {
        let (parts, body) = req.into_parts();
        let address = peer(&parts.extensions);
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
        let user = self.session(token).await?.ok_or_else(invalid_token)?;
        Ok((token, user))
    }

    /// Checks who sends a request before it is forwarded, enforces its limits, and rewrites
    /// the identity headers the services trust.
    pub(crate) async fn admit(&self, req: &mut Parts, admit: Admit) -> Result<(), ApiError> {
        req.headers.remove(USER_HEADER);
        req.headers.remove(SECRET_HEADER);
        req.headers.remove(ADDRESS_HEADER);
        let write = match admit {
            Admit::Open => {
                req.headers.remove(http::header::AUTHORIZATION);
                req.headers.remove(http::header::COOKIE);
                self.vouch(&mut req.headers)?;
                return Ok(());
            }
            Admit::Socket => {
                // Sockets authenticate in their CONNECT packet, at the chat service.
                if is_handshake(req.uri.query()) {
                    let key = self.key("connect:a", &peer(&req.extensions));
                    let limit = [(key.as_str(), self.limits.connects_per_address)];
                    ratelimit::hit(&self.redis, &limit, "connections").await?;
                }
                return Ok(());
            }
            Admit::Session => None,
            Admit::Write(w) => Some(w),
        };
        let token = match req.headers.get(http::header::AUTHORIZATION) {
            Some(_) => Some(sessions::bearer(&req.headers).ok_or_else(invalid_token)?),
            None => None,
        };
        let address = peer(&req.extensions);
        let user = match (token, write) {
            // A send: counted by the chat service as it queues it.
            (Some(t), Some(Write::Send)) | (Some(t), None) => {
                Some(self.session(t).await?.ok_or_else(invalid_token)?)
            }
            (Some(t), Some(w)) => Some(self.session_counting(t, w, &address).await?),
            (None, _) if self.trust.mode == Mode::Token => return Err(not_signed_in()),
            (None, Some(w)) if w.signed_in_only() => return Err(not_signed_in()),
            (None, write) => {
                // Compat mode has no users to count: the address's limit alone.
                if let Some(w) = write.filter(|w| *w != Write::Send) {
                    let key = self.key(w.name(), &address);
                    let limit = [(key.as_str(), self.limits.write(w).1)];
                    ratelimit::hit(&self.redis, &limit, w.name()).await?;
                }
                None
            }
        };
        let headers = &mut req.headers;
        if write == Some(Write::Send) {
            let v = HeaderValue::from_str(&address)
                .map_err(|e| ApiError::internal("client address as a header", e))?;
            headers.insert(HeaderName::from_static(ADDRESS_HEADER), v);
        }
        if let Some(u) = user {
            let v = HeaderValue::from_str(&u.user_id)
                .map_err(|e| ApiError::internal("session user id", e))?;
            headers.insert(HeaderName::from_static(USER_HEADER), v);
        }
        self.vouch(headers)
    }

    /// The shared secret that tells the services the request came through the gateway.
    fn vouch(&self, headers: &mut HeaderMap) -> Result<(), ApiError> {
        if let Some(secret) = self.trust.secret() {
            let v = HeaderValue::from_bytes(secret)
                .map_err(|e| ApiError::internal("INTERNAL_SECRET as a header", e))?;
            headers.insert(HeaderName::from_static(SECRET_HEADER), v);
        }
        Ok(())
    }
}

fn too_many(w: Write, wait: std::time::Duration) -> ApiError {
    ApiError::rate_limited(format!("too many {}; retry later", w.name()), wait)
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
    fn handshakes_have_no_sid() {
        assert!(is_handshake(Some("EIO=4&transport=polling")));
        assert!(is_handshake(Some("EIO=4&transport=websocket")));
        assert!(!is_handshake(Some("EIO=4&transport=polling&sid=abc")));
    }
}
