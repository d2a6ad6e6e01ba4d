//! The bootstrap stack: the buckets a real account needs before the
//! first deploy, the state bucket among them, and, for environments with
//! `[delivery]`, the delivery stack: GitHub's OIDC provider and the role the
//! deploy workflow assumes. Run with administrator credentials; `deploy` never
//! applies the delivery stack (it runs as that role).
//!
//! The bootstrap stack creates the bucket its own state will live in, so it
//! is applied in two moves: first with a local state file (a Terraform
//! override file swaps the backend), then `init -migrate-state` copies that
//! state into the new bucket and the override is removed.

use anyhow::{Context, Result};

use crate::base::aws::Target;
use crate::base::env::{BOOTSTRAP_STACK, DELIVERY_STACK, Env};
use crate::base::{process, progress};
use crate::services::stacks::outputs::Outputs;
use crate::services::stacks::terraform::Terraform;

const OVERRIDE_FILE: &str = "xtask_backend_override.tf.json";

/// What applying the bootstrap stack left: where its state lives and what it created.
pub struct Bootstrapped {
    /// The state bucket, for real accounts (the emulator keeps local state).
    pub state_bucket: Option<String>,
    /// Whether this run created the state bucket and moved the state into it.
    pub migrated: bool,
    pub outputs: Outputs,
    pub delivery: Option<Delivery>,
}

/// Applies the bootstrap stack (in two moves when its state bucket does not exist yet, or
/// `force`) and then, when configured, the delivery stack.
pub fn apply(env: &Env, target: &Target, force: bool) -> Result<Bootstrapped> {
    let stack_dir = env.stack_dir(BOOTSTRAP_STACK);
    let state_bucket = s3_backend_bucket(&stack_dir.join("cdk.tf.json"))?;
    let tf = Terraform::new(env, BOOTSTRAP_STACK, target.terraform_env())?;

    let migrated = match &state_bucket {
        None => {
            // Local state (the emulator): one plain apply.
            tf.init()?;
            tf.apply(None)?;
            false
        }
        Some(bucket) if bucket_exists(target, bucket)? && !force => {
            progress::step(format!(
                "State bucket s3://{bucket} exists; applying the bootstrap stack in place"
            ));
            tf.init()?;
            tf.apply(None)?;
            false
        }
        Some(bucket) => {
            progress::step(format!(
                "Creating s3://{bucket} with local state, then moving the state into it"
            ));
            let local_state = env.dir().join("bootstrap.tfstate");
            let override_path = stack_dir.join(OVERRIDE_FILE);
            let override_json = serde_json::json!({
                "terraform": { "backend": { "local": { "path": local_state } } }
            });
            process::write_json(&override_path, &override_json)?;
            tf.forget_init();
            let first = tf.init().and_then(|_| tf.apply(None));
            std::fs::remove_file(&override_path)
                .with_context(|| format!("removing {}", override_path.display()))?;
            first?;
            tf.migrate_state()?;
            true
        }
    };
    let outputs = tf.outputs()?;
    let delivery = delivery(env, target)?;
    Ok(Bootstrapped {
        state_bucket,
        migrated,
        outputs,
        delivery,
    })
}

/// What the delivery stack gave, for the GitHub environment's variables.
#[derive(serde::Serialize)]
pub struct Delivery {
    pub deploy_role_arn: String,
    pub oidc_provider_arn: String,
    pub github_repository: String,
    pub github_environment: String,
    /// The scheduled release check's role and GitHub environment (`release-check.yml`).
    pub release_check_role_arn: String,
    pub release_check_environment: String,
    /// The stage workflow's role and GitHub environment (`stage.yml`), for environments with
    /// `stages = true`.
    pub stages_role_arn: Option<String>,
    pub stages_environment: Option<String>,
}

/// Applies the delivery stack when the environment configures `[delivery]`.
/// Its state goes to the same backend as the service stack's, under its own
/// key, so it runs after the bootstrap stack has created the state bucket.
fn delivery(env: &Env, target: &Target) -> Result<Option<Delivery>> {
    let config = infra::load_config(&env.name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(settings) = config.delivery else {
        return Ok(None);
    };
    progress::step(format!(
        "Applying the delivery stack: GitHub's OIDC provider and the deploy role for {}",
        settings.github_repository
    ));
    let tf = Terraform::new(env, DELIVERY_STACK, target.terraform_env())?;
    tf.init()?;
    tf.apply(None)?;
    let outputs = tf.outputs()?;
    let output = |name: &str| {
        outputs
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .with_context(|| format!("the delivery stack has no `{name}` output"))
    };
    let stages_role_arn = config
        .stages
        .then(|| output("stages_role_arn"))
        .transpose()?;
    Ok(Some(Delivery {
        stages_environment: stages_role_arn
            .as_ref()
            .map(|_| infra::constructs::delivery::stages_environment(&settings, &env.name)),
        stages_role_arn,
        deploy_role_arn: output("deploy_role_arn")?,
        oidc_provider_arn: output("oidc_provider_arn")?,
        release_check_role_arn: output("release_check_role_arn")?,
        release_check_environment: infra::constructs::delivery::release_check_environment(
            &settings, &env.name,
        ),
        github_environment: settings.environment(&env.name).to_owned(),
        github_repository: settings.github_repository,
    }))
}

/// Deploys to a real account need the state bucket `bootstrap` creates.
pub fn require_state_bucket(env: &Env, target: &Target) -> Result<()> {
    let stack_json = env.stack_dir(BOOTSTRAP_STACK).join("cdk.tf.json");
    if let Some(bucket) = s3_backend_bucket(&stack_json)?
        && !bucket_exists(target, &bucket)?
    {
        anyhow::bail!(
            "the state bucket s3://{bucket} (`[backend] bucket` in infra/environments/{}.toml) \
             does not exist in this account yet: run `cargo xtask bootstrap --env {}` once, with \
             administrator credentials (docs/delivery.md: One-time AWS setup per account)",
            env.name,
            env.name
        );
    }
    Ok(())
}

/// The bucket of the stack's S3 backend, if it has one.
pub fn s3_backend_bucket(stack_json: &std::path::Path) -> Result<Option<String>> {
    let json: serde_json::Value = process::read_json(stack_json)?;
    Ok(json
        .pointer("/terraform/backend/s3/bucket")
        .and_then(|v| v.as_str())
        .map(str::to_owned))
}

pub fn bucket_exists(target: &Target, bucket: &str) -> Result<bool> {
    process::block_on(async {
        let s3 = target.s3().await;
        match s3.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(err) => Err(anyhow::anyhow!(
                "checking the state bucket s3://{bucket}: {} (is it owned by another account?)",
                aws_sdk_s3::error::DisplayErrorContext(&err)
            )),
        }
    })
}
