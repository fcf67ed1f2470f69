//! What this build is: the version and commit `/metrics` reports as `build_info`.

/// The workspace's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit built (12 hex digits), `CHAT_BUILD_COMMIT` if the build set it, or `unknown`
/// where neither it nor git was at hand (see `core/build.rs`).
pub const COMMIT: &str = env!("BUILD_COMMIT");
