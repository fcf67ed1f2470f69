//! Records the commit the binaries are built from, for `--version`: `PLATFORM_COMMIT` is
//! `git rev-parse --short HEAD`, with ", dirty" when tracked files differ from it, or
//! "unknown" without git (a container build copies no `.git`).
//!
//! It runs again only when HEAD or the branch it names moves, not at every edit, so that
//! a change to any file does not rebuild every crate: "dirty" is as of that run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let commit = match git(&dir, &["rev-parse", "--short", "HEAD"]) {
        Some(hash) if !hash.is_empty() => {
            // HEAD itself, the branch it points at, and the packed refs that may hold it.
            let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
            watched.extend(git(&dir, &["symbolic-ref", "-q", "HEAD"]));
            for name in watched {
                if let Some(path) = git(&dir, &["rev-parse", "--git-path", &name]) {
                    let path = dir.join(path);
                    if path.exists() {
                        println!("cargo:rerun-if-changed={}", path.display());
                    }
                }
            }
            let dirty = git(&dir, &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{hash}, dirty")
            } else {
                hash
            }
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=PLATFORM_COMMIT={commit}");
}
