//! The pure parts of the attachment routes: the file name and content type of an upload,
//! the `Range` of a download, and the `Content-Disposition` of the answer.

use std::ops::Range;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use platform_core::ApiError;

/// Longest file name kept, in characters.
pub(crate) const NAME_MAX: usize = 255;
/// Longest `Content-Type` accepted, in bytes.
pub(crate) const TYPE_MAX: usize = 255;

/// The `x-filename` header: percent-encoded UTF-8, any path dropped (the part after the last
/// `/` or `\`), no control characters, 1 to [`NAME_MAX`] characters. Any other Unicode is
/// kept as given.
pub(crate) fn file_name(raw: Option<&[u8]>) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("x-filename {why}"));
    let raw = raw.ok_or_else(|| bad("is required (the percent-encoded file name)"))?;
    let raw = std::str::from_utf8(raw).map_err(|_| bad("must be percent-encoded ASCII"))?;
    if raw.len() > NAME_MAX * 12 {
        return Err(bad(&format!("must be at most {NAME_MAX} characters")));
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad("must decode to UTF-8"))?;
    if decoded.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    let name = decoded
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim();
    if name.is_empty() || name == "." || name == ".." {
        return Err(bad("must name a file"));
    }
    if name.chars().count() > NAME_MAX {
        return Err(bad(&format!("must be at most {NAME_MAX} characters")));
    }
    Ok(name.to_owned())
}

/// The `Content-Type` header as stored: `application/octet-stream` when missing; otherwise
/// `type/subtype` (lower-cased) with any parameters as given. 400 when it does not parse or
/// is longer than [`TYPE_MAX`] bytes.
pub(crate) fn content_type(raw: Option<&[u8]>) -> Result<String, ApiError> {
    let Some(raw) = raw else {
        return Ok("application/octet-stream".to_owned());
    };
    let bad = || ApiError::bad_request("Content-Type must be type/subtype[; parameters]");
    if raw.len() > TYPE_MAX {
        return Err(ApiError::bad_request(format!(
            "Content-Type must be at most {TYPE_MAX} bytes"
        )));
    }
    let raw = std::str::from_utf8(raw).map_err(|_| bad())?.trim();
    let (essence, params) = match raw.split_once(';') {
        Some((e, p)) => (e.trim(), Some(p.trim())),
        None => (raw, None),
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let (ty, sub) = essence.split_once('/').ok_or_else(bad)?;
    if !token(ty) || !token(sub) {
        return Err(bad());
    }
    if params.is_some_and(|p| p.is_empty() || p.chars().any(char::is_control)) {
        return Err(bad());
    }
    let essence = essence.to_ascii_lowercase();
    Ok(match params {
        Some(p) => format!("{essence}; {p}"),
        None => essence,
    })
}

/// What a `Range` header asks of a `size`-byte object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// No range, or one we answer whole (several ranges, another unit, a malformed one).
    Whole,
    Part(Range<u64>),
    /// 416.
    Unsatisfiable,
}

/// One `bytes=` range (`a-b`, `a-`, `-n`); anything else is answered whole, as RFC 9110
/// allows a server to ignore a Range header.
pub(crate) fn range(header: Option<&[u8]>, size: u64) -> Wanted {
    let Some(spec) = header
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.trim().strip_prefix("bytes="))
    else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let num = |s: &str| {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            None => Wanted::Whole,
            Some(n) if n == 0 || size == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part(size.saturating_sub(n)..size),
        },
        (a, "") => match num(a) {
            Some(a) if a < size => Wanted::Part(a..size),
            Some(_) => Wanted::Unsatisfiable,
            None => Wanted::Whole,
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a > b => Wanted::Whole,
            (Some(a), Some(_)) if a >= size => Wanted::Unsatisfiable,
            (Some(a), Some(b)) => Wanted::Part(a..b.min(size - 1) + 1),
            _ => Wanted::Whole,
        },
    }
}

