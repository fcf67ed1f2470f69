//! JSON on the request path: bodies are checked for a JSON content type and parsed in place
//! with simd-json; responses are serialised once into a buffer.

use http::{header, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;
use crate::{Body, Response};

/// Refuses a body that is not declared as JSON (415).
pub fn require_json(headers: &http::HeaderMap) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime
                    .get(..12)
                    .is_some_and(|p| p.eq_ignore_ascii_case("application/"))
                    && mime.ends_with("+json"))
        })
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type must be application/json",
        ))
    }
}

/// Parses a JSON document in place. Malformed JSON and wrong types are 400.
pub fn parse<T: DeserializeOwned>(buf: &mut [u8]) -> Result<T, ApiError> {
    if buf.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request(
            "request body must be a JSON document",
        ));
    }
    decode(buf).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Parses JSON in place with simd-json, reusing this thread's parse buffers: allocating the
/// tape and string buffers for every small document cost more than the parse itself, and
/// made simd-json slower than serde_json on a send body (bench `json/parse_send_body`). Every
/// hot-path parse goes through here (request bodies, events between instances, stream
/// entries).
pub fn decode<T: DeserializeOwned>(buf: &mut [u8]) -> simd_json::Result<T> {
    thread_local! {
        static BUFFERS: std::cell::RefCell<simd_json::Buffers> =
            std::cell::RefCell::new(simd_json::Buffers::new(4096));
    }
    BUFFERS.with_borrow_mut(|b| simd_json::serde::from_slice_with_buffers(buf, b))
}

/// Reads (bounded), checks and parses a request's JSON body.
pub async fn read_body<T: DeserializeOwned>(
    headers: &http::HeaderMap,
    body: hyper::body::Incoming,
    limit: usize,
) -> Result<T, ApiError> {
    require_json(headers)?;
    let mut buf = crate::body::read_limited(headers, body, limit).await?;
    parse(&mut buf)
}

/// A JSON response with the given status.
pub fn respond<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => respond_raw(status, bytes),
        Err(e) => ApiError::internal("serialising a response", e).into_response(),
    }
}

/// A response from already-encoded JSON bytes.
pub fn respond_raw(status: StatusCode, bytes: impl Into<bytes::Bytes>) -> Response {
    let mut res = Response::new(Body::from(bytes.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase")]
    struct Send {
        sender_id: String,
        body: String,
        client_message_id: Option<String>,
    }

    #[test]
    fn parses_camel_case() {
        let mut b = br#"{"senderId":"u-1","body":"hi \u00e9","clientMessageId":null}"#.to_vec();
        let s: Send = parse(&mut b).unwrap();
        assert_eq!(s.sender_id, "u-1");
        assert_eq!(s.body, "hi é");
        assert!(s.client_message_id.is_none());
    }

    /// Any number JSON allows is accepted in a field the server ignores: integers past 64
    /// bits, tiny and huge exponents (schemathesis sends them as extra properties).
    #[test]
    fn numbers_of_any_size_are_json() {
        for extra in [
            "6423620141754799084463061324630327296",
            "-6423620141754799084463061324630327296",
            "-3.3982624937980414e-239",
            "6.014548937033681e+16",
            "1e308",
            "[[false, 102, -5.632092396342768e+16]]",
        ] {
            let mut b = format!(r#"{{"x":{extra},"senderId":"u","body":"b"}}"#).into_bytes();
            let s: Result<Send, _> = parse(&mut b);
            assert!(s.is_ok(), "{extra}: {:?}", s.err());
        }
    }

    #[test]
    fn malformed_and_wrong_types_are_400() {
        for raw in [
            &b"{"[..],
            b"",
            b"   ",
            b"[]",
            br#"{"senderId":1,"body":"x"}"#,
            br#"{"body":"x"}"#,
        ] {
            let mut b = raw.to_vec();
            let err = parse::<Send>(&mut b).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{raw:?}");
        }
    }

    #[test]
    fn content_type_rules() {
        let mut h = http::HeaderMap::new();
        assert_eq!(
            require_json(&h).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(require_json(&h).is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(require_json(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON"),
        );
        assert!(require_json(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
        assert!(require_json(&h).is_ok());
    }
}
