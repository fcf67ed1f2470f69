//! `x-request-id`: echoed when the client sent a sane one, otherwise made here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");
const MAX_LEN: usize = 128;

/// Returns the request's id, inserting a fresh one when it is missing or unusable.
pub fn ensure(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(&HEADER) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= MAX_LEN && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    let id = fresh();
    headers.insert(HEADER, id.clone());
    id
}

/// A process-unique id: a random per-process prefix and a counter, so making one costs an
/// atomic increment rather than a call to the system's random source.
pub fn fresh() -> HeaderValue {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let u = uuid::Uuid::now_v7();
        u.as_u64_pair().1
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; 33];
    hex(&mut buf[..16], prefix);
    buf[16] = b'-';
    hex(&mut buf[17..], n);
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn hex(out: &mut [u8], v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_sane_ids_and_replaces_bad_ones() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(ensure(&mut h), "abc-123");
        h.insert(HEADER, HeaderValue::from_static("has space"));
        let id = ensure(&mut h);
        assert_ne!(id, "has space");
        assert_eq!(h.get(HEADER).unwrap(), &id);
    }

    #[test]
    fn fresh_ids_differ() {
        assert_ne!(fresh(), fresh());
        assert_eq!(fresh().len(), 33);
    }
}
