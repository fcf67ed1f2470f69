//! An error with the step it happened in: what every service's `run()` stops with
//! ("migrations: ...", "Redis unreachable at ...: ...") and what background work that
//! retries logs (the worker's stream upkeep: "XPENDING: ..."). [`Context`] adds the step to
//! any error: `config.stores.postgres().context("connection pools")?`.

use std::borrow::Cow;
use std::fmt;

/// Any error, boxed (as in mini-redis).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub struct Failure {
    step: Cow<'static, str>,
    cause: BoxError,
}

impl Failure {
    pub fn new(step: impl Into<Cow<'static, str>>, cause: impl Into<BoxError>) -> Self {
        Failure {
            step: step.into(),
            cause: cause.into(),
        }
    }

    /// What was being done when it failed.
    pub fn step(&self) -> &str {
        &self.step
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.cause)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

/// Names the step an error happened in.
pub trait Context<T> {
    fn context(self, step: &'static str) -> Result<T, Failure>;
    /// The same with a step built only on failure.
    fn with_context<S: Into<Cow<'static, str>>>(
        self,
        step: impl FnOnce() -> S,
    ) -> Result<T, Failure>;
}

impl<T, E: Into<BoxError>> Context<T> for Result<T, E> {
    fn context(self, step: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(step, e))
    }

    fn with_context<S: Into<Cow<'static, str>>>(
        self,
        step: impl FnOnce() -> S,
    ) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(step(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_step_and_keeps_the_cause() {
        let r: Result<(), std::io::Error> = Err(std::io::Error::other("refused"));
        let e = r.context("connecting to Redis").unwrap_err();
        assert_eq!(e.to_string(), "connecting to Redis: refused");
        assert_eq!(e.step(), "connecting to Redis");
        assert!(std::error::Error::source(&e).is_some());
        let r: Result<(), &str> = Err("gone");
        let e = r.with_context(|| format!("step {}", 2)).unwrap_err();
        assert_eq!(e.to_string(), "step 2: gone");
    }
}
