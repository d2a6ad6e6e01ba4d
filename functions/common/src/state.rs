//! What a function builds once per process and shares across invocations. Each function crate
//! has its own `State`, holding only the stores it uses, so a function never builds (nor
//! links) what it does not need: `health` has no password hasher and no repositories.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};

use crate::config::Config;
use crate::error::ServiceError;

/// A function's per-process state, built from the shared parts: the configuration and one
/// DynamoDB client.
pub trait FunctionState: Sized {
    /// Wires the function's repositories to `dynamo`; tests pass a client pointed at the
    /// emulator.
    fn new(config: Config, dynamo: Client) -> Self;

    /// The configuration, which the request pipeline reads (CORS).
    fn config(&self) -> &Config;
}

/// The production start-up path: environment, then an SDK client that logs each call. No network I/O happens
/// here: the region comes from `AWS_REGION` and credentials resolve on first use.
pub async fn from_env<S: FunctionState>() -> Result<S, ServiceError> {
    let config = Config::from_env()?;
    let sdk = sdk_config(&config).await;
    Ok(S::new(config, crate::calls::dynamo_client(&sdk)))
}

/// The SDK configuration every client of a function is built from (the DynamoDB client here,
/// the declared secrets' client in a function's `main`): the region from `config`, so nothing
/// probes IMDS.
pub async fn sdk_config(config: &Config) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}
