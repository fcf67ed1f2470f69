//! CORS for browser clients: allowed origins are echoed (with credentials), preflights are
//! answered here without bothering an upstream.

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use platform_core::{Body, Response};

const ALLOW_METHODS: HeaderValue =
    HeaderValue::from_static("GET, POST, PATCH, PUT, DELETE, OPTIONS");
const ALLOW_HEADERS: HeaderValue =
    HeaderValue::from_static("content-type, authorization, x-request-id, prefer");
const EXPOSE: HeaderValue = HeaderValue::from_static("x-request-id, link, retry-after, location");

#[derive(Debug, Clone)]
pub struct Cors {
    any: bool,
    origins: Vec<String>,
}

impl Cors {
    pub fn new(origins: &[String]) -> Self {
        Cors {
            any: origins.iter().any(|o| o == "*"),
            origins: origins.to_vec(),
        }
    }

    fn allowed<'a>(&self, origin: Option<&'a HeaderValue>) -> Option<&'a HeaderValue> {
        let origin = origin?;
        let ok = self.any
            || origin
                .to_str()
                .map(|o| self.origins.iter().any(|a| a == o))
                .unwrap_or(false);
        ok.then_some(origin)
    }

    /// The answer to a preflight request, if this is one.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut res = Response::new(Body::Empty);
        *res.status_mut() = StatusCode::NO_CONTENT;
        if let Some(origin) = self.allowed(headers.get(header::ORIGIN)) {
            let h = res.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
            let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                requested.unwrap_or(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        res.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("origin"));
        Some(res)
    }

    /// Adds the CORS headers of an actual response, replacing any an upstream set.
    pub fn decorate(&self, origin: Option<&HeaderValue>, res: &mut Response) {
        let Some(origin) = self.allowed(origin) else {
            return;
        };
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE);
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn preflight_for_allowed_and_refused_origins() {
        let cors = Cors::new(&["http://app.example".into()]);
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
        assert!(cors
            .preflight(
                &Method::OPTIONS,
                &headers(&[("origin", "http://app.example")])
            )
            .is_none());
    }

    #[test]
    fn wildcard_echoes_origin() {
        let cors = Cors::new(&["*".into()]);
        let mut res = Response::new(Body::Empty);
        cors.decorate(Some(&HeaderValue::from_static("http://x")), &mut res);
        assert_eq!(
            res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://x"
        );
        let mut res = Response::new(Body::Empty);
        cors.decorate(None, &mut res);
        assert!(res.headers().is_empty());
    }
}
