//! `deploy --hotswap`: new function code without Terraform, as
//! `cdk deploy --hotswap` does. Point the function at the new package,
//! wait for the update and publish a version: the same end state a
//! Terraform apply reaches, in seconds. The release then moves `live`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_lambda::types::LastUpdateStatus;

use crate::base::aws::Target;
use crate::base::env::Env;
use crate::base::progress;
use crate::services::aliases::Versions;
use crate::services::artifacts::package::Manifest;

/// Returns the version published per function.
pub fn functions(
    env: &Env,
    target: &Target,
    bucket: &str,
    manifest: &Manifest,
    changed: &[String],
) -> Result<Versions> {
    crate::base::process::block_on(async {
        let lambda = target.lambda().await;
        let mut published = Versions::new();
        for function in changed {
            let package = manifest
                .functions
                .get(function)
                .context("changed function has a package")?;
            let name = env.function_name(function);
            let err = |what: &str, e: &dyn std::fmt::Display| {
                anyhow::anyhow!("hotswap of {name}: {what}: {e}")
            };
            lambda
                .update_function_code()
                .function_name(&name)
                .s3_bucket(bucket)
                .s3_key(&package.s3_key)
                .send()
                .await
                .map_err(|e| {
                    err(
                        "UpdateFunctionCode",
                        &aws_sdk_lambda::error::DisplayErrorContext(&e),
                    )
                })?;
            let started = Instant::now();
            loop {
                let config = lambda
                    .get_function_configuration()
                    .function_name(&name)
                    .send()
                    .await
                    .map_err(|e| {
                        err(
                            "GetFunctionConfiguration",
                            &aws_sdk_lambda::error::DisplayErrorContext(&e),
                        )
                    })?;
                match config.last_update_status() {
                    Some(LastUpdateStatus::Successful) | None => break,
                    Some(LastUpdateStatus::Failed) => bail!(
                        "hotswap of {name} failed: {}",
                        config
                            .last_update_status_reason()
                            .unwrap_or("no reason given")
                    ),
                    _ if started.elapsed() > Duration::from_secs(300) => {
                        bail!("hotswap of {name}: update still in progress after 5 minutes")
                    }
                    _ => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
            // CodeSha256 makes Lambda refuse to publish anything but this package.
            let version = lambda
                .publish_version()
                .function_name(&name)
                .code_sha256(&package.source_code_hash)
                .description(format!("hotswap {}", package.sha256))
                .send()
                .await
                .map_err(|e| {
                    err(
                        "PublishVersion",
                        &aws_sdk_lambda::error::DisplayErrorContext(&e),
                    )
                })?;
            let number = version
                .version()
                .context("PublishVersion returned no version")?
                .to_owned();
            progress::note(format!("{name}: published version {number}"));
            published.insert(function.clone(), number);
        }
        Ok(published)
    })
}
