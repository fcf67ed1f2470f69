//! Build script: the commit being built, as `BUILD_COMMIT` for [`platform_core::build`]. From
//! `CHAT_BUILD_COMMIT` when set (image builds, which have no `.git`), else from git, else
//! `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Reruns when the checked-out commit changes: HEAD names the branch, the branch's file (or
/// `packed-refs`) names the commit. In a worktree HEAD is in the worktree's git directory and
/// the refs in the common one. Only files that exist are named: cargo reruns the script at
/// every build for a missing one.
fn watch_head() {
    let dir = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from);
    let common =
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]).map(PathBuf::from);
    let (Some(dir), Some(common)) = (dir, common) else {
        return;
    };
    let watch = |p: &Path| {
        if p.is_file() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    };
    let head = dir.join("HEAD");
    watch(&head);
    if let Some(branch) = std::fs::read_to_string(&head)
        .ok()
        .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
    {
        watch(&common.join(branch));
    }
    watch(&common.join("packed-refs"));
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CHAT_BUILD_COMMIT");
    let commit = match std::env::var("CHAT_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            watch_head();
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=BUILD_COMMIT={commit}");
}
