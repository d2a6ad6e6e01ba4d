//! What a function builds once per process and shares across invocations. Each function crate
//! has its own `State`, holding only the stores it uses, so a function never builds (nor
//! links) what it does not need: `health` has no password hasher and no repositories.

#[cfg(feature = "secrets")]
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};

use crate::config::Config;
use crate::error::ServiceError;

/// The clients a function's state is built from, made once per process (tests make them
/// pointed at the emulator).
#[derive(Clone)]
pub struct Clients {
    pub dynamo: Client,
    /// The reader of the function's declared secrets ([`FunctionState::SECRETS`]).
    #[cfg(feature = "secrets")]
    pub secrets: Arc<crate::secrets::Secrets>,
    /// The `session-sweeps` queue, for the functions that send to it (`sends`).
    #[cfg(feature = "queues")]
    pub sweeps: crate::queues::SweepQueue,
}

/// A function's per-process state, built from the shared parts: the configuration and the
/// clients.
pub trait FunctionState: Sized {
    /// The secrets the function reads: the names its manifest declares (`secrets = [...]`),
    /// for which infra sets the `SECRET_ARN_*` variables. None by default.
    const SECRETS: &'static [&'static str] = &[];

    /// Wires the function's repositories to the clients.
    fn new(config: Config, clients: Clients) -> Self;

    /// The configuration, which the request pipeline reads (CORS).
    fn config(&self) -> &Config;
}

/// The production start-up path: environment, then an SDK client that logs each call. No network I/O happens
/// here: the region comes from `AWS_REGION` and credentials resolve on first use.
pub async fn from_env<S: FunctionState>() -> Result<S, ServiceError> {
    let config = Config::from_env()?;
    let sdk = sdk_config(&config).await;
    let clients = Clients {
        dynamo: crate::calls::dynamo_client(&sdk),
        #[cfg(feature = "secrets")]
        secrets: Arc::new(crate::secrets::Secrets::from_env(&sdk, S::SECRETS)?),
        #[cfg(feature = "queues")]
        sweeps: crate::queues::SweepQueue::from_env(&sdk),
    };
    Ok(S::new(config, clients))
}

/// The SDK configuration every client of a function is built from (DynamoDB, the declared
/// secrets' and the queues' clients): the region from `config`, so nothing
/// probes IMDS.
pub async fn sdk_config(config: &Config) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}
