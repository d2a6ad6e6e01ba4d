//! Sending to the service's queues (feature `queues`): only the functions that declare
//! `sends = [...]` link the SQS client.
//!
//! Infra hands a sender each queue's URL in `QUEUE_URL_<NAME>` (`catalog::queues::variable`,
//! which [`SESSION_SWEEPS_URL`] must match; a test holds them together, as for the secrets: the
//! catalog is not linked into a function). Nothing is sent at start-up and a missing variable
//! fails only the sends, so a process never crashes in a loop over it.

use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use uuid::Uuid;

use crate::error::ServiceError;
use crate::sweeps::SessionSweep;

/// The variable holding the URL of the `session-sweeps` queue ([`crate::sweeps::QUEUE`]).
pub const SESSION_SWEEPS_URL: &str = "QUEUE_URL_SESSION_SWEEPS";

/// The sending side of the `session-sweeps` queue. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SweepQueue {
    client: Client,
    /// `None` when the variable is missing: every enqueue then fails, naming it.
    url: Option<String>,
}

impl SweepQueue {
    /// The queue named by the process environment, through a client built from `sdk`.
    pub fn from_env(sdk: &SdkConfig) -> Self {
        Self::new(Client::new(sdk), std::env::var(SESSION_SWEEPS_URL).ok())
    }

    /// The queue at `url` (tests: their own queue on the emulator).
    pub fn new(client: Client, url: Option<String>) -> Self {
        let url = url.filter(|url| !url.trim().is_empty());
        Self { client, url }
    }

    /// Asks the sweeper to delete the stored sessions of `user_id` that a revocation, which
    /// took effect, ended (the sweep removes what no longer authenticates, never more).
    ///
    /// A failure here does not fail the request: the revocation is already committed, and
    /// answering with an error would tell the client it did not happen (and a retry would
    /// find nothing to revoke). What is left is stored sessions that no longer authenticate,
    /// which TTL removes; the error line names the user, so the sweep can be sent by hand.
    pub async fn request(&self, user_id: Uuid) {
        if let Err(error) = self.enqueue(SessionSweep { user_id }).await {
            tracing::error!(
                user_id = %user_id,
                error = %crate::logging::error_chain(&error),
                "session sweep not enqueued: the user's stored sessions no longer authenticate and stay until TTL removes them"
            );
        }
    }

    async fn enqueue(&self, sweep: SessionSweep) -> Result<(), ServiceError> {
        let url = self.url.as_deref().ok_or(ServiceError::Config {
            variable: SESSION_SWEEPS_URL,
            reason: "is not set".to_owned(),
        })?;
        let body = serde_json::to_string(&sweep)
            .map_err(|e| ServiceError::internal("encode session sweep", e))?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| ServiceError::internal("enqueue session sweep", e))?;
        Ok(())
    }
}
