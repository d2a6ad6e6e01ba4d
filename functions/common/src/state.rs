//! What a function builds once per process and shares across invocations.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};

use crate::config::Config;
use crate::error::ServiceError;
use crate::password::Passwords;
use crate::store::{LoginAttempts, SessionStore, UserStore};

/// Configuration, the DynamoDB client and the repositories over it.
#[derive(Clone, Debug)]
pub struct State {
    pub config: Config,
    pub dynamo: Client,
    pub users: UserStore,
    pub sessions: SessionStore,
    pub attempts: LoginAttempts,
    pub passwords: Passwords,
}

impl State {
    /// Wires repositories to `dynamo`; tests pass a client pointed at the emulator.
    pub fn new(config: Config, dynamo: Client) -> Self {
        Self {
            users: UserStore::new(dynamo.clone(), &config.users_table),
            sessions: SessionStore::new(dynamo.clone(), &config.sessions_table),
            attempts: LoginAttempts::new(dynamo.clone(), &config.sessions_table),
            passwords: Passwords::owasp(),
            dynamo,
            config,
        }
    }

    /// The production start-up path: environment, then an SDK client. No network I/O happens
    /// here: the region comes from `AWS_REGION` and credentials resolve on first use.
    pub async fn from_env() -> Result<Self, ServiceError> {
        let config = Config::from_env()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        Ok(Self::new(config, Client::new(&sdk)))
    }
}
