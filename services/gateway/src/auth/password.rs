//! Password hashing with argon2id (the OWASP parameters of the `argon2` crate's default).
//! Hashing is deliberately slow and memory-hungry, so it runs on one thread per core, off
//! the request threads: a burst of sign-ins queues here briefly instead of exhausting memory
//! or starving requests, and past a bounded queue it is answered 503. The length rules
//! ([`check`]) and [`hash_now`] are public for `chatctl user create|reset-password`.

use std::cell::RefCell;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use platform_core::identity::constant_time_eq;
use platform_core::sync;
use platform_core::ApiError;

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
/// Hashes waiting for a thread; past this a sign-in is answered 503 at once (each takes
/// tens of milliseconds, so a full queue is about a second of work per thread).
const QUEUE: usize = 64;
/// The most working memory a stored hash may ask for (in 1 KiB blocks, 64 MiB): ours use the
/// default 19 MiB; a hash asking for more is refused rather than growing a thread's buffer.
const MAX_BLOCKS: usize = 64 * 1024;

type Job = Box<dyn FnOnce() + Send>;

/// Runs hashes on a few dedicated threads, each with one working buffer of its own that it
/// reuses for every hash. The crate's `hash_password` allocates its 19 MiB afresh each time,
/// and freed blocks that size stay in the allocator (glibc raises its mmap threshold after
/// the first free), so a burst of sign-ins left hundreds of MiB behind unless the allocator
/// was tuned; a buffer per thread bounds it to one block each, with any allocator.
#[derive(Clone)]
pub(super) struct Hasher {
    jobs: SyncSender<Job>,
}

thread_local! {
    /// The calling thread's argon2 working memory, kept between hashes.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Fills `out` with argon2(`password`, `salt`) under `params`, in the thread's buffer.
fn argon2_into(
    params: Params,
    algorithm: Algorithm,
    version: Version,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::password_hash::Error> {
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return Err(argon2::password_hash::Error::ParamValueInvalid(
            argon2::password_hash::errors::InvalidValue::TooLong,
        ));
    }
    let argon2 = Argon2::new(algorithm, version, params);
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::new());
        }
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(argon2::password_hash::Error::from)
    })
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

/// A new argon2id PHC string (the crate's default parameters and a random 16-byte salt), on
/// the calling thread: the gateway runs it on [`Hasher`]'s threads, `chatctl` directly.
pub fn hash_now(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| argon2::password_hash::Error::Crypto)?;
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(
        params.clone(),
        Algorithm::Argon2id,
        Version::V0x13,
        password.as_bytes(),
        &salt,
        &mut out,
    )?;
    let salt = SaltString::encode_b64(&salt)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to `phc` (any argon2 variant, version and parameters it names,
/// within [`MAX_BLOCKS`]); the outputs are compared in constant time.
fn verify_now(password: &str, phc: &str) -> bool {
    let check = || -> Result<bool, argon2::password_hash::Error> {
        let h = PasswordHash::new(phc)?;
        let algorithm = Algorithm::try_from(h.algorithm)?;
        let version = h
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let expected = h.hash.ok_or(argon2::password_hash::Error::Password)?;
        // Its m, t, p (and keyid, data) and the output's length.
        let params = Params::try_from(&h)?;
        let mut salt = [0u8; 64];
        let salt = h
            .salt
            .ok_or(argon2::password_hash::Error::SaltInvalid(
                argon2::password_hash::errors::InvalidValue::TooShort,
            ))?
            .decode_b64(&mut salt)?;
        let mut out = [0u8; Output::MAX_LENGTH];
        let out = &mut out[..expected.len()];
        argon2_into(params, algorithm, version, password.as_bytes(), salt, out)?;
        Ok(constant_time_eq(out, expected.as_bytes()))
    };
    check().unwrap_or(false)
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
    fn hashes_match_the_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Stored before the buffer per thread: made by `hash_password`.
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let old = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_now("correct horse", &old));
        assert!(!verify_now("correct horsE", &old));
        let new = hash_now("correct horse").unwrap();
        let parsed = PasswordHash::new(&new).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        // Other parameters, as the PHC string names them.
        let params = Params::new(1024, 1, 1, Some(16)).unwrap();
        let light = Argon2::new(Algorithm::Argon2i, Version::V0x10, params)
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_now("correct horse", &light));
        assert!(!verify_now("wrong horse!", &light));
        // More memory than a thread may keep: refused, not allocated.
        let huge = old.replace("m=19456", "m=1000000");
        assert!(!verify_now("correct horse", &huge));
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
