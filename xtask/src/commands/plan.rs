//! `cargo xtask plan`: what deploy would change, without changing anything.

use anyhow::Result;

use crate::base::env::{BOOTSTRAP_STACK, Env, SERVICE_STACK};
use crate::base::progress;
use crate::cli::{PlanArgs, StackChoice};
use crate::services::artifacts::package;
use crate::services::stacks::state::{artifacts_bucket, write_tfvars};
use crate::services::stacks::terraform::Terraform;
use crate::services::stacks::{prerequisites, synth};
use crate::services::target;

pub fn run(env: &Env, args: PlanArgs) -> Result<()> {
    prerequisites::check(env)?;
    let (target, _moto) = target::target(env)?;
    synth::synthesize(env)?;
    let tf_env = target.terraform_env();
    match args.stack {
        StackChoice::Bootstrap if env.stage.is_some() => {
            anyhow::bail!(
                "a stage shares `{}`'s bootstrap stack: plan it without --stage",
                env.name
            );
        }
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
            let bucket = artifacts_bucket(env, &target)?;
            let var_file = write_tfvars(env, &bucket, &manifest.for_env(env))?;
            let tf = Terraform::new(env, SERVICE_STACK, tf_env)?;
            tf.init()?;
            tf.plan(Some(&var_file))?;
        }
    }
    Ok(())
}
