//! The commit a deploy ships and where it stands in history. A release records its commit
//! on the `live` aliases, and deploy refuses a commit that is an ancestor of the one serving,
//! so a re-run of an old workflow run or deploys finishing out of order can't move an
//! environment backwards by accident (`rollback` is the way back).

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// The commit checked out in `repo` (`git rev-parse HEAD`), or `None` outside a git
/// checkout (a source archive, a scratch copy) or without git.
pub fn head(repo: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !sha.is_empty()).then_some(sha)
}

/// How `candidate` relates to `serving` in `repo`'s history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lineage {
    /// The same commit.
    Same,
    /// `candidate` is an ancestor of `serving`: deploying it would go backwards.
    Older,
    /// Anything else: a descendant, or on another line of history.
    NotOlder,
    /// One of the two is not in `repo` (a shallow clone, a commit never fetched).
    Unknown,
}

/// Where `candidate` stands relative to `serving` (`git merge-base --is-ancestor`).
pub fn lineage(repo: &Path, candidate: &str, serving: &str) -> Result<Lineage> {
    if candidate == serving {
        return Ok(Lineage::Same);
    }
    let status = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["merge-base", "--is-ancestor", candidate, serving])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running git merge-base (is git installed?)")?;
    // 0: an ancestor; 1: not one; anything else: git could not tell (an unknown commit).
    Ok(match status.code() {
        Some(0) => Lineage::Older,
        Some(1) => Lineage::NotOlder,
        _ => Lineage::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway repository: `git` with fixed identity and no user configuration.
    fn git(repo: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn an_ancestor_of_the_serving_commit_is_older_and_nothing_else_is() {
        let dir = std::env::temp_dir().join(format!("xtask-git-lineage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "--quiet", "--initial-branch=main"]);
        let commit = |message: &str| {
            git(&dir, &["commit", "--quiet", "--allow-empty", "-m", message]);
            git(&dir, &["rev-parse", "HEAD"])
        };
        let a = commit("a");
        let b = commit("b");
        let c = commit("c");
        git(&dir, &["checkout", "--quiet", "-b", "side", &a]);
        let side = commit("side");
        assert_eq!(head(&dir).as_deref(), Some(side.as_str()));

        assert_eq!(lineage(&dir, &a, &c).unwrap(), Lineage::Older);
        assert_eq!(lineage(&dir, &b, &c).unwrap(), Lineage::Older);
        assert_eq!(lineage(&dir, &c, &c).unwrap(), Lineage::Same);
        assert_eq!(lineage(&dir, &c, &a).unwrap(), Lineage::NotOlder);
        assert_eq!(lineage(&dir, &side, &c).unwrap(), Lineage::NotOlder);
        let never_fetched = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(lineage(&dir, never_fetched, &c).unwrap(), Lineage::Unknown);
        assert_eq!(lineage(&dir, &c, never_fetched).unwrap(), Lineage::Unknown);
        assert_eq!(head(&dir.join("no-such-dir")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
