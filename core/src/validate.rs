//! Field rules of the contract shared by the services: user ids, display names, UUIDs in paths.

use uuid::Uuid;

use crate::error::ApiError;

pub const USER_ID_MAX: usize = 128;
pub const DISPLAY_NAME_MAX: usize = 100;

/// User ids: 1–128 characters of `A-Z a-z 0-9 . _ : @ -`.
pub fn user_id(field: &str, v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= USER_ID_MAX
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} must be 1-{USER_ID_MAX} characters of A-Z a-z 0-9 . _ : @ -"
        )))
    }
}

/// PostgreSQL text cannot hold NUL: refuse it at the door rather than fail at the insert.
pub fn no_nul(field: &str, v: &str) -> Result<(), ApiError> {
    if v.contains('\0') {
        Err(ApiError::bad_request(format!(
            "{field} must not contain NUL characters"
        )))
    } else {
        Ok(())
    }
}

/// The same for every string and key of a JSON document (stored as jsonb).
pub fn json_no_nul(field: &str, v: &serde_json::Value) -> Result<(), ApiError> {
    match v {
        serde_json::Value::String(s) => no_nul(field, s),
        serde_json::Value::Array(a) => a.iter().try_for_each(|x| json_no_nul(field, x)),
        serde_json::Value::Object(o) => o.iter().try_for_each(|(k, x)| {
            no_nul(field, k)?;
            json_no_nul(field, x)
        }),
        _ => Ok(()),
    }
}

/// Counts characters (not bytes): at most `max` as sent (the documents' `maxLength`), at
/// least `min` once trimmed (white space alone is not text); no NUL. The caller stores the
/// text trimmed ([`trimmed`]).
pub fn text_len(field: &str, v: &str, min: usize, max: usize) -> Result<(), ApiError> {
    no_nul(field, v)?;
    // Bytes bound characters from above: no count when the bytes already fit.
    let over = v.len() > max && v.chars().count() > max;
    let short = min > 0 && v.trim().chars().nth(min - 1).is_none();
    if over || short {
        Err(ApiError::bad_request(format!(
            "{field} must be {min}-{max} characters, {min} or more besides white space"
        )))
    } else {
        Ok(())
    }
}

/// `v` without leading and trailing whitespace, whose length [`text_len`] checks; no copy when
/// there is none.
pub fn trimmed(v: String) -> String {
    let t = v.trim();
    if t.len() == v.len() {
        v
    } else {
        t.to_owned()
    }
}

pub fn display_name(field: &str, v: &str) -> Result<(), ApiError> {
    text_len(field, v, 1, DISPLAY_NAME_MAX)
}

/// A user id taken from the path, percent-decoded first: browsers encode `@` and `:` there
/// (`encodeURIComponent`), and the id is the decoded text. No copy when nothing is encoded.
pub fn path_user_id<'a>(field: &str, v: &'a str) -> Result<std::borrow::Cow<'a, str>, ApiError> {
    let decoded = percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request(format!("{field} must be UTF-8, percent-encoded")))?;
    user_id(field, &decoded)?;
    Ok(decoded)
}

/// A UUID taken from the path: malformed is 400, as the contract says.
pub fn path_uuid(what: &str, v: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(v).map_err(|_| ApiError::bad_request(format!("{what} must be a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        for ok in ["user-1", "a", "x.y_z:w@v-1", &"a".repeat(128)] {
            assert!(user_id("userId", ok).is_ok(), "{ok}");
        }
        for bad in ["", " ", "user 1", "é", "a/b", &"a".repeat(129)] {
            assert!(user_id("userId", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_user_ids_are_percent_decoded() {
        assert_eq!(path_user_id("userId", "a%40b%3Ac").unwrap(), "a@b:c");
        assert_eq!(path_user_id("userId", "plain").unwrap(), "plain");
        for bad in ["a%2Fb", "%FF", "a%20b", ""] {
            assert!(path_user_id("userId", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lengths_count_characters_as_sent_and_need_text_once_trimmed() {
        assert!(text_len("body", "  ", 1, 10).is_err());
        assert!(text_len("body", "", 1, 10).is_err());
        // The maximum counts characters as sent, padding included (JSON Schema's maxLength).
        assert!(text_len("body", "éé", 1, 2).is_ok());
        assert!(text_len("body", " é ", 1, 3).is_ok());
        assert!(text_len("body", " é ", 1, 2).is_err());
        assert!(text_len("body", "ééé", 1, 2).is_err());
        assert!(text_len("body", "\n\na\n\n", 1, 4).is_err());
        // The minimum counts the text without its padding.
        assert!(text_len("name", " a ", 2, 10).is_err());
        assert!(text_len("name", " ab ", 2, 10).is_ok());
    }

    #[test]
    fn nul_is_refused_everywhere() {
        assert!(text_len("displayName", "a\0b", 1, 10).is_err());
        assert!(no_nul("name", "ok").is_ok());
        let doc = serde_json::json!({"sdp": ["fine", {"k\u{0}": 1}]});
        assert!(json_no_nul("payload", &doc).is_err());
        assert!(json_no_nul("payload", &serde_json::json!({"a": ["b", 1, null]})).is_ok());
    }

    #[test]
    fn uuids() {
        assert!(path_uuid("id", "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b").is_ok());
        assert_eq!(path_uuid("id", "nope").unwrap_err().status, 400);
    }
}
