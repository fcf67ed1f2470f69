//! The one HTTP error type: every failure a client sees is rendered here, in the contract's
//! body `{"statusCode", "error", "message"}`. Internal causes are logged once, at conversion,
//! and answered generically.

use std::borrow::Cow;
use std::fmt;

use http::{header, HeaderValue, StatusCode};

use crate::{Body, Response};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
    /// The methods the path takes, for a 405's `Allow`.
    pub allow: Option<crate::router::Allowed>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 429 with `Retry-After` (whole seconds, at least 1).
    pub fn rate_limited(message: impl Into<Cow<'static, str>>, retry: std::time::Duration) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, message);
        e.retry_after = Some(retry.as_millis().div_ceil(1000).max(1) as u64);
        e
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 405, with the `Allow` header RFC 9110 requires: the methods the path does take.
    pub fn method_not_allowed(allowed: crate::router::Allowed) -> Self {
        let mut e = Self::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        e.allow = Some(allowed);
        e
    }

    pub fn route_not_found(path: &str) -> Self {
        Self::not_found(format!("cannot {path}: no such route"))
    }

    /// A dependency (PostgreSQL, Redis, an upstream) failed: logged here with its context,
    /// answered with 503 and nothing internal.
    pub fn unavailable(context: &str, cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "a dependency is unavailable",
        );
        e.retry_after = Some(1);
        e
    }

    /// A bug: logged with its context, answered with a generic 500.
    pub fn internal(context: &str, cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    pub fn into_response(self) -> Response {
        let body = render(self.status, &self.message);
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(allowed) = self.allow {
            if let Ok(v) = HeaderValue::from_str(&allowed.header_value()) {
                h.insert(header::ALLOW, v);
            }
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// The contract's error body for any status.
pub fn render(status: StatusCode, message: &str) -> Vec<u8> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ErrorBody<'a> {
        status_code: u16,
        error: &'a str,
        message: &'a str,
    }
    let body = ErrorBody {
        status_code: status.as_u16(),
        error: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::unavailable("postgres pool", e)
    }
}

/// Whether a SQLSTATE describes the server's state rather than the query: a connection
/// lost (class 08), too few resources (53), an administrator or crash stopping the server
/// (57, e.g. 57P01 when PostgreSQL restarts under a running query, and 57014 a statement
/// timeout), a system error (58), a transaction rolled back for a conflict (40) or a read-only
/// server during a failover (25006). Those are 503; any other SQLSTATE is our bug (500).
fn server_state(code: &str) -> bool {
    ["08", "53", "57", "58", "40"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "25006"
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(code) if !server_state(code.code()) => Self::internal("postgres query", e),
            Some(_) => Self::unavailable("postgres", e),
            None => Self::unavailable("postgres connection", e),
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        Self::unavailable("redis", e)
    }
}

impl From<bb8::RunError<redis::RedisError>> for ApiError {
    fn from(e: bb8::RunError<redis::RedisError>) -> Self {
        Self::unavailable("redis pool", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nest_shape() {
        let v: serde_json::Value =
            serde_json::from_slice(&render(StatusCode::NOT_FOUND, "conversation x not found"))
                .unwrap();
        assert_eq!(v["statusCode"], 404);
        assert_eq!(v["error"], "Not Found");
        assert_eq!(v["message"], "conversation x not found");
    }

    #[test]
    fn only_query_errors_are_ours() {
        // admin shutdown (a restart under a running query), cannot connect now, statement
        // timeout, connection failure, deadlock, serialization, too many connections, read-only
        for code in [
            "57P01", "57P03", "57014", "08006", "40P01", "40001", "53300", "25006",
        ] {
            assert!(server_state(code), "{code}");
        }
        // syntax, undefined column, unique violation, invalid text representation
        for code in ["42601", "42703", "23505", "22P02"] {
            assert!(!server_state(code), "{code}");
        }
    }

    #[test]
    fn retry_after_is_set() {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "slow down");
        e.retry_after = Some(3);
        let res = e.into_response();
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[header::RETRY_AFTER], "3");
    }
}
