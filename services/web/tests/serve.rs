//! The web server over real HTTP: a temporary static directory shaped like a Vite build,
//! served by `web::run` on an ephemeral port.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use platform_core::config::Env;
use tokio_util::sync::CancellationToken;

struct Site {
    base: String,
    dir: PathBuf,
    stop: CancellationToken,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

const INDEX: &str = "<!doctype html><title>chat</title><div id=root></div>";
const SCRIPT: &str = "console.log('app')";

async fn site(env: &[(&str, &str)]) -> Site {
    let dir = std::env::temp_dir().join(format!("web-site-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), INDEX).unwrap();
    std::fs::write(dir.join("assets/index-AbC123xy.js"), SCRIPT).unwrap();
    std::fs::write(dir.join("assets/index-Zz99.css"), "body{}").unwrap();
    std::fs::write(dir.join("favicon.svg"), "<svg/>").unwrap();
    std::fs::write(dir.join(".env"), "SECRET=1").unwrap();
    // A secret beside the static directory, reachable only by escaping it.
    std::fs::write(dir.with_extension("secret"), "outside").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.with_extension("secret"), dir.join("leak.txt")).unwrap();

    let dir_s = dir.to_string_lossy().into_owned();
    let mut pairs = vec![("STATIC_DIR", dir_s.as_str()), ("HOST", "127.0.0.1")];
    pairs.extend_from_slice(env);
    let config = web::Config::from_env(&Env::from_pairs("web", &pairs)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(web::run(listener, config, stop.clone()));
    Site { base, dir, stop }
}

async fn request(site: &Site, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("{}{}", site.base, path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = client
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(site: &Site, path: &str) -> Reply {
    request(site, "GET", path, &[]).await
}

fn error_message(r: &Reply, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["statusCode"], status);
    v["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn index_is_served_uncached_with_a_policy() {
    let s = site(&[("GATEWAY_PUBLIC_URL", "http://gw.test:3000")]).await;
    for path in ["/", "/index.html"] {
        let r = get(&s, path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, INDEX);
        assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
        assert_eq!(r.header("cache-control"), "no-cache");
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        let csp = r.header("content-security-policy");
        assert!(
            csp.contains("connect-src 'self' http://gw.test:3000 ws://gw.test:3000"),
            "{csp}"
        );
    }
}

#[tokio::test]
async fn hashed_assets_are_cached_for_long() {
    let s = site(&[]).await;
    let r = get(&s, "/assets/index-AbC123xy.js").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, SCRIPT);
    assert_eq!(r.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(
        r.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    let r = get(&s, "/assets/index-Zz99.css").await;
    assert_eq!(r.header("content-type"), "text/css; charset=utf-8");
    let r = get(&s, "/favicon.svg").await;
    assert_eq!(r.header("content-type"), "image/svg+xml");
    assert_eq!(r.header("cache-control"), "no-cache");
}

#[tokio::test]
async fn page_routes_fall_back_to_the_app_shell() {
    let s = site(&[]).await;
    for path in ["/conversations/0190abc", "/signin", "/assets"] {
        let r = get(&s, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, INDEX, "{path}");
        assert_eq!(r.header("cache-control"), "no-cache");
    }
}

#[tokio::test]
async fn missing_assets_are_404() {
    let s = site(&[]).await;
    for path in ["/assets/index-old.js", "/assets/gone", "/robots.txt"] {
        let m = error_message(&get(&s, path).await, 404);
        assert!(m.contains("no such file"), "{path}: {m}");
    }
}

#[tokio::test]
async fn traversal_and_hidden_files_are_refused() {
    let s = site(&[]).await;
    let secret = s.dir.with_extension("secret");
    let name = secret.file_name().unwrap().to_string_lossy().into_owned();
    for path in [
        format!("/../{name}"),
        format!("/%2e%2e/{name}"),
        format!("/assets/%2E%2E/%2e%2e/{name}"),
        format!("/..%2f{name}"),
        "/assets/..%5c..%5cetc".to_string(),
    ] {
        let r = get(&s, &path).await;
        assert!(r.status == 400, "{path}: {} {}", r.status, r.body);
        assert!(!r.body.contains("outside"));
    }
    // A symlink out of the directory is not followed; a dotfile is not served.
    let r = get(&s, "/leak.txt").await;
    assert_eq!(r.status, 404);
    assert!(!r.body.contains("outside"));
    let r = get(&s, "/.env").await;
    assert_eq!(r.status, 404);
    assert!(!r.body.contains("SECRET"));
    let r = get(&s, &format!("/{}", "a".repeat(2000))).await;
    assert_eq!(r.status, 414);
    let _ = std::fs::remove_file(secret);
}

#[tokio::test]
async fn config_names_the_gateway() {
    let s = site(&[("GATEWAY_PUBLIC_URL", "https://api.example.org/")]).await;
    let r = get(&s, "/config.json").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("application/json"));
    assert_eq!(r.header("cache-control"), "no-cache");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"apiUrl": "https://api.example.org", "iceServers": []})
    );

    let s = site(&[
        ("GATEWAY_PUBLIC_URL", "same-origin"),
        ("ICE_SERVERS", "stun:s.example.org,turns:t.example.org:5349"),
        ("ICE_USERNAME", "user"),
        ("ICE_CREDENTIAL", "secret"),
    ])
    .await;
    let v: serde_json::Value = serde_json::from_str(&get(&s, "/config.json").await.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"apiUrl": "", "iceServers": [
            {"urls": ["stun:s.example.org"]},
            {"urls": ["turns:t.example.org:5349"], "username": "user", "credential": "secret"},
        ]})
    );
    let csp = get(&s, "/").await;
    assert!(csp
        .header("content-security-policy")
        .contains("connect-src 'self';"));
}

#[tokio::test]
async fn revalidation_and_methods() {
    let s = site(&[]).await;
    let first = get(&s, "/").await;
    let etag = first.header("etag").to_string();
    assert!(etag.starts_with('"'), "{etag}");
    let again = request(&s, "GET", "/", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let other = request(&s, "GET", "/", &[("if-none-match", "\"nope\"")]).await;
    assert_eq!(other.status, 200);

    let head = request(&s, "HEAD", "/assets/index-AbC123xy.js", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), SCRIPT.len().to_string());

    let post = request(&s, "POST", "/", &[]).await;
    error_message(&post, 405);
    assert_eq!(post.header("allow"), "GET, HEAD");
    error_message(&request(&s, "DELETE", "/config.json", &[]).await, 405);

    assert_eq!(get(&s, "/healthz").await.status, 200);
    // Metrics are served on the metrics port (by the launch), not the public one.
    let public = get(&s, "/metrics").await;
    assert!(
        !public.body.contains("http_requests_total"),
        "{}",
        public.body
    );
    let metrics = platform_core::metrics::respond_process();
    let body = http_body_util::BodyExt::collect(metrics.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("http_requests_total"));
}
