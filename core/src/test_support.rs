//! Helpers the unit tests of several modules share.

use http::{HeaderMap, HeaderName, HeaderValue};

crate::route_labels! {
    /// Routes of a made-up service, for tests of metrics.
    pub(crate) enum R {
        Send = "send",
        List = "list",
    }
}

/// A header map of static name/value pairs.
pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
        .collect()
}
