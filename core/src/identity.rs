//! Who is calling, as the services see it. The gateway authenticates clients and forwards
//! the caller's user id in `x-user-id` together with the shared `INTERNAL_SECRET`; a service
//! believes `x-user-id` only when the secret matches, so a client that reaches a service
//! directly cannot claim an identity.
//!
//! In `token` mode (the default) every API request must carry both. In `compat` mode
//! (insecure, for clients of the original) a request without an identity acts as whoever its
//! body or path names, as the original did; one with an identity is still held to it.

use http::HeaderMap;

use crate::config::{ConfigError, Env};
use crate::error::ApiError;

/// The caller's user id, set by the gateway.
pub const USER_HEADER: &str = "x-user-id";
/// The shared secret proving a request came through the gateway.
pub const SECRET_HEADER: &str = "x-internal-secret";
/// Shortest accepted `INTERNAL_SECRET`.
pub const SECRET_MIN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every request is authenticated.
    Token,
    /// Requests without a token act as whoever they name (insecure).
    Compat,
}

/// `AUTH_MODE` and `INTERNAL_SECRET`, shared by the gateway and the services.
#[derive(Clone)]
pub struct Trust {
    pub mode: Mode,
    secret: Option<Box<[u8]>>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("mode", &self.mode)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Trust {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let raw_mode = env.string("AUTH_MODE");
        let mode = match raw_mode.as_str() {
            "token" => Mode::Token,
            "compat" => Mode::Compat,
            _ => {
                return Err(ConfigError {
                    var: "AUTH_MODE".into(),
                    value: raw_mode,
                    reason: "expected token or compat".into(),
                })
            }
        };
        let secret = env.raw("INTERNAL_SECRET");
        match &secret {
            Some(s) if s.len() < SECRET_MIN => {
                return Err(ConfigError {
                    var: "INTERNAL_SECRET".into(),
                    value: "<hidden>".into(),
                    reason: format!("must be at least {SECRET_MIN} characters"),
                })
            }
            None if mode == Mode::Token => {
                return Err(ConfigError {
                    var: "INTERNAL_SECRET".into(),
                    value: String::new(),
                    reason: "required when AUTH_MODE=token (the gateway and the services share it)"
                        .into(),
                })
            }
            _ => {}
        }
        Ok(Trust {
            mode,
            secret: secret.map(|s| s.into_bytes().into_boxed_slice()),
        })
    }

    /// Token mode with `secret`; for tests.
    pub fn token(secret: &str) -> Self {
        Trust {
            mode: Mode::Token,
            secret: Some(secret.as_bytes().into()),
        }
    }

    /// The secret, for the gateway to send.
    pub fn secret(&self) -> Option<&[u8]> {
        self.secret.as_deref()
    }

    /// The authenticated caller of a request that reached a service: `Some(user)` when the
    /// gateway vouches for one, `None` in compat mode without one. 401 when the request did
    /// not come through the gateway, or lacks an identity in token mode.
    pub fn caller<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h str>, ApiError> {
        if let Some(secret) = &self.secret {
            let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes());
            if !given.is_some_and(|g| constant_time_eq(g, secret)) {
                return Err(ApiError::unauthorized(
                    "requests must come through the gateway",
                ));
            }
        }
        let user = headers
            .get(USER_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|u| !u.is_empty());
        match (user, self.mode) {
            (None, Mode::Token) => Err(ApiError::unauthorized("sign in first")),
            (u, _) => Ok(u),
        }
    }
}

/// Holds a claimed user id to the caller's: 403 when an authenticated caller claims to be
/// someone else (compat requests without a caller are taken at their word).
pub fn must_be(caller: Option<&str>, claimed: &str, what: &str) -> Result<(), ApiError> {
    match caller {
        Some(c) if c != claimed => Err(ApiError::forbidden(format!(
            "{what} must be the signed-in user"
        ))),
        _ => Ok(()),
    }
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn token_mode_needs_the_secret_and_a_user() {
        let t = Trust::token("0123456789abcdef");
        let ok = headers(&[(SECRET_HEADER, "0123456789abcdef"), (USER_HEADER, "u1")]);
        assert_eq!(t.caller(&ok).unwrap(), Some("u1"));
        let forged = headers(&[(SECRET_HEADER, "0123456789abcdeX"), (USER_HEADER, "u1")]);
        assert_eq!(t.caller(&forged).unwrap_err().status, 401);
        let direct = headers(&[(USER_HEADER, "u1")]);
        assert_eq!(t.caller(&direct).unwrap_err().status, 401);
        let anonymous = headers(&[(SECRET_HEADER, "0123456789abcdef")]);
        assert_eq!(t.caller(&anonymous).unwrap_err().status, 401);
    }

    #[test]
    fn compat_mode_takes_requests_at_their_word() {
        let env = Env::from_pairs("chat", &[("AUTH_MODE", "compat")]);
        let t = Trust::from_env(&env).unwrap();
        assert_eq!(t.caller(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            t.caller(&headers(&[(USER_HEADER, "u2")])).unwrap(),
            Some("u2")
        );
        assert!(must_be(None, "anyone", "senderId").is_ok());
        assert_eq!(
            must_be(Some("u1"), "u2", "senderId").unwrap_err().status,
            403
        );
    }

    #[test]
    fn configuration_is_checked() {
        let missing = Trust::from_env(&Env::from_pairs("chat", &[])).unwrap_err();
        assert_eq!(missing.var, "INTERNAL_SECRET");
        let short =
            Trust::from_env(&Env::from_pairs("chat", &[("INTERNAL_SECRET", "short")])).unwrap_err();
        assert_eq!(short.var, "INTERNAL_SECRET");
        assert!(
            !short.to_string().contains("short"),
            "the secret is not echoed"
        );
        let mode = Trust::from_env(&Env::from_pairs("chat", &[("AUTH_MODE", "open")])).unwrap_err();
        assert_eq!(mode.var, "AUTH_MODE");
    }
}
