//! Browser CORS, decided once: the one `CORS_ORIGINS` parser ([`Origins`]) and the one
//! implementation of preflight answers and response headers ([`Cors`]), with the two
//! policies the platform answers by: the gateway's API ([`Policy::Api`]) and Engine.IO
//! long-polling ([`Policy::Polling`]).

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use crate::config::Env;
use crate::{Body, Response};

/// The setting every service reads its allowed origins from.
pub const VAR: &str = "CORS_ORIGINS";

/// Which browser origins may call: `CORS_ORIGINS`, comma-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origins {
    /// None (the setting held only separators): no origin is allowed.
    #[default]
    Off,
    /// `*` anywhere in the list: every origin.
    Any,
    /// These exact origins (`scheme://host[:port]`, compared byte for byte).
    List(Vec<String>),
}

impl Origins {
    /// `CORS_ORIGINS`, `*` (any origin) when unset or empty.
    pub fn from_env(env: &Env) -> Self {
        Self::parse(&env.string(VAR))
    }

    pub fn parse(raw: &str) -> Self {
        let list: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if list.iter().any(|o| o == "*") {
            Origins::Any
        } else if list.is_empty() {
            Origins::Off
        } else {
            Origins::List(list)
        }
    }

    fn listed(list: &[String], origin: &HeaderValue) -> bool {
        list.iter().any(|a| a.as_bytes() == origin.as_bytes())
    }
}

/// How allowed origins are answered, by kind of endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The gateway's API. A listed origin is echoed with credentials; [`Origins::Any`] is a
    /// literal `*` without them (echoing whichever origin asks, with credentials, would let
    /// any site make credentialed calls). Bearer tokens travel in a header, which `*`
    /// allows. A preflight is an `OPTIONS` with `Access-Control-Request-Method`, answered
    /// with the API's methods and the headers asked for; responses expose the headers
    /// clients read.
    Api,
    /// Engine.IO long-polling, as Socket.IO servers answer it: [`Origins::Any`] is `*`
    /// without credentials, listed origins are echoed with credentials; every `OPTIONS` is
    /// a preflight, allowing `GET`/`POST` and `content-type` (unless CORS is off).
    Polling,
}

const API_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, PATCH, PUT, DELETE, OPTIONS");
const API_HEADERS: HeaderValue =
    HeaderValue::from_static("content-type, authorization, x-request-id, prefer");
const API_EXPOSE: HeaderValue =
    HeaderValue::from_static("x-request-id, link, retry-after, location");
const POLLING_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, OPTIONS");
const POLLING_HEADERS: HeaderValue = HeaderValue::from_static("content-type");
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");
const TRUE: HeaderValue = HeaderValue::from_static("true");

/// Allowed origins and the policy they are answered by.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Origins,
    policy: Policy,
}

impl Default for Cors {
    /// Off: no CORS headers, same-origin clients only (or a proxy in front adds them).
    fn default() -> Self {
        Cors::new(Origins::Off, Policy::Polling)
    }
}

impl Cors {
    pub fn new(origins: Origins, policy: Policy) -> Self {
        Cors { origins, policy }
    }

    pub fn origins(&self) -> &Origins {
        &self.origins
    }

    /// The API's `Access-Control-Allow-Origin` for `origin`, and whether credentials go
    /// with it (only for a listed origin, echoed).
    fn allowed(&self, origin: Option<&HeaderValue>) -> Option<(HeaderValue, bool)> {
        let origin = origin?;
        match &self.origins {
            Origins::Off => None,
            Origins::Any => Some((HeaderValue::from_static("*"), false)),
            Origins::List(list) => Origins::listed(list, origin).then(|| (origin.clone(), true)),
        }
    }

