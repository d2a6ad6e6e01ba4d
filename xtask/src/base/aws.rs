//! AWS access for the tasks: the emulator's endpoint and test credentials
//! for emulated environments, the standard credential chain otherwise.

use anyhow::{Context, Result, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::base::env::Env;

/// Where AWS calls go: `Some(endpoint)` for the emulator.
#[derive(Debug, Clone)]
pub struct Target {
    pub region: String,
    pub endpoint: Option<String>,
}

impl Target {
    pub fn real(env: &Env) -> Target {
        Target {
            region: env.region.clone(),
            endpoint: None,
        }
    }

    pub fn emulator(env: &Env, endpoint: &str) -> Target {
        Target {
            region: env.region.clone(),
            endpoint: Some(endpoint.to_owned()),
        }
    }

    /// Environment for child processes (terraform, local API server, smoke).
    pub fn process_env(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("AWS_REGION".to_owned(), self.region.clone()),
            ("AWS_DEFAULT_REGION".to_owned(), self.region.clone()),
        ];
        if let Some(endpoint) = &self.endpoint {
            vars.extend([
                ("AWS_ENDPOINT_URL".to_owned(), endpoint.clone()),
                ("AWS_ACCESS_KEY_ID".to_owned(), "test".to_owned()),
                ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
            ]);
        }
        vars
    }

    /// Environment for terraform: the process environment plus the
    /// `aws_endpoint` variable infra's emulator provider block reads (the
    /// port is chosen when the emulator starts, so it is not in the JSON).
    pub fn terraform_env(&self) -> Vec<(String, String)> {
        let mut vars = self.process_env();
        if let Some(endpoint) = &self.endpoint {
            vars.push(("TF_VAR_aws_endpoint".to_owned(), endpoint.clone()));
        }
        vars
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        let loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()));
        match &self.endpoint {
            Some(endpoint) => {
                loader
                    .endpoint_url(endpoint)
                    .credentials_provider(aws_sdk_s3::config::Credentials::new(
                        "test",
                        "test",
                        None,
                        None,
                        "xtask-emulator",
                    ))
                    .load()
                    .await
            }
            None => loader.load().await,
        }
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = self.sdk_config().await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            // The emulator serves buckets by path, not by virtual host.
            .force_path_style(self.endpoint.is_some())
            .build();
        aws_sdk_s3::Client::from_conf(s3)
    }

    pub async fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.sdk_config().await)
    }

    pub async fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.sdk_config().await)
    }
}

/// The caller's identity: proves credentials work before anything is changed,
/// with one message for every way they can be missing or wrong.
pub async fn caller_identity(target: &Target) -> Result<(String, String)> {
    let config = target.sdk_config().await;
    if config.credentials_provider().is_none() {
        bail!(no_credentials_message(&target.region));
    }
    let sts = aws_sdk_sts::Client::new(&config);
    let identity = sts.get_caller_identity().send().await.map_err(|err| {
        anyhow::anyhow!(
            "{}\n(the AWS error was: {})",
            no_credentials_message(&target.region),
            aws_sdk_sts::error::DisplayErrorContext(&err)
        )
    })?;
    let account = identity
        .account()
        .context("STS returned no account id")?
        .to_owned();
    let arn = identity.arn().unwrap_or_default().to_owned();
    Ok((account, arn))
}

fn no_credentials_message(region: &str) -> String {
    format!(
        "no working AWS credentials for region {region}. xtask uses the standard AWS chain: \
         set AWS_PROFILE (after `aws sso login` / `aws configure`), or AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, or run where an IAM role is available (CI with OIDC). \
         For a deployment without an account, use `--env local`."
    )
}
