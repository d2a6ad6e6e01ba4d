//! `cargo xtask bootstrap`: the buckets a real account needs before the first deploy and,
//! for environments with `[delivery]`, the deploy role; prints what to set on GitHub.

use anyhow::Result;

use crate::base::env::Env;
use crate::base::progress;
use crate::cli::BootstrapArgs;
use crate::services::stacks::{bootstrap, prerequisites, synth};
use crate::services::target;

pub fn run(env: &Env, args: BootstrapArgs) -> Result<()> {
    if env.stage.is_some() {
        anyhow::bail!(
            "stages share `{}`'s bootstrap stack: bootstrap without --stage",
            env.name
        );
    }
    prerequisites::check(env)?;
    let (target, _moto) = target::target(env)?;
    synth::synthesize(env)?;
    let bootstrap::Bootstrapped {
        state_bucket,
        migrated,
        outputs,
        delivery,
    } = bootstrap::apply(env, &target, args.force)?;
    let json = serde_json::json!({
        "env": env.name,
        "state_bucket": state_bucket,
        "state_migrated": migrated,
        "outputs": outputs.masked(),
        "delivery": delivery,
    });
    let mut human = format!("bootstrap stack of `{}` applied", env.name);
    if let Some(bucket) = &state_bucket {
        human.push_str(&format!("\nstate bucket:     s3://{bucket}"));
    }
    if let Some(bucket) = outputs.get("artifacts_bucket").and_then(|v| v.as_str()) {
        human.push_str(&format!("\nartifacts bucket: s3://{bucket}"));
    }
    if let Some(d) = &delivery {
        human.push_str(&format!(
            "\ndeploy role:      {role}\n\nSet it on the GitHub environment `{genv}` (docs/delivery.md: Required settings in GitHub):\n  \
             gh variable set AWS_DEPLOY_ROLE_ARN --repo {repo} --env {genv} --body {role}\n  \
             gh variable set AWS_REGION --repo {repo} --env {genv} --body {region}\n\n\
             release check role: {check}\nSet it on the GitHub environment `{cenv}` (branch main, no reviewers):\n  \
             gh variable set AWS_RELEASE_CHECK_ROLE_ARN --repo {repo} --env {cenv} --body {check}\n  \
             gh variable set AWS_REGION --repo {repo} --env {cenv} --body {region}",
            role = d.deploy_role_arn,
            check = d.release_check_role_arn,
            cenv = d.release_check_environment,
            genv = d.github_environment,
            repo = d.github_repository,
            region = env.region,
        ));
        if let (Some(role), Some(senv)) = (&d.stages_role_arn, &d.stages_environment) {
            human.push_str(&format!(
                "\n\nstages role: {role}\nSet it on the GitHub environment `{senv}` (pull request stages, docs/delivery.md):\n  \
                 gh variable set AWS_STAGES_ROLE_ARN --repo {repo} --env {senv} --body {role}\n  \
                 gh variable set AWS_REGION --repo {repo} --env {senv} --body {region}",
                repo = d.github_repository,
                region = env.region,
            ));
        }
    }
    progress::finish(env.json, &json, human);
    Ok(())
}