    /// The answer to a preflight request, if this is one.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        let asked = match self.policy {
            // Only a browser's preflight: other OPTIONS requests go to the API like any other.
            Policy::Api => headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD),
            Policy::Polling => true,
        };
        if method != Method::OPTIONS || !asked {
            return None;
        }
        let origin = headers.get(header::ORIGIN);
        let mut res = Response::new(Body::Empty);
        *res.status_mut() = StatusCode::NO_CONTENT;
        match self.policy {
            Policy::Api => {
                let h = res.headers_mut();
                if let Some((allow, credentials)) = self.allowed(origin) {
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
                    if credentials {
                        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
                    }
                    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, API_METHODS);
                    let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
                    h.insert(
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        requested.unwrap_or(API_HEADERS),
                    );
                    h.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
                }
                h.insert(header::VARY, HeaderValue::from_static("origin"));
            }
            Policy::Polling => {
                self.decorate(origin, &mut res);
                if self.origins != Origins::Off {
                    let h = res.headers_mut();
                    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, POLLING_METHODS);
                    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, POLLING_HEADERS);
                    h.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
                }
            }
        }
        Some(res)
    }

    /// Adds the CORS headers of an actual response, given the request's `Origin`, replacing
    /// any that an upstream set.
    pub fn decorate(&self, origin: Option<&HeaderValue>, res: &mut Response) {
        match self.policy {
            Policy::Api => {
                let Some((allow, credentials)) = self.allowed(origin) else {
                    return;
                };
                let h = res.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
                h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, API_EXPOSE);
                if credentials {
                    h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
                    h.append(header::VARY, HeaderValue::from_static("origin"));
                }
            }
            Policy::Polling => {
                let h = res.headers_mut();
                match &self.origins {
                    Origins::Off => {}
                    Origins::Any => {
                        h.insert(
                            header::ACCESS_CONTROL_ALLOW_ORIGIN,
                            HeaderValue::from_static("*"),
                        );
                    }
                    Origins::List(list) => {
                        h.insert(header::VARY, HeaderValue::from_static("Origin"));
                        if let Some(o) = origin.filter(|o| Origins::listed(list, o)) {
                            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
                            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    fn api(raw: &str) -> Cors {
        Cors::new(Origins::parse(raw), Policy::Api)
    }

    #[test]
    fn parses_the_setting() {
        assert_eq!(Origins::parse("http://a, *"), Origins::Any);
        assert_eq!(Origins::parse(" , "), Origins::Off);
        assert_eq!(
            Origins::parse("http://a , http://b,"),
            Origins::List(vec!["http://a".into(), "http://b".into()])
        );
        assert_eq!(
            Origins::from_env(&Env::from_pairs("chat", &[])),
            Origins::Any
        );
        assert_eq!(
            Origins::from_env(&Env::from_pairs("chat", &[(VAR, "")])),
            Origins::Any
        );
    }

    #[test]
    fn api_preflight_for_allowed_and_refused_origins() {
        let cors = api("http://app.example");
        let ok = cors
            .preflight(
                &Method::OPTIONS,
                &headers(&[
                    ("origin", "http://app.example"),
                    ("access-control-request-method", "POST"),
                ]),
            )
            .unwrap();
        assert_eq!(ok.status(), 204);
        assert_eq!(
            ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://app.example"
        );
        let refused = cors
            .preflight(
                &Method::OPTIONS,
                &headers(&[
                    ("origin", "http://evil.example"),
                    ("access-control-request-method", "POST"),
                ]),
            )
            .unwrap();
        assert!(refused
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none());
        assert_eq!(refused.headers()[header::VARY], "origin");
        assert!(cors
            .preflight(
                &Method::OPTIONS,
                &headers(&[("origin", "http://app.example")])
            )
            .is_none());
    }

    #[test]
    fn api_wildcard_is_a_star_without_credentials() {
        let cors = api("*");
        let mut res = Response::new(Body::Empty);
        cors.decorate(Some(&HeaderValue::from_static("http://x")), &mut res);
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(res
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none());
        let pre = cors
            .preflight(
                &Method::OPTIONS,
                &headers(&[
                    ("origin", "http://x"),
                    ("access-control-request-method", "POST"),
                ]),
            )
            .unwrap();
        assert_eq!(pre.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(pre
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none());
        let mut res = Response::new(Body::Empty);
        cors.decorate(None, &mut res);
        assert!(res.headers().is_empty());
    }

    #[test]
    fn polling_any_is_a_star_without_credentials() {
        let cors = Cors::new(Origins::Any, Policy::Polling);
        let pre = cors.preflight(&Method::OPTIONS, &HeaderMap::new()).unwrap();
        assert_eq!(pre.status(), 204);
        let h = pre.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_METHODS],
            "GET, POST, OPTIONS"
        );
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
        assert!(cors.preflight(&Method::GET, &HeaderMap::new()).is_none());
    }

    #[test]
    fn polling_lists_and_off() {
        let cors = Cors::new(Origins::parse("http://a"), Policy::Polling);
        let mut res = Response::new(Body::Empty);
        cors.decorate(Some(&HeaderValue::from_static("http://b")), &mut res);
        assert_eq!(res.headers()[header::VARY], "Origin");
        assert!(res
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none());
        cors.decorate(Some(&HeaderValue::from_static("http://a")), &mut res);
        assert_eq!(
            res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://a"
        );
        assert_eq!(
            res.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
            "true"
        );
        let off = Cors::default()
            .preflight(&Method::OPTIONS, &headers(&[("origin", "http://a")]))
            .unwrap();
        assert_eq!(off.status(), 204);
        assert!(off.headers().is_empty());
    }
}
