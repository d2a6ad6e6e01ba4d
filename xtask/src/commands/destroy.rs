//! `cargo xtask destroy`: remove what deploy created.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Result, bail};
use xshell::Shell;

use crate::base::env::{self, BOOTSTRAP_STACK, Env, SERVICE_STACK};
use crate::base::{process, progress};
use crate::cli::DestroyArgs;
use crate::services::artifacts::package;
use crate::services::stacks::state::{LastDeploy, write_tfvars};
use crate::services::stacks::synth;
use crate::services::stacks::terraform::{self, Terraform};
use crate::services::{local, target};

pub fn run(sh: &Shell, env: &Env, args: DestroyArgs) -> Result<()> {
    terraform::require()?;
    if !env.emulated && !args.yes {
        confirm(env)?;
    }
    let (target, _moto) = target::target(env)?;
    if env.emulated {
        local::stop_api(sh, env)?;
    }
    synth::synthesize(env)?;
    let tf_env = target.terraform_env();
    let var_file = var_file(env)?;
    let tf = Terraform::new(env, SERVICE_STACK, tf_env.clone())?;
    progress::step("Destroying the service stack");
    tf.init()?;
    tf.destroy(Some(&var_file))?;
    let mut destroyed = vec![SERVICE_STACK];
    if args.all {
        let tf = Terraform::new(env, BOOTSTRAP_STACK, tf_env)?;
        progress::step("Destroying the bootstrap stack");
        tf.init()?;
        tf.destroy(None)?;
        destroyed.push(BOOTSTRAP_STACK);
    }
    // Nothing of the old deployment may look current any more.
    let last_path = LastDeploy::file(env);
    if args.all {
        let _ = std::fs::remove_file(&last_path);
    } else if let Ok(mut last) = process::read_json::<LastDeploy>(&last_path) {
        last.stacks.remove(SERVICE_STACK);
        last.packages.clear();
        last.save(env)?;
    }
    let _ = std::fs::remove_file(env.outputs_file());
    let _ = std::fs::remove_file(env.sensitive_outputs_file());
    let json = serde_json::json!({ "env": env.name, "destroyed": destroyed });
    progress::finish(
        env.json,
        &json,
        format!("destroyed {} of `{}`", destroyed.join(" and "), env.name),
    );
    Ok(())
}

fn confirm(env: &Env) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to destroy `{}` without confirmation: pass --yes",
            env.name
        );
    }
    eprint!(
        "Destroy the `{}` service stack in {}? Type the environment name to confirm: ",
        env.name, env.region
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != env.name {
        bail!("not confirmed; nothing destroyed");
    }
    Ok(())
}

/// The variables the service stack needs even to be destroyed: the last
/// deploy's, else ones derived from the packages, else inert values (a
/// destroy does not read them).
fn var_file(env: &Env) -> Result<PathBuf> {
    let path = env.dir().join("artifacts.tfvars.json");
    if path.exists() {
        return Ok(path);
    }
    if let Ok(manifest) = package::load_manifest(env) {
        return write_tfvars(env, "unused-during-destroy", &manifest);
    }
    let mut vars = serde_json::Map::new();
    vars.insert("artifacts_bucket".into(), "unused-during-destroy".into());
    for &name in env::functions() {
        vars.insert(
            format!("artifact_key_{name}"),
            format!("functions/{name}/{}.zip", "0".repeat(64)).into(),
        );
        vars.insert(
            format!("artifact_hash_{name}"),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into(),
        );
    }
    process::write_json(&path, &vars)?;
    Ok(path)
}
