//! Helpers the unit tests of several modules share.

use http::{HeaderMap, HeaderName, HeaderValue};

/// A header map of static name/value pairs.
pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
        .collect()
}
