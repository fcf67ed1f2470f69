//! chatctl's one error type and its exit statuses: a bad setting or usage is 2, anything
//! that failed while doing the work is 1, with a message saying what.

use std::fmt;

use platform_core::config::ConfigError;
use platform_core::ApiError;

#[derive(Debug)]
pub(crate) enum Error {
    /// A setting's value is wrong (its reader's message names the variable and flag).
    Setting(ConfigError),
    /// The command line asks for nothing chatctl knows.
    Usage(String),
    /// The command could not be done: an unknown user, a refused value, a store's failure.
    Failed(String),
}

impl Error {
    pub(crate) fn status(&self) -> i32 {
        match self {
            Error::Setting(_) | Error::Usage(_) => 2,
            Error::Failed(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Setting(e) => write!(f, "{e}"),
            Error::Usage(m) | Error::Failed(m) => f.write_str(m),
        }
    }
}

/// The library's answers are the API's: their message is what the operator needs.
impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Failed(e.message.into_owned())
    }
}

/// `result.failed("what")`: a failure as "what: cause", with the cause's own causes (a
/// PostgreSQL error's detail is in its source).
pub(crate) trait Failed<T> {
    fn failed(self, what: &str) -> Result<T, Error>;
}

impl<T, E: std::error::Error> Failed<T> for Result<T, E> {
    fn failed(self, what: &str) -> Result<T, Error> {
        self.map_err(|e| {
            let mut message = format!("{what}: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                message.push_str(&format!(": {c}"));
                cause = c.source();
            }
            Error::Failed(message)
        })
    }
}

/// Writes `value` as one JSON line.
pub(crate) fn line(
    out: &mut impl std::io::Write,
    value: &impl serde::Serialize,
) -> Result<(), Error> {
    serde_json::to_writer(&mut *out, value).failed("standard output")?;
    out.write_all(b"\n").failed("standard output")
}
