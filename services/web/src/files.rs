//! Mapping a request path onto the built UI: which file (never one outside the static
//! directory), its content type, and how long browsers may keep it.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Longest request path considered; anything longer is 414.
pub const MAX_PATH_BYTES: usize = 1024;

/// Why a path cannot name a file of the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Longer than [`MAX_PATH_BYTES`].
    TooLong,
    /// Bad percent-encoding, a NUL or backslash, or a `.`/`..` segment.
    Invalid(&'static str),
}

/// The path relative to the static directory, as `/`-joined segments ("" for the root).
///
/// Segments are decoded first, so `%2e%2e` is refused like `..`, and a decoded `/` or `\`
/// cannot smuggle a separator into a segment.
pub fn relative_path(url_path: &str) -> Result<String, Refusal> {
    if url_path.len() > MAX_PATH_BYTES {
        return Err(Refusal::TooLong);
    }
    let mut out = String::with_capacity(url_path.len());
    for raw in url_path.split('/') {
        let seg: Cow<str> = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| Refusal::Invalid("the path is not valid UTF-8"))?;
        if seg.is_empty() {
            continue;
        }
        if seg == "." || seg == ".." {
            return Err(Refusal::Invalid("the path leaves the site"));
        }
        if seg.contains(['/', '\\', '\0']) {
            return Err(Refusal::Invalid("the path has a forbidden character"));
        }
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(&seg);
    }
    Ok(out)
}

/// Hidden files (`.env`, `.git/…`) are never served, even if the build left one behind.
pub fn is_hidden(rel: &str) -> bool {
    rel.split('/').any(|s| s.starts_with('.'))
}

/// A path that names a file rather than a page of the app: a miss is 404, not the app shell.
/// Vite writes every hashed file under `assets/`; anything else with an extension is a file too.
pub fn is_asset(rel: &str) -> bool {
    rel.starts_with("assets/")
        || rel
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'))
}

/// Vite names everything under `assets/` by content hash, so those never change in place.
pub fn cache_control(rel: &str) -> &'static str {
    if rel.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        // index.html and unhashed files (favicon...) must be revalidated, or a deploy would
        // leave browsers on an old shell pointing at assets that no longer exist.
        "no-cache"
    }
}

pub fn content_type(rel: &str) -> &'static str {
    let ext = rel
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json; charset=utf-8",
        Some("webmanifest") => "application/manifest+json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/x-icon",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("ttf") => "font/ttf",
        Some("otf") => "font/otf",
        Some("wasm") => "application/wasm",
        Some("mp3") => "audio/mpeg",
        Some("ogg" | "oga") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised() {
        assert_eq!(relative_path("/").unwrap(), "");
        assert_eq!(relative_path("").unwrap(), "");
        assert_eq!(
            relative_path("/assets//index-abc.js").unwrap(),
            "assets/index-abc.js"
        );
        assert_eq!(relative_path("/a%20b.txt").unwrap(), "a b.txt");
        assert_eq!(relative_path("/conversations/").unwrap(), "conversations");
    }

    #[test]
    fn traversal_is_refused() {
        for p in [
            "/..",
            "/../etc/passwd",
            "/assets/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/..%2fetc",
            "/a/%2e/b",
            "/..%5c..%5cwindows",
            "/a%00.js",
            "/%ff.js",
        ] {
            assert!(
                matches!(relative_path(p), Err(Refusal::Invalid(_))),
                "{p} was accepted"
            );
        }
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(relative_path(&long), Err(Refusal::TooLong));
    }

    #[test]
    fn hidden_and_asset_paths() {
        assert!(is_hidden(".env"));
        assert!(is_hidden("assets/.git/config"));
        assert!(!is_hidden("assets/index-abc.js"));
        assert!(is_asset("assets/missing"));
        assert!(is_asset("favicon.ico"));
        assert!(is_asset("deep/path/x.png"));
        assert!(!is_asset("conversations/0190-abc"));
        assert!(!is_asset(""));
    }

    #[test]
    fn types_and_caching() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/index-AbC123.JS"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("assets/x.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("README"), "application/octet-stream");
        assert_eq!(content_type("dir.v2/file"), "application/octet-stream");
        assert!(cache_control("assets/index-abc.js").contains("immutable"));
        assert_eq!(cache_control("index.html"), "no-cache");
        assert_eq!(cache_control("favicon.svg"), "no-cache");
    }
}
