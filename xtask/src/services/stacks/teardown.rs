//! Destroying a service stack (the environment's or a stage's): the step `destroy` and
//! `stages sweep` share, with the records that must not outlive what they describe.

use std::path::PathBuf;

use anyhow::Result;

use crate::base::aws::Target;
use crate::base::env::{self, Env, SERVICE_STACK};
use crate::base::{process, progress};
use crate::services::artifacts::package;
use crate::services::stacks::state::{LastDeploy, write_tfvars};
use crate::services::stacks::synth;
use crate::services::stacks::terraform::Terraform;

/// `terraform destroy` of `env`'s service stack, then forgets its outputs and the record of
/// its last deploy (the bootstrap part of that record stays: the bootstrap stack does).
pub fn service_stack(env: &Env, target: &Target) -> Result<()> {
    synth::synthesize(env)?;
    let var_file = var_file(env)?;
    let tf = Terraform::new(env, SERVICE_STACK, target.terraform_env())?;
    progress::step(format!("Destroying the service stack of `{}`", env.label()));
    tf.init()?;
    tf.destroy(Some(&var_file))?;
    if let Ok(mut last) = process::read_json::<LastDeploy>(&LastDeploy::file(env)) {
        last.stacks.remove(SERVICE_STACK);
        last.packages.clear();
        last.save(env)?;
    }
    let _ = std::fs::remove_file(env.outputs_file());
    let _ = std::fs::remove_file(env.sensitive_outputs_file());
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
