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
/// `ended` describes, as JSON: `{"user_id":"<uuid>","ended":"all"}`,
/// `{"user_id":"<uuid>","ended":{"generation_below":2}}` or `...{"logouts_below":1}}`.
/// Unknown fields are refused, so a message meant for another queue fails as malformed
/// instead of sweeping.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire format, which a person also writes to send a sweep by hand (after an enqueue
    /// failed: its error line names the user).
    #[test]
    fn the_message_reads_as_documented() {
        let user_id = Uuid::nil();
        for (ended, text) in [
            (Ended::All, r#""all""#),
            (Ended::GenerationBelow(2), r#"{"generation_below":2}"#),
            (Ended::LogoutsBelow(1), r#"{"logouts_below":1}"#),
        ] {
            let sweep = SessionSweep { user_id, ended };
            let json = format!(r#"{{"user_id":"{user_id}","ended":{text}}}"#);
            assert_eq!(serde_json::to_string(&sweep).unwrap(), json);
            assert_eq!(serde_json::from_str::<SessionSweep>(&json).unwrap(), sweep);
        }
        let extra = format!(r#"{{"user_id":"{user_id}","ended":"all","more":1}}"#);
        assert!(serde_json::from_str::<SessionSweep>(&extra).is_err());
    }
}