/// Characters left as they are in `filename*` (RFC 8187 attr-char).
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `inline` for images, audio and video (an `<img>`, `<audio>`, `<video>` shows them),
/// `attachment` for everything else; the name as `filename*` (UTF-8) with an ASCII
/// `filename` fallback for old clients.
pub(crate) fn disposition(content_type: &str, name: &str) -> String {
    let inline = ["image/", "audio/", "video/"]
        .iter()
        .any(|p| content_type.starts_with(p));
    let kind = if inline { "inline" } else { "attachment" };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = utf8_percent_encode(name, ATTR);
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let ok = |raw: &str| file_name(Some(raw.as_bytes())).unwrap();
        assert_eq!(ok("report.pdf"), "report.pdf");
        assert_eq!(ok("%E6%97%A5%E6%9C%AC%20%F0%9F%98%80.png"), "日本 😀.png");
        assert_eq!(ok("..%2F..%2Fetc%2Fpasswd"), "passwd");
        assert_eq!(ok("C%3A%5CUsers%5Cme%5Cphoto.jpg"), "photo.jpg");
        for bad in [
            "",
            "%2F",
            "a%2F",
            "..",
            "a%0Ab",
            "%FF",
            "%00x",
            &"a".repeat(256),
        ] {
            assert_eq!(
                file_name(Some(bad.as_bytes())).unwrap_err().status,
                400,
                "{bad}"
            );
        }
        assert_eq!(file_name(None).unwrap_err().status, 400);
        assert_eq!(ok(&"é".repeat(255)).chars().count(), 255);
    }

    #[test]
    fn content_types() {
        let ct = |raw: &str| content_type(Some(raw.as_bytes()));
        assert_eq!(content_type(None).unwrap(), "application/octet-stream");
        assert_eq!(ct("Image/PNG").unwrap(), "image/png");
        assert_eq!(
            ct("text/plain; charset=UTF-8").unwrap(),
            "text/plain; charset=UTF-8"
        );
        assert_eq!(ct("image/svg+xml").unwrap(), "image/svg+xml");
        for bad in [
            "",
            "text",
            "text/",
            "/plain",
            "te xt/plain",
            "text/plain;",
            "a/b\u{1}",
        ] {
            assert_eq!(ct(bad).unwrap_err().status, 400, "{bad:?}");
        }
        assert_eq!(
            ct(&format!("a/{}", "b".repeat(300))).unwrap_err().status,
            400
        );
    }

    #[test]
    fn ranges() {
        let r = |h: &str| range(Some(h.as_bytes()), 100);
        assert_eq!(range(None, 100), Wanted::Whole);
        assert_eq!(r("bytes=0-9"), Wanted::Part(0..10));
        assert_eq!(r("bytes=90-200"), Wanted::Part(90..100));
        assert_eq!(r("bytes=95-"), Wanted::Part(95..100));
        assert_eq!(r("bytes=-10"), Wanted::Part(90..100));
        assert_eq!(r("bytes=-500"), Wanted::Part(0..100));
        assert_eq!(r("bytes=100-"), Wanted::Unsatisfiable);
        assert_eq!(r("bytes=100-200"), Wanted::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Wanted::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Wanted::Whole);
        assert_eq!(r("items=0-1"), Wanted::Whole);
        assert_eq!(r("bytes=5-2"), Wanted::Whole);
        assert_eq!(r("bytes=x-2"), Wanted::Whole);
        assert_eq!(range(Some(b"bytes=-5"), 0), Wanted::Unsatisfiable);
    }

    #[test]
    fn dispositions() {
        assert_eq!(
            disposition("image/png", "a b.png"),
            "inline; filename=\"a b.png\"; filename*=UTF-8''a%20b.png"
        );
        assert_eq!(
            disposition("text/html", "日\"x.html"),
            "attachment; filename=\"__x.html\"; filename*=UTF-8''%E6%97%A5%22x.html"
        );
        assert!(disposition("video/mp4", "v.mp4").starts_with("inline;"));
        assert!(disposition("application/pdf", "v.pdf").starts_with("attachment;"));
    }
}
