//! Password hashing with argon2id (the OWASP parameters of the `argon2` crate's default).
//! Hashing is deliberately slow and memory-hungry, so it runs on one thread per core, off
//! the request threads: a burst of sign-ins queues here briefly instead of exhausting memory
//! or starving requests, and past a bounded queue it is answered 503.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use platform_core::sync;
use platform_core::ApiError;

pub(super) const PASSWORD_MIN: usize = 8;
pub(super) const PASSWORD_MAX: usize = 128;
/// Hashes waiting for a thread; past this a sign-in is answered 503 at once (each takes
/// tens of milliseconds, so a full queue is about a second of work per thread).
const QUEUE: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// Runs hashes on a few dedicated threads. Each hash needs 19 MiB of working memory; on
/// tokio's blocking pool every thread that ever hashed would keep its own freed 19 MiB in its
/// allocator arena (hundreds of MiB after a burst of sign-ins), while a fixed set of threads
/// bounds that to one block each.
#[derive(Clone)]
pub(super) struct Hasher {
    jobs: SyncSender<Job>,
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
pub(super) fn check(field: &str, password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) || password.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "{field} must be {PASSWORD_MIN}-{PASSWORD_MAX} characters"
        )));
    }
    Ok(())
}

impl Hasher {
    /// One hashing thread per core, fed from a bounded queue.
    pub(super) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..cores {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    let next = sync::lock(&queue).recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Hasher { jobs }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                let mut e = ApiError::new(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "too many sign-ins at once; retry shortly",
                );
                e.retry_after = Some(1);
                e
            }
            TrySendError::Disconnected(_) => {
                ApiError::internal("password hashing", "no hashing thread is running")
            }
        })?;
        result
            .await
            .map_err(|e| ApiError::internal("password hashing", e))
    }

    pub(super) async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_now(&password))
            .await?
            .map_err(|e| ApiError::internal("password hashing", e))
    }

    /// Whether `password` matches `phc`; with no stored hash, spends the same time and says no.
    pub(super) async fn verify(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, ApiError> {
        self.run(move || match phc {
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
