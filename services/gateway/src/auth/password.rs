//! Password hashing with argon2id (the OWASP parameters of the `argon2` crate's default).
//! Hashing is deliberately slow and memory-hungry, so it runs on blocking threads, a few at a
//! time: a burst of sign-ins queues here briefly instead of exhausting memory or starving
//! the request threads, and waits too long are answered 503.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use platform_core::ApiError;
use tokio::sync::Semaphore;

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
/// Longest wait for a hashing slot before answering 503.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Hasher {
    slots: Arc<Semaphore>,
}

/// A hash of a password nobody knows: unknown users are checked against it so that a wrong
/// user id takes as long to refuse as a wrong password.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut raw = [0u8; 24];
        let _ = getrandom::fill(&mut raw);
        hash_now(&format!("{raw:?}")).unwrap_or_default()
    })
}

fn hash_now(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| argon2::password_hash::Error::Crypto)?;
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn verify_now(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Length rules (characters, not bytes; spaces count and nothing is trimmed).
pub fn check(field: &str, password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) || password.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "{field} must be {PASSWORD_MIN}-{PASSWORD_MAX} characters"
        )));
    }
    Ok(())
}

impl Hasher {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Hasher {
            slots: Arc::new(Semaphore::new(cores)),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(QUEUE_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                let mut e = ApiError::new(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "too many sign-ins at once; retry shortly",
                );
                e.retry_after = Some(1);
                e
            })?
            .map_err(|e| ApiError::internal("hash slots", e))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| ApiError::internal("password hashing task", e))
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.blocking(move || hash_now(&password))
            .await?
            .map_err(|e| ApiError::internal("password hashing", e))
    }

    /// Whether `password` matches `phc`; with no stored hash, spends the same time and says no.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, ApiError> {
        self.blocking(move || match phc {
            Some(phc) => verify_now(&password, &phc),
            None => {
                verify_now(&password, decoy());
                false
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash_now("correct horse").unwrap();
        let b = hash_now("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify_now("correct horse", &a));
        assert!(!verify_now("correct horsE", &a));
        assert!(!verify_now("correct horse", "not a hash"));
    }

    #[test]
    fn lengths_are_checked_in_characters() {
        assert!(check("password", "1234567").is_err());
        assert!(check("password", "12345678").is_ok());
        assert!(check("password", &"é".repeat(PASSWORD_MAX)).is_ok());
        assert!(check("password", &"é".repeat(PASSWORD_MAX + 1)).is_err());
        assert!(check("password", "1234567\0").is_err());
    }
}
