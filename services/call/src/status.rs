//! The call status rules of the contract: which moves are allowed, which statuses are final.

/// Parses a status as clients send it; `active` is another name for `in_progress`.
pub(crate) fn parse(s: &str) -> Option<&'static str> {
    Some(match s {
        "ringing" => "ringing",
        "in_progress" | "active" => "in_progress",
        "declined" => "declined",
        "missed" => "missed",
        "ended" => "ended",
        _ => return None,
    })
}

pub(crate) fn is_final(s: &str) -> bool {
    matches!(s, "ended" | "declined" | "missed")
}

/// Whether `from` may become `to` (the same status again is handled by the caller as a no-op).
pub(crate) fn allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("ringing", "in_progress" | "declined" | "missed" | "ended") | ("in_progress", "ended")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_table() {
        assert_eq!(parse("active"), Some("in_progress"));
        assert_eq!(parse("paused"), None);
        for to in ["in_progress", "declined", "missed", "ended"] {
            assert!(allowed("ringing", to));
        }
        assert!(allowed("in_progress", "ended"));
        for (from, to) in [
            ("in_progress", "ringing"),
            ("in_progress", "declined"),
            ("in_progress", "missed"),
            ("ended", "in_progress"),
            ("missed", "ended"),
            ("declined", "ringing"),
        ] {
            assert!(!allowed(from, to), "{from} -> {to}");
        }
        assert!(is_final("missed") && is_final("declined") && is_final("ended"));
        assert!(!is_final("ringing") && !is_final("in_progress"));
    }
}
