//! Signed download URLs of attachments, shared by the chat service (which serves them and
//! hands them out in answers) and the worker (which hydrates the messages it announces).
//!
//! A URL is `{base}/attachments/{id}?i={issuedMs}&e={expiresMs}&s={sig}` with
//! `sig = base64url(HMAC-SHA256(key, "{id}.{i}.{e}"))`. It carries no user: one message
//! event is encoded once for every member, so a removed member's URLs are stopped by the
//! conversation's `attachments_revoked_at` instead (a URL is honoured only when issued after
//! it; the chat service checks that when serving).

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::{ConfigError, Env};
use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted `ATTACHMENT_URL_SECRET`.
pub const SECRET_MIN: usize = 16;
/// Longest accepted `ATTACHMENT_URL_BASE` (it is repeated in every URL of every message).
const BASE_MAX: usize = 512;
/// What the key is derived for from `INTERNAL_SECRET`, so the same secret never signs two
/// kinds of things.
const DERIVATION: &[u8] = b"attachment-urls";

/// Signs and checks attachment URLs.
#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
    ttl_ms: i64,
    base: String,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlSigner")
            .field("ttl_ms", &self.ttl_ms)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The `i`, `e` and `s` of a URL's query, parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlQuery {
    pub issued: i64,
    pub expires: i64,
    sig: Vec<u8>,
}

impl UrlSigner {
    /// `ATTACHMENT_URL_SECRET` (at least 16 bytes) if set, else a key derived from
    /// `INTERNAL_SECRET`, else a random key with a warning (URLs then work only on the
    /// instance that signed them, and die at its restart). `ATTACHMENT_URL_TTL_SECS` and
    /// `ATTACHMENT_URL_BASE` (empty: paths relative to the API).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let ttl_secs: u64 = env.number("ATTACHMENT_URL_TTL_SECS", 1, 7 * 86_400)?;
        let base = env.string("ATTACHMENT_URL_BASE");
        if base.len() > BASE_MAX || base.chars().any(|c| c.is_control() || c == ' ') {
            return Err(ConfigError {
                var: "ATTACHMENT_URL_BASE".into(),
                value: base,
                reason: format!("must be at most {BASE_MAX} characters without spaces"),
            });
        }
        let base = base.trim_end_matches('/').to_owned();
        let ttl = Duration::from_secs(ttl_secs);
        if let Some(secret) = env.raw("ATTACHMENT_URL_SECRET") {
            if secret.len() < SECRET_MIN {
                return Err(ConfigError {
                    var: "ATTACHMENT_URL_SECRET".into(),
                    value: "<hidden>".into(),
                    reason: format!("must be at least {SECRET_MIN} characters"),
                });
            }
            return Ok(Self::new(derive(secret.as_bytes()), ttl, &base));
        }
        if let Some(secret) = env.raw("INTERNAL_SECRET") {
            return Ok(Self::new(derive(secret.as_bytes()), ttl, &base));
        }
        tracing::warn!(
            "neither ATTACHMENT_URL_SECRET nor INTERNAL_SECRET is set: attachment URLs are \
             signed with a random key of this process (one instance only; they stop working \
             at restart)"
        );
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            return Err(ConfigError {
                var: "ATTACHMENT_URL_SECRET".into(),
                value: String::new(),
                reason: "not set, and no randomness for a key of this process".into(),
            });
        }
        Ok(Self::new(key, ttl, &base))
    }

    pub fn new(key: [u8; 32], ttl: Duration, base: &str) -> Self {
        UrlSigner {
            key,
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            base: base.to_owned(),
        }
    }

    /// How long a URL stays valid, in milliseconds.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    fn mac(&self, id: &Uuid, issued: i64, expires: i64) -> HmacSha256 {
        // A 32-byte key always fits HMAC.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{id}.{issued}.{expires}").as_bytes());
        mac
    }

    /// The URL of `id` (its thumbnail when `thumbnail`) issued at `issued` (epoch ms).
    pub fn url(&self, id: &Uuid, issued: i64, thumbnail: bool) -> String {
        let expires = issued.saturating_add(self.ttl_ms);
        let sig = self.mac(id, issued, expires).finalize().into_bytes();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig);
        let tail = if thumbnail { "/thumbnail" } else { "" };
        format!(
            "{}/attachments/{id}{tail}?i={issued}&e={expires}&s={sig}",
            self.base
        )
    }

    /// Checks a parsed query for `id` at `now` (epoch ms): 403 when the signature does not
    /// match or the URL expired. Revocation is the caller's to check (it needs PostgreSQL).
    pub fn verify(&self, id: &Uuid, q: &UrlQuery, now: i64) -> Result<(), ApiError> {
        let valid = self
            .mac(id, q.issued, q.expires)
            .verify_slice(&q.sig)
            .is_ok();
        if !valid {
            return Err(ApiError::forbidden("the link's signature is not valid"));
        }
        if now >= q.expires {
            return Err(ApiError::forbidden(
                "the link expired: read the message again for a fresh one",
            ));
        }
        Ok(())
    }
}

