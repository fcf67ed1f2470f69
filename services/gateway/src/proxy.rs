//! Forwarding to an upstream over pooled keep-alive connections. Status, body and end-to-end
//! headers pass through unchanged; hop-by-hop headers do not. No answer in time is 504, no
//! connection is 502, an oversized body is 413 before anything is sent. WebSocket upgrades
//! are tunnelled byte for byte once the upstream agrees to switch protocols.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use platform_core::{body, ApiError, Body, Request, Response};

pub type HttpClient = Client<HttpConnector, Body>;

pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        // Shorter than the services' 30 s keep-alive idle limit, so the gateway drops an idle
        // connection before the other side does and never sends on one being closed.
        .pool_idle_timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named.iter().chain(HOP_BY_HOP.iter()) {
        h.remove(n);
    }
}

fn is_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE).is_some()
        && h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

fn target(base: &Uri, req: &Request) -> Result<Uri, ApiError> {
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(
        pq.parse()
            .map_err(|_| ApiError::bad_request("malformed request target"))?,
    );
    Uri::from_parts(parts).map_err(|_| ApiError::bad_request("malformed request target"))
}

pub struct Forward<'a> {
    pub client: &'a HttpClient,
    pub base: &'a Uri,
    pub timeout: Duration,
    pub body_limit: usize,
}

impl Forward<'_> {
    pub async fn send(&self, req: Request) -> Result<Response, ApiError> {
        let uri = target(self.base, &req)?;
        if is_upgrade(req.headers()) {
            return self.tunnel(req, uri).await;
        }
        let client_addr = req
            .extensions()
            .get::<platform_core::server::Connection>()
            .map(|c| c.peer);
        let (mut parts, incoming) = req.into_parts();
        let bytes = body::read_limited(&parts.headers, incoming, self.body_limit).await?;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        if let Some(addr) = client_addr {
            if let Ok(v) = HeaderValue::from_str(&addr.ip().to_string()) {
                parts
                    .headers
                    .append(HeaderName::from_static("x-forwarded-for"), v);
            }
        }
        if !bytes.is_empty() || parts.headers.contains_key(header::CONTENT_LENGTH) {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
        parts.uri = uri;
        parts.version = http::Version::HTTP_11;
        let out = hyper::Request::from_parts(parts, Body::from(bytes));
        let res = self.exchange(out).await?;
        let (mut parts, incoming) = res.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(hyper::Response::from_parts(parts, Body::Stream(incoming)))
    }

    async fn exchange(
        &self,
        req: hyper::Request<Body>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ApiError> {
        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Err(_) => {
                tracing::warn!(upstream = %self.base, "upstream timed out");
                Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the upstream service did not answer in time",
                ))
            }
            Ok(Err(e)) => {
                tracing::warn!(upstream = %self.base, error = %e, "upstream unreachable");
                Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "the upstream service is unreachable",
                ))
            }
            Ok(Ok(res)) => Ok(res),
        }
    }

    /// Passes the upgrade request on; if the upstream switches protocols, joins the two
    /// upgraded connections.
    async fn tunnel(&self, mut req: Request, uri: Uri) -> Result<Response, ApiError> {
        let permit = req
            .extensions()
            .get::<platform_core::server::Connection>()
            .map(|c| c.permit.clone());
        let downstream = hyper::upgrade::on(&mut req);
        let (mut parts, _) = req.into_parts();
        parts.headers.remove(header::HOST);
        parts.uri = uri;
        let out = hyper::Request::from_parts(parts, Body::Empty);
        let mut res = self.exchange(out).await?;
        if res.status() != StatusCode::SWITCHING_PROTOCOLS {
            let (parts, incoming) = res.into_parts();
            return Ok(hyper::Response::from_parts(parts, Body::Stream(incoming)));
        }
        let upstream = hyper::upgrade::on(&mut res);
        tokio::spawn(async move {
            // The tunnel still counts against the gateway's connection cap.
            let _permit = permit;
            match tokio::try_join!(downstream, upstream) {
                Ok((down, up)) => {
                    let mut down = TokioIo::new(down);
                    let mut up = TokioIo::new(up);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
                        tracing::debug!(error = %e, "websocket tunnel closed");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        let (parts, _) = res.into_parts();
        Ok(hyper::Response::from_parts(parts, Body::Empty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn upgrades_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!is_upgrade(&h));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(is_upgrade(&h));
    }
}
