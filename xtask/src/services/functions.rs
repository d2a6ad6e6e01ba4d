//! The service's functions as the development loop (`watch`, `invoke`, `logs`) sees them.
//!
//! The names come from the catalog (each function crate's declaration); this module adds
//! what the loop needs on top: checking a name a user typed, and which functions a saved file
//! can change.

use std::path::Path;

use anyhow::{Result, bail};

/// The shared crates every function depends on (`service-common` and the route matcher it
/// uses): a change there affects them all.
const SHARED_CRATE_DIRS: &[&str] = &["common", "route-matching"];

/// The function names (Cargo package, binary and function-name suffix).
pub fn names() -> &'static [&'static str] {
    crate::base::env::functions()
}

/// `name` as one of [`names`], or an error listing them.
pub fn known(name: &str) -> Result<&'static str> {
    match names().iter().find(|f| **f == name) {
        Some(found) => Ok(found),
        None => bail!(
            "unknown function `{name}`; the functions are: {}",
            names().join(", ")
        ),
    }
}

/// The functions whose binaries a change to `path` (a file under `<root>/functions/`) can
/// change: every one for a shared crate, the crate's own function otherwise, none for
/// anything else (another folder, a file that is not Rust source or a manifest).
pub fn affected_by(root: &Path, path: &Path) -> Vec<&'static str> {
    let Ok(relative) = path.strip_prefix(root.join("functions")) else {
        return Vec::new();
    };
    let is_source = path.extension().is_some_and(|e| e == "rs")
        || path.file_name().is_some_and(|n| n == "Cargo.toml");
    let Some(crate_dir) = relative.iter().next().and_then(|c| c.to_str()) else {
        return Vec::new();
    };
    if !is_source || relative.iter().any(|c| c == "target") {
        return Vec::new();
    }
    if SHARED_CRATE_DIRS.contains(&crate_dir) {
        return names().to_vec();
    }
    names()
        .iter()
        .filter(|f| **f == crate_dir)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_affects_its_own_function_or_all_of_them() {
        let root = Path::new("/repo");
        let affected = |p: &str| affected_by(root, Path::new(p));
        assert_eq!(affected("/repo/functions/users/src/lib.rs"), vec!["users"]);
        assert_eq!(
            affected("/repo/functions/health/Cargo.toml"),
            vec!["health"]
        );
        assert_eq!(
            affected("/repo/functions/common/src/logging.rs"),
            names().to_vec()
        );
        assert_eq!(
            affected("/repo/functions/route-matching/src/lib.rs"),
            names().to_vec()
        );
        assert!(affected("/repo/functions/users/README.md").is_empty());
        assert!(affected("/repo/functions/users/src/.lib.rs.swp").is_empty());
        assert!(affected("/repo/infra/src/lib.rs").is_empty());
        assert!(affected("/repo/functions/unknown/src/lib.rs").is_empty());
    }

    #[test]
    fn an_unknown_name_lists_the_functions() {
        assert_eq!(known("users").unwrap(), "users");
        let err = known("user").unwrap_err().to_string();
        assert!(err.contains("health, users, sessions"), "{err}");
    }
}
