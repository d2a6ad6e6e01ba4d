//! What the release build costs as the workspace grows: a clean build of every function, then
//! the rebuild after a change to one function (its crate compiled again and its binary
//! relinked). Both run in a scratch target directory under `build/`, so the figures are from
//! clean and the developer's own target directory is left as it was.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::base::env::{self, Env};
use crate::base::progress;
use crate::services::artifacts::build;

pub struct ReleaseBuild {
    pub functions: usize,
    pub clean: Duration,
    /// The function whose source changed.
    pub changed: &'static str,
    pub one_function: Duration,
}

pub fn measure(env: &Env, changed: &'static str) -> Result<ReleaseBuild> {
    let target = env.dir().join("bench").join("release-target");
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("removing {}", target.display()))?;
    }
    progress::step("Bench: a clean release build of every function (a scratch target directory)");
    let (_, clean) = build::compile_into(env, &target)?;
    // A new modification time is a change to cargo; the content stays as it is.
    let source = env.root.join("functions").join(changed).join("src/main.rs");
    std::fs::File::options()
        .append(true)
        .open(&source)
        .and_then(|file| file.set_modified(std::time::SystemTime::now()))
        .with_context(|| format!("touching {}", source.display()))?;
    progress::step(format!(
        "Bench: the release build after a change to `{changed}`"
    ));
    let (_, one_function) = build::compile_into(env, &target)?;
    std::fs::remove_dir_all(&target).with_context(|| format!("removing {}", target.display()))?;
    Ok(ReleaseBuild {
        functions: env::functions().len(),
        clean,
        changed,
        one_function,
    })
}
