//! A fresh bucket on the S3 server the test command starts (`scripts/test-all.sh`: s3s-fs,
//! `E2E_S3_ENDPOINT`, `E2E_S3_ACCESS_KEY_ID`, `E2E_S3_SECRET_ACCESS_KEY`, `E2E_S3_DIR`), for
//! running the chat service on the S3 back end. s3s-fs keeps each bucket as a folder of its
//! root and each object as a file named by its key: a new bucket is a new folder, and whether
//! an object exists is whether its file does (what the server would answer, without a second
//! S3 client in the tests).

use std::path::{Path, PathBuf};

/// One test's bucket.
pub struct Bucket {
    pub name: String,
    pub endpoint: String,
    access_key_id: String,
    secret_access_key: String,
    dir: PathBuf,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the S3 tests with scripts/test-all.sh (it starts s3s-fs)")
    })
}

impl Bucket {
    /// A new, empty bucket.
    pub fn fresh() -> Bucket {
        let name = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        let dir = PathBuf::from(var("E2E_S3_DIR")).join(&name);
        std::fs::create_dir_all(&dir).expect("bucket folder");
        Bucket {
            name,
            endpoint: var("E2E_S3_ENDPOINT"),
            access_key_id: var("E2E_S3_ACCESS_KEY_ID"),
            secret_access_key: var("E2E_S3_SECRET_ACCESS_KEY"),
            dir,
        }
    }

    /// The chat service's settings for this bucket (add them to `Stack::chat_env`).
    pub fn chat_env(&self) -> Vec<(String, String)> {
        [
            ("S3_ENDPOINT", self.endpoint.as_str()),
            ("S3_BUCKET", self.name.as_str()),
            ("S3_REGION", "us-east-1"),
            ("S3_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("S3_SECRET_ACCESS_KEY", self.secret_access_key.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Whether an object is stored under `key` (`{2 hex}/{id}`).
    pub fn has(&self, key: &str) -> bool {
        self.dir.join(key).is_file()
    }

    /// The size of the object under `key`, if there is one.
    pub fn size(&self, key: &str) -> Option<u64> {
        std::fs::metadata(self.dir.join(key))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Every key in the bucket.
    pub fn keys(&self) -> Vec<String> {
        files_under(&self.dir)
    }
}

/// The files under `dir`, as paths relative to it (`/`-separated), sorted: a bucket's keys,
/// or the local attachment store's objects.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}
