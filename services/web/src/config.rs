//! The web server's settings, read once from its command line or environment and checked
//! before binding (their names, defaults and meanings are in `platform_core::settings`).

use std::net::SocketAddr;
use std::path::PathBuf;

use platform_core::config::{ConfigError, Env, Listen};

/// The value of `GATEWAY_PUBLIC_URL` that makes the UI call the origin it was loaded from
/// (for a reverse proxy that serves the UI and the API under one host).
pub const SAME_ORIGIN: &str = "same-origin";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    /// The built UI: a directory holding `index.html`, canonicalised.
    pub static_dir: PathBuf,
    /// The gateway as browsers reach it, handed to the UI by `/config.json`; empty means
    /// the UI's own origin.
    pub api_url: String,
    /// STUN/TURN servers for calls, handed to the UI as RTCPeerConnection's `iceServers`.
    pub ice: IceServers,
    pub max_connections: usize,
}

/// `ICE_SERVERS` (comma-separated `stun:`, `turn:` or `turns:` URLs) and the TURN
/// credentials `ICE_USERNAME` / `ICE_CREDENTIAL`. Browsers get them from `/config.json`,
/// so the credentials are public: use a TURN server's short-lived or restricted ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServers {
    pub urls: Vec<String>,
    pub username: Option<String>,
    pub credential: Option<String>,
}

const MAX_ICE_SERVERS: usize = 8;
const MAX_ICE_FIELD: usize = 512;

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Config {
            listen: Listen::from_env(env)?,
            static_dir: static_dir(env)?,
            api_url: api_url(env)?,
            ice: ice_servers(env)?,
            max_connections: env.number("MAX_CONNECTIONS", 1, 1_000_000)?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen.addr()
    }
}

/// `STATIC_DIR` must be a directory with an `index.html`: a missing build is reported at
/// start-up rather than as a blank page.
fn static_dir(env: &Env) -> Result<PathBuf, ConfigError> {
    let raw = env.string("STATIC_DIR");
    let bad = |reason: String| ConfigError {
        var: "STATIC_DIR".into(),
        value: raw.clone(),
        reason,
    };
    let dir = std::fs::canonicalize(&raw).map_err(|e| {
        bad(format!(
            "{e} (build the UI first: cd frontend && npm ci && npm run build)"
        ))
    })?;
    if !dir.join("index.html").is_file() {
        return Err(bad(
            "no index.html in it (build the UI first: cd frontend && npm ci && npm run build)"
                .into(),
        ));
    }
    Ok(dir)
}

/// `GATEWAY_PUBLIC_URL`: `http(s)://host[:port]` with no path, or `same-origin`. It ends up
/// in the page's Content-Security-Policy, so anything else is refused.
fn api_url(env: &Env) -> Result<String, ConfigError> {
    const VAR: &str = "GATEWAY_PUBLIC_URL";
    if env.raw(VAR).as_deref() == Some(SAME_ORIGIN) {
        return Ok(String::new());
    }
    let raw = env.url(VAR, &["http", "https"])?;
    let url = raw.trim_end_matches('/');
    let authority = url.split_once("://").map(|(_, a)| a).unwrap_or("");
    let authority_ok = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
    if !authority_ok {
        return Err(ConfigError {
            var: VAR.into(),
            value: raw.clone(),
            reason: format!("expected http(s)://host[:port] with no path, or {SAME_ORIGIN}"),
        });
    }
    Ok(url.to_string())
}

