//! The web server (port 8080): serves the built browser UI (`frontend/dist`) and
//! `GET /config.json`, which tells the bundle where the gateway is, so one build runs
//! anywhere.
//!
//! - [`config`]: settings from the environment.
//! - [`files`]: request path to file, content type and cache policy.
//!
//! Hashed assets are cached for a year, `index.html` is revalidated on every load (ETag),
//! a path that is not a file gets the app shell (client-side routes), a missing asset is 404,
//! and a path that would leave the static directory is 400. It also answers `/healthz`
//! (`/metrics` is on the metrics port).

pub mod config;
pub mod files;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use platform_core::dispatch;
use platform_core::router::{Match, Router};
use platform_core::server::{self, Handler, ServeOptions};
use platform_core::{health, json, ApiError, Body, Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

platform_core::route_labels! {
    /// What a request is for, each also its metric label: the routes of the table, then the
    /// static files that answer whatever the table does not take.
    enum Route {
        Health = "healthz",
        ClientConfig = "config",
        Asset = "asset",
        Page = "page",
    }
}

struct State {
    root: PathBuf,
    router: Router<Route>,
    client_config: bytes::Bytes,
    csp: HeaderValue,
    metrics: platform_core::metrics::Metrics,
}

#[derive(Clone)]
pub struct App {
    state: Arc<State>,
}

pub fn app(config: &Config) -> App {
    let router = Router::new()
        .route(Method::GET, "/healthz", Route::Health)
        .route(Method::GET, "/config.json", Route::ClientConfig);
    let client_config = serde_json::to_vec(&client_config(config))
        .unwrap_or_default()
        .into();
    App {
        state: Arc::new(State {
            root: config.static_dir.clone(),
            router,
            client_config,
            csp: content_security_policy(&config.api_url),
            metrics: platform_core::metrics::Metrics::new::<Route>("web"),
        }),
    }
}

pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), platform_core::Failure> {
    let opts = ServeOptions {
        max_connections: config.max_connections,
        ..ServeOptions::default()
    };
    tracing::info!(
        addr = ?listener.local_addr().ok(),
        dir = %config.static_dir.display(),
        api = %config.api_url,
        "web listening"
    );
    server::serve(listener, app(&config), opts, shutdown).await;
    Ok(())
}

/// What `/config.json` tells the UI: the gateway, and the ICE servers for calls (STUN
/// URLs in one entry, TURN URLs with their credentials in another).
fn client_config(config: &Config) -> serde_json::Value {
    let ice = &config.ice;
    let (turn, stun): (Vec<&String>, Vec<&String>) =
        ice.urls.iter().partition(|u| u.starts_with("turn"));
    let mut servers = Vec::new();
    if !stun.is_empty() {
        servers.push(serde_json::json!({ "urls": stun }));
    }
    if !turn.is_empty() {
        let mut entry = serde_json::json!({ "urls": turn });
        if let (Some(u), Some(c)) = (&ice.username, &ice.credential) {
            entry["username"] = u.as_str().into();
            entry["credential"] = c.as_str().into();
        }
        servers.push(entry);
    }
    serde_json::json!({ "apiUrl": config.api_url, "iceServers": servers })
}

/// The page may talk to itself and to the gateway (HTTP and WebSocket) and nothing else;
/// scripts only from the site (everything is bundled). Images and media may also come from
/// the gateway: attachments are shown straight from their signed URLs there.
fn content_security_policy(api_url: &str) -> HeaderValue {
    let mut connect = String::from("'self'");
    let mut files = String::new();
    if !api_url.is_empty() {
        let ws = api_url
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        connect = format!("'self' {api_url} {ws}");
        files = format!(" {api_url}");
    }
    let policy = format!(
        "default-src 'self'; script-src 'self'; connect-src {connect}; img-src 'self' data: blob:{files}; \
         media-src 'self' blob: mediastream:{files}; style-src 'self' 'unsafe-inline'; object-src 'none'; \
         base-uri 'self'; frame-ancestors 'none'"
    );
    // The config check allows only URL characters, so this cannot fail; fall back to the
    // strictest policy rather than panic.
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'"))
}

impl Handler for App {
    async fn handle(&self, req: Request) -> Response {
        // Not `dispatch`: a path the table does not take is a file or a page, not a 404.
        dispatch::measured(&self.state.metrics, async {
            let (route, res) = self.route(&req).await;
            let mut res = res.unwrap_or_else(ApiError::into_response);
            res.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            (Some(route), res)
        })
        .await
    }
}

