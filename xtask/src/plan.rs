//! `cargo xtask plan`: what deploy would change, without changing anything.

use anyhow::{Context, Result};

use crate::cli::{PlanArgs, StackChoice};
use crate::deploy::{self, LastDeploy};
use crate::env::{BOOTSTRAP_STACK, Env, SERVICE_STACK};
use crate::terraform::Terraform;
use crate::{package, process, progress, synth};

pub fn run(env: &Env, args: PlanArgs) -> Result<()> {
    crate::prerequisites::check(env)?;
    let (target, _moto) = deploy::target(env)?;
    synth::synthesize(env)?;
    let tf_env = target.terraform_env();
    match args.stack {
        StackChoice::Bootstrap => {
            let tf = Terraform::new(env, BOOTSTRAP_STACK, tf_env)?;
            tf.init()?;
            tf.plan(None)?;
        }
        StackChoice::Service => {
            let manifest = match (&args.prebuilt, package::load_manifest(env)) {
                (None, Ok(manifest)) if manifest.architecture == env.arch.lambda_name() => {
                    progress::note(
                        "using the packages in build/dist (run `cargo xtask package` to refresh them)",
                    );
                    manifest
                }
                _ => package::build_check_package(env, args.prebuilt.as_deref())?,
            };
            let bucket = artifacts_bucket(env, tf_env.clone())?;
            let var_file = deploy::write_tfvars(env, &bucket, &manifest)?;
            let tf = Terraform::new(env, SERVICE_STACK, tf_env)?;
            tf.init()?;
            tf.plan(Some(&var_file))?;
        }
    }
    Ok(())
}

/// The artifacts bucket: from the last deploy, else the bootstrap stack's outputs.
pub fn artifacts_bucket(env: &Env, tf_env: Vec<(String, String)>) -> Result<String> {
    let last: LastDeploy =
        process::read_json(&env.dir().join("last-deploy.json")).unwrap_or_default();
    if let Some(bucket) = last.artifacts_bucket {
        return Ok(bucket);
    }
    let tf = Terraform::new(env, BOOTSTRAP_STACK, tf_env)?;
    tf.init()?;
    let outs = tf.outputs()?;
    outs.get("artifacts_bucket")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "the artifacts bucket of `{}` does not exist yet: run `cargo xtask deploy --env {0}` \
                 (or `cargo xtask bootstrap --env {0}` for a new AWS account)",
                env.name
            )
        })
}
