//! The HTTP answers of the Engine.IO endpoint: protocol error bodies (with CORS headers, as
//! `crate::cors` decides them) and the query parameters it reads.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::StatusCode;

use crate::cors::Cors;
use crate::{Body, Response};

/// The protocol's error codes, answered with 400 and `{"code":N,"message":"..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EioError {
    UnknownTransport = 0,
    UnknownSid = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    Forbidden = 4,
    UnsupportedProtocolVersion = 5,
}

impl EioError {
    fn body(self) -> &'static str {
        match self {
            EioError::UnknownTransport => r#"{"code":0,"message":"Transport unknown"}"#,
            EioError::UnknownSid => r#"{"code":1,"message":"Session ID unknown"}"#,
            EioError::BadHandshakeMethod => r#"{"code":2,"message":"Bad handshake method"}"#,
            EioError::BadRequest => r#"{"code":3,"message":"Bad request"}"#,
            EioError::Forbidden => r#"{"code":4,"message":"Forbidden"}"#,
            EioError::UnsupportedProtocolVersion => {
                r#"{"code":5,"message":"Unsupported protocol version"}"#
            }
        }
    }

    pub(super) fn response(self, cors: &Cors, origin: Option<&HeaderValue>) -> Response {
        let status = if self == EioError::Forbidden {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut res = respond(
            status,
            "application/json",
            Bytes::from_static(self.body().as_bytes()),
        );
        cors.decorate(origin, &mut res);
        res
    }
}

pub(super) fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// The query parameters Engine.IO reads. `sid` borrows from the URI.
#[derive(Debug, Default)]
pub(super) struct Query<'a> {
    pub eio: Option<&'a str>,
    pub transport: Option<&'a str>,
    pub sid: Option<&'a str>,
}

pub(super) fn parse_query(q: Option<&str>) -> Query<'_> {
    let mut out = Query::default();
    for pair in q.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "EIO" => out.eio = Some(v),
            "transport" => out.transport = Some(v),
            "sid" => out.sid = Some(v),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query() {
        let q = parse_query(Some("EIO=4&transport=polling&t=x&sid=abc"));
        assert_eq!(q.eio, Some("4"));
        assert_eq!(q.transport, Some("polling"));
        assert_eq!(q.sid, Some("abc"));
        let q = parse_query(None);
        assert!(q.eio.is_none());
    }
}