impl App {
    async fn route(&self, req: &Request) -> (Route, Result<Response, ApiError>) {
        let s = &*self.state;
        let path = req.uri().path();
        match s.router.at(req.method(), path) {
            Match::Found(route, _) => {
                let res = match route {
                    Route::Health => health::alive(),
                    Route::ClientConfig => {
                        let mut res = json::respond_raw(StatusCode::OK, s.client_config.clone());
                        res.headers_mut()
                            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                        res
                    }
                    // Not in the table: what it does not take.
                    Route::Asset | Route::Page => method_not_allowed(),
                };
                return (*route, Ok(res));
            }
            Match::MethodNotAllowed(allowed) => {
                return (
                    Route::Page,
                    Ok(ApiError::method_not_allowed(allowed).into_response()),
                )
            }
            Match::NotFound => {}
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return (Route::Page, Ok(method_not_allowed()));
        }
        let rel = match files::relative_path(path) {
            Ok(rel) => rel,
            Err(files::Refusal::TooLong) => {
                return (
                    Route::Page,
                    Err(ApiError::new(
                        StatusCode::URI_TOO_LONG,
                        "the path is too long",
                    )),
                )
            }
            Err(files::Refusal::Invalid(why)) => {
                return (Route::Page, Err(ApiError::bad_request(why)))
            }
        };
        let label = if files::is_asset(&rel) {
            Route::Asset
        } else {
            Route::Page
        };
        (label, self.serve_static(&rel, req.headers()).await)
    }

    /// The file at `rel`, or the app shell for a page route, or 404 for a missing file.
    async fn serve_static(&self, rel: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
        let s = &*self.state;
        if !rel.is_empty() && !files::is_hidden(rel) {
            if let Some(file) = open(&s.root, rel).await {
                return Ok(self.respond_file(rel, file, headers));
            }
        }
        if !rel.is_empty() && files::is_asset(rel) {
            return Err(ApiError::not_found(format!("no such file: /{rel}")));
        }
        match open(&s.root, "index.html").await {
            Some(file) => Ok(self.respond_file("index.html", file, headers)),
            None => Err(ApiError::unavailable(
                "serving index.html",
                "index.html is missing from the static directory",
            )),
        }
    }

    fn respond_file(&self, rel: &str, file: File, headers: &HeaderMap) -> Response {
        let not_modified = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim() == file.etag || t.trim() == "*")
            });
        let mut res = if not_modified {
            let mut res = Response::new(Body::Empty);
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            res
        } else {
            Response::new(Body::from(file.bytes))
        };
        let h = res.headers_mut();
        if !not_modified {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(files::content_type(rel)),
            );
        }
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(files::cache_control(rel)),
        );
        if let Ok(etag) = HeaderValue::from_str(&file.etag) {
            h.insert(header::ETAG, etag);
        }
        if rel == "index.html" {
            h.insert(header::CONTENT_SECURITY_POLICY, self.state.csp.clone());
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
        }
        res
    }
}

fn method_not_allowed() -> Response {
    ApiError::method_not_allowed(platform_core::router::Allowed::of(&[Method::GET])).into_response()
}

struct File {
    bytes: bytes::Bytes,
    etag: String,
}

/// Reads a regular file under `root`. A symlink pointing outside the static directory is
/// treated as missing, as is anything unreadable.
async fn open(root: &Path, rel: &str) -> Option<File> {
    let path = tokio::fs::canonicalize(root.join(rel)).await.ok()?;
    if !path.starts_with(root) {
        tracing::warn!(path = %path.display(), "refused a file outside the static directory");
        return None;
    }
    let meta = tokio::fs::metadata(&path).await.ok()?;
    if !meta.is_file() {
        return None;
    }
    let bytes = tokio::fs::read(&path).await.ok()?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Some(File {
        etag: format!("\"{:x}-{:x}\"", bytes.len(), mtime),
        bytes: bytes.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_allows_the_gateway_and_its_websocket() {
        let p = content_security_policy("https://api.example.org");
        let p = p.to_str().unwrap();
        assert!(p.contains("connect-src 'self' https://api.example.org wss://api.example.org;"));
        assert!(p.contains("img-src 'self' data: blob: https://api.example.org;"));
        assert!(p.contains("media-src 'self' blob: mediastream: https://api.example.org;"));
        let p = content_security_policy("");
        assert!(p.to_str().unwrap().contains("connect-src 'self';"));
        assert!(p.to_str().unwrap().contains("img-src 'self' data: blob:;"));
    }
}