fn ice_servers(env: &Env) -> Result<IceServers, ConfigError> {
    let bad = |var: &str, value: &str, reason: &str| ConfigError {
        var: var.into(),
        value: value.into(),
        reason: reason.into(),
    };
    let raw = env.string("ICE_SERVERS");
    let urls: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect();
    if urls.len() > MAX_ICE_SERVERS {
        return Err(bad("ICE_SERVERS", &raw, "at most 8 URLs"));
    }
    for u in &urls {
        let scheme_ok = ["stun:", "turn:", "turns:"]
            .iter()
            .any(|s| u.starts_with(s));
        let chars_ok =
            u.len() <= MAX_ICE_FIELD && u.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
        if !scheme_ok || !chars_ok {
            return Err(bad(
                "ICE_SERVERS",
                u,
                "expected stun:, turn: or turns: URLs, comma-separated",
            ));
        }
    }
    let field = |var: &str| -> Result<Option<String>, ConfigError> {
        match env.raw(var) {
            Some(v) if v.len() > MAX_ICE_FIELD || v.chars().any(char::is_control) => {
                Err(bad(var, &v, "at most 512 printable characters"))
            }
            other => Ok(other),
        }
    };
    let (username, credential) = (field("ICE_USERNAME")?, field("ICE_CREDENTIAL")?);
    if username.is_some() != credential.is_some() {
        return Err(bad(
            "ICE_CREDENTIAL",
            "",
            "ICE_USERNAME and ICE_CREDENTIAL go together",
        ));
    }
    Ok(IceServers {
        urls,
        username,
        credential,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_dist(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("web-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "<!doctype html>").unwrap();
        let dir = dir.to_string_lossy().into_owned();
        let mut all = vec![("STATIC_DIR", dir.as_str())];
        all.extend_from_slice(pairs);
        Config::from_env(&Env::from_pairs("web", &all))
    }

    #[test]
    fn it_reads_exactly_its_declared_settings() {
        let dir = std::env::temp_dir().join(format!("web-reads-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "<!doctype html>").unwrap();
        let dir = dir.to_string_lossy().into_owned();
        platform_core::settings::assert_reads("web", &[("STATIC_DIR", &dir)], Config::from_env);
    }

    #[test]
    fn defaults() {
        let c = with_dist(&[]).unwrap();
        assert_eq!(c.listen.port, 8080);
        assert_eq!(c.api_url, "http://localhost:3000");
    }

    #[test]
    fn gateway_url_is_checked() {
        assert_eq!(
            with_dist(&[("GATEWAY_PUBLIC_URL", "https://chat.example.org/")])
                .unwrap()
                .api_url,
            "https://chat.example.org"
        );
        assert_eq!(
            with_dist(&[("GATEWAY_PUBLIC_URL", "same-origin")])
                .unwrap()
                .api_url,
            ""
        );
        for bad in [
            "ftp://x",
            "http://x/api",
            "http://x?y",
            "http://x y",
            "x:3000",
        ] {
            let e = with_dist(&[("GATEWAY_PUBLIC_URL", bad)]).unwrap_err();
            assert_eq!(e.var, "GATEWAY_PUBLIC_URL", "{bad}");
        }
    }

    #[test]
    fn ice_servers_are_checked() {
        let c = with_dist(&[
            (
                "ICE_SERVERS",
                "stun:stun.example.org:3478, turn:turn.example.org?transport=tcp",
            ),
            ("ICE_USERNAME", "u"),
            ("ICE_CREDENTIAL", "p"),
        ])
        .unwrap();
        assert_eq!(c.ice.urls.len(), 2);
        assert_eq!(c.ice.credential.as_deref(), Some("p"));
        assert!(with_dist(&[]).unwrap().ice.urls.is_empty());
        for (var, value) in [
            ("ICE_SERVERS", "http://x"),
            ("ICE_SERVERS", "stun:a\"b"),
            ("ICE_CREDENTIAL", "p"),
        ] {
            assert_eq!(with_dist(&[(var, value)]).unwrap_err().var, var, "{value}");
        }
    }

    #[test]
    fn static_dir_needs_an_index() {
        let e = Config::from_env(&Env::from_pairs(
            "web",
            &[("STATIC_DIR", "/nonexistent/dist")],
        ))
        .unwrap_err();
        assert_eq!(e.var, "STATIC_DIR");
        let empty = std::env::temp_dir().join(format!("web-empty-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let e = Config::from_env(&Env::from_pairs(
            "web",
            &[("STATIC_DIR", empty.to_string_lossy().as_ref())],
        ))
        .unwrap_err();
        assert!(e.reason.contains("index.html"));
    }
}
