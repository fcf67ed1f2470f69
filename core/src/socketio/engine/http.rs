//! The HTTP answers of the Engine.IO endpoint: protocol error bodies, CORS headers and the
//! preflight response.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::StatusCode;

use super::config::Cors;
use crate::{Body, Response};

/// The protocol's error codes, answered with 400 and `{"code":N,"message":"..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioError {
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

    pub fn response(self, cors: &Cors, origin: Option<&HeaderValue>) -> Response {
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
        apply_cors(&mut res, cors, origin);
        res
    }
}

pub fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// Adds the CORS headers `cors` calls for, given the request's `Origin`.
pub fn apply_cors(res: &mut Response, cors: &Cors, origin: Option<&HeaderValue>) {
    let h = res.headers_mut();
    match cors {
        Cors::Off => {}
        Cors::Any => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        Cors::Origins(list) => {
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
            let allowed = origin.filter(|o| list.iter().any(|a| a.as_bytes() == o.as_bytes()));
            if let Some(o) = allowed {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
    }
}

/// The answer to an `OPTIONS` preflight.
pub fn preflight(cors: &Cors, origin: Option<&HeaderValue>) -> Response {
    let mut res = Response::new(Body::Empty);
    *res.status_mut() = StatusCode::NO_CONTENT;
    apply_cors(&mut res, cors, origin);
    if !matches!(cors, Cors::Off) {
        let h = res.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    res
}

/// The query parameters Engine.IO reads. `sid` borrows from the URI.
#[derive(Debug, Default)]
pub struct Query<'a> {
    pub eio: Option<&'a str>,
    pub transport: Option<&'a str>,
    pub sid: Option<&'a str>,
}

pub fn parse_query(q: Option<&str>) -> Query<'_> {
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
