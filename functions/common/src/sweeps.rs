//! The session sweep: the one message type both sides of the `session-sweeps` queue use, so
//! the request path (which enqueues it after a revocation, `queues::SweepQueue`) and the queue
//! worker (`functions/sweeper`, which deletes the user's stored sessions that no longer
//! authenticate) cannot disagree on its shape. Plain data: a function that only reads it links
//! no SQS client.
//!
//! It names only the user: the sweeper decides what is dead from the user's state when it runs
//! (`store::SessionStore::sweep`), so a sweep that runs late, twice, or by hand never ends a
//! session started or kept since the revocation.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The queue's declared name (its consumer's manifest declares it, its senders' `sends` name it).
pub const QUEUE: &str = "session-sweeps";

/// A message on the `session-sweeps` queue: delete the stored sessions of this user that no
/// longer authenticate, as JSON: `{"user_id":"<uuid>"}`. Unknown fields are refused, so a
/// message meant for another queue fails as malformed instead of sweeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSweep {
    pub user_id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire format, which a person also writes to send a sweep by hand (after an enqueue
    /// failed: its error line names the user).
    #[test]
    fn the_message_reads_as_documented() {
        let user_id = Uuid::nil();
        let sweep = SessionSweep { user_id };
        let json = format!(r#"{{"user_id":"{user_id}"}}"#);
        assert_eq!(serde_json::to_string(&sweep).unwrap(), json);
        assert_eq!(serde_json::from_str::<SessionSweep>(&json).unwrap(), sweep);
        let extra = format!(r#"{{"user_id":"{user_id}","more":1}}"#);
        assert!(serde_json::from_str::<SessionSweep>(&extra).is_err());
    }
}
