//! The `sweeper` Lambda function: consumes the `session-sweeps` queue and deletes the stored
//! sessions of each user named in it.
//!
//! Revocation never waits for it: log-out-everywhere, a password change and a deletion take
//! effect through the user's log-out count, session generation or absence before they enqueue
//! the sweep. The sweep reads those two facts as they are when it runs (strongly consistent)
//! and deletes only the sessions that carry less (each delete is conditional on it): it
//! removes what no longer authenticates, so it is idempotent (a message delivered twice, or a
//! sweep of a user with no sessions, deletes nothing more), and a session started or kept
//! since the revocation (a log-in after a log-out-everywhere, the caller's own session after a
//! password change) stays however late the sweep runs.
//!
//! A batch reports its failures one record at a time (`ReportBatchItemFailures`): a record
//! that fails is retried alone, and after the queue's `max_receives` it moves to the
//! dead-letter queue; a malformed record fails at once, so it reaches the dead-letter queue
//! without holding up the others.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use service_common::store::{Live, SessionStore, UserStore};
use service_common::sweeps::SessionSweep;
use service_common::{Clients, Config, FunctionState, ServiceError};

/// What `sweeper` builds once per process: the sessions store, and the users store for a
/// user's session generation.
#[derive(Clone, Debug)]
pub struct State {
    pub config: Config,
    pub users: UserStore,
    pub sessions: SessionStore,
}

impl FunctionState for State {
    fn new(config: Config, clients: Clients) -> Self {
        Self {
            users: UserStore::new(clients.dynamo.clone(), &config.users_table),
            sessions: SessionStore::new(clients.dynamo, &config.sessions_table),
            config,
        }
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

/// Why one record was not swept.
#[derive(Debug, thiserror::Error)]
enum SweepError {
    #[error("the message is not a session sweep: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] ServiceError),
}

/// Sweeps every record of a batch, and names the ones that failed so only they are retried.
pub async fn handle(state: &State, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        if let Err(error) = sweep(state, &record).await {
            let message = service_common::logging::error_chain(&error);
            tracing::error!(message_id = record.message_id.as_deref().unwrap_or(""), error = %message, "sweep failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn sweep(state: &State, record: &SqsMessage) -> Result<(), SweepError> {
    let body = record.body.as_deref().unwrap_or_default();
    let SessionSweep { user_id } = serde_json::from_str(body)?;
    let (generation, logouts) = tokio::join!(
        state.users.session_generation(user_id),
        state.sessions.logouts(user_id)
    );
    let live = match generation? {
        Some(generation) => Some(Live {
            generation,
            logouts: logouts?,
        }),
        None => None,
    };
    let removed = state.sessions.sweep(user_id, live).await?;
    tracing::info!(user_id = %user_id, sessions = removed, "sessions swept");
    Ok(())
}
