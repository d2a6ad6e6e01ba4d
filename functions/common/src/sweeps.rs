//! The session sweep: the one message type both sides of the `session-sweeps` queue use, so
//! the request path (which enqueues it after a revocation, `queues::SweepQueue`) and the queue
//! worker (`functions/sweeper`, which deletes the stored sessions the revocation ended) cannot
//! disagree on its shape. Plain data: a function that only reads it links no SQS client.
//!
//! A sweep names what the revocation ended, not just the user: it runs later, and by then the
//! user may have logged in again (after a log-out-everywhere) or kept the session that changed
//! the password. Those sessions still authenticate, and a sweep of "every session of the user"
//! would end them; a sweep of the ones the revocation ended never touches them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The queue's declared name (its consumer's manifest declares it, its senders' `sends` name it).
pub const QUEUE: &str = "session-sweeps";

/// A message on the `session-sweeps` queue: delete the stored sessions of `user_id` that
/// `ended` describes. Unknown fields are refused, so a message meant for another queue fails
/// as malformed instead of sweeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSweep {
    pub user_id: Uuid,
    pub ended: Ended,
}

/// Which of a user's sessions a revocation ended, by what a session stores
/// (`records::SessionRecord`): the user's session generation and count of log-outs everywhere
/// when it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ended {
    /// The user was deleted: every session (a deleted user's id never comes back).
    All,
    /// A password change moved the session generation to this: every session of an older one.
    GenerationBelow(u64),
    /// A log-out-everywhere made the count this: every session started before it.
    LogoutsBelow(u64),
}