impl UrlQuery {
    /// Reads `i`, `e` and `s` from a query string: 400 when one is missing or malformed.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let (mut i, mut e, mut s) = (None, None, None);
        for pair in query.unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "i" => i = Some(v),
                "e" => e = Some(v),
                "s" => s = Some(v),
                _ => {}
            }
        }
        let bad = || ApiError::bad_request("the link must carry i, e and s as issued");
        let number = |v: Option<&str>| {
            v.filter(|v| !v.is_empty() && v.len() <= 16 && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(bad)
        };
        let issued = number(i)?;
        let expires = number(e)?;
        let sig = s
            .filter(|s| s.len() <= 64)
            .and_then(|s| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .ok()
            })
            .ok_or_else(bad)?;
        Ok(UrlQuery {
            issued,
            expires,
            sig,
        })
    }
}

fn derive(secret: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(DERIVATION);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> UrlSigner {
        UrlSigner::new(derive(b"0123456789abcdef"), Duration::from_secs(60), "")
    }

    fn query_of(url: &str) -> UrlQuery {
        UrlQuery::parse(url.split_once('?').map(|(_, q)| q)).unwrap()
    }

    #[test]
    fn signs_and_verifies() {
        let s = signer();
        let id = Uuid::now_v7();
        let url = s.url(&id, 1_000, false);
        assert!(url.starts_with(&format!("/attachments/{id}?i=1000&e=61000&s=")));
        let q = query_of(&url);
        assert!(s.verify(&id, &q, 1_001).is_ok());
        assert_eq!(s.verify(&id, &q, 61_000).unwrap_err().status, 403);
        // Another id, a stretched expiry, another key: refused.
        assert_eq!(
            s.verify(&Uuid::now_v7(), &q, 1_001).unwrap_err().status,
            403
        );
        let mut longer = q.clone();
        longer.expires += 1_000_000;
        assert_eq!(s.verify(&id, &longer, 1_001).unwrap_err().status, 403);
        let other = UrlSigner::new(derive(b"another secret!!"), Duration::from_secs(60), "");
        assert_eq!(other.verify(&id, &q, 1_001).unwrap_err().status, 403);
        let thumb = s.url(&id, 1_000, true);
        assert!(thumb.starts_with(&format!("/attachments/{id}/thumbnail?i=1000")));
    }

    #[test]
    fn malformed_queries_are_400() {
        for q in [
            None,
            Some(""),
            Some("i=1&e=2"),
            Some("i=x&e=2&s=AA"),
            Some("i=1&e=-2&s=AA"),
            Some("i=1&e=2&s=!!"),
            Some("i=99999999999999999&e=2&s=AA"),
        ] {
            assert_eq!(UrlQuery::parse(q).unwrap_err().status, 400, "{q:?}");
        }
    }

    #[test]
    fn settings() {
        let env = Env::from_pairs(
            "chat",
            &[
                ("INTERNAL_SECRET", "0123456789abcdef"),
                ("ATTACHMENT_URL_BASE", "https://api.example/"),
                ("ATTACHMENT_URL_TTL_SECS", "5"),
            ],
        );
        let s = UrlSigner::from_env(&env).unwrap();
        assert_eq!(s.ttl_ms(), 5000);
        let id = Uuid::now_v7();
        // Derived from INTERNAL_SECRET the same way in every process.
        assert_eq!(
            s.url(&id, 7, false),
            signer_with_base(&s.base).url(&id, 7, false)
        );
        assert!(s
            .url(&id, 7, false)
            .starts_with("https://api.example/attachments/"));
        let short = Env::from_pairs("chat", &[("ATTACHMENT_URL_SECRET", "short")]);
        assert_eq!(
            UrlSigner::from_env(&short).unwrap_err().var,
            "ATTACHMENT_URL_SECRET"
        );
    }

    fn signer_with_base(base: &str) -> UrlSigner {
        UrlSigner::new(derive(b"0123456789abcdef"), Duration::from_secs(5), base)
    }
}
