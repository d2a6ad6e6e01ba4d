//! `cargo xtask remove NAME`: takes a function crate out of the workspace (what `new` did,
//! undone); the next `deploy` takes it off the stack.

use anyhow::{Result, bail};
use xshell::{Shell, cmd};

use crate::base::progress;
use crate::cli::RemoveArgs;
use crate::services::scaffold;

pub fn run(sh: &Shell, json: bool, args: RemoveArgs) -> Result<()> {
    let root = deploy_files::workspace_root();
    let name = &args.name;
    let dir = scaffold::removable(&root, name)?;
    // Outside a git checkout (a copied workspace) nothing is tracked.
    let tracked = cmd!(sh, "git ls-files -- functions/{name}/Cargo.toml")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    if !tracked.trim().is_empty() && !args.force {
        bail!(
            "functions/{name} is committed to git: it is part of the service, not a fresh \
             scaffold. Pass --force to remove it anyway (git can restore it)"
        );
    }
    progress::step(format!("removing functions/{name}"));
    scaffold::remove(&root, name, &dir)?;
    scaffold::refresh_openapi(&root, &["service-common"])?;
    let human = format!(
        "removed functions/{name} and its entries in Cargo.toml; functions/openapi.json no longer \
         documents it.\nRun `cargo xtask deploy` to take the function and its routes off the stack."
    );
    progress::finish(
        json,
        &serde_json::json!({"removed": name, "next": ["cargo xtask deploy"]}),
        human,
    );
    Ok(())
}
